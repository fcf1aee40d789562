"""Campaign cases: Redis stopped mid-eviction and mid-BGSAVE (redis_memory_guard, pg_backup's RDB part), and the
client-output limit hit (a normal client's sampling, the replica stream of pg_backup's RDB copy).

Each server is the test's own, with an AOF written before every reply, so what a restart finds is what the server
held when the fault hit: the keys outside the allowed patterns are counted and digested before and after.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.streamops.maintenance.plugins.modules import backup_verify, pg_backup, redis_memory_guard
from lab.harness.redis import RedisServer

from .faults import (
    Injector,
    bgsave_running,
    keys_digest,
    redis_client,
    redis_kill,
    redis_restart,
    run_module,
    set_files_digest,
    set_leftovers,
)

VALUE = b"v" * 1000


@pytest.fixture
def server():
    """A redis-server of this test's own whose every write is in its AOF (a restart loads what it held).

    appendfsync no still writes the AOF before each reply: a killed process loses nothing the kernel has; fsync
    only matters to a machine that crashes, and costs seconds per fill here."""
    instance = RedisServer(extra={"appendonly": "yes", "appendfsync": "no", "maxmemory-policy": "noeviction",
                                  "repl-diskless-sync-delay": "0"})
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def fill(client, prefix, count, value=VALUE):
    pipe = client.pipeline(transaction=False)
    for number in range(count):
        pipe.set(f"{prefix}{number}", value)
        if number % 1000 == 999:
            pipe.execute()
    pipe.execute()


def redis_args(server):
    return {"login_host": server.info.host, "login_port": server.info.port}


def rdb_option(server):
    return {"host": server.info.host, "port": server.info.port}


def temp_rdb_files(server):
    return [p.name for p in Path(server.info.dir).glob("temp-*.rdb")]


# --------------------------------------------------------------------------- eviction


def test_redis_killed_mid_eviction(campaign, server, capsys):
    client = redis_client(server)
    fill(client, "cache:", 30000)
    fill(client, "session:", 2000)
    kept = keys_digest(client, "session:*")
    budget = int(client.info("memory")["used_memory"] / 0.95)
    with campaign.case("redis_stopped", "SIGKILL mid-eviction (redis_memory_guard evict)") as case:
        with Injector(lambda: redis_client(server).dbsize() < 31000, lambda _found: redis_kill(server),
                      what="SIGKILL mid-eviction") as injector:
            # A latency budget no step can meet keeps the batch at its minimum: a slow, killable run.
            failed, result = run_module(redis_memory_guard, capsys, **redis_args(server), operation="evict",
                                        patterns=["cache:*"], budget=str(budget), target_ratio=0.3,
                                        batch_size=10, latency_budget_ms=0.001, pause_ms=2, socket_timeout=2)
        injector.require()
        redis_restart(server)
        client = redis_client(server)
        record = result["records"][0] if result.get("records") else {}
        reported = (record.get("after") or {}).get("deleted")
        gone = 30000 - keys_digest(client, "cache:*")[0]
        # The message must say how many keys really went (counted on the restarted server), and the record too.
        case.check_error(result, names=["eviction", f"after {gone} key(s) were deleted"])
        if reported != gone:
            case.check_error(f"the record says {reported} key(s) deleted, {gone} went", names=["(exact count)"])
        case.check_data(keys_digest(client, "session:*") == kept, "session:* keys (not allowed): count and digest")
        failed, again = run_module(redis_memory_guard, capsys, **redis_args(server), operation="evict",
                                   patterns=["cache:*"], budget=str(budget), target_ratio=0.3)
        case.check_converged(not failed and again["records"][0]["status"] in ("done", "unchanged"), again["msg"])
        case.check_data(keys_digest(client, "session:*") == kept, "session:* keys after the re-run")


# --------------------------------------------------------------------------- BGSAVE


def slow_saves(client, keys=4000, micros_per_key=1000):
    """A BGSAVE (or a replica's sync) of about keys * micros_per_key: long enough to be caught mid-way. Set at
    run time only, so the restarted server saves at full speed."""
    fill(client, "slow:", keys, value=b"s" * 100)
    client.config_set("rdb-key-save-delay", str(micros_per_key))


def test_redis_shut_down_mid_bgsave(campaign, server, capsys):
    client = redis_client(server)
    fill(client, "session:", 2000)
    slow_saves(client)
    kept = keys_digest(client, "*")
    with campaign.case("redis_stopped", "SHUTDOWN NOSAVE mid-BGSAVE (redis_memory_guard persistence)") as case:
        def shutdown(_found):
            redis_client(server).shutdown(nosave=True, now=True)

        with Injector(lambda: bgsave_running(redis_client(server)), shutdown,
                      what="SHUTDOWN NOSAVE mid-BGSAVE") as injector:
            failed, result = run_module(redis_memory_guard, capsys, **redis_args(server), operation="persistence",
                                        bgsave=True, bgsave_timeout=30)
        injector.require()
        case.check_error(result, names=["BGSAVE", "did not finish"])
        redis_restart(server)
        client = redis_client(server)
        case.check_data(keys_digest(client, "*") == kept, "every key: count and digest")
        case.check_no_partial(temp_rdb_files(server), "a half-written RDB in the server's directory")
        failed, again = run_module(redis_memory_guard, capsys, **redis_args(server), operation="persistence",
                                   bgsave=True, bgsave_timeout=30, max_lastsave_age=60)
        case.check_converged(not failed and again["records"][0]["status"] == "done", again["msg"])


def verified_redis_set(server, root, capsys):
    failed, first = run_module(pg_backup, capsys, name="cache", backup_root=str(root), parts=["redis_rdb"],
                               redis=rdb_option(server))
    assert not failed, first["msg"]
    failed, verified = run_module(backup_verify, capsys, path=first["path"])
    assert not failed and verified["verified"], verified["msg"]
    time.sleep(max(0.0, 1.05 - (time.time() % 1)))  # set ids are per second
    return first["backup_id"], Path(first["path"])


def still_verifies(root, set_id, capsys):
    failed, result = run_module(backup_verify, capsys, backup_root=str(root), name="cache", mark=False)
    return not failed and result["verified"] and result["backup_id"] == set_id


def rdb_copy_case(case, server, root, capsys, *, earlier_id, earlier_files, kept, inject, what, names):
    with Injector(lambda: bgsave_running(redis_client(server)), inject, what=what) as injector:
        failed, result = run_module(pg_backup, capsys, name="cache", backup_root=str(root), parts=["redis_rdb"],
                                    redis=rdb_option(server))
    injector.require()
    case.check_error(result, names=names)
    case.check_no_partial(set_leftovers(root, except_ids=(earlier_id,)), "in the backup root")
    case.check_data(set_files_digest(Path(root) / earlier_id) == earlier_files,
                    f"the earlier verified set {earlier_id}, byte for byte")
    case.check_data(still_verifies(root, earlier_id, capsys), f"{earlier_id} is the newest set and verifies")
    return result


def test_redis_killed_mid_rdb_copy(campaign, server, tmp_path, capsys):
    root = tmp_path / "backups"
    client = redis_client(server)
    fill(client, "session:", 2000)
    with campaign.case("redis_stopped", "SIGKILL mid-RDB copy (pg_backup redis_rdb)") as case:
        earlier_id, earlier = verified_redis_set(server, root, capsys)
        earlier_files = set_files_digest(earlier)
        slow_saves(client)
        kept = keys_digest(client, "*")
        rdb_copy_case(case, server, root, capsys, earlier_id=earlier_id, earlier_files=earlier_files, kept=kept,
                      inject=lambda _found: redis_kill(server), what="SIGKILL mid-RDB copy",
                      names=["redis rdb", "partial files were removed", "earlier backups untouched",
                             "stopped or restarted during the copy"])
        redis_restart(server)
        case.check_data(keys_digest(redis_client(server), "*") == kept, "every key: count and digest")
        failed, again = run_module(pg_backup, capsys, name="cache", backup_root=str(root), parts=["redis_rdb"],
                                   redis=rdb_option(server))
        case.check_converged(not failed, again["msg"])
        failed, verified = run_module(backup_verify, capsys, path=again.get("path") or str(root))
        case.check_converged(not failed and verified["verified"], verified["msg"])


# --------------------------------------------------------------------------- client-output limit


def test_replica_output_limit_tiny_during_rdb_copy(campaign, server, tmp_path, capsys):
    """redis-cli --rdb (Redis 7) asks REPLCONF rdb-only: the server streams it no writes, so the replica class's
    client-output-buffer-limit cannot cut the copy, however small, whatever is written meanwhile. Tried for real:
    the set must be complete, verify, and hold the snapshot (no half RDB), the earlier set untouched."""
    root = tmp_path / "backups"
    client = redis_client(server)
    fill(client, "session:", 2000)
    with campaign.case("redis_output_limit", "replica output buffer limit 64kb + writes mid-RDB copy "
                                             "(pg_backup redis_rdb)") as case:
        earlier_id, earlier = verified_redis_set(server, root, capsys)
        earlier_files = set_files_digest(earlier)
        slow_saves(client, micros_per_key=300)  # this copy completes: a short window is enough to write in
        snapshot = keys_digest(client, "*")
        original = client.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
        client.config_set("client-output-buffer-limit", "replica 64kb 0 0")

        def write_past_the_limit(_found):
            fill(redis_client(server), "stream:", 400, value=b"w" * 1000)

        try:
            with Injector(lambda: bgsave_running(redis_client(server)), write_past_the_limit,
                          what="writes past the replica limit mid-RDB copy") as injector:
                failed, result = run_module(pg_backup, capsys, name="cache", backup_root=str(root),
                                            parts=["redis_rdb"], redis=rdb_option(server))
            injector.require()
        finally:
            client.config_set("client-output-buffer-limit", original)
        case.check_converged(not failed, result["msg"])
        case.check_data(set_files_digest(Path(root) / earlier_id) == earlier_files,
                        f"the earlier verified set {earlier_id}, byte for byte")
        failed, verified = run_module(backup_verify, capsys, path=result.get("path") or str(root))
        case.check_converged(not failed and verified["verified"], verified["msg"])
        rdb = Path(result.get("path") or root) / "redis.rdb"
        checked = subprocess.run(["redis-check-rdb", str(rdb)], capture_output=True, text=True, check=False)
        case.check_no_partial([] if checked.returncode == 0 and f"{snapshot[0]} keys read" in checked.stdout
                              else [f"redis.rdb: {checked.stdout.strip()[-300:]}"], "the copy's RDB")


def test_normal_output_limit_hit_mid_sampling(campaign, server, capsys):
    client = redis_client(server)
    # Long key names: one SCAN reply of the module's sampling is far above a tiny normal-client limit.
    pipe = client.pipeline(transaction=False)
    for number in range(3000):
        pipe.set(f"cache:{number}:" + "k" * 200, b"v")
    pipe.execute()
    fill(client, "session:", 500)
    kept = keys_digest(client, "*")
    original = client.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    with campaign.case("redis_output_limit", "normal client output limit mid big-key sampling (report)") as case:
        client.config_set("client-output-buffer-limit", "normal 32kb 32kb 0")
        try:
            failed, result = run_module(redis_memory_guard, capsys, **redis_args(server), operation="report",
                                        patterns=["cache:*"])
        finally:
            client.config_set("client-output-buffer-limit", original)
        case.check_error(result, names=["sampling keys failed", "client-output-buffer-limit", "nothing was changed"])
        case.check_data(keys_digest(client, "*") == kept, "every key: count and digest")
        case.check_no_partial([] if result.get("changed") is False else ["the failed report says changed"])
        failed, again = run_module(redis_memory_guard, capsys, **redis_args(server), operation="report",
                                   patterns=["cache:*"])
        case.check_converged(not failed and again["sample"]["dbsize"] == kept[0], again["msg"])
