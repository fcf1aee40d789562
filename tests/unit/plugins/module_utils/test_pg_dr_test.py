"""The decisions of the DR test: is the target the source, which set, RTO/RPO against their targets, the verdict."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from ansible_collections.streamops.maintenance.plugins.module_utils import pg_dr_test as dr
from ansible_collections.streamops.maintenance.plugins.module_utils.errors import MaintenanceError
from ansible_collections.streamops.maintenance.plugins.module_utils.pg import pg_connection_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.records import RECORD_KEYS, record_problems
from ansible_collections.streamops.maintenance.plugins.modules import pg_dr_test as module

# A resolver that knows a few names (the real one asks the system's; tests never do).
NAMES = {"localhost": ["127.0.0.1", "::1"], "db.internal": ["10.0.0.5"], "db-alias.internal": ["10.0.0.5"],
         "dr.internal": ["10.0.9.9"]}


def resolve(host):
    return NAMES.get(host.lower(), [])


def endpoint(text, label="x"):
    host, _colon, port = text.rpartition(":")
    return dr.Endpoint(host, int(port), label)


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:5432", ("127.0.0.1", 5432)),
    ("[::1]:5433", ("::1", 5433)),
    ("::1:5432", ("::1", 5432)),
    ("/var/run/postgresql:5432", ("/var/run/postgresql", 5432)),
    ("db.internal:6432", ("db.internal", 6432)),
    ("db.internal", None),
    ("db.internal:port", None),
    (":5432", None),
    (None, None),
    (5432, None),
])
def test_parse_server(text, expected):
    found = dr.parse_server(text, "the set's postgres.server")
    assert (None if found is None else (found.host, found.port)) == expected


@pytest.mark.parametrize(("one", "other", "same"), [
    ("127.0.0.1:5432", "127.0.0.1:5432", True),
    ("localhost:5432", "127.0.0.1:5432", True),  # one server, two names
    ("::1:5432", "127.0.0.1:5432", True),  # every loopback address is this machine
    ("127.0.0.2:5432", "localhost:5432", True),
    ("/var/run/postgresql:5432", "127.0.0.1:5432", True),  # a socket and loopback TCP on one port: one server
    ("127.0.0.1:5432", "127.0.0.1:5433", False),  # another port is another postmaster
    ("db.internal:5432", "10.0.0.5:5432", True),  # a name and its address
    ("db.internal:5432", "db-alias.internal:5432", True),  # two names of one address
    ("DB.internal:5432", "db.internal:5432", True),
    ("db.internal:5432", "dr.internal:5432", False),
    ("unknown-a:5432", "unknown-b:5432", False),  # names that do not resolve compare as names
    ("unknown-a:5432", "UNKNOWN-A:5432", True),
    ("db.internal:5432", "localhost:5432", False),
])
def test_same_endpoint(one, other, same):
    assert dr.same_endpoint(endpoint(one), endpoint(other), resolve) is same
    assert dr.same_endpoint(endpoint(other), endpoint(one), resolve) is same


SOURCE = "10.0.0.5:5432"


def identity(endpoints=(), ids=(), problems=()):
    return dr.ServerIdentity([endpoint(e, label) for e, label in endpoints], list(ids), list(problems))


@pytest.mark.parametrize(("source", "target", "status", "rule", "words"), [
    # The target's named host and port is the source connection's.
    (identity([(SOURCE, "the source connection")]), identity([("db.internal:5432", "the target connection")]),
     "failed", "host and port", "rule: same host and port: target db.internal:5432 (the target connection) is "
                                "10.0.0.5:5432 (the source connection)"),
    # ...or the host and port the set was taken from.
    (identity([("10.0.0.7:5432", "the source connection"), (SOURCE, "the set's postgres.server")]),
     identity([("db-alias.internal:5432", "the target connection")]),
     "failed", "host and port", "is 10.0.0.5:5432 (the set's postgres.server)"),
    # Another address (a pooler's port) of the same cluster: the system identifier says so.
    (identity([(SOURCE, "the source connection")], [("700", "the live source")]),
     identity([("10.0.0.5:6432", "the target connection")], [("700", "the target")]),
     "failed", "system identifier", "rule: same system_identifier 700 as the live source"),
    (identity([(SOURCE, "the source connection")], [("700", "the set's postgres.system_identifier")],
              ["the live source does not answer"]),
     identity([("dr.internal:5432", "the target connection")], [("700", "the target")]),
     "failed", "system identifier", "as the set's postgres.system_identifier"),
    # The target's identifier cannot be read: tested, never clean.
    (identity([(SOURCE, "the source connection")], [("700", "the live source")]),
     identity([("dr.internal:5432", "the target connection")], [],
              ["the target: permission denied for function pg_control_system"]),
     "unknown", None, "system_identifier cannot be read (the target: permission denied for function "
                      "pg_control_system); host and port differ from 10.0.0.5:5432 (the source connection)"),
    # No identifier of the source is known (an old set, the source down): nothing to compare with.
    (identity([(SOURCE, "the source connection")], [],
              ["the set's manifest has no postgres.system_identifier", "the live source does not answer (x)"]),
     identity([("dr.internal:5432", "the target connection")], [("900", "the target")]),
     "unknown", None, "no system_identifier of the source is known (the set's manifest has no "
                      "postgres.system_identifier; the live source does not answer (x))"),
    (identity([(SOURCE, "the source connection"), (SOURCE, "the set's postgres.server")],
              [("700", "the live source"), ("700", "the set's postgres.system_identifier")]),
     identity([("dr.internal:5432", "the target connection")], [("900", "the target")]),
     "ok", None, "system_identifier 900 differs from 700 (the live source, the set's postgres.system_identifier); "
                 "host and port differ from 10.0.0.5:5432 (the source connection, the set's postgres.server)"),
])
def test_judge_target(source, target, status, rule, words):
    verdict = dr.judge_target(source, target, target_name="dr.internal:5432/vs_dr", resolve=resolve)
    assert (verdict.status, verdict.rule) == (status, rule)
    assert words in verdict.detail
    if status == "failed":
        assert verdict.detail.startswith("refused: ") and verdict.detail.endswith("nothing was created on it")


def test_judge_target_checks_host_and_port_before_identifiers():
    """A target named like the source is refused before a connection to it could read anything."""
    verdict = dr.judge_target(identity([("127.0.0.1:5432", "the source connection")]),
                              identity([("localhost:5432", "the target connection")]),
                              target_name="localhost:5432/x", resolve=resolve)
    assert verdict.rule == "host and port"


@pytest.mark.parametrize(("manifest", "expected", "source"), [
    ({"postgres": {"snapshot_at": "2027-01-02T02:00:05+00:00"}, "started_at": "2027-01-02T02:00:00+00:00"},
     datetime(2027, 1, 2, 2, 0, 5, tzinfo=timezone.utc), "postgres.snapshot_at"),
    ({"postgres": {}, "started_at": "2027-01-02T02:00:00+00:00"},
     datetime(2027, 1, 2, 2, 0, tzinfo=timezone.utc), "started_at"),  # a set from before snapshot_at
    ({"postgres": {"snapshot_at": "yesterday"}, "started_at": "2027-01-02T02:00:00"},
     datetime(2027, 1, 2, 2, 0, tzinfo=timezone.utc), "started_at"),  # naive: UTC, as pg_backup writes
    ({"postgres": None}, None, "no snapshot_at or started_at in the manifest"),
])
def test_snapshot_time(manifest, expected, source):
    assert dr.snapshot_time(manifest) == (expected, source)


@pytest.mark.parametrize(("seconds", "target", "status", "words"), [
    (30.0, "2h", "ok", "RTO 30.0s (m), within rto_target 2h"),
    (7300.0, "2h", "breach", "RTO 2h 1m 40s (m), over rto_target 2h"),
    (7200.0, "2h", "ok", "within"),  # exactly on target is within
    (30.0, None, "ok", "no rto_target to judge it by"),
    (None, "2h", "unknown", "RTO not measured: m"),
])
def test_judge_objective(seconds, target, status, words):
    found = dr.judge_objective("rto", seconds, target, measured="m")
    assert found["status"] == status and words in found["detail"], found
    assert found["after"] == {"seconds": seconds, "target_seconds": 7200.0 if target else None}
    assert record_problems(found) == []


def test_judge_objective_names_a_bad_target():
    with pytest.raises(MaintenanceError, match="rpo_target 'a day' is not a duration"):
        dr.judge_objective("rpo", 1.0, "a day", measured="m")


@pytest.mark.parametrize(("statuses", "check_mode", "verdict"), [
    (["ok", "ok", "done", "ok"], False, "ok"),
    (["ok", "unknown", "done"], False, "unknown"),
    (["ok", "unknown", "breach"], False, "breach"),
    (["ok", "breach", "failed"], False, "failed"),
    (["ok", "ok", "planned", "ok"], True, "planned"),
    (["ok", "planned", "breach"], True, "breach"),  # a set already older than rpo_target shows in the plan
    (["ok", "failed"], True, "failed"),  # a refusal in the plan fails as the real run would
    (["unchanged"], False, "ok"),
])
def test_summary_status(statuses, check_mode, verdict):
    records = [{"status": status} for status in statuses]
    assert dr.summary_status(records, check_mode=check_mode) == verdict


def test_summary_record_has_exactly_the_shape_the_report_reads():
    found = dr.summary_record("ok", "passed", backup_id="vs-20270102T020000Z", source_server="10.0.0.5:5432",
                              target_server="dr.internal:5432", target_database="vs_dr", rto_seconds=41.23456,
                              rto_target="2h", rpo_seconds=22320.0, rpo_target=None,
                              tables=[{"table": "public.alarms", "rows": 1, "expected_rows": 1, "checksum": "c",
                                       "expected_checksum": "c", "ok": True}], seconds=41.3)
    assert set(found) == set(RECORD_KEYS) and record_problems(found) == []
    assert (found["name"], found["action"]) == ("dr test", "dr_test")
    assert found["after"] == {"backup_id": "vs-20270102T020000Z", "source_server": "10.0.0.5:5432",
                              "target_server": "dr.internal:5432", "target_database": "vs_dr",
                              "rto_seconds": 41.235, "rto_target_seconds": 7200.0, "rpo_seconds": 22320.0,
                              "rpo_target_seconds": None, "tables": found["after"]["tables"]}


def test_table_rows():
    class Comparison:
        def __init__(self, table, rows, expected, problems):
            self.table, self.rows, self.expected_rows = table, rows, expected
            self.checksum, self.expected_checksum = "a", "a"
            self._problems = problems

        def problems(self):
            return self._problems

    rows = dr.table_rows([Comparison("public.a", 3, 3, []), Comparison("public.b", 2, 3, ["public.b: 2 rows"])])
    assert rows == [
        {"table": "public.a", "rows": 3, "expected_rows": 3, "checksum": "a", "expected_checksum": "a", "ok": True},
        {"table": "public.b", "rows": 2, "expected_rows": 3, "checksum": "a", "expected_checksum": "a", "ok": False}]


GOOD = {"target": {"login_host": "dr.internal"}, "backup_root": "/backup/vs", "target_database": None,
        "rto_target": "2h", "rpo_target": "26h", "sql_checks": [], "jobs": 2}


@pytest.mark.parametrize(("change", "words"), [
    ({"target": {"login_user": "dr"}}, "target names the DR server explicitly"),
    ({"target": {}}, "target names the DR server explicitly"),
    ({"backup_root": None}, "give backup_root"),
    ({"backup_root": "backup/vs"}, "backup_root 'backup/vs' must be an absolute path"),
    ({"target_database": "vs-dr; DROP"}, "target_database 'vs-dr; DROP' is not a plain identifier"),
    ({"rto_target": "fast"}, "rto_target 'fast' is not a duration"),
    ({"rpo_target": "0"}, "rpo_target '0' must be greater than zero"),
    ({"sql_checks": [{"name": "x"}]}, "sql_checks: each check needs a name and sql"),
    ({"jobs": 0}, "jobs 0 must be at least 1"),
])
def test_validate_names_the_bad_value(change, words):
    with pytest.raises(MaintenanceError) as raised:
        dr.validate({**GOOD, **change})
    assert words in raised.value.msg


def test_validate_takes_s3_instead_of_a_backup_root():
    dr.validate({**GOOD, "backup_root": None, "s3": {"bucket": "b"}, "target": {"login_unix_socket": "/run/pg"}})


def test_the_target_takes_the_connection_keys_without_the_environment():
    """PGHOST describes the source (or nothing): a target taken from it could be the source itself."""
    options = dr.target_argument_spec()["target"]["options"]
    source = pg_connection_argument_spec()
    assert set(options) == set(source)
    assert all("fallback" not in option for option in options.values())
    assert options["login_password"]["no_log"] is True
    for key, option in source.items():
        assert {k: v for k, v in option.items() if k != "fallback"} == options[key]


def test_the_documented_target_matches_its_argument_spec():
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]["target"]["suboptions"]
    options = dr.target_argument_spec()["target"]["options"]
    assert set(documented) == set(options)
    for key, option in options.items():
        assert documented[key]["type"] == option["type"], key
        assert documented[key].get("aliases", []) == option.get("aliases", []), key
        assert documented[key].get("default") == option.get("default"), key
        assert documented[key].get("choices") == option.get("choices"), key


def test_target_connection_is_its_own():
    kwargs = dr.target_kwargs({"login_host": "db.internal", "login_password": "source secret",
                               "target": {"login_host": "dr.internal", "login_user": "dr", "database": None}})
    assert kwargs["host"] == "dr.internal" and kwargs["dbname"] == "postgres" and "password" not in kwargs


# --------------------------------------------------------------------------- which set


def make_set(root: Path, set_id: str, *, verified: bool, complete: bool = True) -> Path:
    directory = root / set_id
    directory.mkdir(parents=True)
    if complete:
        (directory / "manifest.json").write_text(json.dumps({"backup_id": set_id}))
    if verified:
        (directory / "verified.json").write_text(json.dumps({"backup_id": set_id, "restore_seconds": 12.5}))
    return directory


def test_the_newest_verified_set_is_taken_over_a_newer_unverified_one(tmp_path):
    make_set(tmp_path, "vs-20270101T020000Z", verified=True)
    make_set(tmp_path, "vs-20270102T020000Z", verified=True)
    make_set(tmp_path, "vs-20270103T020000Z", verified=False)
    make_set(tmp_path, "vs-20270104T020000Z", verified=True, complete=False)
    make_set(tmp_path, "other-20270105T020000Z", verified=True)
    found = dr.locate_local(tmp_path, {}, "vs")
    assert (found.set_id, found.verified) == ("vs-20270102T020000Z", True)
    assert found.verified_mark["restore_seconds"] == 12.5


def test_a_named_set_is_taken_verified_or_not(tmp_path):
    make_set(tmp_path, "vs-20270103T020000Z", verified=False)
    found = dr.locate_local(tmp_path, {"backup_set": "vs-20270103T020000Z"}, "vs")
    assert (found.set_id, found.verified, found.verified_mark) == ("vs-20270103T020000Z", False, None)


@pytest.mark.parametrize(("sets", "params", "words"), [
    ([], {}, "no verified backup set of vs under "),
    ([("vs-20270103T020000Z", False)], {},
     "the newest complete set vs-20270103T020000Z is not verified (run backup_verify on it, or name it with backup_set)"),
    ([], {"backup_set": "../../etc"}, "'../../etc' is not a set id"),
    ([], {"backup_set": "vs-20270109T020000Z"}, "backup set 'vs-20270109T020000Z' does not exist"),
])
def test_no_set_is_refused_with_why(tmp_path, sets, params, words):
    for set_id, verified in sets:
        make_set(tmp_path, set_id, verified=verified)
    with pytest.raises(MaintenanceError) as raised:
        dr.locate_local(tmp_path, params, "vs")
    assert words in raised.value.msg


@pytest.mark.parametrize(("params", "name", "words"), [
    ({"backup_set": "not-a-set"}, "vs", "backup_set 'not-a-set' is not a set id"),
    ({"backup_set": "vs-20271399T020000Z"}, "vs", "is not a set id"),  # month 13
    ({}, None, "finding the newest set in S3 needs name (or database)"),
])
def test_s3_set_refusals_before_any_request(params, name, words):
    with pytest.raises(MaintenanceError) as raised:
        dr.s3_set_prefix(None, params, name)
    assert words in raised.value.msg


def test_only_sets_with_data_restore_onto_an_empty_server():
    assert ["full"] in dr.DATA_PARTS and ["schema", "critical_data"] in dr.DATA_PARTS
    assert ["schema"] not in dr.DATA_PARTS


@pytest.mark.parametrize(("seconds", "target", "text"), [
    (41.23, None, "41.2s"),
    (0.4567, None, "0.457s"),
    (25320.0, "6h", "7h 2m (over its 6h objective)"),
    (30.0, "PT0.001S", "30.0s (over its 0.001s objective)"),
    (30.0, "2h", "30.0s (within its 2h objective)"),
    (None, "2h", "not measured"),
])
def test_objective_text(seconds, target, text):
    assert dr.objective_text(seconds, target, "not measured") == text
