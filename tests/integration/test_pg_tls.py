"""The lab's TLS-only PostgreSQL (PostgresServer(ssl=True)), reached the way the modules and pg_dump reach it.

One server for the module, seeded by lab/seed.py and described by
lab/estate.postgres_facts exactly as `python -m lab up` does; the connection
options are the ones the lab inventory gives a module (sslmode, ca_cert).
"""
from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import pg, pg_backup
from lab import estate, seed
from lab.harness.postgres import SERVER_USER, PostgresServer, postgres_bindir
from tests.integration import estate_state

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture(scope="module")
def lab_postgres() -> Iterator[dict]:
    """lab_services.postgres of a TLS-only server seeded with both estates."""
    server = PostgresServer(ssl=True)
    info = server.start()
    try:
        yield estate.postgres_facts(info, seed.seed_postgres(info))
    finally:
        server.stop()


def stream_params(facts: dict, **changes) -> dict:
    """The module options the lab inventory gives a Stream Systems task."""
    user = facts["estates"]["stream_systems"]
    params = {"login_host": facts["host"], "login_port": facts["port"], "login_user": user["user"],
              "login_password": user["password"], "database": user["database"], "sslmode": facts["sslmode"],
              "ca_cert": facts["ca_cert"], "connect_timeout": 10}
    params.update(changes)
    return params


def target(facts: dict, host: str | None = None) -> str:
    return f"stream_user@{host or facts['host']}:{facts['port']}/streamsystems"


def test_the_lab_server_is_tls_only_with_its_own_ca(lab_postgres):
    assert lab_postgres["sslmode"] == "verify-full"
    ca, wrong = Path(lab_postgres["ca_cert"]), Path(lab_postgres["wrong_ca_cert"])
    assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert wrong.read_text().startswith("-----BEGIN CERTIFICATE-----") and wrong.read_bytes() != ca.read_bytes()
    admin = stream_params(lab_postgres, login_user=lab_postgres["admin_user"],
                          login_password=lab_postgres["admin_password"], database="postgres")
    with pg.connect(pg.conninfo_from_params(admin)) as conn:
        # The rules the server loaded: TCP only as hostssl with a password, trust only on the socket.
        rules = conn.execute("SELECT type, auth_method, error FROM pg_hba_file_rules").fetchall()
        key = Path(conn.execute("SHOW ssl_key_file").fetchone()[0])
    assert {rule[0] for rule in rules} == {"local", "hostssl"}
    assert {rule[1] for rule in rules if rule[0] == "hostssl"} == {"scram-sha-256"}
    assert [rule[2] for rule in rules if rule[2]] == []
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    if os.geteuid() == 0:
        assert key.owner() == SERVER_USER


def test_verify_full_with_ca_cert_connects_encrypted(lab_postgres):
    kwargs = pg.conninfo_from_params(stream_params(lab_postgres))
    with pg.connect(kwargs) as conn:
        assert conn.execute("SHOW ssl").fetchone()[0] == "on"
        encrypted, version = conn.execute(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert encrypted is True and version.startswith("TLSv1.")
        assert conn.execute("SELECT count(*) FROM trades").fetchone()[0] == 200000


def test_localhost_is_a_name_the_certificate_carries(lab_postgres):
    with pg.connect(pg.conninfo_from_params(stream_params(lab_postgres, login_host="localhost"))) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0] is True


def test_estate_state_reads_the_tls_server(lab_postgres):
    state = estate_state.postgres_state({"postgres": lab_postgres})
    assert {"streamsystems", "vitalstream"} <= set(state["databases"])
    assert "trades" in [relation[0] for relation in state["stream_systems"]["relations"]]
    assert estate_state.dead_tuples({"postgres": lab_postgres}, "stream_systems", "positions") > 0


def test_a_plain_connection_is_refused_with_the_tls_only_message(lab_postgres):
    params = stream_params(lab_postgres, sslmode="disable", ca_cert=None)
    with pytest.raises(pg.PgError) as failed:
        pg.connect(pg.conninfo_from_params(params))
    message = failed.value.msg
    assert message.startswith(f"cannot connect to PostgreSQL {target(lab_postgres)}: the server accepts only TLS "
                              "connections: set sslmode (require, verify-ca or verify-full): ")
    assert "no pg_hba.conf entry" in message and "no encryption" in message
    assert params["login_password"] not in message


def test_the_wrong_ca_does_not_verify_and_the_message_names_the_host(lab_postgres):
    params = stream_params(lab_postgres, ca_cert=lab_postgres["wrong_ca_cert"])
    with pytest.raises(pg.PgError) as failed:
        pg.connect(pg.conninfo_from_params(params))
    message = failed.value.msg
    assert message.startswith(f"cannot connect to PostgreSQL {target(lab_postgres)}: the server's TLS certificate "
                              f"did not verify against ca_cert {lab_postgres['wrong_ca_cert']} (sslmode verify-full): ")
    assert message.endswith("certificate verify failed")
    assert params["login_password"] not in message


def test_a_missing_ca_and_a_host_the_certificate_does_not_carry_say_so(lab_postgres, tmp_path):
    missing = str(tmp_path / "absent-ca.crt")
    with pytest.raises(pg.PgError) as failed:
        pg.connect(pg.conninfo_from_params(stream_params(lab_postgres, ca_cert=missing)))
    assert failed.value.msg.startswith(f"cannot connect to PostgreSQL {target(lab_postgres)}: ca_cert {missing} "
                                       "does not exist: sslmode verify-full verifies")
    # A name the certificate does not carry, on the server's address (hostaddr skips the lookup).
    kwargs = pg.conninfo_from_params(stream_params(lab_postgres, login_host="db.example.invalid")) | {
        "hostaddr": lab_postgres["host"]}
    with pytest.raises(pg.PgError) as failed:
        pg.connect(kwargs)
    assert failed.value.msg.startswith(f"cannot connect to PostgreSQL {target(lab_postgres, 'db.example.invalid')}: "
                                       "the server's TLS certificate is not for host db.example.invalid")


def pg_dump_schema(kwargs: dict) -> subprocess.CompletedProcess:
    """pg_dump --schema-only with the connection in the environment pg_backup gives its children."""
    return subprocess.run([str(postgres_bindir() / "pg_dump"), "--schema-only"],  # noqa: S603
                          env=pg_backup.libpq_env(kwargs), capture_output=True, text=True, timeout=120, check=False)


def test_pg_dump_through_libpq_env_verifies_the_server(lab_postgres):
    kwargs = pg.conninfo_from_params(stream_params(lab_postgres))
    dumped = pg_dump_schema(kwargs)
    assert dumped.returncode == 0, dumped.stderr
    assert "CREATE TABLE public.trades" in dumped.stdout
    assert kwargs["password"] not in dumped.stdout + dumped.stderr


def test_pg_dump_with_the_wrong_ca_fails_with_the_did_not_verify_message(lab_postgres):
    kwargs = pg.conninfo_from_params(stream_params(lab_postgres, ca_cert=lab_postgres["wrong_ca_cert"]))
    dumped = pg_dump_schema(kwargs)
    assert dumped.returncode != 0 and dumped.stdout == ""
    assert "certificate verify failed" in dumped.stderr
    message = pg.connect_failure_message(kwargs, dumped.stderr)
    assert message == (f"cannot connect to PostgreSQL {target(lab_postgres)}: the server's TLS certificate did not "
                       f"verify against ca_cert {lab_postgres['wrong_ca_cert']} (sslmode verify-full): "
                       f"{dumped.stderr.strip().splitlines()[0]}")
