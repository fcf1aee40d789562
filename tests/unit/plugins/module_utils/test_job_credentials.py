"""The credential types AWX injects, and the overlay the job_credentials lookup makes of them.

The injection itself is AWX's (lab/harness/awx.py reproduces it): a credential type here is
only right if what AWX would inject from it turns back into the connection the modules need.
"""
from __future__ import annotations

import re

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import job_credentials as jc
from lab.harness.awx import inject_credential
from lab.harness.base import HarnessError

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def injected_env(key, inputs, tmp_path):
    env, cmdline = inject_credential(jc.credential_type(jc.credential(key)), inputs, tmp_path,
                                     container_root=str(tmp_path))
    assert cmdline == []  # nothing goes into extra vars
    return env


def overlay(env, inventory=None, estate=None):
    asked = []

    def current(variable, overridden):
        asked.append((variable, overridden))
        return {k: v for k, v in (inventory or {}).get(variable, {}).items() if k not in overridden}

    return {item["variable"]: item["connection"] for item in jc.overlay_connections(env, current, estate)}, asked


@pytest.mark.parametrize("cred", jc.CREDENTIALS, ids=lambda c: c.key)
def test_each_credential_type_is_what_awx_accepts(cred):
    ctype = jc.credential_type(cred)
    assert ctype["kind"] == "cloud" and ctype["name"].startswith("streamops ")
    ids = [f["id"] for f in ctype["inputs"]["fields"]]
    assert len(ids) == len(set(ids)) and set(ctype["inputs"]["required"]) <= set(ids)
    for spec in ctype["inputs"]["fields"]:
        assert spec["type"] in ("string", "boolean")
        assert spec.get("secret", False) == (spec["id"] in ("password", "secret_key"))
    # AWX refuses ANSIBLE_* and the like; ours are all under the collection's own prefix.
    assert all(re.fullmatch(r"STREAMOPS_[A-Z0-9_]+", name) for name in ctype["injectors"]["env"])
    assert "extra_vars" not in ctype["injectors"]


def test_postgres_credential_becomes_the_connection_with_the_ca_in_a_private_file(tmp_path):
    env = injected_env("postgres", {"estate": "stream_systems", "host": "db.internal", "port": "5433",
                                    "database": "streamsystems", "username": "stream_user", "password": "s3cr:t",
                                    "sslmode": "verify-full", "ca_cert": PEM}, tmp_path)
    ca_path = env["STREAMOPS_POSTGRES_CA_CERT"]
    assert (tmp_path / "env" / ca_path.rsplit("/", 1)[1]).read_text() == PEM
    assert oct((tmp_path / "env" / ca_path.rsplit("/", 1)[1]).stat().st_mode & 0o777) == "0o600"
    found, asked = overlay(env, {"postgres_login": {"login_host": "old", "connect_timeout": 3}}, "stream_systems")
    assert found == {"postgres_login": {"login_host": "db.internal", "login_port": 5433, "database": "streamsystems",
                                        "login_user": "stream_user", "login_password": "s3cr:t",
                                        "sslmode": "verify-full", "ca_cert": ca_path, "connect_timeout": 3}}
    # The inventory is asked only for what the credential does not set: its password is never read.
    assert [(variable, set(keys)) for variable, keys in asked] == [
        ("postgres_login", {"login_host", "login_port", "login_user", "login_password", "database", "sslmode",
                            "ca_cert"})]


def test_empty_optional_inputs_keep_the_inventory_values(tmp_path):
    env = injected_env("postgres", {"host": "db", "database": "d", "username": "u", "password": "p"}, tmp_path)
    assert env["STREAMOPS_POSTGRES_CA_CERT"] == ""  # no certificate given: no path at all
    found = overlay(env, {"postgres_login": {"sslmode": "verify-full", "ca_cert": "/etc/pki/pg-ca.crt"}})[0]
    assert found["postgres_login"]["sslmode"] == "verify-full"
    assert found["postgres_login"]["ca_cert"] == "/etc/pki/pg-ca.crt"


def test_each_service_fills_its_own_variable(tmp_path):
    env = {}
    env.update(injected_env("redis", {"host": "cache", "port": "6380", "db": "2", "password": "r", "tls": True},
                            tmp_path))
    env.update(injected_env("s3", {"bucket": "b", "prefix": "database", "access_key": "AK", "secret_key": "SK",
                                   "server_side_encryption": "AES256"}, tmp_path))
    env.update(injected_env("restore_test", {"host": "staging", "username": "restorer", "password": "x"}, tmp_path))
    found = overlay(env)[0]
    assert found == {
        "backup_verify_login": {"login_host": "staging", "login_user": "restorer", "login_password": "x"},
        "redis_login": {"login_host": "cache", "login_port": 6380, "db": 2, "login_password": "r", "tls": True},
        "s3_login": {"bucket": "b", "prefix": "database", "access_key": "AK", "secret_key": "SK",
                     "server_side_encryption": "AES256"},
    }


def test_an_unticked_tls_box_does_not_switch_off_the_inventory_tls(tmp_path):
    env = injected_env("redis", {"host": "cache", "password": "r"}, tmp_path)
    found = overlay(env, {"redis_login": {"tls": True, "ca_certs": "/etc/pki/redis-ca.crt"}})[0]
    assert found["redis_login"] == {"login_host": "cache", "login_password": "r", "tls": True,
                                    "ca_certs": "/etc/pki/redis-ca.crt"}


def test_no_credential_attached_leaves_everything_to_the_inventory():
    found, asked = overlay({"PGPASSWORD": "unrelated", "HOME": "/root"}, {"postgres_login": {"login_host": "x"}})
    assert found == {} and asked == []


def test_a_credential_of_another_estate_is_refused_naming_both(tmp_path):
    env = injected_env("s3", {"estate": "vitalstream", "bucket": "b", "access_key": "a", "secret_key": "s"}, tmp_path)
    with pytest.raises(jc.CredentialError, match="for estate 'vitalstream', but this host is in estate "
                                                 "'stream_systems'"):
        overlay(env, estate="stream_systems")
    assert overlay(env, estate="vitalstream")[0]["s3_login"]["bucket"] == "b"
    assert overlay(env, estate=None)[0]["s3_login"]["bucket"] == "b"  # a host without an estate: any


@pytest.mark.parametrize(("name", "value", "message"), [
    ("STREAMOPS_POSTGRES_PORT", "54x2", r"port of the PostgreSQL credential \(STREAMOPS_POSTGRES_PORT\) must be a "
                                        r"whole number, got '54x2'"),
    ("STREAMOPS_POSTGRES_SSLMODE", "verify", r"must be one of disable, .*verify-full, got 'verify'"),
])
def test_a_bad_value_in_the_environment_is_named(name, value, message):
    env = {"STREAMOPS_POSTGRES_CREDENTIAL": "streamops PostgreSQL", name: value}
    with pytest.raises(jc.CredentialError, match=message):
        overlay(env)


def test_a_certificate_file_the_controller_cannot_read_is_named():
    env = {"STREAMOPS_POSTGRES_CREDENTIAL": "streamops PostgreSQL", "STREAMOPS_POSTGRES_CA_CERT": "/runner/env/gone"}
    with pytest.raises(jc.CredentialError, match=r"\(STREAMOPS_POSTGRES_CA_CERT=/runner/env/gone\) cannot be read on "
                                                 "the controller: No such file"):
        overlay(env)


def test_awx_refuses_a_credential_without_its_required_inputs(tmp_path):
    with pytest.raises(HarnessError, match="'password' is required"):
        injected_env("postgres", {"host": "db", "database": "d", "username": "u"}, tmp_path)
    with pytest.raises(HarnessError, match="must be one of"):
        injected_env("postgres", {"host": "db", "database": "d", "username": "u", "password": "p",
                                  "sslmode": "on"}, tmp_path)


def test_unknown_credential_name_lists_the_known_ones():
    with pytest.raises(jc.CredentialError, match="known: postgres, restore_test, redis, s3"):
        jc.credential("mongo")
