"""pg_maintenance against the harness's real PostgreSQL 15, asserted from the catalog afterwards."""
from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.modules import pg_maintenance
from lab.harness.base import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ALWAYS = [{"name": "always", "rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "23h59m"}]
NEVER_NOW = [{"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h"}]
INSIDE = "2026-11-22T02:30:00Z"    # a Sunday, 02:30 UTC
OUTSIDE = "2026-11-24T15:00:00Z"   # a Tuesday afternoon


def run_module(conninfo, capsys, **args):
    """(failed, result) of the module's main() as Ansible runs it."""
    module_args = {"login_host": conninfo["host"], "login_port": conninfo["port"],
                   "login_user": conninfo["user"], "login_password": conninfo["password"],
                   "database": conninfo["dbname"], **args}
    with patch_module_args(module_args), pytest.raises(SystemExit) as exited:
        pg_maintenance.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
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
        assert [r["name"] for r in result["tables"]] == ["public.trades"]
        record = result["tables"][0]
        assert record["status"] == "done" and record["dead_tuples_before"] > 20000
        assert by_name(result["left_out"])["public.audit_logs"]["reason"].startswith("0 dead tuples")
        assert result["executed"] == ['VACUUM (SKIP_LOCKED, ANALYZE) "public"."trades"']
        wait_for(lambda: dead_tuples(conn, "trades") == 0, timeout=10, what="dead tuples of trades gone")
        failed, again = run_module(pg_database, capsys, operation="vacuum_analyze", min_dead_tuples=1000)
    assert not failed and again["changed"] is False and again["tables"] == [] and again["executed"] == []


def test_check_mode_returns_the_plan_and_touches_nothing(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades")
        before = size_and_filenode(conn, "trades")
        dead = dead_tuples(conn, "trades")
        failed, result = run_module(pg_database, capsys, operation="vacuum_full", windows=ALWAYS, now=INSIDE,
                                    _ansible_check_mode=True)
        assert not failed and result["changed"] is False and result["executed"] == []
        record = by_name(result["tables"])["public.trades"]
        assert record["status"] == "planned" and record["lock"].startswith("ACCESS EXCLUSIVE")
        assert record["size_before"] == before[0] and record["estimated_duration_s"] is not None
        assert size_and_filenode(conn, "trades") == before
        assert dead_tuples(conn, "trades") == dead


def test_vacuum_full_inside_the_window_shrinks_the_table(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades")
        make_clean(conn, "audit_logs")
        size_before, node_before = size_and_filenode(conn, "trades")
        failed, result = run_module(pg_database, capsys, operation="vacuum_full", windows=ALWAYS, now=INSIDE)
        assert not failed and result["changed"] is True, result["msg"]
        record = by_name(result["tables"])["public.trades"]
        assert record["status"] == "done" and record["size_after"] < record["size_before"]
        assert "public.audit_logs" in by_name(result["left_out"])
        size_after, node_after = size_and_filenode(conn, "trades")
        assert size_after < size_before * 0.8 and node_after != node_before
        assert result["window"]["mode"] == "window"
        failed, again = run_module(pg_database, capsys, operation="vacuum_full", windows=ALWAYS, now=INSIDE)
    assert not failed and again["changed"] is False and again["executed"] == []


def test_vacuum_full_outside_the_window_refuses_and_changes_nothing(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades")
        before = size_and_filenode(conn, "trades")
        failed, result = run_module(pg_database, capsys, operation="vacuum_full", windows=NEVER_NOW, now=OUTSIDE)
        assert failed and "refusing disruptive maintenance" in result["msg"]
        assert "next usable window 'weekly'" in result["msg"]
        assert size_and_filenode(conn, "trades") == before


def test_a_table_whose_estimate_does_not_fit_the_time_left_is_not_started(pg_database, capsys):
    with connect(pg_database) as conn:
        make_bloated(conn, "trades")
        before = size_and_filenode(conn, "trades")
        # 10 minutes left in the window, at an assumed 0.001 MiB/s the table needs hours.
        failed, result = run_module(pg_database, capsys, operation="vacuum_full", windows=NEVER_NOW,
                                    now="2026-11-22T03:50:00Z", timezone="UTC", initial_throughput_mb_s=0.001)
        assert not failed and result["changed"] is False
        record = by_name(result["tables"])["public.trades"]
        assert record["status"] == "skipped" and "does not fit" in record["reason"]
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
        assert routine["tables"][0]["status"] == "skipped" and "SKIP_LOCKED" in routine["tables"][0]["reason"]
        # A long report query holds ACCESS SHARE: VACUUM FULL gives up after lock_timeout.
        with hold_lock(pg_database, "ACCESS SHARE"):
            failed, full = run_module(pg_database, capsys, operation="vacuum_full", tables=["trades"],
                                      windows=ALWAYS, now=INSIDE, lock_timeout=300)
        assert not failed and full["changed"] is False and full["executed"] == []
        assert full["tables"][0]["status"] == "skipped"
        assert "lock_timeout (300 ms)" in full["tables"][0]["reason"]
        # Held exclusively: not even measured (sizes would wait), reported as such.
        with hold_lock(pg_database, "ACCESS EXCLUSIVE"):
            failed, held = run_module(pg_database, capsys, operation="vacuum_full", tables=["trades"],
                                      windows=ALWAYS, now=INSIDE, refresh_statistics=False)
        assert not failed and held["tables"] == []
        assert "locked exclusively by pid" in held["left_out"][0]["reason"]
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
        record = result["tables"][0]
        assert record["status"] == "done" and record["dropped_invalid_indexes"] == ["trades_account_ccnew"]
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
        records = by_name(result["tables"])
        assert records["public.positions_id_seq"]["status"] == "done"
        assert records["public.trades_id_seq"]["status"] == "unchanged"
        assert conn.execute("SELECT last_value FROM positions_id_seq").fetchone()[0] == 500
        assert conn.execute("SELECT last_value FROM trades_id_seq").fetchone()[0] == 1000
        assert conn.execute("INSERT INTO positions (qty) VALUES (1) RETURNING id").fetchone()[0] == 501
        failed, again = run_module(pg_database, capsys, operation="reset_sequences")
    assert not failed and again["changed"] is False


def test_settings_are_written_with_diff_and_restart_is_named(pg_server, pg_database, capsys):
    wanted = {"work_mem": "6MB", "shared_buffers": "160MB"}
    with connect(pg_database) as conn:
        try:
            failed, plan = run_module(pg_database, capsys, operation="settings", settings=wanted,
                                      _ansible_check_mode=True, _ansible_diff=True)
            assert not failed and plan["changed"] is True and plan["executed"] == []
            assert plan["diff"]["after"] == wanted
            assert not conn.execute("SELECT count(*) FROM pg_file_settings WHERE name = 'work_mem' "
                                    "AND sourcefile LIKE '%auto.conf'").fetchone()[0]
            failed, result = run_module(pg_database, capsys, operation="settings", settings=wanted)
            assert not failed and result["changed"] is True
            assert result["needs_restart"] == ["shared_buffers"]
            assert conn.execute("SHOW work_mem").fetchone()[0] == "6MB"
            # Same values in other units: nothing to do, the restart is still pending.
            failed, again = run_module(pg_database, capsys, operation="settings",
                                       settings={"work_mem": "6144kB", "shared_buffers": "160MB"})
            assert not failed and again["changed"] is False and again["needs_restart"] == ["shared_buffers"]
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
        status = {r["name"]: r["status"] for r in result["tables"]}
        assert status == {"public.alpha": "done", "public.bravo": "failed", "public.charlie": "not started"}
        assert "rolled back" in by_name(result["tables"])["public.bravo"]["reason"]
        assert size_and_filenode(conn, "charlie") == charlie_before
