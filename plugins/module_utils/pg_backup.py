# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Write one backup set: pg_dump parts in one snapshot, Redis RDB, config tar, manifest, S3, retention.

Every dump of a run uses the snapshot in which the critical tables' rows were
counted, so the manifest's counts are those of the archive. Files are hashed as
they are written. Any failure removes this run's directory (and its S3
objects) and names the step; earlier sets are never touched by a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .backup_set import (
    MANIFEST,
    MANIFEST_VERSION,
    BackupError,
    BackupRef,
    HashingWriter,
    backup_id,
    check_name,
    check_root,
    copy_hashing,
    fsync_file,
    hash_file,
    local_sets,
    plan_retention,
    remove_local_set,
    retention_policy,
    set_dir_in_root,
    write_json_atomically,
)
from .pg import PgError, conninfo_from_params, first_line, psycopg, qualified, split_table_name, sql
from .storage import S3Store
from .window import parse_duration

PARTS = ("full", "schema", "critical_data", "redis_rdb", "config")
PG_PARTS = ("full", "schema", "critical_data")
PG_ENV = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE",
          "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
          "connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME"}
ARCHIVE_MAGIC = b"PGDMP"
RDB_MAGIC = b"REDIS"
EOF_MARK = 40  # CONFIG_RUN_ID_SIZE: the mark that ends a diskless (EOF-delimited) RDB transfer


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
    """A REPEATABLE READ transaction whose snapshot every pg_dump of the run shares."""

    def __init__(self, kwargs: dict[str, Any], tables: list[tuple[str, str]], *, export: bool = True) -> None:
        if psycopg is None:
            raise PgError(msg="the Python library psycopg (3) is required")
        try:
            self.conn = psycopg.connect(**kwargs)
        except psycopg.Error as exc:
            raise BackupError(msg=f"cannot connect to PostgreSQL: {first_line(exc)}", step="snapshot") from exc
        try:
            self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self.conn.read_only = True
            row = self.conn.execute("SELECT current_setting('server_version'), current_database(), "
                                    "pg_database_size(current_database())").fetchone()
            self.server_version, self.database, self.database_bytes = row
            self.snapshot_id = self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0] if export else None
            self.row_counts = self._count(tables)
        except psycopg.Error as exc:
            self.close()
            raise BackupError(msg=f"snapshot on {kwargs.get('dbname')} failed: {first_line(exc)}",
                              step="snapshot") from exc
        except BackupError:
            self.close()
            raise

    def _count(self, tables: list[tuple[str, str]]) -> dict[str, int]:
        counts = {}
        missing = []
        for schema, name in tables:
            if self.conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{name}"',)).fetchone()[0] is None:
                missing.append(f"{schema}.{name}")
                continue
            counts[f"{schema}.{name}"] = self.conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(qualified(schema, name))).fetchone()[0]
        if missing:
            raise BackupError(msg=f"critical table(s) not found in {self.database}: {', '.join(missing)}",
                              step="snapshot")
        return counts

    def close(self) -> None:
        try:
            self.conn.rollback()
        finally:
            self.conn.close()


# --------------------------------------------------------------------------- child processes


def stream_child(argv: list[str], env: dict[str, str], target: Path, *, step: str,
                 hold_back: int = 0, judge_tail: Callable[[str, bytes], bytes] | None = None,
                 ) -> tuple[HashingWriter, str]:
    """Run ``argv`` with stdout hashed into ``target``; (writer, stderr). Raises with stderr on failure.

    ``judge_tail(stderr, last bytes)`` decides which of the last ``hold_back`` bytes belong to the file.
    """
    with tempfile.TemporaryFile() as errors, target.open("wb") as handle:
        # stderr to a file, not a pipe: a chatty child can never block on a full pipe we do not read.
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, env=env, stdin=subprocess.DEVNULL)
        try:
            writer, tail_bytes = copy_hashing(proc.stdout, handle, hold_back=hold_back)
            code = proc.wait()
            errors.seek(0)
            stderr = errors.read().decode(errors="replace")
            if code == 0:
                writer.write(judge_tail(stderr, tail_bytes) if judge_tail else tail_bytes)
            fsync_file(handle)
        except OSError as exc:
            proc.kill()
            proc.wait()
            raise BackupError(msg=f"{step}: writing {target} failed: {exc}", step=step) from exc
        finally:
            proc.stdout.close()
    if code != 0:
        raise BackupError(msg=f"{step}: {Path(argv[0]).name} exited with {code}: {tail(stderr)}", step=step)
    return writer, stderr


def run_child(argv: list[str], env: dict[str, str], *, step: str) -> str:
    proc = subprocess.run(argv, env=env, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise BackupError(msg=f"{step}: {Path(argv[0]).name} exited with {proc.returncode}: {tail(stderr)}",
                          step=step)
    return stderr


def tail(text: str, lines: int = 5) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) or "(no message)"


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


def redis_cli_argv(redis_cli: str, options: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    argv = [redis_cli, "--no-auth-warning"]
    if options.get("login_unix_socket"):
        argv += ["-s", options["login_unix_socket"]]
    else:
        argv += ["-h", options.get("login_host") or "localhost", "-p", str(options.get("login_port") or 6379)]
    if options.get("login_user"):
        argv += ["--user", options["login_user"]]
    if options.get("tls"):
        argv.append("--tls")
        for flag, key in (("--cacert", "ca_certs"), ("--cert", "client_cert_file"), ("--key", "client_key_file")):
            if options.get(key):
                argv += [flag, options[key]]
    env = dict(os.environ)
    env.pop("REDISCLI_AUTH", None)
    if options.get("login_password"):
        env["REDISCLI_AUTH"] = options["login_password"]  # never -a: argv is visible in ps
    return argv, env


def rdb_tail(stderr: str, last: bytes) -> bytes:
    """A diskless sync ends with a 40-byte EOF mark that redis-cli cannot truncate from stdout: drop it."""
    return b"" if "EOF marker" in stderr else last


def dump_redis(redis_cli: str, options: dict[str, Any], directory: Path) -> dict[str, Any]:
    step = "redis rdb"
    argv, env = redis_cli_argv(redis_cli, options)
    target = directory / "redis.rdb"
    writer, stderr = stream_child([*argv, "--rdb", "-"], env, target, step=step, hold_back=EOF_MARK,
                                  judge_tail=rdb_tail)
    match = re.search(r"Transfer finished with success(?: after (\d+) bytes)?", stderr)
    if match is None or (match.group(1) is not None and int(match.group(1)) != writer.size):
        raise BackupError(msg=f"{step}: redis-cli did not report a complete transfer of {writer.size} bytes: "
                              f"{tail(stderr)}", step=step)
    with target.open("rb") as handle:
        head = handle.read(len(RDB_MAGIC))
    if head != RDB_MAGIC:
        raise BackupError(msg=f"{step}: the transfer is not an RDB file (starts with {head!r})", step=step)
    return {"part": "redis_rdb", "format": "rdb", "path": target.name, "files": [writer.record(target.name)]}


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
    if (params.get("jobs") or 1) < 1:
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
    plan = validate(params)
    policy = retention_policy(params.get("retention"), parse_duration) if params.get("retention") else None
    root = check_root(params.get("backup_root"), create=not check_mode and params["operation"] == "backup",
                      allow_missing=check_mode and params["operation"] == "backup")
    s3 = S3Store(params["s3"]) if params.get("s3") else None
    result: dict[str, Any] = {"changed": False, "name": plan["name"], "backup_root": str(root)}
    if params["operation"] == "backup":
        result.update(create_set(params, plan, root, s3, check_mode=check_mode, clock=clock))
        result["changed"] = True
    if policy is not None:
        result["retention"] = apply_retention(plan["name"], root, s3, policy, now=clock(), check_mode=check_mode)
        result["changed"] = result["changed"] or bool(result["retention"]["deleted"])
    elif params["operation"] == "retention":
        raise BackupError(msg="operation retention needs the retention option")
    return result


def create_set(params: dict[str, Any], plan: dict[str, Any], root: Path, s3: S3Store | None, *,
               check_mode: bool, clock: Callable[[], datetime]) -> dict[str, Any]:
    started = clock()
    set_id = backup_id(plan["name"], started)
    parts = plan["parts"]
    kwargs = conninfo_from_params(params)
    pg_dump = binary(params.get("pg_bin_dir"), "pg_dump") if any(p in PG_PARTS for p in parts) else ""
    redis_cli = shutil.which("redis-cli") if "redis_rdb" in parts else ""
    if "redis_rdb" in parts and not redis_cli:
        raise BackupError(msg="redis-cli not found on PATH; install redis-tools", step="preflight")
    directory = set_dir_in_root(root, set_id)
    if directory.exists():
        raise BackupError(msg=f"{directory} already exists: one backup of {plan['name']} per second", step="preflight")
    steps: list[dict[str, Any]] = []
    snapshot = None
    try:
        if any(p in PG_PARTS for p in parts):
            snapshot = Snapshot(kwargs, plan["tables"], export=not check_mode)
        if check_mode:
            return {"backup_id": set_id, "path": str(directory), "parts": parts,
                    "database_bytes": snapshot.database_bytes if snapshot else None,
                    "row_counts": snapshot.row_counts if snapshot else {},
                    "msg": f"would write {set_id} ({', '.join(parts)})"}
        directory.mkdir(mode=0o700)
        written = []
        for part in parts:
            begun = time.monotonic()
            if part in PG_PARTS and snapshot is not None:
                record = dump_part(pg_dump, part, directory, libpq_env(kwargs), fmt=params.get("format") or "custom",
                                   jobs=params.get("jobs") or 1, compress=params.get("compress_level"),
                                   snapshot=snapshot.snapshot_id, tables=plan["tables"])
                if part == "critical_data":
                    record["tables"] = sorted(snapshot.row_counts)
            elif part == "redis_rdb":
                record = dump_redis(redis_cli, params["redis"], directory)
            else:
                record = tar_config(plan["config_paths"], directory)
            record["seconds"] = round(time.monotonic() - begun, 3)
            written.append(record)
            steps.append({"step": part, "seconds": record["seconds"],
                          "bytes": sum(f["bytes"] for f in record["files"])})
        finished = clock()
        manifest = {
            "manifest_version": MANIFEST_VERSION, "backup_id": set_id, "name": plan["name"], "complete": True,
            "tool": "streamops.maintenance.pg_backup", "host": socket.gethostname(),
            "started_at": started.isoformat(), "finished_at": finished.isoformat(),
            "postgres": ({"database": snapshot.database, "server_version": snapshot.server_version,
                          "database_bytes": snapshot.database_bytes, "snapshot": snapshot.snapshot_id,
                          "compress_level": params.get("compress_level")} if snapshot else None),
            "row_counts": snapshot.row_counts if snapshot else {},
            "parts": [{k: v for k, v in record.items() if k != "files"} | {"files": [f["name"] for f in record["files"]]}
                      for record in written],
            "files": [f for record in written for f in record["files"]],
        }
        if s3 is not None:
            manifest["s3"] = {"bucket": s3.bucket, "prefix": s3.set_prefix(set_id, started)}
        write_json_atomically(directory / MANIFEST, manifest)
    except BaseException as exc:
        # Nothing of a failed run stays behind; earlier sets are other directories.
        shutil.rmtree(directory, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BackupError(msg=f"backup {set_id} failed: {exc}; its partial files were removed",
                              step="write", steps=steps) from exc
        if isinstance(exc, BackupError):
            exc.msg = f"{exc.msg}; backup {set_id}: the partial files were removed, earlier backups untouched"
            exc.details.setdefault("steps", steps)
        raise
    finally:
        if snapshot is not None:
            snapshot.close()
    result = {"backup_id": set_id, "path": str(directory), "manifest": manifest, "steps": steps,
              "msg": f"wrote {set_id}: {', '.join(parts)}"}
    if s3 is not None:
        begun = time.monotonic()
        try:
            keys = s3.upload_set(directory, manifest["files"], manifest["s3"]["prefix"], manifest=directory / MANIFEST)
        except BackupError as exc:
            exc.msg += f"; the local backup {directory} is complete and kept"
            exc.details.update(backup_id=set_id, path=str(directory), steps=steps)
            raise
        steps.append({"step": "upload", "seconds": round(time.monotonic() - begun, 3),
                      "bytes": sum(f["bytes"] for f in manifest["files"])})
        result["s3"] = {"bucket": s3.bucket, "prefix": manifest["s3"]["prefix"], "objects": len(keys)}
    return result


def apply_retention(name: str, root: Path, s3: S3Store | None, policy: Any, *, now: datetime,
                    check_mode: bool) -> dict[str, Any]:
    local = local_sets(root, name)
    remote = s3.sets(name) if s3 is not None else []
    verified = {ref.set_id for ref in [*local, *remote] if ref.verified}
    report: dict[str, Any] = {"kept": [], "deleted": []}
    plans: list[tuple[list[BackupRef], list[BackupRef]]] = [plan_retention(local, policy, now, verified_ids=verified)]
    if s3 is not None:
        plans.append(plan_retention(remote, policy, now, verified_ids=verified))
    for keep, delete in plans:
        report["kept"] += [{"backup_id": ref.set_id, "location": ref.location, "where": ref.where,
                            "reasons": ref.reasons} for ref in keep]
        for ref in delete:
            if not check_mode:
                try:
                    if ref.location == "local":
                        remove_local_set(root, ref.set_id)
                    elif s3 is not None:
                        s3.remove_set(ref)
                except (OSError, BackupError) as exc:
                    message = exc.msg if isinstance(exc, BackupError) else str(exc)
                    raise BackupError(msg=f"retention: removing {ref.where} failed: {message}; "
                                          f"{len(report['deleted'])} set(s) were removed before it",
                                      step="retention", retention=report) from exc
            report["deleted"].append({"backup_id": ref.set_id, "location": ref.location, "where": ref.where,
                                      "complete": ref.complete})
    return report
