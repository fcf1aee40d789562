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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .backup_set import (
    CHUNK,
    MANIFEST,
    MANIFEST_VERSION,
    VERIFIED,
    BackupError,
    BackupRef,
    check_name,
    check_root,
    hash_file,
    local_sets,
    newest_set,
    json_bytes,
    read_json,
    tail,
    write_json_atomically,
)
from .errors import MaintenanceError
from .pg import (
    PgError,
    conninfo_from_params,
    connect,
    first_line,
    psycopg,
    split_table_name,
    sql,
    table_fingerprint,
)
from .pg_backup import binary, libpq_env
from .records import is_changed, make_record
from .s3 import S3Store, clean_prefix
from .window import format_duration, parse_duration

SCRATCH_MARK = "created by streamops.maintenance backup_verify; dropped after the restore test"
OK, FAILED, SKIPPED, UNKNOWN = "ok", "failed", "skipped", "unknown"
# The result's ``state``: verified, failed, unknown (a needed check could not run), no_set (nothing to verify yet).
VERIFIED_STATE, NO_SET = "verified", "no_set"
NOT_UPLOADED = "the set was not uploaded (its manifest has no s3 location)"


class Checks:
    """The records of one verification, one per check, in the order the checks ran."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add(self, name: str, status: str, detail: str, *, seconds: float | None = None,
            after: dict[str, Any] | None = None) -> bool:
        self.records.append(make_record(name, "verify", status, detail, seconds=seconds, after=after))
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


def read_checked_files(directory: Path, checks: Checks, *, pg_bin_dir: str | None) -> dict[str, Any] | None:
    """Manifest, checksums and archives (each read to its end) of a local set; the manifest when it can be read."""
    manifest = check_manifest(directory, checks)
    if manifest is not None:
        check_checksums(directory, manifest, checks)
        check_archives(directory, manifest, checks, pg_bin_dir=pg_bin_dir)
    return manifest


def check_set_files(directory: Path, checks: Checks, *, pg_bin_dir: str | None) -> dict[str, Any] | None:
    """The set's manifest when its manifest, checksums and archives all pass; None otherwise.

    The records (``manifest``, ``checksums``, ``archive <part>``) are in ``checks``, the failed ones with why.
    """
    failed_before = len(checks.failed)
    manifest = read_checked_files(directory, checks, pg_bin_dir=pg_bin_dir)
    return manifest if manifest is not None and len(checks.failed) == failed_before else None


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
            create_marked_database(admin, scratch, SCRATCH_MARK, server=server)
            created = True
            try:
                run_restore(params, directory, manifest, {**kwargs, "dbname": scratch}, checks, server=server)
            finally:
                drop_marked_database(admin, scratch, SCRATCH_MARK, server=server)
                created = False
    except BackupError as exc:
        # It carries SCRATCH_MARK: the next restore test into that name drops it first (create_marked_database).
        left = (f"; the scratch database {scratch!r} may remain on {server}: the next restore test drops it "
                "first (it carries the mark), or drop it by hand" if created else "")
        checks.add("restore", FAILED, f"{exc.msg}{left}")


def database_comment(admin: Any, name: str) -> tuple[bool, str | None]:
    """(exists, its comment) of a database."""
    row = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                        (name,)).fetchone()
    return (row is not None, row[0] if row is not None else None)


def create_marked_database(admin: Any, name: str, mark: str, *, server: str, owner: str | None = None,
                           like: str | None = None) -> None:
    """Create database ``name`` (from template0) with ``mark`` as its comment, on an autocommit connection.

    A database of that name carrying the mark is ours from an earlier run: dropped and created again. One
    without it (anyone's) is refused, naming it and the server. ``like``: the new database takes that
    existing database's encoding and locale (a restore needs the source's collation to sort alike).
    """
    try:
        exists, comment = database_comment(admin, name)
        if exists and comment != mark:
            raise BackupError(msg=f"database {name!r} already exists on {server} and was not created by "
                                  f"streamops.maintenance (its comment is not {mark!r}); refusing to touch it")
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
        if like is not None:
            statement += locale_clauses(admin, like, server=server)
        if owner is not None:
            statement += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        if exists:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(statement)
        try:
            admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(mark)))
        except psycopg.Error:
            # Unmarked, the next run would refuse it as someone else's: it must not stay.
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            raise
    except psycopg.Error as exc:
        raise BackupError(msg=f"creating database {name!r} on {server} failed: {first_line(exc)}") from exc


def locale_clauses(admin: Any, like: str, *, server: str) -> Any:
    """ENCODING, LC_COLLATE, LC_CTYPE (and the locale provider) of database ``like``, as CREATE DATABASE clauses."""
    # to_jsonb of the row: the locale columns differ by major (daticulocale in 15 and 16, datlocale from 17).
    row = admin.execute("SELECT pg_encoding_to_char(d.encoding), to_jsonb(d) FROM pg_database AS d "
                        "WHERE d.datname = %s", (like,)).fetchone()
    if row is None:
        raise BackupError(msg=f"database {like!r} (whose encoding and locale to copy) does not exist on {server}")
    encoding, columns = row
    clauses = sql.SQL(" ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
        sql.Literal(encoding), sql.Literal(columns["datcollate"]), sql.Literal(columns["datctype"]))
    provider = columns.get("datlocprovider")
    locale = columns.get("datlocale") or columns.get("daticulocale")
    if provider == "i" and locale:
        clauses += sql.SQL(" LOCALE_PROVIDER icu ICU_LOCALE {}").format(sql.Literal(locale))
    elif provider == "b" and locale:
        clauses += sql.SQL(" LOCALE_PROVIDER builtin BUILTIN_LOCALE {}").format(sql.Literal(locale))
    return clauses


def drop_marked_database(admin: Any, name: str, mark: str, *, server: str = "") -> bool:
    """Drop database ``name`` only when it carries ``mark``; True when it was dropped."""
    try:
        exists, comment = database_comment(admin, name)
        if not exists or comment != mark:
            return False
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        where = f" on {server}" if server else ""
        raise BackupError(msg=f"dropping database {name!r}{where} failed: {first_line(exc)}") from exc
    return True


def restorable_parts(manifest: dict[str, Any]) -> list[str]:
    """The parts to restore, in order: ``full``, or ``schema`` then ``critical_data``; [] when none can stand alone."""
    parts = {part.get("part") for part in manifest.get("parts") or [] if isinstance(part, dict)}
    if "full" in parts:
        return ["full"]
    # A data-only dump has no tables to load into: it restores only on top of a schema.
    return ["schema", "critical_data"] if "schema" in parts and "critical_data" in parts else (
        ["schema"] if "schema" in parts else [])


def restore_parts(params: dict[str, Any], directory: Path, manifest: dict[str, Any], kwargs: dict[str, Any], *,
                  server: str, keep_owners: bool = False) -> list[str]:
    """pg_restore the set into ``kwargs['dbname']``; the parts restored. BackupError with pg_restore's tail.

    ``keep_owners=False`` (a scratch copy): --no-owner --no-privileges, objects owned by the login user.
    A production restore keeps owners and grants. ``params``: ``jobs``, ``pg_bin_dir``.
    """
    order = restorable_parts(manifest)
    if not order:
        raise BackupError(msg=f"{manifest.get('backup_id')} has no full or schema dump to restore")
    parts = {part["part"]: part for part in manifest["parts"]}
    for name in order:
        part = parts[name]
        argv = [binary(params.get("pg_bin_dir"), "pg_restore"), "--no-password"]
        if not keep_owners:
            argv += ["--no-owner", "--no-privileges"]
        argv.append(f"--dbname={kwargs['dbname']}")
        if (params.get("jobs") or 1) > 1:
            argv.append(f"--jobs={params['jobs']}")
        argv.append(str(directory / part["path"]))
        proc = subprocess.run(argv, env=libpq_env(kwargs), capture_output=True, stdin=subprocess.DEVNULL, check=False)
        stderr = proc.stderr.decode(errors="replace")
        if proc.returncode != 0 or "error:" in stderr:
            done = f" ({', '.join(order[:order.index(name)])} restored before it)" if order.index(name) else ""
            raise BackupError(msg=f"pg_restore of {part['path']} into {kwargs['dbname']} on {server} "
                                  f"failed (exit {proc.returncode}){done}: {tail(stderr)}")
    return order


def run_restore(params: dict[str, Any], directory: Path, manifest: dict[str, Any], kwargs: dict[str, Any],
                checks: Checks, *, server: str) -> None:
    order = restorable_parts(manifest)
    if not order or order == ["critical_data"]:
        checks.add("restore", SKIPPED, "no full or schema dump in the set to restore into a scratch database")
        return
    try:
        restore_parts(params, directory, manifest, kwargs, server=server)
        with connect(kwargs) as conn:
            restored_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            checks.add("restore", OK, f"{' then '.join(order)} restored into scratch database {kwargs['dbname']} "
                                      f"on {server}", after={"database": kwargs["dbname"], "parts": order,
                                                             "bytes": restored_bytes})
            # A schema-only restore holds no rows: the manifest's counts describe data it did not load.
            if order != ["schema"]:
                checks.records.extend(comparison_records(compare_tables(conn, manifest)))
            for check in params.get("sql_checks") or []:
                run_sql_check(conn, check, checks)
    except (BackupError, PgError) as exc:
        checks.add("restore", FAILED, exc.msg)
    except psycopg.Error as exc:
        checks.add("restore", FAILED, f"on {server}: {first_line(exc)}")


@dataclass
class TableComparison:
    """One critical table of a restored copy against the manifest (pg.table_fingerprint against the snapshot's)."""

    table: str
    rows: int | None
    expected_rows: int | None
    checksum: str | None
    expected_checksum: str | None  # None: the set was taken before manifests carried checksums
    error: str | None = None  # the table could not be read in the copy

    def problems(self) -> list[str]:
        if self.error is not None:
            return [f"{self.table}: {self.error}"]
        found = []
        if self.rows != self.expected_rows:
            found.append(f"{self.table}: {self.rows} rows restored, manifest says {self.expected_rows}")
        if self.expected_checksum is not None and self.checksum != self.expected_checksum:
            found.append(f"{self.table}: checksum {self.checksum}, manifest says {self.expected_checksum}")
        return found


def compare_tables(conn: Any, manifest: dict[str, Any]) -> list[TableComparison]:
    """Each table of the manifest's ``row_counts``, counted and checksummed in the copy ``conn`` is on."""
    checksums = manifest.get("table_checksums") or {}
    comparisons = []
    for table, expected in sorted((manifest.get("row_counts") or {}).items()):
        schema, name = split_table_name(table)
        try:
            rows, checksum = table_fingerprint(conn, schema, name)
        except psycopg.Error as exc:
            comparisons.append(TableComparison(table, None, expected, None, checksums.get(table),
                                               error=f"cannot be read: {first_line(exc)}"))
            continue
        comparisons.append(TableComparison(table, rows, expected, checksum, checksums.get(table)))
    return comparisons


def comparison_records(comparisons: list[TableComparison]) -> list[dict[str, Any]]:
    """A ``row counts`` and a ``table checksums`` record (action verify); none for no tables.

    ``table checksums`` is unknown, not ok, for a set whose manifest has no checksums (taken before they
    were recorded): its rows were counted, their content was not compared.
    """
    if not comparisons:
        return []
    wrong_rows = [c for c in comparisons if c.error is not None or c.rows != c.expected_rows]
    counts = {c.table: c.rows for c in comparisons}
    if wrong_rows:
        detail = "; ".join(f"{c.table}: {c.error}" if c.error is not None else
                           f"{c.table}: {c.rows} rows restored, manifest says {c.expected_rows}" for c in wrong_rows)
        rows = make_record("row counts", "verify", FAILED, detail, after=counts)
    else:
        rows = make_record("row counts", "verify", OK, ", ".join(f"{c.table} {c.rows}" for c in comparisons),
                           after=counts)
    sums = {c.table: c.checksum for c in comparisons}
    unread = [c for c in comparisons if c.error is not None]
    differ = [c for c in comparisons if c.error is None and c.expected_checksum is not None
              and c.checksum != c.expected_checksum]
    unknown = [c.table for c in comparisons if c.expected_checksum is None]
    if unread or differ:
        detail = "; ".join([f"{c.table}: {c.error}" for c in unread] + [
            f"{c.table}: checksum {c.checksum}, manifest says {c.expected_checksum}" for c in differ])
        checksums = make_record("table checksums", "verify", FAILED, detail, after=sums)
    elif unknown:
        checksums = make_record("table checksums", "verify", UNKNOWN,
                                f"the manifest has no checksum of {', '.join(unknown)} (a set taken before "
                                "manifests recorded them): rows counted, content not compared", after=sums)
    else:
        checksums = make_record("table checksums", "verify", OK,
                                f"{len(comparisons)} table(s) match the manifest's checksums", after=sums)
    return [rows, checksums]


def sql_checks_argument_spec() -> dict[str, Any]:
    """The sql_checks option of every module that runs them on a restored copy (run_sql_check)."""
    return dict(sql_checks=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True),
        sql=dict(type="str", required=True),
        min=dict(type="int", default=1),
    )))


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
    if not params.get("path") and not params.get("backup_root") and not params.get("s3"):
        raise BackupError(msg="give path (a local backup set), backup_root (its newest set), or s3 (its bucket "
                              "and prefix)")
    if params.get("path") and params.get("backup_root"):
        raise BackupError(msg=f"give path {params['path']!r} or backup_root {params['backup_root']!r}, not both")
    if params.get("name") and not params.get("backup_root"):
        raise BackupError(msg=f"name {params['name']!r} picks the newest set under backup_root; backup_root is not set")
    if params.get("name"):
        check_name(params["name"])
    if params.get("backup_root"):
        check_root(params["backup_root"], create=False, allow_missing=True)
    if params.get("path") and not Path(params["path"]).is_absolute():
        raise BackupError(msg=f"path {params['path']!r} must be an absolute path")
    if params.get("max_age") is not None:
        parse_duration(params["max_age"], field_name="max_age")
    if params.get("restore_test") and not params.get("scratch_database"):
        raise BackupError(msg="restore_test needs scratch_database")
    for check in params.get("sql_checks") or []:
        if not check.get("name") or not check.get("sql"):
            raise BackupError(msg=f"sql_checks: each check needs a name and sql, got {check!r}")
    if params.get("jobs") is not None and params["jobs"] < 1:
        raise BackupError(msg=f"jobs {params['jobs']} must be at least 1")


def run_backup_verify(params: dict[str, Any], *, check_mode: bool, diff_mode: bool = False,
                      clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> dict[str, Any]:
    checks = Checks()
    try:
        validate(params)
        if params.get("backup_root"):
            root = check_root(params["backup_root"], create=False, allow_missing=True)
            newest = newest_set(root, params.get("name") or None)
            if newest is None:
                return no_set_result(root, params.get("name") or None)
            params = {**params, "path": newest.where}
            return verify(params, checks, check_mode=check_mode, clock=clock,
                          unfinished=newer_unfinished(root, params.get("name") or None, newest))
        return verify(params, checks, check_mode=check_mode, clock=clock)
    except MaintenanceError as exc:
        # A failed result keeps the records of the checks that ran before the fault.
        exc.details.update(records=checks.records, changed=False, state=FAILED)
        raise


def newer_unfinished(root: Path, name: str | None, newest: BackupRef) -> list[str]:
    """Sets without a manifest started after the newest complete one: a backup running now, or one that failed."""
    return [ref.set_id for ref in local_sets(root, name) if not ref.complete and ref.started > newest.started]


def no_set_result(root: Path, name: str | None) -> dict[str, Any]:
    """An estate with no complete set yet: said plainly, status unknown (never clean), not a failed task."""
    unfinished = [ref.set_id for ref in local_sets(root, name) if not ref.complete]
    of_name = f" named {name}" if name else ""
    if not root.exists():
        detail = f"no backup set exists yet under {root}: the directory does not exist"
    else:
        detail = f"no backup set{of_name} exists yet under {root}"
        if unfinished:
            detail += (f": {len(unfinished)} unfinished set(s) without a manifest (a backup running now, or "
                       f"failed), the newest {unfinished[-1]}")
    record = make_record(str(root), "verified", UNKNOWN, detail,
                         after={"verified": False, "backup_id": None, "path": str(root)})
    return {"changed": False, "msg": detail, "records": [record], "verified": False, "backup_id": None,
            "state": NO_SET, "set_path": None}


def verify(params: dict[str, Any], checks: Checks, *, check_mode: bool,
           clock: Callable[[], datetime], unfinished: list[str] | None = None) -> dict[str, Any]:
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
        manifest = read_checked_files(directory, checks, pg_bin_dir=params.get("pg_bin_dir")) if fetched else None
        if manifest is not None:
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
    if unfinished:
        detail += (f"; a newer set has no manifest ({', '.join(unfinished)}): a backup running now, or one that "
                   "failed")
    verified = status == OK
    records = [*checks.records, make_record(set_id or where, "verified", status, detail,
                                            after={"verified": verified, "backup_id": set_id, "path": where},
                                            seconds=time.monotonic() - begun)]
    if verified and manifest is not None and params.get("mark", True):
        records.append(write_mark(local, copy, prefix, manifest, checks, now=clock(), check_mode=check_mode))
    result: dict[str, Any] = {"changed": is_changed(records), "records": records, "verified": verified,
                              "backup_id": set_id,
                              # Not 'path': Ansible would add that file's attributes, its 'state' among them.
                              "set_path": str(local) if local is not None else None,
                              "state": {OK: VERIFIED_STATE, FAILED: FAILED}.get(status, UNKNOWN)}
    if checks.failed:
        result["msg"] = "backup NOT verified: " + "; ".join(f"{r['name']}: {r['detail']}" for r in checks.failed)
        result["failed"] = params.get("fail_on_unverified", True)
    elif not verified:
        result["msg"] = f"backup {set_id} {detail}"
    elif records[-1]["status"] == FAILED:
        result["msg"] = f"backup {set_id} verified, but {records[-1]['detail']}"
        result["failed"] = True
        result["state"] = FAILED
    else:
        result["msg"] = f"backup {set_id} verified" + (
            "; mark false: verified.json not written" if not params.get("mark", True) else
            "; check mode: verified.json not written" if check_mode else "")
    if unfinished and verified:
        result["msg"] += f"; a newer set has no manifest ({', '.join(unfinished)})"
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
    restore = checks.find("restore")
    if restore is not None and restore["status"] == OK:
        # What a production restore of this set may expect: pg_restore's time and the size it makes.
        mark["restore_seconds"] = restore["seconds"]
        mark["restored_bytes"] = (restore["after"] or {}).get("bytes")
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
