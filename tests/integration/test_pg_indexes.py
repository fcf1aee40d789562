"""pg_maintenance create_indexes against the harness's real PostgreSQL 15, asserted from the catalog afterwards."""
from __future__ import annotations

import json
import threading

import psycopg
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import pg_maintenance
from lab.harness.base import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

NEVER_NOW = [{"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h"}]
OUTSIDE = "2026-11-24T15:00:00Z"   # a Tuesday afternoon
INSIDE = "2026-11-22T02:30:00Z"    # a Sunday, 02:30 UTC
BY_CLIENT = {"name": "idx_trades_created_at_client_id", "table": "trades", "columns": ["created_at", "client_id"]}
OPEN_BUYS = {"name": "idx_trades_open_buys", "table": "public.trades", "expression": "lower(instrument), qty DESC",
             "where": "side = 'B' AND qty % 2 = 0"}
BY_QTY = {"name": "idx_trades_qty", "table": "trades", "columns": ["qty"]}


def run_module(conninfo, capsys, **args):
    """(failed, result) of the module's main() as Ansible runs it; every result keeps the record shape."""
    module_args = {"login_host": conninfo["host"], "login_port": conninfo["port"],
                   "login_user": conninfo["user"], "login_password": conninfo["password"],
                   "database": conninfo["dbname"], "operation": "create_indexes", **args}
    with patch_module_args(module_args), pytest.raises(SystemExit) as exited:
        pg_maintenance.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=args.get("_ansible_check_mode", False)) == []
    return result.get("failed", False), result


def connect(conninfo):
    return psycopg.connect(**conninfo, autocommit=True)


def make_trades(conn):
    conn.execute("CREATE TABLE trades (id bigserial PRIMARY KEY, client_id int, instrument text, side char(1), "
                 "qty int, created_at timestamptz DEFAULT now())")
    conn.execute("INSERT INTO trades (client_id, instrument, side, qty) "
                 "SELECT g % 50, 'INSTR' || (g % 20), CASE WHEN g % 2 = 0 THEN 'B' ELSE 'S' END, g "
                 "FROM generate_series(1, 2000) g")
    conn.execute("CREATE TABLE other (x int)")


def index_in_catalog(conn, name):
    """(definition, valid) of public.<name>, or None."""
    return conn.execute("SELECT pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
                        "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s", (name,)).fetchone()


def by_name(records):
    return {r["name"]: r for r in records}


def test_builds_what_is_missing_then_finds_it_unchanged_and_refuses_another_definition(pg_database, capsys):
    with connect(pg_database) as conn:
        make_trades(conn)
        conn.execute("CREATE INDEX idx_trades_qty ON trades (client_id)")
        failed, plan = run_module(pg_database, capsys, indexes=[BY_CLIENT, OPEN_BUYS], _ansible_check_mode=True,
                                  _ansible_diff=True)
        assert not failed and plan["changed"] is True and plan["executed"] == []
        assert [r["status"] for r in plan["records"]] == ["planned", "planned"]
        planned = by_name(plan["records"])["public.idx_trades_open_buys"]
        assert planned["after"]["statement"] == (
            'CREATE INDEX CONCURRENTLY "idx_trades_open_buys" ON "public"."trades" USING "btree" '
            "(lower(instrument), qty DESC) WHERE (side = 'B' AND qty % 2 = 0)")
        assert index_in_catalog(conn, "idx_trades_open_buys") is None
        assert plan["diff"]["before"]["public.idx_trades_open_buys"] is None

        failed, built = run_module(pg_database, capsys, indexes=[BY_CLIENT, OPEN_BUYS])
        assert not failed and built["changed"] is True, built["msg"]
        records = by_name(built["records"])
        for name in ("idx_trades_created_at_client_id", "idx_trades_open_buys"):
            definition, valid = index_in_catalog(conn, name)
            record = records[f"public.{name}"]
            assert valid and record["status"] == "done" and record["action"] == "create_index"
            assert record["before"] is None
            assert record["after"]["definition"] == definition and record["after"]["valid"] is True
            size = conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()[0]
            assert record["after"]["bytes"] == size > 0
            assert record["after"]["build_seconds"] == record["seconds"] >= 0
        assert "WHERE ((side = 'B'::bpchar) AND ((qty % 2) = 0))" in records["public.idx_trades_open_buys"]["after"]["definition"]
        assert len(built["executed"]) == 2 and all("CONCURRENTLY" in s for s in built["executed"])

        # The same wanted indexes, written differently (upper-case names), are the same definitions.
        again = [dict(BY_CLIENT, name=BY_CLIENT["name"].upper(), table="public.Trades"), OPEN_BUYS]
        failed, second = run_module(pg_database, capsys, indexes=again)
        assert not failed and second["changed"] is False and second["executed"] == []
        assert [r["status"] for r in second["records"]] == ["unchanged", "unchanged"]

        failed, refused = run_module(pg_database, capsys, indexes=[BY_QTY, BY_CLIENT])
        existing = "CREATE INDEX idx_trades_qty ON public.trades USING btree (client_id)"
        assert failed and refused["executed"] == []
        record = by_name(refused["records"])["public.idx_trades_qty"]
        assert record["status"] == "failed" and record["before"]["definition"] == existing
        assert existing in refused["msg"] and "USING btree (qty)" in refused["msg"], refused["msg"]
        assert index_in_catalog(conn, "idx_trades_qty") == (existing, True)


def test_sql_postgresql_refuses_fails_before_anything_is_built(pg_database, capsys):
    with connect(pg_database) as conn:
        make_trades(conn)
        for bad, words in (({"expression": "lower(no_such_column)"}, "no_such_column"),
                           ({"expression": "qty); DROP TABLE other; --"}, "multiple commands"),
                           ({"columns": ["qty"], "where": "qty > random()"}, "IMMUTABLE"),
                           ({"columns": ["qty"], "method": "nosuch"}, "'nosuch'")):
            spec = {"name": "idx_bad", "table": "trades", **bad}
            failed, result = run_module(pg_database, capsys, indexes=[BY_CLIENT, spec])
            assert failed and words in result["msg"] and "idx_bad" in result["msg"], result["msg"]
        failed, result = run_module(pg_database, capsys, indexes=[dict(BY_CLIENT, table="nosuch")])
        assert failed and "table public.nosuch does not exist" in result["msg"]
        assert index_in_catalog(conn, "idx_trades_created_at_client_id") is None
        assert conn.execute("SELECT to_regclass('other')").fetchone()[0] == "other"


def old_snapshot(conninfo):
    """A session holding a snapshot older than any build that starts now (as a long report would)."""
    blocker = connect(conninfo)
    blocker.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    blocker.execute("SELECT count(*) FROM other")
    return blocker


def test_a_build_stopped_half_way_leaves_no_invalid_index(pg_database, capsys):
    with connect(pg_database) as conn:
        make_trades(conn)
        blocker = old_snapshot(pg_database)
        try:
            # lock_timeout hits while the build waits for the older snapshot: the index it left is dropped.
            failed, timed_out = run_module(pg_database, capsys, indexes=[BY_CLIENT], lock_timeout=300)
            record = timed_out["records"][0]
            assert not failed and timed_out["changed"] is False
            assert record["status"] == "skipped" and "lock_timeout (300 ms) hit" in record["detail"]
            assert "the INVALID index the build left was dropped" in record["detail"]
            assert index_in_catalog(conn, BY_CLIENT["name"]) is None

            # An operator cancels the waiting build: the same, reported as failed.
            def cancel_the_build():
                query = ("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                         "AND wait_event_type = 'Lock' "
                         "AND query LIKE 'CREATE INDEX CONCURRENTLY%'")
                wait_for(lambda: conn.execute(query).fetchone() is not None, timeout=10, what="the build waiting")

            canceller = threading.Thread(target=cancel_the_build)
            canceller.start()
            failed, cancelled = run_module(pg_database, capsys, indexes=[BY_CLIENT], lock_timeout=20000)
            canceller.join()
            record = cancelled["records"][0]
            assert failed and record["status"] == "failed", record
            assert "cancelled by another session" in record["detail"]
            assert "the INVALID index the build left was dropped" in record["detail"]
            assert index_in_catalog(conn, BY_CLIENT["name"]) is None
        finally:
            blocker.close()


def test_an_invalid_leftover_that_could_not_be_dropped_is_rebuilt_by_the_next_run(pg_database, capsys):
    with connect(pg_database) as conn:
        make_trades(conn)
        writer = connect(pg_database)
        writer.execute("BEGIN")
        writer.execute("INSERT INTO trades (client_id, qty) VALUES (1, 1)")
        try:
            # The writer's open transaction holds both the build and the drop of what it left.
            failed, first = run_module(pg_database, capsys, indexes=[BY_CLIENT], lock_timeout=200)
        finally:
            writer.execute("COMMIT")
            writer.close()
        record = first["records"][0]
        assert failed and record["status"] == "failed", record
        assert "could not be dropped" in record["detail"] and "the next run drops and rebuilds it" in record["detail"]
        assert record["after"]["valid"] is False
        assert index_in_catalog(conn, BY_CLIENT["name"])[1] is False

        failed, second = run_module(pg_database, capsys, indexes=[BY_CLIENT])
        record = second["records"][0]
        assert not failed and record["status"] == "done", record
        assert record["detail"].startswith("invalid leftover of a failed build dropped and rebuilt")
        assert record["before"]["valid"] is False and record["after"]["valid"] is True
        assert second["executed"][0].startswith("DROP INDEX CONCURRENTLY")
        assert index_in_catalog(conn, BY_CLIENT["name"])[1] is True


def test_with_windows_given_nothing_is_built_outside_them(pg_database, capsys):
    with connect(pg_database) as conn:
        make_trades(conn)
        failed, refused = run_module(pg_database, capsys, indexes=[BY_CLIENT], windows=NEVER_NOW, now=OUTSIDE)
        assert failed and "refusing to build indexes" in refused["msg"] and refused["window"]["allowed"] is False
        assert index_in_catalog(conn, BY_CLIENT["name"]) is None
        failed, built = run_module(pg_database, capsys, indexes=[BY_CLIENT], windows=NEVER_NOW, now=INSIDE)
        assert not failed and built["records"][0]["status"] == "done" and built["window"]["inside"] is True
        # Nothing to build: outside the window is no reason to fail.
        failed, again = run_module(pg_database, capsys, indexes=[BY_CLIENT], windows=NEVER_NOW, now=OUTSIDE)
        assert not failed and again["records"][0]["status"] == "unchanged"
