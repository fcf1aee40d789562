"""The filters that turn module results into report records."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.streamops.maintenance.plugins.filter.report_entries import (
    pg_step_entries, redis_step_entries)


def test_a_vacuumed_table_is_a_change_with_the_servers_figures():
    step = {"item": "vacuum_analyze", "changed": True, "tables": [{
        "name": "public.trades", "action": "vacuum_analyze", "status": "done", "duration_s": 0.45,
        "size_before": 40 * 1024 ** 2, "size_after": 30 * 1024 ** 2,
        "dead_tuples_before": 60000, "dead_tuples_after": 0, "lock": "SHARE UPDATE EXCLUSIVE (reads go on)"}]}
    [record] = pg_step_entries(step)
    assert record["status"] == "changed" and record["name"] == "public.trades"
    assert record["detail"] == "dead tuples 60000 -> 0, size 40.0 MB -> 30.0 MB, 0.45 s"
    assert record["before"] == {"dead_tuples": 60000, "bytes": 40 * 1024 ** 2}


def test_a_planned_table_shows_its_lock_and_estimate():
    step = {"item": "vacuum_full", "changed": True, "tables": [{
        "name": "public.positions", "action": "vacuum_full", "status": "planned", "estimated_duration_s": 2.0,
        "size_before": 1024, "dead_tuples_before": 10, "lock": "ACCESS EXCLUSIVE (blocks every read and write)"}]}
    [record] = pg_step_entries(step)
    assert record["status"] == "planned"
    assert record["detail"] == "dead tuples 10, size 1.0 kB, about 2 s, lock ACCESS EXCLUSIVE"


def test_a_table_skipped_on_a_lock_is_an_issue_and_says_why():
    step = {"item": "reindex", "tables": [{"name": "public.alarms", "action": "reindex", "status": "skipped",
                                           "reason": "lock not available within 5000 ms"}]}
    [record] = pg_step_entries(step)
    assert record["status"] == "skipped" and record["detail"].endswith("lock not available within 5000 ms")


def test_a_failed_step_and_a_step_with_nothing_to_do():
    [failed] = pg_step_entries({"item": "reindex", "failed": True, "msg": "cannot connect"})
    assert failed == {"role": "postgres_routine", "name": "reindex", "action": "reindex", "status": "failed",
                      "detail": "cannot connect"}
    [idle] = pg_step_entries({"item": "analyze", "changed": False, "tables": [], "msg": "no table needs analyze",
                              "left_out": [{"name": "public.users"}]})
    assert idle["status"] == "ok" and idle["detail"] == "no table needs analyze (1 table(s) under the thresholds)"


def test_sequences_in_step_are_left_out_and_a_moved_one_says_from_where():
    step = {"item": "reset_sequences", "tables": [
        {"name": "public.trades_id_seq", "action": "reset_sequences", "status": "unchanged"},
        {"name": "public.positions_id_seq", "action": "reset_sequences", "status": "done", "last_value": 1,
         "new_value": 20000, "table": "public.positions", "column": "id"}]}
    [record] = pg_step_entries(step)
    assert record["detail"] == "last_value 1 -> 20000 (max of public.positions.id)"


def test_redis_eviction_and_check_mode():
    step = {"item": "evict", "changed": True, "deleted": 1200, "msg": "deleted 1200 key(s)",
            "memory_before": {"used_memory": 900, "ratio": 0.9}, "memory_after": {"used_memory": 650, "ratio": 0.65}}
    [record] = redis_step_entries(step, name="redis db 0")
    assert record["status"] == "changed" and record["deleted"] == 1200
    assert record["detail"] == "memory 90.0% -> 65.0%; deleted 1200 key(s)"
    [planned] = redis_step_entries({**step, "memory_after": None}, check_mode=True)
    assert planned["status"] == "planned"
    assert redis_step_entries({"skipped": True}) == []


def test_not_a_result_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match="expects a module result"):
        pg_step_entries("vacuum")
