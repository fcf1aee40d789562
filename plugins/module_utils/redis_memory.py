# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Keep Redis under its memory budget without blocking it or dropping the cache.

Never KEYS, never FLUSH by default: eviction walks the keyspace with SCAN and
deletes with UNLINK in batches whose size adapts so that each command stays
within a latency budget, and stops as soon as memory is back under the target.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .redis_conn import RedisError, dropped_connection_cause, redis

SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000 ** 2, "mb": 1024 ** 2,
              "g": 1000 ** 3, "gb": 1024 ** 3}
SIZE = re.compile(r"^\s*(\d+)\s*([kmg]b?|b)?\s*$", re.IGNORECASE)
MIN_BATCH = 10
MAX_BATCH = 5000
# A server-side step scans in sub-scans of ``Pacing.batch`` (SCAN COUNT) and stops once the server's own clock
# says STEP_SHARE of the latency budget has passed: only the sub-scan running at that moment can overshoot, and
# the pacing keeps one sub-scan within SUB_SHARE of the budget, so a step ends within the budget (0.6 + 0.2)
# unless the OS takes the CPU from redis-server. Not more of the budget: a GET that arrives while a step runs
# waits for the rest of it. Not less: every step costs a round trip in which the server idles (bench:
# bench_redis_eviction.py, 0.6 ran at 0.84x to 1.01x of the floor's speed in nine runs, 0.4 at 0.86x in one,
# and neither share kept the GET tail within the goal in every run).
STEP_SHARE = 0.6
SUB_SHARE = 0.2
MAX_SUB_COUNT = 2000  # SCAN COUNT of one sub-scan
# The first sub-scan runs before the pacing has measured anything: at batch_size's default (500) it took 1.5 to
# 3.2 ms on the bench, the longest step of a run that was otherwise within the budget.
FIRST_SUB_COUNT = 100
MAX_STEP_KEYS = 20_000  # matching keys one step may find (and unlink), whatever its clock says
# Every EVAL runs in the server's one Lua VM, whose collector frees other scripts' garbage inside whatever script
# runs next: after one EVAL of KEYS over 1M keys (the guide's way, ~60 MB in the VM), single steps of ours ran
# 4.7 and 9.4 ms while the collector freed it, where steps otherwise end within the budget.
LUA_VM_WARN_BYTES = 16 * 1024 * 1024


def parse_size(value: Any, *, what: str = "size") -> int:
    """Redis memory units: 4gb = 4*1024^3, 4g = 4*10^9, plain numbers are bytes."""
    match = SIZE.match(str(value))
    if match is None:
        raise RedisError(msg=f"{what} {value!r} is not a size (bytes, or a number with k, kb, m, mb, g, gb)")
    return int(match.group(1)) * SIZE_UNITS[(match.group(2) or "").lower()]


# --------------------------------------------------------------------------- state


def memory_state(client: Any, *, budget_bytes: int | None = None) -> dict[str, Any]:
    """INFO memory/stats/keyspace, and the ratio against maxmemory (or the budget when maxmemory is 0)."""
    memory, stats = client.info("memory"), client.info("stats")
    keyspace = client.info("keyspace")
    maxmemory = int(memory.get("maxmemory", 0))
    limit = maxmemory or budget_bytes or 0
    used = int(memory["used_memory"])
    return {
        "used_memory": used, "used_memory_rss": int(memory.get("used_memory_rss", 0)),
        "used_memory_peak": int(memory.get("used_memory_peak", 0)), "maxmemory": maxmemory,
        "maxmemory_policy": memory.get("maxmemory_policy"), "limit_bytes": limit or None,
        "limit_source": "maxmemory" if maxmemory else ("budget_bytes" if budget_bytes else None),
        "ratio": round(used / limit, 4) if limit else None,
        "fragmentation_ratio": memory.get("mem_fragmentation_ratio"),
        "allocator": memory.get("mem_allocator"),
        "evicted_keys": stats.get("evicted_keys"), "expired_keys": stats.get("expired_keys"),
        "keyspace": {name: dict(value) for name, value in keyspace.items()},
    }


def sample_keys(client: Any, *, sample_size: int, count: int = 1000) -> list[bytes]:
    """Up to ``sample_size`` keys from SCAN (each call O(count), never the whole keyspace at once)."""
    keys: list[bytes] = []
    cursor = 0
    try:
        while True:
            cursor, batch = client.scan(cursor=cursor, count=count)
            keys.extend(batch)
            if cursor == 0 or len(keys) >= sample_size:
                return keys[:sample_size]
    except redis.exceptions.ConnectionError as exc:
        raise sampling_failed(client, exc, f"SCAN after {len(keys)} key(s) sampled") from exc


def sampling_failed(client: Any, exc: Exception, where: str) -> RedisError:
    """A sample lost with its connection: what broke, why as far as can be told; sampling changes nothing."""
    return RedisError(msg=f"sampling keys failed at {where}: {exc}; {dropped_connection_cause(client)}; "
                          "nothing was changed")


def matching_pattern(key: bytes, patterns: list[str]) -> str | None:
    text = key.decode(errors="replace")
    return next((p for p in patterns if fnmatch.fnmatchcase(text, p)), None)


def usage_by_pattern(client: Any, keys: list[bytes], patterns: list[str], *, dbsize: int,
                     top: int = 10) -> dict[str, Any]:
    """Per pattern (and 'other'): sampled keys and bytes from MEMORY USAGE, extrapolated to the db."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key)
    try:
        sizes = pipe.execute()
    except redis.exceptions.ConnectionError as exc:
        raise sampling_failed(client, exc, f"MEMORY USAGE of {len(keys)} sampled key(s)") from exc
    groups: dict[str, dict[str, Any]] = {p: {"sampled_keys": 0, "sampled_bytes": 0} for p in [*patterns, "(other)"]}
    measured = []
    for key, size in zip(keys, sizes):
        if size is None:  # expired between SCAN and MEMORY USAGE
            continue
        group = groups[matching_pattern(key, patterns) or "(other)"]
        group["sampled_keys"] += 1
        group["sampled_bytes"] += size
        measured.append((size, key))
    scale = dbsize / max(len(measured), 1)
    for group in groups.values():
        group["estimated_keys"] = int(group["sampled_keys"] * scale)
        group["estimated_bytes"] = int(group["sampled_bytes"] * scale)
    measured.sort(reverse=True)
    return {
        "sampled": len(measured), "dbsize": dbsize, "patterns": groups,
        "biggest_keys": [{"key": key.decode(errors="replace"), "bytes": size} for size, key in measured[:top]],
    }


# --------------------------------------------------------------------------- eviction


@dataclass
class Pacing:
    """Keeps each eviction step within ``latency_budget_s`` of the server's time.

    ``batch`` is the SCAN COUNT of one command (client side) or of one sub-scan of a server-side step; it
    adapts so that the unit it sizes stays within its target: the whole budget for a command, SUB_SHARE of it
    for a sub-scan (the step itself is bounded by its own clock)."""

    batch: int
    latency_budget_s: float
    pause_s: float = 0.0
    longest_command_s: float = 0.0
    ceiling: int = MAX_BATCH
    steps: int = 0
    server_s: float = 0.0

    def observe(self, seconds: float, *, unit_seconds: float | None = None, unit_target_s: float | None = None) -> None:
        """One step (or command) took ``seconds`` on the server; its longest unit ``unit_seconds`` (the step
        itself when not given) is held to ``unit_target_s`` (the budget when not given)."""
        self.steps += 1
        self.server_s += seconds
        self.longest_command_s = max(self.longest_command_s, seconds)
        unit = seconds if unit_seconds is None else unit_seconds
        target = self.latency_budget_s if unit_target_s is None else unit_target_s
        if unit > target:
            self.batch = max(MIN_BATCH, self.batch // 2)
        elif unit < target / 2:
            # Grow towards the target in proportion, not by blind doubling.
            grown = int(self.batch * min(2.0, 0.8 * target / max(unit, 1e-6)))
            self.batch = min(self.ceiling, max(self.batch + 1, grown))


@dataclass
class Eviction:
    patterns: dict[str, dict[str, int]]
    deleted: int = 0
    stopped_because: str = ""
    seconds: float = 0.0
    pacing: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def lua_vm_warning(lua_vm_bytes: int) -> str | None:
    """Why steps may overrun the budget when the server's Lua VM is big, or None."""
    if lua_vm_bytes < LUA_VM_WARN_BYTES:
        return None
    return (f"the server's Lua VM holds {lua_vm_bytes / 1048576:.0f} MiB (used_memory_lua): other scripts' data or "
            "garbage, which Redis collects inside whatever script runs next, the eviction's steps included, so "
            "single steps may run several ms over latency_budget_ms (see pacing.longest_command_ms); SCRIPT FLUSH "
            "would free it, but it also drops every application's cached scripts, so it is not done here")


def keep_by_ttl(ttls: list[int], mode: str, below: int | None) -> list[bool]:
    """Which keys may go: 'any', 'no_ttl' (persistent keys only) or 'ttl_below' (expiring within ``below`` s)."""
    if mode == "any":
        return [True] * len(ttls)
    if mode == "no_ttl":
        return [ttl == -1 for ttl in ttls]
    return [ttl is not None and 0 <= ttl < (below or 0) for ttl in ttls]


# One bounded step of eviction on the server: sub-scans of SCAN COUNT ARGV[3], each UNLINKing what matches (and
# passes the TTL filter), until the server's own clock has run ARGV[6] microseconds, the cursor is back at 0 or
# ARGV[7] keys were found. The keys never travel to the client. Not KEYS: never the whole keyspace. Its reply:
# the cursor, the keys found, the keys unlinked, used_memory after the step, the step's microseconds and its
# longest sub-scan's.
SCAN_UNLINK_STEP = """
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local cursor, pattern, count, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local below, work, max_keys = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local started = clock()
local now, found, deleted, longest = started, 0, 0, 0
repeat
  local before = now
  local reply = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', count)
  cursor = reply[1]
  local doomed = reply[2]
  found = found + #doomed
  if mode ~= 'any' then
    doomed = {}
    for _, key in ipairs(reply[2]) do
      local ttl = redis.call('TTL', key)
      if (mode == 'no_ttl' and ttl == -1) or (mode == 'ttl_below' and ttl >= 0 and ttl < below) then
        doomed[#doomed + 1] = key
      end
    end
  end
  for i = 1, #doomed, 5000 do
    deleted = deleted + redis.call('UNLINK', unpack(doomed, i, math.min(i + 4999, #doomed)))
  end
  now = clock()
  if now - before > longest then longest = now - before end
until cursor == '0' or now - started >= work or found >= max_keys
local used = string.match(redis.call('INFO', 'memory'), 'used_memory:(%d+)')
return {cursor, found, deleted, tonumber(used), clock() - started, longest}
"""


class ServerStep:
    """SCAN_UNLINK_STEP by EVALSHA on one connection taken from the client's pool for the whole eviction.

    An eviction is thousands of steps, and the server idles during each round trip between them: redis-py's
    Script object and a pool checkout per call cost about a third of it (on loopback, 138 us a call against 94
    us on a held connection)."""

    def __init__(self, client: Any) -> None:
        self.pool = client.connection_pool
        self.conn: Any = None
        self.sha: Any = None

    def __call__(self, *args: Any) -> Any:
        if self.conn is None:
            try:
                self.conn = self.pool.get_connection()
            except TypeError:  # redis-py before 5.3 wants a command name
                self.conn = self.pool.get_connection("EVALSHA")
        if self.sha is None:
            # Scripting denied by ACL or renamed away fails here, as a ResponseError, before any key went.
            self.sha = self._call("SCRIPT", "LOAD", SCAN_UNLINK_STEP)
        try:
            return self._call("EVALSHA", self.sha, 0, *args)
        except redis.exceptions.NoScriptError:
            # The script cache was emptied between two steps (SCRIPT FLUSH): load it again, once.
            self.sha = self._call("SCRIPT", "LOAD", SCAN_UNLINK_STEP)
            return self._call("EVALSHA", self.sha, 0, *args)

    def _call(self, *command: Any) -> Any:
        try:
            self.conn.send_command(*command)
            return self.conn.read_response()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            # Never back to the pool half-read.
            self.conn.disconnect()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.pool.release(self.conn)
            self.conn = None


def evict_by_pattern(client: Any, patterns: list[str], *, target_bytes: int, pacing: Pacing,
                     ttl_mode: str = "any", ttl_below: int | None = None,
                     clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                     check_every_s: float = 0.05) -> Eviction:
    """SCAN + UNLINK the allow-listed patterns, in order, until used_memory <= ``target_bytes``."""
    result = Eviction({p: {"scanned": 0, "deleted": 0} for p in patterns})
    started = last_check = clock()
    step = ServerStep(client)
    server_side = True
    first_batch = pacing.batch
    pacing.ceiling = MAX_SUB_COUNT
    pacing.batch = min(pacing.batch, FIRST_SUB_COUNT)
    work_us = max(1, int(pacing.latency_budget_s * STEP_SHARE * 1e6))
    lua_vm_bytes = None
    try:
        memory = client.info("memory")
        if int(memory["used_memory"]) <= target_bytes:
            result.stopped_because = "already under the target"
            return result
        lua_vm_bytes = int(memory.get("used_memory_lua", 0))
        for pattern in patterns:
            cursor = 0
            while server_side:
                try:
                    cursor, scanned, removed, used, micros, longest_us = step(
                        cursor, pattern, pacing.batch, ttl_mode, ttl_below or 0, work_us, MAX_STEP_KEYS)
                except redis.exceptions.ResponseError as exc:
                    # Scripting denied by ACL or renamed away: do the same from the client. redis-py gives
                    # NOPERM as NoPermissionError, its message without the word.
                    denied = (isinstance(exc, redis.exceptions.NoPermissionError) or "NOPERM" in str(exc)
                              or "unknown command" in str(exc).lower())
                    if result.deleted or not denied:
                        raise
                    # Refused at the first step, before any key went: the client's commands start at batch_size.
                    server_side = False
                    pacing.ceiling = MAX_BATCH
                    pacing.batch = min(first_batch, MAX_BATCH)
                    break
                # The server's own time for the step: what another client waited behind it,
                # free of our network and scheduling noise.
                pacing.observe(micros / 1e6, unit_seconds=longest_us / 1e6,
                               unit_target_s=pacing.latency_budget_s * SUB_SHARE)
                cursor = int(cursor)
                result.patterns[pattern]["scanned"] += scanned
                result.patterns[pattern]["deleted"] += removed
                result.deleted += removed
                # Each step reports used_memory itself: stop the moment it is under the target.
                if used <= target_bytes:
                    result.stopped_because = "memory under the target"
                    return result
                if pacing.pause_s:
                    sleep(pacing.pause_s)
                if cursor == 0:
                    break
            while not server_side:
                before = clock()
                cursor, keys = client.scan(cursor=cursor, match=pattern, count=pacing.batch)
                pacing.observe(clock() - before)
                result.patterns[pattern]["scanned"] += len(keys)
                if keys and ttl_mode != "any":
                    pipe = client.pipeline(transaction=False)
                    for key in keys:
                        pipe.ttl(key)
                    keys = [k for k, ok in zip(keys, keep_by_ttl(pipe.execute(), ttl_mode, ttl_below)) if ok]
                for start in range(0, len(keys), pacing.batch):
                    chunk = keys[start:start + pacing.batch]
                    before = clock()
                    removed = client.unlink(*chunk)
                    pacing.observe(clock() - before)
                    result.patterns[pattern]["deleted"] += removed
                    result.deleted += removed
                    if pacing.pause_s:
                        sleep(pacing.pause_s)
                if clock() - last_check >= check_every_s or cursor == 0:
                    last_check = clock()
                    if int(client.info("memory")["used_memory"]) <= target_bytes:
                        result.stopped_because = "memory under the target"
                        return result
                if cursor == 0:
                    break
        result.stopped_because = "every allowed pattern scanned; memory still over the target"
        return result
    except redis.exceptions.RedisError as exc:
        cause = f" ({dropped_connection_cause(client)})" if isinstance(exc, redis.exceptions.ConnectionError) else ""
        raise RedisError(
            msg=f"Redis failed during eviction after {result.deleted} key(s) were deleted: {exc}{cause}; "
                "the keys deleted so far are gone, nothing else was touched",
            deleted=result.deleted, patterns=result.patterns) from exc
    finally:
        step.close()
        # Only the steps run in the VM: with scripting denied, its size is nothing to the eviction.
        warning = lua_vm_warning(lua_vm_bytes or 0) if server_side and pacing.steps else None
        if warning:
            result.warnings.append(warning)
        result.seconds = round(clock() - started, 3)
        result.pacing = {"final_batch": pacing.batch, "longest_command_ms": round(pacing.longest_command_s * 1000, 3),
                         "latency_budget_ms": pacing.latency_budget_s * 1000, "steps": pacing.steps,
                         "server_ms": round(pacing.server_s * 1000, 1), "lua_vm_bytes": lua_vm_bytes}


# --------------------------------------------------------------------------- config


def normalize_config(current: str, wanted: Any, *, name: str) -> tuple[Any, Any]:
    """Comparable (current, wanted): sizes in bytes when Redis stores bytes, else whitespace-folded text."""
    wanted_text = str(wanted).strip()
    if isinstance(wanted, bool):
        wanted_text = "yes" if wanted else "no"
    if current.isdigit() and SIZE.match(wanted_text):
        return int(current), parse_size(wanted_text, what=f"{name}")
    return _fold(current), _fold(wanted_text)


def _fold(text: str) -> str:
    return " ".join(str(text).split()).lower()


def plan_config(client: Any, wanted: dict[str, Any]) -> list[dict[str, Any]]:
    """One plan per parameter: value now, value wanted, whether it changes; ``status`` follows the run."""
    plans = []
    for name, value in wanted.items():
        current = client.config_get(name)
        if name not in current:
            raise RedisError(msg=f"unknown or unreadable config parameter {name!r}")
        have, want = normalize_config(current[name], value, name=name)
        plans.append({"name": name, "before": current[name],
                      "after": ("yes" if value else "no") if isinstance(value, bool) else str(value),
                      "change": have != want, "status": "planned" if have != want else "unchanged",
                      "reason": None})
    return plans


def apply_config(client: Any, plans: list[dict[str, Any]], *, rewrite: bool, executed: list[str]) -> None:
    """One CONFIG SET for every change (then CONFIG REWRITE); on a refusal the plans say what stands."""
    changed = [r for r in plans if r["change"]]
    if changed:
        args: list[str] = []
        for plan in changed:
            args += [plan["name"], plan["after"]]
        try:
            # One CONFIG SET with every pair: Redis 7 applies them all or none.
            client.execute_command("CONFIG", "SET", *args)
        except redis.exceptions.ResponseError as exc:
            for plan in changed:
                plan["status"], plan["reason"] = "failed", f"CONFIG SET refused ({exc}); nothing was changed"
            raise RedisError(msg=f"CONFIG SET refused ({exc}); nothing was changed") from exc
        executed.append("CONFIG SET " + " ".join(f"{r['name']} {r['after']!r}" for r in changed))
        for plan in changed:
            plan["status"] = "done"
    if rewrite and changed:
        try:
            client.config_rewrite()
        except redis.exceptions.ResponseError as exc:
            for plan in changed:
                plan["reason"] = f"live, but CONFIG REWRITE failed ({exc}): lost on a restart"
            raise RedisError(msg=f"CONFIG REWRITE failed ({exc}): the new values are live but will not "
                                 "survive a restart") from exc
        executed.append("CONFIG REWRITE")


# --------------------------------------------------------------------------- persistence


def persistence_state(client: Any) -> dict[str, Any]:
    info = client.info("persistence")
    return {
        "last_save_time": int(info.get("rdb_last_save_time", 0)),
        "last_save_age_s": max(0, int(time.time()) - int(info.get("rdb_last_save_time", 0))),
        "last_bgsave_status": info.get("rdb_last_bgsave_status"),
        "bgsave_in_progress": bool(info.get("rdb_bgsave_in_progress")),
        "changes_since_last_save": info.get("rdb_changes_since_last_save"),
        # Redis 7+: LASTSAVE has one-second steps, a fast save must be told apart by this counter.
        "saves": info.get("rdb_saves"),
        "aof_enabled": bool(info.get("aof_enabled")),
    }


def run_bgsave(client: Any, *, timeout: float, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """BGSAVE and wait for it; RedisError when it fails or does not finish in ``timeout`` seconds."""
    before = persistence_state(client)
    if not before["bgsave_in_progress"]:
        try:
            client.bgsave()
        except redis.exceptions.ResponseError as exc:
            raise RedisError(msg=f"BGSAVE refused: {exc}") from exc
    deadline = time.monotonic() + timeout
    state = before
    while True:
        try:
            state = persistence_state(client)
        except redis.exceptions.ConnectionError as exc:
            # The server went while it saved: no new snapshot can be confirmed, the last good one is all there is.
            raise RedisError(msg=f"BGSAVE started but did not finish: the connection was lost while waiting ({exc}; "
                                 f"{dropped_connection_cause(client)}); no new snapshot was confirmed, the last "
                                 f"good one is from {state['last_save_time']} (unix time)",
                             persistence=state) from exc
        saved = (state["saves"] is not None and before["saves"] is not None and state["saves"] > before["saves"]) \
            or state["last_save_time"] > before["last_save_time"]
        finished = not state["bgsave_in_progress"] and (saved or state["last_bgsave_status"] != "ok")
        if finished:
            break
        if time.monotonic() > deadline:
            raise RedisError(msg=f"BGSAVE did not finish within {timeout:g}s", persistence=state)
        sleep(0.05)
    require_last_save_ok(client, state, what="BGSAVE failed")
    return state


def require_last_save_ok(client: Any, state: dict[str, Any], *, what: str) -> None:
    """RedisError naming the data directory when the last BGSAVE did not succeed."""
    if state["last_bgsave_status"] != "ok":
        directory = client.config_get("dir").get("dir")
        raise RedisError(msg=f"{what} (rdb_last_bgsave_status {state['last_bgsave_status']}); "
                             f"check that {directory} is writable and has space, and the server log",
                         persistence=state)
