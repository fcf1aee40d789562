"""Blue/green on docker compose behind a real nginx, asserted by requesting through nginx.

Each test gets its own app name (two compose projects on the lab Docker
engine, from lab/compose/bluegreen) and its own nginx master on a free
loopback port, and leaves no container and no nginx process behind. Where
the traffic goes is always read from a GET through nginx, never from the
outcome of the flow.
"""
from __future__ import annotations

import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.blue_green import (
    BlueGreen,
    DeployError,
    Options,
    Outcome,
    parse_checks,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.platform_compose import ComposePlatform
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from lab.harness.base import free_port, pid_alive, wait_for
from lab.harness.compose_app import PROJECT_LABEL, compose_command, remove_project
from lab.harness.docker_engine import DockerEngine
from lab.harness.nginx import NginxFront

pytestmark = [pytest.mark.integration, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "lab" / "compose" / "bluegreen" / "docker-compose.yml"
# Per session: another session's teardown removes only its own tags.
IMAGE = f"streamops-lab/bg-app-{uuid.uuid4().hex[:6]}"
# All tags of the lab busybox image; bin/app.sh picks the behaviour from the version.
VERSIONS = ("v1", "v2", "v3-never-ready", "v4-smoke-fail", "v5-crash", "v2-smoke500")
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with DIRECT.open(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def version_checks(version: str, what: str) -> list:
    return parse_checks([{"path": "/version", "contains": version, "retries": 1}], what)


@dataclass
class Stack:
    """One app: its driver, its nginx, the engine."""

    app: str
    platform: ComposePlatform
    nginx: NginxFront
    engine: DockerEngine
    # (colour, switch() called, switch() returned), monotonic.
    switched: list[tuple[str, float, float]] = field(default_factory=list)

    def flow(self, version: str | None = None, *, ready_timeout: float = 30.0, post: list | None = None,
             to_version: str | None = None, keep_previous_for: timedelta | None = None) -> BlueGreen:
        smoke = version_checks(version, "smoke") if version else []
        options = Options(version=version, ready_timeout=ready_timeout, smoke=smoke,
                          post=smoke if post is None else post, to_version=to_version,
                          keep_previous_for=keep_previous_for)
        return BlueGreen(self.platform, guard=None, options=options, check_mode=False)

    def deploy(self, version: str, **kwargs: object) -> Outcome:
        return self.flow(version, **kwargs).deploy(version)

    def front(self) -> str:
        """What answers /version through nginx: where the traffic really goes."""
        status, body = get(self.nginx.url + "/version")
        assert status == 200, f"front answered {status}: {body}"
        return body

    def direct(self, colour: str) -> str:
        status, body = get(self.platform.targets(colour)[0] + "/version")
        assert status == 200, f"{colour} answered {status}: {body}"
        return body

    def container_ids(self, colour: str) -> list[str]:
        return sorted(c.id for c in self.engine.client().containers.list(
            all=True, filters={"label": f"{PROJECT_LABEL}={self.app}-{colour}"}))


@pytest.fixture(scope="module")
def bg_image(docker_engine: DockerEngine, lab_image: str) -> Iterator[str]:
    client = docker_engine.client()
    base = client.images.get(lab_image)
    for version in VERSIONS:
        base.tag(IMAGE, version)
    try:
        yield IMAGE
    finally:
        for version in VERSIONS:
            # Only the tag goes: the base image keeps its own.
            client.images.remove(f"{IMAGE}:{version}")


def compose_down(engine: DockerEngine, app: str) -> None:
    """`compose down` of both colours (concurrently), then anything left by label; none may remain."""
    env = engine.docker_env()
    env.update({"APP_IMAGE": f"{IMAGE}:down", "APP_VERSION": "down", "APP_PORT": "1", "APP_COLOUR": "down"})
    client = engine.client()
    running = []
    for colour in ("blue", "green"):
        project = f"{app}-{colour}"
        if client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}):
            running.append(subprocess.Popen(  # noqa: S603
                [*compose_command(engine.host), "-p", project, "-f", str(COMPOSE_FILE), "down", "-v",
                 "--timeout", "5"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for proc in running:
        proc.wait(timeout=120)
    left = []
    for colour in ("blue", "green"):
        remove_project(engine, f"{app}-{colour}")
        left += [c.name for c in client.containers.list(
            all=True, filters={"label": f"{PROJECT_LABEL}={app}-{colour}"})]
    assert not left, f"containers left after down: {left}"


@contextmanager
def open_stack(engine: DockerEngine, image: str, root: Path) -> Iterator[Stack]:
    """One app (both colours' compose projects, its nginx on a free port) under ``root``; all gone after."""
    app = f"bg{uuid.uuid4().hex[:8]}"
    upstream = root / "upstream.conf"
    # Before the first deploy the front points at neither colour (a closed port): nothing has the traffic.
    upstream.write_text(f"upstream {app} {{ server 127.0.0.1:{free_port()}; }}\n")
    (root / "extra").mkdir()
    (root / "project").mkdir()
    nginx = NginxFront(root / "nginx", upstream_file=upstream, upstream_name=app,
                       extra_include=str(root / "extra" / "*.conf"))
    platform = ComposePlatform(
        app=app, project_dir=str(root / "project"), compose_file=str(COMPOSE_FILE), image=image,
        ports={"blue": free_port(), "green": free_port()}, nginx_upstream_file=str(upstream),
        nginx_conf=str(nginx.conf), nginx_binary=nginx.binary, front_url=nginx.url,
        docker_host=engine.host, ready_timeout_poll=0.1)
    stack = Stack(app, platform, nginx, engine)
    real_switch = platform.switch

    def timed_switch(colour: str) -> None:
        called = time.monotonic()
        real_switch(colour)
        stack.switched.append((colour, called, time.monotonic()))

    platform.switch = timed_switch  # type: ignore[method-assign]
    master = None
    try:
        nginx.start()
        master = nginx.proc.pid
        yield stack
    finally:
        try:
            nginx.stop()
        finally:
            compose_down(engine, app)
    assert master is None or not pid_alive(master)


@pytest.fixture
def stack(docker_engine: DockerEngine, bg_image: str, tmp_path: Path) -> Iterator[Stack]:
    with open_stack(docker_engine, bg_image, tmp_path) as opened:
        yield opened


class Poller(threading.Thread):
    """GET <front>/version every ``interval`` seconds: (start, end, body or None, error)."""

    def __init__(self, url: str, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.interval = interval
        self.samples: list[tuple[float, float, str | None, str]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            began = time.monotonic()
            body, error = None, ""
            try:
                status, text = get(self.url, timeout=5)
                body, error = (text, "") if status == 200 else (None, f"HTTP {status}: {text[:80]}")
            except (urllib.error.URLError, OSError) as exc:
                error = str(exc)
            self.samples.append((began, time.monotonic(), body, error))
            time.sleep(self.interval)

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


# --------------------------------------------------------------------------- tests


def test_happy_path_blue_then_green_keeps_blue(stack: Stack) -> None:
    assert stack.platform.active() is None
    first = stack.deploy("v1")
    assert not first.failed, first.msg
    assert first.changed and first.active_before is None
    assert any(change.startswith(f"compose project {stack.app}-blue: create") for change in first.plan["changes"])
    assert stack.front() == "v1"
    assert stack.platform.active() == "blue"

    second = stack.deploy("v2")
    assert not second.failed, second.msg
    assert stack.front() == "v2"
    assert stack.platform.active() == "green"
    assert [colour for colour, _called, _returned in stack.switched] == ["blue", "green"]
    # The previous version keeps running on blue, ready for a rollback.
    assert stack.direct("blue") == "v1"
    states = stack.platform.colours()
    assert (states["blue"].version, states["blue"].ready, states["blue"].replicas) == ("v1", True, 1)
    assert (states["green"].version, states["green"].ready) == ("v2", True)
    status = stack.flow().status()
    assert status["active"] == "green"
    assert [(e["version"], e["result"]) for e in status["history"] if e["action"] == "deploy"] == [
        ("v1", "live"), ("v2", "live")]
    assert Path(stack.platform.state.path).parent == Path(stack.platform.compose.project_dir)


def test_deploying_the_active_version_again_changes_nothing(stack: Stack) -> None:
    assert not stack.deploy("v1").failed
    before = stack.container_ids("blue")
    again = stack.deploy("v1")
    assert not again.failed and not again.changed, again.msg
    assert "already has the traffic" in again.msg
    assert stack.container_ids("blue") == before
    assert stack.container_ids("green") == []
    assert stack.front() == "v1"


def test_previous_colour_is_stopped_once_its_keep_time_is_over(stack: Stack) -> None:
    assert not stack.deploy("v1").failed
    assert not stack.deploy("v2", keep_previous_for=timedelta(0)).failed
    assert stack.platform.colours()["blue"].keep_until is not None
    # The next run (nothing to deploy) finds blue's keep time over and stops it; green keeps the traffic.
    again = stack.deploy("v2")
    steps = [r["action"] for r in again.records if r["action"] not in ("deploy", "live")]
    assert again.changed and steps == ["retired"], again.records
    blue = stack.platform.colours()["blue"]
    assert (blue.exists, blue.replicas, blue.ready, blue.keep_until) == (True, 0, False, None)
    assert {c.status for c in stack.engine.client().containers.list(
        all=True, filters={"label": f"{PROJECT_LABEL}={stack.app}-blue"})} == {"exited"}
    assert stack.front() == "v2"


# --------------------------------------------------------------------------- campaign: green failing (issue 20)
# Each failed deploy runs with a poller through nginx from before the deploy to after the re-run: every sample
# must be a healthy version's body (v1 or v2), never an error; then v2 deployed again converges.

HEALTHY = ("v1", "v2")


def front_claims(stack: Stack, bad: str) -> list[str]:
    """What the history or the upstream file says about the failed version that the front contradicts."""
    history = stack.flow().status()["history"]
    found = [f"history entry {entry.get('action')} {bad} live" for entry in history
             if entry.get("version") == bad and entry.get("result") == "live"]
    if history and history[-1].get("result") == "switching":
        found.append(f"history's last entry, {history[-1].get('action')} {history[-1].get('version')} switching, "
                     "left open as if the run had been killed")
    if stack.platform.active() != "blue":
        found.append(f"the upstream file names {stack.platform.active()}, the failed deploy's colour")
    found += [str(path) for path in Path(stack.platform.compose.project_dir).glob(".*.tmp")]
    return found


def check_failed_green(case, stack: Stack, poller: Poller, outcome: Outcome | dict, *, bad: str,
                       names: list[str]) -> None:
    """A failed deploy of ``bad`` while blue (v1) is live: its message, the traffic, what is left; then v2 again."""
    result = outcome if isinstance(outcome, dict) else {"failed": outcome.failed, "msg": outcome.msg}
    case.check_error(result, names=names)
    status, body = get(stack.nginx.url + "/version")
    case.check_data((status, body) == (200, "v1"), f"the front answers {status} {body} after the failed deploy")
    case.check_no_partial(front_claims(stack, bad), f"after the failed deploy of {bad}")
    again = stack.deploy("v2")
    status, body = get(stack.nginx.url + "/version")
    case.check_converged(not again.failed and (status, body) == (200, "v2") and stack.platform.active() == "green",
                         f"v2 after the failure: {again.msg}; front {status} {body}")
    time.sleep(0.1)
    poller.stop()
    unhealthy = [sample for sample in poller.samples if sample[2] not in HEALTHY]
    case.check_data(not unhealthy and len(poller.samples) > 20,
                    f"traffic through nginx: {len(unhealthy)} of {len(poller.samples)} samples not v1/v2: "
                    f"{unhealthy[:3]}")


@contextmanager
def front_poller(stack: Stack) -> Iterator[Poller]:
    poller = Poller(stack.nginx.url + "/version")
    poller.start()
    try:
        yield poller
    finally:
        poller.stop()


@pytest.mark.reliability
def test_never_ready_version_fails_fast_and_traffic_stays(stack: Stack, campaign) -> None:
    assert not stack.deploy("v1").failed
    with front_poller(stack) as poller, campaign.case("bluegreen_green", "compose: green never ready") as case:
        began = time.monotonic()
        outcome = stack.deploy("v3-never-ready", ready_timeout=20)
        took = time.monotonic() - began
        # Failed on the healthcheck, not by running into the ready timeout.
        assert took < 20, f"took {took:.1f}s"
        assert [colour for colour, _called, _returned in stack.switched] == ["blue"]
        check_failed_green(case, stack, poller, outcome, bad="v3-never-ready",
                           names=["v3-never-ready", "did not become ready", "unhealthy", "traffic stays on blue"])


@pytest.mark.reliability
def test_crashing_version_fails_with_its_exit_code_and_output(stack: Stack, campaign) -> None:
    assert not stack.deploy("v1").failed
    with front_poller(stack) as poller, campaign.case("bluegreen_green", "compose: green crashes at start") as case:
        outcome = stack.deploy("v5-crash", ready_timeout=20)
        check_failed_green(case, stack, poller, outcome, bad="v5-crash",
                           names=["exited with code 3", "cannot start (test crash)", "traffic stays on blue"])


@pytest.mark.reliability
def test_smoke_failure_stops_before_the_switch(stack: Stack, campaign) -> None:
    assert not stack.deploy("v1").failed
    with front_poller(stack) as poller, campaign.case("bluegreen_green",
                                                      "compose: green fails its smoke checks") as case:
        outcome = stack.deploy("v4-smoke-fail")
        assert stack.direct("green") == "broken"
        assert [colour for colour, _called, _returned in stack.switched] == ["blue"]
        check_failed_green(case, stack, poller, outcome, bad="v4-smoke-fail",
                           names=["smoke checks on green failed", "v4-smoke-fail", "traffic stays on blue"])


@pytest.mark.reliability
def test_post_switch_failure_switches_back(stack: Stack, campaign) -> None:
    assert not stack.deploy("v1").failed
    with front_poller(stack) as poller, campaign.case(
            "bluegreen_green", "compose: the front fails its checks right after the switch") as case:
        # Passes the smoke checks on green directly; fails only through the front.
        never = parse_checks([{"path": "/version", "contains": "never-there", "retries": 1}], "post")
        outcome = stack.deploy("v2", post=never)
        assert [colour for colour, _called, _returned in stack.switched] == ["blue", "green", "blue"]
        assert stack.platform.active() == "blue"
        history = stack.flow().status()["history"]
        case.check_no_partial([] if history[-1]["result"] == "rolled back" else [f"history ends {history[-1]}"])
        check_failed_green(case, stack, poller, outcome, bad="never-deployed",
                           names=["post-switch checks failed", "never-there", "back on blue (v1)"])


@pytest.mark.reliability
def test_nginx_rejecting_the_configuration_at_the_switch_leaves_the_traffic(
        stack: Stack, campaign, capsys: pytest.CaptureFixture) -> None:
    assert not run_module(stack, capsys, state="deployed", version="v1")[0]
    broken = Path(stack.platform.front.upstream_file).parent / "extra" / "broken.conf"
    with front_poller(stack) as poller, campaign.case(
            "bluegreen_green", "compose: nginx rejects its configuration at the switch") as case:
        # Someone's broken edit beside the upstream file: `nginx -T` fails, so no reload may happen.
        broken.write_text("this_is_no_directive on;\n")
        failed, result = run_module(stack, capsys, state="deployed", version="v2")
        case.check_error(result, names=["this_is_no_directive", "switching traffic to green failed",
                                        "the traffic did not move", "traffic stays on blue (v1)"])
        status, body = get(stack.nginx.url + "/version")
        case.check_data((status, body) == (200, "v1"), f"the front answers {status} {body}")
        case.check_no_partial(front_claims(stack, "v2"), "after nginx refused")
        broken.unlink()
        failed, result = run_module(stack, capsys, state="deployed", version="v2")
        case.check_converged(not failed and stack.front() == "v2", result["msg"])
        failed, again = run_module(stack, capsys, state="deployed", version="v2")
        case.check_converged(not failed and again["changed"] is False, again["msg"])
        poller.stop()
        unhealthy = [sample for sample in poller.samples if sample[2] not in HEALTHY]
        case.check_data(not unhealthy and len(poller.samples) > 20,
                        f"traffic through nginx: {len(unhealthy)} of {len(poller.samples)} samples not v1/v2: "
                        f"{unhealthy[:3]}")


def test_rollback_switches_back_to_the_kept_version(stack: Stack) -> None:
    assert not stack.deploy("v1").failed
    assert not stack.deploy("v2").failed
    assert stack.front() == "v2"
    began = time.monotonic()
    outcome = stack.flow().rollback()
    took = time.monotonic() - began
    assert not outcome.failed and outcome.changed, outcome.msg
    assert stack.front() == "v1"
    assert stack.platform.active() == "blue"
    # Only the switch: no deploy, no wait for readiness.
    assert took < 3, f"rollback took {took:.2f}s"
    assert stack.direct("green") == "v2"
    assert stack.platform.colours()["green"].ready


def test_no_request_fails_during_switches(stack: Stack) -> None:
    assert not stack.deploy("v1").failed
    poller = Poller(stack.nginx.url + "/version")
    poller.start()
    try:
        time.sleep(0.2)
        assert not stack.deploy("v2").failed
        time.sleep(0.2)
        assert not stack.flow().rollback().failed
        time.sleep(0.2)
    finally:
        poller.stop()
    failed = [sample for sample in poller.samples if sample[2] is None]
    assert not failed, f"{len(failed)} of {len(poller.samples)} requests failed: {failed[:5]}"
    assert len(poller.samples) > 100
    # switch() returns only once the front routes to the new colour: no request begun after it sees the old one.
    (_green, _called, to_green), (_blue, back_called, to_blue) = stack.switched[-2:]
    after_green = [body for began, end, body, _error in poller.samples if to_green < began and end < back_called]
    after_blue = [body for began, _end, body, _error in poller.samples if to_blue < began]
    assert after_green and set(after_green) == {"v2"}
    assert after_blue and set(after_blue) == {"v1"}


def test_nginx_rejecting_the_config_restores_the_upstream(stack: Stack) -> None:
    assert not stack.deploy("v1").failed
    upstream = Path(stack.platform.front.upstream_file)
    before = upstream.read_text()
    (upstream.parent / "extra" / "broken.conf").write_text("this_is_no_directive on;\n")
    with pytest.raises(DeployError) as caught:
        stack.platform.switch("green")
    assert "this_is_no_directive" in caught.value.msg and "restored" in caught.value.msg, caught.value.msg
    assert upstream.read_text() == before
    assert stack.platform.active() == "blue"
    assert stack.front() == "v1"


# --------------------------------------------------------------------------- through the module


ALWAYS = [{"name": "always", "rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "23h59m"}]


def module_args(stack: Stack, **args: object) -> dict:
    compose, front = stack.platform.compose, stack.platform.front
    return {"platform": "compose", "app": stack.app, "image": compose.image, "windows": ALWAYS, "ready_timeout": 30,
            "compose": {"project_dir": compose.project_dir, "compose_file": compose.compose_file,
                        "ports": dict(stack.platform.ports), "nginx_upstream_file": front.upstream_file,
                        "nginx_conf": front.conf, "nginx_binary": front.binary,
                        "front_url": front.front_url, "docker_host": compose.docker_host},
            "smoke_checks": [{"path": "/version", "contains": str(args.get("version") or "v")}], **args}


def run_module(stack: Stack, capsys: pytest.CaptureFixture, **args: object) -> tuple[bool, dict]:
    import json  # noqa: PLC0415

    from ansible.module_utils.testing import patch_module_args  # noqa: PLC0415

    from ansible_collections.streamops.maintenance.plugins.modules import blue_green_deploy  # noqa: PLC0415

    with patch_module_args(module_args(stack, **args)), pytest.raises(SystemExit) as exited:
        blue_green_deploy.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=bool(args.get("_ansible_check_mode"))) == [], result
    return result.get("failed", False), result


def test_the_module_deploys_reports_and_rolls_back(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    failed, result = run_module(stack, capsys, state="deployed", version="v1", reason="first")
    assert not failed, result["msg"]
    assert stack.front() == "v1"
    failed, result = run_module(stack, capsys, state="deployed", version="v2", _ansible_check_mode=True)
    assert not failed and result["changed"] and result["plan"]["to"] == {"colour": "green", "version": "v2"}
    assert stack.front() == "v1" and stack.container_ids("green") == []
    assert [r["status"] for r in result["records"]] == ["planned"] and "window" in result
    failed, result = run_module(stack, capsys, state="deployed", version="v2")
    assert not failed and stack.front() == "v2"
    assert [(r["action"], r["status"]) for r in result["records"]] == [
        ("deploy", "done"), ("deployed", "done"), ("ready", "ok"), ("smoke", "ok"), ("switched", "done"),
        ("post_check", "ok"), ("live", "ok")]
    assert result["records"][-1]["after"] == {"colour": "green", "version": "v2", "ready": True}
    failed, status = run_module(stack, capsys, state="status")
    assert status["active"] == "green" and status["colours"]["blue"]["version"] == "v1"
    assert status["history"][0]["reason"] == "first"
    assert [(r["name"], r["after"]["version"], r["after"]["live"]) for r in status["records"]] == [
        (f"{stack.app}-blue", "v1", False), (f"{stack.app}-green", "v2", True)]
    failed, result = run_module(stack, capsys, state="rolled_back")
    assert not failed and result["version_after"] == "v1" and stack.front() == "v1"
    assert result["records"][0]["name"] == f"{stack.app} v1" and result["records"][0]["status"] == "done"


# ansible-playbook killed (-9) at each step of a deploy and of a rollback, then the re-run: test_blue_green_faults.py.


# --------------------------------------------------------------------------- rollback to a known-good version only


def start_by_hand(stack: Stack, colour: str, version: str) -> None:
    """What an operator did before the collection managed the app: `compose up` of one colour, by hand."""
    env = stack.engine.docker_env()
    for var in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"):
        env.pop(var, None)
    env.update({"APP_IMAGE": f"{IMAGE}:{version}", "APP_VERSION": version,
                "APP_PORT": str(stack.platform.ports[colour]), "APP_COLOUR": colour})
    subprocess.run([*compose_command(stack.engine.host), "-p", f"{stack.app}-{colour}",  # noqa: S603
                    "-f", str(COMPOSE_FILE), "up", "-d"], env=env, check=True, capture_output=True, timeout=180)
    wait_for(lambda: stack.platform.colours()[colour].ready, timeout=30, what=f"{version} healthy on {colour}")


def point_front_by_hand(stack: Stack, colour: str) -> None:
    """The operator's nginx upstream (the harness's own form, not the module's) and a reload."""
    upstream = Path(stack.platform.front.upstream_file)
    upstream.write_text(f"upstream {stack.app} {{ server 127.0.0.1:{stack.platform.ports[colour]}; }}\n")
    subprocess.run([stack.nginx.binary, "-s", "reload", "-c", str(stack.nginx.conf)],  # noqa: S603
                   check=True, capture_output=True, timeout=30)
    expected = stack.direct(colour)
    # Until the reload is over, an old worker may still take a request to the old upstream (seen: a 502 right
    # after the first 200): the new routing counts once several requests in a row get it.
    wait_for(lambda: all(get(stack.nginx.url + "/version") == (200, expected) for _request in range(5)),
             timeout=15, what=f"nginx routing to {colour}")


@pytest.fixture
def by_hand(stack: Stack) -> Stack:
    """Both colours started outside the module, no deploy history: blue v1 live, green v2-smoke500, whose
    /health answers HTTP 500 (it is ready: its healthcheck probes /ready)."""
    start_by_hand(stack, "blue", "v1")
    start_by_hand(stack, "green", "v2-smoke500")
    point_front_by_hand(stack, "blue")
    assert stack.front() == "v1" and stack.platform.active() == "blue"
    assert get(stack.platform.targets("green")[0] + "/health")[0] == 500
    assert not Path(stack.platform.state.path).exists()
    return stack


HEALTH = [{"path": "/health", "retries": 2, "delay": 0.2}]


def test_a_rollback_without_history_never_switches_to_a_kept_version_that_fails_its_smoke_check(
        by_hand: Stack, capsys: pytest.CaptureFixture) -> None:
    stack = by_hand
    upstream = Path(stack.platform.front.upstream_file).read_text()
    containers = {colour: stack.container_ids(colour) for colour in ("blue", "green")}
    poller = Poller(stack.nginx.url + "/version")
    poller.start()
    try:
        # Check mode: the plan says green is checked first.
        failed, planned = run_module(stack, capsys, state="rolled_back", smoke_checks=HEALTH, _ansible_check_mode=True)
        assert not failed and planned["changed"], planned["msg"]
        assert planned["plan"]["changes"][0].startswith("check green (v2-smoke500) first, as a deploy does")
        assert planned["records"][0]["status"] == "planned"
        # Nothing proves green good without smoke checks: refused before anything.
        failed, bare = run_module(stack, capsys, state="rolled_back", smoke_checks=[])
        assert failed and "nothing proves it good" in bare["msg"] and "traffic stays on blue (v1)" in bare["msg"]
        # With the smoke check: green is checked, fails, and gets no traffic; so for to_version naming it.
        for extra in ({}, {"to_version": "v2-smoke500"}):
            failed, result = run_module(stack, capsys, state="rolled_back", smoke_checks=HEALTH, **extra)
            assert failed and not result["changed"], result["msg"]
            assert "smoke checks on green failed" in result["msg"] and "HTTP 500" in result["msg"], result["msg"]
            assert "traffic stays on blue (v1)" in result["msg"]
            assert result["active_after"] == "blue" and result["version_after"] is None
            assert [(r["action"], r["status"]) for r in result["records"]] == [
                ("rollback", "failed"), ("ready", "ok"), ("smoke", "failed"), ("live", "ok")]
            assert result["records"][0]["name"] == f"{stack.app} v2-smoke500"
            assert set(result["window"]) >= {"allowed", "mode", "msg"}
        time.sleep(0.2)
    finally:
        poller.stop()
    bodies = {body for _began, _ended, body, _error in poller.samples}
    assert len(poller.samples) > 20 and bodies == {"v1"}, [s for s in poller.samples if s[2] != "v1"][:3]
    assert stack.front() == "v1" and Path(stack.platform.front.upstream_file).read_text() == upstream
    assert not Path(stack.platform.state.path).exists()
    failed, status = run_module(stack, capsys, state="status")
    assert status["history"] == [] and status["active"] == "blue"
    assert {colour: stack.container_ids(colour) for colour in ("blue", "green")} == containers


def test_a_rollback_without_history_checks_a_healthy_kept_version_then_switches(
        stack: Stack, capsys: pytest.CaptureFixture) -> None:
    start_by_hand(stack, "blue", "v1")
    start_by_hand(stack, "green", "v2")
    point_front_by_hand(stack, "blue")
    failed, result = run_module(stack, capsys, state="rolled_back", smoke_checks=HEALTH)
    assert not failed and result["changed"], result["msg"]
    assert result["msg"] == "rolled back to v2 on green; v1 kept on blue"
    assert [(r["action"], r["status"]) for r in result["records"]] == [
        ("rollback", "done"), ("ready", "ok"), ("smoke", "ok"), ("switched", "done"), ("post_check", "ok"),
        ("live", "ok")]
    assert result["records"][0]["after"] == {"colour": "green", "version": "v2"}
    assert stack.front() == "v2" and stack.platform.active() == "green"
    failed, status = run_module(stack, capsys, state="status")
    assert [(e["action"], e["version"], e["result"]) for e in status["history"]] == [
        ("rollback", "v2", "switching"), ("rollback", "v2", "live")]


# --------------------------------------------------------------------------- tuning: env and resource limits


def app_container(stack: Stack, colour: str) -> dict:
    """The engine's view (docker inspect) of the colour's app container."""
    (container,) = stack.engine.client().containers.list(
        all=True, filters={"label": f"{PROJECT_LABEL}={stack.app}-{colour}"})
    return container.attrs


def front_tuning(stack: Stack) -> str:
    status, body = get(stack.nginx.url + "/tuning")
    assert status == 200, f"front answered {status}: {body}"
    return body


def test_a_spec_goes_through_the_blue_green_path_and_a_rollback_restores_it(
        stack: Stack, capsys: pytest.CaptureFixture) -> None:
    assert not run_module(stack, capsys, state="deployed", version="v1")[0]
    fast = {"env": {"TUNING": "fast"}, "resources": {"limits": {"cpus": "0.5", "memory": "64m"}}}
    failed, planned = run_module(stack, capsys, state="deployed", version="v1", spec=fast,
                                 _ansible_check_mode=True, _ansible_diff=True)
    assert not failed and planned["changed"] and stack.container_ids("green") == [], planned["msg"]
    assert planned["diff"]["after"].splitlines()[1:] == [
        "green env TUNING=fast", "green resources limits.cpus=0.5", "green resources limits.memory=64m"]

    # The same version with a spec is a deploy: green gets it, passes readiness and smoke, then the traffic.
    failed, result = run_module(stack, capsys, state="deployed", version="v1", spec=fast)
    assert not failed and result["active_after"] == "green", result["msg"]
    assert stack.front() == "v1" and front_tuning(stack) == "fast"
    green = app_container(stack, "green")
    assert "TUNING=fast" in green["Config"]["Env"]
    assert (green["HostConfig"]["Memory"], green["HostConfig"]["NanoCpus"]) == (64 * 1024 * 1024, 500_000_000)
    failed, again = run_module(stack, capsys, state="deployed", version="v1", spec=fast)
    assert not failed and again["changed"] is False, again["msg"]

    # A spec whose container never gets healthy never gets traffic.
    failed, result = run_module(stack, capsys, state="deployed", version="v1", spec={"env": {"TUNING": "never-ready"}})
    assert failed and "did not become ready" in result["msg"] and "unhealthy" in result["msg"], result["msg"]
    assert front_tuning(stack) == "fast" and stack.platform.active() == "green"

    # No spec: blue runs the compose file alone again (its override file goes), then the rollback restores green's.
    failed, result = run_module(stack, capsys, state="deployed", version="v2")
    assert not failed and stack.front() == "v2" and front_tuning(stack) == "", result["msg"]
    blue = app_container(stack, "blue")
    assert not any(item.startswith("TUNING=") for item in blue["Config"]["Env"]) and blue["HostConfig"]["Memory"] == 0
    assert not Path(stack.platform.compose.override_file("blue")).exists()
    failed, result = run_module(stack, capsys, state="rolled_back")
    assert not failed and result["version_after"] == "v1" and result["spec_after"] == normalized(fast), result["msg"]
    assert stack.front() == "v1" and front_tuning(stack) == "fast"
    failed, status = run_module(stack, capsys, state="status")
    assert status["colours"]["green"]["spec"] == normalized(fast) and status["colours"]["blue"]["spec"] == {}


def normalized(spec: dict) -> dict:
    from ansible_collections.streamops.maintenance.plugins.module_utils.blue_green_spec import (  # noqa: PLC0415
        normalize_spec,
    )

    return normalize_spec(spec, "compose")
