"""Campaign cases: PostgreSQL stopped (fast shutdown), a backend terminated, statement_timeout reached.

Every fault hits a server of this module's own (lab/harness PostgresServer) at a real point of the work,
seen in pg_stat_activity / pg_stat_progress_*; the server comes back (pg_ctl start) and the run is tried again.
Checked against what the server and the disk really hold: the table's rows and checksum
(pg.table_fingerprint), invalid indexes, scratch databases, set directories, the verified mark.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from psycopg import sql

from ansible_collections.streamops.maintenance.plugins.modules import backup_verify, pg_backup, pg_maintenance
from lab.harness.postgres import PostgresServer

from .faults import (
    Injector,
    backend_running,
    databases,
    fingerprints,
    invalid_indexes,
    pg_args,
    pg_connect,
    pg_start,
    pg_stop_fast,
    progress_phase,
    run_module,
    set_files_digest,
    set_leftovers,
)

ALWAYS = [{"name": "always", "rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "23h59m"}]
INSIDE = "2026-11-22T02:30:00Z"
TABLE = "public.trades"
SCRATCH = "verify_scratch"
# A statement_timeout above what measuring the tables takes (a loaded machine included), below the work's own.
TIMEOUT_MS = 250
# Bloat estimates of a copied database are the template's; 0 selects the named table whatever they say.
DISRUPTIVE = {"windows": ALWAYS, "now": INSIDE, "min_bloat_ratio": 0, "lock_timeout": 30000}


@pytest.fixture(scope="module")
def server():
    """A cluster of this module's own: its tests stop it (fast shutdown) and start it again."""
    instance = PostgresServer()
    instance.start()
    try:
        yield instance
    finally:
        pg_start(instance)
        instance.stop()


@pytest.fixture(scope="module")
def template(server):
    """300k rows, a quarter deleted and the rest updated (dead tuples), two indexes: VACUUM FULL, a dump and a
    restore of it each take a measurable fraction of a second. Built once; each test gets a copy."""
    name = f"tpl_{uuid.uuid4().hex[:8]}"
    with pg_connect(server.info.conninfo()) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with pg_connect(server.info.conninfo(name)) as conn:
        conn.execute("CREATE TABLE trades (id bigserial PRIMARY KEY, account int, amount numeric, note text) "
                     "WITH (autovacuum_enabled = false)")
        conn.execute("INSERT INTO trades (account, amount, note) "
                     "SELECT g % 97, g, repeat('x', 100) FROM generate_series(1, 300000) g")
        conn.execute("CREATE INDEX trades_account ON trades (account)")
        conn.execute("UPDATE trades SET amount = amount + 1")
        conn.execute("DELETE FROM trades WHERE id % 4 = 0")
        conn.execute("ANALYZE trades")
    return name


@pytest.fixture
def database(server, template):
    """A copy of the template for one test; the server is running again after it, whatever the test did."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    with pg_connect(server.info.conninfo()) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    try:
        yield server.info.conninfo(name)
    finally:
        pg_start(server)
        with pg_connect(server.info.conninfo()) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(SCRATCH)))


def terminate(conninfo):
    def inject(pid):
        with pg_connect(conninfo) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return inject


def vacuum_full_running(conninfo):
    return lambda: progress_phase(conninfo, "cluster", "%heap%") and backend_running(
        conninfo, "VACUUM (FULL%", database=conninfo["dbname"])


def dump_running(conninfo):
    return lambda: backend_running(conninfo, "COPY public.trades %TO stdout%", database=conninfo["dbname"])


# --------------------------------------------------------------------------- VACUUM FULL


def vacuum_full_case(campaign, server, database, capsys, *, fault_class, name, inject):
    with campaign.case(fault_class, name) as case:
        before = fingerprints(database, [TABLE])
        with Injector(vacuum_full_running(database), inject, what=f"{name}") as injector:
            failed, result = run_module(pg_maintenance, capsys, **pg_args(database), operation="vacuum_full",
                                        tables=["trades"], **DISRUPTIVE)
        injector.require()
        pg_start(server)
        case.check_error(result, names=["vacuum_full", TABLE, "rolled back", "0 table(s) done"])
        record = next(r for r in result["records"] if r["name"] == TABLE)
        case.check_no_partial([] if record["status"] == "failed" else [f"{TABLE} recorded {record['status']}"],
                              "the interrupted table's record")
        case.check_data(fingerprints(database, [TABLE]) == before, f"rows and checksum of {TABLE}")
        case.check_no_partial(invalid_indexes(database), "invalid indexes")
        failed, again = run_module(pg_maintenance, capsys, **pg_args(database), operation="vacuum_full",
                                   tables=["trades"], **DISRUPTIVE)
        done = [r["status"] for r in again["records"] if r["name"] == TABLE] == ["done"]
        case.check_converged(not failed and done, again["msg"])
        case.check_data(fingerprints(database, [TABLE]) == before, f"rows and checksum of {TABLE} after the re-run")


def test_server_stopped_mid_vacuum_full(campaign, server, database, capsys):
    vacuum_full_case(campaign, server, database, capsys, fault_class="postgres_stopped", name="mid-VACUUM FULL",
                     inject=lambda _pid: pg_stop_fast(server))


def test_backend_terminated_mid_vacuum_full(campaign, server, database, capsys):
    vacuum_full_case(campaign, server, database, capsys, fault_class="postgres_backend",
                     name="pg_terminate_backend mid-VACUUM FULL", inject=terminate(server.info.conninfo()))


# --------------------------------------------------------------------------- REINDEX CONCURRENTLY


def reindex_stopped_in_phase(server, database, capsys, phase: str, *, repeatable_read: bool, what: str) -> dict:
    """pg_maintenance's REINDEX CONCURRENTLY of trades, held in ``phase`` by an open reader, the server stopped
    fast there, then started again: the module's result."""
    reader = pg_connect(database)
    reader.autocommit = False
    if repeatable_read:  # a snapshot, not only a lock
        reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    reader.execute("SELECT count(*) FROM trades WHERE id < 10")
    try:
        with Injector(lambda: progress_phase(database, "create_index", phase),
                      lambda _found: pg_stop_fast(server), what=what) as injector:
            _failed, result = run_module(pg_maintenance, capsys, **pg_args(database), operation="reindex",
                                         tables=["trades"], **DISRUPTIVE)
        injector.require()
    finally:
        reader.close()
    pg_start(server)
    return result


def test_server_stopped_mid_reindex_concurrently(campaign, server, database, capsys):
    with campaign.case("postgres_stopped", "mid-REINDEX CONCURRENTLY") as case:
        before = fingerprints(database, [TABLE])
        # An open snapshot holds REINDEX CONCURRENTLY in 'waiting for old snapshots', its new indexes built
        # but not yet valid: the point where an interruption leaves *_ccnew behind.
        result = reindex_stopped_in_phase(server, database, capsys, "waiting for old snapshots",
                                          repeatable_read=True, what="fast shutdown mid-REINDEX CONCURRENTLY")
        case.check_error(result, names=["reindex", TABLE, "0 table(s) done"])
        left_by_postgres = invalid_indexes(database)
        case.check_data(fingerprints(database, [TABLE]) == before, f"rows and checksum of {TABLE}")
        failed, again = run_module(pg_maintenance, capsys, **pg_args(database), operation="reindex",
                                   tables=["trades"], **DISRUPTIVE)
        record = next(r for r in again["records"] if r["name"] == TABLE)
        # PostgreSQL leaves the half-built *_ccnew indexes (invalid); the re-run must drop them and reindex.
        case.check_no_partial(invalid_indexes(database), f"invalid indexes after the re-run (PostgreSQL left "
                                                         f"{left_by_postgres})")
        case.check_converged(not failed and record["status"] == "done", again["msg"])
        if left_by_postgres:
            case.check_converged(all(name in record["detail"] for name in left_by_postgres),
                                 f"the re-run's record names the leftovers it dropped: {record['detail']}")
        case.check_data(fingerprints(database, [TABLE]) == before, f"rows and checksum of {TABLE} after the re-run")


def test_server_stopped_mid_reindex_concurrently_after_its_swap(campaign, server, database, capsys):
    with campaign.case("postgres_stopped", "mid-REINDEX CONCURRENTLY, after its swap") as case:
        before = fingerprints(database, [TABLE])
        # A READ COMMITTED reader keeps its lock but no snapshot: REINDEX CONCURRENTLY builds, swaps, then waits
        # in 'waiting for readers before marking dead': the new indexes in place, the old ones *_ccold, invalid.
        result = reindex_stopped_in_phase(server, database, capsys, "waiting for readers before marking dead",
                                          repeatable_read=False, what="fast shutdown after the swap")
        case.check_error(result, names=["reindex", TABLE, "0 table(s) done"])
        left_by_postgres = invalid_indexes(database)
        case.check_data(fingerprints(database, [TABLE]) == before, f"rows and checksum of {TABLE}")
        # The default min_bloat_ratio, as a scheduled run has it: the old, bloated *_ccold keeps the table chosen.
        failed, again = run_module(pg_maintenance, capsys, **pg_args(database), operation="reindex",
                                   tables=["trades"], **{**DISRUPTIVE, "min_bloat_ratio": 0.3})
        record = next(r for r in again["records"] if r["name"] == TABLE)
        case.check_no_partial(invalid_indexes(database), f"invalid indexes after the re-run (PostgreSQL left "
                                                         f"{left_by_postgres})")
        case.check_converged(not failed and record["status"] == "done", again["msg"])
        case.check_converged(all(name in record["detail"] for name in left_by_postgres),
                             f"the re-run's record names the leftovers it dropped: {record['detail']}")
        case.check_data(fingerprints(database, [TABLE]) == before, f"rows and checksum of {TABLE} after the re-run")


def test_statement_timeout_mid_vacuum_full(campaign, server, database, capsys):
    with campaign.case("postgres_timeout", "statement_timeout mid-VACUUM FULL of a big table") as case:
        before = fingerprints(database, [TABLE])
        # The copy's statistics look never analyzed: the refresh ANALYZE would meet the timeout first.
        with pg_connect(database) as conn:
            conn.execute("ANALYZE trades")
        # Above what measuring the tables takes on a loaded machine, below the VACUUM FULL's half second.
        failed, result = run_module(pg_maintenance, capsys, **pg_args(database), operation="vacuum_full",
                                    tables=["trades"], **{**DISRUPTIVE, "statement_timeout": TIMEOUT_MS})
        case.check_error(result, names=[f"statement_timeout ({TIMEOUT_MS} ms)", TABLE, "0 table(s) done"])
        case.check_data(fingerprints(database, [TABLE]) == before, f"rows and checksum of {TABLE}")
        case.check_no_partial(invalid_indexes(database), "invalid indexes")
        failed, again = run_module(pg_maintenance, capsys, **pg_args(database), operation="vacuum_full",
                                   tables=["trades"], **DISRUPTIVE)
        done = [r["status"] for r in again["records"] if r["name"] == TABLE] == ["done"]
        case.check_converged(not failed and done, again["msg"])


def test_statement_timeout_in_the_refresh_analyze(campaign, server, database, capsys):
    with campaign.case("postgres_timeout", "statement_timeout in the ANALYZE before a VACUUM FULL") as case:
        before = fingerprints(database, [TABLE])
        # The copy's statistics look never analyzed: the module ANALYZEs first, and meets the timeout there. How
        # long an ANALYZE takes depends on the machine (one CI run finished it within the timeout, and the VACUUM
        # FULL met it instead), so another session holds the lock ANALYZE needs (SHARE UPDATE EXCLUSIVE; reads
        # still pass): the wait counts towards statement_timeout, well below lock_timeout.
        with pg_connect(database) as holder, holder.transaction():
            holder.execute("LOCK TABLE trades IN SHARE UPDATE EXCLUSIVE MODE")
            failed, result = run_module(pg_maintenance, capsys, **pg_args(database), operation="vacuum_full",
                                        tables=["trades"], **{**DISRUPTIVE, "statement_timeout": TIMEOUT_MS})
        case.check_error(result, names=["ANALYZE", f"statement_timeout ({TIMEOUT_MS} ms)", TABLE, "vacuum_full not run"])
        case.check_data(fingerprints(database, [TABLE]) == before, f"rows and checksum of {TABLE}")
        failed, again = run_module(pg_maintenance, capsys, **pg_args(database), operation="vacuum_full",
                                   tables=["trades"], **DISRUPTIVE)
        done = [r["status"] for r in again["records"] if r["name"] == TABLE] == ["done"]
        case.check_converged(not failed and done, again["msg"])


def test_statement_timeout_while_measuring_the_tables(campaign, server, database, capsys):
    with campaign.case("postgres_timeout", "statement_timeout while measuring the tables (1 ms)") as case:
        before = fingerprints(database, [TABLE])
        # 1 ms: the catalog and statistics queries (or, should they be quicker, the refresh ANALYZE) meet it.
        failed, result = run_module(pg_maintenance, capsys, **pg_args(database), operation="vacuum_full",
                                    tables=["trades"], **{**DISRUPTIVE, "statement_timeout": 1})
        case.check_error(result, names=["vacuum_full", "statement_timeout (1 ms)"])
        case.check_data(fingerprints(database, [TABLE]) == before, f"rows and checksum of {TABLE}")
        failed, again = run_module(pg_maintenance, capsys, **pg_args(database), operation="vacuum_full",
                                   tables=["trades"], **DISRUPTIVE)
        done = [r["status"] for r in again["records"] if r["name"] == TABLE] == ["done"]
        case.check_converged(not failed and done, again["msg"])


# --------------------------------------------------------------------------- pg_dump


def verified_set(database, root, capsys):
    """A first set of the database, verified (its mark written): the newest verified set a fault must keep."""
    failed, first = run_module(pg_backup, capsys, **pg_args(database), backup_root=str(root), name="trading",
                               compress_level=0)
    assert not failed, first["msg"]
    failed, verified = run_module(backup_verify, capsys, path=first["path"])
    assert not failed and verified["verified"], verified["msg"]
    # Set ids are per second: the next run must not collide with this one.
    time.sleep(max(0.0, 1.05 - (time.time() % 1)))
    return first["backup_id"], Path(first["path"])


def still_verifies(root, set_id, capsys):
    """The newest complete set is still ``set_id`` and backup_verify verifies it (without touching its mark)."""
    failed, result = run_module(backup_verify, capsys, backup_root=str(root), name="trading", mark=False)
    return not failed and result["verified"] and result["backup_id"] == set_id


def dump_case(campaign, server, database, tmp_path, capsys, *, fault_class, name, inject):
    root = tmp_path / "backups"
    with campaign.case(fault_class, name) as case:
        before = fingerprints(database, [TABLE])
        earlier_id, earlier = verified_set(database, root, capsys)
        earlier_files = set_files_digest(earlier)
        with Injector(dump_running(database), inject, what=name) as injector:
            failed, result = run_module(pg_backup, capsys, **pg_args(database), backup_root=str(root), name="trading",
                                        compress_level=0)
        injector.require()
        pg_start(server)
        case.check_error(result, names=["pg_dump full", "partial files were removed", "earlier backups untouched"])
        case.check_no_partial(set_leftovers(root, except_ids=(earlier_id,)), "in the backup root")
        case.check_data(fingerprints(database, [TABLE]) == before, f"rows and checksum of {TABLE}")
        case.check_data(set_files_digest(earlier) == earlier_files, f"the earlier verified set {earlier_id}, byte for byte")
        case.check_data(still_verifies(root, earlier_id, capsys), f"{earlier_id} is the newest set and verifies")
        failed, again = run_module(pg_backup, capsys, **pg_args(database), backup_root=str(root), name="trading",
                                   compress_level=0)
        case.check_converged(not failed, again["msg"])
        failed, verified = run_module(backup_verify, capsys, path=again.get("path") or str(root))
        case.check_converged(not failed and verified["verified"], verified["msg"])


def test_server_stopped_mid_dump(campaign, server, database, tmp_path, capsys):
    dump_case(campaign, server, database, tmp_path, capsys, fault_class="postgres_stopped", name="mid-dump",
              inject=lambda _pid: pg_stop_fast(server))


def test_backend_terminated_mid_dump(campaign, server, database, tmp_path, capsys):
    dump_case(campaign, server, database, tmp_path, capsys, fault_class="postgres_backend",
              name="pg_terminate_backend of pg_dump's session mid-dump", inject=terminate(server.info.conninfo()))


# --------------------------------------------------------------------------- restore test


def test_server_stopped_mid_restore_test(campaign, server, database, tmp_path, capsys):
    root = tmp_path / "backups"
    admin = server.info.conninfo()
    with campaign.case("postgres_stopped", "mid-restore-test (backup_verify)") as case:
        failed, backup = run_module(pg_backup, capsys, **pg_args(database), backup_root=str(root), name="trading",
                                    critical_tables=["trades"], compress_level=0)
        assert not failed, backup["msg"]
        directory = Path(backup["path"])
        verify_args = {**pg_args(admin), "path": str(directory), "restore_test": True, "scratch_database": SCRATCH}
        with Injector(lambda: backend_running(admin, "COPY public.trades %FROM stdin%", database=SCRATCH),
                      lambda _pid: pg_stop_fast(server), what="fast shutdown mid-restore-test") as injector:
            failed, result = run_module(backup_verify, capsys, **verify_args)
        injector.require()
        pg_start(server)
        case.check_error(result, names=["NOT verified", "restore", SCRATCH, "the next restore test drops it"])
        case.check_no_partial(["verified.json written by the interrupted run"]
                              if (directory / "verified.json").exists() or result.get("verified") else [],
                              "the set's mark")
        failed, again = run_module(backup_verify, capsys, **verify_args)
        case.check_converged(not failed and again["verified"] and (directory / "verified.json").exists(), again["msg"])
        case.check_no_partial([name for name in databases(admin) if name == SCRATCH],
                              "scratch database after restart and re-run")
        case.check_data(fingerprints(database, [TABLE]) == {TABLE: tuple(
            [backup["manifest"]["row_counts"][TABLE], backup["manifest"]["table_checksums"][TABLE]])},
            f"{TABLE} as the set's manifest recorded it")
