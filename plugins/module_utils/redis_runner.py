# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""redis_memory_guard from module options to result: validate, measure, act, shape the result.

Every operation returns records (docs/records.md): ``redis db <n>`` for memory, evict,
flush and purge, one per parameter for config, ``redis <host:port>`` for persistence.
"""

from __future__ import annotations

import time
from typing import Any

from . import redis_memory
from .records import human_bytes, is_changed, make_record
from .redis_conn import RedisError, client_kwargs, connect, redis
from .window import guard_from_params

WILDCARD_ONLY = {"*", "**", "?*", "*?"}


def validate(params: dict[str, Any]) -> dict[str, Any]:
    """Bad input fails before any connection, naming the bad value; returns parsed numbers."""
    parsed: dict[str, Any] = {}
    for name in ("max_ratio", "target_ratio"):
        if not 0 < params[name] <= 1:
            raise RedisError(msg=f"{name} must be above 0 and at most 1, got {params[name]}")
    # Only eviction goes from max_ratio down to target_ratio; a report judges max_ratio alone.
    if params["operation"] == "evict" and params["target_ratio"] > params["max_ratio"]:
        raise RedisError(msg=f"target_ratio {params['target_ratio']} is above max_ratio {params['max_ratio']}")
    parsed["budget_bytes"] = (redis_memory.parse_size(params["budget"], what="budget")
                              if params.get("budget") else None)
    if params["latency_budget_ms"] <= 0:
        raise RedisError(msg=f"latency_budget_ms must be positive, got {params['latency_budget_ms']}")
    if not redis_memory.MIN_BATCH <= params["batch_size"] <= redis_memory.MAX_BATCH:
        raise RedisError(msg=f"batch_size must be between {redis_memory.MIN_BATCH} and {redis_memory.MAX_BATCH}, "
                             f"got {params['batch_size']}")
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
    # Only flush reads a window (and needs python-dateutil for rrule windows).
    guard = guard_from_params(params) if operation == "flush" else None
    client = connect(client_kwargs(params))
    try:
        before = redis_memory.memory_state(client, budget_bytes=parsed["budget_bytes"])
        if operation == "report":
            return _report(client, params, before)
        if operation == "evict":
            return _evict(client, params, before, parsed, check_mode=check_mode)
        if operation == "flush":
            return _flush(client, params, before, parsed, guard, check_mode=check_mode)
        if operation == "purge":
            return _purge(client, params, before, parsed, check_mode=check_mode)
        if operation == "config":
            return _config(client, params, check_mode=check_mode, diff_mode=diff_mode)
        return _persistence(client, params, check_mode=check_mode)
    except redis.exceptions.RedisError as exc:
        raise RedisError(msg=f"Redis {operation} failed: {exc}") from exc
    finally:
        client.close()


def db_name(params: dict[str, Any]) -> str:
    return f"redis db {params['db']}"


def server_name(params: dict[str, Any]) -> str:
    where = params.get("login_unix_socket") or f"{params['login_host']}:{params['login_port']}"
    return f"redis {where}"


def _usage(state: dict[str, Any]) -> dict[str, Any]:
    return {"used_memory": state["used_memory"], "ratio": state["ratio"]}


def _sample(client: Any, params: dict[str, Any], patterns: list[str]) -> dict[str, Any]:
    keys = redis_memory.sample_keys(client, sample_size=params["sample_size"])
    return redis_memory.usage_by_pattern(client, keys, patterns, dbsize=client.dbsize(), top=params["top_keys"])


def memory_record(name: str, state: dict[str, Any], *, keys: int, max_ratio: float) -> dict[str, Any]:
    """``redis db <n>`` action memory (after a PING answered): ``breach`` when a limit is known and the
    ratio is over ``max_ratio``."""
    used, limit, ratio = state["used_memory"], state["limit_bytes"], state["ratio"]
    if limit and ratio is not None:
        source = "maxmemory" if state["limit_source"] == "maxmemory" else "budget"
        detail = (f"PONG; used {human_bytes(used)} of {human_bytes(limit)} {source} "
                  f"({ratio:.1%}, limit {max_ratio * 100:g}%)")
        status = "breach" if ratio > max_ratio else "ok"
    else:
        detail = f"PONG; used {human_bytes(used)}, no maxmemory or budget to compare with"
        status = "ok"
    return make_record(name, "memory", status, detail,
                       after={"used_memory": used, "limit_bytes": limit, "limit_source": state["limit_source"],
                              "ratio": ratio, "keys": keys})


def _report(client: Any, params: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    client.ping()  # raises when the server does not answer
    sample = _sample(client, params, params.get("patterns") or [])
    record = memory_record(db_name(params), state, keys=sample["dbsize"], max_ratio=params["max_ratio"])
    ratio = f"{state['ratio']:.0%} of {state['limit_source']}" if state["ratio"] is not None else "no limit set"
    return {"changed": False, "records": [record], "memory": state, "sample": sample,
            "persistence": redis_memory.persistence_state(client), "executed": [],
            "msg": f"used_memory {state['used_memory']} bytes ({ratio}), {sample['dbsize']} keys in db "
                   f"{params['db']}" + ("; over max_ratio" if record["status"] == "breach" else "")}


def eviction_estimate(before: dict[str, Any], sample: dict[str, Any], patterns: list[str],
                      target_bytes: int) -> dict[str, Any]:
    """Check mode's ``after``: what the eviction would leave, from the sample, pattern by pattern in order."""
    needed = max(0, before["used_memory"] - target_bytes)
    freed, deleted = 0, 0
    for pattern in patterns:
        group = sample["patterns"][pattern]
        if freed >= needed or not group["estimated_bytes"]:
            continue
        take = min(group["estimated_bytes"], needed - freed)
        freed += take
        deleted += round(group["estimated_keys"] * take / group["estimated_bytes"])
    used = before["used_memory"] - freed
    limit = before["limit_bytes"]
    return {"used_memory": used, "ratio": round(used / limit, 4) if limit else None, "deleted": deleted,
            "by_pattern": {p: {"estimated_keys": sample["patterns"][p]["estimated_keys"],
                               "estimated_bytes": sample["patterns"][p]["estimated_bytes"]} for p in patterns}}


def _evict(client: Any, params: dict[str, Any], before: dict[str, Any], parsed: dict[str, Any], *,
           check_mode: bool) -> dict[str, Any]:
    patterns = params["patterns"]
    limit = before["limit_bytes"]
    name = db_name(params)
    if not limit:
        raise RedisError(msg="maxmemory is 0 (no limit) and no 'budget' was given: nothing to measure the ratio against")
    if before["ratio"] <= params["max_ratio"]:
        msg = (f"memory at {before['ratio']:.1%} of {before['limit_source']}, under max_ratio "
               f"{params['max_ratio']:.0%}: nothing to evict")
        record = make_record(name, "evict", "unchanged", msg, before=_usage(before))
        return {"changed": False, "msg": msg, "records": [record], "executed": []}
    target_bytes = int(limit * params["target_ratio"])
    if check_mode:
        sample = _sample(client, params, patterns)
        needed = before["used_memory"] - target_bytes
        estimate = eviction_estimate(before, sample, patterns, target_bytes)
        available = sum(sample["patterns"][p]["estimated_bytes"] for p in patterns)
        msg = (f"would delete keys of {patterns} until {needed} bytes are freed "
               f"(about {available} bytes match, from a sample of {sample['sampled']} keys)")
        record = make_record(name, "evict", "planned", msg, before=_usage(before), after=estimate)
        return {"changed": True, "msg": msg, "records": [record], "sample": sample, "executed": []}
    pacing = redis_memory.Pacing(batch=params["batch_size"], latency_budget_s=params["latency_budget_ms"] / 1000,
                                 pause_s=params["pause_ms"] / 1000)
    try:
        eviction = redis_memory.evict_by_pattern(client, patterns, target_bytes=target_bytes, pacing=pacing,
                                                 ttl_mode=params["ttl_filter"], ttl_below=params.get("ttl_below"))
    except RedisError as exc:
        # Redis went away half-way: the record says how many keys went (they stay gone).
        deleted = exc.details.pop("deleted", 0)
        after = {"used_memory": None, "ratio": None, "deleted": deleted, "by_pattern": exc.details.pop("patterns", {})}
        exc.details.update(changed=deleted > 0, records=[make_record(name, "evict", "failed", exc.msg,
                                                                     before=_usage(before), after=after)])
        raise
    after = redis_memory.memory_state(client, budget_bytes=parsed["budget_bytes"])
    msg = (f"deleted {eviction.deleted} key(s) in {eviction.seconds:g}s; memory {before['ratio']:.1%} -> "
           f"{after['ratio']:.1%} of {after['limit_source']} ({eviction.stopped_because})")
    still_over = after["used_memory"] > target_bytes and params["fail_if_still_over"]
    if still_over:
        msg += f"; still above target_ratio {params['target_ratio']:.0%}"
    status = "failed" if still_over else ("done" if eviction.deleted else "unchanged")
    record = make_record(name, "evict", status, msg, before=_usage(before),
                         after={**_usage(after), "deleted": eviction.deleted, "by_pattern": eviction.patterns},
                         seconds=eviction.seconds)
    result = {"changed": eviction.deleted > 0, "msg": msg, "records": [record], "pacing": eviction.pacing,
              "executed": [f"SCAN MATCH {p} + UNLINK ({eviction.patterns[p]['deleted']} keys)" for p in patterns
                           if eviction.patterns[p]["scanned"]]}
    if eviction.warnings:
        result["warnings"] = eviction.warnings
    if still_over:
        result["failed"] = True
    return result


def _flush(client: Any, params: dict[str, Any], before: dict[str, Any], parsed: dict[str, Any], guard: Any, *,
           check_mode: bool) -> dict[str, Any]:
    status = guard.require(refusal="refusing to flush")
    scope = params["flush_scope"]
    keys = client.dbsize() if scope == "db" else sum(int(v.get("keys", 0)) for v in before["keyspace"].values())
    command = "FLUSHDB ASYNC" if scope == "db" else "FLUSHALL ASYNC"
    result: dict[str, Any] = {"window": status.decision(), "executed": []}
    record_before = {**_usage(before), "keys": keys}
    if not keys:
        msg = "nothing to flush"
        record = make_record(db_name(params), "flush", "unchanged", msg, before=record_before)
    elif check_mode:
        msg = f"would run {command}: {keys} key(s) would be dropped"
        record = make_record(db_name(params), "flush", "planned", msg, before=record_before,
                             after={"keys": 0, "deleted": keys})
    else:
        client.execute_command(*command.split())
        result["executed"] = [command]
        after = redis_memory.memory_state(client, budget_bytes=parsed["budget_bytes"])
        msg = f"{command}: {keys} key(s) dropped"
        record = make_record(db_name(params), "flush", "done", msg, before=record_before,
                             after={**_usage(after), "keys": client.dbsize(), "deleted": keys})
    result.update(changed=is_changed([record]), msg=msg, records=[record])
    return result


def _purge(client: Any, params: dict[str, Any], before: dict[str, Any], parsed: dict[str, Any], *,
           check_mode: bool) -> dict[str, Any]:
    name = db_name(params)
    record_before = {**_usage(before), "used_memory_rss": before["used_memory_rss"]}
    if before["allocator"] and not str(before["allocator"]).startswith("jemalloc"):
        msg = f"MEMORY PURGE needs jemalloc; allocator is {before['allocator']}"
        return {"changed": False, "executed": [], "msg": msg,
                "records": [make_record(name, "purge", "unchanged", msg, before=record_before)]}
    if check_mode:
        msg = "would run MEMORY PURGE"
        return {"changed": True, "executed": [], "msg": msg,
                "records": [make_record(name, "purge", "planned", msg, before=record_before)]}
    client.execute_command("MEMORY", "PURGE")
    time.sleep(0.05)
    after = redis_memory.memory_state(client, budget_bytes=parsed["budget_bytes"])
    freed = max(0, before["used_memory_rss"] - after["used_memory_rss"])
    msg = f"MEMORY PURGE returned {freed} bytes of resident memory to the system"
    record = make_record(name, "purge", "done" if freed else "unchanged", msg, before=record_before,
                         after={**_usage(after), "used_memory_rss": after["used_memory_rss"], "freed_bytes": freed})
    return {"changed": freed > 0, "executed": ["MEMORY PURGE"], "msg": msg, "records": [record]}


def config_record(plan: dict[str, Any]) -> dict[str, Any]:
    status = plan["status"]
    if status == "unchanged":
        detail = f"already {plan['before']}"
    else:
        detail = f"{plan['before']} -> {plan['after']}" + (f"; {plan['reason']}" if plan["reason"] else "")
    return make_record(plan["name"], "config", status, detail, before={"value": plan["before"]},
                       after={"value": plan["after"]})


def _config(client: Any, params: dict[str, Any], *, check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    plans = redis_memory.plan_config(client, params["config"])
    executed: list[str] = []
    if not check_mode:
        try:
            redis_memory.apply_config(client, plans, rewrite=params["rewrite"], executed=executed)
        except RedisError as exc:
            exc.details.update(records=[config_record(plan) for plan in plans], executed=executed)
            raise
    changed = [plan for plan in plans if plan["change"]]
    records = [config_record(plan) for plan in plans]
    result = {"changed": is_changed(records), "records": records, "executed": executed,
              "msg": f"{len(changed)} of {len(plans)} parameter(s) {'would change' if check_mode else 'changed'}"
                     + (" and written to the config file" if changed and params["rewrite"] and not check_mode else "")}
    if diff_mode:
        result["diff"] = {"before": {r["name"]: r["before"] for r in changed},
                          "after": {r["name"]: r["after"] for r in changed}}
    return result


def _save_text(state: dict[str, Any]) -> str:
    return f"last save {state['last_save_age_s']}s ago, status {state['last_bgsave_status']}"


def _persistence(client: Any, params: dict[str, Any], *, check_mode: bool) -> dict[str, Any]:
    name = server_name(params)
    before = redis_memory.persistence_state(client)
    state, executed, seconds = before, [], None
    try:
        if params["bgsave"] and not check_mode:
            started = time.monotonic()
            state = redis_memory.run_bgsave(client, timeout=params["bgsave_timeout"])
            seconds = time.monotonic() - started
            executed.append("BGSAVE")
        redis_memory.require_last_save_ok(client, state, what="the last BGSAVE failed")
        max_age = params.get("max_lastsave_age")
        if max_age is not None and state["last_save_age_s"] > max_age:
            raise RedisError(msg=f"the last successful save is {state['last_save_age_s']}s old, more than "
                                 f"max_lastsave_age {max_age}s", persistence=state)
    except RedisError as exc:
        failed_state = exc.details.get("persistence") or redis_memory.persistence_state(client)
        exc.details.update(persistence=failed_state, executed=executed, changed=bool(executed),
                           records=[make_record(name, "persistence", "failed", exc.msg, before=before,
                                                after=failed_state)])
        raise
    if executed:
        status, msg = "done", f"BGSAVE done; {_save_text(state)}"
    elif params["bgsave"]:
        status, msg = "planned", f"would run BGSAVE; {_save_text(state)}"
    else:
        status, msg = "ok", _save_text(state)
    record = make_record(name, "persistence", status, msg, before=before if status != "ok" else None,
                         after=state, seconds=seconds)
    return {"changed": is_changed([record]), "persistence": state, "executed": executed, "msg": msg,
            "records": [record]}
