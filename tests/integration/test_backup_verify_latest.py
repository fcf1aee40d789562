"""The backup side of recovery against the harness's PostgreSQL servers: what a restored copy holds compared
with the manifest's counts and checksums (on another server too), the newest set under a root (none yet:
no_set), holds in retention.

Assertions read the databases and the directories afterwards.
"""
from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.backup_set import (
    BackupError,
    release_hold,
    write_hold,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.backup_verify import (
    comparison_records,
    compare_tables,
    create_marked_database,
    drop_marked_database,
    restore_parts,
)
from ansible_collections.streamops.maintenance.plugins.modules import backup_verify, pg_backup
# trading and trading_template are fixtures, used by name. pylint: disable-next=unused-import
from tests.integration.test_pg_backup import (  # noqa: F401
    databases,
    make_set,
    only,
    pg_args,
    run,
    trading,
    trading_template,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

MARK = "created by the streamops.maintenance tests; dropped by them"


@pytest.fixture
def trading_set(trading, tmp_path, capsys):
    failed, result = run(pg_backup, capsys, **pg_args(trading), backup_root=str(tmp_path / "backup"),
                         name="trading", critical_tables=["trades", "positions"])
    assert not failed, result
    return Path(result["path"]), result["manifest"]


def server_of(conninfo):
    return f"{conninfo['host']}:{conninfo['port']}"


def by_name(records):
    return {record["name"]: record for record in records}


def test_a_restored_copy_matches_and_a_changed_row_is_caught(trading_set, trading, pg_server):
    directory, manifest = trading_set
    copy = f"copy_{uuid.uuid4().hex[:8]}"
    admin_info = pg_server.conninfo()
    with psycopg.connect(**admin_info, autocommit=True) as admin:
        # Someone's database without the mark is refused by name, and left as it was.
        with pytest.raises(BackupError, match=f"database '{trading['dbname']}' already exists on "
                                              f"{server_of(admin_info)}"):
            create_marked_database(admin, trading["dbname"], MARK, server=server_of(admin_info))
        assert drop_marked_database(admin, trading["dbname"], MARK) is False
        assert trading["dbname"] in databases(pg_server)
        create_marked_database(admin, copy, MARK, server=server_of(admin_info), like=trading["dbname"])
        try:
            assert restore_parts({"jobs": 1}, directory, manifest, pg_server.conninfo(copy),
                                 server=server_of(admin_info)) == ["full"]
            with psycopg.connect(**pg_server.conninfo(copy), autocommit=True) as conn:
                records = by_name(comparison_records(compare_tables(conn, manifest)))
                assert records["row counts"]["status"] == "ok", records
                assert records["table checksums"]["status"] == "ok", records
                assert records["table checksums"]["after"] == manifest["table_checksums"]
                # One value in one row: same count, another checksum.
                conn.execute("UPDATE trades SET qty = qty + 1 WHERE id = (SELECT min(id) FROM trades)")
                conn.execute("DELETE FROM positions WHERE id = (SELECT max(id) FROM positions)")
                records = by_name(comparison_records(compare_tables(conn, manifest)))
            assert records["row counts"]["status"] == "failed"
            assert records["row counts"]["detail"] == (
                f"public.positions: {manifest['row_counts']['public.positions'] - 1} rows restored, "
                f"manifest says {manifest['row_counts']['public.positions']}")
            assert records["table checksums"]["status"] == "failed"
            assert "public.trades: checksum md5sum64:" in records["table checksums"]["detail"]
            assert "public.positions: checksum" in records["table checksums"]["detail"]
            # The source itself still matches its manifest.
            with psycopg.connect(**trading, autocommit=True) as source:
                assert by_name(comparison_records(compare_tables(source, manifest)))["table checksums"]["status"] == "ok"
        finally:
            assert drop_marked_database(admin, copy, MARK) is True
    assert copy not in databases(pg_server)


def test_another_server_with_other_settings_agrees_on_the_checksums(trading_set, pg_dr_server):
    """What a DR test relies on: the same rows on another cluster print, and so sum, alike."""
    directory, manifest = trading_set
    copy = f"dr_{uuid.uuid4().hex[:8]}"
    server = server_of(pg_dr_server.conninfo())
    with psycopg.connect(**pg_dr_server.conninfo(), autocommit=True) as admin:
        create_marked_database(admin, copy, MARK, server=server)
        try:
            admin.execute(f"ALTER DATABASE {copy} SET TimeZone = 'Asia/Kolkata'")
            admin.execute(f"ALTER DATABASE {copy} SET DateStyle = 'German, DMY'")
            admin.execute(f"ALTER DATABASE {copy} SET extra_float_digits = -2")
            restore_parts({"jobs": 2}, directory, manifest, pg_dr_server.conninfo(copy), server=server)
            with psycopg.connect(**pg_dr_server.conninfo(copy), autocommit=True) as conn:
                assert conn.execute("SHOW TimeZone").fetchone()[0] == "Asia/Kolkata"
                records = by_name(comparison_records(compare_tables(conn, manifest)))
        finally:
            drop_marked_database(admin, copy, MARK)
    assert records["row counts"]["status"] == "ok" and records["table checksums"]["status"] == "ok", records


def test_a_failed_restore_names_the_part_and_raises(trading_set, pg_server):
    directory, manifest = trading_set
    copy = f"copy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**pg_server.conninfo(), autocommit=True) as admin:
        create_marked_database(admin, copy, MARK, server="here")
        try:
            restore_parts({"jobs": 1}, directory, manifest, pg_server.conninfo(copy), server="here")
            # Twice into the same database: every CREATE collides.
            with pytest.raises(BackupError, match=f"pg_restore of full.dump into {copy} on here failed"):
                restore_parts({"jobs": 1}, directory, manifest, pg_server.conninfo(copy), server="here")
        finally:
            drop_marked_database(admin, copy, MARK)


def test_no_set_under_the_root_is_its_own_state_not_a_failure(tmp_path, capsys):
    root = tmp_path / "backup"
    failed, result = run(backup_verify, capsys, backup_root=str(root), max_age="26h")
    assert not failed and result["state"] == "no_set" and result["verified"] is False and not result["changed"]
    [record] = result["records"]
    assert (record["name"], record["action"], record["status"]) == (str(root), "verified", "unknown")
    assert record["detail"] == f"no backup set exists yet under {root}: the directory does not exist"
    assert result["msg"] == record["detail"]
    root.mkdir()
    (root / "vitalstream-20261201T020000Z").mkdir()  # a backup that never finished
    (root / "notes").mkdir()
    failed, result = run(backup_verify, capsys, backup_root=str(root), name="vitalstream")
    assert not failed and result["state"] == "no_set"
    assert result["records"][0]["detail"] == (
        f"no backup set named vitalstream exists yet under {root}: 1 unfinished set(s) without a manifest "
        "(a backup running now, or failed), the newest vitalstream-20261201T020000Z")
    assert sorted(p.name for p in root.iterdir()) == ["notes", "vitalstream-20261201T020000Z"]


def test_the_newest_set_under_the_root_is_verified(trading, tmp_path, capsys):
    root = tmp_path / "backup"
    failed, older = run(pg_backup, capsys, **pg_args(trading), backup_root=str(root), name="trading")
    time.sleep(1.1)  # one set per second
    failed, newer = run(pg_backup, capsys, **pg_args(trading), backup_root=str(root), name="trading")
    assert not failed
    (root / "trading-20991231T000000Z").mkdir()  # unfinished, newer than any
    failed, result = run(backup_verify, capsys, backup_root=str(root), name="trading", max_age="1h")
    assert not failed and result["state"] == "verified", result
    assert result["backup_id"] == newer["backup_id"] and result["set_path"] == newer["path"]
    [verdict] = only(result, "verified")
    assert "a newer set has no manifest (trading-20991231T000000Z)" in verdict["detail"]
    assert (Path(newer["path"]) / "verified.json").is_file()
    assert not (Path(older["path"]) / "verified.json").exists()
    # The daily check (mark false) leaves the set, and the nightly's mark, as they are.
    mark = (Path(newer["path"]) / "verified.json").read_bytes()
    failed, result = run(backup_verify, capsys, backup_root=str(root), name="trading", mark=False)
    assert not failed and result["state"] == "verified" and result["changed"] is False and not only(result, "mark")
    assert (Path(newer["path"]) / "verified.json").read_bytes() == mark
    assert result["msg"].endswith("mark false: verified.json not written; a newer set has no manifest "
                                  "(trading-20991231T000000Z)")
    # The newest set damaged: failed, named, not marked.
    shutil.rmtree(root / "trading-20991231T000000Z")
    (Path(newer["path"]) / "verified.json").unlink()
    with (Path(newer["path"]) / "full.dump").open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\0" * 8)
    failed, result = run(backup_verify, capsys, backup_root=str(root), name="trading")
    assert failed and result["state"] == "failed" and result["backup_id"] == newer["backup_id"]
    assert "checksums" in result["msg"] and not (Path(newer["path"]) / "verified.json").exists()
    # Check mode reads as much, writes nothing.
    failed, result = run(backup_verify, capsys, backup_root=str(root), path=None, name="trading",
                         _ansible_check_mode=True)
    assert failed and result["state"] == "failed"


@pytest.mark.parametrize("args, message", [
    ({"backup_root": "relative/dir"}, "must be an absolute path"),
    ({"backup_root": "/tmp", "name": "../x"}, "backup name '../x'"),
    ({"backup_root": "/tmp", "path": "/tmp/x"}, "give path '/tmp/x' or backup_root '/tmp', not both"),
    ({"path": "/tmp/x", "name": "x"}, "name 'x' picks the newest set under backup_root; backup_root is not set"),
])
def test_bad_input_is_named(args, message, capsys):
    failed, result = run(backup_verify, capsys, **args)
    assert failed and message in result["msg"], result["msg"]
    assert result["records"] == []


def test_retention_keeps_a_held_set_until_it_is_released(tmp_path, capsys):
    root = tmp_path / "backup"
    root.mkdir()
    for day in range(1, 5):
        make_set(root, "trading", f"202611{day:02d}T020000Z")
    held = root / "trading-20261101T020000Z"
    write_hold(held, {"reason": "safety backup before the restore of trading; until the restore is accepted"})
    policy = {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}
    failed, result = run(pg_backup, capsys, operation="retention", name="trading", backup_root=str(root),
                         retention=policy)
    assert not failed, result
    assert sorted(p.name for p in root.iterdir()) == ["trading-20261101T020000Z", "trading-20261104T020000Z"]
    kept = next(r for r in result["records"] if r["name"] == held.name)
    assert kept["detail"] == "kept: held: safety backup before the restore of trading; until the restore is accepted"
    assert json.loads((held / "hold.json").read_text())["reason"].startswith("safety backup")
    assert release_hold(held) is True
    failed, result = run(pg_backup, capsys, operation="retention", name="trading", backup_root=str(root),
                         retention=policy)
    assert not failed and sorted(p.name for p in root.iterdir()) == ["trading-20261104T020000Z"]
