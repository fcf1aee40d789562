"""Campaign class ``acme_gone``: the ACME server gone mid-order (certificate_renew, a file target served by nginx).

A TLS FaultProxy (lab/harness/fault_proxy.py, with pebble's own server certificate) stands between the
module and pebble, and stops pebble (and its DNS, pebble-challtestsrv) when a given request of the order
reaches it: the challenge answer (the order and its authorization exist) or the finalize (the order is
ready, the CSR is being sent). The request then meets a closed connection, and every later one a refused
upstream, as a client of a crashed CA would. Then: the old certificate and key byte-identical and still
served by nginx, no temp file beside them, no token left in the webroot, a message naming the ACME server
and the step; and the run again with pebble back renews, asserted on the serial nginx serves.
"""
from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.modules import certificate_renew
from lab.harness.fault_proxy import FaultProxy

OPEN = [{"name": "open", "start": "2000-01-01T00:00", "end": "2100-01-01"}]


def renew(lab, directory_url: str, capsys) -> dict:
    nginx, pebble = lab.nginx, lab.pebble
    args = {
        "certificates": [{"name": "vitalstream-web", "cert_path": str(nginx.cert_path),
                          "key_path": str(nginx.key_path)}],
        "acme": {"directory_url": directory_url, "ca_bundle": str(pebble.ca_bundle),
                 "account_key_path": str(lab.root / "account.key"), "email": "ops@vitalstream.test",
                 "webroot": str(nginx.webroot), "timeout": 20},
        "nginx": {"binary": nginx.binary, "conf": str(nginx.conf),
                  "verify": {"address": f"127.0.0.1:{nginx.tls_port}", "server_name": nginx.server_name}},
        "windows": OPEN,
    }
    with patch_module_args(args), pytest.raises(SystemExit):
        certificate_renew.main()
    return json.loads(capsys.readouterr().out)


def leftovers(lab) -> list[str]:
    found = [f"temp file {name}" for name in os.listdir(lab.nginx.cert_path.parent)
             if name not in (lab.nginx.cert_path.name, lab.nginx.key_path.name)]
    found += [f"http-01 token {name}" for name in os.listdir(lab.nginx.webroot)]
    return found


STEPS = [
    pytest.param("POST", r"^/chalZ/", "challenge", id="at-the-challenge-answer"),
    pytest.param("POST", r"^/finalize-order/", "finalize", id="at-the-finalize"),
]


@pytest.mark.parametrize(("method", "target", "step"), STEPS)
def test_acme_server_gone_mid_order(acme_lab, campaign, capsys, method, target, step):
    nginx, pebble = acme_lab.nginx, acme_lab.pebble
    old_files = (nginx.cert_path.read_bytes(), nginx.key_path.read_bytes())
    old_serial = nginx.served_serial()
    ca_dir = pebble.root / "ca"
    with FaultProxy(pebble.directory_url.rsplit("/", 1)[0], tls=(ca_dir / "server.pem", ca_dir / "server.key")) \
            as proxy, campaign.case("acme_gone", f"pebble stopped at the {step} of the order") as case:
        directory_url = f"{proxy.url}/dir"
        rule = proxy.add("forward", method=method, target=target, before=pebble.stop)
        result = renew(acme_lab, directory_url, capsys)
        assert rule.fired == 1, f"the order never reached the {step}: {[(s.method, s.target) for s in proxy.requests]}"
        assert any(s.target == "/order-plz" for s in proxy.requests), "no order was created before the fault"
        case.check_error(result, names=[directory_url, step, "connection broke", "unchanged"])
        case.check_data((nginx.cert_path.read_bytes(), nginx.key_path.read_bytes()) == old_files,
                        "the old certificate and key files byte-identical")
        case.check_data(nginx.served_serial() == old_serial, f"nginx still serves the old serial {old_serial}")
        case.check_no_partial(leftovers(acme_lab), str(nginx.cert_path.parent))

        pebble.start()
        proxy.clear()
        again = renew(acme_lab, directory_url, capsys)
        record = next((r for r in again.get("records", []) if r["action"] == "renew"), {})
        new_serial = nginx.served_serial()
        case.check_converged(not again.get("failed") and record.get("status") == "done"
                             and new_serial != old_serial and new_serial == record["after"]["serial"],
                             f"re-run with pebble back: {again['msg']}")
        case.check_no_partial(leftovers(acme_lab), "after the re-run")
