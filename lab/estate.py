"""The demo lab estate: start, seed, describe and stop every lab service.

`python -m lab up` starts PostgreSQL (and a second, empty server for the quarterly
disaster-recovery test), Redis, the S3 endpoint, the Docker engine
(when none answers) with the VitalStream compose app, and the Kubernetes 1.20
cluster (lab/k8s, built once from Debian's source) with the Stream Systems app,
seeds them, and writes the connection facts the lab inventory reads. `python -m lab down` stops, by the
PIDs recorded at start, everything `up` started, and nothing else.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import yaml

from . import seed
from .harness.base import HarnessError, ServiceRecord, pid_alive, stop_pid
from .harness.postgres import PostgresInfo, PostgresServer
from .harness.redis import RedisInfo, RedisServer
from .harness.s3 import S3Info, S3Server

REPO = Path(__file__).resolve().parent.parent
STATE_DIR = REPO / "lab" / "state"
INVENTORY_VARS = REPO / "inventory" / "lab" / "group_vars" / "all" / "lab_services.yml"
# lab_state_dir of the lab inventory: backup sets and the logs log_maintenance works on.
LAB_STATE_DIR = REPO / "inventory" / "lab-state"
REPORTS_DIR = REPO / "reports"
COMPOSE_PROJECT = "vitalstream-lab"


def say(message: str) -> None:
    print(f"lab: {message}", flush=True)


def up() -> dict:
    if (STATE_DIR / "lab.json").exists():
        if _recorded_servers_alive():
            say("already up (lab/state/lab.json); `make lab-down` first to start afresh")
            return json.loads((STATE_DIR / "lab.json").read_text())
        say("lab/state says up but its servers are gone (reboot?); cleaning up and starting afresh")
        down()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    facts: dict = {}
    try:
        facts["postgres"] = _up_postgres()
        facts["postgres_dr"] = _up_postgres_dr()
        facts["redis"] = _up_redis()
        facts["s3"] = _up_s3()
        facts["compose"] = _up_compose()
        vitalstream_web = _up_vitalstream_bluegreen()
        facts["k8s"] = _up_k8s()
        facts["bluegreen"] = bluegreen_facts(facts["k8s"], vitalstream_web)
        facts["prometheus"] = _up_prometheus()
        facts["tls"] = _up_tls()
        facts["notify"] = _up_notify()
    except BaseException:  # Ctrl-C half-way must not leave servers behind either
        say("start failed; stopping what was started")
        down()
        raise
    logs = seed.make_lab_logs(LAB_STATE_DIR)
    say(f"log directories for log_maintenance: {', '.join(logs.values())}")
    _write_inventory_vars(facts)
    (STATE_DIR / "lab.json").write_text(json.dumps(facts, indent=2))
    say(f"up in {time.monotonic() - started:.1f}s; connection facts in {INVENTORY_VARS.relative_to(REPO)}")
    return facts


def _recorded_servers_alive() -> bool:
    from .k8s import control  # noqa: PLC0415

    records = [ServiceRecord.load(STATE_DIR, name) for name in ("postgres", "postgres_dr", "redis", "s3")]
    servers = all(r is not None and r.pid is not None and pid_alive(r.pid) for r in records)
    return servers and control.current(STATE_DIR) is not None


def _up_postgres() -> dict:
    say("starting PostgreSQL on 127.0.0.1 (TLS only: a throwaway CA signs its certificate)")
    server = PostgresServer(ssl=True)
    info = server.start()
    server.record().save(STATE_DIR)
    say(f"  {info.version} on port {info.port}; seeding the guides' tables (about 10 s)")
    return postgres_facts(info, seed.seed_postgres(info))


def _up_postgres_dr() -> dict:
    say("starting a second PostgreSQL on 127.0.0.1 for the DR test (TLS only, empty: the DR test restores onto it)")
    server = PostgresServer(ssl=True)
    info = server.start()
    # Its own record name: `down` stops it by this name, beside the estates' server.
    record = server.record()
    record.name = "postgres_dr"
    record.save(STATE_DIR)
    say(f"  {info.version} on port {info.port}")
    return postgres_dr_facts(info)


def postgres_dr_facts(info: PostgresInfo) -> dict:
    """lab_services.postgres_dr: a server of its own (never the estates'), with a role that may CREATE DATABASE."""
    return postgres_facts(info, {})


def postgres_facts(info: PostgresInfo, estates: dict) -> dict:
    facts = {"host": info.host, "port": info.port, "admin_user": info.user,
             "admin_password": info.password, "version": info.version, "estates": estates}
    if info.ssl:
        # What every connection to a TLS-only server needs; wrong_ca_cert is for the tests of a wrong CA.
        facts.update(sslmode="verify-full", ca_cert=info.ca_cert, wrong_ca_cert=info.wrong_ca_cert)
    return facts


def _up_redis() -> dict:
    import redis  # noqa: PLC0415

    say("starting Redis on 127.0.0.1")
    server = RedisServer()
    info = server.start()
    server.record().save(STATE_DIR)
    counts = seed.seed_redis(lambda db: redis.Redis(host=info.host, port=info.port, db=db))
    say(f"  port {info.port}; keys per estate db {counts}")
    return redis_facts(info)


def redis_facts(info: RedisInfo) -> dict:
    facts = {"host": info.host, "port": info.port,
             "estates": {e.name: {"db": e.redis_db} for e in seed.ESTATES}}
    if info.password:
        facts["password"] = info.password
    return facts


def _up_s3() -> dict:
    say("starting the S3 endpoint (moto) on 127.0.0.1")
    server = S3Server()
    info = server.start()
    server.record().save(STATE_DIR)
    buckets = seed.seed_s3(server.client())
    say(f"  {info.endpoint_url}; buckets {buckets}")
    return s3_facts(info)


def s3_facts(info: S3Info) -> dict:
    return {"endpoint_url": info.endpoint_url, "access_key": info.access_key,
            "secret_key": info.secret_key, "region": info.region,
            "estates": {e.name: {"bucket": e.bucket} for e in seed.ESTATES}}


def _up_compose() -> dict:
    from .harness.compose_app import ComposeApp  # noqa: PLC0415
    from .harness.docker_engine import DockerEngine  # noqa: PLC0415

    say("making sure a Docker engine answers (starting dockerd --bridge=none if none does)")
    engine = DockerEngine(STATE_DIR / "docker").ensure()
    say("  " + ("started our own dockerd" if engine.owned else "using the engine that was already running"))
    image = engine.base_image()
    say(f"  image {image}; starting the VitalStream compose app")
    app = ComposeApp(engine, image, project=COMPOSE_PROJECT, state_dir=STATE_DIR).up()
    say(f"  api-gateway on {app.url('').rstrip('/')}")
    return compose_facts(app)


def compose_facts(app) -> dict:
    """What the roles need to reach the compose project: its name, file, engine and API."""
    return {"project": app.project, "compose_file": str(app.compose_file),
            "docker_host": app.engine.host, "base_url": app.url("").rstrip("/"),
            "api_port": app.api_port, "image": app.image}


def _up_vitalstream_bluegreen():
    from .harness.bluegreen import BlueGreenCompose  # noqa: PLC0415
    from .harness.docker_engine import DockerEngine  # noqa: PLC0415

    engine = DockerEngine(STATE_DIR / "docker").ensure()
    say("starting the VitalStream web app blue/green behind nginx (lab/compose/bluegreen)")
    stack = BlueGreenCompose(engine, engine.base_image(), STATE_DIR / "bluegreen-vitalstream",
                             state_dir=STATE_DIR).up()
    say(f"  blue {stack.ports['blue']} (live), green {stack.ports['green']}; nginx front {stack.front_url}")
    return stack


def bluegreen_facts(k8s: dict, vitalstream) -> dict:
    """Each estate's blue/green app (lab_services.bluegreen), in the shape the deploy and rollback roles take.

    ``k8s`` is lab_services.k8s (the Stream Systems estate), ``vitalstream`` the BlueGreenCompose stack.
    """
    return {
        "stream_systems": {
            "platform": "kubernetes", "app": k8s["app"], "image": k8s["app_image"], "version": k8s["app_version"],
            "versions": list(k8s["app_versions"]), "smoke_fail_version": k8s["app_smoke_fail_version"],
            "ports": dict(k8s["app_ports"]), "kubectl": k8s["kubectl"],
            "kubernetes": {"kubeconfig": k8s["kubeconfig"], "namespace": k8s["namespace"],
                           "service": k8s["service"], "container": k8s["app"], "port_name": "http"},
        },
        "vitalstream": vitalstream.facts(),
    }


def _up_prometheus() -> dict:
    from .monitoring import start_estate_prometheus  # noqa: PLC0415

    servers = {}
    for one in seed.ESTATES:
        server = start_estate_prometheus(STATE_DIR / "prometheus" / one.name, one.name)
        ServiceRecord(name=f"prometheus-{one.name}", pid=server.pid, info=server.facts()).save(STATE_DIR)
        say(f"  Prometheus of {one.name} on {server.url} (its alert rules loaded, scraping itself)")
        servers[one.name] = server.facts()
    return servers


def _up_tls() -> dict:
    from .monitoring import start_tls_front, tls_facts  # noqa: PLC0415

    nginx, pebble = start_tls_front(STATE_DIR)
    ServiceRecord(name="tls-nginx", pid=nginx.proc.pid).save(STATE_DIR)
    ServiceRecord(name="pebble", info={"pids": [proc.pid for proc in pebble.procs]}).save(STATE_DIR)
    say(f"  VitalStream's TLS front {nginx.server_name} on https://{nginx.facts()['tls_nginx_address']} "
        f"(certificate with {nginx.days:g} days left); ACME server (pebble) on {pebble.directory_url}")
    return tls_facts(nginx, pebble)


def _up_notify() -> dict:
    from .harness.smtp import SmtpServer  # noqa: PLC0415
    from .harness.webhook import WebhookReceiver  # noqa: PLC0415

    smtp = SmtpServer(STATE_DIR / "smtp").start()
    ServiceRecord(name="smtp", pid=smtp.pid).save(STATE_DIR)
    webhook = WebhookReceiver(STATE_DIR / "webhook").start()
    ServiceRecord(name="webhook", pid=webhook.pid).save(STATE_DIR)
    say(f"  notifications: SMTP (STARTTLS, AUTH) on {smtp.facts()['host']}:{smtp.port}, mail kept in {smtp.mailbox}; "
        f"webhook receiver on {webhook.url}, posts kept in {webhook.received_dir}")
    return {"smtp": smtp.facts(), "webhook": webhook.facts()}


def _down_by_pid(name: str) -> None:
    """Stop a service recorded with only its PID(s) (Prometheus, the ACME server, the TLS nginx, SMTP, webhook)."""
    record = ServiceRecord.load(STATE_DIR, name)
    if record is None:
        return
    pids = [record.pid] if record.pid else list(record.info.get("pids") or [])
    alive = [pid for pid in pids if not stop_pid(pid, timeout=15)]
    if alive:
        say(f"could not stop {name} (pid {', '.join(map(str, alive))})")
        return
    ServiceRecord.forget(STATE_DIR, name)
    say(f"stopped {name}")


def _up_k8s() -> dict:
    from .k8s import control  # noqa: PLC0415
    from .k8s.build import cached_binaries  # noqa: PLC0415

    say("starting the Kubernetes 1.20 lab cluster for Stream Systems" + (
        "" if cached_binaries() else
        " (first building it from Debian's source package: about 5 minutes, once)"))
    info = control.up(STATE_DIR, lambda message: say("  " + message))
    estate = control.deploy_stream_systems(info)
    say(f"  namespace {estate['namespace']}: deployment/{estate['deployment']} "
        f"({estate['replicas']} pods Ready), service/{estate['service']}")
    return k8s_facts(info, estate)


def k8s_facts(info, estate: dict) -> dict:
    return {"kubeconfig": info.kubeconfig, "server": info.server, "context": "streamops-lab",
            "kubectl": info.kubectl, "image": info.image, "docker_host": info.docker_host, **estate}


def down() -> None:
    """Stop, by recorded PID or project, what `up` started; leave everything else."""
    from .k8s import control  # noqa: PLC0415

    facts = json.loads((STATE_DIR / "lab.json").read_text()) if (STATE_DIR / "lab.json").exists() else {}
    try:
        control.down(STATE_DIR, say)
    except HarnessError as exc:
        say(f"could not stop the Kubernetes cluster: {exc}")
    for name in ["smtp", "webhook", "tls-nginx", "pebble"] + [f"prometheus-{one.name}" for one in seed.ESTATES]:
        _down_by_pid(name)
    _down_vitalstream_bluegreen()
    _down_compose(facts.get("compose"))
    for name, server_class in (("s3", S3Server), ("redis", RedisServer), ("postgres_dr", PostgresServer),
                               ("postgres", PostgresServer)):
        record = ServiceRecord.load(STATE_DIR, name)
        if record is None:
            continue
        try:
            server_class.from_record(record).stop()
        except HarnessError as exc:
            say(f"could not stop {name}: {exc}")
            continue
        ServiceRecord.forget(STATE_DIR, name)
        say(f"stopped {name}")
    (STATE_DIR / "lab.json").unlink(missing_ok=True)
    INVENTORY_VARS.unlink(missing_ok=True)


def _down_vitalstream_bluegreen() -> None:
    from .harness.bluegreen import APP, BlueGreenCompose  # noqa: PLC0415
    from .harness.docker_engine import DockerEngine  # noqa: PLC0415

    record = ServiceRecord.load(STATE_DIR, f"bluegreen-{APP}")
    if record is None:
        return
    try:
        BlueGreenCompose.from_record(DockerEngine(STATE_DIR / "docker"), record, state_dir=STATE_DIR).down()
        say("stopped the VitalStream web app (blue/green) and its nginx")
    except HarnessError as exc:
        say(f"could not stop the VitalStream web app: {exc}")


def _down_compose(compose: dict | None) -> None:
    from .harness.compose_app import ComposeApp  # noqa: PLC0415
    from .harness.docker_engine import DockerEngine  # noqa: PLC0415

    engine = DockerEngine(STATE_DIR / "docker")
    record = ServiceRecord.load(STATE_DIR, f"compose-{COMPOSE_PROJECT}")
    if record is not None or compose:
        info = record.info if record is not None else compose
        try:
            ComposeApp(engine, info.get("image", ""), project=COMPOSE_PROJECT,
                       api_port=info.get("api_port"), state_dir=STATE_DIR).down()
            say("removed the compose app")
        except HarnessError as exc:
            say(f"could not remove the compose app: {exc}")
    try:
        engine.stop()  # a no-op unless the record says we started this dockerd
    except HarnessError as exc:
        say(f"could not stop dockerd: {exc}")
    else:
        say("Docker engine: stopped ours, or left the one that was already running")


def _write_inventory_vars(facts: dict) -> None:
    INVENTORY_VARS.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `python -m lab up`; removed by `make lab-down`. Throwaway lab secrets.\n"
    INVENTORY_VARS.write_text(header + yaml.safe_dump({"lab_services": facts}, sort_keys=False))
    INVENTORY_VARS.chmod(0o600)


def status() -> int:
    if not (STATE_DIR / "lab.json").exists():
        say("down")
        return 1
    facts = json.loads((STATE_DIR / "lab.json").read_text())
    say("up: postgres {}:{}, redis {}:{}, s3 {}, compose {}".format(
        facts["postgres"]["host"], facts["postgres"]["port"], facts["redis"]["host"],
        facts["redis"]["port"], facts["s3"]["endpoint_url"], facts["compose"].get("base_url")))
    if "k8s" in facts:
        say("    kubernetes {} (namespace {}); KUBECONFIG={}".format(
            facts["k8s"]["server"], facts["k8s"]["namespace"], facts["k8s"]["kubeconfig"]))
    return 0


def report_path() -> int:
    reports = sorted(REPORTS_DIR.glob("*.md"), key=os.path.getmtime)
    if not reports:
        say(f"no report under {REPORTS_DIR}")
        return 1
    latest = reports[-1]
    print(f"\nMaintenance report: {latest}\n                    {latest.with_suffix('.json')}")
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "up":
        up()
        return 0
    if command == "down":
        down()
        return 0
    if command == "status":
        return status()
    if command == "report-path":
        return report_path()
    print("usage: python -m lab {up|down|status|report-path}", file=sys.stderr)
    return 2
