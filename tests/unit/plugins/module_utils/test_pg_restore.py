"""Unit tests of the production restore's decisions: input, the set it takes, the estimate, the statements that copy a
database's settings, the writers' plans and records, the messages. The real runs are in
tests/integration/test_restore.py."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import pg_restore
from ansible_collections.streamops.maintenance.plugins.module_utils.backup_set import write_hold
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_restore import (
    CONSERVATIVE_RESTORE_RATE,
    HOLDER,
    RestoreError,
    acl_statements,
    choose_set,
    connection_limit_statement,
    estimate_duration,
    names_for,
    require_gate_options,
    setting_statement,
    split_setting_list,
    validate,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import record_problems
from ansible_collections.streamops.maintenance.plugins.module_utils.restore_writers import (
    REPLICAS_ANNOTATION,
    ComposeWriters,
    WritersError,
    check_writers,
    compose_project_name,
    compose_writers,
    describe_writers,
    replicas_to_restore,
    start_patch,
    stop_patch,
)

COMPOSE = {"compose": {"project": "vitalstream", "services": ["api-gateway", "alarm-engine"]}}


def params(tmp_path, **extra):
    return {"database": "vitalstream", "backup_root": str(tmp_path), "writers": COMPOSE, **extra}


def text(statement):
    return statement.as_string(None)


# --------------------------------------------------------------------------- input


@pytest.mark.parametrize(("change", "words"), [
    ({"database": None}, "database is required"),
    ({"database": "postgres"}, "is the maintenance database"),
    ({"database": "live", "maintenance_database": "live"}, "is the maintenance database"),
    ({"database": "template1"}, "template database"),
    ({"database": "bad name"}, "must be a plain identifier"),
    ({"database": "x" * 40}, "at most 36 characters"),
    ({"backup_root": "backups"}, "must be an absolute path"),
    ({"backup_root": "/"}, "file system root"),
    ({"backup_set": "../other"}, "backup_set '../other'"),
    ({"operation": "drop"}, "must be restore or accept"),
    ({"writers": None}, "writers is required"),
    ({"writers": {}}, "writers is required"),
    ({"sql_checks": [{"name": "x"}]}, "each check needs a name and sql"),
    ({"jobs": 0}, "jobs 0 must be at least 1"),
    ({"critical_tables": ["a.b.c"]}, "not a plain identifier"),
    ({"operation": "accept", "writers": None}, "operation accept needs safety_set"),
])
def test_bad_input_is_named(tmp_path, change, words):
    with pytest.raises(Exception) as caught:
        validate(params(tmp_path, **change))
    assert words in caught.value.msg


def test_accept_needs_no_writers_and_defaults_are_safe(tmp_path):
    options = validate(params(tmp_path, operation="accept", writers=None, safety_set="vitalstream-20261201T020000Z"))
    assert options.writers == {} and options.keep_replaced and not options.drop_replaced
    options = validate(params(tmp_path))
    assert options.backup_set == "latest" and options.name == "vitalstream" and options.safety_root == tmp_path
    assert options.maintenance_database == "postgres"


@pytest.mark.parametrize(("gate", "refused"), [
    ({}, True),
    ({"windows": [], "emergency": {"approved_by": "", "reason": "", "ticket": ""}}, True),
    ({"windows": [{"name": "w", "rrule": "FREQ=DAILY", "duration": "1h"}]}, False),
    ({"emergency": {"approved_by": "cto", "reason": "corrupt", "ticket": "INC-1"}}, False),
])
def test_a_restore_needs_windows_or_an_approval(gate, refused):
    if refused:
        with pytest.raises(RestoreError, match="give the maintenance 'windows'.*or an 'emergency' approval"):
            require_gate_options(gate)
    else:
        require_gate_options(gate)


# --------------------------------------------------------------------------- the set


def make_set(root: Path, set_id: str, *, verified=False, hold=None):
    directory = root / set_id
    directory.mkdir(parents=True)
    (directory / "manifest.json").write_text(json.dumps({"backup_id": set_id, "complete": True}))
    if verified:
        (directory / "verified.json").write_text(json.dumps({"backup_id": set_id, "restore_seconds": 3.5}))
    if hold is not None:
        write_hold(directory, hold)
    return directory


def test_latest_is_the_newest_verified_set_of_the_name(tmp_path):
    make_set(tmp_path, "vitalstream-20261201T020000Z", verified=True)
    make_set(tmp_path, "vitalstream-20261202T020000Z")  # newer, not verified: passed over
    make_set(tmp_path, "other-20261203T020000Z", verified=True)  # another name
    chosen = choose_set(validate(params(tmp_path)))
    assert (chosen.set_id, chosen.kind) == ("vitalstream-20261201T020000Z", "verified")
    assert chosen.mark["restore_seconds"] == 3.5


def test_an_unverified_set_is_refused_naming_backup_verify(tmp_path):
    make_set(tmp_path, "vitalstream-20261202T020000Z")
    with pytest.raises(RestoreError, match="no verified backup set of vitalstream"):
        choose_set(validate(params(tmp_path)))
    with pytest.raises(RestoreError, match=r"is not verified \(no verified.json\): run backup_verify"):
        choose_set(validate(params(tmp_path, backup_set="vitalstream-20261202T020000Z")))


def test_verify_unmarked_lets_a_named_unmarked_set_through_to_be_verified_first(tmp_path):
    make_set(tmp_path, "vitalstream-20261202T020000Z")
    with pytest.raises(RestoreError, match="or give verify_unmarked"):
        choose_set(validate(params(tmp_path, backup_set="vitalstream-20261202T020000Z")))
    chosen = choose_set(validate(params(tmp_path, backup_set="vitalstream-20261202T020000Z", verify_unmarked=True)))
    assert (chosen.kind, chosen.mark) == ("unverified", {})
    # latest stays the newest VERIFIED set: an unmarked one is only ever taken when named.
    with pytest.raises(RestoreError, match="no verified backup set of vitalstream"):
        choose_set(validate(params(tmp_path, verify_unmarked=True)))


def test_a_safety_set_is_restorable_and_another_hold_is_not_a_verification(tmp_path):
    make_set(tmp_path, "vitalstream-20261202T020000Z", hold={"by": HOLDER, "kind": "safety", "reason": "r"})
    make_set(tmp_path, "vitalstream-20261203T020000Z", hold={"reason": "legal hold"})
    chosen = choose_set(validate(params(tmp_path, backup_set="vitalstream-20261202T020000Z")))
    assert chosen.kind == "safety"
    with pytest.raises(RestoreError, match="is not verified"):
        choose_set(validate(params(tmp_path, backup_set="vitalstream-20261203T020000Z")))


def test_a_set_outside_the_root_is_refused(tmp_path):
    with pytest.raises(RestoreError, match="does not exist"):
        choose_set(validate(params(tmp_path, backup_set="vitalstream-20261202T020000Z")))
    with pytest.raises(RestoreError, match="is not a set id"):
        choose_set(validate(params(tmp_path, backup_set="vitalstream")))


def test_names_are_derived_from_the_database_and_the_time():
    names = names_for("vitalstream", datetime(2026, 12, 6, 21, 0, 5, tzinfo=timezone.utc))
    assert (names.restored, names.replaced) == ("vitalstream__restore_20261206T210005Z",
                                                "vitalstream__replaced_20261206T210005Z")
    assert len("x" * 36 + names.replaced[len("vitalstream"):]) == 63


# --------------------------------------------------------------------------- the estimate


def test_the_estimate_uses_the_sets_own_restore_test():
    estimate = estimate_duration(restore_bytes=10 * 2**20, database_bytes=160 * 2**20,
                                 mark={"restore_seconds": 30.0, "restored_bytes": 200 * 2**20})
    assert estimate.seconds == 10 + 30 + 120  # dump at 16 MiB/s, the measured restore, the fixed overhead
    assert "as the set's own restore test took" in estimate.basis and "16 MiB/s" in estimate.basis


def test_a_set_verified_first_counts_its_restore_twice():
    estimate = estimate_duration(restore_bytes=CONSERVATIVE_RESTORE_RATE * 50, database_bytes=0, mark={},
                                 verify_first=True)
    assert estimate.seconds == 100 + 120 and "twice, as it is verified first" in estimate.basis


@pytest.mark.parametrize("mark", [{}, {"restore_seconds": 0}, {"restore_seconds": True}, {"restore_seconds": "9"}])
def test_without_a_measured_restore_the_estimate_is_conservative_and_says_so(mark):
    estimate = estimate_duration(restore_bytes=CONSERVATIVE_RESTORE_RATE * 50, database_bytes=0, mark=mark)
    assert estimate.seconds == 50 + 120
    assert "conservative 4 MiB/s (no restore test measured this set)" in estimate.basis


# --------------------------------------------------------------------------- database settings


@pytest.mark.parametrize(("value", "items"), [
    ('"$user", public', ["$user", "public"]),
    ("public", ["public"]),
    ("a,b , c", ["a", "b", "c"]),
    ('"we""ird", "with, comma"', ['we"ird', "with, comma"]),
    ("", []),
])
def test_list_settings_split_like_postgresql(value, items):
    assert split_setting_list(value) == items


def test_setting_statements_quote_names_and_values():
    assert text(setting_statement("new", None, "work_mem=8MB")) == """ALTER DATABASE "new" SET "work_mem" = '8MB'"""
    assert text(setting_statement("new", None, 'search_path="$user", public')) == \
        """ALTER DATABASE "new" SET "search_path" = '$user', 'public'"""
    assert text(setting_statement("new", "reporter", "statement_timeout=5s")) == \
        """ALTER ROLE "reporter" IN DATABASE "new" SET "statement_timeout" = '5s'"""
    assert text(setting_statement("new", None, "myapp.mode=o'neil")) == \
        """ALTER DATABASE "new" SET "myapp"."mode" = 'o''neil'"""
    with pytest.raises(RestoreError, match="is not name=value"):
        setting_statement("new", None, "x; DROP DATABASE live")


def test_a_default_acl_is_left_alone_and_another_is_copied_exactly():
    assert acl_statements("new", "owner", None) == []
    statements = [text(s) for s in acl_statements("new", "owner", [
        (None, "TEMPORARY", False), ("owner", "CONNECT", False), ("app", "CONNECT", True)])]
    assert statements == [
        'REVOKE ALL ON DATABASE "new" FROM PUBLIC',
        'REVOKE ALL ON DATABASE "new" FROM "owner"',
        'GRANT TEMPORARY ON DATABASE "new" TO PUBLIC',
        'GRANT CONNECT ON DATABASE "new" TO "owner"',
        'GRANT CONNECT ON DATABASE "new" TO "app" WITH GRANT OPTION',
    ]
    with pytest.raises(RestoreError, match="'DROP' of the live database"):
        acl_statements("new", "owner", [("app", "DROP", False)])


def test_connection_limit_only_when_there_is_one():
    assert connection_limit_statement("new", -1) is None
    assert text(connection_limit_statement("new", 50)) == 'ALTER DATABASE "new" CONNECTION LIMIT 50'


# --------------------------------------------------------------------------- writers: the option


def test_writers_option_is_checked():
    assert check_writers(COMPOSE) == {"start_timeout": 120, "compose": {
        "project": "vitalstream", "services": ["api-gateway", "alarm-engine"], "stop_timeout": 10}}
    assert check_writers({"compose": {"project_dir": "/srv/VitalStream.prod", "services": ["api"]}})["compose"][
        "project"] == "vitalstreamprod"
    assert check_writers({"kubernetes": {"namespace": "stream", "selector": "app=api"}, "start_timeout": 30}) == {
        "start_timeout": 30, "kubernetes": {"namespace": "stream", "deployments": [], "selector": "app=api"}}


@pytest.mark.parametrize(("raw", "words"), [
    (None, "writers is required"),
    ({"compose": None, "kubernetes": None}, "exactly one of compose or kubernetes, got neither"),
    ({**COMPOSE, "kubernetes": {"namespace": "n", "deployments": ["d"]}}, "got compose and kubernetes"),
    ({**COMPOSE, "docker": {}}, "unknown key(s) docker"),
    ({"compose": {"project": "vitalstream", "services": []}}, "must list the services"),
    ({"compose": {"services": ["a"]}}, "project '' is not a compose project name"),
    ({"compose": {"project": "Vital Stream", "services": ["a"]}}, "is not a compose project name"),
    ({"compose": {"project": "v", "services": ["a"], "service": "a"}}, "unknown key(s) service"),
    ({"compose": {"project": "v", "services": ["a"], "stop_timeout": -1}}, "stop_timeout -1"),
    ({"kubernetes": {"namespace": "n"}}, "exactly one of deployments (names) or selector"),
    ({"kubernetes": {"namespace": "n", "deployments": ["a"], "selector": "x=y"}}, "exactly one of deployments"),
    ({"kubernetes": {"namespace": "Bad_NS", "deployments": ["a"]}}, "is not a namespace name"),
    ({"kubernetes": {"namespace": "n", "deployments": ["Bad_Name"]}}, "must be Deployment names"),
    ({**COMPOSE, "start_timeout": 0}, "start_timeout 0"),
])
def test_bad_writers_are_named(raw, words):
    with pytest.raises(WritersError) as caught:
        check_writers(raw)
    assert words in caught.value.msg


def test_writers_are_described_for_messages():
    assert describe_writers(check_writers(COMPOSE)) == "compose project vitalstream services api-gateway, alarm-engine"
    assert describe_writers(check_writers({"kubernetes": {"namespace": "s", "deployments": ["a", "b"]}})) == \
        "Deployments in namespace s: a, b"
    assert compose_project_name("/srv/apps/My-App_2/") == "my-app_2"


# --------------------------------------------------------------------------- writers: decisions


def test_only_the_listed_services_containers_are_writers():
    containers = [{"name": "vs_api-gateway_1", "service": "api-gateway", "status": "running"},
                  {"name": "vs_alarm-engine_1", "service": "alarm-engine", "status": "exited"},
                  {"name": "vs_nginx_1", "service": "nginx", "status": "running"},
                  {"name": "vs_api-gateway_run_1", "service": "api-gateway", "status": "running", "oneoff": True}]
    mine, missing = compose_writers(containers, ["api-gateway", "alarm-engine", "worker"])
    assert [c["name"] for c in mine] == ["vs_alarm-engine_1", "vs_api-gateway_1"] and missing == ["worker"]


def test_replicas_are_kept_on_the_deployment_while_it_is_stopped():
    assert stop_patch(3) == {"metadata": {"annotations": {REPLICAS_ANNOTATION: "3"}}, "spec": {"replicas": 0}}
    assert start_patch(3) == {"metadata": {"annotations": {REPLICAS_ANNOTATION: None}}, "spec": {"replicas": 3}}
    assert replicas_to_restore({REPLICAS_ANNOTATION: "3"}) == 3
    assert replicas_to_restore({}) is None and replicas_to_restore(None) is None
    with pytest.raises(WritersError, match="is not a number of replicas"):
        replicas_to_restore({REPLICAS_ANNOTATION: "three"})


class FakeContainer:
    def __init__(self, name, service, status, *, starts_as="running", health=None):
        self.name, self.status = name, status
        self.labels = {"com.docker.compose.project": "vs", "com.docker.compose.service": service}
        self.attrs = {"State": {"Status": status}}
        self.starts_as, self.health, self.calls = starts_as, health, []

    def stop(self, timeout):
        self.calls.append(("stop", timeout))
        self.attrs = {"State": {"Status": "exited", "ExitCode": 137}}

    def start(self):
        self.calls.append(("start",))
        state = {"Status": self.starts_as, "ExitCode": 1 if self.starts_as == "exited" else 0}
        if self.health:
            state["Health"] = {"Status": self.health}
        self.attrs = {"State": state}

    def reload(self):
        pass


def compose_with(*containers, start_timeout=1):
    client = SimpleNamespace(containers=SimpleNamespace(list=lambda **_kw: list(containers)))
    ticks = iter(range(1000))
    return ComposeWriters(client, {"project": "vs", "services": ["api", "worker"], "stop_timeout": 3},
                          engine="unix:///run/docker.sock", start_timeout=start_timeout, clock=lambda: next(ticks),
                          sleep=lambda _s: None)


def test_compose_writers_stop_what_runs_and_start_exactly_that_again():
    api, worker = FakeContainer("vs_api_1", "api", "running"), FakeContainer("vs_worker_1", "worker", "exited")
    writers = compose_with(api, worker)
    found = writers.running()
    assert [(w.name, w.running) for w in found] == [("container vs_api_1", True), ("container vs_worker_1", False)]
    records: list = []
    writers.stop(found, records)
    assert [(r["name"], r["action"], r["status"]) for r in records] == [
        ("container vs_api_1", "stop_writer", "done"), ("container vs_worker_1", "stop_writer", "unchanged")]
    assert api.calls == [("stop", 3)] and worker.calls == []
    assert writers.start(records) is True
    assert records[-1]["status"] == "done" and api.calls[-1] == ("start",) and worker.calls == []
    assert all(record_problems(r) == [] for r in records)


def test_a_writer_that_does_not_come_back_is_a_failed_record():
    api = FakeContainer("vs_api_1", "api", "running", starts_as="exited")
    writers = compose_with(api, FakeContainer("vs_worker_1", "worker", "running", health="unhealthy",
                                              starts_as="running"))
    records: list = []
    writers.stop(writers.running(), records)
    assert writers.start(records) is False
    failed = {r["name"]: r["detail"] for r in records if r["action"] == "start_writer" and r["status"] == "failed"}
    assert failed["container vs_api_1"] == "started, but exited with code 1"
    assert "not running healthy within 1s" in failed["container vs_worker_1"]


def test_a_listed_service_without_a_container_refuses_before_anything_stops():
    api = FakeContainer("vs_api_1", "api", "running")
    with pytest.raises(WritersError, match="has no container of service.s. worker"):
        compose_with(api).running()
    assert api.calls == []


# --------------------------------------------------------------------------- messages


def test_the_failure_message_before_the_swap_says_the_live_database_is_untouched(tmp_path):
    run = pg_restore.RestoreRun(params(tmp_path, emergency={"approved_by": "a", "reason": "b", "ticket": "c"}),
                                check_mode=False, clock=lambda: datetime(2026, 12, 6, tzinfo=timezone.utc),
                                writers_factory=None)
    run.add("container vs_api_1", "stop_writer", "done", "stopped")
    run.dropped_restored = True
    live = SimpleNamespace(name="vitalstream")
    names = names_for("vitalstream", datetime(2026, 12, 6, tzinfo=timezone.utc))
    error = run.failed_before_swap(RestoreError(msg="pg_restore exited with 1"), True, live, names)
    assert error.msg == ("restore of vitalstream failed before the swap: pg_restore exited with 1; the live database "
                         "vitalstream is untouched and still serving, vitalstream__restore_20261206T000000Z was "
                         "dropped, the writers were started again; steps done: stop_writer")
    error = run.failed_before_swap(RestoreError(msg="x"), False, live, names)
    assert "NOT every writer could be started again" in error.msg
