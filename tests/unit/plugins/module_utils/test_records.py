"""The result contract (docs/records.md): records, result shapes, gathering, problems, before/after summaries."""

from __future__ import annotations

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import records
from ansible_collections.streamops.maintenance.plugins.module_utils.records import (
    STATUSES,
    WINDOW_KEYS,
    compare_records,
    gather_records,
    human_bytes,
    make_record,
    problems,
    problems_text,
    result_problems,
)

MB = 1024 ** 2
WINDOW = dict.fromkeys(WINDOW_KEYS)


def record(name: str = "public.trades", action: str = "vacuum", status: str = "done", detail: str = "",
           **extra) -> dict:
    return make_record(name, action, status, detail, **extra)


def result(*found: dict, changed: bool | None = None, msg: str = "one sentence", **extra) -> dict:
    found_list = list(found)
    if changed is None:
        changed = records.is_changed(found_list)
    return {"changed": changed, "msg": msg, "records": found_list, **extra}


# --------------------------------------------------------------------------- make_record


def test_make_record_has_exactly_the_seven_keys_and_strings():
    made = make_record(5, "vacuum", "done", None, before={"a": 1}, after={"a": 0}, seconds=1.23456)
    assert made == {"name": "5", "action": "vacuum", "status": "done", "detail": "", "before": {"a": 1},
                    "after": {"a": 0}, "seconds": 1.235}
    assert tuple(made) == records.RECORD_KEYS


@pytest.mark.parametrize("status", STATUSES)
def test_make_record_takes_every_status(status):
    assert make_record("x", "check", status)["status"] == status


@pytest.mark.parametrize("status", ["changed", "error", "OK", "", None])
def test_make_record_rejects_an_unknown_status_naming_it(status):
    with pytest.raises(ValueError, match=rf"record status {status!r} is not one of done, planned, unchanged, "
                                         r"skipped, failed, ok, breach, unknown"):
        make_record("x", "check", status)


# --------------------------------------------------------------------------- result_problems

GOOD = record()


@pytest.mark.parametrize("given, check_mode, expected", [
    pytest.param(result(GOOD), False, [], id="good real run"),
    pytest.param(result(record(status="planned")), True, [], id="good check mode"),
    pytest.param(result(record(status="unchanged")), False, [], id="nothing changed"),
    pytest.param(result(), False, [], id="no records, not changed"),
    pytest.param(result(GOOD, window=dict(WINDOW)), False, [], id="the window decision dict"),
    pytest.param(result(GOOD, window=None), False, [], id="window null"),
    pytest.param(result(record(status="planned"), failed=True), False, [], id="planned in a failed real run"),
    pytest.param([], False, ["result [] is not a dict"], id="not a dict"),
    pytest.param({k: v for k, v in GOOD.items() if k != "seconds"} | {"x": 1}, False,
                 ["result key 'changed' is NoneType, not bool", "result key 'msg' is NoneType, not str",
                  "result key 'records' is NoneType, not list"], id="a record is not a result"),
    pytest.param(result(GOOD, changed="yes"), False, ["result key 'changed' is str, not bool"], id="changed a str"),
    pytest.param(result(GOOD, msg=None), False, ["result key 'msg' is NoneType, not str"], id="msg null"),
    pytest.param({"changed": False, "msg": "", "records": {"a": 1}}, False,
                 ["result key 'records' is dict, not list"], id="records a dict"),
    pytest.param(result({k: v for k, v in GOOD.items() if k != "seconds"}), False,
                 ["record 'public.trades': keys differ (missing ['seconds'], extra [])"], id="missing key"),
    pytest.param(result(GOOD | {"role": "postgres_routine"}), False,
                 ["record 'public.trades': keys differ (missing [], extra ['role'])"], id="extra key"),
    pytest.param(result(GOOD | {"status": "changed"}, changed=False), False,
                 [f"record 'public.trades': status 'changed' is not one of {STATUSES}"], id="bad status"),
    pytest.param(result(GOOD | {"name": 5}), False, ["record 5: name is int, not str"], id="name an int"),
    pytest.param(result(GOOD | {"detail": None}), False, ["record 'public.trades': detail is NoneType, not str"],
                 id="detail null"),
    pytest.param(result(GOOD | {"before": "60000"}), False,
                 ["record 'public.trades': before is str, not a dict or null"], id="before a str"),
    pytest.param(result(GOOD | {"after": [1]}), False,
                 ["record 'public.trades': after is list, not a dict or null"], id="after a list"),
    pytest.param(result(GOOD | {"seconds": -1}), False,
                 ["record 'public.trades': seconds -1 is not a non-negative number or null"], id="negative seconds"),
    pytest.param(result(GOOD | {"seconds": True}), False,
                 ["record 'public.trades': seconds True is not a non-negative number or null"], id="seconds a bool"),
    pytest.param(result(GOOD | {"seconds": "1.2"}), False,
                 ["record 'public.trades': seconds '1.2' is not a non-negative number or null"], id="seconds a str"),
    pytest.param(result("vacuum", changed=False), False, ["record 'vacuum' is not a dict"], id="record not a dict"),
    pytest.param(result(record(status="planned")), False, ["a real run has a record with status planned"],
                 id="planned in a real run"),
    pytest.param(result(GOOD), True,
                 ["check mode result has a record with status done (check mode decides, it does not do)"],
                 id="done in check mode"),
    pytest.param(result(GOOD, changed=False), False, ["changed is False but the records say True"],
                 id="changed false with a done record"),
    pytest.param(result(record(status="unchanged"), changed=True), False,
                 ["changed is True but the records say False"], id="changed true without a change"),
    pytest.param(result(record(status="planned"), changed=False), True,
                 ["changed is False but the records say True"], id="check mode planned but not changed"),
    pytest.param(result(GOOD, window=dict(WINDOW) | {"colour": "blue"}), False,
                 [f"window is not the window decision dict (keys {sorted([*WINDOW_KEYS, 'colour'])})"],
                 id="window with another key"),
    pytest.param(result(GOOD, window={"allowed": True}), False,
                 ["window is not the window decision dict (keys ['allowed'])"], id="window missing keys"),
    pytest.param(result(GOOD, window="open"), False, ["window is not the window decision dict (keys 'open')"],
                 id="window a str"),
])
def test_result_problems(given, check_mode, expected):
    assert result_problems(given, check_mode=check_mode) == expected


def test_a_failed_result_may_disagree_with_changed():
    # A module that failed half-way reports what it did; `changed` is then Ansible's to set.
    assert result_problems(result(GOOD, changed=False, failed=True)) == []


# --------------------------------------------------------------------------- gather_records

DONE = record("public.trades", "vacuum", "done", "dead tuples 60000 -> 0")
FAILED = record("public.alarms", "reindex", "failed", "lock not available")
COMMAND_FAILED = {"failed": True, "msg": "non-zero return code", "rc": 1, "stdout": "",
                  "stderr": "psql: error: connection to server on socket failed\n", "changed": True}


@pytest.mark.parametrize("given, name, expected", [
    pytest.param(None, None, [], id="None"),
    pytest.param(result(DONE), None, [DONE], id="plain result"),
    pytest.param({"changed": True, "msg": "All items completed", "results": [
        result(DONE) | {"item": "vacuum", "ansible_loop_var": "item"},
        {"skipped": True, "changed": False, "item": "reindex", "skip_reason": "Conditional result was False"},
        result(FAILED) | {"item": "reindex", "failed": True}]}, None, [DONE, FAILED], id="looped result"),
    pytest.param({"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}, None, [],
                 id="skipped task"),
    pytest.param({"changed": False, "skipped": True, "skipped_reason": "No items in the list", "results": []},
                 None, [], id="loop over no items"),
    pytest.param(COMMAND_FAILED, "pg_dump", [make_record(
        "pg_dump", "run", "failed", "non-zero return code: psql: error: connection to server on socket failed")],
        id="failed without records, stderr kept"),
    pytest.param(COMMAND_FAILED | {"item": "orders"}, "pg_dump", [make_record(
        "pg_dump orders", "run", "failed",
        "non-zero return code: psql: error: connection to server on socket failed")], id="labelled name and item"),
    pytest.param(COMMAND_FAILED | {"item": {"db": "orders"}}, None, [make_record(
        "task", "run", "failed", "non-zero return code: psql: error: connection to server on socket failed")],
        id="a dict item and no name"),
    pytest.param({"failed": True, "msg": "Unable to connect to database: connection refused"}, "pg_maintenance",
                 [make_record("pg_maintenance", "run", "failed", "Unable to connect to database: connection refused")],
                 id="failed with msg only"),
    pytest.param({"failed": True}, None, [make_record("task", "run", "failed", "failed")], id="failed bare"),
    pytest.param(result(DONE, FAILED, failed=True, msg="1 table failed"), "pg", [DONE, FAILED],
                 id="failed with a failed record: nothing added"),
    pytest.param(result(DONE, failed=True, msg="cut off"), "pg",
                 [DONE, make_record("pg", "run", "failed", "cut off")], id="failed with only good records"),
    pytest.param([DONE, FAILED], None, [DONE, FAILED], id="records passed again"),
    pytest.param([result(DONE), None, result(FAILED)], None, [DONE, FAILED], id="a list of results"),
])
def test_gather_records(given, name, expected):
    assert gather_records(given, name=name) == expected


def test_gathered_records_pass_again_unchanged():
    once = gather_records({"results": [result(DONE) | {"item": 1}, COMMAND_FAILED | {"item": 2}]}, name="step")
    assert gather_records(once) == once
    assert gather_records(gather_records(once)) == once
    assert result_problems(result(*once, failed=True)) == []


def test_the_stderr_kept_is_its_tail():
    [failed] = gather_records({"failed": True, "msg": "boom", "stderr": "x" * 500 + "END\n"})
    assert failed["detail"] == "boom: " + ("x" * 500 + "END")[-300:]


@pytest.mark.parametrize("given, kind", [("vacuum", "str"), (5, "int")])
def test_gather_records_rejects_what_is_not_a_result(given, kind):
    with pytest.raises(TypeError, match=f"expected a registered task result \\(dict\\) or a list of them, got {kind}"):
        gather_records(given)


# --------------------------------------------------------------------------- problems and problems_text

MIXED = [make_record("disk /", "disk", "ok", "41% used"),
         make_record("disk /data", "disk", "breach", "93% used (limit 80%)"),
         make_record("memory", "memory", "unknown", "MemAvailable missing"),
         make_record("redis", "tcp", "failed", "does not answer"),
         make_record("public.t", "vacuum", "skipped", "lock not available")]


@pytest.mark.parametrize("statuses, names", [
    pytest.param(records.PROBLEM_STATUSES, ["disk /data", "memory", "redis"], id="default: failed breach unknown"),
    pytest.param(["skipped"], ["public.t"], id="skipped only"),
    pytest.param(["ok", "skipped"], ["disk /", "public.t"], id="two statuses"),
    pytest.param([], [], id="none wanted"),
])
def test_problems(statuses, names):
    assert [r["name"] for r in problems(MIXED, statuses)] == names


@pytest.mark.parametrize("found, statuses, expected", [
    pytest.param(MIXED, records.PROBLEM_STATUSES,
                 "3 problem(s): disk /data, memory, redis. disk /data: 93% used (limit 80%); "
                 "memory: MemAvailable missing; redis: does not answer", id="three problems"),
    pytest.param(MIXED, ["skipped"], "1 problem(s): public.t. public.t: lock not available", id="skipped"),
    pytest.param(MIXED[:1], records.PROBLEM_STATUSES, "", id="nothing wrong: empty"),
    pytest.param([], records.PROBLEM_STATUSES, "", id="no records"),
])
def test_problems_text(found, statuses, expected):
    assert problems_text(found, "problem(s)", statuses) == expected


def measured(name: str, action: str, status: str = "ok", detail: str = "", **figures) -> dict:
    return make_record(name, action, status, detail, after=figures or None)


@pytest.mark.parametrize("before, after, kwargs, expected", [
    pytest.param([measured("redis db 0", "memory", used_memory=900 * MB, ratio=0.9)],
                 [measured("redis db 0", "memory", used_memory=650 * MB, ratio=0.65)], {},
                 [make_record("redis db 0", "summary", "ok", "used memory 900.0 MB -> 650.0 MB; ratio 90.0% -> 65.0%",
                              before={"used_memory": 900 * MB, "ratio": 0.9},
                              after={"used_memory": 650 * MB, "ratio": 0.65})], id="bytes and ratio"),
    pytest.param([measured("database app", "report", total_bytes=52420608, dead_tuples=60000, tables=12)],
                 [measured("database app", "report", total_bytes=21004288, dead_tuples=0, tables=12)], {},
                 [make_record("database app", "summary", "ok",
                              "total bytes 50.0 MB -> 20.0 MB; dead tuples 60000 -> 0; tables 12 -> 12",
                              before={"total_bytes": 52420608, "dead_tuples": 60000, "tables": 12},
                              after={"total_bytes": 21004288, "dead_tuples": 0, "tables": 12})], id="bytes and counts"),
    pytest.param([measured("disk /", "disk", used_percent=85, used_kb=1.5)],
                 [measured("disk /", "disk", used_percent=40.5, used_kb=0.25)], {"check_mode": True},
                 [make_record("disk /", "summary", "ok",
                              "used percent 85% -> 40.5%; used kb 1.5 -> 0.25 (check mode: nothing was changed)",
                              before={"used_percent": 85, "used_kb": 1.5},
                              after={"used_percent": 40.5, "used_kb": 0.25})], id="percent, floats, check mode"),
    pytest.param([measured("redis db 0", "memory", used_memory=900 * MB, ratio=0.9, fragmented=True, policy="lru")],
                 [measured("redis db 0", "memory", used_memory=650 * MB, ratio=0.65, fragmented=False, policy="lru")],
                 {"keys": ["ratio", "evicted"]},
                 [make_record("redis db 0", "summary", "ok", "ratio 90.0% -> 65.0%; evicted ? -> ?",
                              before={"ratio": 0.9, "evicted": None}, after={"ratio": 0.65, "evicted": None})],
                 id="keys limit the figures, a missing one is ?"),
    pytest.param([measured("redis db 0", "memory", used_memory=1, new=5, policy="lru", flag=True)],
                 [measured("redis db 0", "memory", used_memory=1, added=3, policy="lru", flag=False)], {},
                 [make_record("redis db 0", "summary", "ok", "used memory 1 B -> 1 B",
                              before={"used_memory": 1}, after={"used_memory": 1})],
                 id="only numbers measured on both sides"),
    pytest.param([measured("redis db 0", "memory", used_memory=1), measured("redis db 0", "evict", used_memory=1),
                  measured("redis db 1", "memory", used_memory=1)],
                 [measured("redis db 0", "evict", used_memory=0), measured("redis db 2", "memory", used_memory=1)], {},
                 [make_record("redis db 0", "summary", "ok", "used memory 1 B -> 0 B",
                              before={"used_memory": 1}, after={"used_memory": 0})],
                 id="paired by name and action, unpaired left out"),
    pytest.param([measured("redis db 0", "memory", "failed", "connection refused")],
                 [measured("redis db 0", "memory", used_memory=1)], {},
                 [make_record("redis db 0", "summary", "unknown",
                              "not measured both before and after: connection refused")], id="failed before"),
    pytest.param([measured("redis db 0", "memory", used_memory=1)],
                 [measured("redis db 0", "memory", "failed", "timeout reading INFO")], {"check_mode": True},
                 [make_record("redis db 0", "summary", "unknown",
                              "not measured both before and after: timeout reading INFO")], id="failed after"),
    pytest.param([], [measured("redis db 0", "memory", used_memory=1)], {}, [], id="nothing before"),
    pytest.param([measured("redis db 0", "memory", used_memory=2), measured("disk /", "disk", used_percent=50)],
                 [measured("redis db 0", "memory", used_memory=1), measured("disk /", "disk", used_percent=40)],
                 {"action": "disk"},
                 [make_record("disk /", "summary", "ok", "used percent 50% -> 40%",
                              before={"used_percent": 50}, after={"used_percent": 40})], id="one action only"),
    pytest.param([measured("disk /", "disk", used_percent=50)], [measured("disk /", "disk", used_percent=40)],
                 {"action": "memory"}, [], id="an action measured on neither side"),
])
def test_compare_records(before, after, kwargs, expected):
    summaries = compare_records(before, after, **kwargs)
    assert summaries == expected
    assert result_problems(result(*summaries)) == []


@pytest.mark.parametrize("value, text", [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 kB"), (1536, "1.5 kB"), (50 * MB, "50.0 MB"),
    (3 * 1024 ** 3, "3.0 GB"), (2 * 1024 ** 4, "2.0 TB"), (5000 * 1024 ** 4, "5000.0 TB"),
])
def test_human_bytes(value, text):
    assert human_bytes(value) == text
