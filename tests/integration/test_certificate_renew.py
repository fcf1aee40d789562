"""certificate_renew against a real ACME server (pebble) and a real nginx, asserted on what nginx SERVES over TLS
(and, for the Kubernetes target, on what the Secret HOLDS on the lab cluster)."""
from __future__ import annotations

import base64
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import certificate_renew
from lab.harness.base import free_port, wait_for
from lab.harness.tls_nginx import self_signed

pytestmark = [pytest.mark.integration, pytest.mark.acme]

OPEN = [{"name": "open", "start": "2000-01-01T00:00", "end": "2100-01-01"}]
WEEKLY = [{"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h"}]
OUTSIDE = "2026-11-24T15:00:00Z"  # a Tuesday afternoon: the weekly window is closed


def file_args(lab, **extra):
    nginx, pebble = lab.nginx, lab.pebble
    args = {
        "certificates": [{"name": "vitalstream-web", "cert_path": str(nginx.cert_path),
                          "key_path": str(nginx.key_path)}],
        "acme": {"directory_url": pebble.directory_url, "ca_bundle": str(pebble.ca_bundle),
                 "account_key_path": str(lab.root / "account.key"), "email": "ops@vitalstream.test",
                 "webroot": str(nginx.webroot)},
        "nginx": {"binary": nginx.binary, "conf": str(nginx.conf),
                  "verify": {"address": f"127.0.0.1:{nginx.tls_port}", "server_name": nginx.server_name}},
        "windows": OPEN,
    }
    args.update(extra)
    return args


def run_module(capsys, args):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        certificate_renew.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=args.get("_ansible_check_mode", False)) == []
    return result


def renew_record(result, name="vitalstream-web"):
    found = [r for r in result["records"] if r["name"] == name and r["action"] == "renew"]
    assert len(found) == 1, result["records"]
    return found[0]


def files_of(nginx):
    return nginx.cert_path.read_bytes(), nginx.key_path.read_bytes()


def acme_requests(lab):
    """How many ACME requests pebble handled (it logs each one: "GET /dir -> calling handler()")."""
    return lab.pebble.log.read_text(errors="replace").count("-> calling handler()")


def test_due_certificate_is_renewed_and_served_then_second_run_is_unchanged(acme_lab, capsys):
    nginx = acme_lab.nginx
    old_serial = nginx.served_serial()
    result = run_module(capsys, {**file_args(acme_lab), "_ansible_diff": True})
    record = renew_record(result)
    assert record["status"] == "done", record
    assert result["changed"] is True
    assert "POST /order-plz" in acme_lab.pebble.log.read_text()
    served = nginx.served()
    new_serial = format(served.serial_number, "x")
    assert new_serial != old_serial
    assert new_serial == record["after"]["serial"] and record["before"]["serial"] == old_serial
    assert record["before"]["days_left"] < 30 <= record["after"]["days_left"]
    # The report's line: the old expiry and the new one.
    assert (f"expiry {record['before']['not_after']} ({record['before']['days_left']} days) -> "
            f"{record['after']['not_after']} ({record['after']['days_left']} days)") in record["detail"]
    # Issued by pebble's CA, for the name of the old certificate, and the key on disk is the served one's.
    assert "Pebble" in served.issuer.rfc4514_string()
    assert served.public_key().public_numbers() == load_key(nginx.key_path).public_key().public_numbers()
    assert os.stat(nginx.key_path).st_mode & 0o777 == 0o600
    assert os.stat(acme_lab.root / "account.key").st_mode & 0o777 == 0o600
    assert os.listdir(nginx.webroot) == []  # tokens removed
    assert not [f for f in os.listdir(nginx.cert_path.parent) if f.endswith(".tmp")]
    assert result["diff"]["after"]["vitalstream-web"]["serial"] == new_serial
    assert any("-s reload" in command for command in result["executed"])
    assert "BEGIN" not in json.dumps(result)  # no key or certificate material in the result

    requests_after_renewal = acme_requests(acme_lab)
    again = run_module(capsys, file_args(acme_lab))
    assert acme_requests(acme_lab) == requests_after_renewal
    assert renew_record(again)["status"] == "unchanged"
    assert again["changed"] is False and again["executed"] == []
    assert nginx.served_serial() == new_serial


def test_not_due_is_untouched_and_orders_nothing(acme_lab, capsys):
    nginx = acme_lab.nginx
    before_files, old_serial = files_of(nginx), nginx.served_serial()
    result = run_module(capsys, file_args(acme_lab, renew_before_days=3))
    record = renew_record(result)
    assert record["status"] == "unchanged" and "renews under 3" in record["detail"]
    assert result["changed"] is False and result["window"] is None
    assert nginx.served_serial() == old_serial and files_of(nginx) == before_files
    assert not (acme_lab.root / "account.key").exists()  # no ACME call at all
    assert acme_requests(acme_lab) == 0


def test_check_mode_plans_and_changes_nothing(acme_lab, capsys):
    nginx = acme_lab.nginx
    before_files, old_serial = files_of(nginx), nginx.served_serial()
    result = run_module(capsys, {**file_args(acme_lab), "_ansible_check_mode": True})
    record = renew_record(result)
    assert record["status"] == "planned" and "days left < renew_before_days 30" in record["detail"]
    assert result["changed"] is True and result["executed"] == []
    assert nginx.served_serial() == old_serial and files_of(nginx) == before_files
    assert not (acme_lab.root / "account.key").exists()
    assert acme_requests(acme_lab) == 0


def test_window_closed_skips_a_due_certificate(acme_lab, capsys):
    nginx = acme_lab.nginx
    before_files, old_serial = files_of(nginx), nginx.served_serial()
    result = run_module(capsys, file_args(acme_lab, windows=WEEKLY, now=OUTSIDE))
    record = renew_record(result)
    assert record["status"] == "skipped"
    assert "due (" in record["detail"] and "not renewed" in record["detail"]
    assert record["before"]["days_left"] < 30
    assert result["changed"] is False and result["window"]["allowed"] is False
    assert nginx.served_serial() == old_serial and files_of(nginx) == before_files
    assert acme_requests(acme_lab) == 0


def test_acme_server_down_keeps_the_old_certificate_serving(tls_nginx, tmp_path, capsys):
    class Lab:  # an ACME directory nothing listens on
        nginx = tls_nginx
        root = tmp_path

        class pebble:  # noqa: N801 - stands in for PebbleServer
            directory_url = f"https://127.0.0.1:{free_port()}/dir"
            ca_bundle = tls_nginx.cert_path  # any PEM: nothing answers anyway

    before_files, old_serial = files_of(tls_nginx), tls_nginx.served_serial()
    result = run_module(capsys, file_args(Lab))
    assert result["failed"] is True
    record = renew_record(result)
    assert record["status"] == "failed"
    assert Lab.pebble.directory_url in record["detail"] and "cannot connect" in record["detail"]
    assert Lab.pebble.directory_url in result["msg"]
    assert tls_nginx.served_serial() == old_serial and files_of(tls_nginx) == before_files


def test_nginx_test_failing_restores_the_old_files(acme_lab, capsys):
    nginx = acme_lab.nginx
    before_files, old_serial = files_of(nginx), nginx.served_serial()
    # Valid now, broken for the next `nginx -t`: an include of a file that does not exist.
    (nginx.root / "conf.d" / "broken.conf").write_text(f"include {nginx.root}/missing/*.conf;\nbroken_directive on;\n")
    result = run_module(capsys, file_args(acme_lab))
    assert result["failed"] is True
    record = renew_record(result)
    assert record["status"] == "failed"
    assert "nginx -t rejects" in record["detail"] and "broken_directive" in record["detail"]
    assert "restored" in record["detail"] and "not reloaded" in record["detail"]
    assert nginx.served_serial() == old_serial and files_of(nginx) == before_files
    assert not any(" -s reload" in command for command in result["executed"])


def test_new_serial_never_served_puts_the_old_back_and_reloads(acme_lab, capsys):
    nginx = acme_lab.nginx
    before_files, old_serial = files_of(nginx), nginx.served_serial()
    args = file_args(acme_lab)
    # Nothing serves TLS there: the proof never comes.
    args["nginx"]["verify"] = {"address": f"127.0.0.1:{free_port()}", "server_name": nginx.server_name, "timeout": 1}
    result = run_module(capsys, args)
    assert result["failed"] is True
    record = renew_record(result)
    assert record["status"] == "failed" and "does not serve the new serial" in record["detail"]
    assert "restored and nginx reloaded with them" in record["detail"]
    assert files_of(nginx) == before_files
    # The reload back is graceful too: the workers that served the new certificate drain first.
    wait_for(lambda: nginx.served_serial() == old_serial, timeout=10, what="nginx serving the old serial again")


def test_bad_input_is_named_before_anything(acme_lab, capsys):
    args = file_args(acme_lab)
    args["acme"]["directory_url"] = "http://127.0.0.1:1/dir"
    result = run_module(capsys, args)
    assert result["failed"] is True and "acme.directory_url 'http://127.0.0.1:1/dir' must be an https URL" in result["msg"]
    assert result["records"] == []


def load_key(path):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(path.read_bytes(), password=None)


# --------------------------------------------------------------------------- Kubernetes TLS Secret


@pytest.mark.k8s
def test_kubernetes_tls_secret_is_renewed_in_one_update(acme_lab, k8s_cluster, k8s_namespace, capsys):
    cert, key = self_signed(["api.stream-systems.test"], days=5)
    old_serial = format(load_cert(cert).serial_number, "x")
    k8s_cluster.kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "stream-systems-tls", "namespace": k8s_namespace},
        "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode(),
                 "extra": base64.b64encode(b"kept").decode()}}))
    before = json.loads(k8s_cluster.kubectl("get", "secret", "stream-systems-tls", "-o", "json",
                                            namespace=k8s_namespace))
    args = file_args(acme_lab, kubeconfig=k8s_cluster.kubeconfig)
    args["certificates"] = [{"name": "stream-systems-tls",
                             "secret": {"namespace": k8s_namespace, "name": "stream-systems-tls"}}]
    del args["nginx"]

    planned = run_module(capsys, {**args, "_ansible_check_mode": True})
    assert renew_record(planned, "stream-systems-tls")["status"] == "planned"
    unchanged = json.loads(k8s_cluster.kubectl("get", "secret", "stream-systems-tls", "-o", "json",
                                               namespace=k8s_namespace))
    assert unchanged["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    result = run_module(capsys, args)
    record = renew_record(result, "stream-systems-tls")
    assert record["status"] == "done", record
    held = json.loads(k8s_cluster.kubectl("get", "secret", "stream-systems-tls", "-o", "json",
                                          namespace=k8s_namespace))
    held_cert = load_cert(base64.b64decode(held["data"]["tls.crt"]))
    new_serial = format(held_cert.serial_number, "x")
    assert new_serial != old_serial and new_serial == record["after"]["serial"]
    assert "Pebble" in held_cert.issuer.rfc4514_string()
    assert held["metadata"]["uid"] == before["metadata"]["uid"]  # the same object, replaced, never recreated
    assert held["metadata"]["annotations"]["streamops.io/rotated-at"].endswith("Z")
    assert base64.b64decode(held["data"]["extra"]) == b"kept"
    held_key = load_pem_key(base64.b64decode(held["data"]["tls.key"]))
    assert held_key.public_key().public_numbers() == held_cert.public_key().public_numbers()
    assert "BEGIN" not in json.dumps(result)

    again = run_module(capsys, args)
    assert renew_record(again, "stream-systems-tls")["status"] == "unchanged" and again["changed"] is False


@pytest.mark.k8s
def test_secret_renewal_restarts_the_deployment_that_mounts_it(acme_lab, k8s_cluster, k8s_namespace, capsys):
    cert, key = self_signed(["api.stream-systems.test"], days=5)
    k8s_cluster.kubectl("apply", "-f", "-", namespace=k8s_namespace, stdin=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": "stream-systems-tls"},
        "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()}}))
    k8s_cluster.kubectl("apply", "-f", "-", namespace=k8s_namespace, stdin=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "stream-systems"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "stream-systems"}},
                 "template": {"metadata": {"labels": {"app": "stream-systems"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "volumes": [{"name": "tls", "secret": {"secretName": "stream-systems-tls"}}],
                     "containers": [{"name": "app", "image": k8s_cluster.image, "imagePullPolicy": "Never",
                                     "command": ["/bin/sh", "-c", "exec sleep 3600"],
                                     "volumeMounts": [{"name": "tls", "mountPath": "/tls"}]}]}}}}))
    k8s_cluster.kubectl("rollout", "status", "deployment/stream-systems", "--timeout=90s", namespace=k8s_namespace,
                        timeout=120)
    args = file_args(acme_lab, kubeconfig=k8s_cluster.kubeconfig, rollout_timeout=90)
    del args["nginx"]
    args["certificates"] = [{"name": "stream-systems-tls", "restart_deployments": ["ghost"],
                             "secret": {"namespace": k8s_namespace, "name": "stream-systems-tls"}}]
    missing = run_module(capsys, args)
    assert "Deployment(s) ghost of restart_deployments do not exist" in renew_record(missing, "stream-systems-tls")["detail"]
    assert acme_requests(acme_lab) == 0

    args["certificates"][0]["restart_deployments"] = ["stream-systems"]
    result = run_module(capsys, args)
    assert renew_record(result, "stream-systems-tls")["status"] == "done"
    [restart] = [r for r in result["records"] if r["name"] != "stream-systems-tls"]
    assert restart["status"] == "done", restart
    deployment = json.loads(k8s_cluster.kubectl("get", "deployment", "stream-systems", "-o", "json",
                                                namespace=k8s_namespace))
    assert "kubectl.kubernetes.io/restartedAt" in deployment["spec"]["template"]["metadata"]["annotations"]
    status = deployment["status"]
    assert status.get("updatedReplicas") == status.get("readyReplicas") == 1


def load_cert(pem):
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem)


def load_pem_key(pem):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, password=None)
