"""The pure parts of pg_maintenance: options, identifiers, bloat estimates, selection, settings, sequences."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.streamops.maintenance.plugins.doc_fragments.postgres import ModuleDocFragment
from ansible_collections.streamops.maintenance.plugins.module_utils.pg import (
    PgError,
    conninfo_from_params,
    pg_connection_argument_spec,
    split_table_name,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_admin import (
    normalize_setting,
    sequence_is_behind,
    setting_record,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_maintenance import (
    CANCELLED_BY_OPERATOR,
    RunSettings,
    Thresholds,
    Throughput,
    classify_failure,
    effective_thresholds,
    new_work,
    select_tables,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_runner import validate
from ansible_collections.streamops.maintenance.plugins.module_utils.records import record_problems
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_stats import (
    BloatEstimate,
    IndexInfo,
    TableInfo,
    estimate_btree_bloat,
    estimate_table_bloat,
    statistics_problem,
)
from ansible_collections.streamops.maintenance.plugins.modules import pg_maintenance


def _shape(options, key):
    return {name: {"type": o.get("type", "str"), "default": o.get("default"), "choices": o.get("choices"),
                   "aliases": sorted(o.get("aliases", []))} for name, o in options.items()} if key else None


def test_postgres_fragment_matches_argument_spec():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = pg_connection_argument_spec()
    assert _shape(documented, True) == _shape(spec, True)
    assert spec["login_password"]["no_log"] is True


def test_module_options_are_documented_exactly():
    documented = yaml.safe_load(pg_maintenance.DOCUMENTATION)["options"]
    shared = set(pg_connection_argument_spec()) | {"windows", "window", "blackouts", "timezone", "emergency", "now"}
    own = {k: v for k, v in pg_maintenance.argument_spec().items() if k not in shared}
    assert _shape(documented, True) == _shape(own, True)


def test_conninfo_leaves_unset_options_to_libpq_and_prefers_the_socket():
    params = {"login_host": "db", "login_unix_socket": "/run/postgresql", "login_port": None,
              "login_user": "u", "login_password": "p", "database": "d", "connect_timeout": 5}
    assert conninfo_from_params(params) == {"host": "/run/postgresql", "user": "u", "password": "p",
                                            "dbname": "d", "connect_timeout": 5,
                                            "application_name": "streamops.maintenance"}


@pytest.mark.parametrize("name, expected", [
    ("trades", ("public", "trades")),
    ("audit.trades", ("audit", "trades")),
    (" positions ", ("public", "positions")),
    ("Audit.Trades", ("audit", "trades")),
    ("t$1", ("public", "t$1")),
])
def test_table_names(name, expected):
    assert split_table_name(name) == expected


@pytest.mark.parametrize("name", ["trades; DROP TABLE x", 'a"b', "a.b.c", "1abc", "", "x" * 64, None, "a-b"])
def test_table_names_that_are_not_plain_identifiers_are_refused(name):
    with pytest.raises(PgError) as caught:
        split_table_name(name)
    assert repr(name) in caught.value.msg


def test_table_bloat_of_a_compact_table_is_small_and_of_a_doubled_one_about_half():
    common = {"reltuples": 100000, "columns": 4, "data_width": 80, "max_null_frac": 0.0,
              "fillfactor": 100, "block_size": 8192}
    tuple_bytes = 24 + 80 + 4
    compact_pages = -(-100000 // (8168 // tuple_bytes))
    compact = estimate_table_bloat(actual_bytes=compact_pages * 8192, **common)
    doubled = estimate_table_bloat(actual_bytes=compact_pages * 2 * 8192, **common)
    assert compact.ratio == 0.0
    assert 0.49 <= doubled.ratio <= 0.51 and doubled.bytes == compact_pages * 8192


def test_index_bloat_counts_the_meta_page_and_fillfactor():
    estimate = estimate_btree_bloat(actual_bytes=100 * 8192, reltuples=10000, key_width=8, fillfactor=90,
                                    block_size=8192)
    per_page = int((8192 - 24 - 16) * 0.9 // (16 + 4))
    expected = -(-10000 // per_page) + 1
    assert estimate.bytes == (100 - expected) * 8192


STATS = {"readable": True, "reltuples": 1000.0, "with_stats": 3, "columns": 3, "last_analyze": "x",
         "last_autoanalyze": None, "mod_since_analyze": 10}


@pytest.mark.parametrize("changes, problem", [
    ({}, None),
    ({"readable": False}, "no SELECT privilege"),
    ({"reltuples": -1.0}, "never analyzed"),
    ({"with_stats": 1}, "statistics missing for 2 of 3 columns"),
    ({"last_analyze": None}, "never analyzed"),
    ({"mod_since_analyze": 400}, "statistics stale: 400 rows changed"),
    ({"mod_since_analyze": 40, "reltuples": 10.0}, None),
    ({"locked_by": 4242}, "locked exclusively by pid 4242"),
])
def test_statistics_problems_are_named(changes, problem):
    found = statistics_problem({**STATS, **changes}, stale_ratio=0.2)
    assert (found is None) if problem is None else (problem in found)


def table(name, *, dead=0, live=1000, bloat=0.0, index_bloat=0.0, schema="public", problem=None):
    info = TableInfo(schema=schema, name=name, table_bytes=8192 * 100, index_bytes=8192 * 10,
                     total_bytes=8192 * 110, live_tuples=live, dead_tuples=dead, mod_since_analyze=0,
                     last_vacuum=None, last_autovacuum=None, last_analyze=None, last_autoanalyze=None,
                     stats_problem=problem,
                     bloat=BloatEstimate(None, None, f"bloat unknown: {problem}") if problem
                     else BloatEstimate(bloat, int(bloat * 819200)))
    info.indexes.append(IndexInfo(f"{name}_pkey", "btree", True, 81920,
                                  BloatEstimate(index_bloat, int(index_bloat * 81920))))
    return info


TABLES = {t.qualified_name: t for t in [
    table("trades", dead=50000, live=100000, bloat=0.5, index_bloat=0.6),
    table("positions", dead=2000, live=100000, bloat=0.35),
    table("market_data", dead=10, live=100000, bloat=0.05),
    table("stale", dead=5000, live=5000, problem="statistics stale: 9000 rows changed"),
    table("events", schema="audit", dead=90000, live=10000, bloat=0.9),
]}


@pytest.mark.parametrize("operation, kwargs, chosen", [
    # No names, no thresholds: defaults (1000 dead tuples and 10 %).
    ("vacuum", {}, ["public.trades", "public.stale", "audit.events"]),
    ("vacuum", {"include_schemas": ["public"]}, ["public.trades", "public.stale"]),
    ("vacuum", {"exclude_schemas": ["audit"], "thresholds": Thresholds(min_dead_tuples=1000)},
     ["public.trades", "public.positions", "public.stale"]),
    # Named tables run as named when no threshold is given.
    ("vacuum", {"names": ["market_data", "trades"]}, ["public.market_data", "public.trades"]),
    ("vacuum", {"names": ["market_data", "trades"], "thresholds": Thresholds(min_dead_tuples=100)},
     ["public.trades"]),
    # ANALYZE also takes tables with stale statistics.
    ("analyze", {"thresholds": Thresholds(min_dead_tuples=40000)}, ["public.trades", "public.stale", "audit.events"]),
    # Disruptive: bloat decides, biggest win first; unknown bloat is left out.
    ("vacuum_full", {}, ["audit.events", "public.trades", "public.positions"]),
    ("vacuum_full", {"thresholds": Thresholds(min_bloat_ratio=0.4)}, ["audit.events", "public.trades"]),
    ("reindex", {"names": ["trades", "positions"]}, ["public.trades"]),
])
def test_select_tables(operation, kwargs, chosen):
    kwargs.setdefault("thresholds", Thresholds())
    kwargs.setdefault("names", None)
    selection = select_tables(TABLES, operation=operation, **kwargs)
    assert [t.qualified_name for t in selection.chosen] == chosen
    assert len(selection.chosen) + len(selection.left_out) <= len(TABLES)


def test_left_out_tables_carry_the_measured_reason():
    selection = select_tables(TABLES, operation="vacuum_full", names=None, thresholds=Thresholds())
    reasons = {r["name"]: r["detail"] for r in selection.left_out}
    assert reasons["public.market_data"] == "bloat 5.0% < min_bloat_ratio 30.0%"
    assert reasons["public.stale"].startswith("bloat unknown (bloat unknown: statistics stale")
    assert {r["status"] for r in selection.left_out} == {"unchanged"}
    assert by_name(selection.left_out)["public.market_data"]["before"] == {
        "dead_tuples": 10, "total_bytes": 8192 * 110, "bloat_ratio": 0.05}
    assert [problem for r in selection.left_out for problem in record_problems(r)] == []


def by_name(records):
    return {r["name"]: r for r in records}


def test_a_named_table_that_does_not_exist_fails_naming_it():
    with pytest.raises(PgError, match=r"table 'public.nope' does not exist"):
        select_tables(TABLES, operation="vacuum", names=["trades", "public.nope"], thresholds=Thresholds())


def test_disruptive_operations_default_the_bloat_threshold():
    assert effective_thresholds("vacuum_full", Thresholds(), named=True).min_bloat_ratio == 0.3
    assert effective_thresholds("vacuum", Thresholds(), named=True) == Thresholds()


def test_throughput_uses_the_assumption_until_a_second_is_measured():
    rate = Throughput(initial=10 * 1048576)
    assert rate.estimate(20 * 1048576).total_seconds() == 2
    rate.add(1048576, 0.2)
    assert rate.rate == 10 * 1048576
    rate.add(9 * 1048576, 1.8)
    assert rate.estimate(50 * 1048576).total_seconds() == 10


@pytest.mark.parametrize("value, vartype, unit, expected", [
    ("1GB", "integer", "kB", 1024 ** 3),
    ("1024MB", "integer", "kB", 1024 ** 3),
    ("131072", "integer", "8kB", 131072 * 8192),
    ("64", "integer", "kB", 64 * 1024),
    ("10s", "integer", "ms", 10000),
    ("1min", "integer", "s", 60000),
    ("200", "integer", None, 200),
    ("0.05", "real", None, 0.05),
    ("ON", "bool", None, True),
    ("off", "bool", None, False),
    ("Replica", "enum", None, "replica"),
])
def test_settings_compare_in_base_units(value, vartype, unit, expected):
    assert normalize_setting(value, vartype=vartype, unit=unit, name="x") == expected


@pytest.mark.parametrize("value, vartype, unit, message", [
    ("lots", "integer", "kB", "'lots' is not a number"),
    ("10parsecs", "integer", "kB", "unit 'parsecs'"),
    ("5MB", "integer", None, "takes no unit"),
    ("maybe", "bool", None, "is not a boolean"),
    ("10MB", "integer", "ms", "is not a time unit"),
])
def test_bad_setting_values_name_the_value(value, vartype, unit, message):
    with pytest.raises(PgError, match=message):
        normalize_setting(value, vartype=vartype, unit=unit, name="x")


@pytest.mark.parametrize("last, called, column_max, behind", [
    (1, False, None, False),      # empty table
    (1, False, 1, True),          # next nextval() would give 1, which exists
    (1, True, 1, False),
    (100, True, 500, True),
    (1000, True, 10, False),      # ahead: never moved backwards
])
def test_sequence_is_behind(last, called, column_max, behind):
    assert sequence_is_behind(last, called, column_max) is behind


def test_a_worker_that_cannot_connect_stops_the_run_with_its_records():
    from ansible_collections.streamops.maintenance.plugins.module_utils.pg_maintenance import (
        Outcome,
        RunSettings,
        run_routine,
    )

    def refuse():
        raise PgError(msg="cannot connect to PostgreSQL u@db:5432/d: connection refused")

    outcome = Outcome()
    chosen = [TABLES["public.trades"], TABLES["public.positions"]]
    settings = RunSettings(lock_timeout_ms=100, statement_timeout_ms=100, jobs=2)
    with pytest.raises(PgError) as caught:
        run_routine(refuse, "vacuum", chosen, settings=settings, server_version=150000, outcome=outcome)
    assert "vacuum stopped: cannot connect" in caught.value.msg and "2 not started" in caught.value.msg
    records = caught.value.details["records"]
    assert [r["status"] for r in records] == ["skipped", "skipped"]
    assert all(r["detail"].startswith("not started") for r in records)
    assert [problem for r in records for problem in record_problems(r)] == []


def _work(operation, status, **fields):
    work = new_work(operation, TABLES["public.trades"], concurrently=True)
    work.status = status
    for name, value in fields.items():
        setattr(work, name, value)
    return work


@pytest.mark.parametrize("work, detail, after, seconds", [
    (_work("vacuum_full", "done", seconds=1.92, measured_after=True, dead_tuples_after=0,
           total_bytes_after=8192 * 40),
     "dead tuples 50000 -> 0, size 880.0 kB -> 320.0 kB, 1.9 s", {"dead_tuples": 0, "total_bytes": 8192 * 40}, 1.92),
    (_work("reindex", "done", seconds=0.4, measured_after=True, dead_tuples_after=50000,
           total_bytes_after=8192 * 100, dropped_indexes=["trades_account_ccnew"]),
     "size 880.0 kB -> 800.0 kB, 0.4 s, dropped leftover invalid index(es) trades_account_ccnew",
     {"dead_tuples": 50000, "total_bytes": 8192 * 100}, 0.4),
    (_work("vacuum", "planned", estimated_seconds=2.0),
     "dead tuples 50000, size 880.0 kB, about 2 s, lock SHARE UPDATE EXCLUSIVE",
     {"estimated_seconds": 2.0, "lock": "SHARE UPDATE EXCLUSIVE (reads and writes go on)"}, None),
    (_work("vacuum_full", "skipped", reason="could not get its lock within lock_timeout (300 ms)"),
     "could not get its lock within lock_timeout (300 ms)", None, None),
    (_work("vacuum_full", "failed", reason=CANCELLED_BY_OPERATOR, seconds=None, measured_after=True,
           dead_tuples_after=50000, total_bytes_after=8192 * 110),
     CANCELLED_BY_OPERATOR, {"dead_tuples": 50000, "total_bytes": 8192 * 110}, None),
], ids=["done", "reindex-done", "planned", "skipped", "failed"])
def test_table_records_give_the_figures_in_one_line(work, detail, after, seconds):
    record = work.record()
    assert record_problems(record) == []
    assert (record["name"], record["action"], record["status"]) == ("public.trades", work.operation, work.status)
    assert record["detail"] == detail
    assert record["before"] == {"dead_tuples": 50000, "total_bytes": 8192 * 110,
                                "bloat_ratio": 0.6 if work.operation == "reindex" else 0.5}
    assert record["after"] == after and record["seconds"] == seconds


def _error(kind, message):
    import psycopg

    return getattr(psycopg.errors, kind)(message)


@pytest.mark.parametrize("kind, message, status, reason", [
    ("QueryCanceled", "canceling statement due to statement timeout", "failed",
     "cancelled by statement_timeout (2000 ms)"),
    ("QueryCanceled", "canceling statement due to user request", "failed", CANCELLED_BY_OPERATOR),
    ("LockNotAvailable", "canceling statement due to lock timeout", "skipped",
     "could not get its lock within lock_timeout (100 ms)"),
    ("UndefinedTable", 'relation "trades" does not exist', "failed", 'table vanished: relation "trades" does not exist'),
], ids=["statement-timeout", "pg-cancel-backend", "lock-timeout", "vanished"])
def test_a_failed_statement_says_who_stopped_it(kind, message, status, reason):
    settings = RunSettings(lock_timeout_ms=100, statement_timeout_ms=2000)
    assert classify_failure(_error(kind, message), settings) == (status, reason)


def _plan(status, **changes):
    return {"name": "shared_buffers", "before": "128MB", "after": "160MB", "change": status != "unchanged",
            "context": "postmaster", "status": status, "needs_restart": True, "reason": None, **changes}


@pytest.mark.parametrize("plan, detail", [
    (_plan("done"), "128MB -> 160MB; takes effect after a server restart"),
    (_plan("planned", needs_restart=False, name="work_mem"), "128MB -> 160MB"),
    (_plan("unchanged", before="160MB"), "already 160MB; a server restart is pending"),
    (_plan("failed", reason="ALTER SYSTEM failed: permission denied"),
     "ALTER SYSTEM failed: permission denied; takes effect after a server restart"),
], ids=["done-restart", "planned", "unchanged-pending", "failed"])
def test_setting_records_say_when_a_restart_is_needed(plan, detail):
    record = setting_record(plan)
    assert record_problems(record) == []
    assert record["detail"] == detail and record["status"] == plan["status"]
    assert record["before"] == {"value": plan["before"]} and record["after"] == {"value": "160MB"}


VALID = {"operation": "report", "jobs": 1, "lock_timeout": 5000, "statement_timeout": 0,
         "initial_throughput_mb_s": 25.0, "tables": None, "schemas": None, "exclude_schemas": None}


@pytest.mark.parametrize("value, message", [
    (101.0, "max_connections_percent must be between 0 and 100, got 101.0"),
    (-1.0, "max_connections_percent must be between 0 and 100, got -1.0"),
])
def test_max_connections_percent_is_a_percentage(value, message):
    with pytest.raises(PgError, match=message):
        validate({**VALID, "max_connections_percent": value})
    validate({**VALID, "max_connections_percent": 80.0})
