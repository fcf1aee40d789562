# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Write one backup set: pg_dump parts in one snapshot, Redis RDB, config tar, manifest, S3, retention.

Every dump of a run uses the snapshot in which the critical tables' rows were
counted, so the manifest's counts are those of the archive. Files are hashed as
they are written. Any failure removes this run's directory (and its S3
objects) and names the step; earlier sets are never touched by a failure.
The result is the one record shape (docs/records.md): a ``backup`` record for
the set, an ``upload`` record for its S3 copy, a ``retention`` record per set
looked at.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .backup_set import (
    MANIFEST,
    MANIFEST_VERSION,
    VERIFIED,
    BackupError,
    HashingWriter,
    backup_id,
    check_name,
    check_root,
    deletion_reason,
    fsync_file,
    hash_file,
    local_sets,
    plan_retention,
    read_json,
    remove_local_set,
    retention_policy,
    set_dir_in_root,
    stream_child,
    tail,
    write_json_atomically,
)
from .errors import MaintenanceError
from .pg import PgError, conninfo_from_params, first_line, psycopg, split_table_name, table_fingerprint
from .records import human_bytes, is_changed, make_record
from .redis_rdb import dump_redis
from .s3 import S3Store
from .window import format_duration, parse_duration

PARTS = ("full", "schema", "critical_data", "redis_rdb", "config")
PG_PARTS = ("full", "schema", "critical_data")
PG_ENV = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE",
          "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
          "connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME"}
ARCHIVE_MAGIC = b"PGDMP"


def libpq_env(kwargs: dict[str, Any]) -> dict[str, str]:
    """The child's environment: the connection in PG* variables, so no password is on a command line."""
    # The connection variables come from the module's options (which fall back to them); the others
    # (PGPASSFILE, PGSERVICEFILE, PGSSLCRL...) pass through, so a passfile keeps working.
    env = {key: value for key, value in os.environ.items() if key not in PG_ENV.values()}
    for name, variable in PG_ENV.items():
        if kwargs.get(name) not in (None, ""):
            env[variable] = str(kwargs[name])
    return env


def binary(bin_dir: str | None, name: str) -> str:
    path = Path(bin_dir) / name if bin_dir else shutil.which(name)
    if path is None or not Path(path).is_file() or not os.access(path, os.X_OK):
        where = f"in {bin_dir}" if bin_dir else "on PATH"
        raise BackupError(msg=f"{name} not found {where}; install the PostgreSQL client or set pg_bin_dir",
                          step="preflight")
    return str(path)


# --------------------------------------------------------------------------- snapshot


class Snapshot:
    """A REPEATABLE READ transaction whose snapshot every pg_dump of the run shares.

    The critical tables' row counts and checksums (pg.table_fingerprint, one scan each) are taken in it, so
    they describe exactly the rows the dumps hold; ``snapshot_at`` is the server's time of that snapshot
    (the point in time the set's data is from), ``server`` the host:port connected to and
    ``system_identifier`` the cluster's (None when this role may not read pg_control_system()).
    """

    def __init__(self, kwargs: dict[str, Any], tables: list[tuple[str, str]], *, export: bool = True) -> None:
        if psycopg is None:
            raise PgError(msg="the Python library psycopg (3) is required")
        try:
            self.conn = psycopg.connect(**kwargs)
        except psycopg.Error as exc:
            raise BackupError(msg=f"cannot connect to PostgreSQL: {first_line(exc)}", step="snapshot") from exc
        self.warnings: list[str] = []
        try:
            self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self.conn.read_only = True
            # now() is the start of this transaction, whose first statement takes the snapshot.
            row = self.conn.execute("SELECT current_setting('server_version'), current_database(), "
                                    "pg_database_size(current_database()), now()").fetchone()
            self.server_version, self.database, self.database_bytes, snapshot_at = row
            self.snapshot_at = snapshot_at.astimezone(timezone.utc).isoformat()
            self.server = f"{self.conn.info.host}:{self.conn.info.port}"
            self.system_identifier = self._system_identifier()
            self.snapshot_id = self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0] if export else None
            self.row_counts, self.table_checksums = self._fingerprint(tables)
        except psycopg.Error as exc:
            self.close()
            raise BackupError(msg=f"snapshot on {kwargs.get('dbname')} failed: {first_line(exc)}",
                              step="snapshot") from exc
        except BackupError:
            self.close()
            raise

    def _system_identifier(self) -> str | None:
        """The cluster's identity (a DR test refuses a target that is this cluster); None when not allowed."""
        try:
            with self.conn.transaction():  # a savepoint: a refusal must not abort the snapshot
                return str(self.conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0])
        except psycopg.Error as exc:
            self.warnings.append(f"system_identifier not recorded in the manifest: {first_line(exc)}")
            return None

    def _fingerprint(self, tables: list[tuple[str, str]]) -> tuple[dict[str, int], dict[str, str]]:
        counts: dict[str, int] = {}
        checksums: dict[str, str] = {}
        missing = []
        for schema, name in tables:
            if self.conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{name}"',)).fetchone()[0] is None:
                missing.append(f"{schema}.{name}")
                continue
            counts[f"{schema}.{name}"], checksums[f"{schema}.{name}"] = table_fingerprint(self.conn, schema, name)
        if missing:
            raise BackupError(msg=f"critical table(s) not found in {self.database}: {', '.join(missing)}",
                              step="snapshot")
        return counts, checksums

    def close(self) -> None:
        """End the read-only snapshot transaction. A session the server already ended (a shutdown, a terminated
        backend) has nothing left to roll back: its error must not replace the one that says which step failed."""
        try:
            if not self.conn.broken:
                self.conn.rollback()
        except psycopg.Error:
            pass  # read only: nothing of it can outlive the session
        finally:
            self.conn.close()


# --------------------------------------------------------------------------- child processes


def run_child(argv: list[str], env: dict[str, str], *, step: str) -> str:
    proc = subprocess.run(argv, env=env, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise BackupError(msg=f"{step}: {Path(argv[0]).name} exited with {proc.returncode}: {tail(stderr)}",
                          step=step)
    return stderr


def dump_errors(stderr: str) -> list[str]:
    """pg_dump's exit status is not the whole story: any 'error' line fails the dump."""
    return [line for line in stderr.splitlines()
            if ": error:" in line or line.startswith(("FATAL", "ERROR")) or "ERROR:" in line]


def dump_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": warning:" in line]


def check_archive_head(path: Path, *, step: str) -> None:
    with path.open("rb") as handle:
        head = handle.read(len(ARCHIVE_MAGIC))
    if head != ARCHIVE_MAGIC:
        raise BackupError(msg=f"{step}: {path.name} is not a pg_dump archive (starts with {head!r})", step=step)


# --------------------------------------------------------------------------- the parts


def pg_dump_argv(pg_dump: str, part: str, *, fmt: str, jobs: int, compress: int | None, snapshot: str | None,
                 tables: list[tuple[str, str]], output: Path | None) -> list[str]:
    argv = [pg_dump, "--no-password", f"--format={'directory' if fmt == 'directory' else 'custom'}"]
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    if compress is not None:
        argv.append(f"--compress={compress}")
    if fmt == "directory":
        argv += [f"--jobs={jobs}", f"--file={output}"]
    if part == "schema":
        argv.append("--schema-only")
    elif part == "critical_data":
        argv.append("--data-only")
        # Quoted: a table pattern in quotes matches that exact name, never a wildcard.
        argv += [f'--table="{schema}"."{name}"' for schema, name in tables]
    return argv


def dump_part(pg_dump: str, part: str, directory: Path, env: dict[str, str], *, fmt: str, jobs: int,
              compress: int | None, snapshot: str | None, tables: list[tuple[str, str]]) -> dict[str, Any]:
    step = f"pg_dump {part}"
    fmt = fmt if part == "full" else "custom"
    if fmt == "directory":
        target = directory / f"{part}.dir"
        stderr = run_child(pg_dump_argv(pg_dump, part, fmt=fmt, jobs=jobs, compress=compress, snapshot=snapshot,
                                        tables=tables, output=target), env, step=step)
        check_errors(stderr, step)
        check_archive_head(target / "toc.dat", step=step)
        # pg_dump writes these files itself, in parallel: they can only be hashed after it.
        files = []
        for path in sorted(p for p in target.rglob("*") if p.is_file()):
            size, digest = hash_file(path)
            files.append({"name": str(path.relative_to(directory)), "bytes": size, "sha256": digest})
    else:
        target = directory / f"{part}.dump"
        writer, stderr = stream_child(pg_dump_argv(pg_dump, part, fmt=fmt, jobs=1, compress=compress,
                                                   snapshot=snapshot, tables=tables, output=None),
                                      env, target, step=step)
        check_errors(stderr, step)
        check_archive_head(target, step=step)
        files = [writer.record(target.name)]
    return {"part": part, "format": fmt, "path": target.name, "files": files,
            "warnings": dump_warnings(stderr)}


def check_errors(stderr: str, step: str) -> None:
    errors = dump_errors(stderr)
    if errors:
        raise BackupError(msg=f"{step}: exited 0 but reported errors: {' | '.join(errors[:5])}", step=step)


def tar_config(paths: list[str], directory: Path) -> dict[str, Any]:
    step = "config tar"
    target = directory / "config.tar.gz"
    members = 0
    try:
        with target.open("wb") as handle:
            writer = HashingWriter(handle)
            # Stream mode (w|gz): compressed once, hashed as it is written.
            with tarfile.open(fileobj=writer, mode="w|gz") as archive:  # type: ignore[call-overload]
                for path in paths:
                    archive.add(path, recursive=True)
                    members += 1 + (len(list(Path(path).rglob("*"))) if Path(path).is_dir() else 0)
            fsync_file(handle)
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(msg=f"{step}: {exc}", step=step) from exc
    return {"part": "config", "format": "tar.gz", "path": target.name, "paths": paths, "members": members,
            "files": [writer.record(target.name)]}


# --------------------------------------------------------------------------- validation


def validate(params: dict[str, Any]) -> dict[str, Any]:
    parts = list(dict.fromkeys(params.get("parts") or ["full"]))
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        raise BackupError(msg=f"parts: unknown part(s) {', '.join(unknown)}; allowed: {', '.join(PARTS)}")
    tables = [split_table_name(name) for name in params.get("critical_tables") or []]
    if "critical_data" in parts and not tables:
        raise BackupError(msg="parts includes critical_data but critical_tables is empty")
    if params.get("format") == "custom" and (params.get("jobs") or 1) > 1:
        raise BackupError(msg=f"jobs {params['jobs']} needs format: directory (pg_dump dumps in parallel "
                              "only to a directory)")
    if params.get("jobs") is not None and params["jobs"] < 1:
        raise BackupError(msg=f"jobs {params['jobs']} must be at least 1")
    compress = params.get("compress_level")
    if compress is not None and not 0 <= compress <= 9:
        raise BackupError(msg=f"compress_level {compress} must be between 0 and 9")
    if "redis_rdb" in parts and not params.get("redis"):
        raise BackupError(msg="parts includes redis_rdb but the redis connection option is not set")
    config_paths = params.get("config_paths") or []
    if "config" in parts:
        if not config_paths:
            raise BackupError(msg="parts includes config but config_paths is empty")
        missing = [path for path in config_paths if not Path(path).is_absolute() or not Path(path).exists()]
        if missing:
            raise BackupError(msg=f"config_paths: {', '.join(missing)} do(es) not exist or are not absolute paths")
    database = params.get("database")
    if params.get("operation", "backup") != "backup":
        parts = []
    elif any(part in PG_PARTS for part in parts) and not database:
        raise BackupError(msg="database is required to dump PostgreSQL")
    name = check_name(params.get("name") or database or "")
    return {"parts": parts, "tables": tables, "name": name, "config_paths": config_paths}


# --------------------------------------------------------------------------- the run


def run_pg_backup(params: dict[str, Any], *, check_mode: bool, diff_mode: bool = False,
                  clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> dict[str, Any]:
    records: list[dict[str, Any]] = []
    try:
        return backup_and_retain(params, records, check_mode=check_mode, clock=clock)
    except MaintenanceError as exc:
        # A failed result keeps the records of what was done before the fault.
        exc.details.update(records=records, changed=is_changed(records))
        raise


def backup_and_retain(params: dict[str, Any], records: list[dict[str, Any]], *, check_mode: bool,
                      clock: Callable[[], datetime]) -> dict[str, Any]:
    plan = validate(params)
    backing_up = params["operation"] == "backup"
    if not backing_up and not params.get("retention"):
        raise BackupError(msg="operation retention needs the retention option")
    policy = retention_policy(params.get("retention"), parse_duration) if params.get("retention") else None
    # Retention of a root that does not exist yet has nothing to look at: an estate with no set so far.
    root = check_root(params.get("backup_root"), create=not check_mode and backing_up,
                      allow_missing=(check_mode and backing_up) or not backing_up)
    s3 = S3Store(params["s3"]) if params.get("s3") else None
    result: dict[str, Any] = {}
    messages = []
    if backing_up and params.get("reuse_verified_within"):
        reused = reusable_set(plan["name"], root, params["reuse_verified_within"], records, now=clock())
        if reused is not None:
            # A re-run of a failed playbook: the set verified minutes ago is the backup; nothing new to age out.
            return {"changed": False, "msg": reused.pop("msg"), "records": records, **reused}
    if backing_up:
        result = create_set(params, plan, root, s3, records, check_mode=check_mode, clock=clock)
        messages.append(result.pop("msg"))
    if policy is not None:
        messages.append(apply_retention(plan["name"], root, s3, policy, records, now=clock(), check_mode=check_mode))
    return {"changed": is_changed(records), "msg": "; ".join(messages), "records": records, **result}


def reusable_set(name: str, root: Path, within: str, records: list[dict[str, Any]], *,
                 now: datetime) -> dict[str, Any] | None:
    """The newest local set of ``name`` verified less than ``within`` ago (its record appended), or None."""
    limit = parse_duration(within, field_name="reuse_verified_within")
    for ref in sorted(local_sets(root, name), key=lambda r: r.started, reverse=True):
        mark = Path(ref.where) / VERIFIED
        if not ref.complete or not ref.verified:
            continue
        age = now - datetime.fromtimestamp(mark.stat().st_mtime, tz=timezone.utc)
        if age > limit:
            return None  # the newest verified set is too old; older ones are older still
        manifest = read_json(Path(ref.where) / MANIFEST, what="manifest")
        detail = (f"reused: {ref.where} was verified {format_duration(age)} ago (reuse_verified_within {within}); "
                  "no new set taken")
        records.append(make_record(ref.set_id, "backup", "unchanged", detail,
                                   after={"path": ref.where, "verified_seconds_ago": int(age.total_seconds())}))
        return {"reused": True, "backup_id": ref.set_id, "path": ref.where, "manifest": manifest, "msg": detail}
    return None


def create_set(params: dict[str, Any], plan: dict[str, Any], root: Path, s3: S3Store | None,
               records: list[dict[str, Any]], *, check_mode: bool, clock: Callable[[], datetime]) -> dict[str, Any]:
    """Write (or, in check mode, plan) one set and its upload; appends their records, returns the top-level data."""
    started = clock()
    set_id = backup_id(plan["name"], started)
    parts = plan["parts"]
    kwargs = conninfo_from_params(params)
    dumps_postgres = any(p in PG_PARTS for p in parts)
    pg_dump = binary(params.get("pg_bin_dir"), "pg_dump") if dumps_postgres else ""
    redis_cli = shutil.which("redis-cli") if "redis_rdb" in parts else ""
    if "redis_rdb" in parts and not redis_cli:
        raise BackupError(msg="redis-cli not found on PATH; install redis-tools", step="preflight")
    directory = set_dir_in_root(root, set_id)
    if directory.exists():
        raise BackupError(msg=f"{directory} already exists: one backup of {plan['name']} per second", step="preflight")
    s3_prefix = s3.set_prefix(set_id, started) if s3 is not None else None
    begun = time.monotonic()
    snapshot = None
    created = False
    try:
        if dumps_postgres:
            snapshot = Snapshot(kwargs, plan["tables"], export=not check_mode)
        if check_mode:
            row_counts = snapshot.row_counts if snapshot else {}
            records.append(make_record(
                set_id, "backup", "planned",
                f"would back up parts {', '.join(parts)}; rows {json.dumps(row_counts, sort_keys=True)}",
                after=set_figures(directory, dict.fromkeys(parts), snapshot, s3_prefix)))
            if s3 is not None and s3_prefix is not None:
                records.append(make_record(s3.url(s3_prefix), "upload", "planned",
                                           f"would upload {set_id} ({', '.join(parts)} and its manifest)",
                                           after={"objects": None, "bytes": None}))
            return {"backup_id": set_id, "path": str(directory), "msg": f"would write {set_id} ({', '.join(parts)})",
                    **snapshot_warnings(snapshot)}
        directory.mkdir(mode=0o700)
        created = True
        written = [write_part(part, params, plan, directory, pg_dump=pg_dump, redis_cli=redis_cli, snapshot=snapshot,
                              env=libpq_env(kwargs)) for part in parts]
        manifest = build_manifest(set_id, plan, params, written, snapshot, started=started, finished=clock())
        if s3 is not None:
            manifest["s3"] = {"bucket": s3.bucket, "prefix": s3_prefix}
        write_json_atomically(directory / MANIFEST, manifest)
    except BaseException as exc:
        if created:
            # Nothing of a failed run stays behind; earlier sets are other directories.
            shutil.rmtree(directory, ignore_errors=True)
        left = (f"backup {set_id}: the partial files were removed, earlier backups untouched" if created
                else f"backup {set_id}: nothing was written")
        if isinstance(exc, OSError):
            error = BackupError(msg=f"backup {set_id} failed: {exc}; {left}", step="write")
        elif isinstance(exc, MaintenanceError):
            exc.msg = f"{exc.msg}; {left}"
            error = exc
        else:
            raise
        records.append(make_record(set_id, "backup", "failed", error.msg, seconds=time.monotonic() - begun))
        if error is not exc:
            raise error from exc
        raise
    finally:
        if snapshot is not None:
            snapshot.close()
    part_bytes = {record["part"]: sum(f["bytes"] for f in record["files"]) for record in written}
    total = sum(part_bytes.values())
    records.append(make_record(set_id, "backup", "done", f"{', '.join(parts)}: {human_bytes(total)} in {directory}",
                               after=set_figures(directory, part_bytes, snapshot, s3_prefix),
                               seconds=time.monotonic() - begun))
    result = {"backup_id": set_id, "path": str(directory), "manifest": manifest,
              "msg": f"wrote {set_id}: {', '.join(parts)}, {human_bytes(total)}", **snapshot_warnings(snapshot)}
    if s3 is not None and s3_prefix is not None:
        result["msg"] += upload_set(s3, s3_prefix, directory, manifest, records)
    return result


def snapshot_warnings(snapshot: Snapshot | None) -> dict[str, Any]:
    """``warnings`` of the result (Ansible prints them) when the snapshot had any; nothing otherwise."""
    return {"warnings": list(snapshot.warnings)} if snapshot is not None and snapshot.warnings else {}


def set_figures(directory: Path, part_bytes: dict[str, int | None], snapshot: Snapshot | None,
                s3_prefix: str | None) -> dict[str, Any]:
    """The ``after`` of a set's record (sizes are null in check mode: nothing is written yet)."""
    sizes = list(part_bytes.values())
    return {"path": str(directory), "bytes": None if None in sizes else sum(s for s in sizes if s is not None),
            "parts": part_bytes, "row_counts": snapshot.row_counts if snapshot else {},
            "database_bytes": snapshot.database_bytes if snapshot else None, "s3_prefix": s3_prefix}


def write_part(part: str, params: dict[str, Any], plan: dict[str, Any], directory: Path, *, pg_dump: str,
               redis_cli: str | None, snapshot: Snapshot | None, env: dict[str, str]) -> dict[str, Any]:
    """One part's files in the set; its manifest entry (with the files' sizes and sha256)."""
    begun = time.monotonic()
    if part in PG_PARTS and snapshot is not None:
        written = dump_part(pg_dump, part, directory, env, fmt=params.get("format") or "custom",
                            jobs=params.get("jobs") or 1, compress=params.get("compress_level"),
                            snapshot=snapshot.snapshot_id, tables=plan["tables"])
        if part == "critical_data":
            written["tables"] = sorted(snapshot.row_counts)
    elif part == "redis_rdb":
        written = dump_redis(redis_cli or "redis-cli", params["redis"], directory)
    else:
        written = tar_config(plan["config_paths"], directory)
    written["seconds"] = round(time.monotonic() - begun, 3)
    return written


def build_manifest(set_id: str, plan: dict[str, Any], params: dict[str, Any], written: list[dict[str, Any]],
                   snapshot: Snapshot | None, *, started: datetime, finished: datetime) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION, "backup_id": set_id, "name": plan["name"], "complete": True,
        "tool": "streamops.maintenance.pg_backup", "host": socket.gethostname(),
        "started_at": started.isoformat(), "finished_at": finished.isoformat(),
        "postgres": ({"database": snapshot.database, "server_version": snapshot.server_version,
                      "database_bytes": snapshot.database_bytes, "snapshot": snapshot.snapshot_id,
                      "compress_level": params.get("compress_level"), "server": snapshot.server,
                      "system_identifier": snapshot.system_identifier, "snapshot_at": snapshot.snapshot_at}
                     if snapshot else None),
        "row_counts": snapshot.row_counts if snapshot else {},
        # Same snapshot, same scan as row_counts: a restored copy compares with both (pg.table_fingerprint).
        "table_checksums": snapshot.table_checksums if snapshot else {},
        "parts": [{k: v for k, v in part.items() if k != "files"} | {"files": [f["name"] for f in part["files"]]}
                  for part in written],
        "files": [f for part in written for f in part["files"]],
    }


def upload_set(s3: S3Store, s3_prefix: str, directory: Path, manifest: dict[str, Any],
               records: list[dict[str, Any]]) -> str:
    """Upload the complete local set; appends the ``upload`` record, returns the words for the message."""
    url = s3.url(s3_prefix)
    begun = time.monotonic()
    try:
        keys = s3.upload_set(directory, manifest["files"], s3_prefix, manifest=directory / MANIFEST)
    except BackupError as exc:
        exc.msg += f"; the local backup {directory} is complete and kept"
        exc.details.update(backup_id=manifest["backup_id"], path=str(directory), manifest=manifest)
        records.append(make_record(url, "upload", "failed", exc.msg, seconds=time.monotonic() - begun))
        raise
    uploaded = sum(f["bytes"] for f in manifest["files"]) + (directory / MANIFEST).stat().st_size
    records.append(make_record(url, "upload", "done", f"{len(keys)} object(s), {human_bytes(uploaded)} uploaded",
                               after={"objects": len(keys), "bytes": uploaded}, seconds=time.monotonic() - begun))
    return f", uploaded to {url}"


def apply_retention(name: str, root: Path, s3: S3Store | None, policy: Any, records: list[dict[str, Any]], *,
                    now: datetime, check_mode: bool) -> str:
    """One ``retention`` record per set looked at (local, then S3); returns the sentence for ``msg``."""
    local = local_sets(root, name)
    remote = s3.sets(name) if s3 is not None else []
    verified = {ref.set_id for ref in [*local, *remote] if ref.verified}
    # The hold is a file of the local set; its S3 copy is held with it.
    held = {ref.set_id: ref.hold_reason for ref in local if ref.held}
    for ref in remote:
        if ref.set_id in held:
            ref.held, ref.hold_reason = True, held[ref.set_id]
    locations = [("local", local)] + ([("s3", remote)] if s3 is not None else [])
    deleting = "would delete" if check_mode else "deleted"
    counts = []
    removed = 0
    for location, refs in locations:
        keep, delete = plan_retention(refs, policy, now, verified_ids=verified)
        for ref in sorted([*keep, *delete], key=lambda r: r.started, reverse=True):
            where = {"location": ref.location, "where": ref.where}
            if ref.reasons:
                records.append(make_record(ref.set_id, "retention", "unchanged", f"kept: {', '.join(ref.reasons)}",
                                           after=where))
                continue
            begun = time.monotonic()
            if not check_mode:
                try:
                    if ref.location == "local":
                        remove_local_set(root, ref.set_id)
                    elif s3 is not None:
                        s3.remove_set(ref)
                except (OSError, BackupError) as exc:
                    message = exc.msg if isinstance(exc, BackupError) else str(exc)
                    error = (f"retention: removing {ref.where} failed: {message}; "
                             f"{removed} set(s) were removed before it, the others were not looked at")
                    records.append(make_record(ref.set_id, "retention", "failed", error, after=where,
                                               seconds=time.monotonic() - begun))
                    raise BackupError(msg=error, step="retention") from exc
                removed += 1
            records.append(make_record(ref.set_id, "retention", "planned" if check_mode else "done",
                                       f"{deleting} {ref.where}: {deletion_reason(ref, policy)}", after=where,
                                       seconds=None if check_mode else time.monotonic() - begun))
        counts.append(f"kept {len(keep)}, {deleting} {len(delete)} ({location})")
    return f"retention of {name}: {', '.join(counts)}"
