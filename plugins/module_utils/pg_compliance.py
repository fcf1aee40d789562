# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The compliance report: retention rules as data, the audit-log summary and its continuity checks.

Everything here reads. One connection runs one REPEATABLE READ, READ ONLY transaction (every
figure is of the same snapshot); identifiers are checked against the catalog before any row is
read, so a missing table or a column of the wrong type fails the task naming it and reads nothing.

Two sources give the audit summary: the audit table (``measure_audit``) and, on Kubernetes, the
audit-logger pod's JSON log lines (``audit_event_record``, through the ``audit_event_records``
filter); both give the same ``audit_summary`` record.

``expect: kept`` rules (the guide's 7-year trade and 10-year audit retention) are reported, never
judged: whether history that should be there is missing cannot be told from the table (a system
younger than the retention period holds no row that old). Their record says how many rows are past
``max_age`` and so eligible for archiving, with status ``ok``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from .errors import MaintenanceError
from .pg import (
    check_identifier,
    conninfo_from_params,
    connect,
    first_line,
    psycopg,
    set_timeouts,
    split_table_name,
    sql,
)
from .records import PROBLEM_STATUSES, make_record
from .window import format_duration, parse_duration

UTC = timezone.utc
EXPECTS = ("gone", "kept")
RETENTION_KEYS = {"name", "table", "column", "max_age", "expect"}
AUDIT_DEFAULTS: dict[str, Any] = {"table": "audit_logs", "time_column": "created_at", "verb_column": "action",
                                  "id_column": "id", "hours": 24, "future_tolerance_seconds": 300}
TIME_TYPES = ("timestamptz", "timestamp", "date")
ID_TYPES = ("int2", "int4", "int8")
# Examples of id gaps and future-dated rows kept in a record: enough to start looking, short enough for a report.
EXAMPLES = 5
_YEARS = re.compile(r"\s*(?P<years>\d+)\s*y\s*")
_DURATION_HINT = "use e.g. 7y, 10y, 90d, 36h or 2w"


class ComplianceError(MaintenanceError):
    """Bad input: a rule, an audit option, a table or a column; ``msg`` names the value."""


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class MaxAge:
    """A retention age: whole calendar years (``7y``, as PostgreSQL's interval counts them) or a fixed duration."""

    text: str
    years: int = 0
    delta: timedelta = timedelta(0)


@dataclass(frozen=True)
class RetentionRule:
    name: str
    schema: str
    table: str
    column: str
    max_age: MaxAge
    expect: str

    @property
    def target(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class AuditSpec:
    schema: str
    table: str
    time_column: str
    verb_column: str
    id_column: str
    hours: int
    future_tolerance_seconds: int

    @property
    def target(self) -> str:
        return f"{self.schema}.{self.table}"


def parse_max_age(value: Any, owner: str) -> MaxAge:
    """``7y`` (calendar years) or any duration of the collection (``90d``, ``36h``, ``2w``); zero is refused."""
    if isinstance(value, str):
        years = _YEARS.fullmatch(value)
        if years:
            if int(years["years"]) == 0:
                raise ComplianceError(msg=f"{owner}: max_age {value!r} must be greater than zero")
            return MaxAge(text=value.strip(), years=int(years["years"]))
        if re.fullmatch(r"\s*\d+\s*m\s*", value):
            # 'm' is minutes in the collection's durations; a retention of minutes is almost surely meant as months.
            raise ComplianceError(msg=f"{owner}: max_age {value!r} would be minutes; write months as days (180d) "
                                      f"or years (1y)")
    try:
        delta = parse_duration(value, field_name="max_age", owner=owner)
    except MaintenanceError as exc:
        raise ComplianceError(msg=f"{exc.msg} ({_DURATION_HINT})") from exc
    return MaxAge(text=str(value).strip(), delta=delta)


def _identifier(value: Any, what: str) -> str:
    try:
        return check_identifier(value, what).lower()  # unquoted names fold to lower case in PostgreSQL
    except MaintenanceError as exc:
        raise ComplianceError(msg=exc.msg) from exc


def _table(value: Any, what: str) -> tuple[str, str]:
    try:
        return split_table_name(value)
    except MaintenanceError as exc:
        raise ComplianceError(msg=f"{what}: {exc.msg}") from exc


def parse_rules(raw: Any) -> list[RetentionRule]:
    """The ``retention`` option as rules; the first bad value fails, naming the rule and the value."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ComplianceError(msg=f"retention must be a list of rules, got {type(raw).__name__}")
    rules: list[RetentionRule] = []
    for position, spec in enumerate(raw):
        owner = f"retention[{position}]"
        if not isinstance(spec, Mapping):
            raise ComplianceError(msg=f"{owner} must be a dict with name, table, column, max_age and expect")
        unknown = sorted(set(spec) - RETENTION_KEYS)
        missing = sorted(key for key in RETENTION_KEYS if spec.get(key) in (None, ""))
        if unknown or missing:
            problems = ([f"unknown key(s) {', '.join(unknown)}"] if unknown else []) + (
                [f"missing {', '.join(missing)}"] if missing else [])
            raise ComplianceError(msg=f"{owner} ({spec.get('name', '?')}): {'; '.join(problems)}")
        name = str(spec["name"])
        owner = f"retention rule {name!r}"
        if any(rule.name == name for rule in rules):
            raise ComplianceError(msg=f"{owner} is named twice; rule names must be unique (they name the records)")
        if spec["expect"] not in EXPECTS:
            raise ComplianceError(msg=f"{owner}: expect {spec['expect']!r} must be gone or kept")
        schema, table = _table(spec["table"], owner)
        rules.append(RetentionRule(name=name, schema=schema, table=table,
                                   column=_identifier(spec["column"], f"{owner}: column"),
                                   max_age=parse_max_age(spec["max_age"], owner), expect=spec["expect"]))
    return rules


def parse_audit(raw: Any) -> AuditSpec | None:
    """The ``audit`` option (None: no audit checks), unset keys from AUDIT_DEFAULTS."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ComplianceError(msg=f"audit must be a dict, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(AUDIT_DEFAULTS))
    if unknown:
        raise ComplianceError(msg=f"audit: unknown key(s) {', '.join(unknown)}; "
                                  f"known are {', '.join(AUDIT_DEFAULTS)}")
    spec = {key: default if raw.get(key) is None else raw[key] for key, default in AUDIT_DEFAULTS.items()}
    # Ten years of hours, a day of tolerance: beyond them the date arithmetic overflows or the check means nothing.
    for key, least, most in (("hours", 1, 87600), ("future_tolerance_seconds", 0, 86400)):
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
            raise ComplianceError(msg=f"audit: {key} must be a whole number from {least} to {most}, got {value!r}")
    schema, table = _table(spec["table"], "audit")
    return AuditSpec(schema=schema, table=table,
                     **{key: _identifier(spec[key], f"audit: {key}")
                        for key in ("time_column", "verb_column", "id_column")},
                     hours=spec["hours"], future_tolerance_seconds=spec["future_tolerance_seconds"])


def validate(params: Mapping[str, Any]) -> tuple[list[RetentionRule], AuditSpec | None]:
    """Everything that can be judged without the database; fails before any connection."""
    rules, audit = parse_rules(params.get("retention")), parse_audit(params.get("audit"))
    if not rules and audit is None:
        raise ComplianceError(msg="nothing to check: give retention rules, audit, or both")
    for key, why in (("lock_timeout", "0 would wait forever"), ("statement_timeout", "a compliance read is short")):
        value = params.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ComplianceError(msg=f"{key} must be a whole number of at least 1 ms ({why}), got {value!r}")
    return rules, audit


# --------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class Column:
    relid: int
    attnum: int
    type_name: str
    index: str | None  # a valid, non-partial btree index whose first column this is


COLUMN_SQL = """
SELECT c.oid::int8, a.attnum, t.typname,
       (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
         WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum AND i.indisvalid AND i.indpred IS NULL
           AND am.amname = 'btree' ORDER BY ic.relname LIMIT 1)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = %(column)s AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_type t ON t.oid = a.atttypid
 WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""


def wanted_columns(rules: Iterable[RetentionRule], audit: AuditSpec | None) -> list[tuple[str, str, str, str, tuple]]:
    """(owner, schema, table, column, accepted types) of every column the checks read, in option order."""
    wanted = [(f"retention rule {rule.name!r}", rule.schema, rule.table, rule.column, TIME_TYPES) for rule in rules]
    if audit is not None:
        wanted += [("audit", audit.schema, audit.table, audit.time_column, TIME_TYPES),
                   ("audit", audit.schema, audit.table, audit.verb_column, ()),
                   ("audit", audit.schema, audit.table, audit.id_column, ID_TYPES)]
    return wanted


def resolve_columns(conn: Any, wanted: list[tuple[str, str, str, str, tuple]]) -> dict[tuple[str, str, str], Column]:
    """Every column looked up in the catalog; all the missing or mistyped ones fail together, named."""
    found: dict[tuple[str, str, str], Column] = {}
    problems: list[str] = []
    for owner, schema, table, column, types in wanted:
        row = conn.execute(COLUMN_SQL, {"schema": schema, "table": table, "column": column}).fetchone()
        if row is None:
            problems.append(f"{owner}: table {schema}.{table} does not exist")
        elif row[1] is None:
            problems.append(f"{owner}: column {column} does not exist in {schema}.{table}")
        elif types and row[2] not in types:
            kind = "a timestamp or date" if types == TIME_TYPES else "an integer"
            problems.append(f"{owner}: column {schema}.{table}.{column} is {row[2]}, not {kind}")
        else:
            found[(schema, table, column)] = Column(relid=row[0], attnum=row[1], type_name=row[2], index=row[3])
    if problems:
        unique = list(dict.fromkeys(problems))  # the audit table missing is said once, not per column
        # Which database was looked in: an empty database option means libpq's default one, maybe not the intended.
        database = getattr(getattr(conn, "info", None), "dbname", None)
        where = f" (in database {database!r})" if database else ""
        raise ComplianceError(msg="; ".join(unique) + "; nothing was read" + where)
    return found


# --------------------------------------------------------------------------- measuring


def plan_scans(conn: Any, query: Any, params: Mapping[str, Any], table: str) -> list[str]:
    """The plan's node types on ``table`` (Seq Scan, Index Only Scan...), from EXPLAIN without ANALYZE."""
    plan = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + query, params).fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found: set[str] = set()
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        if node.get("Relation Name") == table:
            found.add(node["Node Type"])
        stack.extend(node.get("Plans") or [])
    return sorted(found)


def iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return None


def cutoff_of(conn: Any, max_age: MaxAge) -> datetime:
    """now() (the transaction's start) minus max_age; PostgreSQL counts the years on the calendar."""
    return conn.execute("SELECT now() - make_interval(years => %s::int) - %s::interval",
                        (max_age.years, max_age.delta)).fetchone()[0]


def measure_rule(conn: Any, rule: RetentionRule, column: Column) -> dict[str, Any]:
    """The rows older than the cutoff and the oldest row (min() and a range count: index scans when indexed)."""
    cutoff = cutoff_of(conn, rule.max_age)
    col, table = sql.Identifier(rule.column), sql.Identifier(rule.schema, rule.table)
    query = sql.SQL("SELECT (SELECT min({col}) FROM {table}) AS oldest, "
                    "(SELECT count(*) FROM {table} WHERE {col} < %(cutoff)s) AS older").format(col=col, table=table)
    params = {"cutoff": cutoff}
    oldest, older = conn.execute(query, params).fetchone()
    age_days = None
    if oldest is not None:
        age_days = conn.execute("SELECT extract(epoch FROM now() - %s::timestamptz) / 86400", (oldest,)).fetchone()[0]
        age_days = round(float(age_days), 1)
    return {"table": rule.target, "column": rule.column, "max_age": rule.max_age.text, "expect": rule.expect,
            "cutoff": iso(cutoff), "older_rows": int(older), "oldest": iso(oldest), "oldest_age_days": age_days,
            "indexed": column.index is not None, "index": column.index,
            "scans": plan_scans(conn, query, params, rule.table)}


def retention_record(rule: RetentionRule, figures: Mapping[str, Any], seconds: float | None = None) -> dict[str, Any]:
    """``gone``: rows past max_age are a breach. ``kept``: reported as eligible for archiving, status ok."""
    older, where = figures["older_rows"], f"{rule.target}.{rule.column}"
    oldest = (f"oldest {figures['oldest']} ({figures['oldest_age_days']} days)" if figures["oldest"]
              else "the table holds no dated row")
    scan = "" if figures["indexed"] else f" (no index on {rule.column}: the count read the whole table)"
    after = dict(figures)
    if rule.expect == "kept":
        detail = (f"{older} row(s) older than {rule.max_age.text} kept in {where} (eligible for archiving), "
                  f"{oldest}{scan}")
        return make_record(f"retention {rule.name}", "retention", "ok", detail, after=after, seconds=seconds)
    if older:
        detail = (f"{older} row(s) older than {rule.max_age.text} (before {figures['cutoff']}) in {where}, {oldest}; "
                  f"the policy says they must be gone{scan}")
        after["remedy"] = (f"Archive and delete the {older} row(s) of {rule.target} older than {rule.max_age.text}, "
                           "as the retention policy requires.")
        return make_record(f"retention {rule.name}", "retention", "breach", detail, after=after, seconds=seconds)
    detail = f"no row older than {rule.max_age.text} in {where}, {oldest}{scan}"
    return make_record(f"retention {rule.name}", "retention", "ok", detail, after=after, seconds=seconds)


def measure_audit(conn: Any, audit: AuditSpec, time_column: Column) -> dict[str, Any]:
    """Rows since ``hours`` ago by verb, id gaps between them (lag()), and rows dated past now + tolerance."""
    now = conn.execute("SELECT now()").fetchone()[0]
    since = now - timedelta(hours=audit.hours)
    future = now + timedelta(seconds=audit.future_tolerance_seconds)
    table = sql.Identifier(audit.schema, audit.table)
    when, verb, ident = (sql.Identifier(audit.time_column), sql.Identifier(audit.verb_column),
                         sql.Identifier(audit.id_column))
    params = {"since": since, "future": future, "examples": EXAMPLES}
    # Future-dated rows are in the window too: they are counted, and their ids take part in the gap check
    # (leaving them out would show each as a false gap).
    rows = conn.execute(sql.SQL(
        "SELECT {verb}::text, count(*), count(*) FILTER (WHERE {when} > %(future)s) FROM {table} "
        "WHERE {when} >= %(since)s GROUP BY 1 ORDER BY 1").format(verb=verb, when=when, table=table), params).fetchall()
    by_verb = {("(null)" if row[0] is None else row[0]): int(row[1]) for row in rows}
    future_rows = sum(int(row[2]) for row in rows)
    gaps = conn.execute(sql.SQL(
        "SELECT prev_id, curr_id, count(*) OVER (), sum(curr_id - prev_id - 1) OVER () FROM ("
        "SELECT {ident} AS curr_id, lag({ident}) OVER (ORDER BY {ident}) AS prev_id FROM {table} "
        "WHERE {when} >= %(since)s) AS window_rows WHERE curr_id - prev_id > 1 ORDER BY curr_id LIMIT %(examples)s"
    ).format(ident=ident, table=table, when=when), params).fetchall()
    future_examples = []
    if future_rows:
        future_examples = [{"id": int(row_id), "at": iso(at)} for row_id, at in conn.execute(sql.SQL(
            "SELECT {ident}, {when} FROM {table} WHERE {when} > %(future)s ORDER BY {when} DESC LIMIT %(examples)s"
        ).format(ident=ident, when=when, table=table), params)]
    return {"table": audit.target, "hours": audit.hours, "since": iso(since), "by_verb": by_verb,
            "total": sum(by_verb.values()), "indexed": time_column.index is not None,
            "gaps": int(gaps[0][2]) if gaps else 0, "missing_ids": int(gaps[0][3]) if gaps else 0,
            "gap_examples": [{"after_id": int(gap[0]), "next_id": int(gap[1]), "missing": int(gap[1] - gap[0] - 1)}
                             for gap in gaps],
            "future_rows": future_rows, "future_examples": future_examples,
            "future_tolerance_seconds": audit.future_tolerance_seconds}


def verbs_text(by_verb: Mapping[str, int]) -> str:
    """``login 1439, delete 1``: most frequent first."""
    return ", ".join(f"{name} {count}" for name, count in sorted(by_verb.items(), key=lambda item: (-item[1], item[0])))


def audit_summary_record(source: str, by_verb: Mapping[str, int], hours: int, *, extra: Mapping[str, Any] | None = None,
                         note: str = "", seconds: float | None = None) -> dict[str, Any]:
    """The ``audit_summary`` record of either source; no event at all is ``unknown`` (nothing shows the log works)."""
    total = sum(by_verb.values())
    after = {"by_verb": dict(by_verb), "total": total, "hours": hours, **(extra or {})}
    if not total:
        after["remedy"] = (f"Check that the audit log of {source} is written: it holds no event of the last {hours}h, "
                           "so nothing shows auditing works.")
        return make_record(f"audit {source}", "audit_summary", "unknown",
                           f"no audit event in the last {hours}h{note}", after=after, seconds=seconds)
    return make_record(f"audit {source}", "audit_summary", "ok",
                       f"{total} audit event(s) in the last {hours}h: {verbs_text(by_verb)}{note}",
                       after=after, seconds=seconds)


def audit_records(audit: AuditSpec, figures: Mapping[str, Any], seconds: float | None = None) -> list[dict[str, Any]]:
    """The table's ``audit_summary`` and ``audit_continuity`` records."""
    scan = "" if figures["indexed"] else f" (no index on {audit.time_column}: read the whole table)"
    summary = audit_summary_record(audit.target, figures["by_verb"], audit.hours, note=scan, seconds=seconds,
                                   extra={"since": figures["since"], "indexed": figures["indexed"]})
    keys = ("gaps", "missing_ids", "gap_examples", "future_rows", "future_examples", "future_tolerance_seconds",
            "hours")
    after = {key: figures[key] for key in keys}
    name = f"audit {audit.target}"
    if not figures["total"]:
        after["remedy"] = f"Check that {audit.target} is written to: no row of the last {audit.hours}h to check."
        return [summary, make_record(name, "audit_continuity", "unknown",
                                     f"no row of the last {audit.hours}h: continuity not checked", after=after)]
    found, remedies = [], []
    if figures["gaps"]:
        shown = ", ".join(f"{gap['after_id'] + 1}..{gap['next_id'] - 1}" for gap in figures["gap_examples"])
        found.append(f"{figures['gaps']} id gap(s), {figures['missing_ids']} id(s) missing (first: {shown})")
        remedies.append("find out whether the audit rows with the missing ids were deleted (backups, the "
                        "audit-logger's own log); a rolled-back insert also leaves a gap")
    if figures["future_rows"]:
        first = figures["future_examples"][0]
        found.append(f"{figures['future_rows']} row(s) dated more than {audit.future_tolerance_seconds}s in the "
                     f"future (latest id {first['id']} at {first['at']})")
        remedies.append("check the clock of the writers of the future-dated rows (NTP) and whether they were forged")
    if not found:
        return [summary, make_record(name, "audit_continuity", "ok",
                                     f"{figures['total']} row(s) of the last {audit.hours}h: no id gap, "
                                     f"no row dated in the future", after=after)]
    remedy = "; ".join(remedies)
    after["remedy"] = remedy[0].upper() + remedy[1:] + "."
    return [summary, make_record(name, "audit_continuity", "breach", "; ".join(found), after=after)]


# --------------------------------------------------------------------------- the run


def _timed(conn: Any, work: Any) -> tuple[Any, float, str | None]:
    """``work(conn)`` in a savepoint: a statement timeout on one check leaves the others running."""
    started = time.monotonic()
    try:
        with conn.transaction():
            value = work(conn)
    except psycopg.Error as exc:
        return None, time.monotonic() - started, first_line(exc)
    return value, time.monotonic() - started, None


def failed_record(name: str, action: str, error: str, remedy: str) -> dict[str, Any]:
    return make_record(name, action, "failed", f"could not be read: {error}", after={"remedy": remedy})


def run_checks(conn: Any, rules: list[RetentionRule], audit: AuditSpec | None) -> list[dict[str, Any]]:
    """Inside the read-only transaction: the catalog first (fails naming what is wrong), then the reads."""
    columns = resolve_columns(conn, wanted_columns(rules, audit))
    audited: list[dict[str, Any]] = []
    if audit is not None:
        figures, seconds, error = _timed(conn, lambda c: measure_audit(
            c, audit, columns[(audit.schema, audit.table, audit.time_column)]))
        if error is not None:
            remedy = f"Index {audit.target}.{audit.time_column} or raise statement_timeout, then run the report again."
            audited = [failed_record(f"audit {audit.target}", action, error, remedy)
                       for action in ("audit_summary", "audit_continuity")]
        else:
            audited = audit_records(audit, figures, seconds)
    # The planner may prefer reading a whole table to counting through its index; the index exists to avoid
    # that. Set after the audit reads, whose id-ordered gap check would otherwise walk the whole primary key.
    conn.execute("SET LOCAL enable_seqscan = off")
    # A disabled seq scan still costs 1e10 in the plan of an unindexed table, past jit_above_cost: no JIT for a count.
    conn.execute("SET LOCAL jit = off")
    records = []
    for rule in rules:
        figures, seconds, error = _timed(conn, lambda c, r=rule: measure_rule(
            c, r, columns[(r.schema, r.table, r.column)]))
        if error is not None:
            records.append(failed_record(f"retention {rule.name}", "retention", error,
                                         f"Index {rule.target}.{rule.column} or raise statement_timeout, then run "
                                         "the report again."))
        else:
            records.append(retention_record(rule, figures, seconds))
    return records + audited


def summary_msg(records: list[dict[str, Any]], rules: list[RetentionRule], audit: AuditSpec | None) -> str:
    checked = [f"{len(rules)} retention rule(s)"] if rules else []
    if audit is not None:
        checked.append(f"the audit log {audit.target} over {format_duration(timedelta(hours=audit.hours))}")
    problems = [f"{record['name']} {record['action']} {record['status']}" for record in records
                if record["status"] in PROBLEM_STATUSES]
    verdict = f"{len(problems)} problem(s): {', '.join(problems)}" if problems else "no problem"
    return f"checked {' and '.join(checked)}: {verdict}"


def run_pg_compliance(params: dict[str, Any], *, check_mode: bool = False, diff_mode: bool = False) -> dict[str, Any]:
    """Read-only in a real run and in check mode alike: ``changed`` is always false."""
    rules, audit = validate(params)
    conn = connect(conninfo_from_params(params))
    try:
        set_timeouts(conn, lock_timeout_ms=params["lock_timeout"], statement_timeout_ms=params["statement_timeout"])
        with conn.transaction():
            # One snapshot for every figure, and PostgreSQL itself refuses any write.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            records = run_checks(conn, rules, audit)
    except psycopg.errors.QueryCanceled as exc:
        # Each check's own reads are timed apart (_timed); this is the catalog read they all need, cut short.
        raise ComplianceError(msg=f"the catalog read before the checks was cancelled by statement_timeout "
                                  f"({params['statement_timeout']} ms): {first_line(exc)}; nothing was checked, "
                                  "raise statement_timeout and run again") from exc
    finally:
        conn.close()
    return {"changed": False, "msg": summary_msg(records, rules, audit), "records": records}


# --------------------------------------------------------------------------- the audit-logger's JSON lines


def event_time(value: Any) -> datetime | None:
    """An event's time: ISO 8601 (naive taken as UTC) or epoch seconds; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    # Kubernetes writes nanoseconds (…T07:30:00.123456789Z); Python reads at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return None
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def audit_event_record(lines: Iterable[str] | None, *, hours: int, now: datetime, time_key: str = "timestamp",
                       verb_key: str | None = None, source: str = "audit-logger",
                       error: str | None = None) -> dict[str, Any]:
    """The ``audit_summary`` record of JSON log lines (``kubectl logs --since=<hours>h``), one event per line.

    Lines that are not a JSON object are counted as unparsed; events dated before now - hours are
    left out (counted); events without a readable time are counted (the --since of kubectl bounded
    them). The verb is ``verb_key``, or ``verb`` then ``action``. ``unknown`` when the log could not
    be read or no event could be parsed: nothing was counted, which is not the same as no events.
    """
    if isinstance(hours, bool) or not isinstance(hours, int) or hours < 1:
        raise ValueError(f"hours must be a whole number of at least 1, got {hours!r}")
    if error is not None:
        return make_record(f"audit {source}", "audit_summary", "unknown",
                           f"could not read the log: {error.strip()[:200]}",
                           after={"remedy": f"Fix the read of the {source} log (kubectl logs) and run the review "
                                            "again: no audit event was counted."})
    since = now - timedelta(hours=hours)
    verbs: Counter[str] = Counter()
    read = unparsed = undated = older = 0
    for line in lines or []:
        if not str(line).strip():
            continue
        read += 1
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            unparsed += 1
            continue
        when = event_time(event.get(time_key))
        if when is None:
            undated += 1
        elif when < since:
            older += 1
            continue
        keys = [verb_key] if verb_key else ["verb", "action"]
        verb = next((event[key] for key in keys if event.get(key) not in (None, "")), None)
        verbs["(none)" if verb is None else str(verb)] += 1
    extra = {"lines": read, "unparsed": unparsed, "undated": undated, "outside_window": older, "since": iso(since)}
    if read and unparsed == read:
        return make_record(f"audit {source}", "audit_summary", "unknown",
                           f"none of the {read} log line(s) is a JSON object: no audit event could be counted",
                           after={"by_verb": {}, "total": 0, "hours": hours, **extra,
                                  "remedy": f"Check the {source} log format: it should print one JSON event per "
                                            "line."})
    note = f" ({unparsed} unparsed line(s))" if unparsed else ""
    return audit_summary_record(source, verbs, hours, extra=extra, note=note)
