"""pg_dr_test against two real PostgreSQL servers (pg_server the source, pg_dr_server the DR target, TLS) and S3.

Every assertion reads what the target server (or the source) holds afterwards, not what the module says.
"""
from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from ansible.module_utils.testing import patch_module_args
from psycopg import sql

from ansible_collections.streamops.maintenance.plugins.module_utils.pg import table_fingerprint
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_dr_test import DR_MARK
from ansible_collections.streamops.maintenance.plugins.module_utils.records import RECORD_KEYS, result_problems
from ansible_collections.streamops.maintenance.plugins.modules import backup_verify, pg_backup, pg_dr_test

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

SUMMARY_KEYS = {"backup_id", "source_server", "target_server", "target_database", "rto_seconds",
                "rto_target_seconds", "rpo_seconds", "rpo_target_seconds", "tables"}
SCHEMA = """
CREATE TABLE patients (id serial PRIMARY KEY, name text NOT NULL, born date, weight double precision);
CREATE TABLE vital_signs (id bigserial PRIMARY KEY, patient_id int REFERENCES patients,
                          recorded_at timestamptz NOT NULL, heart_rate int, spo2 numeric(5, 2), note jsonb);
INSERT INTO patients (name, born, weight)
    SELECT 'patient ' || i, date '1950-01-01' + i, 50 + i / 7.0 FROM generate_series(1, 300) AS i;
INSERT INTO vital_signs (patient_id, recorded_at, heart_rate, spo2, note)
    SELECT 1 + i % 300, timestamptz '2026-11-01 00:00+00' + i * interval '1 minute', 60 + i % 40, 95 + (i % 5) / 3.0,
           jsonb_build_object('n', i) FROM generate_series(1, 3000) AS i;
"""


def run(module, capsys, **args):
    """The module's result, failed or not; every result keeps the record contract (docs/records.md)."""
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        module.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=args.get("_ansible_check_mode", False)) == [], result
    return result.get("failed", False), result


def pg_args(info, dbname):
    return {"login_host": info.host, "login_port": info.port, "login_user": info.user,
            "login_password": info.password, "database": dbname}


def target_args(info, **overrides):
    target = {"login_host": info.host, "login_port": info.port, "login_user": info.user,
              "login_password": info.password}
    if info.ssl:
        target.update(sslmode="verify-full", ca_cert=info.ca_cert)
    return {**target, **overrides}


def databases(info):
    with psycopg.connect(**info.conninfo(), autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def record(result, name, action="verify"):
    return next(r for r in result["records"] if r["name"] == name and r["action"] == action)


def summary(result):
    [found] = [r for r in result["records"] if r["action"] == "dr_test"]
    assert found["name"] == "dr test" and set(found) == set(RECORD_KEYS)
    assert set(found["after"]) == SUMMARY_KEYS
    return found


def drop(info, name):
    with psycopg.connect(**info.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def source(pg_server):
    """The production database (on pg_server, 127.0.0.1): its own, dropped at the end."""
    name = f"vs_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(**pg_server.conninfo(name), autocommit=True) as conn:
        conn.execute(SCHEMA)
    yield name
    drop(pg_server, name)


@pytest.fixture(scope="module")
def backup_set(pg_server, source, tmp_path_factory):
    """One verified set of the source (manifest with row counts and checksums), taken before rows are added."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("dr-backups")
    results = []
    for module, args in ((pg_backup, dict(backup_root=str(root), name="vitalstream", parts=["full"],
                                          critical_tables=["patients", "vital_signs"])),
                         (backup_verify, {})):
        if module is backup_verify:
            args = {"path": results[0]["path"]}
        out = io.StringIO()
        with patch_module_args({**pg_args(pg_server, source), **args}), pytest.raises(SystemExit), \
                contextlib.redirect_stdout(out):
            module.main()
        results.append(json.loads(out.getvalue()))
        assert not results[-1].get("failed"), results[-1]
    directory = Path(results[0]["path"])
    return root, directory, json.loads((directory / "manifest.json").read_text())


def test_dr_test_restores_the_set_onto_the_other_server(pg_server, pg_dr_server, source, backup_set, capsys):
    root, directory, manifest = backup_set
    target_db = f"dr_{uuid.uuid4().hex[:8]}"
    # Rows written to production after the set: a restore of the set must not have them.
    with psycopg.connect(**pg_server.conninfo(source), autocommit=True) as conn:
        conn.execute("INSERT INTO patients (name) VALUES ('admitted after the backup')")
    before = databases(pg_dr_server)
    args = dict(**pg_args(pg_server, source), backup_root=str(root), name="vitalstream",
                target=target_args(pg_dr_server), target_database=target_db, rto_target="10m", rpo_target="1d",
                sql_checks=[{"name": "patients", "sql": "SELECT count(*) FROM patients", "min": 300}])

    failed, planned = run(pg_dr_test, capsys, **args, _ansible_check_mode=True)
    assert not failed and planned["changed"], planned
    assert databases(pg_dr_server) == before  # check mode created nothing
    assert summary(planned)["status"] == "planned"
    assert record(planned, "set")["status"] == "ok" and record(planned, "target")["status"] == "ok"
    assert record(planned, f"{target_db} on {pg_dr_server.host}:{pg_dr_server.port}", "restore")["status"] == "planned"
    planned_rpo = summary(planned)["after"]["rpo_seconds"]
    assert planned_rpo > 0

    time.sleep(1.1)  # the set is older on the real run: its RPO grows with its age
    begun = time.monotonic()
    failed, result = run(pg_dr_test, capsys, **args, keep_restored=True)
    wall = time.monotonic() - begun
    try:
        assert not failed and result["changed"], result
        dr = summary(result)
        assert dr["status"] == "ok", dr
        after = dr["after"]
        assert after["backup_id"] == manifest["backup_id"] == directory.name
        assert after["target_server"] == f"{pg_dr_server.host}:{pg_dr_server.port}"
        assert after["source_server"] == f"{pg_server.host}:{pg_server.port}"
        assert after["target_database"] == target_db
        assert 0 < after["rto_seconds"] <= wall and after["rto_target_seconds"] == 600
        assert after["rpo_seconds"] >= planned_rpo + 1 and after["rpo_target_seconds"] == 86400
        assert {t["table"] for t in after["tables"]} == {"public.patients", "public.vital_signs"}
        assert all(t["ok"] for t in after["tables"])
        assert record(result, "target")["after"]["rule"] is None
        assert record(result, "sql patients")["status"] == "ok"
        # What the DR server holds: exactly the set's rows and checksums, nothing written after it.
        with psycopg.connect(**pg_dr_server.conninfo(), autocommit=True) as conn:
            comment = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                   "WHERE datname = %s", (target_db,)).fetchone()[0]
        assert comment == DR_MARK
        with psycopg.connect(**pg_dr_server.conninfo(target_db)) as conn:
            for table in ("patients", "vital_signs"):
                count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
                assert count == manifest["row_counts"][f"public.{table}"]
                assert table_fingerprint(conn, "public", table) == (
                    count, manifest["table_checksums"][f"public.{table}"])
            assert conn.execute("SELECT count(*) FROM patients WHERE name = 'admitted after the backup'"
                                ).fetchone()[0] == 0
        with psycopg.connect(**pg_server.conninfo(source)) as conn:
            assert conn.execute("SELECT count(*) FROM patients").fetchone()[0] == \
                manifest["row_counts"]["public.patients"] + 1
    finally:
        drop(pg_dr_server, target_db)


def test_the_target_database_is_dropped_after_a_passed_test(pg_server, pg_dr_server, source, backup_set, capsys):
    root = backup_set[0]
    target_db = f"dr_{uuid.uuid4().hex[:8]}"
    failed, result = run(pg_dr_test, capsys, **pg_args(pg_server, source), backup_root=str(root), name="vitalstream",
                         target=target_args(pg_dr_server), target_database=target_db)
    assert not failed and summary(result)["status"] == "ok", result
    assert record(result, f"{target_db} on {pg_dr_server.host}:{pg_dr_server.port}", "drop_database")["status"] == "done"
    assert target_db not in databases(pg_dr_server)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_the_source_server_is_refused_by_host_and_port(pg_server, source, backup_set, capsys, host):
    root = backup_set[0]
    before = databases(pg_server)
    failed, result = run(pg_dr_test, capsys, **pg_args(pg_server, source), backup_root=str(root), name="vitalstream",
                         target=target_args(pg_server, login_host=host), target_database="refused_dr")
    assert failed
    target = record(result, "target")
    assert target["status"] == "failed" and target["after"]["rule"] == "host and port", target
    assert "is the source server (rule: same host and port" in result["msg"]
    assert summary(result)["status"] == "failed"
    assert databases(pg_server) == before  # nothing created on it


class TcpForwarder:
    """Another port of the same server: a byte-for-byte forwarder on 127.0.0.1 (a connection pooler's place)."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                client = self.listener.accept()[0]
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            for one, other in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(one, other), daemon=True).start()

    @staticmethod
    def pipe(one: socket.socket, other: socket.socket) -> None:
        try:
            while data := one.recv(65536):
                other.sendall(data)
        except OSError:
            pass
        finally:
            for end in (one, other):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


def test_another_address_of_the_source_is_refused_by_system_identifier(pg_server, source, backup_set, capsys):
    root, manifest = backup_set[0], backup_set[2]
    forwarder = TcpForwarder(pg_server.port)
    before = databases(pg_server)
    try:
        failed, result = run(pg_dr_test, capsys, **pg_args(pg_server, source), backup_root=str(root), name="vitalstream",
                             target=target_args(pg_server, login_port=forwarder.port), target_database="refused_dr")
    finally:
        forwarder.close()
    assert failed
    target = record(result, "target")
    assert target["status"] == "failed" and target["after"]["rule"] == "system identifier", target
    assert manifest["postgres"]["system_identifier"] in target["detail"]
    assert databases(pg_server) == before


def test_a_damaged_set_is_refused_before_anything_is_created(pg_server, pg_dr_server, source, backup_set,
                                                             tmp_path, capsys):
    directory = backup_set[1]
    root = tmp_path / "backups"
    copy = root / directory.name
    shutil.copytree(directory, copy)
    dump = copy / "full.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    before = databases(pg_dr_server)
    failed, result = run(pg_dr_test, capsys, **pg_args(pg_server, source), backup_root=str(root), name="vitalstream",
                         target=target_args(pg_dr_server), target_database="damaged_dr")
    assert failed
    found = record(result, "set")
    assert found["status"] == "failed" and "is damaged" in found["detail"] and "checksums" in found["detail"], found
    assert not [r for r in result["records"] if r["action"] == "restore"]
    assert databases(pg_dr_server) == before


def test_an_existing_database_on_the_target_is_refused_and_untouched(pg_server, pg_dr_server, source, backup_set,
                                                                     capsys):
    root = backup_set[0]
    name = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**pg_dr_server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(**pg_dr_server.conninfo(name), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id int); INSERT INTO kept VALUES (42)")
        for check_mode in (True, False):
            failed, result = run(pg_dr_test, capsys, **pg_args(pg_server, source), backup_root=str(root), name="vitalstream",
                                 target=target_args(pg_dr_server), target_database=name,
                                 _ansible_check_mode=check_mode)
            assert failed
            target = record(result, "target")
            assert target["status"] == "failed" and f"database {name!r} already exists" in target["detail"]
        with psycopg.connect(**pg_dr_server.conninfo(name)) as conn:
            assert conn.execute("SELECT array_agg(id) FROM kept").fetchone()[0] == [42]
    finally:
        drop(pg_dr_server, name)


def test_rto_and_rpo_over_their_targets_are_a_breach(pg_server, pg_dr_server, source, backup_set, capsys):
    root = backup_set[0]
    failed, result = run(pg_dr_test, capsys, **pg_args(pg_server, source), backup_root=str(root), name="vitalstream",
                         target=target_args(pg_dr_server), target_database=f"dr_{uuid.uuid4().hex[:8]}",
                         rto_target="PT0.001S", rpo_target="PT0.001S")
    assert not failed, result  # a breach is reported, the task does not fail
    dr = summary(result)
    assert dr["status"] == "breach" and result["status"] == "breach"
    assert dr["after"]["rto_target_seconds"] == dr["after"]["rpo_target_seconds"] == 0.001
    assert record(result, "rto")["status"] == record(result, "rpo")["status"] == "breach"
    assert dr["after"]["target_database"] not in databases(pg_dr_server)


def test_an_unreadable_target_identity_is_not_proven(pg_server, pg_dr_server, source, backup_set, capsys):
    """A DR role that may not call pg_control_system(): tested (host and port differ), never reported clean."""
    root = backup_set[0]
    role, password = f"dr_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    with psycopg.connect(**pg_dr_server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
        conn.execute("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC")
    try:
        failed, result = run(pg_dr_test, capsys, **pg_args(pg_server, source), backup_root=str(root), name="vitalstream",
                             target=target_args(pg_dr_server, login_user=role, login_password=password),
                             target_database=f"dr_{uuid.uuid4().hex[:8]}")
    finally:
        with psycopg.connect(**pg_dr_server.conninfo(), autocommit=True) as conn:
            conn.execute("GRANT EXECUTE ON FUNCTION pg_control_system() TO PUBLIC")
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    assert not failed, result
    target = record(result, "target")
    assert target["status"] == "unknown" and "system_identifier cannot be read" in target["detail"], target
    assert summary(result)["status"] == "unknown"
    assert record(result, "row counts")["status"] == "ok"
    assert summary(result)["after"]["target_database"] not in databases(pg_dr_server)


@pytest.mark.s3
def test_the_set_comes_from_s3_when_the_local_disk_is_gone(pg_server, pg_dr_server, source, s3_server, s3_bucket,
                                                           tmp_path, capsys):
    s3 = {"bucket": s3_bucket, "prefix": "database", "endpoint_url": s3_server.endpoint_url,
          "access_key": s3_server.access_key, "secret_key": s3_server.secret_key, "region": s3_server.region}
    root = tmp_path / "lost-disk"
    failed, backup = run(pg_backup, capsys, **pg_args(pg_server, source), backup_root=str(root), name="vitalstream",
                         parts=["full"], critical_tables=["patients", "vital_signs"], s3=s3)
    assert not failed, backup
    failed, verified = run(backup_verify, capsys, **pg_args(pg_server, source), path=backup["path"], s3=s3)
    assert not failed and verified["verified"], verified
    shutil.rmtree(root)  # the disaster
    target_db = f"dr_{uuid.uuid4().hex[:8]}"
    for named in ({"backup_set": backup["backup_id"]}, {"name": "vitalstream"}):
        failed, result = run(pg_dr_test, capsys, **pg_args(pg_server, source), s3=s3, **named,
                             target=target_args(pg_dr_server), target_database=target_db, keep_restored=True)
        try:
            assert not failed and summary(result)["status"] == "ok", result
            assert summary(result)["after"]["backup_id"] == backup["backup_id"]
            assert record(result, "set")["detail"].startswith(f"{backup['backup_id']} from s3://{s3_bucket}/database/")
            with psycopg.connect(**pg_dr_server.conninfo(target_db)) as conn:
                assert conn.execute("SELECT count(*) FROM vital_signs").fetchone()[0] == \
                    backup["manifest"]["row_counts"]["public.vital_signs"]
        finally:
            drop(pg_dr_server, target_db)


def test_bad_input_is_named_and_nothing_is_created(pg_server, pg_dr_server, source, backup_set, capsys):
    root = backup_set[0]
    before = databases(pg_dr_server)
    for bad, words in ((dict(rto_target="soon"), "rto_target 'soon' is not a duration"),
                       (dict(target_database="bad name;"), "target_database 'bad name;' is not a plain identifier"),
                       (dict(target={"login_user": "x"}), "target names the DR server explicitly"),
                       (dict(backup_set="../etc"), "'../etc' is not a set id")):
        args = dict(**pg_args(pg_server, source), backup_root=str(root), name="vitalstream",
                    target=target_args(pg_dr_server))
        args.update(bad)
        failed, result = run(pg_dr_test, capsys, **args)
        assert failed and words in result["msg"], (bad, result["msg"])
    assert databases(pg_dr_server) == before


def test_a_set_without_data_is_refused(pg_server, pg_dr_server, source, tmp_path, capsys):
    """A schema-only set restores empty tables: no DR test of anything."""
    root = tmp_path / "schema-only"
    failed, backup = run(pg_backup, capsys, **pg_args(pg_server, source), backup_root=str(root), name="vitalstream",
                         parts=["schema"])
    assert not failed, backup
    before = databases(pg_dr_server)
    failed, result = run(pg_dr_test, capsys, **pg_args(pg_server, source), backup_root=str(root), name="vitalstream",
                         backup_set=backup["backup_id"], target=target_args(pg_dr_server))
    assert failed
    assert "holds no PostgreSQL dump to restore onto another server" in record(result, "set")["detail"]
    assert databases(pg_dr_server) == before
