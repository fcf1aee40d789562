# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Prove that a backup set restores: manifest, checksums, archives read end to end, age, S3 copy, restore test.

Each check is one record (name, status, detail). ``verified`` is true only when
every check passed; only then is ``verified.json`` written beside the manifest,
which retention honours. The restore test uses a scratch database that this
module creates, marks with a comment, and always drops.
"""

from __future__ import annotations

import json
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
    read_json,
    write_json_atomically,
)
from .pg import PgError, conninfo_from_params, connect, first_line, psycopg, qualified, split_table_name, sql
from .pg_backup import binary, libpq_env, tail
from .storage import S3Store, clean_prefix
from .window import format_duration, parse_duration

SCRATCH_MARK = "created by streamops.maintenance backup_verify; dropped after the restore test"
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


class Checks:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add(self, name: str, status: str, detail: str, **extra: Any) -> bool:
        self.records.append({"check": name, "status": status, "detail": detail, **extra})
        return status == PASSED

    @property
    def verified(self) -> bool:
        """Every check that ran passed; a skipped one is one the caller did not ask for (no max_age...)."""
        return bool(self.records) and all(r["status"] != FAILED for r in self.records)


# --------------------------------------------------------------------------- file checks


def check_manifest(directory: Path, checks: Checks) -> dict[str, Any] | None:
    try:
        manifest = read_json(directory / MANIFEST, what="manifest")
    except BackupError as exc:
        checks.add("manifest", FAILED, exc.msg)
        return None
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
    outside = [f["name"] for f in files if Path(f["name"]).is_absolute() or ".." in Path(f["name"]).parts]
    if outside:
        problems.append(f"file names outside the set: {', '.join(outside)}")
    missing = [f["name"] for f in files if f["name"] not in outside and not (directory / f["name"]).is_file()]
    if missing:
        problems.append(f"{len(missing)} listed file(s) missing: {', '.join(missing[:10])}")
    if problems:
        checks.add("manifest", FAILED, "; ".join(problems))
        return None
    checks.add("manifest", PASSED, f"{manifest.get('backup_id')}: {len(files)} file(s), complete")
    return manifest


def check_checksums(directory: Path, manifest: dict[str, Any], checks: Checks) -> bool:
    bad = []
    total = 0
    for record in manifest["files"]:
        size, digest = hash_file(directory / record["name"])
        total += size
        if size != record["bytes"]:
            bad.append(f"{record['name']}: {size} bytes, manifest says {record['bytes']}")
        elif digest != record["sha256"]:
            bad.append(f"{record['name']}: sha256 {digest[:16]}..., manifest says {record['sha256'][:16]}...")
    if bad:
        return checks.add("checksums", FAILED, "; ".join(bad))
    return checks.add("checksums", PASSED, f"{len(manifest['files'])} file(s), {total} bytes read, every sha256 matches")


def check_archives(directory: Path, manifest: dict[str, Any], checks: Checks, *, pg_bin_dir: str | None) -> bool:
    """Each part read to its end by the tool that would restore it, decompressing every block."""
    problems, read = [], []
    for part in manifest.get("parts", []):
        path = directory / part["path"]
        try:
            if part["format"] in ("custom", "directory"):
                # A TOC that lists is not enough: writing the whole archive as a script reads every data block.
                proc = subprocess.run([binary(pg_bin_dir, "pg_restore"), "--file=/dev/null", str(path)],
                                      capture_output=True, stdin=subprocess.DEVNULL, check=False)
                if proc.returncode != 0 or b"error:" in proc.stderr:
                    problems.append(f"{part['path']}: pg_restore cannot read it: "
                                    f"{tail(proc.stderr.decode(errors='replace'))}")
                    continue
            elif part["format"] == "rdb":
                proc = subprocess.run([shutil.which("redis-check-rdb") or "redis-check-rdb", str(path)],
                                      capture_output=True, stdin=subprocess.DEVNULL, check=False)
                if proc.returncode != 0:
                    problems.append(f"{part['path']}: redis-check-rdb: {tail(proc.stdout.decode(errors='replace'))}")
                    continue
            elif part["format"] == "tar.gz":
                with tarfile.open(path, mode="r|gz") as archive:
                    for member in archive:
                        handle = archive.extractfile(member)
                        while handle is not None and handle.read(CHUNK):
                            pass
            else:
                problems.append(f"{part['path']}: unknown format {part['format']!r}")
                continue
        except (OSError, tarfile.TarError, EOFError) as exc:
            problems.append(f"{part['path']}: {exc}")
            continue
        read.append(part["path"])
    if problems:
        return checks.add("archives", FAILED, "; ".join(problems))
    return checks.add("archives", PASSED, f"read to the end: {', '.join(read)}")


def check_age(manifest: dict[str, Any], max_age: Any, now: datetime, checks: Checks) -> bool:
    if max_age is None:
        return checks.add("age", SKIPPED, "no max_age given")
    limit = parse_duration(max_age, field_name="max_age")
    try:
        finished = datetime.fromisoformat(manifest["finished_at"])
    except (KeyError, TypeError, ValueError):
        return checks.add("age", FAILED, f"finished_at {manifest.get('finished_at')!r} is not a time")
    age = now - finished
    if age > limit:
        return checks.add("age", FAILED, f"{format_duration(age)} old, more than max_age {format_duration(limit)}")
    return checks.add("age", PASSED, f"{format_duration(age)} old, within {format_duration(limit)}")


def check_s3_copy(store: S3Store, prefix: str, directory: Path, manifest: dict[str, Any], checks: Checks) -> bool:
    """Every object of the set read back and hashed against the manifest, and the manifest itself compared."""
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
        return checks.add("s3_copy", FAILED, exc.msg)
    if problems:
        return checks.add("s3_copy", FAILED, "; ".join(problems))
    return checks.add("s3_copy", PASSED, f"{len(manifest['files'])} object(s) in {store.url(prefix)} match")


# --------------------------------------------------------------------------- restore test


def restore_test(params: dict[str, Any], directory: Path, manifest: dict[str, Any], checks: Checks) -> None:
    scratch = params.get("scratch_database")
    source = (manifest.get("postgres") or {}).get("database")
    if source is None:
        checks.add("restore", SKIPPED, "the set has no PostgreSQL dump")
        return
    if scratch == source:
        checks.add("restore", FAILED, f"scratch_database {scratch!r} is the backup's source database; "
                                      "refusing to restore into it")
        return
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
    begun = time.monotonic()
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
    checks.add("restore", PASSED, f"{' then '.join(order)} restored into scratch database {kwargs['dbname']} "
                                  f"on {server}", seconds=round(time.monotonic() - begun, 3))
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
            checks.add("row_counts", FAILED, "; ".join(wrong))
        elif counted:
            checks.add("row_counts", PASSED, ", ".join(counted))
        for check in params.get("sql_checks") or []:
            run_sql_check(conn, check, checks)


def run_sql_check(conn: Any, check: dict[str, Any], checks: Checks) -> None:
    name = f"sql: {check['name']}"
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            row = conn.execute(check["sql"]).fetchone()
    except psycopg.Error as exc:
        checks.add(name, FAILED, f"the query failed: {first_line(exc)}")
        return
    value = row[0] if row else None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        checks.add(name, FAILED, f"the query must return a number in its first column, got {value!r}")
    elif value < check["min"]:
        checks.add(name, FAILED, f"{value}, expected at least {check['min']}")
    else:
        checks.add(name, PASSED, f"{value} (at least {check['min']})")


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
    validate(params)
    begun = time.monotonic()
    checks = Checks()
    store = S3Store(params["s3"]) if params.get("s3") else None
    prefix = (clean_prefix(params["s3"]["prefix"]) + "/") if store is not None else ""
    local = Path(params["path"]) if params.get("path") else None
    workdir = None
    restore_seconds = None
    try:
        if local is None and store is not None:
            workdir = Path(tempfile.mkdtemp(prefix="streamops-verify-"))
            directory = workdir
            fetched = fetch_from_s3(store, prefix, workdir, checks)
        else:
            directory, fetched = Path(params["path"]), True
        manifest = check_manifest(directory, checks) if fetched else None
        if manifest is not None:
            check_checksums(directory, manifest, checks)
            check_archives(directory, manifest, checks, pg_bin_dir=params.get("pg_bin_dir"))
            check_age(manifest, params.get("max_age"), clock(), checks)
            if store is not None and local is not None:
                check_s3_copy(store, prefix, directory, manifest, checks)
            if params.get("restore_test"):
                if check_mode:
                    checks.add("restore", SKIPPED, "check mode: a restore test creates a database")
                elif checks.verified:
                    restore_begun = time.monotonic()
                    restore_test(params, directory, manifest, checks)
                    restore_seconds = round(time.monotonic() - restore_begun, 3)
                else:
                    checks.add("restore", SKIPPED, "an earlier check failed; not restoring a damaged backup")
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    # A restore test that was asked for but could not run (check mode, a data-only set) proves nothing.
    restored = any(r["check"] == "restore" and r["status"] == PASSED for r in checks.records)
    verified = checks.verified and (restored or not params.get("restore_test"))
    result: dict[str, Any] = {"changed": False, "verified": verified, "checks": checks.records,
                              "backup_id": manifest.get("backup_id") if manifest else None,
                              "duration_s": round(time.monotonic() - begun, 3)}
    if restore_seconds is not None:
        result["restore_seconds"] = restore_seconds
    if verified and not check_mode:
        mark = {"verified_at": clock().isoformat(), "backup_id": manifest["backup_id"],
                "checks": [{"check": r["check"], "status": r["status"]} for r in checks.records]}
        if local is not None:
            write_json_atomically(local / VERIFIED, mark)
        if store is not None:
            store.put_bytes(prefix + VERIFIED, json.dumps(mark, indent=2, sort_keys=True).encode() + b"\n")
        result["changed"] = True
    failed = [r for r in checks.records if r["status"] == FAILED]
    if failed:
        result["msg"] = "backup NOT verified: " + "; ".join(f"{r['check']}: {r['detail']}" for r in failed)
        result["failed"] = params.get("fail_on_unverified", True)
    else:
        result["msg"] = f"backup {result['backup_id']} verified" if verified else \
            f"backup {result['backup_id']}: every check that ran passed ({'check mode' if check_mode else 'not all ran'})"
    return result
