"""Campaign cases: the backup root's disk fills up mid-dump (pg_backup's PostgreSQL part) and mid-RDB copy
(its Redis part).

The backup root is a small tmpfs (mounted here; we are root; a mount that fails FAILS the case, it is never
skipped). A small set is written and verified first, in the same root (retention and "newest verified set"
live there), then the data grows past the space left and the next backup runs into the full disk. Then the
tmpfs is grown (remount) and the run tried again.
"""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from psycopg import sql

from ansible_collections.streamops.maintenance.plugins.modules import backup_verify, pg_backup
from lab.harness.redis import RedisServer

from .faults import (
    fingerprints,
    grow_disk,
    keys_digest,
    pg_args,
    pg_connect,
    redis_client,
    run_module,
    set_files_digest,
    set_leftovers,
    small_disk,
)

TABLE = "public.trades"


@pytest.fixture
def database(pg_server):
    name = f"t_{uuid.uuid4().hex[:10]}"
    with pg_connect(pg_server.conninfo()) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_server.conninfo(name)
    finally:
        with pg_connect(pg_server.conninfo()) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def redis_server():
    # No delay before a diskless sync starts (5 s by default): redis-cli --rdb is such a sync.
    instance = RedisServer(extra={"repl-diskless-sync-delay": "0"})
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def next_second():
    time.sleep(max(0.0, 1.05 - (time.time() % 1)))  # set ids are per second


def verify_newest(root, name, capsys):
    """(backup id, verified) of the newest complete set of ``name``, without touching its mark."""
    failed, result = run_module(backup_verify, capsys, backup_root=str(root), name=name, mark=False)
    return result.get("backup_id"), not failed and result["verified"]


def disk_full_case(case, root, capsys, *, name, backup_args, grow, names):
    """The small verified set, the data grown, the backup into the full disk, the checks, the re-run."""
    failed, first = run_module(pg_backup, capsys, name=name, backup_root=str(root), **backup_args)
    assert not failed, first["msg"]
    failed, verified = run_module(backup_verify, capsys, path=first["path"])
    assert not failed and verified["verified"], verified["msg"]
    earlier_id, earlier_files = first["backup_id"], set_files_digest(Path(first["path"]))
    grow()
    next_second()
    failed, result = run_module(pg_backup, capsys, name=name, backup_root=str(root), **backup_args)
    case.check_error(result, names=names)
    case.check_no_partial(set_leftovers(root, except_ids=(earlier_id,)), "in the backup root")
    case.check_data(set_files_digest(root / earlier_id) == earlier_files, f"the earlier verified set {earlier_id}")
    case.check_data(verify_newest(root, name, capsys) == (earlier_id, True), f"{earlier_id} is the newest set and verifies")
    grow_disk(root, "256m")
    failed, again = run_module(pg_backup, capsys, name=name, backup_root=str(root), **backup_args)
    case.check_converged(not failed, again["msg"])
    case.check_converged(verify_newest(root, name, capsys) == (again.get("backup_id"), True),
                         "the re-run's set is the newest and verifies")


def test_disk_full_mid_dump(campaign, database, tmp_path, capsys):
    with pg_connect(database) as conn:
        conn.execute("CREATE TABLE trades (id bigserial PRIMARY KEY, account int, note text)")
        conn.execute("INSERT INTO trades (account, note) SELECT g % 97, repeat('x', 100) FROM generate_series(1, 500) g")

    def data_grows():
        with pg_connect(database) as conn:
            conn.execute("INSERT INTO trades (account, note) "
                         "SELECT g % 97, md5(g::text) || repeat('y', 100) FROM generate_series(1, 60000) g")

    with campaign.case("disk_full", "backup root full mid-dump (pg_backup full)") as case, \
            small_disk(tmp_path / "backups", "1m") as root:
        before_growth = {}

        def grow():
            data_grows()
            before_growth.update(fingerprints(database, [TABLE]))

        disk_full_case(case, root, capsys, name="trading", grow=grow,
                       backup_args={**pg_args(database), "compress_level": 0},
                       names=["No space left", "pg_dump full", "partial files were removed"])
        case.check_data(fingerprints(database, [TABLE]) == before_growth, f"rows and checksum of {TABLE}")


def test_disk_full_mid_rdb_copy(campaign, redis_server, tmp_path, capsys):
    client = redis_client(redis_server)
    client.mset({f"session:{n}": os.urandom(200) for n in range(200)})

    def grow():
        # Random values: the RDB's compression cannot shrink them below the space left.
        pipe = client.pipeline(transaction=False)
        for number in range(3000):
            pipe.set(f"cache:{number}", os.urandom(1000))
        pipe.execute()

    with campaign.case("disk_full", "backup root full mid-RDB copy (pg_backup redis_rdb)") as case, \
            small_disk(tmp_path / "backups", "1m") as root:
        options = {"parts": ["redis_rdb"], "redis": {"host": redis_server.info.host, "port": redis_server.info.port}}
        kept: dict = {}

        def grow_and_digest():
            grow()
            kept["all"] = keys_digest(client, "*")

        disk_full_case(case, root, capsys, name="cache", grow=grow_and_digest, backup_args=options,
                       names=["No space left", "redis rdb", "partial files were removed"])
        case.check_data(keys_digest(client, "*") == kept["all"], "every key of the server: count and digest")
