"""Unit tests of the backup side of recovery: newest set, set ids, holds, table comparisons, restore order."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.backup_set import (
    HOLD,
    MANIFEST,
    VERIFIED,
    BackupError,
    RetentionPolicy,
    find_set,
    local_sets,
    newest_set,
    plan_retention,
    read_hold,
    release_hold,
    write_hold,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.backup_verify import (
    TableComparison,
    comparison_records,
    restorable_parts,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg import FINGERPRINT_SETTINGS
from ansible_collections.streamops.maintenance.plugins.module_utils.records import record_problems

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)


def make_set(root: Path, set_id: str, *, complete: bool = True, verified: bool = False) -> Path:
    directory = root / set_id
    directory.mkdir(parents=True)
    if complete:
        (directory / MANIFEST).write_text(json.dumps({"backup_id": set_id}))
    if verified:
        (directory / VERIFIED).write_text("{}")
    return directory


def test_newest_set_is_the_newest_complete_one(tmp_path):
    make_set(tmp_path, "db-20261120T020000Z", verified=True)
    make_set(tmp_path, "db-20261121T020000Z")
    make_set(tmp_path, "db-20261122T020000Z", complete=False)  # still running, or failed
    make_set(tmp_path, "other-20261123T020000Z")
    (tmp_path / "db-notastamp").mkdir()
    assert newest_set(tmp_path, "db").set_id == "db-20261121T020000Z"
    assert newest_set(tmp_path, "db", verified=True).set_id == "db-20261120T020000Z"
    assert newest_set(tmp_path, None).set_id == "other-20261123T020000Z"
    assert newest_set(tmp_path, "nothing") is None
    assert newest_set(tmp_path / "missing", None) is None


def test_newest_set_of_any_name_splits_at_the_stamp(tmp_path):
    make_set(tmp_path, "vital-stream.db-20261121T020000Z")
    make_set(tmp_path, "a-20261399T020000Z")  # no such month: not a set id
    assert [ref.set_id for ref in local_sets(tmp_path, None)] == ["vital-stream.db-20261121T020000Z"]


def test_a_symlinked_set_is_not_a_set(tmp_path):
    real = make_set(tmp_path / "elsewhere", "db-20261121T020000Z")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "db-20261121T020000Z").symlink_to(real)
    assert newest_set(tmp_path / "root", None) is None


@pytest.mark.parametrize("set_id, message", [
    ("../db-20261121T020000Z", "is not a set id"),
    ("/etc", "is not a set id"),
    ("db", "is not a set id"),
    (None, "is not a set id"),
    ("db-20261122T020000Z", "does not exist in"),
])
def test_find_set_refuses_anything_but_a_set_directly_inside(tmp_path, set_id, message):
    make_set(tmp_path, "db-20261121T020000Z")
    with pytest.raises(BackupError, match=message) as raised:
        find_set(tmp_path, set_id)
    assert repr(set_id) in raised.value.msg


def test_find_set_finds_one(tmp_path):
    directory = make_set(tmp_path, "db-20261121T020000Z")
    assert find_set(tmp_path, "db-20261121T020000Z") == directory


def test_holds_write_read_release(tmp_path):
    directory = make_set(tmp_path, "db-20261121T020000Z")
    assert read_hold(directory) is None and not local_sets(tmp_path, "db")[0].held
    write_hold(directory, {"reason": "safety backup before restore of vitalstream", "by": "restore"})
    assert read_hold(directory)["reason"].startswith("safety backup")
    ref = local_sets(tmp_path, "db")[0]
    assert ref.held and ref.hold_reason == "safety backup before restore of vitalstream"
    assert release_hold(directory) is True
    assert release_hold(directory) is False
    assert not (directory / HOLD).exists()


def test_an_unreadable_hold_still_holds(tmp_path):
    directory = make_set(tmp_path, "db-20261121T020000Z")
    (directory / HOLD).write_text("{not json")
    ref = local_sets(tmp_path, "db")[0]
    assert ref.held and "cannot be read" in ref.hold_reason


def test_retention_keeps_a_held_set_whatever_the_policy(tmp_path):
    for day in range(1, 6):
        make_set(tmp_path, f"db-202611{day:02d}T020000Z")
    write_hold(tmp_path / "db-20261101T020000Z", {"reason": "restore not accepted yet"})
    policy = RetentionPolicy(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0)
    keep, delete = plan_retention(local_sets(tmp_path, "db"), policy, NOW)
    assert [ref.set_id for ref in keep] == ["db-20261105T020000Z", "db-20261101T020000Z"]
    assert keep[1].reasons == ["held: restore not accepted yet"]
    release_hold(tmp_path / "db-20261101T020000Z")
    keep, delete = plan_retention(local_sets(tmp_path, "db"), policy, NOW)
    assert "db-20261101T020000Z" in [ref.set_id for ref in delete]


@pytest.mark.parametrize("parts, order", [
    (["full", "redis_rdb"], ["full"]),
    (["schema", "critical_data", "config"], ["schema", "critical_data"]),
    (["critical_data", "schema"], ["schema", "critical_data"]),
    (["schema"], ["schema"]),
    (["critical_data"], []),
    (["redis_rdb"], []),
])
def test_restore_order(parts, order):
    assert restorable_parts({"parts": [{"part": part} for part in parts]}) == order


def comparison(table="public.trades", rows=3, expected_rows=3, checksum="md5sum64:7", expected_checksum="md5sum64:7",
               error=None):
    return TableComparison(table, rows, expected_rows, checksum, expected_checksum, error)


def statuses(comparisons):
    records = comparison_records(comparisons)
    assert all(not record_problems(record) for record in records)
    return {record["name"]: (record["status"], record["detail"]) for record in records}


def test_comparison_records_all_match():
    found = statuses([comparison(), comparison("public.users", 2, 2, "md5sum64:1", "md5sum64:1")])
    assert found["row counts"] == ("ok", "public.trades 3, public.users 2")
    assert found["table checksums"][0] == "ok"


def test_a_changed_row_fails_the_checksums_not_the_counts():
    found = statuses([comparison(checksum="md5sum64:8")])
    assert found["row counts"][0] == "ok"
    assert found["table checksums"] == ("failed", "public.trades: checksum md5sum64:8, manifest says md5sum64:7")


def test_a_missing_row_fails_both():
    found = statuses([comparison(rows=2, checksum="md5sum64:5")])
    assert found["row counts"] == ("failed", "public.trades: 2 rows restored, manifest says 3")
    assert found["table checksums"][0] == "failed"


def test_an_old_set_without_checksums_is_unknown_not_ok():
    found = statuses([comparison(expected_checksum=None)])
    assert found["row counts"][0] == "ok"
    assert found["table checksums"][0] == "unknown" and "public.trades" in found["table checksums"][1]


def test_a_table_missing_from_the_copy_fails_both():
    found = statuses([comparison(rows=None, checksum=None, error='cannot be read: relation does not exist')])
    assert found["row counts"][0] == "failed" and "cannot be read" in found["row counts"][1]
    assert found["table checksums"][0] == "failed"


def test_no_tables_no_comparison_records():
    assert comparison_records([]) == []


def test_table_comparison_problems():
    assert comparison().problems() == []
    assert comparison(rows=4, checksum="md5sum64:9").problems() == [
        "public.trades: 4 rows restored, manifest says 3",
        "public.trades: checksum md5sum64:9, manifest says md5sum64:7"]
    assert comparison(checksum="md5sum64:9", expected_checksum=None).problems() == []


def test_fingerprint_fixes_every_setting_that_changes_row_text():
    fixed = {setting[0].lower() for setting in FINGERPRINT_SETTINGS}
    assert {"extra_float_digits", "datestyle", "intervalstyle", "timezone", "bytea_output"} <= fixed


def verify_latest(root, **params):
    from ansible_collections.streamops.maintenance.plugins.module_utils.backup_verify import run_backup_verify
    return run_backup_verify({"backup_root": str(root), **params}, check_mode=False)


def test_no_set_yet_is_its_own_state_and_keeps_the_record_contract(tmp_path):
    from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
    result = verify_latest(tmp_path)
    assert result_problems(result) == []
    assert (result["state"], result["verified"], result["changed"], result.get("failed")) == ("no_set", False,
                                                                                              False, None)
    [record] = result["records"]
    assert (record["name"], record["action"], record["status"]) == (str(tmp_path), "verified", "unknown")
    assert record["detail"] == result["msg"] == f"no backup set exists yet under {tmp_path}"


def test_only_unfinished_sets_are_no_set_and_counted(tmp_path):
    make_set(tmp_path, "db-20261120T020000Z", complete=False)
    make_set(tmp_path, "db-20261121T020000Z", complete=False)
    make_set(tmp_path, "other-20261122T020000Z")
    result = verify_latest(tmp_path, name="db")
    assert result["state"] == "no_set"
    assert result["msg"].endswith(": 2 unfinished set(s) without a manifest (a backup running now, or failed), "
                                  "the newest db-20261121T020000Z")


def test_a_newest_set_with_a_broken_manifest_is_failed_not_no_set(tmp_path):
    directory = make_set(tmp_path, "db-20261121T020000Z")
    result = verify_latest(tmp_path, name="db")
    assert result["state"] == "failed" and result["failed"] is True and result["set_path"] == str(directory)
    assert "manifest: " in result["msg"]


@pytest.mark.parametrize("params, message", [
    ({"backup_root": "/tmp", "path": "/tmp/x"}, "not both"),
    ({"path": "/tmp/x", "name": "db"}, "backup_root is not set"),
    ({"backup_root": "/", "name": "db"}, "is the file system root"),
    ({"backup_root": "/tmp", "name": "a b"}, "backup name 'a b'"),
    ({}, "give path"),
    ({"path": "/tmp/x", "jobs": 0}, "jobs 0 must be at least 1"),
])
def test_bad_verify_input_is_named_before_anything_is_read(params, message):
    from ansible_collections.streamops.maintenance.plugins.module_utils.backup_verify import run_backup_verify
    with pytest.raises(BackupError, match=message) as raised:
        run_backup_verify(params, check_mode=False)
    assert raised.value.details["state"] == "failed" and raised.value.details["records"] == []
