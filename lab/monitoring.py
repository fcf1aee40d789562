"""The lab's monitoring and certificates: one Prometheus per estate (as each estate has its own), already holding
the estate's alert rules, scraping itself so its TSDB holds data; and VitalStream's TLS front (nginx serving a
certificate and the ACME webroot) with an ACME server (pebble) that can renew it. `python -m lab up` and the
lab_services fixture start them."""
from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

from .harness.acme import PebbleServer
from .harness.base import HarnessError, wait_for
from .harness.prometheus import PrometheusServer
from .harness.tls_nginx import TlsNginx

REPO = Path(__file__).resolve().parent.parent
# The alert rules the collection ships (the monitoring role deploys them from here).
RULES = REPO / "roles" / "monitoring" / "files" / "prometheus"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def rule_groups(server: PrometheusServer) -> set[str]:
    with _DIRECT.open(f"{server.url}/api/v1/rules", timeout=5) as answer:
        return {group["name"] for group in json.load(answer)["data"]["groups"]}


def start_estate_prometheus(root: Path, estate: str) -> PrometheusServer:
    """A Prometheus for ``estate`` with the shipped ``<estate>.rules.yml`` loaded and a first scrape stored."""
    rules = RULES / f"{estate}.rules.yml"
    if not rules.is_file():
        raise HarnessError(f"no shipped rules for estate {estate!r}: {rules} is missing")
    server = PrometheusServer(Path(root))
    server.rules_dir.mkdir(parents=True, exist_ok=True)
    # In place before the start: the lab's server holds the estate's rules, as production's does.
    shutil.copyfile(rules, server.rules_dir / rules.name)
    server.start()
    try:
        wait_for(lambda: bool(rule_groups(server)), timeout=20, what=f"the rules of {estate} loaded by {server.url}",
                 log=server.log, interval=0.2)
        server.wait_for_scrape()
    except BaseException:
        server.stop()
        raise
    return server


# The lab's certificate starts with 20 days left: the health check's 14 days are met, the renewal's 30 are not,
# so the monthly run renews it. Pebble issues for 60 days: the next monthly run finds it not due.
LAB_CERT_DAYS = 20
LAB_ISSUED_DAYS = 60
LAB_SERVER_NAME = "vitalstream.lab.test"


def start_tls_front(root: Path) -> tuple[TlsNginx, PebbleServer]:
    """VitalStream's TLS nginx and the ACME server whose http-01 validation reaches that nginx's webroot."""
    nginx = TlsNginx(Path(root) / "tls-nginx", server_name=LAB_SERVER_NAME, days=LAB_CERT_DAYS).start()
    try:
        pebble = PebbleServer(Path(root) / "pebble", http_port=nginx.http_port,
                              validity_seconds=LAB_ISSUED_DAYS * 86400).start()
    except BaseException:
        nginx.stop()
        raise
    return nginx, pebble


def tls_facts(nginx: TlsNginx, pebble: PebbleServer) -> dict:
    """lab_services.tls: what the lab inventory hands to certificate_renew (and the health check)."""
    return {**nginx.facts(), **pebble.facts()}
