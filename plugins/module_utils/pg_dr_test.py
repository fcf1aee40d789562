# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The quarterly disaster-recovery test: a verified set restored onto ANOTHER PostgreSQL server, RTO and RPO.

The source is the estate's own connection (the postgres action group); the
target is named explicitly and is refused, before anything is created on it,
when it is the source server: the same host and port as the source connection
or as the set's ``postgres.server``, or the same ``system_identifier`` as the
live source or the set's ``postgres.system_identifier`` (which catches another
address of the same server: localhost for 127.0.0.1, a proxy's port). A target
whose identity cannot be proven different is tested, but never reported clean
(status ``unknown``).

RTO is measured from the start of the run (finding and fetching the set
included) until the restored copy passed its checks; RPO is the age of the data
restored: the start of the run minus the set's snapshot time. The target
database is created and marked by this module, and dropped afterwards (kept
with ``keep_restored`` only when the test passed).
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .backup_set import MANIFEST, VERIFIED, BackupError, find_set, newest_set, read_json, set_bytes, started_of
from .backup_verify import (
    Checks,
    check_set_files,
    comparison_records,
    compare_tables,
    create_marked_database,
    drop_marked_database,
    fetch_from_s3,
    restorable_parts,
    restore_parts,
    run_sql_check,
)
from .errors import MaintenanceError
from .pg import (
    PgError,
    check_identifier,
    conninfo_from_params,
    connect,
    first_line,
    pg_connection_argument_spec,
    psycopg,
)
from .records import human_bytes, is_changed, make_record
from .s3 import S3Store
from .window import format_duration, parse_duration

DR_MARK = "created by streamops.maintenance pg_dr_test; dropped after the DR test unless keep_restored"
SUMMARY_NAME = "dr test"
SUMMARY_ACTION = "dr_test"
CHECK = "verify"
LOOPBACK = "loopback"
# Host names that mean this machine's loopback interface whatever the resolver says.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
DEFAULT_PORT = 5432
SYSTEM_IDENTIFIER_SQL = "SELECT system_identifier::text FROM pg_control_system()"
Resolver = Callable[[str], Iterable[str]]


def resolve_addresses(host: str) -> list[str]:
    """The addresses a host name resolves to (none when it does not resolve)."""
    try:
        return [info[4][0] for info in socket.getaddrinfo(host, None)]
    except (OSError, UnicodeError):
        return []


# --------------------------------------------------------------------------- where a server answers


@dataclass(frozen=True)
class Endpoint:
    """A host and port as a connection or a manifest names a server; ``label`` says which one."""

    host: str
    port: int
    label: str

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_server(text: Any, label: str) -> Endpoint | None:
    """``host:port`` (``[::1]:5432`` or ``::1:5432`` for IPv6) as pg_backup writes ``postgres.server``; else None."""
    if not isinstance(text, str) or ":" not in text:
        return None
    host, _colon, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit():
        return None
    return Endpoint(host, int(port), label)


def endpoint_of_params(params: dict[str, Any], label: str) -> Endpoint | None:
    """The endpoint a connection's options name (None when they name no host: libpq's defaults decide)."""
    host = params.get("login_unix_socket") or params.get("login_host")
    if not host:
        return None
    return Endpoint(str(host), int(params.get("login_port") or DEFAULT_PORT), label)


def host_keys(host: str, resolve: Resolver = resolve_addresses) -> frozenset[str]:
    """What a host means, for comparing two servers: its addresses, loopback ones (and sockets) as one.

    A unix socket directory and every loopback name or address (127.0.0.0/8, ::1, localhost) are this
    machine: one key, so localhost:5432 and 127.0.0.1:5432 are the same server.
    """
    if host.startswith("/"):
        return frozenset({LOOPBACK})
    keys = {host.lower()}
    addresses = [host] if is_address(host) else list(resolve(host))
    if host.lower() in LOOPBACK_NAMES:
        keys.add(LOOPBACK)
    for address in addresses:
        keys.add(LOOPBACK if is_loopback(address) else str(ipaddress.ip_address(address.split("%")[0])))
    return frozenset(keys)


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    return True


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def same_endpoint(one: Endpoint, other: Endpoint, resolve: Resolver = resolve_addresses) -> bool:
    return one.port == other.port and bool(host_keys(one.host, resolve) & host_keys(other.host, resolve))


# --------------------------------------------------------------------------- is the target the source?


@dataclass
class ServerIdentity:
    """What is known of one server: where it answered (or is said to), and its system identifier."""

    endpoints: list[Endpoint] = field(default_factory=list)
    system_ids: list[tuple[str, str]] = field(default_factory=list)  # (system_identifier, where it was read)
    problems: list[str] = field(default_factory=list)  # why something could not be read


@dataclass(frozen=True)
class TargetVerdict:
    status: str  # ok, failed (refused), unknown (not proven to be another server)
    rule: str | None  # the refusal rule that matched: 'host and port' or 'system identifier'
    detail: str


def judge_target(source: ServerIdentity, target: ServerIdentity, *, target_name: str,
                 resolve: Resolver = resolve_addresses) -> TargetVerdict:
    """Refuse a target that is the source server; say when that cannot be proven either way."""
    for mine in target.endpoints:
        for theirs in source.endpoints:
            if same_endpoint(mine, theirs, resolve):
                return TargetVerdict("failed", "host and port", (
                    f"refused: target {target_name} is the source server (rule: same host and port: target "
                    f"{mine} ({mine.label}) is {theirs} ({theirs.label})); nothing was created on it"))
    target_ids = {pair[0] for pair in target.system_ids}
    for value, where in source.system_ids:
        if value in target_ids:
            return TargetVerdict("failed", "system identifier", (
                f"refused: target {target_name} is the source server (rule: same system_identifier {value} as "
                f"{where}; another address of the same server); nothing was created on it"))
    differ = "host and port differ from " + (grouped((str(e), e.label) for e in source.endpoints) or "nothing known")
    if not target_ids:
        why = "; ".join(target.problems) or "not read"
        return TargetVerdict("unknown", None, (
            f"not proven: target {target_name} could not be shown to be another server than the source: its "
            f"system_identifier cannot be read ({why}); {differ}"))
    if not source.system_ids:
        why = "; ".join(source.problems) or "not read"
        return TargetVerdict("unknown", None, (
            f"not proven: no system_identifier of the source is known ({why}), so target {target_name} "
            f"(system_identifier {', '.join(sorted(target_ids))}) could not be compared; {differ}"))
    compared = grouped(source.system_ids)
    return TargetVerdict("ok", None, (
        f"target {target_name} is another server: system_identifier {', '.join(sorted(target_ids))} differs "
        f"from {compared}; {differ}"))


def grouped(pairs: Iterable[tuple[str, str]]) -> str:
    """``a (where, where), b (where)``: each value once, with every place it was found."""
    places: dict[str, list[str]] = {}
    for value, where in pairs:
        places.setdefault(value, []).append(where)
    return ", ".join(f"{value} ({', '.join(wheres)})" for value, wheres in places.items())


def read_system_identifier(conn: Any) -> str:
    """The cluster's system identifier (raises psycopg.Error when the role may not call pg_control_system)."""
    return str(conn.execute(SYSTEM_IDENTIFIER_SQL).fetchone()[0])


def identify(conn: Any, label: str, identity: ServerIdentity) -> None:
    """Add where ``conn`` really answered (hostaddr) and its system identifier to ``identity``."""
    info = conn.info
    try:
        host = info.hostaddr or info.host  # the address really connected to: localhost shows as 127.0.0.1
    except psycopg.NotSupportedError:  # libpq before 12 has no hostaddr
        host = info.host
    identity.endpoints.append(Endpoint(str(host), int(info.port), f"{label} as connected"))
    try:
        identity.system_ids.append((read_system_identifier(conn), label))
    except psycopg.Error as exc:
        identity.problems.append(f"{label}: {first_line(exc)}")


# --------------------------------------------------------------------------- the set


@dataclass
class LocatedSet:
    set_id: str
    directory: Path
    where: str  # the local directory or the S3 URL it came from
    verified: bool
    verified_mark: dict[str, Any] | None = None


# What restores onto an empty server with data in it: a schema-only set would leave every table empty.
DATA_PARTS = (["full"], ["schema", "critical_data"])


def snapshot_time(manifest: dict[str, Any]) -> tuple[datetime | None, str]:
    """When the set's data is from: ``postgres.snapshot_at``, else ``started_at`` (an older set); and which."""
    for key, value in (("postgres.snapshot_at", (manifest.get("postgres") or {}).get("snapshot_at")),
                       ("started_at", manifest.get("started_at"))):
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                continue
            return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)), key
    return None, "no snapshot_at or started_at in the manifest"


def locate_local(root: Path, params: dict[str, Any], name: str | None) -> LocatedSet:
    """The asked set, or the newest verified one, directly under the backup root; BackupError when none."""
    if params.get("backup_set"):
        directory = find_set(root, params["backup_set"])
    else:
        ref = newest_set(root, name, verified=True)
        if ref is None:
            unverified = newest_set(root, name)
            also = (f"; the newest complete set {unverified.set_id} is not verified (run backup_verify on it, "
                    "or name it with backup_set)") if unverified is not None else ""
            raise BackupError(msg=f"no verified backup set{f' of {name}' if name else ''} under {root}{also}")
        directory = Path(ref.where)
    return LocatedSet(directory.name, directory, str(directory), (directory / VERIFIED).is_file(),
                      read_mark(directory / VERIFIED))


def read_mark(path: Path) -> dict[str, Any] | None:
    try:
        return read_json(path, what="verified mark")
    except BackupError:
        return None


def s3_set_prefix(store: S3Store, params: dict[str, Any], name: str | None) -> tuple[str, str, bool]:
    """(set id, prefix, verified) of the asked set in S3, or of the newest verified one there."""
    if params.get("backup_set"):
        set_id = params["backup_set"]
        started = started_of(None, set_id) if isinstance(set_id, str) else None
        if started is None:
            raise BackupError(msg=f"backup_set {set_id!r} is not a set id (<name>-<YYYYmmddTHHMMSSZ>)")
        prefix = store.set_prefix(set_id, started)
        keys = store.list_keys(prefix)
        if prefix + MANIFEST not in keys:
            raise BackupError(msg=f"backup set {set_id} is not in {store.url(prefix)} (no {MANIFEST} there)")
        return set_id, prefix, prefix + VERIFIED in keys
    if not name:
        raise BackupError(msg="finding the newest set in S3 needs name (or database): the sets' name")
    refs = sorted((ref for ref in store.sets(name) if ref.complete and ref.verified), key=lambda ref: ref.started)
    if not refs:
        raise BackupError(msg=f"no verified backup set of {name} in {store.url(store.prefix)}")
    newest = refs[-1]
    return newest.set_id, newest.where[len(store.url()):], True


# --------------------------------------------------------------------------- RTO and RPO


def judge_objective(label: str, seconds: float | None, target: Any, *, measured: str) -> dict[str, Any]:
    """One ``rto``/``rpo`` record: ok within the target (or without one), breach over it, unknown unmeasured."""
    limit = parse_duration(target, field_name=f"{label}_target").total_seconds() if target else None
    after = {"seconds": None if seconds is None else round(seconds, 3), "target_seconds": limit}
    if seconds is None:
        return make_record(label, CHECK, "unknown", f"{label.upper()} not measured: {measured}", after=after)
    said = f"{label.upper()} {format_duration_seconds(seconds)} ({measured})"
    if limit is None:
        return make_record(label, CHECK, "ok", f"{said}; no {label}_target to judge it by", after=after)
    if seconds > limit:
        return make_record(label, CHECK, "breach",
                           f"{said}, over {label}_target {format_duration_seconds(limit)}", after=after)
    return make_record(label, CHECK, "ok", f"{said}, within {label}_target {format_duration_seconds(limit)}",
                       after=after)


def format_duration_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.3g}s"  # a sub-second objective stays readable: 0.001s, not 0.0s
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(timedelta(seconds=seconds))


def summary_status(records: Iterable[dict[str, Any]], *, check_mode: bool) -> str:
    """The DR test's verdict from its steps: failed, breach, unknown, then planned (check mode) or ok.

    A check-mode plan that already shows a breach (a set older than rpo_target) or an unproven target says so.
    """
    statuses = {record["status"] for record in records}
    for status in ("failed", "breach", "unknown"):
        if status in statuses:
            return status
    return "planned" if check_mode else "ok"


def summary_record(status: str, detail: str, *, backup_id: str | None, source_server: str | None,
                   target_server: str | None, target_database: str | None, rto_seconds: float | None,
                   rto_target: Any, rpo_seconds: float | None, rpo_target: Any,
                   tables: list[dict[str, Any]], seconds: float | None) -> dict[str, Any]:
    """The ``dr test`` record the report's Disaster recovery test section reads (exactly these keys)."""
    def limit(value: Any, label: str) -> float | None:
        return parse_duration(value, field_name=f"{label}_target").total_seconds() if value else None

    return make_record(SUMMARY_NAME, SUMMARY_ACTION, status, detail, after={
        "backup_id": backup_id, "source_server": source_server, "target_server": target_server,
        "target_database": target_database,
        "rto_seconds": None if rto_seconds is None else round(rto_seconds, 3),
        "rto_target_seconds": limit(rto_target, "rto"),
        "rpo_seconds": None if rpo_seconds is None else round(rpo_seconds, 3),
        "rpo_target_seconds": limit(rpo_target, "rpo"),
        "tables": tables}, seconds=seconds)


def table_rows(comparisons: Iterable[Any]) -> list[dict[str, Any]]:
    """The summary's ``tables``: one per table of the manifest, with what was restored and what was expected."""
    return [{"table": c.table, "rows": c.rows, "expected_rows": c.expected_rows, "checksum": c.checksum,
             "expected_checksum": c.expected_checksum, "ok": not c.problems()} for c in comparisons]


# --------------------------------------------------------------------------- validation


def target_argument_spec() -> dict[str, Any]:
    """The ``target`` option: the postgres fragment's connection keys, without their PG* environment fallbacks.

    The environment describes the source (or nothing): a DR target taken from PGHOST could be the source itself.
    """
    options = {}
    for key, option in pg_connection_argument_spec().items():
        options[key] = {k: v for k, v in option.items() if k != "fallback"}
    return dict(target=dict(type="dict", required=True, options=options))


TARGET_NEEDS = "target names the DR server explicitly: give target.login_host (or target.login_unix_socket)"


def validate(params: dict[str, Any]) -> None:
    """Bad input is named before anything is read or created."""
    target = params.get("target") or {}
    if not (target.get("login_host") or target.get("login_unix_socket")):
        raise BackupError(msg=TARGET_NEEDS)
    if not params.get("backup_root") and not params.get("s3"):
        raise BackupError(msg="give backup_root (where the sets are on disk) or s3 (where they were uploaded)")
    if params.get("backup_root") and not Path(params["backup_root"]).is_absolute():
        raise BackupError(msg=f"backup_root {params['backup_root']!r} must be an absolute path")
    if params.get("target_database") is not None:
        check_identifier(params["target_database"], "target_database")
    for label in ("rto", "rpo"):
        if params.get(f"{label}_target"):
            parse_duration(params[f"{label}_target"], field_name=f"{label}_target")
    for check in params.get("sql_checks") or []:
        if not check.get("name") or not check.get("sql"):
            raise BackupError(msg=f"sql_checks: each check needs a name and sql, got {check!r}")
    if params.get("jobs") is not None and params["jobs"] < 1:
        raise BackupError(msg=f"jobs {params['jobs']} must be at least 1")


def target_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """The target's connection (its own options only: nothing of the source's connection leaks into it)."""
    target = dict(params["target"])
    target["database"] = target.get("database") or "postgres"
    return conninfo_from_params(target)


def server_text(kwargs: dict[str, Any]) -> str:
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', DEFAULT_PORT)}"


# --------------------------------------------------------------------------- the run


class DrRun:
    """One DR test's state: its records, what it found, and the clock it is measured with."""

    def __init__(self, params: dict[str, Any], *, check_mode: bool, clock: Callable[[], datetime],
                 timer: Callable[[], float]) -> None:
        self.params = params
        self.check_mode = check_mode
        self.timer = timer
        self.records: list[dict[str, Any]] = []
        self.started_at = clock()
        self.begun = timer()
        self.located: LocatedSet | None = None
        self.manifest: dict[str, Any] | None = None
        self.source = ServerIdentity()
        self.source_server: str | None = None
        self.target_kwargs = target_kwargs(params)
        self.target_server = server_text(self.target_kwargs)
        self.target_database: str | None = params.get("target_database")
        self.rto_seconds: float | None = None
        self.tables: list[dict[str, Any]] = []

    def add(self, name: str, action: str, status: str, detail: str, **figures: Any) -> dict[str, Any]:
        record = make_record(name, action, status, detail, **figures)
        self.records.append(record)
        return record


def run_pg_dr_test(params: dict[str, Any], *, check_mode: bool, diff_mode: bool = False,
                   clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                   timer: Callable[[], float] = time.monotonic,
                   resolve: Resolver = resolve_addresses) -> dict[str, Any]:
    validate(params)
    run = DrRun(params, check_mode=check_mode, clock=clock, timer=timer)
    workdir: Path | None = None
    try:
        workdir = Path(tempfile.mkdtemp(prefix="streamops-dr-")) if not params.get("backup_root") else None
        if choose_set(run, workdir) and judge(run, resolve):
            if check_mode:
                plan_restore(run)
            else:
                restore_and_compare(run)
    except MaintenanceError as exc:
        # A fault no step caught keeps the records of the steps before it, and the verdict.
        run.add("dr test step", CHECK, "failed", exc.msg)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    return result_of(run)


def choose_set(run: DrRun, workdir: Path | None) -> bool:
    """The ``set`` record: the set found (or fetched from S3) and its files checked; False when refused."""
    params = run.params
    name = params.get("name") or params.get("database")
    checks = Checks()
    begun = run.timer()
    try:
        if workdir is None:
            run.located = locate_local(Path(params["backup_root"]), params, name)
        else:
            store = S3Store(params["s3"])
            set_id, prefix, verified = s3_set_prefix(store, params, name)
            if not fetch_from_s3(store, prefix, workdir, checks):
                raise BackupError(msg="; ".join(r["detail"] for r in checks.failed))
            run.located = LocatedSet(set_id, workdir, store.url(prefix), verified)
    except BackupError as exc:
        run.add("set", CHECK, "failed", f"refused: {exc.msg}", seconds=run.timer() - begun)
        return False
    located = run.located
    manifest = check_set_files(located.directory, checks, pg_bin_dir=params.get("pg_bin_dir"))
    seconds = run.timer() - begun
    if manifest is None:
        failures = "; ".join(f"{r['name']}: {r['detail']}" for r in checks.failed) or "its files did not check"
        run.add("set", CHECK, "failed", f"refused: set {located.set_id} from {located.where} is damaged: {failures}",
                after={"backup_id": located.set_id, "where": located.where}, seconds=seconds)
        return False
    run.manifest = manifest
    parts = restorable_parts(manifest)
    if not manifest.get("postgres") or parts not in DATA_PARTS:
        run.add("set", CHECK, "failed", f"refused: set {located.set_id} holds no PostgreSQL dump to restore onto "
                                        "another server (a full dump, or schema and critical_data)",
                after={"backup_id": located.set_id, "where": located.where}, seconds=seconds)
        return False
    snapshot, source_of_time = snapshot_time(manifest)
    age = (run.started_at - snapshot).total_seconds() if snapshot else None
    run.target_database = run.target_database or f"{manifest['postgres'].get('database') or name}_dr"
    try:
        check_identifier(run.target_database, "target_database (the set's database name + _dr)")
    except PgError as exc:
        run.add("set", CHECK, "failed", f"{exc.msg}: give target_database", seconds=seconds)
        return False
    verified = "verified" if located.verified else "NOT marked verified (named with backup_set)"
    run.add("set", CHECK, "ok", (
        f"{located.set_id} from {located.where}: {verified}; {human_bytes(set_bytes(manifest))}; data from "
        f"{snapshot.isoformat() if snapshot else '?'} ({source_of_time}), "
        f"{format_duration_seconds(age) if age is not None else '?'} old; manifest, checksums and archives "
        "read to the end"), after={
            "backup_id": located.set_id, "where": located.where, "verified": located.verified,
            "bytes": set_bytes(manifest), "parts": parts, "snapshot_at": snapshot.isoformat() if snapshot else None,
            "age_seconds": None if age is None else round(age, 3)}, seconds=seconds)
    return True


def judge(run: DrRun, resolve: Resolver) -> bool:
    """The ``target`` record: the target is not the source (or not proven either way); False when refused."""
    params, manifest = run.params, run.manifest or {}
    target_name = f"{run.target_server}/{run.target_database}"
    source, target = run.source, ServerIdentity()
    begun = run.timer()
    for endpoint in (endpoint_of_params(params, "the source connection"),
                     parse_server((manifest.get("postgres") or {}).get("server"), "the set's postgres.server")):
        if endpoint is not None:
            source.endpoints.append(endpoint)
    recorded = (manifest.get("postgres") or {}).get("system_identifier")
    if recorded:
        source.system_ids.append((str(recorded), "the set's postgres.system_identifier"))
    else:
        source.problems.append("the set's manifest has no postgres.system_identifier")
    named = endpoint_of_params(params["target"], "the target connection")
    target.endpoints.extend([named] if named else [])
    # The named addresses first: a target that is the source is refused before any connection to it.
    early = judge_target(source, target, target_name=target_name, resolve=resolve)
    if early.status == "failed":
        run.add("target", CHECK, "failed", early.detail, after=verdict_figures(early, source, target),
                seconds=run.timer() - begun)
        return False
    read_source(run)
    try:
        admin = connect(run.target_kwargs)
    except PgError as exc:
        run.add("target", CHECK, "failed", f"target {target_name}: {exc.msg}; nothing was created on it",
                seconds=run.timer() - begun)
        return False
    with admin:
        identify(admin, "the target", target)
        verdict = judge_target(source, target, target_name=target_name, resolve=resolve)
        try:
            problem = None if verdict.status == "failed" else existing_database_problem(admin, run)
        except psycopg.Error as exc:
            problem = f"target {target_name}: its databases cannot be listed: {first_line(exc)}; nothing was created"
    if problem is not None:
        run.add("target", CHECK, "failed", problem, after=verdict_figures(verdict, source, target),
                seconds=run.timer() - begun)
        return False
    run.add("target", CHECK, verdict.status, verdict.detail, after=verdict_figures(verdict, source, target),
            seconds=run.timer() - begun)
    return verdict.status != "failed"


def read_source(run: DrRun) -> None:
    """The live source's address and system identifier, when it answers (in a disaster it may not)."""
    manifest_server = (run.manifest.get("postgres") or {}).get("server") if run.manifest else None
    try:
        with connect(conninfo_from_params(run.params)) as conn:
            identify(conn, "the live source", run.source)
            run.source_server = str(run.source.endpoints[-1])
    except PgError as exc:
        run.source.problems.append(f"the live source does not answer ({exc.msg})")
        run.source_server = manifest_server or (str(run.source.endpoints[0]) if run.source.endpoints else None)


def existing_database_problem(admin: Any, run: DrRun) -> str | None:
    """Why the target database may not be (re)created: it exists and this module did not create it."""
    row = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                        (run.target_database,)).fetchone()
    if row is not None and row[0] != DR_MARK:
        return (f"refused: database {run.target_database!r} already exists on {run.target_server} and was not "
                "created by pg_dr_test; nothing was touched (name another target_database, or drop it yourself)")
    return None


def verdict_figures(verdict: TargetVerdict, source: ServerIdentity, target: ServerIdentity) -> dict[str, Any]:
    return {"rule": verdict.rule,
            "source_endpoints": [f"{e} ({e.label})" for e in source.endpoints],
            "source_system_identifiers": [f"{value} ({where})" for value, where in source.system_ids],
            "target_endpoints": [f"{e} ({e.label})" for e in target.endpoints],
            "target_system_identifier": next((pair[0] for pair in target.system_ids), None)}


def plan_restore(run: DrRun) -> None:
    """Check mode: what the real run would create, restore and compare; nothing is created."""
    estimate = (run.located.verified_mark or {}).get("restore_seconds")
    tables = sorted(run.manifest.get("row_counts") or {})
    run.add(f"{run.target_database} on {run.target_server}", "restore", "planned", (
        f"would create {run.target_database} on {run.target_server}, restore {', '.join(restorable_parts(run.manifest) or [])} "
        f"of {run.located.set_id} ({human_bytes(set_bytes(run.manifest))}), compare {len(tables)} table(s) with "
        "the manifest, then " + ("keep it" if run.params.get("keep_restored") else "drop it")
        + (f"; its last restore test took {estimate:.0f}s" if isinstance(estimate, (int, float)) else "")),
        after={"parts": restorable_parts(run.manifest), "bytes": set_bytes(run.manifest), "tables": tables,
               "estimated_seconds": estimate})
    add_rpo(run)


def restore_and_compare(run: DrRun) -> None:
    """Create the marked database, restore, compare, run the SQL checks; drop it unless kept (never a failed one)."""
    params, database = run.params, run.target_database or ""
    name = f"{database} on {run.target_server}"
    created = False
    passed = False
    try:
        with connect(run.target_kwargs) as admin:
            begun = run.timer()
            try:
                create_marked_database(admin, database, DR_MARK, server=run.target_server)
                created = True
                parts = restore_parts(params, run.located.directory, run.manifest,
                                      {**run.target_kwargs, "dbname": database}, server=run.target_server,
                                      keep_owners=False)
                run.add(name, "restore", "done", f"{' then '.join(parts)} of {run.located.set_id} restored into "
                                                 f"{database} on {run.target_server} (owners and privileges not kept)",
                        after={"parts": parts, "bytes": set_bytes(run.manifest)}, seconds=run.timer() - begun)
                passed = compare(run, database)
            except (BackupError, PgError) as exc:
                run.add(name, "restore", "failed", exc.msg, seconds=run.timer() - begun)
            except psycopg.Error as exc:
                run.add(name, "restore", "failed", f"on {run.target_server}: {first_line(exc)}",
                        seconds=run.timer() - begun)
            finally:
                if created:
                    drop_or_keep(run, admin, name, passed=passed)
    except PgError as exc:
        run.add(name, "restore", "failed", f"{exc.msg}; " + (
            f"the database {database} may remain on {run.target_server}: drop it by hand" if created
            else "nothing was created"))
    add_rpo(run)
    if passed:
        run.records.append(judge_objective("rto", run.rto_seconds, params.get("rto_target"),
                                           measured="from the start of the run until the restored copy passed"))


def compare(run: DrRun, database: str) -> bool:
    """The ``row counts``, ``checksums`` and ``sql <name>`` records; True when the copy passed (RTO stops here)."""
    checks = Checks()
    with connect({**run.target_kwargs, "dbname": database}) as conn:
        comparisons = compare_tables(conn, run.manifest)
        found = comparison_records(comparisons)
        for check in run.params.get("sql_checks") or []:
            run_sql_check(conn, check, checks)
    run.tables = table_rows(comparisons)
    run.records.extend(found)
    run.records.extend(checks.records)
    if not comparisons:
        run.add("tables", CHECK, "unknown", "the set's manifest lists no table (no critical_tables when it was "
                                            "taken): nothing restored could be compared with the source")
    passed = not any(r["status"] == "failed" for r in [*found, *checks.records])
    if passed:
        run.rto_seconds = run.timer() - run.begun
    return passed


def drop_or_keep(run: DrRun, admin: Any, name: str, *, passed: bool) -> None:
    database = run.target_database or ""
    if passed and run.params.get("keep_restored"):
        run.add(name, "drop_database", "unchanged", f"kept (keep_restored): {database} on {run.target_server} "
                                                    "holds the restored copy; the next DR test replaces it")
        return
    try:
        dropped = drop_marked_database(admin, database, DR_MARK, server=run.target_server)
    except BackupError as exc:
        run.add(name, "drop_database", "failed", f"{exc.msg}: the database remains; drop it by hand")
        return
    if dropped:
        run.add(name, "drop_database", "done", f"dropped {database} on {run.target_server}"
                + ("" if passed else " (the test failed: a failed copy is never kept)"))
    else:
        run.add(name, "drop_database", "failed", f"{database} on {run.target_server} no longer carries the DR mark; "
                                                 "not dropped")


def add_rpo(run: DrRun) -> None:
    snapshot, source_of_time = snapshot_time(run.manifest)
    seconds = (run.started_at - snapshot).total_seconds() if snapshot else None
    run.records.append(judge_objective("rpo", seconds, run.params.get("rpo_target"), measured=(
        f"the data is from {snapshot.isoformat()} ({source_of_time})" if snapshot else source_of_time)))


def objective_text(seconds: float | None, target: Any, missing: str) -> str:
    """``41.2s`` or ``7h 2m (over its 6h objective)``."""
    if seconds is None:
        return missing
    said = format_duration_seconds(seconds)
    if not target:
        return said
    limit = parse_duration(target, field_name="objective").total_seconds()
    return f"{said} ({'over' if seconds > limit else 'within'} its {format_duration_seconds(limit)} objective)"


def source_named(params: dict[str, Any]) -> str | None:
    endpoint = endpoint_of_params(params, "the source connection")
    return str(endpoint) if endpoint else None


def result_of(run: DrRun) -> dict[str, Any]:
    """The result: every step's record, then the ``dr test`` summary; failed when a step failed."""
    status = summary_status(run.records, check_mode=run.check_mode)
    # The set's age is its RPO even when the test stopped before judging it (a refused target).
    found = {r["name"]: r for r in run.records if r["action"] == CHECK and r["status"] != "failed"}
    rpo_seconds = ((found.get("rpo") or {}).get("after") or {}).get("seconds") if "rpo" in found else \
        ((found.get("set") or {}).get("after") or {}).get("age_seconds")
    set_id = run.located.set_id if run.located else None
    where = f"{run.target_server}/{run.target_database or '?'}"
    if status == "failed":
        failures = [r for r in run.records if r["status"] == "failed"]
        detail = f"DR test of {set_id or 'no set'} onto {where} failed: " + "; ".join(
            f"{r['name']}: {r['detail']}" for r in failures)
    else:
        figures = (f"RTO {objective_text(run.rto_seconds, run.params.get('rto_target'), 'not measured')}, "
                   f"RPO {objective_text(rpo_seconds, run.params.get('rpo_target'), 'unknown')}")
        planned = len((run.manifest or {}).get("row_counts") or {})
        tables = (f"{len(run.tables)} table(s) compared" if run.tables else
                  f"{planned} table(s) to compare" if run.check_mode else "no table compared")
        word = {"planned": "would restore", "ok": "passed", "breach": "breached its objectives",
                "unknown": "is not proven"}[status]
        word = f"{word} (check mode: nothing created)" if run.check_mode and status != "planned" else word
        # RTO and RPO are in the figures; other problems (an unproven target, no table) say why.
        problems = [f"{r['name']}: {r['detail']}" for r in run.records
                    if r["status"] in ("breach", "unknown") and r["name"] not in ("rto", "rpo")]
        detail = f"DR test of {set_id} onto {where} {word}: {figures}; {tables}" + (
            f" ({'; '.join(problems)})" if problems else "")
    summary = summary_record(
        status, detail, backup_id=set_id, source_server=run.source_server or source_named(run.params),
        target_server=run.target_server, target_database=run.target_database, rto_seconds=run.rto_seconds,
        rto_target=run.params.get("rto_target"), rpo_seconds=rpo_seconds, rpo_target=run.params.get("rpo_target"),
        tables=run.tables, seconds=run.timer() - run.begun)
    records = [*run.records, summary]
    result: dict[str, Any] = {"changed": is_changed(records), "msg": detail, "records": records,
                              "status": status, "backup_id": set_id,
                              "rto_seconds": summary["after"]["rto_seconds"],
                              "rpo_seconds": summary["after"]["rpo_seconds"]}
    if status == "failed":
        result["failed"] = True
    return result
