"""redis_memory_guard against real redis-servers from the harness, asserted from what Redis holds."""
from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import redis
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils import window
from ansible_collections.streamops.maintenance.plugins.module_utils.redis_memory import ServerStep
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import redis_memory_guard
from lab.harness.base import port_open, spawn, stop_pid, wait_for
from lab.harness.redis import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.redis]

ALWAYS = [{"name": "always", "rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "23h59m"}]
WEEKLY = [{"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h"}]
OUTSIDE = "2026-11-24T15:00:00Z"
VALUE = b"v" * 1000


@pytest.fixture
def server():
    """A redis-server of its own per test (its config file is rewritten, it is restarted, killed)."""
    instance = RedisServer(extra={"maxmemory-policy": "noeviction"})
    info = instance.start()
    try:
        yield info
    finally:
        if instance.info is not None and instance.info.pid:
            stop_pid(instance.info.pid)
        shutil.rmtree(info.dir, ignore_errors=True)


def client_of(info):
    return redis.Redis(host=info.host, port=info.port)


def run_module(info, capsys, **args):
    with patch_module_args({"login_host": info.host, "login_port": info.port, **args}), \
            pytest.raises(SystemExit) as exited:
        redis_memory_guard.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=args.get("_ansible_check_mode", False)) == []
    assert "config" not in result
    return result.get("failed", False), result


def only_record(result):
    assert len(result["records"]) == 1, result["records"]
    return result["records"][0]


def fill(client, prefix, count, ttl=None):
    pipe = client.pipeline(transaction=False)
    for number in range(count):
        pipe.set(f"{prefix}{number}", VALUE, ex=ttl)
        if number % 1000 == 999:
            pipe.execute()
    pipe.execute()


def count(client, pattern):
    return sum(1 for _key in client.scan_iter(match=pattern, count=1000))


def over_the_limit(client, ratio=0.85):
    """Set maxmemory so that what is stored now is ``ratio`` of it."""
    used = client.info("memory")["used_memory"]
    client.config_set("maxmemory", str(int(used / ratio)))


def ratio_of(client):
    memory = client.info("memory")
    return memory["used_memory"] / memory["maxmemory"]


def test_evict_deletes_only_allowed_patterns_and_stops_under_the_target(server, capsys):
    client = client_of(server)
    fill(client, "cache:", 20000)
    fill(client, "session:", 5000, ttl=3600)
    fill(client, "order:", 3000)
    over_the_limit(client)
    failed, result = run_module(server, capsys, operation="evict", patterns=["cache:*"], max_ratio=0.8,
                                target_ratio=0.7)
    assert not failed and result["changed"] is True, result["msg"]
    assert ratio_of(client) <= 0.7
    left = count(client, "cache:*")
    assert 0 < left < 20000, "stopped as soon as the target was reached, not after every cache key"
    assert count(client, "session:*") == 5000 and count(client, "order:*") == 3000
    record = only_record(result)
    assert (record["name"], record["action"], record["status"]) == ("redis db 0", "evict", "done")
    assert record["after"]["deleted"] == 20000 - left == record["after"]["by_pattern"]["cache:*"]["deleted"]
    assert record["after"]["ratio"] <= 0.7 < 0.8 < record["before"]["ratio"]
    assert record["seconds"] > 0 and record["detail"] == result["msg"]
    assert result["pacing"]["longest_command_ms"] > 0
    assert result["pacing"]["lua_vm_bytes"] < 16 * 1024 * 1024 and "warnings" not in result
    failed, again = run_module(server, capsys, operation="evict", patterns=["cache:*"])
    assert not failed and again["changed"] is False and "nothing to evict" in again["msg"]
    assert only_record(again)["status"] == "unchanged"


def test_a_step_stops_at_its_own_clock_and_at_its_key_cap(server):
    client = client_of(server)
    fill(client, "cache:", 20000)
    step = ServerStep(client)
    try:
        # 1 us of work: the first sub-scan is over it already, so one SCAN COUNT 10 and its UNLINK.
        cursor, found, deleted, used, micros, longest = step(0, "cache:*", 10, "any", 0, 1, 20000)
        assert 0 < found <= 40 and deleted == found and client.dbsize() == 20000 - deleted
        # used_memory as the server saw it after the step (connections and buffers move it a little since).
        assert int(cursor) != 0 and abs(used - client.info("memory")["used_memory"]) < 1_000_000
        assert micros >= longest > 0
        # 10 s of work allowed, at most 500 keys: the cap ends the step, within one sub-scan past it.
        before = client.dbsize()
        cursor, found, deleted, _used, micros, _longest = step(cursor, "cache:*", 10, "any", 0, 10_000_000, 500)
        assert 500 <= found <= 540 and deleted == found == before - client.dbsize() and micros < 5_000_000
    finally:
        step.close()


def test_a_script_cache_emptied_between_two_steps_is_loaded_again(server):
    client = client_of(server)
    fill(client, "cache:", 2000)
    step = ServerStep(client)
    try:
        step(0, "cache:*", 100, "any", 0, 1, 20000)
        client.script_flush()
        cursor, found, deleted, *_rest = step(0, "cache:*", 100, "any", 0, 1, 20000)
        assert found > 0 and deleted == found
    finally:
        step.close()
    assert client.dbsize() < 2000


def test_scripting_denied_by_acl_evicts_from_the_client_within_the_patterns(server, capsys):
    client = client_of(server)
    fill(client, "cache:", 6000)
    fill(client, "order:", 2000)
    client.execute_command("ACL", "SETUSER", "evictor", "on", ">evictor-pw", "~*", "+@all", "-@scripting")
    over_the_limit(client, ratio=0.9)
    failed, result = run_module(server, capsys, operation="evict", patterns=["cache:*"], target_ratio=0.5,
                                login_user="evictor", login_password="evictor-pw", fail_if_still_over=False)
    assert not failed and only_record(result)["status"] == "done", result["msg"]
    assert count(client, "order:*") == 2000 and count(client, "cache:*") < 6000
    assert only_record(result)["after"]["deleted"] == 6000 - count(client, "cache:*")


# Another application's script that returned a big reply: its strings stay in the server's one Lua VM as
# garbage until the collector frees them, inside whatever script runs next.
BIG_REPLY = "local t = {} for i = 1, tonumber(ARGV[1]) do t[i] = 'garbage:' .. i end return #t"


def test_a_big_lua_vm_is_named_as_why_steps_may_overrun_and_the_eviction_still_holds(server, capsys):
    client = client_of(server)
    fill(client, "cache:", 6000)
    fill(client, "order:", 2000)
    client.eval(BIG_REPLY, 0, 400_000)
    lua_vm = client.info("memory")["used_memory_lua"]
    assert lua_vm >= 16 * 1024 * 1024, lua_vm
    over_the_limit(client, ratio=0.9)
    failed, result = run_module(server, capsys, operation="evict", patterns=["cache:*"], target_ratio=0.5,
                                fail_if_still_over=False)
    assert not failed and only_record(result)["status"] == "done", result["msg"]
    assert result["pacing"]["lua_vm_bytes"] == lua_vm
    # ansible-core 2.19 returns each warning as a summary of its event; older ones as the text.
    warnings = [w["event"]["msg"] if isinstance(w, dict) else w for w in result["warnings"]]
    assert [w for w in warnings if f"Lua VM holds {lua_vm / 1048576:.0f} MiB" in w and "SCRIPT FLUSH" in w], warnings
    assert count(client, "order:*") == 2000
    assert only_record(result)["after"]["deleted"] == 6000 - count(client, "cache:*") > 0
    assert client.script_exists(redis_sha1(BIG_REPLY)) == [True], "the application's cached script stays"


def redis_sha1(script):
    return hashlib.sha1(script.encode()).hexdigest()  # noqa: S324 - the name Redis gives a script, not a secret


def test_check_mode_counts_what_would_go_and_deletes_nothing(server, capsys):
    client = client_of(server)
    fill(client, "cache:", 10000)
    fill(client, "session:", 2000)
    over_the_limit(client)
    failed, result = run_module(server, capsys, operation="evict", patterns=["cache:*"], _ansible_check_mode=True)
    assert not failed and result["changed"] is True and result["executed"] == []
    record = only_record(result)
    assert record["status"] == "planned"
    estimate = record["after"]["by_pattern"]["cache:*"]
    assert 8000 <= estimate["estimated_keys"] <= 12000 and estimate["estimated_bytes"] > 8_000_000
    assert 0 < record["after"]["deleted"] <= estimate["estimated_keys"]
    assert record["after"]["ratio"] <= 0.7 < record["before"]["ratio"]
    assert client.dbsize() == 12000


def test_ttl_filter_keeps_keys_without_an_expiry(server, capsys):
    client = client_of(server)
    fill(client, "cache:", 6000)
    fill(client, "cache:ttl:", 6000, ttl=600)
    over_the_limit(client, ratio=0.95)
    failed, result = run_module(server, capsys, operation="evict", patterns=["cache:*"], target_ratio=0.5,
                                ttl_filter="ttl_below", ttl_below=3600, fail_if_still_over=False)
    assert not failed and only_record(result)["after"]["deleted"] == 6000
    assert only_record(result)["status"] == "done"
    assert count(client, "cache:ttl:*") == 0 and client.dbsize() == 6000


@pytest.mark.parametrize("args, message", [
    ({"operation": "evict", "patterns": ["*"]}, "match every key"),
    ({"operation": "evict"}, "evict needs 'patterns'"),
    ({"operation": "evict", "patterns": ["cache:*"], "target_ratio": 0.9, "max_ratio": 0.8},
     "target_ratio 0.9 is above max_ratio 0.8"),
    ({"operation": "evict", "patterns": ["cache:*"], "budget": "lots"}, "budget 'lots' is not a size"),
    ({"operation": "flush"}, "refusing to flush"),
    ({"operation": "flush", "allow_flush": True, "windows": WEEKLY, "now": OUTSIDE}, "refusing to flush"),
    ({"operation": "config", "config": {"no-such-parameter": "1"}}, "unknown or unreadable config parameter"),
])
def test_refusals_name_the_problem_and_keep_every_key(server, capsys, args, message):
    client = client_of(server)
    fill(client, "cache:", 2000)
    over_the_limit(client)
    failed, result = run_module(server, capsys, **args)
    assert failed and message in result["msg"], result["msg"]
    assert result["records"] == [] and result["changed"] is False
    assert client.dbsize() == 2000


def test_flush_inside_the_window_with_allow_flush(server, capsys):
    client = client_of(server)
    fill(client, "scratch:", 1000)
    client.execute_command("SELECT", 1)
    failed, result = run_module(server, capsys, operation="flush", allow_flush=True, windows=ALWAYS, db=0,
                                now="2026-11-24T15:00:00Z")
    assert not failed and result["changed"] is True and result["executed"] == ["FLUSHDB ASYNC"]
    record = only_record(result)
    assert (record["name"], record["action"], record["status"]) == ("redis db 0", "flush", "done")
    assert record["before"]["keys"] == 1000 and record["after"]["deleted"] == 1000
    assert result["window"]["allowed"] is True and result["window"]["mode"] == "window"
    wait_for(lambda: client_of(server).dbsize() == 0, timeout=5, what="db 0 empty")
    failed, again = run_module(server, capsys, operation="flush", allow_flush=True, windows=ALWAYS, db=0,
                               now="2026-11-24T15:00:00Z")
    assert not failed and again["changed"] is False and only_record(again)["status"] == "unchanged"


def test_flush_outside_the_window_needs_a_complete_emergency_approval(server, capsys):
    client = client_of(server)
    fill(client, "scratch:", 500)
    failed, result = run_module(server, capsys, operation="flush", allow_flush=True, windows=WEEKLY, now=OUTSIDE,
                                emergency={"approved_by": "oncall", "reason": "OOM"})
    assert failed and "ticket" in result["msg"], result["msg"]
    assert result["records"] == []
    assert client.dbsize() == 500
    failed, plan = run_module(server, capsys, operation="flush", allow_flush=True, windows=WEEKLY, now=OUTSIDE,
                              emergency={"approved_by": "oncall", "reason": "OOM", "ticket": "INC-42"},
                              _ansible_check_mode=True)
    assert not failed and plan["changed"] is True and only_record(plan)["status"] == "planned"
    assert plan["window"]["mode"] == "emergency" and client.dbsize() == 500
    failed, result = run_module(server, capsys, operation="flush", allow_flush=True, windows=WEEKLY, now=OUTSIDE,
                                emergency={"approved_by": "oncall", "reason": "OOM", "ticket": "INC-42"})
    assert not failed and result["changed"] is True, result
    assert result["window"]["emergency"]["ticket"] == "INC-42"
    wait_for(lambda: client_of(server).dbsize() == 0, timeout=5, what="db 0 empty")


def test_config_is_idempotent_in_units_and_survives_rewrite_and_restart(server, capsys):
    wanted = {"maxmemory": "48mb", "maxmemory-policy": "allkeys-lru"}
    failed, plan = run_module(server, capsys, operation="config", config=wanted, rewrite=True,
                              _ansible_check_mode=True, _ansible_diff=True)
    assert not failed and plan["changed"] is True and plan["executed"] == []
    assert plan["diff"]["after"] == wanted
    assert {r["name"]: r["status"] for r in plan["records"]} == {"maxmemory": "planned", "maxmemory-policy": "planned"}
    assert client_of(server).config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    failed, result = run_module(server, capsys, operation="config", config=wanted, rewrite=True)
    assert not failed and result["executed"] == ["CONFIG SET maxmemory '48mb' maxmemory-policy 'allkeys-lru'",
                                                 "CONFIG REWRITE"]
    policy = {r["name"]: r for r in result["records"]}["maxmemory-policy"]
    assert policy["status"] == "done" and policy["before"] == {"value": "noeviction"}
    assert policy["after"] == {"value": "allkeys-lru"}
    failed, again = run_module(server, capsys, operation="config", config={"maxmemory": str(48 * 1024 * 1024)})
    assert not failed and again["changed"] is False and only_record(again)["status"] == "unchanged"
    # Restart from the rewritten file.
    conf = Path(server.dir) / "redis.conf"
    stop_pid(server.pid)
    proc = spawn([shutil.which("redis-server"), str(conf)], log=Path(server.dir) / "restart.log")
    server.pid = proc.pid
    wait_for(lambda: port_open(server.port), timeout=20, what="restarted redis-server")
    settings = client_of(server).config_get("maxmemory*")
    assert settings["maxmemory"] == str(48 * 1024 * 1024) and settings["maxmemory-policy"] == "allkeys-lru"


def test_bgsave_is_waited_for_and_a_failed_save_fails_clearly(capsys):
    good = RedisServer()
    info = good.start()
    try:
        failed, plan = run_module(info, capsys, operation="persistence", bgsave=True, _ansible_check_mode=True)
        assert not failed and plan["changed"] is True and only_record(plan)["status"] == "planned"
        assert plan["executed"] == [] and not (Path(info.dir) / "dump.rdb").exists()
        failed, result = run_module(info, capsys, operation="persistence", bgsave=True, max_lastsave_age=60)
        assert not failed and result["changed"] is True and result["persistence"]["last_bgsave_status"] == "ok"
        record = only_record(result)
        assert (record["action"], record["status"]) == ("persistence", "done")
        assert record["name"] == f"redis {info.host}:{info.port}"
        assert record["after"]["saves"] > record["before"]["saves"]
        assert (Path(info.dir) / "dump.rdb").exists()
        failed, check = run_module(info, capsys, operation="persistence", max_lastsave_age=60)
        assert not failed and check["changed"] is False and only_record(check)["status"] == "ok"
    finally:
        good.stop()
    # A data directory where no file can be created: the save fails.
    broken = RedisServer(extra={"dir": "/proc/self"})
    info = broken.start()
    try:
        client_of(info).set("k", "v")
        failed, result = run_module(info, capsys, operation="persistence", bgsave=True, bgsave_timeout=20)
        assert failed and "BGSAVE failed (rdb_last_bgsave_status err)" in result["msg"], result["msg"]
        assert only_record(result)["status"] == "failed" and only_record(result)["detail"] == result["msg"]
        failed, result = run_module(info, capsys, operation="persistence")
        assert failed and "the last BGSAVE failed" in result["msg"]
        assert only_record(result)["status"] == "failed"
        assert only_record(result)["after"]["last_bgsave_status"] == "err"
    finally:
        broken.stop()


def test_redis_gone_mid_eviction_stops_and_says_how_many_keys_went(server, capsys):
    client = client_of(server)
    fill(client, "cache:", 30000)
    over_the_limit(client, ratio=0.95)

    def kill_after_some_deletes():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if client_of(server).dbsize() < 29000:
                stop_pid(server.pid, timeout=1)
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_after_some_deletes)
    killer.start()
    # A latency budget no step can meet keeps the batch at its minimum: a slow, killable run.
    failed, result = run_module(server, capsys, operation="evict", patterns=["cache:*"], target_ratio=0.05,
                                batch_size=10, latency_budget_ms=0.001, pause_ms=2, socket_timeout=2)
    killer.join()
    assert failed and "Redis failed during eviction after" in result["msg"], result["msg"]
    record = only_record(result)
    assert record["status"] == "failed" and record["after"]["deleted"] >= 1000
    assert record["after"]["by_pattern"]["cache:*"]["deleted"] == record["after"]["deleted"]
    assert result["changed"] is True
    assert not port_open(server.port)


def test_report_gives_per_pattern_memory_and_the_biggest_keys(server, capsys):
    client = client_of(server)
    fill(client, "cache:", 3000)
    fill(client, "session:", 1000)
    client.set("blob:big", b"x" * 200_000)
    failed, result = run_module(server, capsys, operation="report", patterns=["cache:*", "session:*"],
                                login_password=None)
    assert not failed and result["changed"] is False
    patterns = result["sample"]["patterns"]
    assert patterns["cache:*"]["sampled_keys"] == 3000 and patterns["session:*"]["sampled_keys"] == 1000
    assert patterns["(other)"]["sampled_keys"] == 1
    assert result["sample"]["biggest_keys"][0]["key"] == "blob:big"
    assert result["memory"]["allocator"].startswith("jemalloc")
    assert result["memory"]["keyspace"]["db0"]["keys"] == 4001
    record = only_record(result)
    assert (record["name"], record["action"], record["status"]) == ("redis db 0", "memory", "ok")
    assert record["after"]["keys"] == 4001 and record["after"]["used_memory"] == result["memory"]["used_memory"]
    assert record["detail"].startswith("PONG; used ")


def test_report_breaches_over_max_ratio_and_needs_no_dateutil(server, capsys, monkeypatch):
    # Without python-dateutil only an rrule window fails; the report does not read one.
    monkeypatch.setattr(window, "HAS_DATEUTIL", False)
    client = client_of(server)
    fill(client, "cache:", 2000)
    over_the_limit(client, ratio=0.9)
    failed, result = run_module(server, capsys, operation="report", max_ratio=0.8, target_ratio=0.7)
    assert not failed and result["changed"] is False
    record = only_record(result)
    assert record["status"] == "breach" and record["after"]["limit_source"] == "maxmemory"
    assert record["after"]["ratio"] > 0.8 and "maxmemory (" in record["detail"] and "limit 80%)" in record["detail"]
    client.config_set("maxmemory", "0")
    failed, result = run_module(server, capsys, operation="report")
    assert not failed and only_record(result)["status"] == "ok"
    assert only_record(result)["detail"].endswith("no maxmemory or budget to compare with")
    failed, result = run_module(server, capsys, operation="report", budget="1mb")
    assert not failed and only_record(result)["status"] == "breach" and " budget (" in only_record(result)["detail"]
    failed, result = run_module(server, capsys, operation="flush", allow_flush=True, windows=ALWAYS)
    assert failed and "rrule windows need the python-dateutil library" in result["msg"]
    assert client.dbsize() == 2000


def test_purge_reports_memory_before_and_after(server, capsys):
    fill(client_of(server), "cache:", 1000)
    failed, plan = run_module(server, capsys, operation="purge", _ansible_check_mode=True)
    assert not failed and plan["changed"] is True and only_record(plan)["status"] == "planned"
    failed, result = run_module(server, capsys, operation="purge")
    record = only_record(result)
    assert not failed and result["executed"] == ["MEMORY PURGE"]
    assert (record["name"], record["action"]) == ("redis db 0", "purge")
    assert record["status"] == ("done" if record["after"]["freed_bytes"] else "unchanged")
    assert record["before"]["used_memory"] > 0 and record["after"]["used_memory"] > 0


def test_a_wrong_password_fails_without_showing_it(capsys):
    protected = RedisServer(password="right-password")
    info = protected.start()
    try:
        failed, result = run_module(info, capsys, operation="report", login_password="not-the-password")
        assert failed and "authentication failed" in result["msg"] or "cannot connect" in result["msg"]
        assert "not-the-password" not in json.dumps(result)
    finally:
        protected.stop()
