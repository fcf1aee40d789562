# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""redis_memory_guard from module options to result: validate, measure, act, shape the result."""

from __future__ import annotations

import time
from typing import Any

from . import redis_memory as rm
from .redis_conn import RedisError, client_kwargs, connect, redis
from .window import guard_from_params

WILDCARD_ONLY = {"*", "**", "?*", "*?"}


def validate(params: dict[str, Any]) -> dict[str, Any]:
    """Bad input fails before any connection, naming the bad value; returns parsed numbers."""
    parsed: dict[str, Any] = {}
    for name in ("max_ratio", "target_ratio"):
        if not 0 < params[name] <= 1:
            raise RedisError(msg=f"{name} must be above 0 and at most 1, got {params[name]}")
    if params["target_ratio"] > params["max_ratio"]:
        raise RedisError(msg=f"target_ratio {params['target_ratio']} is above max_ratio {params['max_ratio']}")
    parsed["budget_bytes"] = rm.parse_size(params["budget"], what="budget") if params.get("budget") else None
    if params["latency_budget_ms"] <= 0:
        raise RedisError(msg=f"latency_budget_ms must be positive, got {params['latency_budget_ms']}")
    if not rm.MIN_BATCH <= params["batch_size"] <= rm.MAX_BATCH:
        raise RedisError(msg=f"batch_size must be between {rm.MIN_BATCH} and {rm.MAX_BATCH}, got {params['batch_size']}")
    if params["operation"] == "evict":
        patterns = params.get("patterns") or []
        if not patterns:
            raise RedisError(msg="evict needs 'patterns', the allow-list of key patterns that may be deleted")
        broad = [p for p in patterns if p.strip() in WILDCARD_ONLY or not p.strip()]
        if broad and not params["allow_any_key"]:
            raise RedisError(msg=f"pattern(s) {broad} match every key: that would drop the whole cache, sessions "
                                 "included; name the key families instead, or set allow_any_key: true")
        if params["ttl_filter"] == "ttl_below" and not params.get("ttl_below"):
            raise RedisError(msg="ttl_filter ttl_below needs ttl_below (seconds)")
    if params["operation"] == "flush" and not params["allow_flush"]:
        raise RedisError(msg="refusing to flush: FLUSHDB/FLUSHALL drops every key; set allow_flush: true "
                             "(and run it inside a maintenance window or with an emergency approval)")
    if params["operation"] == "config" and not params.get("config"):
        raise RedisError(msg="operation config needs 'config' (parameter: value)")
    return parsed


def run_redis_memory_guard(params: dict[str, Any], *, check_mode: bool, diff_mode: bool = False) -> dict[str, Any]:
    parsed = validate(params)
    operation = params["operation"]
    guard = guard_from_params(params) if operation == "flush" else None
    client = connect(client_kwargs(params))
    try:
        before = rm.memory_state(client, budget_bytes=parsed["budget_bytes"])
        if operation == "report":
            return _report(client, params, before)
        if operation == "evict":
            return _evict(client, params, before, parsed, check_mode=check_mode)
        if operation == "flush":
            return _flush(client, params, before, guard, check_mode=check_mode)
        if operation == "purge":
            return _purge(client, before, check_mode=check_mode)
        if operation == "config":
            return _config(client, params, check_mode=check_mode, diff_mode=diff_mode)
        return _persistence(client, params, check_mode=check_mode)
    except redis.exceptions.RedisError as exc:
        raise RedisError(msg=f"Redis {operation} failed: {exc}") from exc
    finally:
        client.close()


def _sample(client: Any, params: dict[str, Any], patterns: list[str]) -> dict[str, Any]:
    keys = rm.sample_keys(client, sample_size=params["sample_size"])
    return rm.usage_by_pattern(client, keys, patterns, dbsize=client.dbsize(), top=params["top_keys"])


def _report(client: Any, params: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    sample = _sample(client, params, params.get("patterns") or [])
    ratio = f"{state['ratio']:.0%} of {state['limit_source']}" if state["ratio"] is not None else "no limit set"
    return {"changed": False, "msg": f"used_memory {state['used_memory']} bytes ({ratio}), {sample['dbsize']} keys in db "
                                     f"{params['db']}", "memory": state, "sample": sample,
            "persistence": rm.persistence_state(client), "executed": []}


def _evict(client: Any, params: dict[str, Any], before: dict[str, Any], parsed: dict[str, Any], *,
           check_mode: bool) -> dict[str, Any]:
    patterns = params["patterns"]
    limit = before["limit_bytes"]
    if not limit:
        raise RedisError(msg="maxmemory is 0 (no limit) and no 'budget' was given: nothing to measure the ratio against")
    result: dict[str, Any] = {"memory_before": before, "executed": []}
    if before["ratio"] <= params["max_ratio"]:
        result.update(changed=False, memory_after=before, deleted=0,
                      msg=f"memory at {before['ratio']:.1%} of {before['limit_source']}, under max_ratio "
                          f"{params['max_ratio']:.0%}: nothing to evict")
        return result
    target_bytes = int(limit * params["target_ratio"])
    if check_mode:
        sample = _sample(client, params, patterns)
        needed = before["used_memory"] - target_bytes
        available = sum(sample["patterns"][p]["estimated_bytes"] for p in patterns)
        result.update(changed=True, deleted=0, would_free_bytes_needed=needed, sample=sample,
                      would_delete={p: {"estimated_keys": sample["patterns"][p]["estimated_keys"],
                                        "estimated_bytes": sample["patterns"][p]["estimated_bytes"]} for p in patterns},
                      msg=f"would delete keys of {patterns} until {needed} bytes are freed "
                          f"(about {available} bytes match, from a sample of {sample['sampled']} keys)")
        return result
    pacing = rm.Pacing(batch=params["batch_size"], latency_budget_s=params["latency_budget_ms"] / 1000,
                       pause_s=params["pause_ms"] / 1000)
    eviction = rm.evict_by_pattern(client, patterns, target_bytes=target_bytes, pacing=pacing,
                                   ttl_mode=params["ttl_filter"], ttl_below=params.get("ttl_below"))
    after = rm.memory_state(client, budget_bytes=parsed["budget_bytes"])
    under = after["used_memory"] <= target_bytes
    result.update(
        changed=eviction.deleted > 0, memory_after=after, deleted=eviction.deleted, patterns=eviction.patterns,
        duration_s=eviction.seconds, pacing=eviction.pacing, stopped_because=eviction.stopped_because,
        executed=[f"SCAN MATCH {p} + UNLINK ({eviction.patterns[p]['deleted']} keys)" for p in patterns
                  if eviction.patterns[p]["scanned"]],
        msg=f"deleted {eviction.deleted} key(s) in {eviction.seconds:g}s; memory {before['ratio']:.1%} -> "
            f"{after['ratio']:.1%} of {after['limit_source']} ({eviction.stopped_because})")
    if not under and params["fail_if_still_over"]:
        result["failed"] = True
        result["msg"] += f"; still above target_ratio {params['target_ratio']:.0%}"
    return result


def _flush(client: Any, params: dict[str, Any], before: dict[str, Any], guard: Any, *,
           check_mode: bool) -> dict[str, Any]:
    status = guard.require(refusal="refusing to flush")
    scope = params["flush_scope"]
    keys = client.dbsize() if scope == "db" else sum(int(v.get("keys", 0)) for v in before["keyspace"].values())
    result = {"window": status.as_result(), "memory_before": before, "executed": []}
    command = "FLUSHDB ASYNC" if scope == "db" else "FLUSHALL ASYNC"
    if check_mode:
        result.update(changed=keys > 0, msg=f"would run {command}: {keys} key(s) would be dropped")
        return result
    if keys:
        client.execute_command(*command.split())
        result["executed"] = [command]
    result.update(changed=keys > 0, deleted=keys, msg=f"{command}: {keys} key(s) dropped" if keys else "nothing to flush")
    return result


def _purge(client: Any, before: dict[str, Any], *, check_mode: bool) -> dict[str, Any]:
    if before["allocator"] and not str(before["allocator"]).startswith("jemalloc"):
        return {"changed": False, "executed": [], "msg": f"MEMORY PURGE needs jemalloc; allocator is {before['allocator']}"}
    if check_mode:
        return {"changed": True, "executed": [], "msg": "would run MEMORY PURGE", "memory_before": before}
    client.execute_command("MEMORY", "PURGE")
    time.sleep(0.05)
    after = rm.memory_state(client)
    freed = max(0, before["used_memory_rss"] - after["used_memory_rss"])
    return {"changed": freed > 0, "executed": ["MEMORY PURGE"], "freed_bytes": freed, "memory_before": before,
            "memory_after": after, "msg": f"MEMORY PURGE returned {freed} bytes of resident memory to the system"}


def _config(client: Any, params: dict[str, Any], *, check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    records = rm.plan_config(client, params["config"])
    executed: list[str] = []
    if not check_mode:
        rm.apply_config(client, records, rewrite=params["rewrite"], executed=executed)
    changed = [r for r in records if r["change"]]
    result = {"changed": bool(changed), "config": records, "executed": executed,
              "msg": f"{len(changed)} of {len(records)} parameter(s) {'would change' if check_mode else 'changed'}"
                     + (" and written to the config file" if changed and params["rewrite"] and not check_mode else "")}
    if diff_mode:
        result["diff"] = {"before": {r["name"]: r["before"] for r in changed},
                          "after": {r["name"]: r["after"] for r in changed}}
    return result


def _persistence(client: Any, params: dict[str, Any], *, check_mode: bool) -> dict[str, Any]:
    state = rm.persistence_state(client)
    executed: list[str] = []
    if params["bgsave"] and not check_mode:
        state = rm.run_bgsave(client, timeout=params["bgsave_timeout"])
        executed.append("BGSAVE")
    rm.require_last_save_ok(client, state, what="the last BGSAVE failed")
    max_age = params.get("max_lastsave_age")
    if max_age is not None and state["last_save_age_s"] > max_age:
        raise RedisError(msg=f"the last successful save is {state['last_save_age_s']}s old, more than "
                             f"max_lastsave_age {max_age}s", persistence=state)
    return {
        "changed": bool(executed) or (params["bgsave"] and check_mode), "persistence": state,
        "executed": executed,
        "msg": (("BGSAVE done; " if executed else ("would run BGSAVE; " if params["bgsave"] else ""))
                + f"last save {state['last_save_age_s']}s ago, status {state['last_bgsave_status']}"),
    }
