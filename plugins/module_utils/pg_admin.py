# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The database-wide parts of pg_maintenance: report, reset_sequences, settings.

``plan_settings`` returns one plan per setting (the comparison and what ALTER SYSTEM
did with it); ``setting_record`` turns a plan into its result record.
"""

from __future__ import annotations

import re
import time
from typing import Any

from .pg import PgError, check_identifier, first_line, psycopg, qualified, sql
from .pg_stats import TableInfo
from .records import make_record

# --------------------------------------------------------------------------- report

LONG_RUNNING_SQL = """
SELECT pid, usename, datname, state, application_name,
       extract(epoch FROM now() - query_start)::float AS duration_s, left(query, %(width)s) AS query
  FROM pg_stat_activity
 WHERE pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle' AND query_start IS NOT NULL
   AND backend_type = 'client backend' AND now() - query_start > make_interval(secs => %(seconds)s)
 ORDER BY query_start
"""

REPLICATION_SQL = """
SELECT application_name, client_addr::text, state, sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)::bigint AS sent_lag_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint AS flush_lag_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS replay_lag_bytes
  FROM pg_stat_replication ORDER BY application_name
"""


def _rows(conn: Any, query: str, params: Any = None) -> list[dict[str, Any]]:
    cursor = conn.execute(query, params)
    names = [d.name for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def long_running_queries(conn: Any, *, seconds: float, width: int = 200) -> list[dict[str, Any]]:
    rows = _rows(conn, LONG_RUNNING_SQL, {"seconds": seconds, "width": width})
    for row in rows:
        row["duration_s"] = round(row["duration_s"], 1)
    return rows


def replication(conn: Any) -> dict[str, Any]:
    if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
        lag = conn.execute("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float").fetchone()[0]
        return {"role": "standby", "replay_delay_s": round(lag, 1) if lag is not None else None, "clients": []}
    return {"role": "primary", "clients": _rows(conn, REPLICATION_SQL)}


def top_statements(conn: Any, *, limit: int, server_version: int, width: int = 200,
                   this_database_only: bool = False) -> dict[str, Any]:
    """Top statements by mean time from pg_stat_statements, or why there are none (``installed`` says which why).

    The view holds every database's statements; ``this_database_only`` keeps the connected database's.
    """
    installed = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_stat_statements'").fetchone()
    if installed is None:
        return {"available": False, "installed": False,
                "reason": "the pg_stat_statements extension is not installed in this "
                          "database (CREATE EXTENSION pg_stat_statements)", "statements": []}
    mean, total = ("mean_exec_time", "total_exec_time") if server_version >= 130000 else ("mean_time", "total_time")
    where = (sql.SQL("WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ")
             if this_database_only else sql.SQL(""))
    query = sql.SQL("SELECT queryid, calls, round({mean}::numeric, 3)::float AS mean_ms, "
                    "round({total}::numeric, 3)::float AS total_ms, rows, left(query, %s) AS query "
                    "FROM {view} {where}ORDER BY {mean} DESC LIMIT %s").format(
        mean=sql.Identifier(mean), total=sql.Identifier(total),
        view=sql.Identifier(installed[0], "pg_stat_statements"), where=where)
    try:
        return {"available": True, "installed": True, "statements": _rows(conn, query, (width, limit))}
    except psycopg.Error as exc:
        # Installed but not in shared_preload_libraries, or no privilege.
        return {"available": False, "installed": True, "reason": first_line(exc), "statements": []}


# --------------------------------------------------------------------------- sequences

OWNED_SEQUENCES_SQL = """
SELECT sn.nspname AS seq_schema, s.relname AS seq_name, tn.nspname AS schema, t.relname AS table_name,
       a.attname AS column_name, ps.increment_by
  FROM pg_depend d
  JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_class t ON t.oid = d.refobjid
  JOIN pg_namespace tn ON tn.oid = t.relnamespace
  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
  JOIN pg_sequences ps ON ps.schemaname = sn.nspname AND ps.sequencename = s.relname
 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
 ORDER BY tn.nspname, t.relname, a.attname
"""


def owned_sequences(conn: Any, tables: list[TableInfo]) -> list[dict[str, Any]]:
    wanted = {t.qualified_name for t in tables}
    return [r for r in _rows(conn, OWNED_SEQUENCES_SQL) if f"{r['schema']}.{r['table_name']}" in wanted]


def sequence_position(conn: Any, seq: dict[str, Any]) -> tuple[int, bool, int | None]:
    """(last_value, is_called, max of the column)."""
    seq_ref = qualified(seq["seq_schema"], seq["seq_name"])
    last, called = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(seq_ref)).fetchone()
    column_max = conn.execute(sql.SQL("SELECT max({}) FROM {}").format(
        sql.Identifier(seq["column_name"]), qualified(seq["schema"], seq["table_name"]))).fetchone()[0]
    return last, called, column_max


def sequence_is_behind(last: int, called: bool, column_max: Any) -> bool:
    """True when the next nextval() would hand out a value the column already holds."""
    if column_max is None:
        return False
    return int(column_max) > last or (not called and int(column_max) == last)


def advance_sequence(conn: Any, seq: dict[str, Any]) -> tuple[str, int | None]:
    """setval to the column's max, in one statement that re-reads the sequence: never backwards."""
    statement = sql.SQL(
        "SELECT setval({regclass}, m, true) FROM (SELECT max({col}) AS m FROM {table}) x, {seq} s "
        "WHERE x.m IS NOT NULL AND (x.m > s.last_value OR (x.m = s.last_value AND NOT s.is_called))").format(
        regclass=sql.Literal(f'"{seq["seq_schema"]}"."{seq["seq_name"]}"'), col=sql.Identifier(seq["column_name"]),
        table=qualified(seq["schema"], seq["table_name"]), seq=qualified(seq["seq_schema"], seq["seq_name"]))
    row = conn.execute(statement).fetchone()
    return statement.as_string(conn), (row[0] if row else None)


# --------------------------------------------------------------------------- settings

MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}
TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000}
BOOL_WORDS = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}
SETTINGS_SQL = ("SELECT name, setting, unit, vartype, context, pending_restart, enumvals "
                "FROM pg_settings WHERE name = ANY(%s)")


def _unit_scale(unit: str | None) -> tuple[str, float] | None:
    """('memory', bytes) or ('time', ms) for one pg_settings unit such as '8kB' or 'ms'."""
    if not unit:
        return None
    match = re.fullmatch(r"(\d*)\s*([a-zA-Z]+)", unit)
    if match is None:
        return None
    count = int(match.group(1) or 1)
    if match.group(2) in MEMORY_UNITS:
        return "memory", count * MEMORY_UNITS[match.group(2)]
    if match.group(2) in TIME_UNITS:
        return "time", count * TIME_UNITS[match.group(2)]
    return None


def normalize_setting(value: Any, *, vartype: str, unit: str | None, name: str) -> Any:
    """A comparable form of a setting value: base units for numbers, booleans, lower-case enums."""
    text = str(value).strip()
    if vartype == "bool":
        word = text.lower()
        if word not in BOOL_WORDS:
            raise PgError(msg=f"setting {name}: {value!r} is not a boolean (on/off)")
        return BOOL_WORDS[word]
    if vartype in ("integer", "real"):
        scale = _unit_scale(unit)
        match = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)", text)
        if match is None:
            raise PgError(msg=f"setting {name}: {value!r} is not a number with an optional unit")
        number, suffix = float(match.group(1)), match.group(2)
        if scale is None:
            if suffix:
                raise PgError(msg=f"setting {name} takes no unit, got {value!r}")
            return number
        kind, base = scale
        table = MEMORY_UNITS if kind == "memory" else TIME_UNITS
        if suffix and suffix not in table:
            raise PgError(msg=f"setting {name}: unit {suffix!r} in {value!r} is not a {kind} unit "
                              f"({', '.join(table)})")
        return number * (table[suffix] if suffix else base)
    if vartype == "enum":
        return text.lower()
    return text


def plan_settings(conn: Any, wanted: dict[str, Any]) -> list[dict[str, Any]]:
    """One plan per setting: current value (what ALTER SYSTEM already holds, else the live one), wanted, change or not."""
    for name in wanted:
        check_identifier(name, "setting name")
    rows = {r["name"]: r for r in _rows(conn, SETTINGS_SQL, (list(wanted),))}
    unknown = [name for name in wanted if name not in rows]
    if unknown:
        raise PgError(msg=f"unknown setting(s): {', '.join(unknown)}")
    file_values = _auto_conf_values(conn, list(wanted))
    plans = []
    for name, value in wanted.items():
        row = rows[name]
        if row["context"] == "internal":
            raise PgError(msg=f"setting {name} is read-only (context internal)")
        if row["vartype"] == "enum" and str(value).lower() not in [v.lower() for v in row["enumvals"] or []]:
            raise PgError(msg=f"setting {name}: {value!r} is not one of {', '.join(row['enumvals'] or [])}")
        want = normalize_setting(value, vartype=row["vartype"], unit=row["unit"], name=name)
        in_file = file_values.get(name)
        # postgresql.auto.conf holds what was written ('256MB'); a bare number there, like
        # pg_settings.setting, is in the setting's own unit.
        current = normalize_setting(in_file if in_file is not None else row["setting"],
                                    vartype=row["vartype"], unit=row["unit"], name=name)
        plans.append({
            "name": name, "before": in_file if in_file is not None else _display(row),
            "after": str(value), "change": current != want, "context": row["context"],
            "status": "planned" if current != want else "unchanged",
            "needs_restart": row["context"] == "postmaster" and (current != want or bool(row["pending_restart"])),
            "reason": None,
        })
    return plans


def _display(row: dict[str, Any]) -> str:
    return f"{row['setting']}{row['unit'] or ''}" if row["unit"] and not row["unit"][0].isdigit() else str(row["setting"])


def _auto_conf_values(conn: Any, names: list[str]) -> dict[str, str]:
    """What ALTER SYSTEM already wrote (pg_file_settings needs superuser; empty without it)."""
    try:
        rows = conn.execute(
            "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE '%%postgresql.auto.conf' "
            "AND name = ANY(%s) ORDER BY seqno", (names,)).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return {}
    return dict(rows)


def setting_record(plan: dict[str, Any]) -> dict[str, Any]:
    """The result record of one setting's plan: before and after value, and whether a restart is needed."""
    status = plan["status"]
    if status in ("done", "planned"):
        detail = f"{plan['before']} -> {plan['after']}" + (f" ({plan['reason']})" if plan["reason"] else "")
    elif status == "unchanged":
        detail = f"already {plan['after']}"
    else:
        detail = plan["reason"] or status
    if plan["needs_restart"]:
        detail += "; takes effect after a server restart" if status != "unchanged" else "; a server restart is pending"
    return make_record(plan["name"], "settings", status, detail, before={"value": plan["before"]},
                       after={"value": plan["after"]})


def apply_settings(conn: Any, plans: list[dict[str, Any]], executed: list[str]) -> None:
    """ALTER SYSTEM for each changed setting, then one reload; refresh needs_restart from the server."""
    changed = [r for r in plans if r["change"]]
    for plan in changed:
        statement = sql.SQL("ALTER SYSTEM SET {} = {}").format(
            sql.Identifier(plan["name"]), sql.Literal(plan["after"]))
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            plan["status"], plan["reason"] = "failed", f"ALTER SYSTEM failed: {first_line(exc)}"
            written = [r for r in changed if r["status"] == "done"]
            for later in changed:
                if later["status"] == "planned":
                    later["status"], later["reason"] = "skipped", "not written: an earlier ALTER SYSTEM failed"
            for done in written:
                done["reason"] = "written to postgresql.auto.conf, not reloaded"
            raise PgError(msg=f"ALTER SYSTEM SET {plan['name']} failed: {first_line(exc)}; "
                              f"{len(written)} setting(s) already written (not yet reloaded)",
                          records=[setting_record(r) for r in plans], executed=executed) from exc
        executed.append(statement.as_string(conn))
        plan["status"] = "done"
    if changed:
        conn.execute("SELECT pg_reload_conf()")
        executed.append("SELECT pg_reload_conf()")
        _wait_for_reload(conn, changed)


def _wait_for_reload(conn: Any, changed: list[dict[str, Any]], timeout: float = 3.0) -> None:
    """The reload is asynchronous: wait until reloadable settings show their new value."""
    deadline = time.monotonic() + timeout
    names = [r["name"] for r in changed]
    while True:
        rows = {r["name"]: r for r in _rows(conn, SETTINGS_SQL, (names,))}
        pending = False
        for record in changed:
            row = rows[record["name"]]
            if row["context"] == "postmaster":
                record["needs_restart"] = True
                continue
            want = normalize_setting(record["after"], vartype=row["vartype"], unit=row["unit"], name=record["name"])
            got = normalize_setting(row["setting"], vartype=row["vartype"], unit=row["unit"], name=record["name"])
            pending = pending or want != got
        if not pending or time.monotonic() > deadline:
            return
        time.sleep(0.1)
