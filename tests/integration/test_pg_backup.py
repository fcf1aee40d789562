"""pg_backup and backup_verify against the harness's PostgreSQL, Redis and S3 (moto).

Every assertion reads what really is on disk, in S3 or in the server afterwards.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.pg import table_fingerprint
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import backup_verify, pg_backup
from lab.seed import STREAM_SCHEMA

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.s3]


def run(module, capsys, **args):
    """The module's result, failed or not; every result keeps the record contract (docs/records.md)."""
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        module.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=args.get("_ansible_check_mode", False)) == [], result
    return result.get("failed", False), result


def run_quietly(module, **args):
    """run() for module-scoped fixtures, which cannot use capsys."""
    import contextlib
    import io
    out = io.StringIO()
    with patch_module_args(args), pytest.raises(SystemExit), contextlib.redirect_stdout(out):
        module.main()
    result = json.loads(out.getvalue())
    assert result_problems(result) == [], result
    return result.get("failed", False), result


def pg_args(conninfo):
    return {"login_host": conninfo["host"], "login_port": conninfo["port"], "login_user": conninfo["user"],
            "login_password": conninfo["password"], "database": conninfo["dbname"]}


def s3_args(s3_server, bucket, prefix="database"):
    return {"bucket": bucket, "prefix": prefix, "endpoint_url": s3_server.endpoint_url,
            "access_key": s3_server.access_key, "secret_key": s3_server.secret_key, "region": s3_server.region}


SCHEMA = STREAM_SCHEMA.replace("CREATE EXTENSION IF NOT EXISTS pg_stat_statements;", "").replace(
    "200000", "20000").replace("300000", "30000")


@pytest.fixture(scope="module")
def trading_template(pg_server):
    """The Stream Systems tables (smaller than the lab's), loaded once; tests get copies of it."""
    name = f"tpl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(**pg_server.conninfo(name), autocommit=True) as conn:
        conn.execute(SCHEMA)
    yield name
    with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def trading(pg_server, trading_template):
    """A database of its own per test, copied from the template (seconds faster than loading it)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {trading_template}")
    yield pg_server.conninfo(name)
    with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def databases(pg_server):
    with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def rewrite_manifest(directory, change):
    path = Path(directory) / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def rehash(directory, name):
    """What a writer that checksums what it wrote (not what it meant to write) would record."""
    def change(manifest):
        for record in manifest["files"]:
            if record["name"] == name:
                record["bytes"] = (Path(directory) / name).stat().st_size
                record["sha256"] = sha256(Path(directory) / name)
    rewrite_manifest(directory, change)


def flip_byte(path, at=0.5):
    data = bytearray(Path(path).read_bytes())
    data[int(len(data) * at)] ^= 0xFF
    Path(path).write_bytes(bytes(data))


def check(result, name):
    """The record of one check of a backup_verify result."""
    return next(r for r in result["records"] if r["name"] == name and r["action"] == "verify")


def only(result, action, status=None):
    return [r for r in result["records"] if r["action"] == action and (status is None or r["status"] == status)]


def test_full_set_is_written_uploaded_verified_and_restore_tested(trading, pg_server, redis_server, s3_server,
                                                                  s3_bucket, tmp_path, capsys):
    config = tmp_path / "opt-config"
    (config / "nginx").mkdir(parents=True)
    (config / "app.yml").write_text("alarms: on\n")
    (config / "nginx" / "site.conf").write_text("server {}\n")
    failed, result = run(pg_backup, capsys, **pg_args(trading), name="streamsystems",
                         backup_root=str(tmp_path / "backup"),
                         parts=["full", "schema", "critical_data", "redis_rdb", "config"],
                         critical_tables=["trades", "positions"], config_paths=[str(config)],
                         # An inventory's Redis login dict as it is: db is accepted and not used.
                         redis={"login_host": redis_server.host, "login_port": redis_server.port,
                                "login_password": redis_server.password, "db": 3},
                         s3={**s3_args(s3_server, s3_bucket), "server_side_encryption": "AES256"})
    assert not failed, result
    directory = Path(result["path"])
    manifest = json.loads((directory / "manifest.json").read_text())
    assert result["manifest"] == manifest
    [backup], [upload] = only(result, "backup"), only(result, "upload")
    assert backup["name"] == result["backup_id"] and backup["status"] == "done" and backup["seconds"] > 0
    assert backup["after"]["bytes"] == sum(f["bytes"] for f in manifest["files"])
    assert backup["after"]["parts"] == {p["part"]: sum(f["bytes"] for f in manifest["files"] if f["name"] in p["files"])
                                        for p in manifest["parts"]}
    assert backup["after"]["row_counts"] == manifest["row_counts"]
    assert backup["after"]["s3_prefix"] == manifest["s3"]["prefix"] and manifest["s3"]["bucket"] == s3_bucket
    assert backup["detail"].startswith("full, schema, critical_data, redis_rdb, config: ")
    assert backup["detail"].endswith(f" in {directory}")
    assert upload["name"] == f"s3://{s3_bucket}/{manifest['s3']['prefix']}" and upload["status"] == "done"
    assert upload["after"]["objects"] == len(manifest["files"]) + 1
    # The manifest's checksums are those of the bytes on disk.
    for record in manifest["files"]:
        assert (directory / record["name"]).stat().st_size == record["bytes"]
        assert sha256(directory / record["name"]) == record["sha256"]
    with psycopg.connect(**trading) as conn:
        assert manifest["row_counts"] == {
            "public.trades": conn.execute("SELECT count(*) FROM trades").fetchone()[0],
            "public.positions": conn.execute("SELECT count(*) FROM positions").fetchone()[0]}
    assert manifest["postgres"]["server_version"].startswith("15")
    # The checksums are the source's, as any session prints its rows: the same under other settings.
    assert set(manifest["table_checksums"]) == set(manifest["row_counts"])
    with psycopg.connect(**trading, autocommit=True) as conn:
        conn.execute("SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Pacific/Auckland'; SET extra_float_digits = 0; "
                     "SET bytea_output = 'escape'; SET IntervalStyle = 'iso_8601'")
        for table, checksum in manifest["table_checksums"].items():
            schema, name = table.split(".")
            assert table_fingerprint(conn, schema, name) == (manifest["row_counts"][table], checksum)
        assert conn.execute("SHOW DateStyle").fetchone()[0] == "SQL, DMY"  # the session keeps its own
        identifier = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]
    assert manifest["postgres"]["system_identifier"] == str(identifier)
    assert manifest["postgres"]["server"] == f"{trading['host']}:{trading['port']}"
    snapshot_at = datetime.fromisoformat(manifest["postgres"]["snapshot_at"])
    assert snapshot_at.utcoffset() == timedelta(0)
    assert datetime.fromisoformat(manifest["started_at"]) - timedelta(seconds=5) <= snapshot_at \
        <= datetime.fromisoformat(manifest["finished_at"])
    assert {p["part"] for p in manifest["parts"]} == {"full", "schema", "critical_data", "redis_rdb", "config"}
    # S3 holds every file and the manifest, each with its sha256, encrypted.
    import boto3
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url)
    prefix = manifest["s3"]["prefix"]
    assert prefix.startswith("database/") and prefix.endswith(f"/{result['backup_id']}/")
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=s3_bucket, Prefix=prefix)["Contents"]}
    assert keys == {prefix + f["name"] for f in manifest["files"]} | {prefix + "manifest.json"}
    head = s3.head_object(Bucket=s3_bucket, Key=prefix + "full.dump")
    assert head["Metadata"]["sha256"] == sha256(directory / "full.dump")
    assert head["ServerSideEncryption"] == "AES256"

    before = databases(pg_server)
    # The same s3 options as the backup (the estate's prefix): the set's manifest says where its copy is.
    failed, result = run(backup_verify, capsys, **pg_args(pg_server.conninfo()), path=str(directory),
                         s3={**s3_args(s3_server, s3_bucket), "server_side_encryption": "AES256"}, max_age="1h",
                         restore_test=True, scratch_database="verify_scratch",
                         sql_checks=[{"name": "trades of the last day", "min": 100,
                                      "sql": "SELECT count(*) FROM trades WHERE created_at > now() - interval '1 day'"}])
    assert not failed, result
    assert result["verified"] is True and result["changed"] is True and result["backup_id"] == manifest["backup_id"]
    assert [(r["name"], r["action"]) for r in result["records"]] == [
        ("manifest", "verify"), ("checksums", "verify"), ("archive full", "verify"), ("archive schema", "verify"),
        ("archive critical_data", "verify"), ("archive redis_rdb", "verify"), ("archive config", "verify"),
        ("age", "verify"), ("s3 copy", "verify"), ("restore", "verify"), ("row counts", "verify"),
        ("table checksums", "verify"), ("sql trades of the last day", "verify"), (manifest["backup_id"], "verified"), (manifest["backup_id"], "mark")]
    assert all(r["status"] == "ok" for r in only(result, "verify")), result["records"]
    assert check(result, "s3 copy")["detail"].endswith(f"in s3://{s3_bucket}/{prefix} match")
    assert check(result, "restore")["seconds"] > 0
    [verdict] = only(result, "verified")
    assert verdict["status"] == "ok" and verdict["after"] == {"verified": True, "backup_id": manifest["backup_id"],
                                                              "path": str(directory)}
    assert only(result, "mark")[0]["status"] == "done"
    assert databases(pg_server) == before  # the scratch database is gone
    mark = json.loads((directory / "verified.json").read_text())
    assert mark["restore_seconds"] == check(result, "restore")["seconds"]
    with psycopg.connect(**pg_server.conninfo(trading["dbname"])) as conn:
        # The restored copy is about as large as its source (no bloat, same rows).
        assert mark["restored_bytes"] > conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 4
    assert check(result, "table checksums")["after"] == manifest["table_checksums"]
    assert "verified.json" in {item["Key"].rsplit("/", 1)[1]
                               for item in s3.list_objects_v2(Bucket=s3_bucket, Prefix=prefix)["Contents"]}


def test_directory_format_with_jobs_restores_with_the_counted_rows(trading, pg_server, tmp_path, capsys):
    failed, result = run(pg_backup, capsys, **pg_args(trading), backup_root=str(tmp_path), format="directory",
                         jobs=2, parts=["full"], critical_tables=["public.trades"], compress_level=1)
    assert not failed, result
    directory = Path(result["path"])
    assert (directory / "full.dir" / "toc.dat").is_file()
    failed, result = run(backup_verify, capsys, **pg_args(pg_server.conninfo()), path=str(directory),
                         restore_test=True, scratch_database="verify_dir", jobs=2)
    assert not failed and result["verified"], result["records"]
    assert check(result, "row counts")["detail"] == "public.trades 20000"
    assert "verify_dir" not in databases(pg_server)


def test_check_mode_writes_nothing_and_names_the_set(trading, tmp_path, capsys):
    root = tmp_path / "root"
    failed, result = run(pg_backup, capsys, **pg_args(trading), backup_root=str(root),
                         critical_tables=["trades"], _ansible_check_mode=True)
    assert not failed and result["changed"] is True, result
    [backup] = result["records"]
    assert backup["status"] == "planned" and backup["name"] == result["backup_id"]
    assert backup["after"]["row_counts"] == {"public.trades": 20000} and backup["after"]["bytes"] is None
    assert backup["detail"] == 'would back up parts full; rows {"public.trades": 20000}'
    assert "manifest" not in result
    assert not root.exists()


@pytest.fixture(scope="module")
def pristine_set(pg_server, trading_template, redis_server, tmp_path_factory):
    import redis
    client = redis.Redis(host=redis_server.host, port=redis_server.port, password=redis_server.password)
    client.set("session:1", "x" * 5000)
    client.close()
    root = tmp_path_factory.mktemp("pristine")
    config = root / "config"
    config.mkdir()
    (config / "app.yml").write_text("x: 1\n" * 2000)
    failed, result = run_quietly(pg_backup, **pg_args(pg_server.conninfo(trading_template)),
                                 backup_root=str(root / "backup"), parts=["full", "redis_rdb", "config"],
                                 critical_tables=["trades"], config_paths=[str(config)],
                                 redis={"login_host": redis_server.host, "login_port": redis_server.port,
                                        "login_password": redis_server.password})
    assert not failed, result
    return Path(result["path"])


@pytest.fixture
def good_set(pristine_set, tmp_path):
    """A copy of one good set per test, to damage."""
    return Path(shutil.copytree(pristine_set, tmp_path / pristine_set.name))


DAMAGE = {
    # bit rot or a bad copy: same size, one byte different
    "flipped byte in the dump": (lambda d: flip_byte(d / "full.dump"), "checksums", "sha256"),
    # an upload or a copy cut short
    "truncated dump": (lambda d: os.truncate(d / "full.dump", (d / "full.dump").stat().st_size // 2),
                       "checksums", "bytes"),
    # a disk that filled up while pg_dump wrote, checksummed as written: only reading the archive finds it
    "dump cut short but checksummed": (
        lambda d: (os.truncate(d / "full.dump", (d / "full.dump").stat().st_size * 3 // 5), rehash(d, "full.dump")),
        "archive full", "pg_restore cannot read"),
    "corrupt data block, checksummed": (
        lambda d: (flip_byte(d / "full.dump", 0.7), rehash(d, "full.dump")), "archive full", "full.dump"),
    "config tar corrupted, checksummed": (
        lambda d: (flip_byte(d / "config.tar.gz", 0.5), rehash(d, "config.tar.gz")), "archive config", "config.tar.gz"),
    "rdb corrupted, checksummed": (
        lambda d: (flip_byte(d / "redis.rdb", 0.95), rehash(d, "redis.rdb")), "archive redis_rdb", "redis-check-rdb"),
    "manifest missing": (lambda d: (d / "manifest.json").unlink(), "manifest", "does not exist"),
    "manifest cut short": (lambda d: os.truncate(d / "manifest.json", 100), "manifest", "cannot be read"),
    "a listed file missing": (lambda d: (d / "redis.rdb").unlink(), "manifest", "missing: redis.rdb"),
    "unfinished run": (lambda d: rewrite_manifest(d, lambda m: m.update(complete=False)), "manifest",
                       "not marked complete"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_copies_are_caught_with_a_reason(good_set, damage, capsys):
    harm, failing_check, reason = DAMAGE[damage]
    harm(good_set)
    failed, result = run(backup_verify, capsys, path=str(good_set))
    assert failed and result["verified"] is False, result["records"]
    record = check(result, failing_check)
    assert record["status"] == "failed" and reason in record["detail"], record
    assert reason in result["msg"]
    assert only(result, "verified")[0]["status"] == "failed" and not only(result, "mark")
    assert result["changed"] is False
    assert not (good_set / "verified.json").exists()


def test_a_set_that_was_not_uploaded_fails_its_s3_copy_check(good_set, s3_server, s3_bucket, capsys):
    failed, result = run(backup_verify, capsys, path=str(good_set), s3=s3_args(s3_server, s3_bucket))
    assert failed and check(result, "s3 copy")["status"] == "failed"
    assert check(result, "s3 copy")["detail"] == "the set was not uploaded (its manifest has no s3 location)"
    assert not (good_set / "verified.json").exists()


def test_check_mode_verifies_without_marking(good_set, capsys):
    failed, result = run(backup_verify, capsys, path=str(good_set), _ansible_check_mode=True)
    assert not failed and result["verified"] is True and result["changed"] is True
    assert only(result, "mark")[0]["status"] == "planned"
    assert not (good_set / "verified.json").exists()
    failed, result = run(backup_verify, capsys, path=str(good_set), restore_test=True, _ansible_check_mode=True)
    assert not failed and result["verified"] is False and result["changed"] is False
    assert check(result, "restore")["status"] == "skipped" and only(result, "verified")[0]["status"] == "unknown"


def test_restored_rows_that_differ_from_the_manifest_fail(good_set, pg_server, capsys):
    rewrite_manifest(good_set, lambda m: m["row_counts"].update({"public.trades": 20001}))
    failed, result = run(backup_verify, capsys, **pg_args(pg_server.conninfo()), path=str(good_set),
                         restore_test=True, scratch_database="verify_rows")
    assert failed and "public.trades: 20000 rows restored, manifest says 20001" in check(result, "row counts")["detail"]
    assert "verify_rows" not in databases(pg_server)


def test_too_old_is_not_verified(good_set, capsys):
    time.sleep(1.1)
    failed, result = run(backup_verify, capsys, path=str(good_set), max_age="1s")
    assert failed and check(result, "age")["status"] == "failed" and "more than max_age" in result["msg"]


def test_restore_refuses_the_source_and_foreign_databases(good_set, pg_server, capsys):
    source = json.loads((good_set / "manifest.json").read_text())["postgres"]["database"]
    failed, result = run(backup_verify, capsys, **pg_args(pg_server.conninfo()), path=str(good_set),
                         restore_test=True, scratch_database=source)
    assert failed and "is the backup's source database" in check(result, "restore")["detail"]
    other = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {other}")
    try:
        failed, result = run(backup_verify, capsys, **pg_args(pg_server.conninfo()), path=str(good_set),
                             restore_test=True, scratch_database=other)
        assert failed and "was not created by streamops.maintenance" in check(result, "restore")["detail"]
        assert other in databases(pg_server)
    finally:
        with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {other}")
    with psycopg.connect(**pg_server.conninfo(source)) as conn:
        assert conn.execute("SELECT count(*) FROM trades").fetchone()[0] == 20000


def test_a_restore_that_fails_still_drops_the_scratch_database(trading, pg_server, tmp_path, capsys):
    # The dump holds an extension only a superuser may create: a plain role's restore fails half-way.
    with psycopg.connect(**trading, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    failed, backup = run(pg_backup, capsys, **pg_args(trading), backup_root=str(tmp_path))
    assert not failed, backup
    role = f"weak_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'weak' CREATEDB")
    try:
        args = {**pg_args(pg_server.conninfo()), "login_user": role, "login_password": "weak"}
        failed, result = run(backup_verify, capsys, **args, path=backup["path"], restore_test=True,
                             scratch_database="verify_weak")
        assert failed and check(result, "restore")["status"] == "failed", result["records"]
        assert "pg_stat_statements" in check(result, "restore")["detail"]
        assert "verify_weak" not in databases(pg_server)
        assert not (Path(backup["path"]) / "verified.json").exists()
    finally:
        with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")


def test_s3_only_verification_and_a_differing_s3_copy(trading, s3_server, s3_bucket, tmp_path, capsys):
    failed, result = run(pg_backup, capsys, **pg_args(trading), backup_root=str(tmp_path),
                         s3=s3_args(s3_server, s3_bucket, "nightly"), critical_tables=["trades"])
    assert not failed, result
    prefix = result["manifest"]["s3"]["prefix"]
    failed, verified = run(backup_verify, capsys, s3=s3_args(s3_server, s3_bucket, prefix), max_age="1h")
    assert not failed and verified["verified"], verified["records"]
    assert only(verified, "verified")[0]["after"]["path"] == f"s3://{s3_bucket}/{prefix}"
    import boto3
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url)
    body = bytearray((Path(result["path"]) / "full.dump").read_bytes())
    body[len(body) // 2] ^= 0xFF
    s3.put_object(Bucket=s3_bucket, Key=prefix + "full.dump", Body=bytes(body))
    failed, verified = run(backup_verify, capsys, path=result["path"], s3=s3_args(s3_server, s3_bucket, "nightly"))
    assert failed and "full.dump: S3 copy differs" in check(verified, "s3 copy")["detail"]
    failed, verified = run(backup_verify, capsys, s3=s3_args(s3_server, s3_bucket, prefix))
    assert failed and check(verified, "checksums")["status"] == "failed"


def test_pg_dump_failure_removes_the_partial_set_and_keeps_the_earlier_one(trading, pg_server, tmp_path, capsys):
    root = tmp_path / "backup"
    failed, first = run(pg_backup, capsys, **pg_args(trading), backup_root=str(root), name="trading")
    assert not failed
    time.sleep(1.1)  # one set per second
    role = f"reader_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(**trading, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'reader-secret-7'")
        conn.execute(f"GRANT SELECT ON trades TO {role}")  # and nothing on the other tables
    try:
        failed, result = run(pg_backup, capsys, **{**pg_args(trading), "login_user": role, "login_password": "reader-secret-7"},
                             backup_root=str(root), name="trading", parts=["full"])
        assert failed and result["step"] == "pg_dump full" and "permission denied" in result["msg"], result
        assert "partial files were removed" in result["msg"]
        assert [(r["action"], r["status"]) for r in result["records"]] == [("backup", "failed")]
        assert sorted(p.name for p in root.iterdir()) == [first["backup_id"]]
        assert sha256(Path(first["path"]) / "full.dump") == first["manifest"]["files"][0]["sha256"]
    finally:
        with psycopg.connect(**trading, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_a_missing_critical_table_fails_before_writing(trading, tmp_path, capsys):
    failed, result = run(pg_backup, capsys, **pg_args(trading), backup_root=str(tmp_path),
                         parts=["critical_data"], critical_tables=["trades", "tardes"])
    assert failed and "critical table(s) not found" in result["msg"] and "public.tardes" in result["msg"]
    assert "nothing was written" in result["msg"] and result["changed"] is False
    assert list(tmp_path.iterdir()) == []


def test_s3_failure_leaves_no_object_and_keeps_the_local_set(trading, s3_server, s3_env, tmp_path, capsys):
    failed, result = run(pg_backup, capsys, **pg_args(trading), backup_root=str(tmp_path),
                         s3=s3_args(s3_server, f"no-such-bucket-{uuid.uuid4().hex[:6]}"))
    assert failed and result["step"] == "upload" and "NoSuchBucket" in result["msg"], result["msg"]
    assert "local backup" in result["msg"] and (Path(result["path"]) / "manifest.json").is_file()
    assert [(r["action"], r["status"]) for r in result["records"]] == [("backup", "done"), ("upload", "failed")]
    assert result["changed"] is True  # the local set was written


def test_disk_full_removes_the_partial_files(trading, tmp_path, capsys):
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        failed, result = run(pg_backup, capsys, **pg_args(trading), backup_root=str(small), compress_level=0)
        assert failed and "No space left on device" in result["msg"] and result["step"] == "pg_dump full"
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def make_set(root, name, stamp, *, complete=True, verified=False):
    directory = root / f"{name}-{stamp}"
    directory.mkdir()
    (directory / "full.dump").write_bytes(b"PGDMP")
    if complete:
        (directory / "manifest.json").write_text("{}")
    if verified:
        (directory / "verified.json").write_text("{}")
    return directory


def test_retention_keeps_what_it_must_and_never_leaves_the_root(trading, tmp_path, capsys):
    root = tmp_path / "backup"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("x")
    # 40 nightly sets; the only verified one is old.
    from datetime import datetime, timedelta, timezone
    newest = datetime.now(timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0)
    stamps = [(newest - timedelta(days=n)).strftime("%Y%m%dT%H%M%SZ") for n in range(40)]
    for number, stamp in enumerate(stamps):
        make_set(root, "trading", stamp, verified=(number == 30))
    make_set(root, "trading", (newest - timedelta(days=50)).strftime("%Y%m%dT%H%M%SZ"), complete=False)
    (root / "trading-20990101T000000Z-notes").mkdir()  # not a set name
    (root / "other-20200101T000000Z").mkdir()  # another estate's set
    (root / f"trading-{(newest - timedelta(days=60)).strftime('%Y%m%dT%H%M%SZ')}").symlink_to(outside)
    policy = {"keep_last": 3, "keep_daily": 5, "keep_weekly": 0, "keep_monthly": 0}
    failed, planned = run(pg_backup, capsys, operation="retention", name="trading", backup_root=str(root),
                          retention=policy, _ansible_check_mode=True)
    assert not failed and len(only(planned, "retention", "planned")) == 35
    assert planned["msg"] == "retention of trading: kept 6, would delete 35 (local)"
    assert len(list(root.iterdir())) == 44  # check mode deleted nothing
    failed, result = run(pg_backup, capsys, operation="retention", name="trading", backup_root=str(root),
                         retention=policy)
    assert not failed and result["changed"]
    left = sorted(p.name for p in root.iterdir())
    kept_sets = [f"trading-{stamp}" for stamp in stamps[:5]] + [f"trading-{stamps[30]}"]
    link = f"trading-{(newest - timedelta(days=60)).strftime('%Y%m%dT%H%M%SZ')}"
    assert sorted(kept_sets + [link]) == sorted(n for n in left if n.startswith("trading-2") and len(n) == 24)
    assert (root / link).is_symlink()  # never followed, never removed
    assert "trading-20990101T000000Z-notes" in left and "other-20200101T000000Z" in left
    assert (outside / "precious").read_text() == "x" and root.is_dir()
    reasons = {r["name"]: r["detail"] for r in only(result, "retention", "unchanged")}
    assert reasons[f"trading-{stamps[30]}"] == "kept: newest verified"
    assert reasons[f"trading-{stamps[0]}"].startswith("kept: last 3, daily ")
    assert sorted(r["name"] for r in only(result, "retention", "done")) == sorted(
        r["name"] for r in only(planned, "retention", "planned"))
    unfinished = f"trading-{(newest - timedelta(days=50)).strftime('%Y%m%dT%H%M%SZ')}"
    assert next(r for r in result["records"] if r["name"] == unfinished)["detail"] == (
        f"deleted {root.resolve() / unfinished}: unfinished (no manifest), older than 1 day")
    # Run again: nothing more to delete.
    failed, again = run(pg_backup, capsys, operation="retention", name="trading", backup_root=str(root),
                        retention=policy)
    assert not failed and again["changed"] is False and not only(again, "retention", "done")
    assert again["msg"] == "retention of trading: kept 6, deleted 0 (local)"


def test_s3_retention_deletes_only_whole_old_sets_of_its_name(trading, s3_server, s3_bucket, tmp_path, capsys):
    import boto3
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url)
    for day in range(1, 6):
        prefix = f"db/2026/10/{day:02d}/trading-202610{day:02d}T020000Z/"
        s3.put_object(Bucket=s3_bucket, Key=prefix + "full.dump", Body=b"PGDMP")
        s3.put_object(Bucket=s3_bucket, Key=prefix + "manifest.json", Body=b"{}")
    s3.put_object(Bucket=s3_bucket, Key="db/2026/10/01/trading-20261001T020000Z/verified.json", Body=b"{}")
    s3.put_object(Bucket=s3_bucket, Key="db/README", Body=b"keep me")
    failed, result = run(pg_backup, capsys, operation="retention", name="trading", backup_root=str(tmp_path),
                         s3=s3_args(s3_server, s3_bucket, "db"),
                         retention={"keep_last": 2, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0})
    assert not failed, result
    left = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=s3_bucket)["Contents"])
    expected = ["db/README"]
    expected += [f"db/2026/10/{d:02d}/trading-202610{d:02d}T020000Z/{f}" for d in (4, 5)
                 for f in ("full.dump", "manifest.json")]
    expected += [f"db/2026/10/01/trading-20261001T020000Z/{f}" for f in ("full.dump", "manifest.json", "verified.json")]
    assert left == sorted(expected)
    s3_records = [r for r in result["records"] if r["after"]["location"] == "s3"]
    assert sorted((r["name"], r["status"]) for r in s3_records) == [
        ("trading-20261001T020000Z", "unchanged"), ("trading-20261002T020000Z", "done"),
        ("trading-20261003T020000Z", "done"), ("trading-20261004T020000Z", "unchanged"),
        ("trading-20261005T020000Z", "unchanged")]
    assert result["msg"].endswith("kept 3, deleted 2 (s3)")


def test_no_password_in_results_or_command_lines(trading, tmp_path, capsys):
    failed, result = run(pg_backup, capsys, **pg_args(trading), backup_root=str(tmp_path))
    assert not failed
    assert trading["password"] not in json.dumps(result)
    assert gzip  # the module never shells out through gzip; pg_dump compresses


@pytest.mark.redis
@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_redis_rdb_is_exactly_the_snapshot_either_way_redis_sends_it(diskless, tmp_path, capsys):
    from lab.harness.redis import RedisServer
    import redis
    server = RedisServer(password="rdb-secret-42",
                         extra={"repl-diskless-sync": diskless, "repl-diskless-sync-delay": "0"})
    info = server.start()
    try:
        client = redis.Redis(host=info.host, port=info.port, password=info.password)
        client.mset({f"session:{n}": f"user-{n}" for n in range(500)})
        # The Redis modules' option names and aliases (an inventory's redis_login), db included and not used.
        failed, result = run(pg_backup, capsys, name="vitalstream-redis", backup_root=str(tmp_path),
                             parts=["redis_rdb"],
                             redis={"host": info.host, "port": info.port, "password": info.password, "db": 5})
        assert not failed, result
        rdb = Path(result["path"]) / "redis.rdb"
        data = rdb.read_bytes()
        # Ends with the EOF opcode and the 8-byte checksum: no transfer mark left behind.
        assert data.startswith(b"REDIS") and data[-9] == 0xFF
        check_rdb = subprocess.run(["redis-check-rdb", str(rdb)], capture_output=True, text=True, check=False)
        assert check_rdb.returncode == 0 and "500 keys read" in check_rdb.stdout
        assert info.password not in json.dumps(result)
    finally:
        server.stop()


def test_a_passfile_is_enough_and_no_password_reaches_a_command_line(trading, tmp_path, monkeypatch, capsys):
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{trading['host']}:{trading['port']}:*:{trading['user']}:{trading['password']}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    seen = []
    real_popen = subprocess.Popen

    def spy(argv, *args, **kwargs):
        seen.append(list(argv))
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    args = {key: value for key, value in pg_args(trading).items() if key != "login_password"}
    failed, result = run(pg_backup, capsys, **args, backup_root=str(tmp_path / "b"), parts=["full", "schema"])
    assert not failed, result
    assert len(seen) == 2 and all(trading["password"] not in " ".join(argv) for argv in seen)


def test_schema_plus_critical_data_restores_and_data_only_is_not_restored_alone(trading, pg_server, tmp_path,
                                                                                capsys):
    failed, both = run(pg_backup, capsys, **pg_args(trading), backup_root=str(tmp_path / "a"),
                       parts=["schema", "critical_data"], critical_tables=["trades", "positions"])
    assert not failed, both
    failed, result = run(backup_verify, capsys, **pg_args(pg_server.conninfo()), path=both["path"],
                         restore_test=True, scratch_database="verify_parts")
    assert not failed and result["verified"], result["records"]
    assert check(result, "restore")["detail"].startswith("schema then critical_data restored")
    assert check(result, "row counts")["detail"] == "public.positions 20000, public.trades 20000"
    failed, data_only = run(pg_backup, capsys, **pg_args(trading), backup_root=str(tmp_path / "b"),
                            parts=["critical_data"], critical_tables=["trades"])
    assert not failed, data_only
    failed, result = run(backup_verify, capsys, **pg_args(pg_server.conninfo()), path=data_only["path"],
                         restore_test=True, scratch_database="verify_parts")
    assert not failed and check(result, "restore")["status"] == "skipped" and result["verified"] is False
    assert only(result, "verified")[0]["status"] == "unknown" and result["changed"] is False
    assert "not all ran" in result["msg"] and not (Path(data_only["path"]) / "verified.json").exists()
    assert "verify_parts" not in databases(pg_server)
