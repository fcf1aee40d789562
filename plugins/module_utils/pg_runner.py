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
from .pg_indexes import indexes_result, parse_index_specs, plan_builds, plan_indexes, run_builds, to_build
from .pg_maintenance import (
    DISRUPTIVE,
    ROUTINE,
    Outcome,
    RunSettings,
    Thresholds,
    classify_failure,
    in_schemas,
    plan_disruptive,
    plan_routine,
    refresh_failed_records,
    resolve_named_tables,
    run_disruptive,
    run_routine,
    select_tables,
)
from .pg_performance import performance_review
from .pg_stats import read_server, read_tables
from .records import human_bytes, is_changed, make_record
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
    limit = params.get("max_connections_percent")
    if limit is not None and not 0 <= limit <= 100:
        raise PgError(msg=f"max_connections_percent must be between 0 and 100, got {limit}")
    if params["initial_throughput_mb_s"] <= 0:
        raise PgError(msg=f"initial_throughput_mb_s must be positive, got {params['initial_throughput_mb_s']}")
    for name in params.get("tables") or []:
        split_table_name(name)
    for key in ("schemas", "exclude_schemas"):
        for schema in params.get(key) or []:
            check_identifier(schema, f"schema in {key}")
    for name in ("top_statements", "top_relations"):
        if params.get(name) is not None and params[name] < 0:
            raise PgError(msg=f"{name} must not be negative, got {params[name]}")
    if params["operation"] == "create_indexes":
        parse_index_specs(params.get("indexes"))
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
    # Only the disruptive operations read a window (and need python-dateutil for rrule windows); create_indexes
    # reads one when it is given (CONCURRENTLY blocks no writes, but it is maintenance load).
    consults_window = operation in DISRUPTIVE or (
        operation == "create_indexes" and bool(params.get("windows") or params.get("emergency")))
    guard = guard_from_params(params) if consults_window else None
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
        if operation == "performance_review":
            return performance_review(conn, params, version)
        if operation == "create_indexes":
            return _create_indexes(conn, params, settings, guard, check_mode=check_mode, diff_mode=diff_mode)
        if operation == "settings":
            return {"warnings_detail": [], **_settings(conn, params, check_mode=check_mode, diff_mode=diff_mode)}
        # Routine work on named tables without a bloat threshold needs no bloat estimate.
        estimate = not (operation in ROUTINE and params.get("tables") and params.get("min_bloat_ratio") is None)
        tables = _measure_tables(conn, params, estimate_bloat=estimate)
        if operation == "reset_sequences":
            return {"warnings_detail": [],
                    **_reset_sequences(conn, params, tables, check_mode=check_mode, diff_mode=diff_mode)}
        return _table_operation(conn, kwargs, params, tables, settings, version, guard, check_mode=check_mode,
                                diff_mode=diff_mode)
    except PgError as exc:
        if exc.details.get("table") and "does not exist" in exc.msg:
            # Say where it was looked for: an empty database option is libpq's default database, maybe not the one meant.
            exc.msg = f"{exc.msg} in database {conn.info.dbname!r}"
        raise
    except psycopg.Error as exc:
        # Any other statement outside a table's own work (its errors are records): a message, never a traceback.
        raise PgError(msg=f"{operation} failed: {classify_failure(exc, settings)[1]}") from exc
    finally:
        conn.close()


def _create_indexes(conn: Any, params: dict[str, Any], settings: RunSettings, guard: Any, *, check_mode: bool,
                    diff_mode: bool) -> dict[str, Any]:
    """Compare every wanted index with the catalog first (bad input fails here), then build what is missing."""
    outcome = Outcome()
    plan_indexes(conn, parse_index_specs(params["indexes"]), outcome)
    if check_mode:
        if guard is not None:
            outcome.window = guard.status().decision()
        plan_builds(outcome, settings=settings, guard=guard)
    else:
        if guard is not None and to_build(outcome):
            # Outside the window (no approval) nothing is built; a run with nothing to build passes anywhere.
            outcome.window = guard.require(refusal="refusing to build indexes").decision()
        run_builds(conn, outcome, settings=settings, guard=guard)
    return indexes_result(outcome, check_mode=check_mode, diff_mode=diff_mode)


def _selection(params: dict[str, Any], tables: dict, operation: str):
    return select_tables(
        tables, operation=operation, names=params.get("tables"),
        thresholds=Thresholds(params.get("min_dead_tuples"), params.get("min_dead_ratio"),
                              params.get("min_bloat_ratio")),
        include_schemas=params.get("schemas"), exclude_schemas=params.get("exclude_schemas"))


def _table_operation(conn: Any, kwargs: dict[str, Any], params: dict[str, Any], tables: dict,
                     settings: RunSettings, version: int, guard: Any, *, check_mode: bool,
                     diff_mode: bool) -> dict[str, Any]:
    operation = params["operation"]
    outcome = Outcome()
    analyze_failures: dict[str, tuple[str, str]] = {}
    if operation in DISRUPTIVE:
        if check_mode:
            outcome.window = guard.status().decision()
        else:
            # Outside a window (no approval) nothing is touched, not even an ANALYZE.
            outcome.window = guard.require(refusal="refusing disruptive maintenance").decision()
            if params["refresh_statistics"]:
                tables, analyze_failures = _refresh_stale_statistics(conn, params, tables, outcome, settings)
    selection = _selection(params, tables, operation)
    selection.left_out = refresh_failed_records(selection.left_out, analyze_failures, operation)

    # The first worker reuses the connection that measured; the others open their own.
    spare = [conn]

    def new_connection() -> Any:
        return spare.pop() if spare else connect(kwargs)

    try:
        if operation in ROUTINE:
            if check_mode:
                plan_routine(operation, selection.chosen, settings=settings, outcome=outcome)
            else:
                run_routine(new_connection, operation, selection.chosen, settings=settings,
                            server_version=version, outcome=outcome)
        elif check_mode:
            plan_disruptive(operation, selection.chosen, settings=settings, guard=guard, outcome=outcome)
        else:
            run_disruptive(new_connection, operation, selection.chosen, settings=settings, server_version=version,
                           outcome=outcome, guard=guard)
    except PgError as exc:
        # Stopped half-way: the records say what ran and what did not, the left-out tables included.
        exc.details["records"] = exc.details.get("records", []) + selection.left_out
        if outcome.window is not None:
            exc.details["window"] = outcome.window
        raise
    return _table_result(operation, outcome, selection.left_out, check_mode=check_mode, diff_mode=diff_mode)


def _refresh_stale_statistics(conn: Any, params: dict[str, Any], tables: dict, outcome: Outcome,
                              settings: RunSettings) -> tuple[dict, dict[str, tuple[str, str]]]:
    """ANALYZE the candidates whose bloat cannot be estimated, then measure again; (tables, the failed ANALYZEs
    by table: classify_failure's status and reason)."""
    candidates = (resolve_named_tables(params["tables"], tables) if params.get("tables")
                  else _selection(params, tables, "analyze").chosen)
    stale = [t for t in candidates if t.stats_problem and "privilege" not in t.stats_problem]
    failures: dict[str, tuple[str, str]] = {}
    for table in stale:
        statement = sql.SQL("ANALYZE {}").format(sql.Identifier(table.schema, table.name))
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            outcome.warnings.append(f"{table.qualified_name}: ANALYZE before estimating bloat failed: "
                                    f"{first_line(exc)}")
            failures[table.qualified_name] = classify_failure(exc, settings)
            continue
        outcome.executed.append(statement.as_string(conn))
    return (_measure_tables(conn, params) if stale else tables), failures


def _table_result(operation: str, outcome: Outcome, left_out: list[dict[str, Any]], *, check_mode: bool,
                  diff_mode: bool) -> dict[str, Any]:
    records = outcome.records() + left_out
    if check_mode:
        msg = (f"{operation}: would run on {outcome.count('planned')} table(s)"
               + (f", would skip {outcome.count('skipped')}" if outcome.count("skipped") else "")
               + f"; {len(left_out)} left out")
    else:
        msg = (f"{operation}: {outcome.count('done')} table(s) done, {outcome.count('skipped')} skipped, "
               f"{outcome.count('failed')} failed; {len(left_out)} left out")
    result = {"changed": is_changed(records), "msg": msg, "records": records,
              "executed": outcome.executed, "warnings_detail": outcome.warnings}
    if outcome.window is not None:
        result["window"] = outcome.window
    if diff_mode:
        changing = [work for work in outcome.works if work.status in ("done", "planned")]
        result["diff"] = {
            "before": {w.name: {"dead_tuples": w.table.dead_tuples, "total_bytes": w.table.total_bytes}
                       for w in changing},
            "after": {w.name: w.after() for w in changing},
        }
    failed_left_out = [r for r in left_out if r["status"] == "failed"]
    if outcome.count("failed") or failed_left_out:
        failed = ([f"{w.name}: {w.reason}" for w in outcome.works if w.status == "failed"]
                  + [f"{r['name']}: {r['detail']}" for r in failed_left_out])
        result["failed"] = True
        result["msg"] = msg + "; failed: " + "; ".join(failed)
    return result


def _report(conn: Any, params: dict[str, Any], version: int) -> dict[str, Any]:
    chosen = _scope(params, _measure_tables(conn, params))
    chosen.sort(key=lambda t: -t.dead_tuples)
    server = read_server(conn, server_version=version)
    report = {
        "server_version": conn.execute("SELECT version()").fetchone()[0],
        "server_version_num": version,
        "server": server,
        "tables": [t.as_dict() for t in chosen],
        "long_running_queries": pg_admin.long_running_queries(conn, seconds=params["long_query_seconds"]),
        "replication": pg_admin.replication(conn),
        "statements": pg_admin.top_statements(conn, limit=params["top_statements"], server_version=version),
    }
    database = conn.info.dbname
    connections = connections_record(database, server, params.get("max_connections_percent"))
    dead = sum(t.dead_tuples for t in chosen)
    total_bytes = sum(t.total_bytes or 0 for t in chosen)
    contents = make_record(
        f"database {database}", "report", "ok",
        f"PostgreSQL {server['version']}; {len(chosen)} table(s), {dead} dead tuples, {human_bytes(total_bytes)}",
        after={"tables": len(chosen), "dead_tuples": dead, "total_bytes": total_bytes})
    unknown = [t.qualified_name for t in chosen if not t.bloat.known]
    msg = (f"{len(chosen)} table(s), {dead} dead tuples; "
           f"{len(report['long_running_queries'])} query(ies) over {params['long_query_seconds']:g}s")
    if unknown:
        msg += f"; bloat unknown for {len(unknown)} table(s) (see bloat_note)"
    if connections["status"] == "breach":
        msg += f"; connections over the limit: {connections['detail']}"
    return {"changed": False, "msg": msg, "records": [connections, contents], "report": report, "executed": [],
            "warnings_detail": []}


def connections_record(database: str, server: dict[str, Any], limit_percent: float | None) -> dict[str, Any]:
    """``postgresql <db>``: sessions against max_connections; ``breach`` over ``limit_percent`` when given."""
    detail = (f"PostgreSQL {server['version']}: {server['connections']} of {server['max_connections']} "
              f"connections ({server['connections_percent']:.1f}%")
    detail += f", limit {limit_percent:g}%)" if limit_percent is not None else ")"
    over = limit_percent is not None and server["connections_percent"] > limit_percent
    return make_record(f"postgresql {database}", "connections", "breach" if over else "ok", detail,
                       after=server)


def _measure_tables(conn: Any, params: dict[str, Any], *, estimate_bloat: bool = True) -> dict:
    """The tables of the database; only the named ones when O(tables) is given (a catalog of
    thousands of tables costs time)."""
    only = [".".join(split_table_name(n)) for n in params["tables"]] if params.get("tables") else None
    try:
        return read_tables(conn, stale_ratio=params["stale_statistics_ratio"], only=only,
                           estimate_bloat=estimate_bloat)
    except psycopg.Error as exc:
        # The catalog and statistics queries run under the same timeouts as the work: a timeout here is said.
        reason = classify_failure(exc, RunSettings(lock_timeout_ms=params["lock_timeout"],
                                                   statement_timeout_ms=params["statement_timeout"]))[1]
        raise PgError(msg=f"{params['operation']}: measuring the tables (sizes, dead tuples, bloat) failed: {reason}; "
                          "no table was worked on after it") from exc


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
        column = f"{seq['schema']}.{seq['table_name']}.{seq['column_name']}"
        last, called, column_max = pg_admin.sequence_position(conn, seq)
        status, detail, new_value = "unchanged", "not behind its column", None
        if seq["increment_by"] < 0:
            detail = "descending sequence: left alone"
        elif pg_admin.sequence_is_behind(last, called, column_max):
            if check_mode:
                status, new_value = "planned", column_max
            else:
                statement, new_value = pg_admin.advance_sequence(conn, seq)
                executed.append(statement)
                if new_value is not None:
                    status = "done"
                else:
                    detail = "not behind its column (another session moved it first)"
            if status in ("planned", "done"):
                before[name], after[name] = last, new_value
                detail = f"last_value {last} -> {new_value} (max of {column})"
        records.append(make_record(name, "reset_sequences", status, detail, before={"last_value": last},
                                   after={"last_value": new_value} if status in ("planned", "done") else None))
    moved = sum(r["status"] in ("done", "planned") for r in records)
    result = {"changed": is_changed(records), "records": records, "executed": executed,
              "msg": f"{moved} of {len(records)} owned sequence(s) {'would move' if check_mode else 'moved'} forward"}
    if diff_mode:
        result["diff"] = {"before": before, "after": after}
    return result


def _settings(conn: Any, params: dict[str, Any], *, check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    wanted = dict(params["settings"])
    plans = pg_admin.plan_settings(conn, wanted)
    executed: list[str] = []
    if not check_mode:
        pg_admin.apply_settings(conn, plans, executed)
    changing = [plan for plan in plans if plan["change"]]
    restart = [plan["name"] for plan in plans if plan["needs_restart"]]
    records = [pg_admin.setting_record(plan) for plan in plans]
    result = {
        "changed": is_changed(records), "records": records, "executed": executed, "needs_restart": restart,
        "msg": (f"{len(changing)} of {len(plans)} setting(s) "
                f"{'would change' if check_mode else 'changed'}"
                + (f"; restart needed for {', '.join(restart)}" if restart else "")),
    }
    if diff_mode:
        result["diff"] = {"before": {plan["name"]: plan["before"] for plan in changing},
                          "after": {plan["name"]: plan["after"] for plan in changing}}
    return result
