"""Unit tests of the backup logic that needs no service: retention, names, argv, fragments."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from ansible_collections.streamops.maintenance.plugins.doc_fragments.s3 import ModuleDocFragment
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
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_backup import (
    dump_errors,
    libpq_env,
    pg_dump_argv,
    rdb_tail,
    validate,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.storage import clean_prefix, s3_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.window import parse_duration

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)


def _shape(options):
    return {name: {"type": o.get("type", "str"), "default": o.get("default"), "choices": o.get("choices"),
                   "required": o.get("required", False)} for name, o in options.items()}


def test_s3_fragment_matches_argument_spec():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]["s3"]["suboptions"]
    assert _shape(documented) == _shape(s3_argument_spec()["s3"]["options"])


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
    assert "newest verified backup" in next(r for r in keep if (NOW - r.started).days == 20).reasons


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
