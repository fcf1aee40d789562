# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Prove that a backup set restores: manifest, checksums, archives read end to end, age, S3 copy, restore test.

Each check is one record (docs/records.md: name the check, action ``verify``),
then a verdict record (action ``verified``) and, when ``verified.json`` is
written beside the manifest (and in S3), a ``mark`` record; retention honours
the mark. The restore test uses a scratch database that this module creates,
marks with a comment, and always drops.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .backup_set import (
    CHUNK,
    MANIFEST,
    MANIFEST_VERSION,
    VERIFIED,
    BackupError,
    hash_file,
    json_bytes,
    read_json,
    tail,
    write_json_atomically,
)
from .errors import MaintenanceError
from .pg import PgError, conninfo_from_params, connect, first_line, psycopg, qualified, split_table_name, sql
from .pg_backup import binary, libpq_env
from .records import is_changed, make_record
from .s3 import S3Store, clean_prefix
from .window import format_duration, parse_duration

SCRATCH_MARK = "created by streamops.maintenance backup_verify; dropped after the restore test"
OK, FAILED, SKIPPED, UNKNOWN = "ok", "failed", "skipped", "unknown"
NOT_UPLOADED = "the set was not uploaded (its manifest has no s3 location)"


class Checks:
    """The records of one verification, one per check, in the order the checks ran."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add(self, name: str, status: str, detail: str, *, seconds: float | None = None) -> bool:
        self.records.append(make_record(name, "verify", status, detail, seconds=seconds))
        return status == OK

    def find(self, name: str) -> dict[str, Any] | None:
        return next((record for record in reversed(self.records) if record["name"] == name), None)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [record for record in self.records if record["status"] == FAILED]


# --------------------------------------------------------------------------- file checks


def manifest_problems(directory: Path, manifest: dict[str, Any]) -> list[str]:
    problems = []
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        problems.append(f"manifest_version {manifest.get('manifest_version')!r}, expected {MANIFEST_VERSION}")
    if manifest.get("complete") is not True:
        problems.append("not marked complete")
    files = manifest.get("files")
    if not isinstance(files, list) or not files or not all(
            isinstance(f, dict) and {"name", "bytes", "sha256"} <= set(f) for f in files):
        problems.append("no valid file list (each file needs name, bytes and sha256)")
        files = []
    parts = manifest.get("parts")
    if not isinstance(parts, list) or not all(
            isinstance(p, dict) and all(isinstance(p.get(key), str) for key in ("part", "format", "path"))
            for p in parts):
        problems.append("no valid part list (each part needs part, format and path)")
        parts = []
    names = [f["name"] for f in files] + [p["path"] for p in parts]
    outside = [name for name in names if Path(name).is_absolute() or ".." in Path(name).parts]
    if outside:
        problems.append(f"file names outside the set: {', '.join(outside)}")
    missing = [f["name"] for f in files if f["name"] not in outside and not (directory / f["name"]).is_file()]
    if missing:
        problems.append(f"{len(missing)} listed file(s) missing: {', '.join(missing[:10])}")
    return problems


def check_manifest(directory: Path, checks: Checks) -> dict[str, Any] | None:
    try:
        manifest = read_json(directory / MANIFEST, what="manifest")
    except BackupError as exc:
        checks.add("manifest", FAILED, exc.msg)
        return None
    problems = manifest_problems(directory, manifest)
    if problems:
        checks.add("manifest", FAILED, "; ".join(problems))
        return None
    checks.add("manifest", OK, f"{manifest.get('backup_id')}: {len(manifest['files'])} file(s), complete")
    return manifest


def check_checksums(directory: Path, manifest: dict[str, Any], checks: Checks) -> bool:
    begun = time.monotonic()
    bad = []
    total = 0
    for record in manifest["files"]:
        try:
            size, digest = hash_file(directory / record["name"])
        except OSError as exc:
            bad.append(f"{record['name']}: cannot be read: {exc}")
            continue
        total += size
        if size != record["bytes"]:
            bad.append(f"{record['name']}: {size} bytes, manifest says {record['bytes']}")
        elif digest != record["sha256"]:
            bad.append(f"{record['name']}: sha256 {digest[:16]}..., manifest says {record['sha256'][:16]}...")
    seconds = time.monotonic() - begun
    if bad:
        return checks.add("checksums", FAILED, "; ".join(bad), seconds=seconds)
    return checks.add("checksums", OK, f"{len(manifest['files'])} file(s), {total} bytes read, every sha256 matches",
                      seconds=seconds)


def archive_problem(directory: Path, part: dict[str, Any], *, pg_bin_dir: str | None) -> str | None:
    """Why this part cannot be read to its end by the tool that would restore it (None: it can)."""
    path = directory / part["path"]
    try:
        if part["format"] in ("custom", "directory"):
            # A TOC that lists is not enough: writing the whole archive as a script reads every data block.
            proc = subprocess.run([binary(pg_bin_dir, "pg_restore"), "--file=/dev/null", str(path)],
                                  capture_output=True, stdin=subprocess.DEVNULL, check=False)
            if proc.returncode != 0 or b"error:" in proc.stderr:
                return f"{part['path']}: pg_restore cannot read it: {tail(proc.stderr.decode(errors='replace'))}"
        elif part["format"] == "rdb":
            proc = subprocess.run([shutil.which("redis-check-rdb") or "redis-check-rdb", str(path)],
                                  capture_output=True, stdin=subprocess.DEVNULL, check=False)
            if proc.returncode != 0:
                return f"{part['path']}: redis-check-rdb: {tail(proc.stdout.decode(errors='replace'))}"
        elif part["format"] == "tar.gz":
            with tarfile.open(path, mode="r|gz") as archive:
                for member in archive:
                    handle = archive.extractfile(member)
                    while handle is not None and handle.read(CHUNK):
                        pass
        else:
            return f"{part['path']}: unknown format {part['format']!r}"
    except (OSError, tarfile.TarError, EOFError) as exc:
        return f"{part['path']}: {exc}"
    return None


def check_archives(directory: Path, manifest: dict[str, Any], checks: Checks, *, pg_bin_dir: str | None) -> bool:
    """One ``archive <part>`` record per part, each read to its end, decompressing every block."""
    readable = True
    for part in manifest.get("parts", []):
        begun = time.monotonic()
        problem = archive_problem(directory, part, pg_bin_dir=pg_bin_dir)
        seconds = time.monotonic() - begun
        if problem is None:
            checks.add(f"archive {part['part']}", OK, f"{part['path']}: read to the end", seconds=seconds)
        else:
            readable = checks.add(f"archive {part['part']}", FAILED, problem, seconds=seconds) and readable
    return readable


def check_age(manifest: dict[str, Any], max_age: Any, now: datetime, checks: Checks) -> bool:
    """The set finished less than ``max_age`` ago; no record when no max_age is asked for."""
    if max_age is None:
        return True
    limit = parse_duration(max_age, field_name="max_age")
    try:
        finished = datetime.fromisoformat(manifest["finished_at"])
    except (KeyError, TypeError, ValueError):
        return checks.add("age", FAILED, f"finished_at {manifest.get('finished_at')!r} is not a time")
    age = now - finished
    if age > limit:
        return checks.add("age", FAILED, f"{format_duration(age)} old, more than max_age {format_duration(limit)}")
    return checks.add("age", OK, f"{format_duration(age)} old, within {format_duration(limit)}")


def copy_location(store: S3Store, options: dict[str, Any], manifest: dict[str, Any]) -> tuple[S3Store, str]:
    """Where the set's S3 copy is, from its own manifest (pg_backup writes ``s3.bucket`` and ``s3.prefix``).

    So the estate's ``s3`` options (the backup's, through module_defaults) verify any of its sets.
    """
    location = manifest.get("s3")
    if not location:
        raise BackupError(msg=NOT_UPLOADED)
    if not isinstance(location, dict) or not isinstance(location.get("bucket"), str) or not location["bucket"] \
            or not isinstance(location.get("prefix"), str):
        raise BackupError(msg=f"the manifest's s3 location {location!r} is not a bucket and a prefix")
    prefix = clean_prefix(location["prefix"])
    # The mark is written there too: the prefix must be this very set's.
    if prefix.rsplit("/", 1)[-1] != manifest.get("backup_id"):
        raise BackupError(msg=f"the manifest's s3 prefix {location['prefix']!r} does not end with its backup id "
                              f"{manifest.get('backup_id')!r}")
    copy = store if location["bucket"] == store.bucket else S3Store({**options, "bucket": location["bucket"]})
    return copy, prefix + "/"


def check_s3_copy(store: S3Store, prefix: str, directory: Path, manifest: dict[str, Any], checks: Checks) -> bool:
    """Every object of the set read back and hashed against the manifest, and the manifest itself compared."""
    begun = time.monotonic()
    try:
        present = store.list_keys(prefix)
        problems = []
        for record in manifest["files"]:
            key = prefix + record["name"]
            if key not in present:
                problems.append(f"{record['name']}: missing in S3")
                continue
            size, digest = store.hash_object(key)
            if size != record["bytes"] or digest != record["sha256"]:
                problems.append(f"{record['name']}: S3 copy differs ({size} bytes, sha256 {digest[:16]}...)")
        if prefix + MANIFEST not in present:
            problems.append("manifest.json missing in S3")
        elif b"".join(store.read_chunks(prefix + MANIFEST)) != (directory / MANIFEST).read_bytes():
            problems.append("the S3 manifest differs from the local one")
    except BackupError as exc:
        return checks.add("s3 copy", FAILED, exc.msg, seconds=time.monotonic() - begun)
    seconds = time.monotonic() - begun
    if problems:
        return checks.add("s3 copy", FAILED, "; ".join(problems), seconds=seconds)
    return checks.add("s3 copy", OK, f"{len(manifest['files'])} object(s) in {store.url(prefix)} match",
                      seconds=seconds)


# --------------------------------------------------------------------------- restore test


def restore_test(params: dict[str, Any], directory: Path, manifest: dict[str, Any], checks: Checks) -> None:
    """The ``restore`` record (its seconds from creating the scratch database to dropping it), then what it found."""
    scratch = params.get("scratch_database")
    source = (manifest.get("postgres") or {}).get("database")
    if source is None:
        checks.add("restore", SKIPPED, "the set has no PostgreSQL dump")
        return
    if scratch == source:
        checks.add("restore", FAILED, f"scratch_database {scratch!r} is the backup's source database; "
                                      "refusing to restore into it")
        return
    begun = time.monotonic()
    try:
        restore_into_scratch(params, directory, manifest, checks, scratch=scratch)
    finally:
        record = checks.find("restore")
        if record is not None and record["status"] != SKIPPED:
            record["seconds"] = round(time.monotonic() - begun, 3)


def restore_into_scratch(params: dict[str, Any], directory: Path, manifest: dict[str, Any], checks: Checks, *,
                         scratch: str) -> None:
    kwargs = conninfo_from_params({**params, "database": params.get("maintenance_database") or "postgres"})
    server = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 5432)}"
    try:
        admin = connect(kwargs)
    except PgError as exc:
        checks.add("restore", FAILED, exc.msg)
        return
    created = False
    try:
        with admin:
            row = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                                (scratch,)).fetchone()
            if row is not None and row[0] != SCRATCH_MARK:
                checks.add("restore", FAILED, f"database {scratch!r} already exists on {server} and was not created "
                                              "by backup_verify; refusing to touch it")
                return
            if row is not None:
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(scratch)))
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch)))
            created = True
            try:
                admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(scratch), sql.Literal(SCRATCH_MARK)))
                run_restore(params, directory, manifest, {**kwargs, "dbname": scratch}, checks, server=server)
            finally:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
                created = False
    except psycopg.Error as exc:
        left = (f"; the scratch database {scratch!r} may remain on {server}: drop it by hand" if created else "")
        checks.add("restore", FAILED, f"on {server}: {first_line(exc)}{left}")


def run_restore(params: dict[str, Any], directory: Path, manifest: dict[str, Any], kwargs: dict[str, Any],
                checks: Checks, *, server: str) -> None:
    parts = {part["part"]: part for part in manifest.get("parts", [])}
    order = ["full"] if "full" in parts else [p for p in ("schema", "critical_data") if p in parts]
    if not order or order == ["critical_data"]:
        # A data-only dump has no tables to load into: it restores only on top of a schema.
        checks.add("restore", SKIPPED, "no full or schema dump in the set to restore into a scratch database")
        return
    for name in order:
        part = parts[name]
        argv = [binary(params.get("pg_bin_dir"), "pg_restore"), "--no-password", "--no-owner", "--no-privileges",
                f"--dbname={kwargs['dbname']}"]
        if (params.get("jobs") or 1) > 1:
            argv.append(f"--jobs={params['jobs']}")
        argv.append(str(directory / part["path"]))
        proc = subprocess.run(argv, env=libpq_env(kwargs), capture_output=True, stdin=subprocess.DEVNULL, check=False)
        stderr = proc.stderr.decode(errors="replace")
        if proc.returncode != 0 or "error:" in stderr:
            checks.add("restore", FAILED, f"pg_restore of {part['path']} into {kwargs['dbname']} on {server} "
                                          f"failed (exit {proc.returncode}): {tail(stderr)}")
            return
    checks.add("restore", OK, f"{' then '.join(order)} restored into scratch database {kwargs['dbname']} "
                              f"on {server}")
    # A schema-only restore holds no rows: the manifest's counts describe data it did not load.
    counts = (manifest.get("row_counts") or {}) if order != ["schema"] else {}
    with connect(kwargs) as conn:
        counted = []
        wrong = []
        for table, expected in sorted(counts.items()):
            schema, name = split_table_name(table)
            have = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(qualified(schema, name))).fetchone()[0]
            counted.append(f"{table} {have}")
            if have != expected:
                wrong.append(f"{table}: {have} rows restored, manifest says {expected}")
        if wrong:
            checks.add("row counts", FAILED, "; ".join(wrong))
        elif counted:
            checks.add("row counts", OK, ", ".join(counted))
        for check in params.get("sql_checks") or []:
            run_sql_check(conn, check, checks)


def run_sql_check(conn: Any, check: dict[str, Any], checks: Checks) -> None:
    name = f"sql {check['name']}"
    begun = time.monotonic()
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            row = conn.execute(check["sql"]).fetchone()
    except psycopg.Error as exc:
        checks.add(name, FAILED, f"the query failed: {first_line(exc)}", seconds=time.monotonic() - begun)
        return
    seconds = time.monotonic() - begun
    value = row[0] if row else None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        checks.add(name, FAILED, f"the query must return a number in its first column, got {value!r}", seconds=seconds)
    elif value < check["min"]:
        checks.add(name, FAILED, f"{value}, expected at least {check['min']}", seconds=seconds)
    else:
        checks.add(name, OK, f"{value} (at least {check['min']})", seconds=seconds)


# --------------------------------------------------------------------------- the run


def fetch_from_s3(store: S3Store, prefix: str, target: Path, checks: Checks) -> bool:
    """Download the manifest and every file it lists (hashes are checked later, from the copies)."""
    try:
        store.download(prefix + MANIFEST, target / MANIFEST)
        manifest = read_json(target / MANIFEST, what="manifest")
        for record in manifest.get("files") or []:
            name = record.get("name", "") if isinstance(record, dict) else ""
            if not name or Path(name).is_absolute() or ".." in Path(name).parts:
                continue
            if prefix + name in store.list_keys(prefix + name):
                store.download(prefix + name, target / name)
    except BackupError as exc:
        checks.add("manifest", FAILED, f"from {store.url(prefix)}: {exc.msg}")
        return False
    return True


def validate(params: dict[str, Any]) -> None:
    if not params.get("path") and not params.get("s3"):
        raise BackupError(msg="give path (a local backup set) or s3 (its bucket and prefix), or both")
    if params.get("path") and not Path(params["path"]).is_absolute():
        raise BackupError(msg=f"path {params['path']!r} must be an absolute path")
    if params.get("max_age") is not None:
        parse_duration(params["max_age"], field_name="max_age")
    if params.get("restore_test") and not params.get("scratch_database"):
        raise BackupError(msg="restore_test needs scratch_database")
    for check in params.get("sql_checks") or []:
        if not check.get("name") or not check.get("sql"):
            raise BackupError(msg=f"sql_checks: each check needs a name and sql, got {check!r}")
    if (params.get("jobs") or 1) < 1:
        raise BackupError(msg=f"jobs {params['jobs']} must be at least 1")


def run_backup_verify(params: dict[str, Any], *, check_mode: bool, diff_mode: bool = False,
                      clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> dict[str, Any]:
    checks = Checks()
    try:
        return verify(params, checks, check_mode=check_mode, clock=clock)
    except MaintenanceError as exc:
        # A failed result keeps the records of the checks that ran before the fault.
        exc.details.update(records=checks.records, changed=False)
        raise


def verify(params: dict[str, Any], checks: Checks, *, check_mode: bool,
           clock: Callable[[], datetime]) -> dict[str, Any]:
    validate(params)
    begun = time.monotonic()
    store = S3Store(params["s3"]) if params.get("s3") else None
    local = Path(params["path"]) if params.get("path") else None
    # Without a local set, s3.prefix names the one set; with one, its manifest says where its copy is.
    copy: S3Store | None = store if local is None else None
    prefix = (clean_prefix(params["s3"]["prefix"]) + "/") if copy is not None else ""
    workdir = None
    manifest = None
    try:
        if local is None and copy is not None:
            workdir = Path(tempfile.mkdtemp(prefix="streamops-verify-"))
            directory = workdir
            fetched = fetch_from_s3(copy, prefix, workdir, checks)
        else:
            directory, fetched = Path(params["path"]), True
        manifest = check_manifest(directory, checks) if fetched else None
        if manifest is not None:
            check_checksums(directory, manifest, checks)
            check_archives(directory, manifest, checks, pg_bin_dir=params.get("pg_bin_dir"))
            check_age(manifest, params.get("max_age"), clock(), checks)
            if store is not None and local is not None:
                try:
                    copy, prefix = copy_location(store, params["s3"], manifest)
                except BackupError as exc:
                    checks.add("s3 copy", FAILED, exc.msg)
                else:
                    check_s3_copy(copy, prefix, directory, manifest, checks)
            if params.get("restore_test"):
                if check_mode:
                    checks.add("restore", SKIPPED, "check mode: a restore test creates a database")
                elif not checks.failed:
                    restore_test(params, directory, manifest, checks)
                else:
                    checks.add("restore", SKIPPED, "an earlier check failed; not restoring a damaged backup")
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    set_id = manifest.get("backup_id") if manifest else None
    where = str(local) if local is not None else (copy.url(prefix) if copy is not None else "")
    status, detail = verdict(checks, restore_asked=bool(params.get("restore_test")))
    verified = status == OK
    records = [*checks.records, make_record(set_id or where, "verified", status, detail,
                                            after={"verified": verified, "backup_id": set_id, "path": where},
                                            seconds=time.monotonic() - begun)]
    if verified and manifest is not None:
        records.append(write_mark(local, copy, prefix, manifest, checks, now=clock(), check_mode=check_mode))
    result: dict[str, Any] = {"changed": is_changed(records), "records": records, "verified": verified,
                              "backup_id": set_id}
    if checks.failed:
        result["msg"] = "backup NOT verified: " + "; ".join(f"{r['name']}: {r['detail']}" for r in checks.failed)
        result["failed"] = params.get("fail_on_unverified", True)
    elif not verified:
        result["msg"] = f"backup {set_id} {detail}"
    elif records[-1]["status"] == FAILED:
        result["msg"] = f"backup {set_id} verified, but {records[-1]['detail']}"
        result["failed"] = True
    else:
        result["msg"] = f"backup {set_id} verified" + ("; check mode: verified.json not written" if check_mode else "")
    return result


def verdict(checks: Checks, *, restore_asked: bool) -> tuple[str, str]:
    """(status, detail) of the verdict: failed on any failed check, unknown when a needed check did not run."""
    if checks.failed:
        return FAILED, f"not verified: {', '.join(r['name'] for r in checks.failed)} failed"
    restore = checks.find("restore")
    if restore_asked and (restore is None or restore["status"] != OK):
        # A restore test that was asked for but could not run (check mode, a data-only set) proves nothing.
        why = restore["detail"] if restore is not None else "the restore test did not run"
        return UNKNOWN, f"not verified: every check that ran passed, but not all ran ({why})"
    return OK, f"verified: {len(checks.records)} check(s) passed"


def write_mark(local: Path | None, copy: S3Store | None, prefix: str, manifest: dict[str, Any], checks: Checks, *,
               now: datetime, check_mode: bool) -> dict[str, Any]:
    """Write ``verified.json`` beside the manifest (and in S3): the ``mark`` record."""
    targets = ([str(local / VERIFIED)] if local is not None else []) + (
        [copy.url(prefix + VERIFIED)] if copy is not None else [])
    if check_mode:
        return make_record(manifest["backup_id"], "mark", "planned", f"would write {' and '.join(targets)}",
                           after={"paths": targets})
    mark = {"verified_at": now.isoformat(), "backup_id": manifest["backup_id"],
            "checks": [{"check": r["name"], "status": r["status"]} for r in checks.records]}
    written: list[str] = []
    try:
        if local is not None:
            write_json_atomically(local / VERIFIED, mark)
            written.append(str(local / VERIFIED))
        if copy is not None:
            copy.put_bytes(prefix + VERIFIED, json_bytes(mark))
            written.append(copy.url(prefix + VERIFIED))
    except (OSError, BackupError) as exc:
        message = exc.msg if isinstance(exc, BackupError) else str(exc)
        return make_record(manifest["backup_id"], "mark", "failed",
                           f"writing the verified mark failed: {message}; written: {', '.join(written) or 'nothing'}",
                           after={"paths": written})
    return make_record(manifest["backup_id"], "mark", "done", f"wrote {' and '.join(written)}",
                       after={"paths": written})
