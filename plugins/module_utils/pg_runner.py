# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""pg_maintenance from module options to result: validate, measure, plan, run, shape the result."""

from __future__ import annotations

from typing import Any

from . import pg_admin
from .pg import (
    PgError,
    check_identifier,
    conninfo_from_params,
    connect,
    first_line,
    psycopg,
    server_version_num,
    set_timeouts,
    split_table_name,
    sql,
)
from .pg_maintenance import (
    DISRUPTIVE,
    ROUTINE,
    Outcome,
    RunSettings,
    Thresholds,
    base_record,
    in_schemas,
    plan_disruptive,
    resolve_named_tables,
    run_disruptive,
    run_routine,
    select_tables,
    work_bytes,
)
from .pg_stats import read_server, read_tables
from .window import guard_from_params

MAX_JOBS = 16


def validate(params: dict[str, Any]) -> None:
    """Bad input fails before any connection, naming the bad value."""
    for name in ("min_dead_ratio", "min_bloat_ratio", "stale_statistics_ratio"):
        value = params.get(name)
        if value is not None and not 0 <= value <= 1:
            raise PgError(msg=f"{name} must be between 0 and 1, got {value}")
    if params.get("min_dead_tuples") is not None and params["min_dead_tuples"] < 0:
        raise PgError(msg=f"min_dead_tuples must not be negative, got {params['min_dead_tuples']}")
    if not 1 <= params["jobs"] <= MAX_JOBS:
        raise PgError(msg=f"jobs must be between 1 and {MAX_JOBS}, got {params['jobs']}")
    if params["lock_timeout"] < 1:
        raise PgError(msg=f"lock_timeout must be at least 1 ms (0 would wait forever), got {params['lock_timeout']}")
    if params["statement_timeout"] < 0:
        raise PgError(msg=f"statement_timeout must not be negative, got {params['statement_timeout']}")
    if params["initial_throughput_mb_s"] <= 0:
        raise PgError(msg=f"initial_throughput_mb_s must be positive, got {params['initial_throughput_mb_s']}")
    for name in params.get("tables") or []:
        split_table_name(name)
    for key in ("schemas", "exclude_schemas"):
        for schema in params.get(key) or []:
            check_identifier(schema, f"schema in {key}")
    if params["operation"] in DISRUPTIVE and not params.get("windows") and not params.get("emergency"):
        raise PgError(msg=f"operation {params['operation']} is disruptive: give the maintenance 'windows' "
                          "(and optionally 'window'), or an 'emergency' approval")


def run_pg_maintenance(params: dict[str, Any], *, check_mode: bool, diff_mode: bool = False) -> dict[str, Any]:
    validate(params)
    # Unquoted SQL names and setting names are case-insensitive; so are ours.
    params = dict(params)
    for key in ("schemas", "exclude_schemas"):
        if params.get(key):
            params[key] = [schema.lower() for schema in params[key]]
    if params.get("settings"):
        params["settings"] = {name.lower(): value for name, value in params["settings"].items()}
    operation = params["operation"]
    guard = guard_from_params(params) if operation in DISRUPTIVE else None
    kwargs = conninfo_from_params(params)
    settings = RunSettings(lock_timeout_ms=params["lock_timeout"], statement_timeout_ms=params["statement_timeout"],
                           jobs=params["jobs"], initial_throughput=params["initial_throughput_mb_s"] * 1048576,
                           concurrently=params["concurrently"])
    conn = connect(kwargs)
    try:
        set_timeouts(conn, lock_timeout_ms=settings.lock_timeout_ms, statement_timeout_ms=settings.statement_timeout_ms)
        version = server_version_num(conn)
        if operation == "report":
            return _report(conn, params, version)
        if operation == "settings":
            return {"warnings_detail": [], **_settings(conn, params, check_mode=check_mode, diff_mode=diff_mode)}
        # Routine work on named tables without a bloat threshold needs no bloat estimate.
        estimate = not (operation in ROUTINE and params.get("tables") and params.get("min_bloat_ratio") is None)
        tables = _measure_tables(conn, params, estimate_bloat=estimate)
        if operation == "reset_sequences":
            return {"warnings_detail": [],
                    **_reset_sequences(conn, params, tables, check_mode=check_mode, diff_mode=diff_mode)}
        return _table_operation(conn, kwargs, params, tables, settings, version, guard, check_mode=check_mode)
    finally:
        conn.close()


def _selection(params: dict[str, Any], tables: dict, operation: str):
    return select_tables(
        tables, operation=operation, names=params.get("tables"),
        thresholds=Thresholds(params.get("min_dead_tuples"), params.get("min_dead_ratio"),
                              params.get("min_bloat_ratio")),
        include_schemas=params.get("schemas"), exclude_schemas=params.get("exclude_schemas"))


def _table_operation(conn: Any, kwargs: dict[str, Any], params: dict[str, Any], tables: dict,
                     settings: RunSettings, version: int, guard: Any, *, check_mode: bool) -> dict[str, Any]:
    operation = params["operation"]
    outcome = Outcome()
    if operation in DISRUPTIVE:
        if not check_mode:
            # Outside a window (no approval) nothing is touched, not even an ANALYZE.
            guard.require(refusal="refusing disruptive maintenance")
            if params["refresh_statistics"]:
                tables = _refresh_stale_statistics(conn, params, tables, outcome)
    selection = _selection(params, tables, operation)

    # The first worker reuses the connection that measured; the others open their own.
    spare = [conn]

    def new_connection() -> Any:
        return spare.pop() if spare else connect(kwargs)

    if operation in ROUTINE:
        if check_mode:
            outcome.records = [_planned(operation, t, settings) for t in selection.chosen]
        else:
            run_routine(new_connection, operation, selection.chosen, settings=settings,
                        server_version=version, outcome=outcome)
    elif check_mode:
        plan_disruptive(operation, selection.chosen, settings=settings, guard=guard, outcome=outcome)
    else:
        run_disruptive(new_connection, operation, selection.chosen, settings=settings, server_version=version,
                       outcome=outcome, guard=guard)
    return _table_result(operation, outcome, selection.left_out, check_mode=check_mode)


def _planned(operation: str, table: Any, settings: RunSettings) -> dict[str, Any]:
    record = base_record(operation, table, concurrently=settings.concurrently)
    record["estimated_duration_s"] = round(work_bytes(operation, table) / settings.initial_throughput, 1)
    return record


def _refresh_stale_statistics(conn: Any, params: dict[str, Any], tables: dict, outcome: Outcome) -> dict:
    """ANALYZE the candidates whose bloat cannot be estimated, then measure again."""
    candidates = (resolve_named_tables(params["tables"], tables) if params.get("tables")
                  else _selection(params, tables, "analyze").chosen)
    stale = [t for t in candidates if t.stats_problem and "privilege" not in t.stats_problem]
    for table in stale:
        statement = sql.SQL("ANALYZE {}").format(sql.Identifier(table.schema, table.name))
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            outcome.warnings.append(f"{table.qualified_name}: ANALYZE before estimating bloat failed: "
                                    f"{first_line(exc)}")
            continue
        outcome.executed.append(statement.as_string(conn))
    return _measure_tables(conn, params) if stale else tables


def _table_result(operation: str, outcome: Outcome, left_out: list, *, check_mode: bool) -> dict[str, Any]:
    records = outcome.records
    counts = {status: sum(r["status"] == status for r in records)
              for status in ("done", "skipped", "failed", "planned", "would skip")}
    if check_mode:
        msg = (f"{operation}: would run on {counts['planned']} table(s)"
               + (f", would skip {counts['would skip']}" if counts["would skip"] else "")
               + f"; {len(left_out)} left out")
    else:
        msg = (f"{operation}: {counts['done']} table(s) done, {counts['skipped']} skipped, "
               f"{counts['failed']} failed; {len(left_out)} left out")
    result = {"changed": outcome.changed, "msg": msg, "tables": records, "left_out": left_out,
              "executed": outcome.executed, "warnings_detail": outcome.warnings}
    if outcome.window is not None:
        result["window"] = outcome.window
    if counts["failed"]:
        failed = [f"{r['name']}: {r['reason']}" for r in records if r["status"] == "failed"]
        result["failed"] = True
        result["msg"] = msg + "; failed: " + "; ".join(failed)
    return result


def _report(conn: Any, params: dict[str, Any], version: int) -> dict[str, Any]:
    chosen = _scope(params, _measure_tables(conn, params))
    chosen.sort(key=lambda t: -t.dead_tuples)
    report = {
        "server_version": conn.execute("SELECT version()").fetchone()[0],
        "server_version_num": version,
        "server": read_server(conn, server_version=version),
        "tables": [t.as_dict() for t in chosen],
        "long_running_queries": pg_admin.long_running_queries(conn, seconds=params["long_query_seconds"]),
        "replication": pg_admin.replication(conn),
        "statements": pg_admin.top_statements(conn, limit=params["top_statements"], server_version=version),
    }
    unknown = [t.qualified_name for t in chosen if not t.bloat.known]
    msg = (f"{len(chosen)} table(s), {sum(t.dead_tuples for t in chosen)} dead tuples; "
           f"{len(report['long_running_queries'])} query(ies) over {params['long_query_seconds']:g}s")
    if unknown:
        msg += f"; bloat unknown for {len(unknown)} table(s) (see bloat_note)"
    return {"changed": False, "msg": msg, "report": report, "executed": [], "warnings_detail": []}


def _measure_tables(conn: Any, params: dict[str, Any], *, estimate_bloat: bool = True) -> dict:
    """The tables of the database; only the named ones when O(tables) is given (a catalog of
    thousands of tables costs time)."""
    only = [".".join(split_table_name(n)) for n in params["tables"]] if params.get("tables") else None
    return read_tables(conn, stale_ratio=params["stale_statistics_ratio"], only=only,
                       estimate_bloat=estimate_bloat)


def _scope(params: dict[str, Any], tables: dict) -> list:
    """The named tables (each must exist), else every table of the included schemas."""
    if params.get("tables"):
        return resolve_named_tables(params["tables"], tables)
    return [t for t in tables.values() if in_schemas(t, params.get("schemas"), params.get("exclude_schemas"))]


def _reset_sequences(conn: Any, params: dict[str, Any], tables: dict, *, check_mode: bool,
                     diff_mode: bool) -> dict[str, Any]:
    scope = _scope(params, tables)
    records, executed, before, after = [], [], {}, {}
    for seq in pg_admin.owned_sequences(conn, scope):
        name = f"{seq['seq_schema']}.{seq['seq_name']}"
        last, called, column_max = pg_admin.sequence_position(conn, seq)
        record = {"name": name, "action": "reset_sequences", "table": f"{seq['schema']}.{seq['table_name']}",
                  "column": seq["column_name"], "last_value": last, "column_max": column_max,
                  "status": "unchanged", "reason": None, "duration_s": None}
        if seq["increment_by"] < 0:
            record["reason"] = "descending sequence: left alone"
        elif pg_admin.sequence_is_behind(last, called, column_max):
            before[name], after[name] = last, column_max
            if check_mode:
                record["status"] = "planned"
            else:
                statement, new_value = pg_admin.advance_sequence(conn, seq)
                executed.append(statement)
                record["status"] = "done" if new_value is not None else "unchanged"
                record["new_value"] = new_value
        else:
            record["reason"] = "not behind its column"
        records.append(record)
    changed = any(r["status"] in ("done", "planned") for r in records)
    moved = sum(r["status"] in ("done", "planned") for r in records)
    result = {"changed": changed, "tables": records, "executed": executed,
              "msg": f"{moved} of {len(records)} owned sequence(s) {'would move' if check_mode else 'moved'} forward"}
    if diff_mode:
        result["diff"] = {"before": before, "after": after}
    return result


def _settings(conn: Any, params: dict[str, Any], *, check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    wanted = dict(params["settings"])
    records = pg_admin.plan_settings(conn, wanted)
    executed: list[str] = []
    if not check_mode:
        pg_admin.apply_settings(conn, records, executed)
    changed = any(r["change"] for r in records)
    restart = [r["name"] for r in records if r["needs_restart"]]
    result = {
        "changed": changed, "settings": records, "executed": executed, "needs_restart": restart,
        "msg": (f"{sum(r['change'] for r in records)} of {len(records)} setting(s) "
                f"{'would change' if check_mode else 'changed'}"
                + (f"; restart needed for {', '.join(restart)}" if restart else "")),
    }
    if diff_mode:
        result["diff"] = {"before": {r["name"]: r["before"] for r in records if r["change"]},
                          "after": {r["name"]: r["after"] for r in records if r["change"]}}
    return result
