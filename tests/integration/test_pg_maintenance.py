"""pg_maintenance against the harness's real PostgreSQL 15, asserted from the catalog afterwards."""
from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils import window
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import pg_maintenance
from lab.harness.base import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ALWAYS = [{"name": "always", "rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "23h59m"}]
NEVER_NOW = [{"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h"}]
INSIDE = "2026-11-22T02:30:00Z"    # a Sunday, 02:30 UTC
OUTSIDE = "2026-11-24T15:00:00Z"   # a Tuesday afternoon


def run_module(conninfo, capsys, **args):
    """(failed, result) of the module's main() as Ansible runs it; every result keeps the record shape."""
    module_args = {"login_host": conninfo["host"], "login_port": conninfo["port"],
                   "login_user": conninfo["user"], "login_password": conninfo["password"],
                   "database": conninfo["dbname"], **args}
    with patch_module_args(module_args), pytest.raises(SystemExit) as exited:
        pg_maintenance.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=args.get("_ansible_check_mode", False)) == []
    assert "tables" not in result and "left_out" not in result and "settings" not in result
    return result.get("failed", False), result


def connect(conninfo):
    return psycopg.connect(**conninfo, autocommit=True)


def make_bloated(conn, name="trades", rows=40000, analyze_after=True):
    """A table with autovacuum off, half its rows updated and a quarter deleted: real dead tuples."""
    conn.execute(f"CREATE TABLE {name} (id bigserial PRIMARY KEY, account int, amount numeric, note text) "
                 "WITH (autovacuum_enabled = false)")
    conn.execute(f"INSERT INTO {name} (account, amount, note) "
                 f"SELECT g % 97, g, repeat('x', 60) FROM generate_series(1, {rows}) g")
    conn.execute(f"CREATE INDEX {name}_account ON {name} (account)")
    conn.execute(f"ANALYZE {name}")
    conn.execute(f"UPDATE {name} SET amount = amount + 1, account = account + 1")
    conn.execute(f"DELETE FROM {name} WHERE id % 4 = 0")
    # PostgreSQL 15 flushes a backend's table counters at most once a second: wait for
    # them, or a later ANALYZE would be overtaken by counts from before it.
    wait_for(lambda: dead_tuples(conn, name) > rows // 2, timeout=10, what=f"dead tuples of {name} in pg_stat")
    if analyze_after:
        conn.execute(f"ANALYZE {name}")
        wait_for(lambda: conn.execute("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = %s",
                                      (name,)).fetchone()[0] == 0, timeout=10, what=f"analyze of {name} counted")


def make_clean(conn, name="audit_logs", rows=2000):
    conn.execute(f"CREATE TABLE {name} (id bigserial PRIMARY KEY, event text) WITH (autovacuum_enabled = false)")
    conn.execute(f"INSERT INTO {name} (event) SELECT 'e' || g FROM generate_series(1, {rows}) g")
    wait_for(lambda: conn.execute("SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = %s",
                                  (name,)).fetchone()[0] == rows, timeout=10, what=f"inserts into {name} counted")
    conn.execute(f"VACUUM ANALYZE {name}")


def dead_tuples(conn, name):
    return conn.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s", (name,)).fetchone()[0]


def size_and_filenode(conn, name):
    return conn.execute("SELECT pg_total_relation_size(%s::regclass), pg_relation_filenode(%s::regclass)",
                        (name, name)).fetchone()


def by_name(records):
    return {r["name"]: r for r in records}


def worked_on(result):
    """The records of tables (or sequences, settings) the run did something with, not the ones left as they were."""
    return [r for r in result["records"] if r["status"] != "unchanged"]


def test_report_measures_tables_and_says_when_an_estimate_cannot_be_trusted(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades")
        make_clean(conn, "audit_logs")
        make_bloated(conn, "positions", rows=5000, analyze_after=False)  # statistics stale after the UPDATE
        sleeper = threading.Thread(target=lambda: connect(pg_database).execute("SELECT pg_sleep(3)"))
        sleeper.start()
        time.sleep(1.2)
        failed, result = run_module(pg_database, capsys, operation="report", long_query_seconds=0.5)
        sleeper.join()
    assert not failed and result["changed"] is False and result["executed"] == []
    report = result["report"]
    tables = by_name(report["tables"])
    assert tables["public.trades"]["dead_tuples"] > 20000
    assert tables["public.trades"]["bloat_ratio"] > 0.3, tables["public.trades"]
    assert tables["public.audit_logs"]["bloat_ratio"] < 0.15
    assert tables["public.positions"]["bloat_ratio"] is None
    assert "statistics stale" in tables["public.positions"]["bloat_note"]
    assert "bloat unknown for 1 table(s)" in result["msg"]
    assert any("pg_sleep" in q["query"] for q in report["long_running_queries"])
    assert report["replication"] == {"role": "primary", "clients": []}
    assert report["statements"]["available"] is False
    assert "not installed" in report["statements"]["reason"]
    assert report["server_version_num"] >= 150000
    records = by_name(result["records"])
    assert list(records) == [f"postgresql {pg_database['dbname']}", f"database {pg_database['dbname']}"]
    connections = records[f"postgresql {pg_database['dbname']}"]
    assert connections["action"] == "connections" and connections["status"] == "ok"
    assert connections["after"] == report["server"] and connections["after"]["connections"] >= 2
    assert connections["detail"].startswith(f"PostgreSQL {report['server']['version']}: ")
    contents = records[f"database {pg_database['dbname']}"]
    assert contents["action"] == "report" and contents["status"] == "ok"
    assert contents["after"] == {"tables": 3, "dead_tuples": sum(t["dead_tuples"] for t in report["tables"]),
                                 "total_bytes": sum(t["total_bytes"] for t in report["tables"])}
    assert f"3 table(s), {contents['after']['dead_tuples']} dead tuples" in contents["detail"]


def test_report_breaches_over_max_connections_percent_and_needs_no_dateutil(pg_database, capsys, monkeypatch):
    # Without python-dateutil only an rrule window fails; the report does not read one.
    monkeypatch.setattr(window, "HAS_DATEUTIL", False)
    with connect(pg_database):
        failed, result = run_module(pg_database, capsys, operation="report", max_connections_percent=0.0)
        assert not failed and result["changed"] is False
        connections = result["records"][0]
        assert connections["status"] == "breach" and ", limit 0%)" in connections["detail"]
        assert "connections over the limit" in result["msg"]
        failed, result = run_module(pg_database, capsys, operation="report", max_connections_percent=100.0)
        assert not failed and result["records"][0]["status"] == "ok"
        failed, result = run_module(pg_database, capsys, operation="report", max_connections_percent=150.0)
        assert failed and "max_connections_percent must be between 0 and 100, got 150.0" in result["msg"]
        failed, result = run_module(pg_database, capsys, operation="vacuum_full", windows=ALWAYS, now=INSIDE)
    assert failed and "rrule windows need the python-dateutil library" in result["msg"]


def test_report_lists_statements_once_pg_stat_statements_is_installed(pg_database, capsys):
    with connect(pg_database) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        for _round in range(3):
            conn.execute("SELECT count(*) FROM generate_series(1, 20000)")
    failed, result = run_module(pg_database, capsys, operation="report", top_statements=5)
    assert not failed
    statements = result["report"]["statements"]
    assert statements["available"] is True and 0 < len(statements["statements"]) <= 5
    assert {"calls", "mean_ms", "query"} <= set(statements["statements"][0])


def test_vacuum_by_thresholds_clears_dead_tuples_then_has_nothing_to_do(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades")
        make_clean(conn, "audit_logs")
        failed, result = run_module(pg_database, capsys, operation="vacuum_analyze", min_dead_tuples=1000, jobs=2,
                                    schemas=["PUBLIC"])
        assert not failed and result["changed"] is True
        assert [r["name"] for r in worked_on(result)] == ["public.trades"]
        record = worked_on(result)[0]
        assert record["status"] == "done" and record["before"]["dead_tuples"] > 20000
        assert record["action"] == "vacuum_analyze" and record["seconds"] is not None
        assert record["detail"].startswith(f"dead tuples {record['before']['dead_tuples']} -> ")
        left_out = by_name(result["records"])["public.audit_logs"]
        assert left_out["status"] == "unchanged" and left_out["detail"].startswith("0 dead tuples")
        assert result["executed"] == ['VACUUM (SKIP_LOCKED, ANALYZE) "public"."trades"']
        wait_for(lambda: dead_tuples(conn, "trades") == 0, timeout=10, what="dead tuples of trades gone")
        failed, again = run_module(pg_database, capsys, operation="vacuum_analyze", min_dead_tuples=1000)
    assert not failed and again["changed"] is False and worked_on(again) == [] and again["executed"] == []
    assert {r["name"] for r in again["records"]} == {"public.trades", "public.audit_logs"}


def test_check_mode_returns_the_plan_and_touches_nothing(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades")
        before = size_and_filenode(conn, "trades")
        dead = dead_tuples(conn, "trades")
        failed, result = run_module(pg_database, capsys, operation="vacuum_full", windows=ALWAYS, now=INSIDE,
                                    _ansible_check_mode=True, _ansible_diff=True)
        # A plan that would change something says so: changed, with records planned.
        assert not failed and result["changed"] is True and result["executed"] == []
        record = by_name(result["records"])["public.trades"]
        assert record["status"] == "planned" and record["after"]["lock"].startswith("ACCESS EXCLUSIVE")
        assert record["before"]["total_bytes"] == before[0] and record["after"]["estimated_seconds"] is not None
        assert "lock ACCESS EXCLUSIVE" in record["detail"] and record["seconds"] is None
        assert result["diff"] == {"before": {"public.trades": {"dead_tuples": record["before"]["dead_tuples"],
                                                               "total_bytes": before[0]}},
                                  "after": {"public.trades": record["after"]}}
        assert result["window"]["allowed"] is True
        assert size_and_filenode(conn, "trades") == before
        assert dead_tuples(conn, "trades") == dead


def test_vacuum_full_inside_the_window_shrinks_the_table(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades")
        make_clean(conn, "audit_logs")
        size_before, node_before = size_and_filenode(conn, "trades")
        failed, result = run_module(pg_database, capsys, operation="vacuum_full", windows=ALWAYS, now=INSIDE,
                                    _ansible_diff=True)
        assert not failed and result["changed"] is True, result["msg"]
        record = by_name(result["records"])["public.trades"]
        assert record["status"] == "done" and record["after"]["total_bytes"] < record["before"]["total_bytes"]
        assert by_name(result["records"])["public.audit_logs"]["status"] == "unchanged"
        size_after, node_after = size_and_filenode(conn, "trades")
        assert size_after < size_before * 0.8 and node_after != node_before
        assert record["after"]["total_bytes"] == size_after
        assert result["diff"]["after"] == {"public.trades": record["after"]}
        assert result["window"]["mode"] == "window"
        failed, again = run_module(pg_database, capsys, operation="vacuum_full", windows=ALWAYS, now=INSIDE,
                                   _ansible_diff=True)
    assert not failed and again["changed"] is False and again["executed"] == []
    assert again["diff"] == {"before": {}, "after": {}} and again["window"]["mode"] == "window"


def test_vacuum_full_outside_the_window_refuses_and_changes_nothing(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades")
        before = size_and_filenode(conn, "trades")
        failed, result = run_module(pg_database, capsys, operation="vacuum_full", windows=NEVER_NOW, now=OUTSIDE)
        assert failed and "refusing disruptive maintenance" in result["msg"]
        assert "next usable window 'weekly'" in result["msg"]
        assert result["window"]["allowed"] is False and result["window"]["next_window"] == "weekly"
        assert result["records"] == [] and result["changed"] is False
        assert size_and_filenode(conn, "trades") == before


def test_a_table_whose_estimate_does_not_fit_the_time_left_is_not_started(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades")
        before = size_and_filenode(conn, "trades")
        # 10 minutes left in the window, at an assumed 0.001 MiB/s the table needs hours.
        failed, result = run_module(pg_database, capsys, operation="vacuum_full", windows=NEVER_NOW,
                                    now="2026-11-22T03:50:00Z", timezone="UTC", initial_throughput_mb_s=0.001)
        assert not failed and result["changed"] is False
        record = by_name(result["records"])["public.trades"]
        assert record["status"] == "skipped" and "does not fit" in record["detail"]
        assert record["after"] is None and record["seconds"] is None
        assert size_and_filenode(conn, "trades") == before


def hold_lock_on(conninfo, table, mode):
    """Another session holding ``mode`` on ``table`` until the returned connection closes."""
    holder = connect(conninfo)
    holder.autocommit = False
    holder.execute(f"LOCK TABLE {table} IN {mode} MODE")
    return holder


def hold_lock(conninfo, mode):
    return hold_lock_on(conninfo, "trades", mode)


def test_a_locked_table_is_skipped_within_lock_timeout_and_reported(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades")
        started = time.monotonic()
        # Another VACUUM or ANALYZE holds the table: ours passes over it (SKIP_LOCKED).
        with hold_lock(pg_database, "SHARE UPDATE EXCLUSIVE"):
            failed, routine = run_module(pg_database, capsys, operation="vacuum", tables=["trades"])
        assert not failed and routine["changed"] is False
        assert routine["records"][0]["status"] == "skipped" and "SKIP_LOCKED" in routine["records"][0]["detail"]
        # A long report query holds ACCESS SHARE: VACUUM FULL gives up after lock_timeout.
        with hold_lock(pg_database, "ACCESS SHARE"):
            failed, full = run_module(pg_database, capsys, operation="vacuum_full", tables=["trades"],
                                      windows=ALWAYS, now=INSIDE, lock_timeout=300)
        assert not failed and full["changed"] is False and full["executed"] == []
        assert full["records"][0]["status"] == "skipped"
        assert "lock_timeout (300 ms)" in full["records"][0]["detail"]
        # Held exclusively: not even measured (sizes would wait), reported as such.
        with hold_lock(pg_database, "ACCESS EXCLUSIVE"):
            failed, held = run_module(pg_database, capsys, operation="vacuum_full", tables=["trades"],
                                      windows=ALWAYS, now=INSIDE, refresh_statistics=False)
        assert not failed and worked_on(held) == []
        assert "locked exclusively by pid" in held["records"][0]["detail"]
        assert time.monotonic() - started < 15
        assert dead_tuples(conn, "trades") > 20000


def test_reindex_concurrently_drops_leftovers_and_leaves_valid_smaller_indexes(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades")
        conn.execute("VACUUM trades")  # dead heap tuples gone; the index keeps its bloat
        # What a failed concurrent build leaves: an invalid index with a _ccnew name.
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY trades_account_ccnew ON trades (account)")
        index_before = conn.execute("SELECT pg_relation_size('trades_account')").fetchone()[0]
        failed, result = run_module(pg_database, capsys, operation="reindex", tables=["trades"],
                                    windows=ALWAYS, now=INSIDE, min_bloat_ratio=0.2)
        assert not failed and result["changed"] is True, result
        record = result["records"][0]
        assert record["status"] == "done"
        assert "dropped leftover invalid index(es) trades_account_ccnew" in record["detail"]
        assert record["after"]["total_bytes"] < record["before"]["total_bytes"]
        assert 'REINDEX TABLE CONCURRENTLY "public"."trades"' in result["executed"]
        invalid = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()[0]
        assert invalid == 0
        names = {r[0] for r in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'trades'::regclass")}
        assert names == {"trades_pkey", "trades_account"}
        assert conn.execute("SELECT pg_relation_size('trades_account')").fetchone()[0] < index_before


def test_reset_sequences_moves_forward_only(pg_database, capsys):
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE positions (id bigserial PRIMARY KEY, qty int)")
        conn.execute("INSERT INTO positions (id, qty) SELECT g, g FROM generate_series(1, 500) g")  # explicit ids
        conn.execute("CREATE TABLE trades (id bigserial PRIMARY KEY, qty int)")
        conn.execute("INSERT INTO trades (qty) SELECT g FROM generate_series(1, 10) g")
        conn.execute("SELECT setval('trades_id_seq', 1000)")  # ahead of MAX(id): must stay
        failed, plan = run_module(pg_database, capsys, operation="reset_sequences", _ansible_check_mode=True,
                                  _ansible_diff=True)
        assert not failed and plan["changed"] is True
        assert plan["diff"] == {"before": {"public.positions_id_seq": 1}, "after": {"public.positions_id_seq": 500}}
        assert conn.execute("SELECT last_value FROM positions_id_seq").fetchone()[0] == 1
        failed, result = run_module(pg_database, capsys, operation="reset_sequences")
        assert not failed and result["changed"] is True
        assert by_name(plan["records"])["public.positions_id_seq"]["status"] == "planned"
        records = by_name(result["records"])
        assert records["public.positions_id_seq"]["status"] == "done"
        assert records["public.positions_id_seq"]["before"] == {"last_value": 1}
        assert records["public.positions_id_seq"]["after"] == {"last_value": 500}
        assert records["public.positions_id_seq"]["detail"] == "last_value 1 -> 500 (max of public.positions.id)"
        assert records["public.trades_id_seq"]["status"] == "unchanged"
        assert records["public.trades_id_seq"]["detail"] == "not behind its column"
        assert conn.execute("SELECT last_value FROM positions_id_seq").fetchone()[0] == 500
        assert conn.execute("SELECT last_value FROM trades_id_seq").fetchone()[0] == 1000
        assert conn.execute("INSERT INTO positions (qty) VALUES (1) RETURNING id").fetchone()[0] == 501
        failed, again = run_module(pg_database, capsys, operation="reset_sequences")
    assert not failed and again["changed"] is False
    assert {r["status"] for r in again["records"]} == {"unchanged"}


def test_settings_are_written_with_diff_and_restart_is_named(pg_server, pg_database, capsys):
    wanted = {"work_mem": "6MB", "shared_buffers": "160MB"}
    with connect(pg_database) as conn:
        try:
            failed, plan = run_module(pg_database, capsys, operation="settings", settings=wanted,
                                      _ansible_check_mode=True, _ansible_diff=True)
            assert not failed and plan["changed"] is True and plan["executed"] == []
            assert plan["diff"]["after"] == wanted
            assert {r["name"]: r["status"] for r in plan["records"]} == {"work_mem": "planned",
                                                                         "shared_buffers": "planned"}
            assert not conn.execute("SELECT count(*) FROM pg_file_settings WHERE name = 'work_mem' "
                                    "AND sourcefile LIKE '%auto.conf'").fetchone()[0]
            failed, result = run_module(pg_database, capsys, operation="settings", settings=wanted)
            assert not failed and result["changed"] is True
            assert result["needs_restart"] == ["shared_buffers"]
            records = by_name(result["records"])
            assert records["work_mem"]["status"] == "done" and records["work_mem"]["after"] == {"value": "6MB"}
            assert "restart" not in records["work_mem"]["detail"]
            assert records["shared_buffers"]["detail"].endswith("takes effect after a server restart")
            assert conn.execute("SHOW work_mem").fetchone()[0] == "6MB"
            # Same values in other units: nothing to do, the restart is still pending.
            failed, again = run_module(pg_database, capsys, operation="settings",
                                       settings={"work_mem": "6144kB", "shared_buffers": "160MB"})
            assert not failed and again["changed"] is False and again["needs_restart"] == ["shared_buffers"]
            assert {r["status"] for r in again["records"]} == {"unchanged"}
            assert by_name(again["records"])["shared_buffers"]["detail"].endswith("a server restart is pending")
        finally:
            conn.execute("ALTER SYSTEM RESET work_mem")
            conn.execute("ALTER SYSTEM RESET shared_buffers")
            conn.execute("SELECT pg_reload_conf()")


@pytest.mark.parametrize("args, message", [
    ({"operation": "vacuum", "tables": ["no_such_table"]}, "table 'no_such_table' does not exist"),
    ({"operation": "report", "tables": ["no_such_table"]}, "table 'no_such_table' does not exist"),
    ({"operation": "vacuum_full", "tables": ["trades", "nope"], "windows": ALWAYS, "now": INSIDE},
     "table 'nope' does not exist"),
    ({"operation": "vacuum", "jobs": 0}, "jobs must be between 1 and 16, got 0"),
    ({"operation": "vacuum", "lock_timeout": 0}, "lock_timeout must be at least 1 ms"),
    ({"operation": "vacuum", "tables": ["trades; DROP TABLE trades"]}, "is not a plain identifier"),
    ({"operation": "vacuum_full", "tables": ["trades"]}, "is disruptive: give the maintenance 'windows'"),
    ({"operation": "vacuum", "min_dead_ratio": 1.5}, "min_dead_ratio must be between 0 and 1, got 1.5"),
    ({"operation": "settings", "settings": {"work_mem": "lots"}}, "work_mem: 'lots' is not a number"),
    ({"operation": "settings", "settings": {"no_such_setting": "1"}}, "unknown setting(s): no_such_setting"),
])
def test_bad_input_fails_naming_the_value_and_changes_nothing(pg_database, capsys, args, message):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades", rows=2000)
        before = size_and_filenode(conn, "trades")
        failed, result = run_module(pg_database, capsys, **args)
        assert failed and message in result["msg"], result["msg"]
        assert result["records"] == [] and result["changed"] is False
        assert size_and_filenode(conn, "trades") == before


def test_a_wrong_password_fails_without_showing_it(pg_database, capsys):
    failed, result = run_module({**pg_database, "password": "not-the-password"}, capsys, operation="report")
    assert failed and "cannot connect to PostgreSQL" in result["msg"]
    assert "not-the-password" not in json.dumps(result)


def test_a_connection_lost_half_way_says_what_was_done_and_what_was_not(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "alpha", rows=40000)
        make_bloated(conn, "bravo", rows=20000)
        make_bloated(conn, "charlie", rows=10000)
        charlie_before = size_and_filenode(conn, "charlie")

        def kill_when_bravo_waits():
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                row = conn.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE 'VACUUM (FULL, ANALYZE) %%bravo%%' "
                                   "AND wait_event_type = 'Lock'").fetchone()
                if row:
                    conn.execute("SELECT pg_terminate_backend(%s)", row)
                    return
                time.sleep(0.05)

        with hold_lock_on(pg_database, "bravo", "ACCESS SHARE"):
            killer = threading.Thread(target=kill_when_bravo_waits)
            killer.start()
            failed, result = run_module(pg_database, capsys, operation="vacuum_full",
                                        tables=["alpha", "bravo", "charlie"], windows=ALWAYS, now=INSIDE,
                                        lock_timeout=30000)
            killer.join()
        assert failed and "vacuum_full stopped" in result["msg"] and "1 table(s) done" in result["msg"]
        assert "1 not started" in result["msg"] and result["changed"] is True
        records = by_name(result["records"])
        status = {name: r["status"] for name, r in records.items()}
        assert status == {"public.alpha": "done", "public.bravo": "failed", "public.charlie": "skipped"}
        assert "rolled back" in records["public.bravo"]["detail"]
        assert records["public.charlie"]["detail"].startswith("not started")
        assert records["public.charlie"]["after"] is None
        assert result["window"]["mode"] == "window"
        assert size_and_filenode(conn, "charlie") == charlie_before


def cancel_when_waiting(conn, table, stop):
    """pg_cancel_backend the VACUUM FULL of ``table`` once it waits on its lock (an operator's cancel)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not stop.is_set():
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE %s AND wait_event_type = 'Lock'",
                           (f"VACUUM (FULL, ANALYZE) %{table}%",)).fetchone()
        if row:
            conn.execute("SELECT pg_cancel_backend(%s)", row)
            return
        time.sleep(0.05)


def test_a_statement_cancelled_by_another_session_is_not_called_a_statement_timeout(pg_database, capsys):
    with connect(pg_database) as conn, connect(pg_database) as operator:
        make_bloated(conn, "trades")
        before = size_and_filenode(conn, "trades")
        stop = threading.Event()
        with hold_lock(pg_database, "ACCESS SHARE"):
            canceller = threading.Thread(target=cancel_when_waiting, args=(operator, "trades", stop))
            canceller.start()
            try:
                failed, result = run_module(pg_database, capsys, operation="vacuum_full", tables=["trades"],
                                            windows=ALWAYS, now=INSIDE, lock_timeout=30000)
            finally:
                stop.set()
                canceller.join()
        assert failed and result["changed"] is False
        record = result["records"][0]
        assert record["status"] == "failed"
        assert record["detail"] == "cancelled by another session (pg_cancel_backend or an operator)"
        assert "statement_timeout" not in result["msg"]
        assert size_and_filenode(conn, "trades") == before


@pytest.mark.reliability
def test_a_real_statement_timeout_says_statement_timeout(pg_database, capsys, campaign):
    with connect(pg_database) as conn, \
            campaign.case("postgres_timeout", "statement_timeout while VACUUM FULL waits for its lock") as case:
        make_bloated(conn, "trades")
        before = size_and_filenode(conn, "trades")
        # Waiting on the lock longer than statement_timeout allows: PostgreSQL's own timeout cancels it.
        with hold_lock(pg_database, "ACCESS SHARE"):
            failed, result = run_module(pg_database, capsys, operation="vacuum_full", tables=["trades"],
                                        windows=ALWAYS, now=INSIDE, lock_timeout=30000, statement_timeout=700)
        case.check_error(result, names=["statement_timeout (700 ms)", "public.trades"])
        case.check_data(size_and_filenode(conn, "trades") == before, "public.trades: size and file node")
        assert failed and result["changed"] is False
        record = result["records"][0]
        assert record["status"] == "failed" and record["detail"] == "cancelled by statement_timeout (700 ms)"
        assert "pg_cancel_backend" not in result["msg"]
        assert size_and_filenode(conn, "trades") == before
