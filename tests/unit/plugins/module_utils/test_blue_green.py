"""The blue/green decisions over an in-memory platform: what moves traffic and what never does.

The real drivers are tested against the lab's Kubernetes and Docker engine
(tests/integration/test_blue_green_*.py); this checks the flow's rules alone.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.blue_green import (
    BlueGreen,
    ColourState,
    DeployError,
    Options,
    check_image_tag,
    parse_checks,
    passed_checks,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.blue_green_runner import plan_diff, validate
from ansible_collections.streamops.maintenance.plugins.module_utils.blue_green_spec import (
    SpecError,
    normalize_spec,
    spec_changes,
    spec_of_version,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.compose_project import SPEC_LABEL, override_of
from ansible_collections.streamops.maintenance.plugins.module_utils.errors import WindowClosedError
from ansible_collections.streamops.maintenance.plugins.module_utils.platform_k8s import map_patch, spec_patch, with_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.records import WINDOW_KEYS, result_problems
from ansible_collections.streamops.maintenance.plugins.module_utils.window import guard_from_params


class MemoryPlatform:
    kind = "memory"

    def __init__(self, live="v1", ready_fails=False, kept=None):
        # ``kept``: a version green already runs, ready (started by hand, before any history).
        green = ColourState("green", True, kept, True, 1) if kept else ColourState("green")
        self.states = {"blue": ColourState("blue", True, live, True, 1), "green": green}
        self.traffic = "blue"
        self.ready_fails = ready_fails
        self.log = []
        self.entries = []

    def colours(self):
        return {c: ColourState(**vars(s)) for c, s in self.states.items()}

    def active(self):
        return self.traffic

    def plan(self, colour, version, spec=None):
        return [f"{colour} -> {version}"]

    def deploy(self, colour, version, spec=None):
        self.log.append(("deploy", colour, version))
        self.states[colour] = ColourState(colour, True, version, False, 1, spec=dict(spec or {}))

    def wait_ready(self, colour, version, timeout):
        if self.ready_fails:
            raise DeployError(msg="CrashLoopBackOff")
        self.states[colour].ready = True

    def targets(self, colour):
        return []

    def front_targets(self):
        return []

    def switch(self, colour):
        self.log.append(("switch", colour))
        self.traffic = colour

    def history(self):
        return list(self.entries)

    def save_history(self, entries):
        self.entries = entries

    def mark_kept(self, colour, until):
        self.states[colour].keep_until = until

    def retire(self, colour):
        self.log.append(("retire", colour))
        self.states[colour].replicas = 0


def options(**overrides):
    values = {"version": "v2", "ready_timeout": 5, "smoke": [], "post": [], "app": "api"}
    values.update(overrides)
    return Options(**values)


def command_check(code):
    return parse_checks([{"command": ["sh", "-c", f"exit {code}"], "retries": 1}], "checks")


def test_a_good_deploy_switches_and_keeps_the_previous_colour():
    platform = MemoryPlatform()
    outcome = BlueGreen(platform, None, options(smoke=command_check(0)), check_mode=False).deploy("v2")
    assert not outcome.failed and platform.traffic == "green" and platform.states["blue"].version == "v1"
    assert [e["result"] for e in platform.entries] == ["switching", "live"]


def test_smoke_failure_never_moves_traffic_and_undoes_the_migration(tmp_path):
    marker = tmp_path / "undone"
    platform = MemoryPlatform()
    flow = BlueGreen(platform, None, options(smoke=command_check(1), migration=["true"],
                                             migration_rollback=["touch", str(marker)]), check_mode=False)
    outcome = flow.deploy("v2")
    assert outcome.failed and "smoke checks on green failed" in outcome.msg and "migration rolled back" in outcome.msg
    assert platform.traffic == "blue" and ("switch", "green") not in platform.log and marker.exists()


def test_post_switch_failure_switches_back():
    platform = MemoryPlatform()
    outcome = BlueGreen(platform, None, options(post=command_check(3)), check_mode=False).deploy("v2")
    assert outcome.failed and "traffic is back on blue (v1)" in outcome.msg
    assert platform.log[-2:] == [("switch", "green"), ("switch", "blue")] and platform.traffic == "blue"


def test_not_ready_never_moves_traffic():
    platform = MemoryPlatform(ready_fails=True)
    outcome = BlueGreen(platform, None, options(), check_mode=False).deploy("v2")
    assert outcome.failed and "CrashLoopBackOff" in outcome.msg and platform.traffic == "blue"


def test_outside_the_window_nothing_changes():
    guard = guard_from_params({"windows": [{"name": "w", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", "duration": "1h"}],
                               "now": "2026-11-24T15:00:00Z"})
    platform = MemoryPlatform()
    with pytest.raises(WindowClosedError, match="refusing to switch traffic to v2"):
        BlueGreen(platform, guard, options(), check_mode=False).deploy("v2")
    assert platform.log == []


def test_check_mode_and_the_live_version_change_nothing():
    platform = MemoryPlatform()
    outcome = BlueGreen(platform, None, options(), check_mode=True).deploy("v2")
    assert outcome.changed and outcome.plan["to"] == {"colour": "green", "version": "v2"} and platform.log == []
    outcome = BlueGreen(platform, None, options(), check_mode=False).deploy("v1")
    assert not outcome.changed and platform.log == []


def test_rollback_needs_a_ready_kept_colour_and_expired_keeps_are_retired():
    platform = MemoryPlatform()
    with pytest.raises(DeployError, match="no previous version is kept on green"):
        BlueGreen(platform, None, options(), check_mode=False).rollback()
    BlueGreen(platform, None, options(), check_mode=False).deploy("v2")
    outcome = BlueGreen(platform, None, options(), check_mode=False).rollback()
    assert outcome.version_after == "v1" and platform.traffic == "blue"
    platform.states["green"].keep_until = "2026-01-01T00:00:00+00:00"
    later = BlueGreen(platform, None, options(), check_mode=False, clock=lambda: datetime(2026, 2, 1, tzinfo=timezone.utc))
    assert later.deploy("v1").changed and ("retire", "green") in platform.log and platform.traffic == "blue"


@pytest.mark.parametrize("params, message", [
    ({"state": "deployed"}, "state deployed needs version"),
    ({"state": "deployed", "version": "v 2"}, "is not an image tag"),
    ({"state": "rolled_back", "version": "v2"}, "use to_version"),
    ({"state": "deployed", "version": "v2", "ready_timeout": 0}, "ready_timeout 0"),
    ({"state": "deployed", "version": "v2", "smoke_checks": [{"path": "health"}]}, "must start with '/'"),
    ({"state": "deployed", "version": "v2", "smoke_checks": [{"command": "curl x"}]}, "list of strings"),
    ({"state": "deployed", "version": "v2", "smoke_checks": [{"pth": "/"}]}, "unknown key(s) pth"),
    ({"state": "deployed", "version": "v2", "migration": {"rollback_command": ["x"]}}, "needs migration.command"),
    ({"state": "deployed", "version": "v2", "version_check_path": "version"}, "version_check_path 'version' must start"),
])
def test_bad_input_is_named(params, message):
    with pytest.raises(DeployError) as caught:
        validate({"ready_timeout": 300, **params})
    assert message in caught.value.msg


def test_a_switch_that_fails_half_way_goes_back():
    platform = MemoryPlatform()
    real_switch = platform.switch

    def switch(colour):
        real_switch(colour)
        if colour == "green":
            raise DeployError(msg="endpoints did not follow")

    platform.switch = switch
    outcome = BlueGreen(platform, None, options(), check_mode=False).deploy("v2")
    assert outcome.failed and "endpoints did not follow" in outcome.msg and "traffic is back on blue (v1)" in outcome.msg
    assert platform.traffic == "blue" and outcome.active_after == "blue"


def test_a_rollback_without_target_never_switches_to_a_version_that_failed_its_checks():
    platform = MemoryPlatform()
    BlueGreen(platform, None, options(), check_mode=False).deploy("v2")
    # v3 fails its smoke checks on blue: blue now runs v3, which never had traffic.
    failed = BlueGreen(platform, None, options(smoke=command_check(1)), check_mode=False).deploy("v3")
    assert failed.failed and platform.traffic == "green"
    switches = [entry for entry in platform.log if entry[0] == "switch"]
    with pytest.raises(DeployError, match="v3 on blue never passed its checks"):
        BlueGreen(platform, None, options(), check_mode=False).rollback()
    assert [entry for entry in platform.log if entry[0] == "switch"] == switches and platform.traffic == "green"
    # Named, v1 is deployed again through the checks instead of switched to blindly.
    outcome = BlueGreen(platform, None, options(to_version="v1"), check_mode=False).rollback()
    assert outcome.version_after == "v1" and platform.log[-2:] == [("deploy", "blue", "v1"), ("switch", "blue")]


def test_a_version_that_failed_after_the_switch_is_no_rollback_target_either():
    platform = MemoryPlatform()
    BlueGreen(platform, None, options(), check_mode=False).deploy("v2")
    BlueGreen(platform, None, options(post=command_check(3)), check_mode=False).deploy("v3")
    assert platform.traffic == "green" and platform.states["blue"].version == "v3"
    with pytest.raises(DeployError, match="v3 on blue never passed its checks"):
        BlueGreen(platform, None, options(), check_mode=False).rollback()


def test_a_rollback_run_twice_does_not_flip_back():
    platform = MemoryPlatform()
    BlueGreen(platform, None, options(), check_mode=False).deploy("v2")
    first = BlueGreen(platform, None, options(), check_mode=False).rollback()
    assert first.changed and platform.traffic == "blue" and first.version_after == "v1"
    again = BlueGreen(platform, None, options(), check_mode=False).rollback()
    assert not again.changed and platform.traffic == "blue" and "nothing left to undo" in again.msg
    named = BlueGreen(platform, None, options(to_version="v1"), check_mode=False).rollback()
    assert not named.changed and named.version_after == "v1"
    # After a new deploy there is something to undo again.
    BlueGreen(platform, None, options(), check_mode=False).deploy("v3")
    assert BlueGreen(platform, None, options(), check_mode=False).rollback().version_after == "v1"


@pytest.mark.parametrize("history, colour, version, expected", [
    ([], "blue", "v1", None),
    ([{"colour": "green", "version": "v2", "result": "live", "from_colour": "blue", "from_version": "v1"}],
     "blue", "v1", True),
    ([{"colour": "green", "version": "v2", "result": "live", "from_colour": "blue", "from_version": "v1"}],
     "green", "v2", True),
    ([{"colour": "green", "version": "v2", "result": "live", "from_colour": "blue", "from_version": "v1"},
      {"colour": "blue", "version": "v3", "result": "failed before switch"}], "blue", "v3", False),
    ([{"colour": "green", "version": "v2", "result": "live", "from_colour": "blue", "from_version": "v1"},
      {"colour": "blue", "version": "v3", "result": "not ready"}], "blue", "v3", False),
    # Ready, but the window closed before the switch: no record, and blue runs another version than recorded.
    ([{"colour": "green", "version": "v2", "result": "live", "from_colour": "blue", "from_version": "v1"}],
     "blue", "v3", False),
    ([{"colour": "blue", "version": "v3", "result": "switching", "from_colour": "green", "from_version": "v2"},
      {"colour": "green", "version": "v2", "result": "rolled back"}], "blue", "v3", False),
])
def test_passed_checks_reads_the_latest_record_of_the_colour(history, colour, version, expected):
    assert passed_checks(history, colour, version) is expected


# --------------------------------------------------------------------------- the image tag rule

TAG_RULE = "is not an image tag: letters, digits, '_', '.' and '-', starting with a letter, digit or '_', at most 128 characters"


@pytest.mark.parametrize("value", ["v1", "2026.11.1", "_build-7", "a" * 128, "V2.0_rc-1"])
def test_docker_tags_pass(value):
    assert check_image_tag(value, "version") == value


@pytest.mark.parametrize("option, value", [
    ("version", "v 2"), ("version", "v2:latest"), ("version", "-v2"), ("version", ".v2"), ("version", "a" * 129),
    ("version", "v2\n"), ("version", ""), ("to_version", "team/v1"), ("to_version", "v1@sha256"),
])
def test_anything_else_is_refused_with_the_rule(option, value):
    params = {"state": "deployed" if option == "version" else "rolled_back", "ready_timeout": 300, option: value}
    if option == "version" and not value:
        params["version"] = "x"
        with pytest.raises(DeployError, match=f"version '' {TAG_RULE}"):
            check_image_tag(value, "version")
        return
    with pytest.raises(DeployError) as caught:
        validate(params)
    assert caught.value.msg == f"{option} '{value}' {TAG_RULE}"


# --------------------------------------------------------------------------- records


def result_of(outcome):
    return {"changed": outcome.changed, "failed": outcome.failed, "msg": outcome.msg, "records": outcome.records}


def actions(outcome):
    return [(r["action"], r["status"]) for r in outcome.records]


def test_a_deploy_reports_the_change_each_step_each_check_and_the_live_version():
    platform = MemoryPlatform()
    outcome = BlueGreen(platform, None, options(smoke=command_check(0), post=command_check(0)),
                        check_mode=False).deploy("v2")
    assert result_problems(result_of(outcome)) == [] and outcome.changed
    assert actions(outcome) == [("deploy", "done"), ("deployed", "done"), ("ready", "ok"), ("smoke", "ok"),
                                ("switched", "done"), ("post_check", "ok"), ("live", "ok")]
    main, live = outcome.records[0], outcome.records[-1]
    assert main["name"] == "api v2" and main["before"] == {"colour": "blue", "version": "v1"}
    assert main["after"] == {"colour": "green", "version": "v2"}
    assert live["name"] == "api live version" and live["after"] == {"colour": "green", "version": "v2", "ready": True}
    assert outcome.records[1]["name"] == "api-green" and all(r["seconds"] is not None for r in outcome.records[1:])


def test_a_failed_switch_reports_the_way_back_and_where_the_traffic_is():
    platform = MemoryPlatform()
    outcome = BlueGreen(platform, None, options(post=command_check(3)), check_mode=False).deploy("v2")
    assert result_problems(result_of(outcome)) == [] and outcome.failed
    assert actions(outcome) == [("deploy", "failed"), ("deployed", "done"), ("ready", "ok"), ("switched", "done"),
                                ("post_check", "failed"), ("switched back", "done"), ("live", "ok")]
    assert outcome.records[0]["after"] == {"colour": "blue", "version": "v1"}


def test_check_mode_plans_and_a_live_version_is_unchanged():
    platform = MemoryPlatform()
    planned = BlueGreen(platform, None, options(), check_mode=True).deploy("v2")
    assert result_problems(result_of(planned), check_mode=True) == [] and planned.changed
    assert actions(planned) == [("deploy", "planned")] and planned.records[0]["after"] == planned.plan["to"]
    same = BlueGreen(platform, None, options(), check_mode=False).deploy("v1")
    assert result_problems(result_of(same)) == [] and not same.changed
    assert actions(same) == [("deploy", "unchanged"), ("live", "ok")]


def test_a_live_version_that_reads_back_wrong_fails_the_run():
    platform = MemoryPlatform()
    real_switch = platform.switch

    def switch(colour):
        real_switch(colour)
        platform.states[colour].ready = False  # e.g. its pods crash right after the switch

    platform.switch = switch
    outcome = BlueGreen(platform, None, options(), check_mode=False).deploy("v2")
    assert outcome.failed and "but read back, green has the traffic and runs v2 (not ready" in outcome.msg
    assert actions(outcome)[-1] == ("live", "failed")


def test_a_refused_window_is_a_failed_result_with_the_window_decision():
    guard = guard_from_params({"windows": [{"name": "w", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", "duration": "1h"}],
                               "now": "2026-11-24T15:00:00Z"})
    flow = BlueGreen(MemoryPlatform(), guard, options(), check_mode=False)
    with pytest.raises(WindowClosedError) as caught:
        flow.deploy("v2")
    outcome = flow.refusal(caught.value)
    assert result_problems(result_of(outcome)) == [] and outcome.failed and not outcome.changed
    assert set(outcome.window) == set(WINDOW_KEYS) and outcome.window["allowed"] is False
    assert actions(outcome) == [("deploy", "failed")] and "refusing to switch traffic to v2" in outcome.msg


def test_status_has_one_record_per_colour():
    platform = MemoryPlatform(kept="v2")
    status = BlueGreen(platform, None, options(), check_mode=False).status()
    assert result_problems(status) == [] and status["active"] == "blue"
    assert [(r["name"], r["action"], r["status"], r["after"]["live"]) for r in status["records"]] == [
        ("api-blue", "status", "ok", True), ("api-green", "status", "ok", False)]
    assert status["records"][1]["after"] == {"exists": True, "version": "v2", "ready": True, "replicas": 1,
                                             "keep_until": None, "live": False, "spec": {}}


# --------------------------------------------------------------------------- rollback to a known-good version only


def test_without_history_or_smoke_checks_a_rollback_refuses():
    platform = MemoryPlatform(kept="v2-smoke500")
    with pytest.raises(DeployError) as caught:
        BlueGreen(platform, None, options(), check_mode=False).rollback()
    assert "no deploy history records v2-smoke500 on green as live" in caught.value.msg
    assert "nothing proves it good" in caught.value.msg and "traffic stays on blue (v1)" in caught.value.msg
    assert platform.log == [] and platform.traffic == "blue" and platform.entries == []


@pytest.mark.parametrize("to_version", [None, "v2-smoke500"])
def test_without_history_the_kept_version_must_pass_the_smoke_checks_first(to_version):
    platform = MemoryPlatform(kept="v2-smoke500")
    outcome = BlueGreen(platform, None, options(smoke=command_check(1), to_version=to_version),
                        check_mode=False).rollback()
    assert outcome.failed and not outcome.changed and result_problems(result_of(outcome)) == []
    assert "smoke checks on green failed" in outcome.msg and "traffic stays on blue (v1)" in outcome.msg
    assert platform.log == [] and platform.traffic == "blue" and platform.entries == []
    assert actions(outcome) == [("rollback", "failed"), ("ready", "ok"), ("smoke", "failed"), ("live", "ok")]


def test_without_history_a_healthy_kept_version_is_checked_then_switched_to():
    platform = MemoryPlatform(kept="v2")
    outcome = BlueGreen(platform, None, options(smoke=command_check(0)), check_mode=False).rollback()
    assert not outcome.failed and outcome.msg == "rolled back to v2 on green; v1 kept on blue"
    assert platform.traffic == "green" and platform.log == [("switch", "green")]
    assert actions(outcome) == [("rollback", "done"), ("ready", "ok"), ("smoke", "ok"), ("switched", "done"),
                                ("live", "ok")]
    assert [(e["action"], e["result"]) for e in platform.entries] == [("rollback", "switching"), ("rollback", "live")]
    # Now the history knows both: going back to v1 is the instant switch, no checks needed.
    again = BlueGreen(platform, None, options(to_version="v1"), check_mode=False).rollback()
    assert again.version_after == "v1" and platform.traffic == "blue" and not again.failed
    assert [action for action, _status in actions(again)] == ["rollback", "switched", "live"]


def test_check_mode_says_the_kept_version_is_checked_first():
    platform = MemoryPlatform(kept="v2")
    outcome = BlueGreen(platform, None, options(smoke=command_check(0)), check_mode=True).rollback()
    assert outcome.changed and platform.log == [] and result_problems(result_of(outcome), check_mode=True) == []
    assert outcome.plan["changes"][0].startswith("check green (v2) first, as a deploy does: readiness and 1 smoke")
    assert outcome.msg.startswith("would check v2 on green first")
    assert outcome.plan["to"] == {"colour": "green", "version": "v2"}


def test_check_mode_refuses_what_the_history_says_failed():
    platform = MemoryPlatform()
    BlueGreen(platform, None, options(), check_mode=False).deploy("v2")
    BlueGreen(platform, None, options(smoke=command_check(1)), check_mode=False).deploy("v3")
    with pytest.raises(DeployError, match="v3 on blue never passed its checks"):
        BlueGreen(platform, None, options(smoke=command_check(0)), check_mode=True).rollback()


def test_the_version_check_joins_the_smoke_and_post_switch_checks():
    platform = MemoryPlatform()
    outcome = BlueGreen(platform, None, options(version_check_path="/version"), check_mode=False).deploy("v2")
    # The memory platform has no URL to ask: the added check is what fails.
    assert outcome.failed and "smoke checks on green failed: version (no target to check" in outcome.msg
    assert ("smoke", "failed") in actions(outcome) and platform.traffic == "blue"


# --------------------------------------------------------------------------- the app container's spec

JVM = {"env": {"JAVA_OPTS": "-Xmx1g"}, "resources": {"limits": {"memory": "1Gi"}}}


def test_the_normal_form_has_strings_and_no_empty_parts():
    assert normalize_spec(None, "kubernetes") == {} == normalize_spec({"env": None, "resources": None}, "compose")
    assert normalize_spec({"env": {"WORKERS": 4, "A": "x"}, "resources": {"requests": {"cpu": "250m"}, "limits": {}}},
                          "kubernetes") == {"env": {"A": "x", "WORKERS": "4"}, "resources": {"requests": {"cpu": "250m"}}}
    assert normalize_spec({"resources": {"limits": {"cpus": 0.5, "memory": "64m"}}}, "compose") == {
        "resources": {"limits": {"cpus": "0.5", "memory": "64m"}}}


@pytest.mark.parametrize("spec, platform, message", [
    ({"env": {"1BAD": "x"}}, "kubernetes", "spec.env name '1BAD' is not an environment variable name"),
    ({"env": {"JAVA-OPTS": "x"}}, "compose", "'JAVA-OPTS'"),
    ({"env": {"DEBUG": True}}, "kubernetes", "spec.env.DEBUG True must be a string"),
    ({"env": {"APP_VERSION": "x"}}, "compose", "'APP_VERSION' is set by the module"),
    ({"resources": {"limits": {"memory": "12 GB"}}}, "kubernetes", "spec.resources.limits.memory '12 GB' is not"),
    ({"resources": {"limits": {"memory": "12 GB"}}}, "compose", "spec.resources.limits.memory '12 GB' is not"),
    ({"resources": {"limits": {"cpus": "0"}}}, "compose", "spec.resources.limits.cpus '0' is not"),
    ({"resources": {"requests": {"memory": "1g"}}}, "compose", "unknown key(s) requests for platform compose"),
    ({"resources": {"limits": {"gpu": 1}}}, "kubernetes", "unknown key(s) gpu"),
    ({"resources": {"limits": {"cpus": "1"}}}, "kubernetes", "unknown key(s) cpus"),
    ({"image": "x"}, "kubernetes", "spec: unknown key(s) image"),
])
def test_a_bad_spec_is_named(spec, platform, message):
    with pytest.raises(SpecError) as caught:
        normalize_spec(spec, platform)
    assert message in caught.value.msg


def test_the_module_refuses_a_spec_for_a_rollback():
    with pytest.raises(Exception, match="spec is for state deployed"):
        validate({"state": "rolled_back", "platform": "kubernetes", "ready_timeout": 300, "spec": {"env": {"A": "1"}}})


def test_the_same_version_with_another_spec_is_a_deploy_and_the_same_spec_is_not():
    platform = MemoryPlatform()
    tuned = BlueGreen(platform, None, options(version="v1", spec=JVM), check_mode=False).deploy("v1")
    assert not tuned.failed and tuned.changed and platform.traffic == "green", tuned.msg
    assert platform.states["green"].spec == JVM and tuned.spec_before == {} and tuned.spec_after == JVM
    assert tuned.records[0]["after"] == {"colour": "green", "version": "v1", "spec": JVM}
    assert result_problems(result_of(tuned)) == []
    again = BlueGreen(platform, None, options(version="v1", spec=JVM), check_mode=False).deploy("v1")
    assert not again.changed and again.records[0]["status"] == "unchanged", again.msg
    live = [entry for entry in platform.entries if entry["result"] == "live"][-1]
    assert live["spec"] == JVM and live["from_spec"] == {}


def test_check_mode_plans_and_diffs_the_idle_colours_spec():
    platform = MemoryPlatform()
    outcome = BlueGreen(platform, None, options(spec=JVM), check_mode=True).deploy("v2")
    assert outcome.changed and platform.log == []
    assert outcome.plan["spec"] == {"colour": "green", "before": {}, "after": JVM, "live": {},
                                    "changes": "+env JAVA_OPTS=-Xmx1g, +resources limits.memory=1Gi"}
    diff = plan_diff(outcome.plan)
    assert diff["before"] == "traffic: blue (v1)\n"
    assert diff["after"] == "traffic: green (v2)\ngreen env JAVA_OPTS=-Xmx1g\ngreen resources limits.memory=1Gi\n"
    assert result_problems(result_of(outcome), check_mode=True) == []


def test_a_rollback_restores_the_previous_version_and_spec():
    platform = MemoryPlatform()
    assert not BlueGreen(platform, None, options(spec=JVM), check_mode=False).deploy("v2").failed
    smaller = {"env": {"JAVA_OPTS": "-Xmx512m"}}
    assert not BlueGreen(platform, None, options(spec=smaller), check_mode=False).deploy("v2").failed
    assert platform.traffic == "blue" and platform.states["blue"].spec == smaller
    back = BlueGreen(platform, None, options(version=None), check_mode=False).rollback()
    assert not back.failed and platform.traffic == "green" and back.spec_after == JVM, back.msg
    # Named, a version no colour runs any more is deployed again with the spec it last went live with.
    platform.states["green"] = type(platform.states["green"])("green", True, "v3", True, 1)
    platform.entries.append({"action": "deploy", "version": "v3", "colour": "green", "result": "live",
                             "from_colour": "blue", "from_version": "v2", "spec": {}, "from_spec": smaller})
    platform.traffic = "green"
    again = BlueGreen(platform, None, options(version=None, to_version="v2"), check_mode=False).rollback()
    assert not again.failed and platform.states["blue"].spec == smaller, again.msg


def test_history_written_before_specs_still_decides():
    old = [{"action": "deploy", "version": "v2", "colour": "green", "result": "live", "from_colour": "blue",
            "from_version": "v1"}]
    assert passed_checks(old, "blue", "v1", {}) is True and passed_checks(old, "green", "v2", JVM) is True
    new = [{**old[0], "spec": JVM, "from_spec": {}}]
    assert passed_checks(new, "green", "v2", {}) is False and passed_checks(new, "green", "v2", JVM) is True
    assert spec_of_version(old, "v1") == {} and spec_of_version(new, "v2") == JVM


def test_spec_changes_name_what_comes_and_goes():
    assert spec_changes({"env": {"A": "1", "B": "2"}}, {"env": {"A": "1", "C": "3"}}) == "+env C=3, -env B=2"
    assert spec_changes(JVM, JVM) == ""


def test_the_kubernetes_patch_sets_deletes_and_clears():
    container = {"name": "app", "env": [{"name": "PORT", "value": "80"}, {"name": "OLD", "value": "1"},
                                        {"name": "V", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                 "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
    previous = {"env": {"OLD": "1"}, "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
    spec = {"env": {"V": "2"}, "resources": {"requests": {"cpu": "100m"}}}
    assert spec_patch(container, previous, spec) == {
        "env": [{"name": "V", "value": "2", "valueFrom": None}, {"name": "OLD", "$patch": "delete"}],
        "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": None, "memory": None}}}
    assert spec_patch(container, {}, {}) == {}
    whole = with_spec(container, previous, spec)
    assert whole["env"] == [{"name": "PORT", "value": "80"}, {"name": "V", "value": "2"}]
    assert whole["resources"] == {"requests": {"cpu": "100m"}}


def test_the_compose_override_escapes_dollars_and_maps_limits():
    spec = {"env": {"OPTS": "-Dx=$HOME"}, "resources": {"limits": {"cpus": "0.5", "memory": "64m"}}}
    override = override_of("web", spec)["services"]["web"]
    assert override["environment"] == {"OPTS": "-Dx=$$HOME"} and override["cpus"] == 0.5
    assert override["mem_limit"] == "64m" and "$$HOME" in override["labels"][SPEC_LABEL]


def test_a_labels_or_annotations_patch_removes_only_keys_that_are_there():
    # A null for an absent key would be stored as "" in a template without annotations (Kubernetes 1.20).
    assert map_patch(None, {"v": "2", "spec": None}) == {"v": "2"}
    assert map_patch({"v": "1"}, {"v": "2", "spec": None}) == {"v": "2"}
    assert map_patch({"v": "1", "spec": ""}, {"v": "2", "spec": None}) == {"v": "2", "spec": None}
