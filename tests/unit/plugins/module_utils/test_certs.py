"""certificate_expiry: days left, bundles, unreadable sources, options, and main() as Ansible runs it."""

from __future__ import annotations

import datetime
import json

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.module_utils.certs import (
    CertificateError,
    certificate_expiry_argument_spec,
    check_certificates,
    days_left,
    load_certificates,
    read_file,
    run_certificate_expiry,
)
from ansible_collections.streamops.maintenance.plugins.modules import certificate_expiry

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
KEY = ec.generate_private_key(ec.SECP256R1())


def make_cert(common_name: str, not_after: datetime.datetime, *, issuer: str | None = None) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or common_name)]))
            .public_key(KEY.public_key())
            .serial_number(0x1F3A)
            .not_valid_before(NOW - datetime.timedelta(days=30))
            .not_valid_after(not_after)
            .sign(KEY, hashes.SHA256()))


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def key_pem() -> str:
    return KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def params(**overrides):
    base = {"paths": [], "texts": [], "min_days": 0, "fail_on_breach": False}
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    "left, expected",
    [
        (datetime.timedelta(days=14), 14),
        (datetime.timedelta(days=13, hours=23, minutes=59), 13),
        (datetime.timedelta(seconds=1), 0),
        (datetime.timedelta(0), 0),
        (-datetime.timedelta(seconds=1), -1),
        (-datetime.timedelta(days=3, hours=1), -4),
    ],
    ids=["exact", "just-under", "one-second", "now", "expired-just", "expired-days"],
)
def test_days_left_are_whole_days_rounded_down(left, expected):
    assert days_left(NOW + left, NOW) == expected


@pytest.mark.parametrize(
    "days, min_days, status, detail",
    [
        (30, 14, "ok", "30 days left, until 2026-03-31T12:00:00Z (limit 14)"),
        (14, 14, "ok", "14 days left, until 2026-03-15T12:00:00Z (limit 14)"),
        (12, 14, "breach", "12 days left, until 2026-03-13T12:00:00Z (limit 14)"),
        (-2, 0, "breach", "expired 2 day(s) ago (2026-02-27T12:00:00Z) (limit 0)"),
        (5, 0, "ok", "5 days left, until 2026-03-06T12:00:00Z (limit 0)"),
    ],
    ids=["plenty", "at-limit", "under", "expired", "no-limit"],
)
def test_a_text_is_ok_or_a_breach_against_min_days(days, min_days, status, detail):
    cert = make_cert("api.example.com", NOW + datetime.timedelta(days=days))
    [record] = check_certificates(paths=[], texts=[{"name": "secret ns/api-tls", "pem": pem(cert)}],
                                  now=NOW, min_days=min_days)
    assert record["status"] == status
    assert record["days_left"] == days
    assert record["detail"] == detail
    assert record["subject"] == "CN=api.example.com"
    assert record["serial"] == "1f3a"
    assert record["source"] == "text"


def test_a_file_with_key_and_chain_reports_the_certificate_that_expires_first(tmp_path):
    leaf = make_cert("vitalstream.example.com", NOW + datetime.timedelta(days=90), issuer="Example CA")
    intermediate = make_cert("Example CA", NOW + datetime.timedelta(days=10))
    path = tmp_path / "bundle.pem"
    path.write_text(key_pem() + pem(leaf, intermediate))
    [record] = check_certificates(paths=[str(path)], texts=[], now=NOW, min_days=14)
    assert record["name"] == str(path)
    assert (record["certificates"], record["position"]) == (2, 1)
    assert record["subject"] == "CN=Example CA"
    assert (record["status"], record["days_left"]) == ("breach", 10)


def test_a_der_file_is_read(tmp_path):
    cert = make_cert("der.example.com", NOW + datetime.timedelta(days=40))
    path = tmp_path / "cert.der"
    path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    [record] = check_certificates(paths=[str(path)], texts=[], now=NOW, min_days=14)
    assert (record["status"], record["days_left"], record["subject"]) == ("ok", 40, "CN=der.example.com")


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "missing.pem: no such file"),
        ("", "not a certificate"),
        ("just some text\n", "not a certificate"),
        ("KEY", "not a certificate"),
        ("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", "not a valid certificate"),
    ],
    ids=["missing", "empty", "text", "private-key-only", "broken-pem"],
)
def test_an_unreadable_source_fails_naming_it_and_the_others_are_still_read(tmp_path, content, expected):
    good = tmp_path / "good.pem"
    good.write_text(pem(make_cert("good", NOW + datetime.timedelta(days=60))))
    bad = tmp_path / "missing.pem"
    if content is not None:
        bad.write_text(key_pem() if content == "KEY" else content)
    result = run_certificate_expiry(params(paths=[str(bad), str(good)], min_days=14), now=NOW)
    assert result["failed"] is True
    failed, ok = result["records"]
    assert failed["status"] == "failed" and str(bad) in failed["detail"] and expected in failed["detail"]
    assert ok["status"] == "ok" and ok["after"]["days_left"] == 60
    assert result_problems({**result, "failed": False}) == []
    assert f"cannot read: {bad}" in result["msg"]


def test_a_directory_is_named():
    with pytest.raises(CertificateError, match="is a directory"):
        read_file("/")


def test_load_certificates_names_the_source():
    with pytest.raises(CertificateError, match="^secret ns/x: not a certificate"):
        load_certificates(b"nope", name="secret ns/x")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({}, "give 'paths'"),
        ({"paths": ["/a", "/a"]}, "repeated: /a"),
        ({"paths": ["/a"], "texts": [{"name": "/a", "pem": "x"}]}, "repeated: /a"),
        ({"paths": ["/a"], "min_days": -1}, "min_days must not be negative"),
    ],
    ids=["nothing", "duplicate-path", "duplicate-name", "negative"],
)
def test_bad_options_fail_before_reading_anything(overrides, message):
    with pytest.raises(CertificateError, match=message):
        run_certificate_expiry(params(**overrides), now=NOW)


def test_breaches_are_listed_and_fail_only_when_asked():
    texts = [{"name": "soon", "pem": pem(make_cert("soon", NOW + datetime.timedelta(days=3)))},
             {"name": "later", "pem": pem(make_cert("later", NOW + datetime.timedelta(days=300)))}]
    reported = run_certificate_expiry(params(texts=texts, min_days=14), now=NOW)
    assert "failed" not in reported
    assert reported["breaches"] == ["soon"]
    assert reported["msg"] == "2 certificate(s); 1 under 14 days: soon (3)"
    assert run_certificate_expiry(params(texts=texts, min_days=14, fail_on_breach=True), now=NOW)["failed"]
    clean = run_certificate_expiry(params(texts=texts[1:], min_days=14), now=NOW)
    assert clean["msg"] == "1 certificate(s); soonest expiry in 300 days"


def test_module_options_are_documented_exactly():
    documented = yaml.safe_load(certificate_expiry.DOCUMENTATION)["options"]
    spec = certificate_expiry_argument_spec()
    assert set(documented) == set(spec)
    for name, option in spec.items():
        assert documented[name]["type"] == option["type"], name
        assert documented[name].get("default") == option.get("default"), name
    assert set(documented["texts"]["suboptions"]) == set(spec["texts"]["options"])
    assert spec["texts"]["options"]["pem"]["no_log"] is True


def test_main_reports_and_fails_on_an_unreadable_file(tmp_path, capsys):
    good = tmp_path / "good.pem"
    good.write_text(pem(make_cert("good", datetime.datetime.now(UTC) + datetime.timedelta(days=20, hours=1))))
    with patch_module_args({"paths": [str(good)], "min_days": 14}), pytest.raises(SystemExit) as exited:
        certificate_expiry.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == 0, result
    assert result["changed"] is False
    assert result["records"][0]["after"]["days_left"] == 20
    assert result_problems(result) == []

    with patch_module_args({"paths": [str(good), str(tmp_path / "gone.pem")]}), \
            pytest.raises(SystemExit) as exited:
        certificate_expiry.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == 1
    assert f"{tmp_path / 'gone.pem'}: no such file" in result["msg"]
    assert len(result["records"]) == 2
