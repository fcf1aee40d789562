"""Unit tests of the backup logic that needs no service: retention, names, argv, fragments, records."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from ansible_collections.streamops.maintenance.plugins.doc_fragments.s3 import ModuleDocFragment
from ansible_collections.streamops.maintenance.plugins.module_utils import files
from ansible_collections.streamops.maintenance.plugins.module_utils.backup_set import (
    BackupError,
    BackupRef,
    RetentionPolicy,
    backup_id,
    check_name,
    check_root,
    copy_hashing,
    plan_retention,
    retention_policy,
    set_dir_in_root,
    started_of,
    write_json_atomically,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.backup_verify import (
    NOT_UPLOADED,
    Checks,
    copy_location,
    verdict,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_backup import (
    dump_errors,
    libpq_env,
    pg_dump_argv,
    run_pg_backup,
    validate,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.module_utils.redis_conn import redis_connection_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.redis_rdb import rdb_tail, redis_cli_argv
from ansible_collections.streamops.maintenance.plugins.module_utils.s3 import S3Store, clean_prefix, s3_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.window import format_duration, parse_duration
from ansible_collections.streamops.maintenance.plugins.modules import pg_backup as pg_backup_module

REPO = Path(__file__).resolve().parents[4]

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)


def _shape(options):
    return {name: {"type": o.get("type", "str"), "default": o.get("default"), "choices": o.get("choices"),
                   "required": o.get("required", False), "aliases": sorted(o.get("aliases", []))}
            for name, o in options.items()}


def test_s3_fragment_matches_argument_spec():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]["s3"]["suboptions"]
    assert _shape(documented) == _shape(s3_argument_spec()["s3"]["options"])


def test_pg_backup_redis_option_is_the_redis_connection():
    """The redis dict takes the Redis modules' connection options, so an inventory's redis_login fits as is."""
    documented = yaml.safe_load(pg_backup_module.DOCUMENTATION)["options"]["redis"]["suboptions"]
    assert _shape(documented) == _shape(redis_connection_argument_spec())
    assert pg_backup_module.argument_spec()["redis"]["options"] == redis_connection_argument_spec()


def test_redis_cli_gets_the_password_in_its_environment_only():
    argv, env = redis_cli_argv("redis-cli", {"login_host": "cache", "login_port": 6380, "login_user": "backup",
                                             "login_password": "rdb-s3cret", "db": 3, "tls": True,
                                             "validate_certs": False, "ca_certs": "/etc/ca.pem"})
    assert argv == ["redis-cli", "--no-auth-warning", "-h", "cache", "-p", "6380", "--user", "backup", "--tls",
                    "--insecure", "--cacert", "/etc/ca.pem"]
    assert env["REDISCLI_AUTH"] == "rdb-s3cret" and "rdb-s3cret" not in " ".join(argv)
    assert "-n" not in argv  # the RDB is the whole server, db is not used


def nightly(days, *, verified=(), incomplete=()):
    return [BackupRef(f"db-{(NOW - timedelta(days=d)).strftime('%Y%m%dT%H%M%SZ')}",
                      NOW - timedelta(days=d), d not in incomplete, d in verified, "local", f"/b/{d}")
            for d in range(days)]


def kept_days(keep):
    return sorted((NOW - ref.started).days for ref in keep)


def test_gfs_keeps_days_weeks_and_months():
    keep, delete = plan_retention(nightly(400), RetentionPolicy(keep_last=2, keep_daily=7, keep_weekly=4,
                                                                keep_monthly=12), NOW)
    days = kept_days(keep)
    assert days[:7] == [0, 1, 2, 3, 4, 5, 6]
    assert len(days) <= 7 + 4 + 12 and len(keep) + len(delete) == 400
    months = {(NOW - timedelta(days=d)).strftime("%Y-%m") for d in days}
    assert len(months) == 12


def test_the_newest_verified_set_survives_any_policy():
    keep, delete = plan_retention(nightly(30, verified={20, 25}), RetentionPolicy(
        keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0), NOW)
    assert kept_days(keep) == [0, 20] and len(delete) == 28
    assert "newest verified" in next(r for r in keep if (NOW - r.started).days == 20).reasons


def test_verified_elsewhere_counts_and_everything_zero_still_keeps_the_newest():
    refs = nightly(5)
    keep, delete = plan_retention(refs, RetentionPolicy(0, 0, 0, 0), NOW, verified_ids={refs[3].set_id})
    assert len(delete) == 3
    assert kept_days(keep) == [0, 3]


def test_unfinished_sets_are_kept_while_they_may_be_running():
    refs = nightly(3, incomplete={0, 2})
    refs[0].started = NOW - timedelta(hours=1)
    keep, delete = plan_retention(refs, RetentionPolicy(keep_last=5), NOW)
    assert {r.set_id for r in keep} == {refs[0].set_id, refs[1].set_id}
    assert [r.set_id for r in delete] == [refs[2].set_id]


def test_keep_within_keeps_by_age():
    keep, delete = plan_retention(nightly(10), RetentionPolicy(0, 0, 0, 0, keep_within=timedelta(days=3)), NOW)
    assert len(delete) == 6
    assert kept_days(keep) == [0, 1, 2, 3]


@pytest.mark.parametrize("raw, message", [
    ({"keep_dayly": 3}, "unknown key(s) keep_dayly"),
    ({"keep_last": -1}, "retention.keep_last -1"),
    ({"keep_within": "soon"}, "retention.keep_within 'soon'"),
])
def test_bad_retention_is_named(raw, message):
    with pytest.raises(Exception) as caught:
        retention_policy(raw, parse_duration)
    assert message in caught.value.msg


def test_names_and_ids_round_trip():
    started = datetime(2026, 11, 23, 2, 0, 5, tzinfo=timezone.utc)
    assert backup_id("trading", started) == "trading-20261123T020005Z"
    assert started_of("trading", "trading-20261123T020005Z") == started
    assert started_of("trading", "trading-x-20261123T020005Z") is None
    for bad in ("", "../etc", "a/b", "-x", "x" * 101):
        with pytest.raises(BackupError):
            check_name(bad)


def test_root_and_set_paths_stay_inside(tmp_path):
    for bad in ("/", "relative/dir", ""):
        with pytest.raises(BackupError):
            check_root(bad, create=False)
    root = check_root(str(tmp_path), create=False)
    (root / "db-20261123T020000Z").symlink_to("/etc")
    with pytest.raises(BackupError, match="not a directory directly inside"):
        set_dir_in_root(root, "db-20261123T020000Z")
    with pytest.raises(BackupError):
        set_dir_in_root(root, "..")


def test_copy_hashing_holds_back_the_tail():
    target = io.BytesIO()
    writer, tail = copy_hashing(io.BytesIO(b"REDIS0010" + b"x" * 100 + b"M" * 40), target, hold_back=40)
    assert tail == b"M" * 40 and target.getvalue() == b"REDIS0010" + b"x" * 100 and writer.size == 109
    assert rdb_tail("writing bytes of bulk transfer until EOF marker to '-'", tail) == b""
    assert rdb_tail("SYNC sent to master, writing 149 bytes to '-'", tail) == tail


def test_pg_dump_argv_quotes_tables_and_never_holds_a_password():
    argv = pg_dump_argv("pg_dump", "critical_data", fmt="custom", jobs=1, compress=3, snapshot="0000-1",
                        tables=[("public", "trades"), ("risk", "positions")], output=None)
    assert argv == ["pg_dump", "--no-password", "--format=custom", "--snapshot=0000-1", "--compress=3",
                    "--data-only", '--table="public"."trades"', '--table="risk"."positions"']
    env = libpq_env({"host": "db", "port": 5433, "user": "u", "password": "s3cret", "dbname": "trading"})
    assert env["PGPASSWORD"] == "s3cret" and env["PGHOST"] == "db" and env["PGDATABASE"] == "trading"


def test_dump_errors_are_found_even_with_exit_zero():
    stderr = "pg_dump: warning: there are circular foreign-key constraints\npg_dump: error: query failed: boom\n"
    assert dump_errors(stderr) == ["pg_dump: error: query failed: boom"]


@pytest.mark.parametrize("params, message", [
    ({"parts": ["critical_data"], "database": "d"}, "critical_tables is empty"),
    ({"parts": ["full"], "format": "custom", "jobs": 4, "database": "d"}, "jobs 4 needs format: directory"),
    ({"parts": ["full"], "database": "d", "compress_level": 11}, "compress_level 11"),
    ({"parts": ["redis_rdb"], "name": "x"}, "redis connection option is not set"),
    ({"parts": ["config"], "name": "x", "config_paths": ["/no/such/dir"]}, "/no/such/dir"),
    ({"parts": ["full"]}, "database is required"),
    ({"parts": ["full"], "database": "d", "critical_tables": ["bad name"]}, "'bad name' is not a plain identifier"),
    # 0 is refused, not read as 1 (as `jobs or 1` would).
    ({"parts": ["full"], "format": "directory", "database": "d", "jobs": 0}, "jobs 0 must be at least 1"),
])
def test_bad_backup_input_is_named(params, message):
    with pytest.raises(Exception) as caught:
        validate({"operation": "backup", **params})
    assert message in caught.value.msg


def test_s3_prefix_cannot_climb():
    assert clean_prefix("/database//nightly/") == "database/nightly"
    with pytest.raises(BackupError):
        clean_prefix("database/../other")


def test_hashing_matches_hashlib(tmp_path):
    import hashlib
    data = bytes(range(256)) * 5000
    target = io.BytesIO()
    writer, tail = copy_hashing(io.BytesIO(data), target)
    assert tail == b""
    assert writer.record("f")["sha256"] == hashlib.sha256(data).hexdigest()
    assert Path(tmp_path).is_dir()


def test_retention_reasons_read_well():
    refs = nightly(3, incomplete={0})
    refs[0].started = NOW - timedelta(hours=2)
    policy = RetentionPolicy(keep_last=3, keep_daily=2, keep_weekly=1, keep_monthly=1, keep_within=timedelta(days=7),
                             incomplete_after=timedelta(hours=36))
    keep = plan_retention(refs, policy, NOW, verified_ids={refs[2].set_id})[0]
    reasons = {(NOW - ref.started).days: ref.reasons for ref in keep}
    assert reasons[0] == ["unfinished, younger than 1 day 12 hours"]
    assert reasons[1] == ["within 7 days", "last 3", "daily 2026-11-22", "weekly 2026-W47", "monthly 2026-11",
                          "newest complete"]
    assert reasons[2] == ["within 7 days", "last 3", "daily 2026-11-21", "newest verified"]
    assert not any(":" in reason for ref in keep for reason in ref.reasons)


@pytest.mark.parametrize("delta, words", [
    (timedelta(days=7), "7 days"), (timedelta(hours=36), "1 day 12 hours"), (timedelta(minutes=90), "1 hour 30 minutes"),
    (timedelta(seconds=1), "1 second"), (timedelta(0), "0 seconds"),
])
def test_durations_in_words(delta, words):
    assert format_duration(delta, words=True) == words


def test_the_json_writer_is_the_collections_atomic_writer(tmp_path, monkeypatch):
    seen = []
    real = files.write_atomically
    monkeypatch.setattr("ansible_collections.streamops.maintenance.plugins.module_utils.backup_set.write_atomically",
                        lambda path, data, mode=None: (seen.append(path), real(path, data, mode)))
    write_json_atomically(tmp_path / "manifest.json", {"b": 1, "a": [2]})
    assert seen == [tmp_path / "manifest.json"]
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"a": [2], "b": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def retention_params(root, **retention):
    return {"operation": "retention", "backup_root": str(root), "name": "db", "parts": ["full"], "database": None,
            "s3": None, "retention": {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0,
                                      **retention}}


def make_sets(root, days):
    for day in days:
        directory = root / f"db-{(NOW - timedelta(days=day)).strftime('%Y%m%dT%H%M%SZ')}"
        directory.mkdir()
        (directory / "manifest.json").write_text("{}")


def test_retention_records_one_per_set_and_says_what_it_kept(tmp_path):
    make_sets(tmp_path, range(4))
    planned = run_pg_backup(retention_params(tmp_path, keep_within="36h"), check_mode=True, clock=lambda: NOW)
    assert result_problems(planned, check_mode=True) == []
    assert [(r["name"][-16:-8], r["status"]) for r in planned["records"]] == [
        ("20261123", "unchanged"), ("20261122", "unchanged"), ("20261121", "planned"), ("20261120", "planned")]
    assert planned["records"][0]["detail"] == "kept: within 1 day 12 hours, last 1, newest complete"
    assert planned["records"][2]["detail"].startswith("would delete ") and "no rule keeps it" in planned["records"][2]["detail"]
    assert planned["records"][2]["after"] == {"location": "local", "where": str(tmp_path / planned["records"][2]["name"])}
    assert planned["msg"] == "retention of db: kept 2, would delete 2 (local)" and planned["changed"]
    assert len(list(tmp_path.iterdir())) == 4
    done = run_pg_backup(retention_params(tmp_path, keep_within="36h"), check_mode=False, clock=lambda: NOW)
    assert result_problems(done) == [] and done["changed"]
    assert [r["status"] for r in done["records"]] == ["unchanged", "unchanged", "done", "done"]
    assert len(list(tmp_path.iterdir())) == 2
    again = run_pg_backup(retention_params(tmp_path, keep_within="36h"), check_mode=False, clock=lambda: NOW)
    assert result_problems(again) == [] and again["changed"] is False
    assert again["msg"] == "retention of db: kept 2, deleted 0 (local)"


def test_retention_without_its_option_fails_before_looking(tmp_path):
    with pytest.raises(BackupError) as caught:
        run_pg_backup({**retention_params(tmp_path), "retention": None}, check_mode=False)
    assert "operation retention needs the retention option" in caught.value.msg
    assert caught.value.details["records"] == [] and caught.value.details["changed"] is False


def fake_store(bucket="estate-backups"):
    return S3Store({"bucket": bucket, "prefix": "database"}, client_factory=lambda *args, **kwargs: object())


@pytest.mark.parametrize("location, message", [
    (None, NOT_UPLOADED),
    ({"bucket": "estate-backups"}, "is not a bucket and a prefix"),
    ({"bucket": "estate-backups", "prefix": "database/2026/11/23/other-20261123T020000Z/"}, "does not end with its backup id"),
    ({"bucket": "estate-backups", "prefix": "database/../x/db-20261123T020000Z/"}, "may not contain"),
])
def test_the_copy_of_a_set_is_where_its_manifest_says(location, message):
    manifest = {"backup_id": "db-20261123T020000Z", **({"s3": location} if location else {})}
    with pytest.raises(BackupError) as caught:
        copy_location(fake_store(), {"bucket": "estate-backups"}, manifest)
    assert message in caught.value.msg


def test_the_estate_options_find_the_set_prefix_from_the_manifest():
    store = fake_store()
    manifest = {"backup_id": "db-20261123T020000Z",
                "s3": {"bucket": "estate-backups", "prefix": "database/2026/11/23/db-20261123T020000Z/"}}
    copy, prefix = copy_location(store, {"bucket": "estate-backups", "prefix": "database"}, manifest)
    assert copy is store and prefix == "database/2026/11/23/db-20261123T020000Z/"


@pytest.mark.parametrize("checks, restore_asked, status", [
    ([("manifest", "ok"), ("checksums", "ok")], False, "ok"),
    ([("manifest", "ok"), ("checksums", "failed")], False, "failed"),
    ([("manifest", "ok"), ("restore", "skipped")], True, "unknown"),
    ([("manifest", "ok"), ("checksums", "failed"), ("restore", "skipped")], True, "failed"),
    ([("manifest", "ok"), ("restore", "ok"), ("row counts", "ok")], True, "ok"),
    ([("manifest", "ok")], True, "unknown"),
])
def test_the_verdict(checks, restore_asked, status):
    collected = Checks()
    for name, check_status in checks:
        collected.add(name, check_status, "detail")
    assert verdict(collected, restore_asked=restore_asked)[0] == status


NO_DATEUTIL = r"""
import json, sys
sys.modules["dateutil"] = None  # every import of dateutil (and dateutil.rrule) now raises ImportError
from ansible.module_utils.testing import patch_module_args
from ansible_collections.streamops.maintenance.plugins.modules import pg_backup
try:
    import dateutil  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("dateutil is still importable")
with patch_module_args(json.loads(sys.argv[1])):
    try:
        pg_backup.main()
    except SystemExit:
        pass
"""


def test_a_backup_and_its_retention_run_without_dateutil(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "app.yml").write_text("x: 1\n")
    args = {"name": "cfg", "backup_root": str(tmp_path / "backup"), "parts": ["config"], "config_paths": [str(config)],
            "retention": {"keep_last": 1, "keep_within": "7d", "incomplete_after": "PT2H"}}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "build" / "collections")])}
    proc = subprocess.run([sys.executable, "-c", NO_DATEUTIL, json.dumps(args)], capture_output=True, text=True,
                          cwd=REPO, env=env, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert not result.get("failed"), result
    assert result_problems(result) == []
    assert [(r["action"], r["status"]) for r in result["records"]] == [("backup", "done"), ("retention", "unchanged")]
    assert (Path(result["path"]) / "config.tar.gz").is_file() and (Path(result["path"]) / "manifest.json").is_file()
