# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""create_indexes of pg_maintenance: CREATE INDEX CONCURRENTLY, compared first with what the catalog holds.

How a wanted index is compared with an existing one: PostgreSQL prints both. The wanted index is
created, in a transaction that is always rolled back, on an empty temporary copy of its table
(``CREATE TEMP TABLE ... (LIKE table)``: no data, no lock beyond ACCESS SHARE on the table), and
``pg_get_indexdef`` of it and of the existing index are compared once the index and table names (the
only parts that differ) are cut off: ``unique`` and everything after ``USING`` (method, keys with their
order, operator classes and collations, predicate) must be the same text, and the index must be on the
wanted table. The same step proves that the operator's SQL (``expression``, ``where``) parses and is
valid in an index (immutable functions, existing columns) before anything is built.

Every statement carrying the operator's SQL goes through the extended protocol (``binary=True``), which
takes exactly one statement: a ``;`` cannot smuggle a second one in.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from .pg import PgError, check_identifier, first_line, psycopg, qualified, split_table_name, sql
from .pg_maintenance import Outcome, RunSettings, Throughput, classify_failure
from .records import human_bytes, make_record
from .window import WindowGuard, format_duration

ACTION = "create_index"
LOCK = "SHARE UPDATE EXCLUSIVE (reads and writes go on; waits for transactions older than the build)"
PROBE_TABLE = "streamops_index_probe"
INDEX_DEF = re.compile(r"^CREATE (?P<unique>UNIQUE )?INDEX (?P<name>\S+) ON (?:ONLY )?(?P<table>\S+) USING (?P<body>.+)$",
                       re.DOTALL)

EXISTING_SQL = """
SELECT c.relkind, i.indisvalid AS valid, i.indrelid AS table_oid, tn.nspname || '.' || t.relname AS table_name,
       pg_get_indexdef(c.oid) AS definition,
       -- pg_relation_size takes ACCESS SHARE on the index: lock_timeout bounds the wait.
       CASE WHEN c.relkind IN ('i', 'I') THEN pg_relation_size(c.oid) END AS bytes
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_index i ON i.indexrelid = c.oid
  LEFT JOIN pg_class t ON t.oid = i.indrelid
  LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
 WHERE n.nspname = %s AND c.relname = %s
"""
TABLE_SQL = """
SELECT c.oid, c.relkind, c.relpages::bigint * current_setting('block_size')::bigint AS bytes
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'm', 'p')
"""


@dataclass(frozen=True)
class IndexSpec:
    """One wanted index; ``expression`` and ``where`` are the operator's SQL, everything else an identifier."""

    name: str
    schema: str
    table: str
    columns: tuple[str, ...] = ()
    expression: str | None = None
    unique: bool = False
    where: str | None = None
    method: str = "btree"

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}"


def parse_index_specs(items: Any) -> list[IndexSpec]:
    """The ``indexes`` option as IndexSpecs; the first bad value fails, named, before any connection."""
    if not isinstance(items, list) or not items:
        raise PgError(msg="operation create_indexes needs 'indexes': a non-empty list of {name, table, columns or "
                          "expression, unique, where, method}")
    specs: list[IndexSpec] = []
    for position, item in enumerate(items, start=1):
        specs.append(_parse_one(item, position))
    seen: dict[str, int] = {}
    for position, spec in enumerate(specs, start=1):
        if spec.qualified_name in seen:
            raise PgError(msg=f"indexes[{position}]: index {spec.qualified_name} is listed twice "
                              f"(also indexes[{seen[spec.qualified_name]}])")
        seen[spec.qualified_name] = position
    return specs


def _parse_one(item: Any, position: int) -> IndexSpec:
    where = f"indexes[{position}]"
    if not isinstance(item, dict):
        raise PgError(msg=f"{where} is not a dict: {item!r}")
    name = check_identifier(item.get("name"), f"{where}: index name").lower()
    schema, table = split_table_name(item.get("table"))
    columns, expression = item.get("columns") or [], item.get("expression")
    if bool(columns) == bool(expression and str(expression).strip()):
        raise PgError(msg=f"{where} ({name}): give exactly one of 'columns' (a list of column names) or "
                          f"'expression' (SQL), got columns={columns!r}, expression={expression!r}")
    if not isinstance(columns, list):
        raise PgError(msg=f"{where} ({name}): columns must be a list of column names, got {columns!r}")
    for column in columns:
        check_identifier(column, f"{where} ({name}): column")
    predicate = item.get("where")
    if predicate is not None and not str(predicate).strip():
        raise PgError(msg=f"{where} ({name}): 'where' is empty; leave it out for an index over every row")
    method = check_identifier(item.get("method") or "btree", f"{where} ({name}): method").lower()
    return IndexSpec(name=name, schema=schema, table=table, columns=tuple(c.lower() for c in columns),
                     expression=str(expression).strip() if expression else None, unique=bool(item.get("unique")),
                     where=str(predicate).strip() if predicate is not None else None, method=method)


def create_statement(spec: IndexSpec, *, concurrently: bool = True, on: Any = None) -> Any:
    """CREATE [UNIQUE] INDEX [CONCURRENTLY] name ON table USING method (keys) [WHERE (predicate)]."""
    keys = (sql.SQL(", ").join(sql.Identifier(column) for column in spec.columns) if spec.columns
            else sql.SQL(spec.expression))
    parts = [sql.SQL("CREATE UNIQUE INDEX " if spec.unique else "CREATE INDEX "),
             sql.SQL("CONCURRENTLY ") if concurrently else sql.SQL(""),
             sql.Identifier(spec.name), sql.SQL(" ON "), on if on is not None else qualified(spec.schema, spec.table),
             sql.SQL(" USING "), sql.Identifier(spec.method), sql.SQL(" ("), keys, sql.SQL(")")]
    if spec.where:
        parts += [sql.SQL(" WHERE ("), sql.SQL(spec.where), sql.SQL(")")]
    return sql.Composed(parts)


def split_indexdef(text: str) -> tuple[bool, str]:
    """(unique, everything after USING) of pg_get_indexdef's text: the part two same indexes share."""
    match = INDEX_DEF.match(text.strip())
    if match is None:
        raise PgError(msg=f"cannot read the index definition {text!r}")
    return bool(match.group("unique")), match.group("body").strip()


def printed_definition(spec: IndexSpec, probe_text: str) -> str:
    """The definition PostgreSQL prints for ``spec`` on its real table, from the probe's text."""
    unique, body = split_indexdef(probe_text)
    return f"CREATE {'UNIQUE ' if unique else ''}INDEX {spec.name} ON {spec.qualified_table} USING {body}"


def same_definition(wanted: str, existing: str) -> bool:
    """Both printed by pg_get_indexdef: equal uniqueness and the same text after USING."""
    return split_indexdef(wanted) == split_indexdef(existing)


# --------------------------------------------------------------------------- reading


@dataclass
class IndexWork:
    """One wanted index: what the catalog held, what the plan is, and what the run made of it."""

    spec: IndexSpec
    statement: str = ""
    wanted: str = ""  # the definition as PostgreSQL prints it
    table_bytes: int = 0
    before: dict[str, Any] | None = None
    plan: str = "create"  # create, rebuild (invalid leftover), unchanged, conflict
    status: str = "pending"
    reason: str | None = None
    seconds: float | None = None
    estimated_seconds: float | None = None
    state_after: dict[str, Any] | None = None
    measured_after: bool = False

    def record(self) -> dict[str, Any]:
        return make_record(self.spec.qualified_name, ACTION, self.status, self.detail(), before=self.before,
                           after=self.after(), seconds=self.seconds if self.status == "done" else None)

    def after(self) -> dict[str, Any] | None:
        if self.status == "planned":
            return {"definition": self.wanted, "statement": self.statement,
                    "estimated_seconds": self.estimated_seconds, "lock": LOCK}
        if self.status == "done" and self.state_after is not None:
            return {**self.state_after, "build_seconds": self.seconds}
        if self.measured_after:
            return self.state_after
        return None

    def detail(self) -> str:
        leftover = "invalid leftover of a failed build dropped and rebuilt" if self.plan == "rebuild" else ""
        if self.status == "unchanged":
            return f"valid, same definition, {human_bytes((self.before or {}).get('bytes'))}"
        if self.status == "planned":
            what = "would drop the invalid leftover of a failed build and run: " if self.plan == "rebuild" else \
                "would run: "
            return what + self.statement + (f" (about {self.estimated_seconds:g} s)" if self.estimated_seconds else "")
        if self.status == "done":
            after = self.state_after or {}
            text = f"built in {self.seconds:g} s, {human_bytes(after.get('bytes'))}"
            return f"{leftover}: {text}" if leftover else text
        return self.reason or self.status


def _one_row(conn: Any, query: str, params: tuple) -> dict[str, Any] | None:
    cursor = conn.execute(query, params)
    row = cursor.fetchone()
    return dict(zip([d.name for d in cursor.description], row)) if row else None


def read_index(conn: Any, schema: str, name: str) -> dict[str, Any] | None:
    """The relation called ``schema.name`` (index or not), with its definition, validity and size."""
    return _one_row(conn, EXISTING_SQL, (schema, name))


def index_state(found: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a record shows of an index: definition, valid, bytes; None when there is none."""
    if found is None or found["relkind"] not in ("i", "I"):
        return None
    return {"definition": found["definition"], "valid": bool(found["valid"]), "bytes": found.get("bytes")}


def probe_definition(conn: Any, spec: IndexSpec) -> str:
    """pg_get_indexdef of ``spec`` built on an empty temporary copy of its table, always rolled back."""
    probe = sql.Identifier(PROBE_TABLE)
    with conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(
            probe, qualified(spec.schema, spec.table)))
        conn.execute(create_statement(spec, concurrently=False, on=probe), binary=True)
        text = conn.execute("SELECT pg_get_indexdef(c.oid) FROM pg_class c WHERE c.relname = %s "
                            "AND c.relnamespace = pg_my_temp_schema()", (spec.name,)).fetchone()[0]
    return printed_definition(spec, text)


def plan_index(conn: Any, spec: IndexSpec) -> IndexWork:
    """Compare ``spec`` with the catalog; a missing table, unknown method or SQL that is not an index fails."""
    work = IndexWork(spec, statement=create_statement(spec).as_string(conn))
    table = _one_row(conn, TABLE_SQL, (spec.schema, spec.table))
    if table is None:
        raise PgError(msg=f"index {spec.qualified_name}: table {spec.qualified_table} does not exist")
    work.table_bytes = int(table["bytes"] or 0)
    if conn.execute("SELECT 1 FROM pg_am WHERE amname = %s AND amtype = 'i'", (spec.method,)).fetchone() is None:
        methods = [r[0] for r in conn.execute("SELECT amname FROM pg_am WHERE amtype = 'i' ORDER BY 1").fetchall()]
        raise PgError(msg=f"index {spec.qualified_name}: method {spec.method!r} is not an index access method "
                          f"of this server ({', '.join(methods)})")
    try:
        work.wanted = probe_definition(conn, spec)
    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
        raise
    except psycopg.Error as exc:
        raise PgError(msg=f"index {spec.qualified_name}: PostgreSQL refuses the definition "
                          f"{work.statement!r}: {first_line(exc)}") from exc
    found = read_index(conn, spec.schema, spec.name)
    work.before = index_state(found)
    if found is None:
        return work
    if found["relkind"] not in ("i", "I"):
        work.plan, work.status = "conflict", "failed"
        work.reason = (f"refused: {spec.qualified_name} exists and is not an index (relkind {found['relkind']}); "
                       "nothing dropped")
    elif found["table_oid"] == table["oid"] and same_definition(work.wanted, found["definition"]):
        work.plan = "rebuild" if not found["valid"] else "unchanged"
        if found["valid"]:
            work.status = "unchanged"
    else:
        work.plan, work.status = "conflict", "failed"
        state = "an INVALID index" if not found["valid"] else "an index"
        work.reason = (f"refused: {state} of that name exists with another definition; nothing dropped. "
                       f"existing: {found['definition']}; wanted: {work.wanted}")
    return work


# --------------------------------------------------------------------------- running


def plan_indexes(conn: Any, specs: list[IndexSpec], outcome: Outcome) -> None:
    """Every spec compared with the catalog, before anything is built (bad input fails here)."""
    for spec in specs:
        try:
            outcome.works.append(plan_index(conn, spec))
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
            work = IndexWork(spec, statement=create_statement(spec).as_string(conn), status="skipped")
            work.reason = f"could not read the table or index (another session holds it exclusively): {first_line(exc)}"
            outcome.works.append(work)
        except psycopg.Error as exc:
            raise PgError(msg=f"create_indexes: reading the catalog for {spec.qualified_name} failed, nothing was "
                              f"built: {first_line(exc)}") from exc


def to_build(outcome: Outcome) -> list[IndexWork]:
    return [work for work in outcome.works if work.status == "pending"]


def plan_builds(outcome: Outcome, *, settings: RunSettings, guard: WindowGuard | None) -> None:
    """Check mode: planned (or would skip, when a window is consulted and the estimate does not fit)."""
    throughput = Throughput(settings.initial_throughput)
    for work in to_build(outcome):
        estimate = throughput.estimate(work.table_bytes)
        work.estimated_seconds = round(estimate.total_seconds(), 1)
        status = guard.status(estimate) if guard is not None else None
        if status is not None:
            outcome.window = status.decision()
        if status is None or status.allowed:
            work.status = "planned"
        else:
            work.status, work.reason = "skipped", (f"would skip: estimated {format_duration(estimate)} does not fit: "
                                                   f"{status.reason}")


def run_builds(conn: Any, outcome: Outcome, *, settings: RunSettings, guard: WindowGuard | None) -> None:
    """Build the indexes one at a time; each starts only when its estimate fits the window (when one is consulted)."""
    throughput = Throughput(settings.initial_throughput)
    pending = to_build(outcome)
    for position, work in enumerate(pending):
        estimate = throughput.estimate(work.table_bytes)
        work.estimated_seconds = round(estimate.total_seconds(), 1)
        if guard is not None:
            status = guard.status(estimate)
            outcome.window = status.decision()
            if not status.allowed:
                work.status, work.reason = "skipped", (f"estimated {format_duration(estimate)} does not fit: "
                                                       f"{status.reason}")
                continue
        try:
            build_index(conn, work, settings=settings, outcome=outcome)
        except psycopg.Error as exc:
            # A lost connection, or a catalog read that failed: stop, saying what was and was not done.
            if work.status == "pending":
                work.status, work.reason = "failed", f"stopped: {first_line(exc)}"
            for later in pending[position + 1:]:
                later.status, later.reason = "skipped", "not started: the run stopped before this index"
            raise PgError(msg=f"create_indexes stopped at {work.spec.qualified_name}: {first_line(exc)}; "
                              f"{outcome.count('done')} index(es) built, {len(pending) - position - 1} not started",
                          records=outcome.records(), executed=outcome.executed,
                          warnings_detail=outcome.warnings) from exc
        if work.status == "done":
            throughput.add(work.table_bytes, work.seconds or 0.0)


def _drop(conn: Any, spec: IndexSpec, outcome: Outcome) -> str | None:
    """DROP INDEX CONCURRENTLY; None when dropped, else why not."""
    statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(qualified(spec.schema, spec.name))
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        if conn.broken:
            raise
        return first_line(exc)
    outcome.executed.append(statement.as_string(conn))
    return None


def build_index(conn: Any, work: IndexWork, *, settings: RunSettings, outcome: Outcome) -> None:
    """Drop an invalid leftover, then CREATE INDEX CONCURRENTLY; a failed build's INVALID index is dropped at once."""
    spec = work.spec
    if work.plan == "rebuild":
        why = _drop(conn, spec, outcome)
        if why is not None:
            work.status, work.reason = "failed", (f"the invalid leftover of a failed build could not be dropped: {why}; "
                                                  "nothing built")
            work.state_after, work.measured_after = index_state(read_index(conn, spec.schema, spec.name)), True
            return
    started = time.monotonic()
    try:
        conn.execute(create_statement(spec), binary=True)
    except psycopg.Error as exc:
        if conn.broken:
            raise
        work.status, work.reason = _build_failure(exc, settings)
        _clean_up_failed_build(conn, work, outcome)
        return
    work.seconds = round(time.monotonic() - started, 3)
    outcome.executed.append(work.statement)
    found = read_index(conn, spec.schema, spec.name)
    work.state_after, work.measured_after = index_state(found), True
    if found is None or not found["valid"]:
        work.status, work.reason = "failed", "the index is not valid after CREATE INDEX CONCURRENTLY"
    else:
        work.status = "done"


def _build_failure(exc: Exception, settings: RunSettings) -> tuple[str, str]:
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        # CREATE INDEX CONCURRENTLY waits, under lock_timeout, for every transaction older than its build.
        return "skipped", (f"lock_timeout ({settings.lock_timeout_ms} ms) hit: a lock, or transactions older "
                           f"than the build, held it: {first_line(exc)}")
    return classify_failure(exc, settings)


def _clean_up_failed_build(conn: Any, work: IndexWork, outcome: Outcome) -> None:
    """The build stopped after it wrote its catalog entry: drop the INVALID index it left, or say it is there."""
    spec = work.spec
    found = read_index(conn, spec.schema, spec.name)
    if found is not None and found["relkind"] in ("i", "I") and not found["valid"]:
        why = _drop(conn, spec, outcome)
        if why is None:
            work.reason += "; the INVALID index the build left was dropped"
            found = None
        else:
            work.status = "failed"
            work.reason += (f"; the INVALID index the build left could not be dropped ({why}): "
                            "the next run drops and rebuilds it")
            outcome.warnings.append(f"{spec.qualified_name}: INVALID index left by a failed build: {why}")
    work.state_after, work.measured_after = index_state(found), True


def indexes_result(outcome: Outcome, *, check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    """The module result of create_indexes: records, msg, executed; failed when an index failed or was refused."""
    records = outcome.records()
    rebuilt = sum(w.plan == "rebuild" and w.status in ("done", "planned") for w in outcome.works)
    if check_mode:
        msg = f"create_indexes: would build {outcome.count('planned')} index(es)"
    else:
        msg = f"create_indexes: {outcome.count('done')} index(es) built"
    msg += (f" ({rebuilt} an invalid leftover rebuilt)" if rebuilt else "") + \
        f", {outcome.count('unchanged')} unchanged, {outcome.count('skipped')} skipped, {outcome.count('failed')} failed"
    result: dict[str, Any] = {"changed": any(r["status"] in ("done", "planned") for r in records), "msg": msg,
                              "records": records, "executed": outcome.executed, "warnings_detail": outcome.warnings}
    if outcome.window is not None:
        result["window"] = outcome.window
    if diff_mode:
        changing = [w for w in outcome.works if w.status in ("done", "planned")]
        result["diff"] = {"before": {w.spec.qualified_name: (w.before or {}).get("definition") for w in changing},
                          "after": {w.spec.qualified_name: w.wanted for w in changing}}
    failed = [w for w in outcome.works if w.status == "failed"]
    if failed:
        result["failed"] = True
        result["msg"] = msg + "; failed: " + "; ".join(f"{w.spec.qualified_name}: {w.reason}" for w in failed)
    return result
