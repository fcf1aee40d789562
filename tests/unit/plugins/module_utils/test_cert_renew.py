"""certificate_renew's decisions without a server: due or not, names, options, atomic install and restore."""
from __future__ import annotations

import copy
import datetime
import os

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import cert_renew
from ansible_collections.streamops.maintenance.plugins.module_utils.acme_order import (
    AcmeError,
    describe_error,
    load_or_create_account_key,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.cert_renew import (
    FileTarget,
    InstallError,
    RenewError,
    check_domain,
    parse_address,
    renewal_due,
    restore_files,
    run_certificate_renew,
    subject_names,
    validate,
    wait_for_serial,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from lab.harness.tls_nginx import self_signed

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
OPEN = [{"name": "open", "start": "2000-01-01T00:00", "end": "2100-01-01"}]
WEEKLY = [{"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h"}]


@pytest.mark.parametrize("left, threshold, due, text", [
    (None, 30, True, "no certificate installed yet"),
    (-2, 30, True, "expired 2 day(s) ago"),
    (0, 30, True, "0 days left < renew_before_days 30"),
    (29, 30, True, "29 days left < renew_before_days 30"),
    (30, 30, False, "30 days left, renews under 30"),
    (89, 30, False, "89 days left"),
    (1, 1, False, "1 days left, renews under 1"),
])
def test_renewal_due(left, threshold, due, text):
    decided, why = renewal_due(left, threshold)
    assert decided is due and text in why


@pytest.mark.parametrize("value, expected", [
    ("127.0.0.1:443", ("127.0.0.1", 443)),
    ("localhost:8443", ("localhost", 8443)),
    ("[::1]:443", ("::1", 443)),
])
def test_parse_address(value, expected):
    assert parse_address(value) == expected


@pytest.mark.parametrize("value", ["127.0.0.1", ":443", "127.0.0.1:0", "127.0.0.1:70000", "host:https", None, ""])
def test_parse_address_rejects(value):
    with pytest.raises(RenewError, match="must be host:port"):
        parse_address(value)


@pytest.mark.parametrize("value, expected", [("Vitalstream.Example", "vitalstream.example"),
                                             (" api.example ", "api.example")])
def test_check_domain(value, expected):
    assert check_domain(value, "web") == expected


@pytest.mark.parametrize("value, fragment", [
    ("*.example.com", "is a wildcard, which needs dns-01"),
    ("127.0.0.1", "is an IP address"),
    ("", "is not a host name"),
    ("a b", "is not a host name"),
])
def test_check_domain_rejects(value, fragment):
    with pytest.raises(RenewError) as caught:
        check_domain(value, "web")
    assert fragment in caught.value.msg and "certificate web" in caught.value.msg


def test_subject_names_are_the_dns_sans():
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(self_signed(["web.example", "www.web.example"], days=3)[0])
    assert subject_names(cert) == ["web.example", "www.web.example"]


def base_params(tmp_path, **extra):
    params = {
        "certificates": [{"name": "web", "domains": None, "cert_path": str(tmp_path / "web.crt"),
                          "key_path": str(tmp_path / "web.key"), "secret": None, "restart_deployments": []}],
        "renew_before_days": 30,
        "acme": {"directory_url": "https://127.0.0.1:14000/dir", "ca_bundle": None,
                 "account_key_path": str(tmp_path / "account.key"), "email": None, "challenge": "http-01",
                 "webroot": str(tmp_path), "timeout": 90},
        "nginx": {"binary": "nginx", "conf": str(tmp_path / "nginx.conf"),
                  "verify": {"address": "127.0.0.1:443", "server_name": None, "timeout": 10}},
        "rollout_timeout": 300, "kubeconfig": None, "context": None, "request_timeout": 30,
        "windows": OPEN, "window": None, "blackouts": None, "timezone": "UTC", "emergency": None, "now": None,
    }
    params.update(extra)
    return params


def edit(params, path, value):
    changed = copy.deepcopy(params)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize("path, value, fragment", [
    (("certificates",), [], "certificates is empty"),
    (("renew_before_days",), 0, "renew_before_days must be at least 1, got 0"),
    (("acme", "directory_url"), "http://acme.example/dir", "acme.directory_url 'http://acme.example/dir' must be an https URL"),
    (("acme", "timeout"), 0, "acme.timeout must be at least 1 second"),
    (("acme", "webroot"), "relative/dir", "acme.webroot 'relative/dir' must be an absolute path"),
    (("acme", "ca_bundle"), "/nonexistent/ca.pem", "acme.ca_bundle '/nonexistent/ca.pem' is not a file"),
    (("nginx",), None, "a file target needs the nginx option"),
    (("nginx", "verify", "address"), "127.0.0.1", "nginx.verify.address '127.0.0.1' must be host:port"),
    (("rollout_timeout",), 0, "rollout_timeout must be at least 1 second"),
    (("certificates", 0, "cert_path"), "web.crt", "certificate web: cert_path 'web.crt' must be an absolute path"),
    (("certificates", 0, "secret"), {"namespace": "prod", "name": "tls"}, "certificate web: give one target"),
    (("certificates", 0, "restart_deployments"), ["api"], "restart_deployments is for a secret target"),
    (("certificates", 0, "domains"), ["*.example.com"], "'*.example.com' is a wildcard"),
])
def test_validate_names_the_bad_value(tmp_path, path, value, fragment):
    with pytest.raises(RenewError) as caught:
        validate(edit(base_params(tmp_path), path, value))
    assert fragment in caught.value.msg


def test_validate_refuses_repeated_names_and_no_target(tmp_path):
    params = base_params(tmp_path)
    params["certificates"].append(dict(params["certificates"][0]))
    with pytest.raises(RenewError, match="repeated: web"):
        validate(params)
    no_target = {"name": "web", "cert_path": None, "key_path": None, "secret": None, "domains": None,
                 "restart_deployments": []}
    bare = edit(base_params(tmp_path), ("certificates", 0), no_target)
    with pytest.raises(RenewError, match="give one target"):
        validate(bare)


def write_cert(tmp_path, days):
    cert, key = self_signed(["web.example"], days=days)
    (tmp_path / "web.crt").write_bytes(cert)
    (tmp_path / "web.key").write_bytes(key)
    return cert, key


@pytest.mark.parametrize("days, windows, now, status, fragment", [
    (90, OPEN, None, "unchanged", "days left, renews under 30"),
    (5, OPEN, None, "planned", "would renew web.example ("),
    (5, WEEKLY, "2026-11-24T15:00:00Z", "skipped", "due (4 days left < renew_before_days 30) but not renewed"),
])
def test_check_mode_plan(tmp_path, days, windows, now, status, fragment):
    write_cert(tmp_path, days)
    result = run_certificate_renew(base_params(tmp_path, windows=windows, now=now), check_mode=True)
    assert result_problems(result, check_mode=True) == []
    [record] = result["records"]
    assert record["status"] == status and fragment in record["detail"], record
    assert record["before"]["domains"] == ["web.example"]
    assert result["executed"] == [] and not (tmp_path / "account.key").exists()


def test_real_run_with_the_window_closed_orders_nothing(tmp_path):
    cert, key = write_cert(tmp_path, 5)
    result = run_certificate_renew(base_params(tmp_path, windows=WEEKLY, now="2026-11-24T15:00:00Z"))
    assert [r["status"] for r in result["records"]] == ["skipped"]
    assert result["changed"] is False and result["window"]["allowed"] is False
    assert (tmp_path / "web.crt").read_bytes() == cert and not (tmp_path / "account.key").exists()


def test_missing_certificate_without_domains_fails_naming_it(tmp_path):
    result = run_certificate_renew(base_params(tmp_path), check_mode=True)
    assert result["failed"] is True
    assert "holds no certificate to take the names from: set domains" in result["records"][0]["detail"]


def test_unreadable_certificate_is_a_failed_record(tmp_path):
    (tmp_path / "web.crt").write_text("not a certificate")
    result = run_certificate_renew(base_params(tmp_path), check_mode=True)
    assert result["failed"] is True and "cannot read the current certificate" in result["records"][0]["detail"]


def test_restore_files_puts_back_content_and_mode_and_removes_new(tmp_path):
    kept, new = tmp_path / "kept.pem", tmp_path / "new.pem"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    saved = [(str(kept), b"old", os.stat(kept)), (str(new), None, None)]
    kept.write_bytes(b"replaced")
    kept.chmod(0o600)
    new.write_bytes(b"created")
    assert restore_files(saved) == []
    assert kept.read_bytes() == b"old" and os.stat(kept).st_mode & 0o777 == 0o640
    assert not new.exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_install_restores_the_old_files_when_nginx_test_fails(tmp_path, monkeypatch):
    cert, key = write_cert(tmp_path, 5)
    (tmp_path / "nginx.conf").write_text("events {}\n")
    calls = []

    def fake_nginx(binary, conf, *args):
        calls.append(args)
        return ("`nginx -t` exited with 1: [emerg] unknown directive", "") if args == ("-T",) else (None, "")

    monkeypatch.setattr(cert_renew, "run_nginx", fake_nginx)
    params = base_params(tmp_path)
    target = FileTarget(params["certificates"][0], params["nginx"])
    with pytest.raises(InstallError) as caught:
        target.install(b"new chain", b"new key", "abc", ["web.example"], [])
    assert "nginx -t rejects" in caught.value.msg and "not reloaded" in caught.value.msg
    assert calls == [("-T",)]
    assert (tmp_path / "web.crt").read_bytes() == cert and (tmp_path / "web.key").read_bytes() == key


def test_wait_for_serial_retries_until_the_new_one_is_served():
    served = iter(["old", "old", "new"])
    ticks = iter(range(100))
    proven, seen = wait_for_serial(lambda: next(served), "new", 10, clock=lambda: next(ticks), sleep=lambda _s: None)
    assert proven and seen == "new"


def test_wait_for_serial_gives_up_saying_what_it_saw():
    ticks = iter(range(100))

    def refused():
        raise ConnectionRefusedError(111, "Connection refused")

    proven, seen = wait_for_serial(refused, "new", 3, clock=lambda: next(ticks), sleep=lambda _s: None)
    assert not proven and "no TLS answer" in seen and "Connection refused" in seen


def test_account_key_is_created_0600_once(tmp_path):
    path = tmp_path / "account.key"
    _key, created = load_or_create_account_key(str(path))
    assert created and os.stat(path).st_mode & 0o777 == 0o600
    first = path.read_bytes()
    _key, created = load_or_create_account_key(str(path))
    assert not created and path.read_bytes() == first


def test_account_key_that_is_not_a_key_is_named(tmp_path):
    path = tmp_path / "account.key"
    path.write_text("garbage")
    with pytest.raises(AcmeError, match="is not an unencrypted PEM private key"):
        load_or_create_account_key(str(path))


def test_describe_error_quotes_the_problem_document():
    from acme import messages

    problem = messages.Error(typ="urn:ietf:params:acme:error:rateLimited", detail="too many certificates")
    assert describe_error(problem) == "urn:ietf:params:acme:error:rateLimited: too many certificates"


def test_unreachable_api_server_fails_that_certificate_and_the_others_still_run(tmp_path):
    from ansible_collections.streamops.maintenance.plugins.module_utils.k8s_conn import K8sConnectionError

    write_cert(tmp_path, 90)
    params = base_params(tmp_path)
    params["certificates"].append({"name": "api-tls", "domains": None, "cert_path": None, "key_path": None,
                                   "secret": {"namespace": "production", "name": "api-tls"},
                                   "restart_deployments": []})

    def unreachable(kubeconfig, context):
        raise K8sConnectionError(msg="cannot load the Kubernetes configuration (default): no kubeconfig")

    result = run_certificate_renew(params, check_mode=True, client_factory=unreachable)
    assert [r["status"] for r in result["records"]] == ["unchanged", "failed"]
    assert "no kubeconfig" in result["records"][1]["detail"] and result["failed"] is True


def test_an_nginx_in_a_container_is_tested_and_reloaded_through_its_command(tmp_path, monkeypatch):
    write_cert(tmp_path, 5)
    calls = []

    def fake_nginx(argv, conf, *args):
        calls.append((list(argv), conf, args))
        return ("`nginx -t` exited with 1: [emerg] bad", "") if args == ("-T",) else (None, "")

    monkeypatch.setattr(cert_renew, "run_nginx", fake_nginx)
    params = base_params(tmp_path)
    # The configuration is the container's path: it need not exist on this host.
    params["nginx"] = {**params["nginx"], "command": ["docker", "exec", "vitalstream-nginx-1", "nginx"],
                       "conf": "/etc/nginx/nginx.conf"}
    target = FileTarget(params["certificates"][0], params["nginx"])
    target.preflight()
    executed = []
    with pytest.raises(InstallError):
        target.install(b"new chain", b"new key", "abc", ["web.example"], executed)
    assert calls == [(["docker", "exec", "vitalstream-nginx-1", "nginx"], "/etc/nginx/nginx.conf", ("-T",))]
    assert executed == ["docker exec vitalstream-nginx-1 nginx -T -c /etc/nginx/nginx.conf"]


@pytest.mark.parametrize(("summary", "text"), [
    ({"not_after": "2026-12-26T10:00:00Z", "days_left": 20}, "2026-12-26T10:00:00Z (20 days)"),
    (None, "none"),
])
def test_expiry_text_says_when_and_how_many_days(summary, text):
    assert cert_renew.expiry_text(summary) == text
