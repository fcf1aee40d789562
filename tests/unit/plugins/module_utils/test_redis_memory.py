"""The pure parts of redis_memory_guard: sizes, TTL filter, pacing, config comparison, options, records."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.streamops.maintenance.plugins.doc_fragments.redis import ModuleDocFragment
from ansible_collections.streamops.maintenance.plugins.module_utils.redis_conn import (
    RedisError,
    client_kwargs,
    redis_connection_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.redis_memory import (
    Pacing,
    keep_by_ttl,
    matching_pattern,
    normalize_config,
    parse_size,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import record_problems
from ansible_collections.streamops.maintenance.plugins.module_utils.redis_runner import (
    config_record,
    eviction_estimate,
    memory_record,
    validate,
)
from ansible_collections.streamops.maintenance.plugins.modules import redis_memory_guard


def _shape(options):
    return {name: {"type": o.get("type", "str"), "default": o.get("default"), "choices": o.get("choices"),
                   "aliases": sorted(o.get("aliases", []))} for name, o in options.items()}


def test_redis_fragment_matches_argument_spec():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = redis_connection_argument_spec()
    assert _shape(documented) == _shape(spec)
    assert spec["login_password"]["no_log"] is True


def test_module_options_are_documented_exactly():
    documented = yaml.safe_load(redis_memory_guard.DOCUMENTATION)["options"]
    shared = set(redis_connection_argument_spec()) | {"windows", "window", "blackouts", "timezone", "emergency", "now"}
    own = {k: v for k, v in redis_memory_guard.argument_spec().items() if k not in shared}
    assert _shape(documented) == _shape(own)


@pytest.mark.parametrize("value, expected", [
    ("4gb", 4 * 1024 ** 3), ("4GB", 4 * 1024 ** 3), ("4g", 4 * 10 ** 9), ("512mb", 512 * 1024 ** 2),
    ("100k", 100_000), ("1kb", 1024), ("1048576", 1048576), (0, 0), ("12b", 12),
])
def test_sizes_use_redis_units(value, expected):
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["lots", "4 tb", "-1", "1.5gb", ""])
def test_bad_sizes_name_the_value(value):
    with pytest.raises(RedisError, match=f"size {value!r} is not a size"):
        parse_size(value)


@pytest.mark.parametrize("mode, below, expected", [
    ("any", None, [True, True, True]),
    ("no_ttl", None, [True, False, False]),
    ("ttl_below", 100, [False, True, False]),
])
def test_ttl_filter(mode, below, expected):
    assert keep_by_ttl([-1, 50, 500], mode, below) == expected


def test_pacing_halves_over_the_budget_and_grows_well_under_it():
    pacing = Pacing(batch=400, latency_budget_s=0.002)
    pacing.observe(0.005)
    assert pacing.batch == 200
    pacing.observe(0.0001)
    assert pacing.batch == 400
    for _step in range(20):
        pacing.observe(1.0)
    assert pacing.batch == 10 and pacing.longest_command_s == 1.0


def test_pacing_sizes_the_sub_scan_to_its_own_target_and_keeps_the_step_figures():
    pacing = Pacing(batch=400, latency_budget_s=0.001)
    # A step of 0.6 ms is within the budget, but its longest sub-scan (0.3 ms) is over a fifth of it.
    pacing.observe(0.0006, unit_seconds=0.0003, unit_target_s=0.0002)
    assert pacing.batch == 200
    pacing.observe(0.0006, unit_seconds=0.00005, unit_target_s=0.0002)
    assert pacing.batch == 400
    assert pacing.steps == 2 and pacing.longest_command_s == 0.0006 and abs(pacing.server_s - 0.0012) < 1e-12


@pytest.mark.parametrize("current, wanted, same", [
    ("4294967296", "4gb", True), ("4294967296", "4g", False), ("allkeys-lru", "ALLKEYS-LRU", True),
    ("3600 1 300 100", " 3600 1  300 100 ", True), ("yes", True, True), ("no", True, False),
])
def test_config_values_compare_in_their_units(current, wanted, same):
    have, want = normalize_config(current, wanted, name="x")
    assert (have == want) is same


def test_patterns_use_redis_glob():
    assert matching_pattern(b"session:expired:1", ["cache:*", "session:expired:*"]) == "session:expired:*"
    assert matching_pattern(b"cache", ["cache:*"]) is None


BASE = {"operation": "evict", "patterns": ["cache:*"], "max_ratio": 0.8, "target_ratio": 0.7, "budget": None,
        "latency_budget_ms": 2, "batch_size": 500, "allow_any_key": False, "ttl_filter": "any", "ttl_below": None,
        "allow_flush": False, "config": None}


@pytest.mark.parametrize("changes, message", [
    ({"patterns": ["*"]}, "match every key"),
    ({"patterns": []}, "evict needs 'patterns'"),
    ({"max_ratio": 1.5}, "max_ratio must be above 0 and at most 1, got 1.5"),
    ({"target_ratio": 0.9}, "target_ratio 0.9 is above max_ratio 0.8"),
    ({"batch_size": 5}, "batch_size must be between 10 and 5000, got 5"),
    ({"ttl_filter": "ttl_below"}, "ttl_filter ttl_below needs ttl_below"),
    ({"operation": "flush"}, "refusing to flush"),
])
def test_validation_names_the_bad_value(changes, message):
    with pytest.raises(RedisError, match=message):
        validate({**BASE, **changes})


def test_star_is_allowed_only_when_asked():
    assert validate({**BASE, "patterns": ["*"], "allow_any_key": True}) == {"budget_bytes": None}


def test_client_kwargs_prefer_the_socket_and_pass_tls():
    params = {"db": 2, "login_user": "ops", "login_password": "p", "socket_timeout": 3, "connect_timeout": 1,
              "login_unix_socket": "/run/redis.sock", "login_host": "h", "login_port": 1, "tls": True,
              "validate_certs": True, "ca_certs": "/ca", "client_cert_file": None, "client_key_file": None}
    kwargs = client_kwargs(params)
    assert kwargs["unix_socket_path"] == "/run/redis.sock" and "host" not in kwargs
    assert kwargs["ssl"] is True and kwargs["ssl_cert_reqs"] == "required" and kwargs["db"] == 2


def _state(used, limit, source="maxmemory"):
    return {"used_memory": used, "limit_bytes": limit, "limit_source": source if limit else None,
            "ratio": round(used / limit, 4) if limit else None}


@pytest.mark.parametrize("state, status, detail", [
    (_state(1258291, 2097152), "ok", "PONG; used 1.2 MB of 2.0 MB maxmemory (60.0%, limit 80%)"),
    (_state(1887437, 2097152), "breach", "PONG; used 1.8 MB of 2.0 MB maxmemory (90.0%, limit 80%)"),
    (_state(1887437, 2097152, "budget_bytes"), "breach", "PONG; used 1.8 MB of 2.0 MB budget (90.0%, limit 80%)"),
    (_state(1258291, None), "ok", "PONG; used 1.2 MB, no maxmemory or budget to compare with"),
], ids=["under", "over-maxmemory", "over-budget", "no-limit"])
def test_memory_record_breaches_only_against_a_known_limit(state, status, detail):
    record = memory_record("redis db 0", state, keys=42, max_ratio=0.8)
    assert record_problems(record) == []
    assert (record["name"], record["action"], record["status"], record["detail"]) == (
        "redis db 0", "memory", status, detail)
    assert record["after"] == {**state, "keys": 42}


def test_the_eviction_estimate_takes_patterns_in_order_until_the_target():
    sample = {"patterns": {"cache:*": {"estimated_keys": 1000, "estimated_bytes": 600_000},
                           "session:expired:*": {"estimated_keys": 100, "estimated_bytes": 100_000},
                           "(other)": {"estimated_keys": 10, "estimated_bytes": 10_000}}}
    before = {"used_memory": 1_000_000, "limit_bytes": 1_000_000, "ratio": 1.0}
    estimate = eviction_estimate(before, sample, ["cache:*", "session:expired:*"], target_bytes=650_000)
    # 350 kB to free: 350 of the 600 kB of cache keys (about 583 keys); sessions not needed.
    assert estimate == {"used_memory": 650_000, "ratio": 0.65, "deleted": 583,
                        "by_pattern": {"cache:*": {"estimated_keys": 1000, "estimated_bytes": 600_000},
                                       "session:expired:*": {"estimated_keys": 100, "estimated_bytes": 100_000}}}
    short = eviction_estimate(before, sample, ["cache:*", "session:expired:*"], target_bytes=100_000)
    assert short["deleted"] == 1100 and short["used_memory"] == 300_000


@pytest.mark.parametrize("plan, status, detail", [
    ({"name": "maxmemory", "before": "0", "after": "48mb", "change": True, "status": "done", "reason": None},
     "done", "0 -> 48mb"),
    ({"name": "maxmemory", "before": "50331648", "after": "48mb", "change": False, "status": "unchanged",
      "reason": None}, "unchanged", "already 50331648"),
    ({"name": "maxmemory", "before": "0", "after": "lots", "change": True, "status": "failed",
      "reason": "CONFIG SET refused (bad value); nothing was changed"}, "failed",
     "0 -> lots; CONFIG SET refused (bad value); nothing was changed"),
], ids=["done", "unchanged", "failed"])
def test_config_records(plan, status, detail):
    record = config_record(plan)
    assert record_problems(record) == []
    assert (record["status"], record["detail"]) == (status, detail)
    assert record["before"] == {"value": plan["before"]} and record["after"] == {"value": plan["after"]}
