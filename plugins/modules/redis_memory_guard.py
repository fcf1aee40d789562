#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_memory_guard
short_description: Keep Redis under its memory budget without blocking it or dropping the cache
version_added: 0.1.0
description:
  - Reports Redis memory (used, limit, ratio, peak, fragmentation, allocator, evicted and expired keys,
    keyspace) with per-pattern key counts and memory from a SCAN sample, and the biggest keys.
  - When memory passes O(max_ratio), deletes keys of the allow-listed O(patterns) with SCAN and UNLINK
    in server-side steps that each stay within O(latency_budget_ms) of the server's time, and stops as
    soon as memory is under O(target_ratio). Never C(KEYS), never C(FLUSHDB) for this.
  - C(FLUSHDB)/C(FLUSHALL) only with O(allow_flush=true), inside a maintenance window or with an
    emergency approval.
  - C(MEMORY PURGE), CONFIG SET with diff (and C(CONFIG REWRITE)), and persistence checks (LASTSAVE age,
    last BGSAVE status, BGSAVE and wait).
  - Every operation returns RV(records) in the collection's one result shape.
requirements:
  - python-dateutil (on the target, only for rrule O(windows); only O(operation=flush) evaluates a window,
    and a missing library fails the task when a rule is parsed)
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.redis
  - streamops.maintenance.window_guard
attributes:
  check_mode:
    support: full
    details: For V(evict), counts what would be deleted per pattern and the memory it would free, from a sample.
  diff_mode:
    support: partial
    details: Only O(operation=config) returns a diff (each changed parameter's value before and after).
  idempotent:
    support: full
options:
  operation:
    description:
      - V(report) reads and returns. V(evict) deletes by pattern while memory is over O(max_ratio).
        V(flush) drops a whole db (or all). V(purge) runs C(MEMORY PURGE). V(config) sets O(config).
        V(persistence) checks (and with O(bgsave) triggers) the RDB save.
    type: str
    required: true
    choices: [report, evict, flush, purge, config, persistence]
  patterns:
    description:
      - Key patterns (Redis glob syntax) that V(evict) may delete, in the order they are tried; the
        allow-list. Keys matching none are never touched. For V(report), the families to measure.
      - A pattern that matches every key (V(*)) is refused unless O(allow_any_key=true).
    type: list
    elements: str
  allow_any_key:
    description: Let V(evict) use a pattern that matches every key.
    type: bool
    default: false
  max_ratio:
    description:
      - V(evict) starts when used memory is above this share of C(maxmemory) (or O(budget)).
      - For V(report), the record is V(breach) above it.
    type: float
    default: 0.8
  target_ratio:
    description: V(evict) stops as soon as used memory is at or under this share.
    type: float
    default: 0.7
  budget:
    description: The memory limit to measure against when C(maxmemory) is 0, for example V(4gb).
    type: str
  ttl_filter:
    description:
      - Which keys of the patterns may go. V(any); V(no_ttl) only keys without an expiry;
        V(ttl_below) only keys expiring within O(ttl_below) seconds.
    type: str
    choices: [any, no_ttl, ttl_below]
    default: any
  ttl_below:
    description: Seconds for O(ttl_filter=ttl_below).
    type: int
  batch_size:
    description:
      - First SCAN COUNT of an eviction command (10 to 5000); it then adapts so that one sub-scan and its
        C(UNLINK) take at most a fifth of O(latency_budget_ms).
      - The server-side steps start at no more than 100 (a first sub-scan of 500 ran a step over the budget)
        and never go above 2000; the client-side commands (scripting denied) start at it.
    type: int
    default: 500
  latency_budget_ms:
    description:
      - Longest one eviction step of ours should keep the server busy, on the server's own clock.
      - A step (one Lua script) runs sub-scans of SCAN and C(UNLINK) until 0.6 of the budget has passed, then
        returns, so it ends within the budget unless the OS takes the CPU from C(redis-server); other clients
        are served between two steps. The result's RV(pacing) gives the longest step and the steps' count.
      - When scripting is denied (ACL C(-@scripting), or the commands renamed away), the same is done from
        the client, one SCAN or C(UNLINK) at a time, its COUNT adapted to the budget.
    type: float
    default: 1
  pause_ms:
    description: Extra pause between UNLINK batches, for servers that need more room than the latency budget gives.
    type: float
    default: 0
  fail_if_still_over:
    description: Fail V(evict) when every allowed pattern was scanned and memory is still above O(target_ratio).
    type: bool
    default: true
  sample_size:
    description: Keys sampled with SCAN and MEMORY USAGE for V(report) and the check-mode estimate of V(evict).
    type: int
    default: 10000
  top_keys:
    description: Biggest keys listed from the sample.
    type: int
    default: 10
  allow_flush:
    description: Required for V(flush); without it the task fails and nothing is dropped.
    type: bool
    default: false
  flush_scope:
    description: V(db) runs C(FLUSHDB ASYNC) on O(db); V(all) runs C(FLUSHALL ASYNC).
    type: str
    choices: [db, all]
    default: db
  config:
    description:
      - "For V(config): parameters and values, for example C({maxmemory: 4gb, maxmemory-policy: allkeys-lru})."
      - Sizes are compared in bytes (V(4gb) equals V(4294967296)), so a second run changes nothing.
    type: dict
  rewrite:
    description: After a change, C(CONFIG REWRITE) so the values survive a restart.
    type: bool
    default: false
  bgsave:
    description: For V(persistence), run BGSAVE and wait for it.
    type: bool
    default: false
  bgsave_timeout:
    description: Seconds to wait for BGSAVE.
    type: float
    default: 300
  max_lastsave_age:
    description: For V(persistence), fail when the last successful save is older than this many seconds.
    type: int
notes:
  - Memory freed by UNLINK of large values is reclaimed in the background; the ratio is read after each batch.
seealso:
  - module: streamops.maintenance.maintenance_window
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Memory report with the guide's key families
  streamops.maintenance.redis_memory_guard:
    operation: report
    login_host: redis-service
    login_password: "{{ vault_redis_password }}"
    patterns: ["cache:*", "session:*", "session:expired:*"]

- name: Above 80 %, delete cache keys (never sessions) until under 70 %
  streamops.maintenance.redis_memory_guard:
    operation: evict
    login_host: redis-service
    patterns: ["cache:*", "session:expired:*"]
    max_ratio: 0.8
    target_ratio: 0.7
    latency_budget_ms: 1

- name: Only cache keys that expire within the hour anyway
  streamops.maintenance.redis_memory_guard:
    operation: evict
    patterns: ["cache:*"]
    ttl_filter: ttl_below
    ttl_below: 3600
    budget: 4gb

- name: Drop the scratch database, inside the window only
  streamops.maintenance.redis_memory_guard:
    operation: flush
    db: 3
    allow_flush: true
    windows: "{{ maintenance_windows }}"
    window: weekly

- name: Return freed memory to the system
  streamops.maintenance.redis_memory_guard:
    operation: purge

- name: Memory limit and policy, kept across restarts
  streamops.maintenance.redis_memory_guard:
    operation: config
    config:
      maxmemory: 4gb
      maxmemory-policy: allkeys-lru
    rewrite: true
  diff: true

- name: Save now and fail when the save fails
  streamops.maintenance.redis_memory_guard:
    operation: persistence
    bgsave: true
    max_lastsave_age: 86400
"""

RETURN = r"""
records:
  description:
    - One record per thing looked at or worked on, each with exactly C(name), C(action), C(status),
      C(detail), C(before), C(after) and C(seconds) (the collection's result shape).
    - "V(report): C(redis db <db>), action C(memory), C(after) with C(used_memory), C(limit_bytes), C(limit_source),
      C(ratio) and C(keys) (DBSIZE); V(breach) when a limit is known and the ratio is over O(max_ratio), else V(ok)."
    - "V(evict): C(redis db <db>), action C(evict), C(before) with C(used_memory) and C(ratio), C(after) with
      C(used_memory), C(ratio), C(deleted) and C(by_pattern) (per pattern C(scanned) and C(deleted)); V(done),
      V(planned) (check mode; C(after) is the estimate from a sample, C(by_pattern) with C(estimated_keys) and
      C(estimated_bytes) that match), V(unchanged) (under O(max_ratio)) or V(failed) (still over O(target_ratio)
      with O(fail_if_still_over), or Redis failed half-way); C(seconds) is the eviction's time."
    - "V(flush) and V(purge): C(redis db <db>), action C(flush) or C(purge), memory before and after."
    - "V(config): one per parameter (C(name) the parameter), V(done), V(planned) or V(unchanged), C(before) and
      C(after) with C(value)."
    - "V(persistence): C(redis <host:port>) (or the socket), action C(persistence); V(ok), V(done) (BGSAVE ran),
      V(planned) (BGSAVE in check mode) or V(failed) (the last save is too old or the last BGSAVE failed; the
      task fails with the record). C(after) is the persistence state."
  returned: always
  type: list
  elements: dict
  sample:
    - name: redis db 0
      action: evict
      status: done
      detail: "deleted 12000 key(s) in 0.8s; memory 85.2% -> 69.8% of maxmemory (memory under the target)"
      before: {used_memory: 42893312, ratio: 0.852}
      after: {used_memory: 35140608, ratio: 0.698, deleted: 12000, by_pattern: {"cache:*": {scanned: 12000, deleted: 12000}}}
      seconds: 0.812
memory:
  description: For V(report), used/peak/rss memory, limit and ratio, fragmentation, allocator, evicted/expired keys, keyspace.
  returned: when operation is report
  type: dict
sample:
  description: Per pattern sampled and estimated keys and bytes, and the biggest keys of the sample.
  returned: when operation is report, or evict in check mode over max_ratio
  type: dict
pacing:
  description:
    - How the eviction was paced. C(longest_command_ms) is the longest step of ours on the server's clock (what
      another client waited at most behind it), C(latency_budget_ms) the budget it was held to, C(steps) how
      many steps (round trips) it took, C(server_ms) their server time in all, C(final_batch) the SCAN COUNT
      reached, C(lua_vm_bytes) the server's C(used_memory_lua) when the eviction started.
    - When scripting is denied, the steps are the client's own commands, timed by the client.
    - Every script runs in the server's one Lua VM, whose garbage collector frees other scripts' garbage inside
      whatever script runs next, the steps included. With C(lua_vm_bytes) of 16 MiB or more the module warns
      that single steps may run over the budget. It does not flush the VM, since C(SCRIPT FLUSH) would also drop
      every application's cached scripts.
  returned: when evict ran
  type: dict
  sample: {final_batch: 76, longest_command_ms: 0.84, latency_budget_ms: 1.0, steps: 4237, server_ms: 2848.8,
           lua_vm_bytes: 41984}
window:
  description:
    - The maintenance-window decision (the same dict as M(streamops.maintenance.maintenance_window) returns -
      C(allowed), C(mode), C(inside), C(now), C(name), C(start), C(end), C(seconds_left), C(required_seconds),
      C(next_start), C(next_window), C(seconds_until_next), C(blackout), C(emergency), C(reason), C(msg)).
      A refused window fails the task with this dict.
  returned: when operation is flush
  type: dict
persistence:
  description: Last save time and age, last BGSAVE status, whether one is running, changes since.
  returned: when operation is persistence or report
  type: dict
diff:
  description: For V(config) in diff mode, the changed parameters' values before and after.
  returned: when operation is config and diff mode is on
  type: dict
executed:
  description: The commands run (keys are not listed).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.redis_conn import (
    REDIS_IMPORT_ERROR,
    redis_connection_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.redis_runner import run_redis_memory_guard
from ansible_collections.streamops.maintenance.plugins.module_utils.window import window_guard_argument_spec


def argument_spec() -> dict:
    spec = redis_connection_argument_spec()
    spec.update(window_guard_argument_spec())
    spec.update(
        operation=dict(type="str", required=True,
                       choices=["report", "evict", "flush", "purge", "config", "persistence"]),
        patterns=dict(type="list", elements="str"),
        allow_any_key=dict(type="bool", default=False),
        max_ratio=dict(type="float", default=0.8),
        target_ratio=dict(type="float", default=0.7),
        budget=dict(type="str"),
        ttl_filter=dict(type="str", choices=["any", "no_ttl", "ttl_below"], default="any"),
        ttl_below=dict(type="int"),
        batch_size=dict(type="int", default=500),
        latency_budget_ms=dict(type="float", default=1),
        pause_ms=dict(type="float", default=0),
        fail_if_still_over=dict(type="bool", default=True),
        sample_size=dict(type="int", default=10000),
        top_keys=dict(type="int", default=10, no_log=False),
        allow_flush=dict(type="bool", default=False),
        flush_scope=dict(type="str", choices=["db", "all"], default="db"),
        config=dict(type="dict"),
        rewrite=dict(type="bool", default=False),
        bgsave=dict(type="bool", default=False),
        bgsave_timeout=dict(type="float", default=300),
        max_lastsave_age=dict(type="int"),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    # python-dateutil is checked where a window is evaluated (window.py), so report runs without it.
    run_and_exit(module, run_redis_memory_guard, {"redis": REDIS_IMPORT_ERROR})


if __name__ == "__main__":
    main()
