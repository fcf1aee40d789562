# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Restore a production database from a verified backup set, without ever restoring over it.

The guide's ``docker-compose down; pg_restore -c $BACKUP_FILE; docker-compose up -d`` takes any file,
writes straight over the live database and keeps no copy of what it replaced. Here:

1. the set must be one backup_verify marked verified (or a safety set this module took), and its files
   are checked again now (manifest, checksums, archives read to the end) before anything stops;
2. the work starts only inside a maintenance window (with the estimated time left) or with an approval;
3. a safety backup of the live database is taken, checked, and held out of retention until accepted;
4. the writers stop (compose services, or Deployments scaled to 0), recording what ran;
5. the set is restored into a NEW database ``<db>__restore_<stamp>`` (marked), given the live
   database's settings, ACL, connection limit, and checked (row counts and checksums against the
   manifest, the SQL checks) and analyzed; any failure drops it and leaves the live database untouched;
6. the swap is two renames in ONE transaction (PostgreSQL allows ALTER DATABASE RENAME in a transaction
   block; it refuses while another session is connected, so the sessions are terminated first and the
   swap retried); the replaced database is kept as ``<db>__replaced_<stamp>``, the instant way back;
7. the writers start again as they were, always (also after a failure), and the live database is read back.

``operation: accept`` releases the safety set's hold and, when asked, drops the replaced database.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .backup_set import (
    STAMP_FORMAT,
    VERIFIED,
    BackupError,
    check_root,
    find_set,
    newest_set,
    read_hold,
    read_json,
    release_hold,
    set_bytes,
    write_hold,
)
from .backup_verify import (
    Checks,
    check_set_files,
    compare_tables,
    comparison_records,
    create_marked_database,
    drop_marked_database,
    restore_parts,
    run_sql_check,
)
from .errors import MaintenanceError, WindowClosedError
from .pg import PLAIN_IDENTIFIER, PgError, conninfo_from_params, connect, first_line, psycopg, qualified, \
    split_table_name, sql
from .pg_backup import run_pg_backup
from .records import human_bytes, is_changed, make_record
from .restore_writers import WritersError, check_writers, describe_writers
from .window import format_duration, guard_from_params

HOLDER = "streamops.maintenance.pg_restore"
RESTORED_MARK = "created by streamops.maintenance pg_restore: a restored copy not yet swapped in; dropped on failure"
LATEST = "latest"
# Without a measured restore of this set (verified.json's restore_seconds), a rate few servers fall below:
# dump bytes restored per second, indexes rebuilt included; and the live database's bytes dumped per second.
CONSERVATIVE_RESTORE_RATE = 4 * 1024 * 1024
CONSERVATIVE_DUMP_RATE = 16 * 1024 * 1024
# Stopping and starting the writers, the checks, the swap: time besides the dump and the restore.
FIXED_OVERHEAD = timedelta(minutes=2)
SWAP_ATTEMPTS = 5
# The longest suffix a derived name gets: "__replaced_20261206T205500Z" (PostgreSQL names are 63 bytes at most).
SUFFIX_LENGTH = len("__replaced_") + len("20261206T205500Z")
PRIVILEGES = {"CREATE": "CREATE", "TEMPORARY": "TEMPORARY", "CONNECT": "CONNECT"}
# Settings whose value is a list (pg_dump's variable_is_guc_list_quote): each element is its own literal.
LIST_SETTINGS = ("local_preload_libraries", "search_path", "session_preload_libraries", "shared_preload_libraries",
                 "temp_tablespaces", "unix_socket_directories")
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class RestoreError(MaintenanceError):
    """A restore was refused or failed; ``msg`` says what was done and what the live database holds."""


# --------------------------------------------------------------------------- input


@dataclass
class Options:
    operation: str
    root: Path
    database: str
    maintenance_database: str
    backup_set: str
    name: str
    writers: dict[str, Any]
    safety_root: Path
    critical_tables: list[str] | None
    keep_replaced: bool
    safety_set: str | None
    drop_replaced: bool
    verify_unmarked: bool = False


def check_database_name(database: Any, maintenance_database: Any) -> str:
    if not isinstance(database, str) or not database:
        raise RestoreError(msg="database is required: the live database to restore (the postgres connection's "
                               "database option)")
    if not PLAIN_IDENTIFIER.match(database) or len(database) + SUFFIX_LENGTH > 63:
        raise RestoreError(msg=f"database {database!r} must be a plain identifier of at most {63 - SUFFIX_LENGTH} "
                               f"characters: the restore names {database}__restore_<stamp> and "
                               f"{database}__replaced_<stamp> after it")
    if database == maintenance_database:
        raise RestoreError(msg=f"database {database!r} is the maintenance database: the restore connects to "
                               "maintenance_database to create, rename and drop databases, so the live database "
                               "must be another one")
    if database in ("template0", "template1"):
        raise RestoreError(msg=f"database {database!r} is a template database; refusing to replace it")
    return database


def validate(params: dict[str, Any]) -> Options:
    operation = params.get("operation") or "restore"
    if operation not in ("restore", "accept"):
        raise RestoreError(msg=f"operation {operation!r} must be restore or accept")
    maintenance = params.get("maintenance_database") or "postgres"
    database = check_database_name(params.get("database"), maintenance)
    root = check_root(params.get("backup_root"), create=False, allow_missing=True)
    safety_root = (check_root(params["safety_backup_root"], create=False, allow_missing=True)
                   if params.get("safety_backup_root") else root)
    backup_set = params.get("backup_set") or LATEST
    if not isinstance(backup_set, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$", backup_set):
        raise RestoreError(msg=f"backup_set {backup_set!r} must be {LATEST} or a set id such as "
                               f"{database}-20261201T020000Z")
    writers: dict[str, Any] = {}
    if operation == "restore":
        try:
            writers = check_writers(params.get("writers"))
        except WritersError as exc:
            raise RestoreError(msg=exc.msg) from exc
        for check in params.get("sql_checks") or []:
            if not isinstance(check, dict) or not check.get("name") or not check.get("sql"):
                raise RestoreError(msg=f"sql_checks: each check needs a name and sql, got {check!r}")
        if params.get("jobs") is not None and params["jobs"] < 1:
            raise RestoreError(msg=f"jobs {params['jobs']} must be at least 1")
    tables = params.get("critical_tables")
    if tables:
        for table in tables:
            split_table_name(table)
    safety_set = params.get("safety_set")
    if operation == "accept" and not safety_set:
        raise RestoreError(msg="operation accept needs safety_set: the id of the safety set the restore took "
                               "(its result's safety_set, or the message of the restore)")
    return Options(operation=operation, root=root, database=database, maintenance_database=maintenance,
                   backup_set=backup_set, name=params.get("name") or database, writers=writers,
                   safety_root=safety_root, critical_tables=list(tables) if tables else None,
                   keep_replaced=params.get("keep_replaced", True) is not False, safety_set=safety_set,
                   drop_replaced=bool(params.get("drop_replaced")),
                   verify_unmarked=bool(params.get("verify_unmarked")))


def require_gate_options(params: dict[str, Any]) -> None:
    """A restore is disruptive: it needs the windows or an emergency approval (never neither)."""
    emergency = params.get("emergency") or {}
    if not params.get("windows") and not any(emergency.values() if isinstance(emergency, dict) else [emergency]):
        raise RestoreError(msg="a restore stops the writers and replaces the live database: give the maintenance "
                               "'windows' (and optionally 'window'), or an 'emergency' approval (approved_by, "
                               "reason, ticket); nothing was done")


# --------------------------------------------------------------------------- the set


@dataclass
class ChosenSet:
    set_id: str
    directory: Path
    mark: dict[str, Any]  # verified.json, or the hold of a safety set
    kind: str  # "verified" or "safety"
    manifest: dict[str, Any] = field(default_factory=dict)


def choose_set(options: Options) -> ChosenSet:
    """The set named by backup_set (``latest``: the newest verified one); refused unless verified or a safety set."""
    if options.backup_set == LATEST:
        ref = newest_set(options.root, options.name, verified=True)
        if ref is None:
            raise RestoreError(msg=f"no verified backup set of {options.name} under {options.root}: verify one "
                                   "with backup_verify (the backup role does after each backup), or name one with "
                                   "backup_set; nothing was done")
        directory = Path(ref.where)
    else:
        try:
            directory = find_set(options.root, options.backup_set)
        except BackupError as exc:
            raise RestoreError(msg=f"backup_set {options.backup_set!r}: {exc.msg}; nothing was done") from exc
    verified_path = directory / VERIFIED
    if verified_path.is_file():
        return ChosenSet(directory.name, directory, read_json(verified_path, what="verified mark"), "verified")
    hold = read_hold(directory)
    if hold is not None and hold.get("by") == HOLDER and hold.get("kind") == "safety":
        return ChosenSet(directory.name, directory, hold, "safety")
    if options.verify_unmarked and options.backup_set != LATEST:
        # Verified now, with a restore test, before anything stops (RestoreRun.verify_now).
        return ChosenSet(directory.name, directory, {}, "unverified")
    raise RestoreError(msg=f"backup set {directory.name} is not verified (no {VERIFIED}): run backup_verify on "
                           f"{directory} with restore_test first (the backup role's verification), or give "
                           "verify_unmarked to have the restore verify it now; nothing was done")


def set_age(manifest: dict[str, Any], now: datetime) -> timedelta | None:
    when = (manifest.get("postgres") or {}).get("snapshot_at") or manifest.get("finished_at")
    try:
        return now - datetime.fromisoformat(str(when))
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- the estimate


@dataclass
class Estimate:
    seconds: float
    basis: str

    @property
    def duration(self) -> timedelta:
        return timedelta(seconds=self.seconds)


def estimate_duration(*, restore_bytes: int, database_bytes: int, mark: dict[str, Any],
                      verify_first: bool = False) -> Estimate:
    """Safety dump + restore + fixed overhead. The restore is the set's own restore test when its mark measured one
    (verified.json's restore_seconds, for restored_bytes of database: this very set), else the set's dump bytes at a
    stated conservative rate."""
    dump = database_bytes / CONSERVATIVE_DUMP_RATE
    measured_seconds, measured_bytes = mark.get("restore_seconds"), mark.get("restored_bytes")
    if isinstance(measured_seconds, (int, float)) and not isinstance(measured_seconds, bool) and measured_seconds > 0:
        restore = float(measured_seconds)
        size = f" of {human_bytes(int(measured_bytes))}" if isinstance(measured_bytes, (int, float)) else ""
        how = f"restore {format_duration(timedelta(seconds=restore))} as the set's own restore test took{size}"
    else:
        restore = restore_bytes / CONSERVATIVE_RESTORE_RATE
        how = (f"restore {format_duration(timedelta(seconds=restore))} of {human_bytes(restore_bytes)} at a "
               f"conservative {CONSERVATIVE_RESTORE_RATE // 1048576} MiB/s (no restore test measured this set)")
    if verify_first:
        # verify_unmarked: the set is restored twice, into the scratch database first.
        how += "; twice, as it is verified first with a restore test"
        restore *= 2
    total = dump + restore + FIXED_OVERHEAD.total_seconds()
    basis = (f"safety backup {format_duration(timedelta(seconds=dump))} of {human_bytes(database_bytes)} at "
             f"{CONSERVATIVE_DUMP_RATE // 1048576} MiB/s; {how}; {format_duration(FIXED_OVERHEAD)} for the writers, "
             "checks and swap")
    return Estimate(round(total, 1), basis)


# --------------------------------------------------------------------------- database settings


def split_setting_list(value: str) -> list[str]:
    """A list setting as stored in pg_db_role_setting (``"$user", public``) split like PostgreSQL's SplitGUCList."""
    items: list[str] = []
    index, length = 0, len(value)
    while index < length:
        while index < length and value[index].isspace():
            index += 1
        if index >= length:
            break
        if value[index] == '"':
            index += 1
            chunk = []
            while index < length:
                if value[index] == '"':
                    if index + 1 < length and value[index + 1] == '"':
                        chunk.append('"')
                        index += 2
                        continue
                    index += 1
                    break
                chunk.append(value[index])
                index += 1
            items.append("".join(chunk))
            while index < length and value[index] != ",":
                index += 1
        else:
            end = value.find(",", index)
            end = length if end < 0 else end
            items.append(value[index:end].strip())
            index = end
        index += 1  # the comma
    return items


def setting_statement(database: str, role: str | None, entry: str) -> Any:
    """``ALTER [ROLE r IN] DATABASE d SET name = value`` for one ``name=value`` of pg_db_role_setting."""
    name, sep, value = entry.partition("=")
    if not sep or not SETTING_NAME.match(name):
        raise RestoreError(msg=f"database setting {entry!r} is not name=value; copy it by hand")
    values = split_setting_list(value) if name.lower() in LIST_SETTINGS else [value]
    target = (sql.SQL("ALTER ROLE {} IN DATABASE {}").format(sql.Identifier(role), sql.Identifier(database))
              if role else sql.SQL("ALTER DATABASE {}").format(sql.Identifier(database)))
    return sql.SQL("{} SET {} = {}").format(target, sql.Identifier(*name.split(".")),
                                            sql.SQL(", ").join(sql.Literal(v) for v in values))


def acl_statements(database: str, owner: str, entries: list[tuple[str | None, str, bool]] | None) -> list[Any]:
    """The live database's ACL on the new one: (grantee or None for PUBLIC, privilege, grantable) from aclexplode.

    ``None`` (a NULL datacl) means the defaults, which the new database has already. Otherwise the new one starts
    from nothing (REVOKE ALL from PUBLIC and the owner) and gets exactly the live database's entries.
    """
    if entries is None:
        return []
    target = sql.Identifier(database)
    statements = [sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(target),
                  sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(target, sql.Identifier(owner))]
    for grantee, privilege, grantable in entries:
        if privilege not in PRIVILEGES:
            raise RestoreError(msg=f"database privilege {privilege!r} of the live database is not one of "
                                   f"{', '.join(PRIVILEGES)}; copy the ACL by hand")
        statements.append(sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
            sql.SQL(PRIVILEGES[privilege]), target, sql.Identifier(grantee) if grantee else sql.SQL("PUBLIC"),
            sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL("")))
    return statements


def connection_limit_statement(database: str, limit: int) -> Any | None:
    if limit is None or limit < 0:
        return None  # -1: no limit, what a new database has
    return sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(sql.Identifier(database), sql.Literal(int(limit)))


@dataclass
class LiveDatabase:
    """What the live database is and holds before the restore."""

    name: str
    oid: int
    owner: str
    bytes: int
    comment: str | None
    connection_limit: int
    acl: list[tuple[str | None, str, bool]] | None
    settings: list[tuple[str | None, str]]  # (role or None, "name=value")
    sessions: list[dict[str, Any]]
    row_counts: dict[str, int]

    def summary(self) -> dict[str, Any]:
        return {"database": self.name, "owner": self.owner, "bytes": self.bytes, "row_counts": self.row_counts,
                "sessions": len(self.sessions), "session_list": self.sessions}


def sessions_of(admin: Any, database: str) -> list[dict[str, Any]]:
    rows = admin.execute("SELECT pid, usename, application_name, host(client_addr), state FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid() ORDER BY pid", (database,)).fetchall()
    return [{"pid": pid, "user": user, "application": app or "", "client": client or "local", "state": state or ""}
            for pid, user, app, client, state in rows]


def read_live(admin: Any, kwargs: dict[str, Any], database: str, tables: list[str], *, server: str) -> LiveDatabase:
    row = admin.execute(
        "SELECT d.oid, pg_get_userbyid(d.datdba), pg_database_size(d.oid), shobj_description(d.oid, 'pg_database'), "
        "d.datconnlimit, d.datacl IS NULL FROM pg_database d WHERE d.datname = %s", (database,)).fetchone()
    if row is None:
        raise RestoreError(msg=f"database {database!r} does not exist on {server}: pg_restore replaces a live "
                               "database (restore a new one with backup_verify's restore test, or create it); "
                               "nothing was done")
    oid, owner, size, comment, limit, default_acl = row
    acl = None if default_acl else [tuple(row) for row in admin.execute(
        "SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, "
        "a.is_grantable FROM pg_database d, aclexplode(d.datacl) a WHERE d.oid = %s ORDER BY 1 NULLS FIRST, 2",
        (oid,)).fetchall()]
    settings = [(role, entry) for role, entries in admin.execute(
        "SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END, s.setconfig "
        "FROM pg_db_role_setting s WHERE s.setdatabase = %s ORDER BY 1 NULLS FIRST", (oid,)).fetchall()
        for entry in entries or []]
    counts = {}
    with connect({**kwargs, "dbname": database}) as conn:
        for table in tables:
            schema, name = split_table_name(table)
            if conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{name}"',)).fetchone()[0] is None:
                continue  # a table the set has and live has not: the restore brings it back
            counts[f"{schema}.{name}"] = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(qualified(schema, name))).fetchone()[0]
    return LiveDatabase(database, oid, owner, size, comment, limit, acl, settings,
                        sessions_of(admin, database), counts)


def copy_database_settings(admin: Any, live: LiveDatabase, new: str) -> list[str]:
    """Settings, ACL and connection limit of the live database onto the new one; the statements, for the record."""
    statements = [setting_statement(new, role, entry) for role, entry in live.settings]
    statements += acl_statements(new, live.owner, live.acl)
    limit = connection_limit_statement(new, live.connection_limit)
    statements += [limit] if limit is not None else []
    texts = []
    for statement in statements:
        admin.execute(statement)
        texts.append(statement.as_string(admin))
    return texts


# --------------------------------------------------------------------------- the run


@dataclass
class Names:
    stamp: str
    restored: str
    replaced: str


def names_for(database: str, now: datetime) -> Names:
    stamp = now.astimezone(timezone.utc).strftime(STAMP_FORMAT)
    return Names(stamp, f"{database}__restore_{stamp}", f"{database}__replaced_{stamp}")


def run_pg_restore(params: dict[str, Any], *, check_mode: bool, diff_mode: bool = False,
                   clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                   writers_factory: Callable[..., Any] | None = None) -> dict[str, Any]:
    del diff_mode
    run = RestoreRun(params, check_mode=check_mode, clock=clock, writers_factory=writers_factory)
    try:
        return run.accept() if run.options.operation == "accept" else run.restore()
    except MaintenanceError as exc:
        # A failed result keeps the plan and the records of what was done before the fault.
        exc.details.update(records=run.records, changed=is_changed(run.records), **run.outputs())
        raise


def make_writers(params: dict[str, Any], writers: dict[str, Any]) -> Any:
    """The writers object of the option, with the connection of the docker or kubernetes action group."""
    from .restore_writers import ComposeWriters, K8sWriters  # noqa: PLC0415

    try:
        if "compose" in writers:
            from .docker_conn import docker_client_from, engine_name  # noqa: PLC0415

            client = docker_client_from(params.get("docker_host"), params.get("timeout") or 60)
            return ComposeWriters(client, writers["compose"], engine=engine_name(params.get("docker_host")),
                                  start_timeout=writers["start_timeout"])
        from .k8s_conn import api_client_from, check_request_timeout  # noqa: PLC0415

        api = api_client_from(params.get("kubeconfig"), params.get("context"))
        return K8sWriters(api, writers["kubernetes"], start_timeout=writers["start_timeout"],
                          request_timeout=check_request_timeout(params.get("request_timeout") or 30))
    except MaintenanceError as exc:
        raise RestoreError(msg=f"writers ({describe_writers(writers)}): {exc.msg}; nothing was done") from exc


class RestoreRun:
    """One run: the options, the records so far, and what the result reports."""

    def __init__(self, params: dict[str, Any], *, check_mode: bool, clock: Callable[[], datetime],
                 writers_factory: Callable[..., Any] | None) -> None:
        self.params = params
        self.check_mode = check_mode
        self.clock = clock
        self.writers_factory = writers_factory or make_writers
        self.records: list[dict[str, Any]] = []
        self.plan: dict[str, Any] | None = None
        self.window: dict[str, Any] | None = None
        self.safety_set: str | None = None
        self.replaced: str | None = None
        self.restored: str | None = None
        self.dropped_restored = False
        self.options = validate(params)
        self.kwargs = conninfo_from_params({**params, "database": self.options.database})
        self.server = f"{self.kwargs.get('host', 'localhost')}:{self.kwargs.get('port', 5432)}"

    def outputs(self) -> dict[str, Any]:
        found = {"plan": self.plan, "safety_set": self.safety_set, "replaced_database": self.replaced,
                 "restored_database": self.restored}
        if self.window is not None:
            found["window"] = self.window
        return found

    def add(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        record = make_record(*args, **kwargs)
        self.records.append(record)
        return record

    def admin(self) -> Any:
        return connect({**self.kwargs, "dbname": self.options.maintenance_database})

    # ----------------------------------------------------------------- restore

    def restore(self) -> dict[str, Any]:
        options = self.options
        require_gate_options(self.params)
        guard = guard_from_params(self.params)
        if not self.check_mode:
            # Outside the window without an approval nothing is read or touched; the time it needs is checked below.
            self.window = guard.require(refusal=f"refusing to restore {options.database}; nothing was done").decision()
        chosen = self.check_chosen_set()
        if chosen.kind == "unverified" and not self.check_mode:
            self.verify_now(chosen)
        writers = self.writers_factory(self.params, options.writers)
        try:
            running = writers.running()
        except WritersError as exc:
            raise RestoreError(msg=f"writers ({describe_writers(options.writers)}): {exc.msg}; nothing was "
                                   "done") from exc
        try:
            with self.admin() as admin:
                tables = options.critical_tables or sorted(chosen.manifest.get("row_counts") or {})
                live = read_live(admin, self.kwargs, options.database, tables, server=self.server)
        except psycopg.Error as exc:
            raise RestoreError(msg=f"reading database {options.database} on {self.server} failed: "
                                   f"{first_line(exc)}; nothing was done") from exc
        names = names_for(options.database, self.clock())
        estimate = estimate_duration(restore_bytes=set_bytes(chosen.manifest), database_bytes=live.bytes,
                                     mark=chosen.mark, verify_first=chosen.kind == "unverified")
        status = guard.status(estimate.duration)
        self.window = status.decision()
        self.plan = self.make_plan(chosen, live, running, writers, estimate, names)
        self.add_plan_records(chosen, live, running, writers, estimate, status)
        if not status.allowed:
            if self.check_mode:
                return self.result(f"would be refused: {status.msg}; the plan is in the records")
            raise WindowClosedError(msg=f"refusing to restore {options.database}: {status.msg} (estimated "
                                        f"{format_duration(estimate.duration)}); nothing was done",
                                    window=self.window)
        if self.check_mode:
            self.add_planned_steps(chosen, live, running, names)
            return self.result(f"would restore {chosen.set_id} into {options.database} on {self.server}, estimated "
                               f"{format_duration(estimate.duration)}; check mode: nothing was done")
        # The safety backup dumps the critical tables the live database still has (a dropped one may be the reason
        # for the restore, and must not make the backup of what is left fail).
        with self.restore_lock():
            return self.execute(chosen, live, running, writers, names, sorted(live.row_counts))

    @contextlib.contextmanager
    def restore_lock(self) -> Iterator[None]:
        """One restore of a database at a time: a session advisory lock on the server, held for the whole run.

        Two operators (or a manual run beside a scheduled one, or a group of hosts naming one database) would
        otherwise both stop the writers and swap, the second over the first. The lock goes with its session, so a
        killed run never leaves it behind.
        """
        key = f"streamops.maintenance pg_restore {self.options.database}"
        try:
            conn = self.admin()
        except PgError as exc:
            raise RestoreError(msg=f"{exc.msg}; nothing was done") from exc
        with conn:
            conn.execute("SELECT set_config('application_name', %s, false)", (key,))
            if not conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()[0]:
                holders = conn.execute(
                    "SELECT a.pid, a.usename, host(a.client_addr), a.backend_start FROM pg_locks l JOIN "
                    "pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND "
                    "a.application_name = %s AND a.pid <> pg_backend_pid()", (key,)).fetchall()
                who = ", ".join(f"pid {pid} ({user}@{client or 'local'}, since {since:%Y-%m-%d %H:%M:%S %Z})"
                                for pid, user, client, since in holders) or "another session"
                raise RestoreError(msg=f"another restore of {self.options.database} on {self.server} is running "
                                       f"({who}); nothing was done")
            yield

    def check_chosen_set(self) -> ChosenSet:
        chosen = choose_set(self.options)
        checks = Checks()
        manifest = check_set_files(chosen.directory, checks, pg_bin_dir=self.params.get("pg_bin_dir"))
        self.records.extend(checks.records)
        if manifest is None:
            failed = "; ".join(f"{r['name']}: {r['detail']}" for r in checks.failed)
            raise RestoreError(msg=f"backup set {chosen.set_id} refused, its files no longer match what was "
                                   f"verified: {failed}; nothing was stopped, the live database is untouched")
        parts = {part.get("part") for part in manifest.get("parts") or [] if isinstance(part, dict)}
        if "full" not in parts:
            # A schema and the critical tables' data are not the whole database: the other tables would be empty.
            raise RestoreError(msg=f"backup set {chosen.set_id} has no full dump (parts "
                                   f"{', '.join(sorted(map(str, parts)))}): it cannot replace the whole database; "
                                   "nothing was done")
        source = (manifest.get("postgres") or {}).get("database")
        if source != self.options.database:
            raise RestoreError(msg=f"backup set {chosen.set_id} is of database {source!r}, not "
                                   f"{self.options.database!r}; refusing to replace one database with another; "
                                   "nothing was done")
        chosen.manifest = manifest
        return chosen

    def verify_now(self, chosen: ChosenSet) -> None:
        """backup_verify with a restore test into a scratch database on this server; the mark it writes is the
        verification the restore needs. Nothing has stopped yet: a set that does not verify is refused here."""
        from .backup_verify import run_backup_verify  # noqa: PLC0415

        scratch = f"{self.options.database}__verify_{names_for(self.options.database, self.clock()).stamp}"
        params = {**{k: v for k, v in self.params.items() if k in CONNECTION_KEYS},
                  "path": str(chosen.directory), "restore_test": True, "scratch_database": scratch,
                  "maintenance_database": self.options.maintenance_database, "jobs": self.params.get("jobs") or 1,
                  "sql_checks": [{"min": 1, **check} for check in self.params.get("sql_checks") or []],
                  "pg_bin_dir": self.params.get("pg_bin_dir"), "fail_on_unverified": True, "mark": True}
        try:
            result = run_backup_verify(params, check_mode=False, clock=self.clock)
        except MaintenanceError as exc:
            result = {"records": exc.details.get("records") or [], "verified": False, "msg": exc.msg}
        self.records.extend({**record, "name": f"{chosen.set_id} {record['name']}"}
                            for record in result.get("records") or [])
        if not result.get("verified"):
            raise RestoreError(msg=f"backup set {chosen.set_id} was not verified, so it is not restored: "
                                   f"{result.get('msg')}; nothing was stopped, the live database is untouched")
        chosen.mark = read_json(chosen.directory / VERIFIED, what="verified mark")
        chosen.kind = "verified"

    def make_plan(self, chosen: ChosenSet, live: LiveDatabase, running: list[Any], writers: Any,
                  estimate: Estimate, names: Names) -> dict[str, Any]:
        age = set_age(chosen.manifest, self.clock())
        window = self.window or {}
        return {
            "set": {"id": chosen.set_id, "path": str(chosen.directory), "kind": chosen.kind,
                    "age_seconds": int(age.total_seconds()) if age is not None else None,
                    "bytes": set_bytes(chosen.manifest), "row_counts": chosen.manifest.get("row_counts") or {},
                    "verified_at": chosen.mark.get("verified_at") or chosen.mark.get("held_at")},
            "database": live.summary(),
            "server": self.server,
            "writers": {"kind": writers.kind, "running": [w.plan_entry() for w in running if w.running],
                        "not_running": [w.plan_entry() for w in running if not w.running]},
            "estimate": {"seconds": estimate.seconds, "basis": estimate.basis,
                         "window_seconds_left": window.get("seconds_left"), "window_mode": window.get("mode")},
            "safety_backup": {"root": str(self.options.safety_root), "name": chosen.manifest.get("name"),
                              "parts": self.safety_parts(sorted(live.row_counts)),
                              "critical_tables": sorted(live.row_counts), "s3": bool(self.params.get("s3"))},
            "restored_database": names.restored,
            "replaced_database": names.replaced if self.options.keep_replaced else None,
            "keep_replaced": self.options.keep_replaced,
        }

    @staticmethod
    def safety_parts(tables: list[str]) -> list[str]:
        return ["full", "critical_data"] if tables else ["full"]

    def add_plan_records(self, chosen: ChosenSet, live: LiveDatabase, running: list[Any], writers: Any,
                         estimate: Estimate, status: Any) -> None:
        plan = self.plan or {}
        age = plan["set"]["age_seconds"]
        age_text = format_duration(timedelta(seconds=age)) if age is not None else "unknown age"
        self.add(f"backup set {chosen.set_id}", "restore_source", "ok",
                 f"{chosen.kind} set, {age_text} old, {human_bytes(plan['set']['bytes'])}, rows "
                 + ", ".join(f"{t} {n}" for t, n in sorted(plan["set"]["row_counts"].items())),
                 after=plan["set"])
        sessions = ", ".join(f"{s['user']}@{s['client']} ({s['application'] or 'no name'})" for s in live.sessions)
        self.add(f"database {live.name}", "restore_target", "ok",
                 f"{human_bytes(live.bytes)} on {self.server}, owner {live.owner}, rows "
                 + (", ".join(f"{t} {n}" for t, n in sorted(live.row_counts.items())) or "none counted")
                 + f"; {len(live.sessions)} session(s) connected" + (f": {sessions}" if sessions else ""),
                 before=live.summary())
        names = [w.name for w in running if w.running]
        self.add(describe_writers(self.options.writers), "writers", "ok",
                 f"{len(names)} running, to be stopped: {', '.join(names) or 'none'}",
                 before={"running": [w.plan_entry() for w in running]})
        window_status = "ok" if status.allowed else "breach"
        self.add("window", "window", window_status,
                 f"estimated {format_duration(estimate.duration)} ({estimate.basis}); {status.msg}",
                 after={"estimated_seconds": estimate.seconds, "seconds_left": self.window["seconds_left"],
                        "mode": self.window["mode"]})

    def add_planned_steps(self, chosen: ChosenSet, live: LiveDatabase, running: list[Any], names: Names) -> None:
        safety = self.plan["safety_backup"]
        if chosen.kind == "unverified":
            self.add(chosen.set_id, "verify", "planned",
                     f"would verify it first (verify_unmarked): restore it into the scratch database "
                     f"{live.name}__verify_{names.stamp}, compare its rows and checksums with the manifest, run the "
                     "SQL checks, drop the scratch database; the restore goes on only if it verifies")
        self.add(f"safety backup of {live.name}", "safety_backup", "planned",
                 f"would back up {live.name} ({human_bytes(live.bytes)}, parts {', '.join(safety['parts'])}) under "
                 f"{safety['root']}, check it and hold it until the restore is accepted", after=safety)
        for writer in running:
            if writer.running:
                self.add(writer.name, "stop_writer", "planned", "would stop it, and start it again afterwards",
                         before=writer.plan_entry())
        self.add(names.restored, "restore_database", "planned",
                 f"would restore {chosen.set_id} into the new database {names.restored} (owner {live.owner}, "
                 f"settings, ACL and connection limit of {live.name}) and check its rows against the manifest",
                 after={"set": chosen.set_id, "database": names.restored})
        kept = (f"kept as {names.replaced}" if self.options.keep_replaced else "dropped once the new one answers")
        self.add(live.name, "swap", "planned",
                 f"would terminate {len(live.sessions)} session(s) and swap {names.restored} in as {live.name} by "
                 f"rename; the current {live.name} {kept}", before=live.summary())

    # ----------------------------------------------------------------- the steps

    def execute(self, chosen: ChosenSet, live: LiveDatabase, running: list[Any], writers: Any, names: Names,
                tables: list[str]) -> dict[str, Any]:
        safety_dir = self.take_safety_backup(chosen, live, names, tables)
        swapped = False
        failure: MaintenanceError | None = None
        try:
            writers.stop(running, self.records)
            self.restored = names.restored
            self.restore_new_database(chosen, live, names)
            self.swap(live, names)
            swapped = True
        except (MaintenanceError, psycopg.Error) as exc:
            failure = exc if isinstance(exc, MaintenanceError) else RestoreError(msg=first_line(exc))
            if not swapped:
                self.undo_before_swap(names, safety_dir)
        finally:
            # Always: the writers run again as they ran before, whatever happened above.
            started = writers.start(self.records)
        if failure is not None:
            raise self.failed_before_swap(failure, started, live, names)
        return self.after_swap(chosen, live, names, safety_dir, started)

    def take_safety_backup(self, chosen: ChosenSet, live: LiveDatabase, names: Names, tables: list[str]) -> Path:
        """pg_backup of the live database, checked, and held out of retention until the restore is accepted."""
        params = {**{k: v for k, v in self.params.items() if k in CONNECTION_KEYS},
                  "database": live.name, "operation": "backup", "backup_root": str(self.options.safety_root),
                  "name": chosen.manifest.get("name") or live.name, "parts": self.safety_parts(tables),
                  "critical_tables": tables, "format": "custom", "jobs": 1, "compress_level": None,
                  "pg_bin_dir": self.params.get("pg_bin_dir"), "s3": self.params.get("s3") or None,
                  "retention": None, "reuse_verified_within": None, "config_paths": [], "redis": None}
        try:
            result = run_pg_backup(params, check_mode=False, clock=self.clock)
        except MaintenanceError as exc:
            self.records.extend(exc.details.get("records") or [])
            raise RestoreError(msg=f"the safety backup of {live.name} failed: {exc.msg}; nothing was stopped, the "
                                   "live database is untouched") from exc
        for record in result["records"]:
            self.records.append({**record, "action": "safety_backup" if record["action"] == "backup"
                                 else record["action"]})
        directory = Path(result["path"])
        self.safety_set = result["backup_id"]
        checks = Checks()
        manifest = check_set_files(directory, checks, pg_bin_dir=self.params.get("pg_bin_dir"))
        for record in checks.records:
            self.records.append({**record, "name": f"{self.safety_set} {record['name']}"})
        if manifest is None:
            raise RestoreError(msg=f"the safety backup {self.safety_set} did not pass its checks: "
                                   + "; ".join(f"{r['name']}: {r['detail']}" for r in checks.failed)
                                   + "; nothing was stopped, the live database is untouched")
        hold = {"by": HOLDER, "kind": "safety", "held_at": self.clock().isoformat(), "database": live.name,
                "server": self.server, "restoring": chosen.set_id, "state": "restoring",
                "restored_database": names.restored, "replaced_database": None,
                "reason": f"safety backup taken before restoring {chosen.set_id} into {live.name}; kept until the "
                          f"restore is accepted (restore.yml -e restore_accept={self.safety_set})"}
        write_hold(directory, hold)
        self.add(self.safety_set, "hold", "done", f"held out of retention: {hold['reason']}",
                 after={"path": str(directory), "hold": hold["reason"]})
        return directory

    def restore_new_database(self, chosen: ChosenSet, live: LiveDatabase, names: Names) -> None:
        begun = time.monotonic()
        try:
            with self.admin() as admin:
                create_marked_database(admin, names.restored, RESTORED_MARK, server=self.server, owner=live.owner,
                                       like=live.name)
                parts = restore_parts({"jobs": self.params.get("jobs") or 1,
                                       "pg_bin_dir": self.params.get("pg_bin_dir")},
                                      chosen.directory, chosen.manifest, {**self.kwargs, "dbname": names.restored},
                                      server=self.server, keep_owners=True)
                self.add(names.restored, "restore_database", "done",
                         f"{' then '.join(parts)} of {chosen.set_id} restored into {names.restored} (owner "
                         f"{live.owner})", after={"set": chosen.set_id, "parts": parts},
                         seconds=time.monotonic() - begun)
                statements = copy_database_settings(admin, live, names.restored)
                self.add(names.restored, "copy_settings", "done" if statements else "unchanged",
                         f"{len(statements)} statement(s): settings, ACL and connection limit of {live.name}"
                         if statements else f"{live.name} has default settings, ACL and no connection limit",
                         after={"statements": statements})
        except psycopg.Error as exc:
            raise RestoreError(msg=f"restoring into {names.restored} failed: {first_line(exc)}") from exc
        except MaintenanceError as exc:
            self.add(names.restored, "restore_database", "failed", exc.msg, seconds=time.monotonic() - begun)
            raise
        self.check_new_database(chosen, names)
        self.analyze_new_database(names)

    def analyze_new_database(self, names: Names) -> None:
        """ANALYZE before the swap: pg_restore leaves no statistics, and the first queries on a copy without them
        get plans as if every table were empty (sequential scans, wrong joins) until autovacuum gets round to it."""
        begun = time.monotonic()
        try:
            with connect({**self.kwargs, "dbname": names.restored}) as conn:
                conn.execute("ANALYZE")
        except psycopg.Error as exc:
            raise RestoreError(msg=f"ANALYZE of {names.restored} failed: {first_line(exc)}") from exc
        self.add(names.restored, "analyze", "done", "statistics gathered for the planner before the swap",
                 seconds=time.monotonic() - begun)

    def check_new_database(self, chosen: ChosenSet, names: Names) -> None:
        checks = Checks()
        try:
            with connect({**self.kwargs, "dbname": names.restored}) as conn:
                comparison = comparison_records(compare_tables(conn, chosen.manifest))
                for check in self.params.get("sql_checks") or []:
                    run_sql_check(conn, {"min": 1, **check}, checks)
        except psycopg.Error as exc:
            raise RestoreError(msg=f"checking {names.restored} failed: {first_line(exc)}") from exc
        self.records.extend(comparison)
        self.records.extend(checks.records)
        failed = [r for r in [*comparison, *checks.records] if r["status"] in ("failed", "breach")]
        if failed:
            raise RestoreError(msg=f"the restored copy {names.restored} failed its checks: "
                                   + "; ".join(f"{r['name']}: {r['detail']}" for r in failed))

    def swap(self, live: LiveDatabase, names: Names) -> None:
        """Terminate the live database's sessions, then both renames (and the comment) in one transaction.

        RENAME refuses while another session is connected (55006): a client that reconnected between the
        terminate and the rename makes the transaction roll back whole, and the swap is tried again.
        """
        begun = time.monotonic()
        terminated: list[dict[str, Any]] = []
        with self.admin() as admin:
            for attempt in range(1, SWAP_ATTEMPTS + 1):
                sessions = sessions_of(admin, live.name)
                for session in sessions:
                    admin.execute("SELECT pg_terminate_backend(%s)", (session["pid"],))
                terminated.extend(sessions)
                try:
                    with admin.transaction():
                        admin.execute("SET LOCAL statement_timeout = '30s'")
                        admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            sql.Identifier(live.name), sql.Identifier(names.replaced)))
                        admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            sql.Identifier(names.restored), sql.Identifier(live.name)))
                        # The mark goes: the restored database is now the live one, never to be dropped as a copy.
                        admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                            sql.Identifier(live.name), sql.Literal(live.comment)))
                    break
                except psycopg.errors.ObjectInUse as exc:
                    if attempt == SWAP_ATTEMPTS:
                        raise RestoreError(msg=f"the swap was refused {SWAP_ATTEMPTS} times: {first_line(exc)} "
                                               "(a client keeps reconnecting)") from exc
                    time.sleep(0.2 * attempt)
        self.add(f"database {live.name}", "terminate_sessions", "done" if terminated else "unchanged",
                 f"{len(terminated)} session(s) terminated: "
                 + (", ".join(f"{s['pid']} {s['user']}@{s['client']} ({s['application'] or 'no name'})"
                              for s in terminated) or "none was connected"),
                 before={"sessions": terminated})
        self.replaced = names.replaced
        self.restored = live.name
        self.add(live.name, "swap", "done",
                 f"{names.restored} is now {live.name}; the previous {live.name} is {names.replaced}",
                 before={"database": live.name, "renamed_to": names.replaced},
                 after={"database": live.name, "restored_from": names.restored}, seconds=time.monotonic() - begun)

    def undo_before_swap(self, names: Names, safety_dir: Path) -> None:
        """A failure before the swap: drop the new copy (only if it carries our mark) and release the hold."""
        try:
            with self.admin() as admin:
                dropped = drop_marked_database(admin, names.restored, RESTORED_MARK)
            if dropped:
                self.add(names.restored, "drop_restored", "done", "dropped: the restore did not complete")
                self.dropped_restored = True
        except (MaintenanceError, psycopg.Error) as exc:
            message = exc.msg if isinstance(exc, MaintenanceError) else first_line(exc)
            self.add(names.restored, "drop_restored", "failed",
                     f"could not drop it: {message}; drop {names.restored} by hand")
        self.restored = None
        if release_hold(safety_dir):
            self.add(self.safety_set, "release_hold", "done",
                     "released: the live database was not replaced, so the safety set is an ordinary set again")

    def failed_before_swap(self, failure: MaintenanceError, started: bool, live: LiveDatabase,
                           names: Names) -> RestoreError:
        writers = ("the writers were started again" if started
                   else "NOT every writer could be started again (see the start_writer records)")
        done = [r["action"] for r in self.records if r["status"] == "done"]
        dropped = f", {names.restored} was dropped" if self.dropped_restored else ""
        return RestoreError(msg=f"restore of {live.name} failed before the swap: {failure.msg}; the live database "
                                f"{live.name} is untouched and still serving{dropped}, {writers}; steps done: "
                                f"{', '.join(dict.fromkeys(done)) or 'none'}")

    def after_swap(self, chosen: ChosenSet, live: LiveDatabase, names: Names, safety_dir: Path,
                   started: bool) -> dict[str, Any]:
        way_back = (f"the way back: rename {names.replaced} back to {live.name}, or restore the safety set "
                    f"{self.safety_set} (restore.yml -e restore_set={self.safety_set})")
        hold = read_hold(safety_dir) or {}
        try:
            write_hold(safety_dir, {**hold, "state": "swapped", "replaced_database": names.replaced,
                                    "swapped_at": self.clock().isoformat()})
        except (OSError, BackupError) as exc:
            # The hold written before the restore still holds the set; only the replaced database's name is missing.
            message = exc.msg if isinstance(exc, BackupError) else str(exc)
            self.add(self.safety_set, "hold", "failed", f"could not name {names.replaced} in the hold: {message}; "
                                                        f"accept will not drop it, drop it by hand")
        problem = self.check_live(chosen, live)
        if problem is None and not self.options.keep_replaced:
            self.drop_replaced(names.replaced)
            way_back = f"the way back: restore the safety set {self.safety_set} (restore.yml -e restore_set=" \
                       f"{self.safety_set})"
        if problem is not None or not started:
            what = problem or "NOT every writer could be started again (see the start_writer records)"
            raise RestoreError(msg=f"the restored data of {chosen.set_id} is live in {live.name}, but {what}; "
                                   f"{way_back}")
        kept = (f"the replaced database is kept as {names.replaced}" if self.options.keep_replaced
                else f"the replaced database {names.replaced} was dropped (keep_replaced: false)")
        return self.result(f"restored {chosen.set_id} into {live.name} on {self.server}; {kept}; the safety set "
                           f"{self.safety_set} is held until accepted (restore.yml -e restore_accept="
                           f"{self.safety_set}); {way_back}")

    def check_live(self, chosen: ChosenSet, live: LiveDatabase) -> str | None:
        """The live database answers and holds the set's row counts; None when it does, else what is wrong."""
        expected = chosen.manifest.get("row_counts") or {}
        begun = time.monotonic()
        try:
            with connect({**self.kwargs, "dbname": live.name}) as conn:
                counts = {}
                for table in sorted(expected):
                    schema, name = split_table_name(table)
                    counts[table] = conn.execute(
                        sql.SQL("SELECT count(*) FROM {}").format(qualified(schema, name))).fetchone()[0]
        except (psycopg.Error, PgError) as exc:
            message = exc.msg if isinstance(exc, PgError) else first_line(exc)
            self.add(f"database {live.name}", "live_check", "failed", f"does not answer: {message}",
                     seconds=time.monotonic() - begun)
            return f"it does not answer: {message}"
        wrong = [f"{t}: {counts[t]} rows, the set has {n}" for t, n in sorted(expected.items()) if counts[t] != n]
        status = "failed" if wrong else "ok"
        detail = "; ".join(wrong) if wrong else "answers; rows " + ", ".join(f"{t} {n}" for t, n in counts.items())
        self.add(f"database {live.name}", "live_check", status, detail, after={"row_counts": counts},
                 seconds=time.monotonic() - begun)
        return f"the live check found {detail}" if wrong else None

    def drop_replaced(self, replaced: str) -> None:
        try:
            with self.admin() as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(replaced)))
            self.replaced = None
            self.add(replaced, "drop_replaced", "done", "dropped (keep_replaced: false)")
        except psycopg.Error as exc:
            self.add(replaced, "drop_replaced", "failed", f"could not drop it: {first_line(exc)}")

    def result(self, msg: str) -> dict[str, Any]:
        return {"changed": is_changed(self.records), "msg": msg, "records": self.records, **self.outputs()}

    # ----------------------------------------------------------------- accept

    def accept(self) -> dict[str, Any]:
        options = self.options
        try:
            directory = find_set(options.safety_root, options.safety_set)
        except BackupError as exc:
            raise RestoreError(msg=f"safety_set {options.safety_set!r}: {exc.msg}") from exc
        self.safety_set = directory.name
        hold = read_hold(directory)
        if hold is None:
            self.add(self.safety_set, "release_hold", "unchanged", "no hold: already accepted (or never held)")
            return self.result(f"{self.safety_set} holds no hold: the restore was already accepted; nothing to do")
        if hold.get("by") != HOLDER or hold.get("kind") != "safety":
            raise RestoreError(msg=f"{self.safety_set} is held by {hold.get('by')!r} ({hold.get('reason')}), not as "
                                   "a restore's safety set; refusing to release another hold")
        if hold.get("database") != options.database:
            raise RestoreError(msg=f"{self.safety_set} is the safety set of database {hold.get('database')!r}, not "
                                   f"{options.database!r}; nothing was done")
        replaced = hold.get("replaced_database")
        if options.drop_replaced and replaced:
            self.accept_drop(replaced)
        elif replaced:
            self.replaced = replaced
        verb = "would release" if self.check_mode else "released"
        if not self.check_mode:
            release_hold(directory)
        self.add(self.safety_set, "release_hold", "planned" if self.check_mode else "done",
                 f"{verb} the hold: retention may now age the safety set out like any other",
                 before={"hold": hold.get("reason")})
        kept = f"; {replaced} is kept (drop_replaced: true drops it)" if replaced and self.replaced else ""
        return self.result(f"restore accepted: {verb} the hold on {self.safety_set}{kept}"
                           + ("; check mode: nothing was done" if self.check_mode else ""))

    def accept_drop(self, replaced: str) -> None:
        if not replaced.startswith(f"{self.options.database}__replaced_") or replaced == self.options.database:
            raise RestoreError(msg=f"the hold names {replaced!r} as the replaced database, which is not "
                                   f"{self.options.database}__replaced_<stamp>; refusing to drop it")
        begun = time.monotonic()
        try:
            with self.admin() as admin:
                exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (replaced,)).fetchone()
                if exists is None:
                    self.add(replaced, "drop_replaced", "unchanged", f"does not exist on {self.server} (already "
                                                                     "dropped)")
                    return
                if self.check_mode:
                    self.add(replaced, "drop_replaced", "planned", f"would drop it on {self.server}")
                    return
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(replaced)))
        except psycopg.Error as exc:
            raise RestoreError(msg=f"dropping the replaced database {replaced} failed: {first_line(exc)}; the hold "
                                   f"on {self.safety_set} is kept") from exc
        self.add(replaced, "drop_replaced", "done", f"dropped on {self.server}", seconds=time.monotonic() - begun)


# The connection options handed on to pg_backup for the safety backup (the same server and login).
CONNECTION_KEYS = ("login_host", "login_port", "login_user", "login_password", "login_unix_socket", "sslmode",
                   "ca_cert", "ssl_cert", "ssl_key", "connect_timeout")
