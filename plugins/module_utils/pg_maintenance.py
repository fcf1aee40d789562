# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""PostgreSQL maintenance that looks before it acts: select by measurement, plan, then run.

Each chosen table is a ``TableWork`` while the run goes on; its ``record()`` is the
table's result record (docs/records.md): before = dead tuples, size and bloat as
measured, after = the same measured again (or, in check mode, the plan: estimated
seconds and the lock). Tables the thresholds leave out are ``unchanged`` records
with the measured reason. Check mode builds the same records from the same
measurements and runs nothing.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from .pg import PgError, first_line, psycopg, qualified, set_timeouts, split_table_name, sql
from .pg_stats import TableInfo
from .records import human_bytes, make_record
from .window import WindowGuard, format_duration

ROUTINE = ("analyze", "vacuum", "vacuum_analyze")
DISRUPTIVE = ("vacuum_full", "reindex")
TABLE_OPERATIONS = ROUTINE + DISRUPTIVE
# The lock each operation takes on the table (what the plan shows).
LOCKS = {
    "analyze": "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
    "vacuum": "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
    "vacuum_analyze": "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
    "vacuum_full": "ACCESS EXCLUSIVE (blocks every read and write until done)",
    "reindex_concurrently": "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
    "reindex": "SHARE on the table (blocks writes), ACCESS EXCLUSIVE on each index (blocks reads using it)",
}
DEFAULT_MIN_DEAD_TUPLES = 1000
DEFAULT_MIN_DEAD_RATIO = 0.1
DEFAULT_MIN_BLOAT_RATIO = 0.3
SKIPPED_NOTICE = "skipping"
CC_SUFFIXES = ("_ccnew", "_ccold")


@dataclass
class Thresholds:
    min_dead_tuples: int | None = None
    min_dead_ratio: float | None = None
    min_bloat_ratio: float | None = None

    def any_set(self) -> bool:
        return any(v is not None for v in (self.min_dead_tuples, self.min_dead_ratio, self.min_bloat_ratio))


@dataclass
class Selection:
    chosen: list[TableInfo]
    left_out: list[dict[str, Any]]  # one ``unchanged`` record per table the thresholds leave out


@dataclass
class RunSettings:
    lock_timeout_ms: int
    statement_timeout_ms: int
    jobs: int = 1
    initial_throughput: float = 25 * 1024 * 1024  # bytes per second until one table is measured
    concurrently: bool = True


@dataclass
class TableWork:
    """One chosen table: what was measured before, and what the run (or the plan) made of it."""

    operation: str
    table: TableInfo
    lock: str
    status: str = "pending"  # until decided: planned, done, skipped or failed
    reason: str | None = None
    seconds: float | None = None
    estimated_seconds: float | None = None
    total_bytes_after: int | None = None
    dead_tuples_after: int | None = None
    measured_after: bool = False
    dropped_indexes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.table.qualified_name

    def before(self) -> dict[str, Any]:
        return measured_before(self.operation, self.table)

    def after(self) -> dict[str, Any] | None:
        if self.status == "planned":
            return {"estimated_seconds": self.estimated_seconds, "lock": self.lock}
        if self.measured_after:
            return {"dead_tuples": self.dead_tuples_after, "total_bytes": self.total_bytes_after}
        return None

    def detail(self) -> str:
        table = self.table
        parts = []
        if self.status == "done":
            # REINDEX leaves the heap's dead tuples as they were: only the size says what it did.
            if self.operation != "reindex":
                parts.append(f"dead tuples {table.dead_tuples} -> {self.dead_tuples_after}")
            parts.append(f"size {human_bytes(table.total_bytes)} -> {human_bytes(self.total_bytes_after)}")
            if self.seconds is not None:
                parts.append(f"{round(self.seconds, 1):g} s")
        elif self.status == "planned":
            parts.append(f"dead tuples {table.dead_tuples}, size {human_bytes(table.total_bytes)}")
            if self.estimated_seconds is not None:
                parts.append(f"about {self.estimated_seconds:g} s")
            parts.append("lock " + self.lock.split(" (", maxsplit=1)[0])
        if self.reason:
            parts.append(self.reason)
        if self.dropped_indexes:
            parts.append(f"dropped leftover invalid index(es) {', '.join(self.dropped_indexes)}")
        return ", ".join(parts)

    def record(self) -> dict[str, Any]:
        return make_record(self.name, self.operation, self.status, self.detail(), before=self.before(),
                           after=self.after(), seconds=self.seconds if self.status == "done" else None)


@dataclass
class Outcome:
    """What a run did: its works (TableWork, or pg_indexes' IndexWork: each with ``status`` and ``record()``), the
    statements executed, warnings and the window decision."""

    works: list[Any] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    window: dict[str, Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ran(self, statement: str) -> None:
        with self._lock:
            self.executed.append(statement)

    def records(self) -> list[dict[str, Any]]:
        return [work.record() for work in self.works]

    def count(self, status: str) -> int:
        return sum(work.status == status for work in self.works)


def measured_before(operation: str, table: TableInfo) -> dict[str, Any]:
    """The figures a table record starts from: dead tuples, size, and the bloat the operation acts on."""
    bloat = table.index_bloat if operation == "reindex" else table.bloat
    return {"dead_tuples": table.dead_tuples, "total_bytes": table.total_bytes, "bloat_ratio": bloat.ratio}


def left_out_record(operation: str, table: TableInfo, reason: str) -> dict[str, Any]:
    return make_record(table.qualified_name, operation, "unchanged", reason, before=measured_before(operation, table))


# --------------------------------------------------------------------------- selection


def resolve_named_tables(names: list[str], tables: dict[str, TableInfo]) -> list[TableInfo]:
    """The named tables, in order; a name that is not a plain identifier, or not a table, fails."""
    found = []
    for name in names:
        schema, table = split_table_name(name)
        info = tables.get(f"{schema}.{table}")
        if info is None:
            raise PgError(msg=f"table {name!r} does not exist (looked for {schema}.{table})", table=name)
        if info not in found:
            found.append(info)
    return found


def in_schemas(table: TableInfo, include: list[str] | None, exclude: list[str] | None) -> bool:
    if include and table.schema not in include:
        return False
    return not (exclude and table.schema in exclude)


def effective_thresholds(operation: str, given: Thresholds, named: bool) -> Thresholds:
    """Thresholds as asked; without tables or thresholds, defaults that mean 'needs it'."""
    if operation in DISRUPTIVE:
        return Thresholds(given.min_dead_tuples, given.min_dead_ratio,
                          given.min_bloat_ratio if given.min_bloat_ratio is not None else DEFAULT_MIN_BLOAT_RATIO)
    if named or given.any_set():
        return given
    return Thresholds(DEFAULT_MIN_DEAD_TUPLES, DEFAULT_MIN_DEAD_RATIO, None)


def why_left_out(table: TableInfo, operation: str, thresholds: Thresholds) -> str | None:
    """None when ``table`` passes every threshold for ``operation``, else the reason (measured vs wanted)."""
    if thresholds.min_dead_tuples is not None and table.dead_tuples < thresholds.min_dead_tuples:
        return f"{table.dead_tuples} dead tuples < min_dead_tuples {thresholds.min_dead_tuples}"
    if thresholds.min_dead_ratio is not None and table.dead_ratio < thresholds.min_dead_ratio:
        return f"dead ratio {table.dead_ratio:.1%} < min_dead_ratio {thresholds.min_dead_ratio:.1%}"
    if thresholds.min_bloat_ratio is not None:
        bloat = table.index_bloat if operation == "reindex" else table.bloat
        what = "index bloat" if operation == "reindex" else "bloat"
        if not bloat.known:
            return f"{what} unknown ({bloat.reason}); analyze the table first"
        if (bloat.ratio or 0) < thresholds.min_bloat_ratio:
            return f"{what} {bloat.ratio:.1%} < min_bloat_ratio {thresholds.min_bloat_ratio:.1%}"
    return None


def select_tables(tables: dict[str, TableInfo], *, operation: str, names: list[str] | None,
                  thresholds: Thresholds, include_schemas: list[str] | None = None,
                  exclude_schemas: list[str] | None = None) -> Selection:
    """Named tables, or every table of the included schemas, filtered by the measured thresholds."""
    candidates = (resolve_named_tables(names, tables) if names else
                  [t for t in tables.values() if in_schemas(t, include_schemas, exclude_schemas)])
    wanted = effective_thresholds(operation, thresholds, bool(names))
    chosen, left_out = [], []
    for table in candidates:
        reason = why_left_out(table, operation, wanted)
        # ANALYZE is also wanted where the statistics are stale, whatever the dead tuples say.
        if reason and operation == "analyze" and not names and table.stats_problem:
            reason = None
        if reason:
            left_out.append(left_out_record(operation, table, reason))
        else:
            chosen.append(table)
    if operation in DISRUPTIVE:
        # Most to win first: the window may close before the list ends.
        chosen.sort(key=lambda t: -((t.index_bloat if operation == "reindex" else t.bloat).bytes or 0))
    return Selection(chosen, left_out)


def refresh_failed_records(left_out: list[dict[str, Any]], failures: dict[str, tuple[str, str]],
                           operation: str) -> list[dict[str, Any]]:
    """The left-out records, those of tables whose ANALYZE before the bloat estimate failed made ``failures``'
    (status, reason) (classify_failure's): a statement_timeout reached there is no 'unchanged' table."""
    records = []
    for record in left_out:
        failure = failures.get(record["name"])
        if failure is None:
            records.append(record)
            continue
        status, reason = failure
        records.append({**record, "status": status,
                        "detail": f"ANALYZE before estimating its bloat: {reason}; {operation} not run "
                                  f"({record['detail']})"})
    return records


# --------------------------------------------------------------------------- statements


def table_statement(operation: str, table: TableInfo, *, server_version: int, concurrently: bool = True) -> Any:
    """The SQL for one table; SKIP_LOCKED on PostgreSQL 12+ so a locked table is passed over, not waited on."""
    target = qualified(table.schema, table.name)
    skip = server_version >= 120000
    if operation == "analyze":
        return sql.SQL("ANALYZE {}{}").format(sql.SQL("(SKIP_LOCKED) ") if skip else sql.SQL(""), target)
    if operation in ("vacuum", "vacuum_analyze"):
        options = (["SKIP_LOCKED"] if skip else []) + (["ANALYZE"] if operation == "vacuum_analyze" else [])
        prefix = sql.SQL("({}) ").format(sql.SQL(", ").join(sql.SQL(o) for o in options)) if options else sql.SQL("")
        return sql.SQL("VACUUM {}{}").format(prefix, target)
    if operation == "vacuum_full":
        # No SKIP_LOCKED: waiting up to lock_timeout for the exclusive lock is the point.
        return sql.SQL("VACUUM (FULL, ANALYZE) {}").format(target)
    if operation == "reindex":
        if concurrently and server_version >= 120000:
            return sql.SQL("REINDEX TABLE CONCURRENTLY {}").format(target)
        return sql.SQL("REINDEX TABLE {}").format(target)
    raise PgError(msg=f"unknown table operation {operation!r}")


def lock_of(operation: str, concurrently: bool) -> str:
    if operation == "reindex":
        return LOCKS["reindex_concurrently" if concurrently else "reindex"]
    return LOCKS[operation]


def work_bytes(operation: str, table: TableInfo) -> int:
    """What an operation reads and writes, for the duration estimate."""
    if operation == "reindex":
        return table.index_bytes or 0
    if operation == "vacuum_full":
        return table.total_bytes or 0
    return table.table_bytes or 0


def new_work(operation: str, table: TableInfo, *, concurrently: bool) -> TableWork:
    return TableWork(operation, table, lock_of(operation, concurrently))


# --------------------------------------------------------------------------- running


class Throughput:
    """Bytes per second measured so far in this run (the first table uses the assumed figure)."""

    def __init__(self, initial: float) -> None:
        self.initial = initial
        self.bytes = 0
        self.seconds = 0.0

    def add(self, size: int, seconds: float) -> None:
        self.bytes += size
        self.seconds += seconds

    @property
    def rate(self) -> float:
        # Below a second of measurement the figure is noise; stay with the assumption.
        if self.seconds < 1.0 or self.bytes == 0:
            return self.initial
        return self.bytes / self.seconds

    def estimate(self, size: int) -> timedelta:
        return timedelta(seconds=size / self.rate)


CANCELLED_BY_OPERATOR = "cancelled by another session (pg_cancel_backend or an operator)"


def classify_failure(exc: Exception, settings: RunSettings) -> tuple[str, str]:
    """(status, reason) for a failed statement."""
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return "skipped", f"could not get its lock within lock_timeout ({settings.lock_timeout_ms} ms)"
    if isinstance(exc, psycopg.errors.QueryCanceled):
        # 57014 is both our statement_timeout and someone's pg_cancel_backend; only the message tells them apart.
        if "statement timeout" in str(exc):
            return "failed", f"cancelled by statement_timeout ({settings.statement_timeout_ms} ms)"
        return "failed", CANCELLED_BY_OPERATOR
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return "failed", f"table vanished: {first_line(exc)}"
    return "failed", first_line(exc)


def _measure(conn: Any, table: TableInfo) -> tuple[int | None, int | None]:
    """(total bytes, dead tuples) of the table now; (None, None) when another session locks it."""
    try:
        row = conn.execute(
            "SELECT pg_total_relation_size(c.oid), pg_stat_get_dead_tuples(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            (table.schema, table.name)).fetchone()
    except psycopg.errors.LockNotAvailable:
        return None, None
    return (row[0], row[1]) if row else (None, None)


def run_on_table(conn: Any, work: TableWork, *, settings: RunSettings, server_version: int, outcome: Outcome,
                 notices: list[str]) -> float:
    """Run one table's statement on ``conn``; fill ``work``; return the seconds it took."""
    operation, table = work.operation, work.table
    statement = table_statement(operation, table, server_version=server_version,
                                concurrently=settings.concurrently)
    text = statement.as_string(conn)
    if operation == "reindex":
        _drop_leftover_cc_indexes(conn, work, outcome)
    del notices[:]
    started = time.monotonic()
    try:
        conn.execute(statement)
    except psycopg.OperationalError as exc:
        if conn.closed or conn.broken:
            # The statement's transaction died with the connection: nothing of it stays.
            work.status = "failed"
            work.reason = f"connection lost during the statement (rolled back): {first_line(exc)}"
            raise
        work.status, work.reason = classify_failure(exc, settings)
    except psycopg.Error as exc:
        work.status, work.reason = classify_failure(exc, settings)
    else:
        skipped = [n for n in notices if n.lower().startswith(SKIPPED_NOTICE)]
        if skipped:
            work.status, work.reason = "skipped", f"lock not available (SKIP_LOCKED): {skipped[0]}"
        else:
            work.status = "done"
            outcome.ran(text)
    elapsed = time.monotonic() - started
    if work.status == "done":
        work.seconds = round(elapsed, 3)
    if operation == "reindex":
        # A failed concurrent reindex leaves invalid _ccnew indexes behind.
        _drop_leftover_cc_indexes(conn, work, outcome)
        invalid = [index_display_name(schema, name, table.schema) for schema, name in _invalid_indexes(conn, table)]
        if invalid and work.status == "done":
            work.status, work.reason = "failed", f"invalid indexes after reindex: {', '.join(invalid)}"
    if work.status != "skipped":
        work.total_bytes_after, work.dead_tuples_after = _measure(conn, table)
        work.measured_after = True
    return elapsed


def _invalid_indexes(conn: Any, table: TableInfo) -> list[tuple[str, str]]:
    """(schema, name) of the invalid indexes of the table and of its TOAST table.

    REINDEX TABLE CONCURRENTLY rebuilds the TOAST table's index too: interrupted, it leaves
    ``pg_toast.pg_toast_<oid>_index_ccnew`` beside the table's own ``*_ccnew``, in another schema.
    """
    rows = conn.execute(
        "SELECT n.nspname, ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = ic.relnamespace "
        "WHERE NOT i.indisvalid AND i.indrelid IN ("
        "SELECT t.oid FROM pg_class t JOIN pg_namespace tn ON tn.oid = t.relnamespace "
        "WHERE tn.nspname = %s AND t.relname = %s "
        "UNION ALL SELECT t.reltoastrelid FROM pg_class t JOIN pg_namespace tn ON tn.oid = t.relnamespace "
        "WHERE tn.nspname = %s AND t.relname = %s AND t.reltoastrelid <> 0) ORDER BY 1, 2",
        (table.schema, table.name, table.schema, table.name)).fetchall()
    return [(row[0], row[1]) for row in rows]


def index_display_name(schema: str, name: str, table_schema: str) -> str:
    """An index as a record names it: bare in the table's schema, schema-qualified elsewhere (pg_toast)."""
    return name if schema == table_schema else f"{schema}.{name}"


def _drop_leftover_cc_indexes(conn: Any, work: TableWork, outcome: Outcome) -> None:
    """Drop the invalid ``*_ccnew``/``*_ccold`` indexes an interrupted REINDEX CONCURRENTLY left (TOAST's included)."""
    table = work.table
    for schema, name in _invalid_indexes(conn, table):
        if not any(suffix in name for suffix in CC_SUFFIXES):
            continue
        shown = index_display_name(schema, name, table.schema)
        statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(qualified(schema, name))
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            outcome.warnings.append(f"{table.qualified_name}: could not drop leftover index {shown}: {first_line(exc)}")
            continue
        outcome.ran(statement.as_string(conn))
        work.dropped_indexes.append(shown)


def open_worker(connect: Callable[[], Any], settings: RunSettings) -> tuple[Any, list[str]]:
    """A connection with our timeouts and a list that collects its notices (SKIP_LOCKED warnings)."""
    conn = connect()
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    set_timeouts(conn, lock_timeout_ms=settings.lock_timeout_ms,
                 statement_timeout_ms=settings.statement_timeout_ms)
    return conn, notices


def name_list(names: list[str], limit: int = 10) -> str:
    """Up to ``limit`` names for a message, then how many more."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def stopped_message(operation: str, error: str, works: list[Any]) -> str:
    """What a run that stopped half-way did and did not do, by table: done, interrupted (rolled back), not started.

    An operator reading only the message (a failed task at 2 a.m.) must know which tables to look at again.
    """
    done = [w.name for w in works if w.status == "done"]
    failed = [w for w in works if w.status == "failed"]
    not_started = [w.name for w in works if w.reason == NOT_STARTED]
    parts = [f"{operation} stopped: {error}", f"{len(done)} table(s) done" + (f" ({name_list(done)})" if done else "")]
    if failed:
        parts.append("failed: " + name_list([f"{w.name} ({(w.reason or 'failed').split(': ', 1)[0]})" for w in failed]))
    parts.append(f"{len(not_started)} not started" + (f" ({name_list(not_started)})" if not_started else ""))
    return "; ".join(parts)


def _stopped(operation: str, exc: BaseException, outcome: Outcome) -> PgError:
    """The error of a run that stopped half-way, with the record of every chosen table (what ran, what did not)."""
    _mark_not_started(outcome.works)
    return PgError(msg=stopped_message(operation, first_line(exc), outcome.works),
                   records=outcome.records(), executed=outcome.executed, warnings_detail=outcome.warnings)


def run_routine(connect: Callable[[], Any], operation: str, chosen: list[TableInfo], *,
                settings: RunSettings, server_version: int, outcome: Outcome) -> None:
    """analyze / vacuum / vacuum_analyze over ``jobs`` connections, one table per connection at a time."""
    works = [new_work(operation, t, concurrently=settings.concurrently) for t in chosen]
    outcome.works.extend(works)
    queue = list(works)
    queue_lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            conn, notices = open_worker(connect, settings)
        except (psycopg.Error, PgError) as exc:
            # A worker that cannot connect stops the run like a lost one: with the records.
            errors.append(exc)
            return
        try:
            while True:
                with queue_lock:
                    if not queue or errors:
                        return
                    work = queue.pop(0)
                run_on_table(conn, work, settings=settings, server_version=server_version, outcome=outcome,
                             notices=notices)
        except (psycopg.Error, PgError) as exc:
            errors.append(exc)
        finally:
            conn.close()

    jobs = max(1, min(settings.jobs, len(chosen)))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(worker) for _slot in range(jobs)]:
            future.result()
    if errors:
        raise _stopped(operation, errors[0], outcome)


NOT_STARTED = "not started: the run stopped before this table"


def _mark_not_started(works: list[TableWork]) -> None:
    for work in works:
        if work.status == "pending":
            work.status, work.reason = "skipped", NOT_STARTED


def run_disruptive(connect: Callable[[], Any], operation: str, chosen: list[TableInfo], *,
                   settings: RunSettings, server_version: int, outcome: Outcome, guard: WindowGuard) -> None:
    """vacuum_full / reindex one table at a time, each only when its estimate fits the time left."""
    throughput = Throughput(settings.initial_throughput)
    works = [new_work(operation, table, concurrently=settings.concurrently) for table in chosen]
    outcome.works.extend(works)
    conn, notices = open_worker(connect, settings) if chosen else (None, [])
    try:
        for work in works:
            estimate = throughput.estimate(work_bytes(operation, work.table))
            work.estimated_seconds = round(estimate.total_seconds(), 1)
            status = guard.status(estimate)
            outcome.window = status.decision()
            if not status.allowed:
                work.status = "skipped"
                work.reason = (f"estimated {format_duration(estimate)} at "
                               f"{throughput.rate / 1048576:.1f} MiB/s does not fit: {status.reason}")
                continue
            seconds = run_on_table(conn, work, settings=settings, server_version=server_version,
                                   outcome=outcome, notices=notices)
            if work.status == "done":
                throughput.add(work_bytes(operation, work.table), seconds)
    except psycopg.Error as exc:
        raise _stopped(operation, exc, outcome) from exc
    finally:
        if conn is not None:
            conn.close()


def plan_routine(operation: str, chosen: list[TableInfo], *, settings: RunSettings, outcome: Outcome) -> None:
    """Check mode of analyze / vacuum / vacuum_analyze: every chosen table, at the assumed throughput."""
    for table in chosen:
        work = new_work(operation, table, concurrently=settings.concurrently)
        work.status = "planned"
        work.estimated_seconds = round(work_bytes(operation, table) / settings.initial_throughput, 1)
        outcome.works.append(work)


def plan_disruptive(operation: str, chosen: list[TableInfo], *, settings: RunSettings,
                    guard: WindowGuard, outcome: Outcome) -> None:
    """Check mode: the same per-table decisions as a run, with the assumed throughput and no work."""
    throughput = Throughput(settings.initial_throughput)
    budget = timedelta(0)
    for table in chosen:
        work = new_work(operation, table, concurrently=settings.concurrently)
        estimate = throughput.estimate(work_bytes(operation, table))
        work.estimated_seconds = round(estimate.total_seconds(), 1)
        status = guard.status(budget + estimate)
        outcome.window = status.decision()
        if status.allowed:
            work.status = "planned"
            budget += estimate
        else:
            work.status = "skipped"
            work.reason = (f"would skip: estimated {format_duration(estimate)} at "
                           f"{throughput.rate / 1048576:.1f} MiB/s does not fit: {status.reason}")
        outcome.works.append(work)
