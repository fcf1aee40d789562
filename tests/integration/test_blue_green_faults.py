"""Reliability campaign (issue 20), class bluegreen_killed: ansible-playbook killed (-9) at each step.

A real ``ansible-playbook`` runs a one-task play (``streamops.maintenance.blue_green_deploy`` on localhost,
local connection) against one compose app behind a real nginx; when the work reaches a step, seen from
OUTSIDE (a container of the idle colour appearing, its healthcheck passing, the state file's history
changing, the nginx upstream file rewritten, the front's answer changing), its whole process group gets
SIGKILL, as an AWX job cancel or an OOM kill takes the tree. Then:

- a poller through nginx saw only healthy versions' bodies, never an error, from before the run to the end;
- the history does not say something false (its last settled entry names what the front serves; an open
  ``switching`` entry allows only its two sides), and no temp file of an atomic write is left;
- the re-run (the same deploy or rollback, in-process) converges: the front serves the expected version,
  each colour has exactly its one expected container, the history ends with the expected live entry;
- the run after that reports ``changed: false``.

One stack serves a whole parametrized group: each case deploys a fresh version (a new tag of the lab
image), so the state one case ends in is the state the next begins from.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from ansible_collections.streamops.maintenance.plugins.module_utils.blue_green import (
    BlueGreen,
    DeployError,
    last_change,
    other,
    passed_checks,
)
from lab.harness.docker_engine import DockerEngine
from tests.helpers import BIN, ansible_env
from tests.integration.test_blue_green_compose import (
    Poller,
    Stack,
    get,
    module_args,
    open_stack,
    run_module,
)
from tests.unit.plugins.module_utils.test_blue_green import MemoryPlatform, command_check, options

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.reliability, pytest.mark.ansible]

# Per session: another session's teardown removes only its own tags.
KILL_IMAGE = f"streamops-lab/bg-kill-{uuid.uuid4().hex[:6]}"
# Plain versions are healthy (lab/compose/bluegreen/bin/app.sh); each deploy takes the next one.
KILL_TAGS = [f"kv{number}" for number in range(1, 41)]
KILL_TIMEOUT = 45.0


@pytest.fixture(scope="module")
def kill_image(docker_engine: DockerEngine, lab_image: str) -> Iterator[str]:
    client = docker_engine.client()
    base = client.images.get(lab_image)
    for tag in KILL_TAGS:
        base.tag(KILL_IMAGE, tag)
    try:
        yield KILL_IMAGE
    finally:
        for tag in KILL_TAGS:
            client.images.remove(f"{KILL_IMAGE}:{tag}")


@dataclass
class Killed:
    """The group's one stack and the versions not deployed yet."""

    stack: Stack
    root: Path
    tags: Iterator[str] = field(default_factory=lambda: iter(KILL_TAGS))

    def next_version(self) -> str:
        return next(self.tags)


@pytest.fixture(scope="module")
def killed(docker_engine: DockerEngine, kill_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Killed]:
    root = tmp_path_factory.mktemp("bg-killed")
    (root / "stack").mkdir()
    with open_stack(docker_engine, kill_image, root / "stack") as stack:
        yield Killed(stack, root)


# --------------------------------------------------------------------------- what is seen from outside


def state_of(stack: Stack) -> dict:
    """The compose driver's state file (history, keep times), read as the next run reads it."""
    path = Path(stack.platform.state.path)
    return json.loads(path.read_text()) if path.exists() else {"history": [], "kept": {}}


def last_entry(stack: Stack) -> dict:
    history = state_of(stack)["history"]
    return history[-1] if history else {}


def containers(stack: Stack, colour: str) -> list[tuple[str, str | None, str, str | None]]:
    """(name, APP_VERSION, status, health) of every container of the colour's project."""
    found = []
    for container in stack.engine.client().containers.list(
            all=True, filters={"label": f"com.docker.compose.project={stack.app}-{colour}"}, ignore_removed=True):
        env = dict(item.split("=", 1) for item in container.attrs["Config"].get("Env") or [] if "=" in item)
        state = container.attrs.get("State") or {}
        found.append((container.name, env.get("APP_VERSION"), state.get("Status"),
                      (state.get("Health") or {}).get("Status")))
    return found


def front_body(stack: Stack) -> str:
    status, body = get(stack.nginx.url + "/version", timeout=3)
    return body if status == 200 else f"HTTP {status}"


def upstream_colour(stack: Stack) -> str | None:
    text = Path(stack.platform.front.upstream_file).read_text()
    ports = {f":{port};": colour for colour, port in stack.platform.ports.items()}
    return next((colour for port, colour in ports.items() if port in text), None)


def history_lies(stack: Stack, front: str) -> list[str]:
    """What the history says that the front contradicts: its last settled entry (a live version) must be what the
    front serves; an open ``switching`` entry (a run stopped mid-switch) allows either side of its move."""
    history = state_of(stack)["history"]
    if not history:
        return []
    last = history[-1]
    if last.get("result") == "switching":
        allowed = {last.get("version"), last.get("from_version")}
        return [] if front in allowed else [f"history is mid-switch {allowed}, the front serves {front}"]
    live = last_change(history)
    if live is not None and live.get("version") != front:
        return [f"history names {live.get('version')} on {live.get('colour')} live ({live.get('action')} of "
                f"{live.get('at')}), the front serves {front}"]
    return []


def temp_leftovers(stack: Stack) -> list[str]:
    """Temp files of the driver's atomic writes (state file, upstream file, override files) left behind."""
    found = []
    for directory in sorted({Path(stack.platform.compose.project_dir), Path(stack.platform.front.upstream_file).parent}):
        found += [str(path) for path in directory.glob(".*.tmp")]
    return found


# --------------------------------------------------------------------------- a real ansible-playbook, killed


def playbook(root: Path, args: dict) -> list[str]:
    """The argv of ansible-playbook running blue_green_deploy once with ``args`` on localhost."""
    name = uuid.uuid4().hex[:8]
    path = root / f"play-{name}.yml"
    path.write_text(yaml.safe_dump([{
        "name": "blue/green under test", "hosts": "localhost", "gather_facts": False, "connection": "local",
        "tasks": [{"name": "blue_green_deploy", "streamops.maintenance.blue_green_deploy": args}]}]))
    return [str(BIN / "ansible-playbook"), "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}",
            str(path)]


def parents() -> dict[int, int]:
    """pid -> parent pid of every process, from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
    return found


def tree_of(root: int) -> set[int]:
    """``root`` and every process below it, whatever session or process group it made for itself."""
    by_parent: dict[int, list[int]] = {}
    for pid, parent in parents().items():
        by_parent.setdefault(parent, []).append(pid)
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo += by_parent.get(pid, [])
    return tree


def kill_tree(root: int) -> set[int]:
    """SIGKILL the whole tree under ``root``, as the OOM killer or a container's end takes a job: ansible's workers
    (each in a session of its own: os.setsid), the module, what it runs (docker-compose, nginx -s reload).
    Stopped first, so that nothing forks or reparents between the listing and the kill."""
    stopped: set[int] = set()
    while True:
        tree = tree_of(root) - stopped
        if not tree:
            break
        for pid in tree:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        stopped |= tree
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return stopped


def still_running(pids: set[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def kill_at(root: Path, args: dict, reached: Callable[[], bool], step: str) -> float:
    """Run the play; SIGKILL its process group as soon as ``reached()``; seconds from the start to the kill."""
    log = root / f"playbook-{uuid.uuid4().hex[:8]}.log"
    env = ansible_env(ANSIBLE_REMOTE_TMP=str(root / "ansible-tmp"), ANSIBLE_LOCAL_TEMP=str(root / "ansible-local"))
    began = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(playbook(root, args), stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                env=env, start_new_session=True)
    try:
        deadline = began + KILL_TIMEOUT
        while not reached():
            if proc.poll() is not None:
                raise AssertionError(f"the play ended (exit {proc.returncode}) before {step}: "
                                     f"{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{step} not reached within {KILL_TIMEOUT:g}s: {log.read_text()[-3000:]}")
            time.sleep(0.003)
        took = time.monotonic() - began
    finally:
        tree = kill_tree(proc.pid)
        proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while still_running(tree) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not still_running(tree), f"processes of the killed run still run: {still_running(tree)}"
    return took


# --------------------------------------------------------------------------- the cases


@dataclass
class Move:
    """One deploy or rollback: where the traffic is (``source``, ``old``) and where it goes (``target``, ``new``)."""

    source: str
    old: str
    target: str
    new: str
    kept_before: dict = field(default_factory=dict)


def is_running(stack: Stack, colour: str, version: str, *, healthy: bool = False) -> bool:
    return any(found == version and (status == "running" and health == "healthy" if healthy else True)
               for _name, found, status, health in containers(stack, colour))


def entry_is(stack: Stack, result: str, version: str, action: str | None = None) -> bool:
    last = last_entry(stack)
    return (last.get("result"), last.get("version")) == (result, version) and action in (None, last.get("action"))


# Each step of a deploy, as seen from outside: predicate(stack, move).
DEPLOY_STEPS: dict[str, Callable[[Stack, Move], bool]] = {
    "idle colour started": lambda s, m: is_running(s, m.target, m.new),
    "idle colour ready": lambda s, m: is_running(s, m.target, m.new, healthy=True),
    "smoke checked, switch recorded": lambda s, m: entry_is(s, "switching", m.new),
    "front's upstream rewritten": lambda s, m: upstream_colour(s) == m.target,
    "front switched": lambda s, m: front_body(s) == m.new,
    "verified, history live": lambda s, m: entry_is(s, "live", m.new),
    "previous colour kept": lambda s, m: m.source in state_of(s)["kept"] and m.source not in m.kept_before,
}
ROLLBACK_STEPS: dict[str, Callable[[Stack, Move], bool]] = {
    "switch recorded": lambda s, m: entry_is(s, "switching", m.new, "rollback"),
    "front's upstream rewritten": lambda s, m: upstream_colour(s) == m.target,
    "front switched": lambda s, m: front_body(s) == m.new,
    "history live": lambda s, m: entry_is(s, "live", m.new, "rollback"),
    "previous colour kept": lambda s, m: m.source in state_of(s)["kept"] and m.source not in m.kept_before,
}


def ensure_live(killed: Killed, capsys: pytest.CaptureFixture) -> None:
    """Two deploys behind the group's first case: a version live, the one before kept on the other colour."""
    stack = killed.stack
    while stack.platform.active() is None or not all(state.ready for state in stack.platform.colours().values()):
        failed, result = run_module(stack, capsys, state="deployed", version=killed.next_version())
        assert not failed, result["msg"]


def current(stack: Stack) -> tuple[str, str]:
    active = stack.platform.active()
    assert active is not None
    return active, stack.platform.colours()[active].version


def settle_checks(case, stack: Stack, capsys: pytest.CaptureFixture, poller: Poller, rerun: dict, *,
                  live: tuple[str, str], kept: tuple[str, str] | None, action: str) -> None:
    """After the kill: the history, the leftovers, the re-run, the run after it and the poller, into ``case``."""
    front = front_body(stack)
    case.check_no_partial(history_lies(stack, front), "after the kill")
    failed, result = run_module(stack, capsys, **rerun)
    colour, version = live
    served = front_body(stack)
    history = state_of(stack)["history"]
    newest = last_change(history) or {}
    expected = {colour: [version]} | ({kept[0]: [kept[1]]} if kept else {})
    running = {c: sorted(v for _n, v, status, _h in containers(stack, c) if status == "running") for c in expected}
    case.check_converged(not failed and served == version, f"re-run: failed={failed}, front {served}: {result['msg']}")
    settled = (newest.get("version"), newest.get("colour"), newest.get("action"))
    case.check_converged(settled == (version, colour, action),
                         f"the history's live entry after the re-run: {newest}")
    case.check_converged(running == expected, f"containers running after the re-run: {running}, expected {expected}")
    case.check_converged(all(len(containers(stack, c)) == 1 for c in expected),
                         f"containers per colour: { {c: containers(stack, c) for c in expected} }")
    case.check_no_partial(history_lies(stack, served), "after the re-run")
    # A kill between an atomic write's temp file and its rename leaves the temp (no finally survives -9); the
    # re-run's writes remove it (files.remove_abandoned_temps).
    case.check_no_partial(temp_leftovers(stack), "temp files of atomic writes after the re-run")
    failed, again = run_module(stack, capsys, **rerun)
    case.check_converged(not failed and again["changed"] is False, f"the run after the re-run: {again['msg']}")
    time.sleep(0.1)
    poller.stop()
    bad = [sample for sample in poller.samples if sample[2] is None or sample[2] not in healthy_bodies(stack)]
    case.check_data(not bad and len(poller.samples) > 20,
                    f"traffic through nginx: {len(bad)} of {len(poller.samples)} samples not a healthy version's "
                    f"body: {bad[:3]}")


def healthy_bodies(stack: Stack) -> set[str]:
    return set(KILL_TAGS)


@pytest.mark.parametrize("step", list(DEPLOY_STEPS))
def test_ansible_playbook_killed_at_each_deploy_step_then_the_rerun_converges(
        step: str, killed: Killed, campaign, capsys: pytest.CaptureFixture) -> None:
    stack = killed.stack
    ensure_live(killed, capsys)
    source, old = current(stack)
    move = Move(source, old, other(source), killed.next_version(), dict(state_of(stack)["kept"]))
    args = module_args(stack, state="deployed", version=move.new)
    poller = Poller(stack.nginx.url + "/version", interval=0.02)
    poller.start()
    try:
        with campaign.case("bluegreen_killed", f"compose deploy {move.old} -> {move.new}, killed at: {step}") as case:
            kill_at(killed.root, args, lambda: DEPLOY_STEPS[step](stack, move), step)
            settle_checks(case, stack, capsys, poller, {"state": "deployed", "version": move.new},
                          live=(move.target, move.new), kept=(move.source, move.old), action="deploy")
    finally:
        poller.stop()


@pytest.mark.parametrize("step", list(ROLLBACK_STEPS))
def test_ansible_playbook_killed_at_each_rollback_step_then_the_rerun_converges(
        step: str, killed: Killed, campaign, capsys: pytest.CaptureFixture) -> None:
    stack = killed.stack
    ensure_live(killed, capsys)
    # Something to undo: a fresh version live on the idle colour, the one before it kept.
    failed, result = run_module(stack, capsys, state="deployed", version=killed.next_version())
    assert not failed, result["msg"]
    source, bad = current(stack)
    target = other(source)
    move = Move(source, bad, target, stack.platform.colours()[target].version, dict(state_of(stack)["kept"]))
    args = module_args(stack, state="rolled_back")
    poller = Poller(stack.nginx.url + "/version", interval=0.02)
    poller.start()
    try:
        with campaign.case("bluegreen_killed", f"compose rollback {move.old} -> {move.new}, killed at: {step}") as case:
            kill_at(killed.root, args, lambda: ROLLBACK_STEPS[step](stack, move), step)
            settle_checks(case, stack, capsys, poller, {"state": "rolled_back"},
                          live=(move.target, move.new), kept=(move.source, move.old), action="rollback")
    finally:
        poller.stop()


def test_ansible_playbook_killed_while_the_previous_colour_is_retired_then_the_rerun_converges(
        killed: Killed, campaign, capsys: pytest.CaptureFixture) -> None:
    stack = killed.stack
    ensure_live(killed, capsys)
    version = killed.next_version()
    failed, result = run_module(stack, capsys, state="deployed", version=version, keep_previous_for="0s")
    assert not failed, result["msg"]
    live, _version = current(stack)
    previous = other(live)
    old = stack.platform.colours()[previous].version
    # The next run (nothing to deploy) finds the keep time over and stops the previous colour: killed there.
    args = module_args(stack, state="deployed", version=version)
    poller = Poller(stack.nginx.url + "/version", interval=0.02)
    poller.start()
    try:
        with campaign.case("bluegreen_killed",
                           f"compose deploy {version} again, killed while {old} is retired") as case:
            kill_at(killed.root, args, lambda: any(status == "exited" for _n, _v, status, _h
                                                   in containers(stack, previous)), "previous colour stopped")
            case.check_no_partial(history_lies(stack, front_body(stack)), "after the kill")
            failed, result = run_module(stack, capsys, state="deployed", version=version)
            case.check_converged(not failed and front_body(stack) == version, result["msg"])
            found = containers(stack, previous)
            kept = state_of(stack)["kept"]
            case.check_converged([status for _n, _v, status, _h in found] == ["exited"], f"{previous}: {found}")
            # A stopped colour kept "until" a time already over is a keep mark nobody will clear.
            case.check_no_partial([f"{previous} stopped but still kept until {kept[previous]}"]
                                  if kept.get(previous) else [], "after the re-run")
            failed, again = run_module(stack, capsys, state="deployed", version=version)
            case.check_converged(not failed and again["changed"] is False, again["msg"])
            poller.stop()
            bad = [sample for sample in poller.samples if sample[2] != version]
            case.check_data(not bad, f"traffic through nginx: {len(bad)} of {len(poller.samples)} samples not "
                                     f"{version}: {bad[:3]}")
    finally:
        poller.stop()


# --------------------------------------------------------------------------- the settling rule, on the flow alone
# (an in-memory platform; no service: milliseconds)


def memory_platform(history: list[dict], traffic: str, blue: str, green: str) -> MemoryPlatform:
    platform = MemoryPlatform(live=blue, kept=green)
    platform.traffic = traffic
    platform.entries = [dict(entry, at="2026-12-07T02:00:00+00:00", by="awx") for entry in history]
    return platform


DEPLOYED = [{"action": "deploy", "version": "v1", "colour": "blue", "result": "live", "from_colour": None},
            {"action": "switch", "version": "v2", "colour": "green", "result": "switching", "from_colour": "blue",
             "from_version": "v1", "spec": {}, "from_spec": {}},
            {"action": "deploy", "version": "v2", "colour": "green", "result": "live", "from_colour": "blue",
             "from_version": "v1", "spec": {}, "from_spec": {}}]
ROLLBACK_OPEN = {"action": "rollback", "version": "v1", "colour": "blue", "result": "switching",
                 "from_colour": "green", "from_version": "v2", "spec": {}, "from_spec": {}}
DEPLOY_OPEN = {"action": "switch", "version": "v3", "colour": "blue", "result": "switching", "from_colour": "green",
               "from_version": "v2", "spec": {}, "from_spec": {}}


def test_a_rollback_killed_before_its_switch_is_closed_and_the_rerun_rolls_back() -> None:
    platform = memory_platform([*DEPLOYED, ROLLBACK_OPEN], "green", "v1", "v2")
    # Before the fix the open entry was read as blue's failure: "v1 on blue never passed its checks there".
    outcome = BlueGreen(platform, None, options(), check_mode=False).rollback()
    assert not outcome.failed and platform.traffic == "blue" and outcome.version_after == "v1", outcome.msg
    assert "was interrupted before its switch to blue (v1)" in outcome.msg
    assert [e["result"] for e in platform.entries[-4:]] == ["switching", "interrupted", "switching", "live"]
    assert [r["action"] for r in outcome.records][:2] == ["rollback", "resume"]
    again = BlueGreen(platform, None, options(), check_mode=False).rollback()
    assert not again.changed and platform.traffic == "blue" and "nothing left to undo" in again.msg


def test_a_rollback_killed_after_its_switch_is_finished_and_never_flipped_back() -> None:
    platform = memory_platform([*DEPLOYED, ROLLBACK_OPEN], "blue", "v1", "v2")
    # Before the fix the re-run saw a deploy of v2 as the last change and "rolled back" to v2.
    outcome = BlueGreen(platform, None, options(), check_mode=False).rollback()
    assert not outcome.failed and outcome.changed and platform.traffic == "blue", outcome.msg
    assert platform.log == [("switch", "blue")] and "nothing left to undo" in outcome.msg
    assert (platform.entries[-1]["action"], platform.entries[-1]["result"]) == ("rollback", "live")
    again = BlueGreen(platform, None, options(), check_mode=False).rollback()
    assert not again.changed and platform.log == [("switch", "blue")]


def test_a_deploy_killed_after_its_switch_is_switched_again_checked_and_recorded_live() -> None:
    platform = memory_platform([*DEPLOYED, DEPLOY_OPEN], "blue", "v3", "v2")
    outcome = BlueGreen(platform, None, options(version="v3", post=command_check(0)), check_mode=False).deploy("v3")
    assert not outcome.failed and outcome.changed and platform.log == [("switch", "blue")], outcome.msg
    assert "interrupted during its switch to blue (v3): finished" in outcome.msg
    assert (platform.entries[-1]["action"], platform.entries[-1]["result"]) == ("deploy", "live")
    assert [r["action"] for r in outcome.records if r["status"] == "ok"][:1] == ["post_check"]
    again = BlueGreen(platform, None, options(version="v3"), check_mode=False).deploy("v3")
    assert not again.changed and "already has the traffic" in again.msg


def test_finishing_a_killed_switch_whose_post_checks_fail_puts_the_traffic_back_and_stops() -> None:
    platform = memory_platform([*DEPLOYED, DEPLOY_OPEN], "blue", "v3", "v2")
    with pytest.raises(DeployError, match=r"finishing it failed: post-switch checks failed.*traffic is back on green"):
        BlueGreen(platform, None, options(version="v3", post=command_check(1)), check_mode=False).deploy("v3")
    assert platform.traffic == "green" and platform.entries[-1]["result"] == "rolled back"
    assert passed_checks(platform.entries, "blue", "v3") is False


def test_check_mode_plans_the_settling_and_changes_nothing() -> None:
    platform = memory_platform([*DEPLOYED, DEPLOY_OPEN], "blue", "v3", "v2")
    outcome = BlueGreen(platform, None, options(version="v3"), check_mode=True).deploy("v3")
    assert outcome.changed and [r["status"] for r in outcome.records if r["action"] == "resume"] == ["planned"]
    assert platform.log == [] and platform.entries[-1]["result"] == "switching"


@pytest.mark.parametrize("colour, version, expected", [
    # The interrupted rollback's target: the entries before it decide (v1 left blue for v2: it was live).
    ("blue", "v1", True),
    ("green", "v2", True),
])
def test_an_interrupted_switch_judges_nothing_of_its_target(colour: str, version: str, expected: bool) -> None:
    interrupted = dict(ROLLBACK_OPEN, result="interrupted")
    assert passed_checks([*DEPLOYED, ROLLBACK_OPEN, interrupted], colour, version) is expected


def test_an_interrupted_deploy_never_makes_its_version_a_rollback_target() -> None:
    interrupted = dict(DEPLOY_OPEN, result="interrupted")
    assert passed_checks([*DEPLOYED, DEPLOY_OPEN, interrupted], "blue", "v3") is False


def test_a_colour_stopped_by_a_killed_retire_loses_its_keep_mark_on_the_next_run() -> None:
    class Forgetting(MemoryPlatform):
        def retire(self, colour):
            super().retire(colour)
            self.states[colour].keep_until = None

    platform = Forgetting(live="v1", kept="v2")
    platform.traffic = "green"
    # Killed between the stop and clearing the mark: blue stopped, still "kept until" a time that has passed.
    platform.states["blue"].replicas, platform.states["blue"].ready = 0, False
    platform.states["blue"].keep_until = "2026-01-01T00:00:00+00:00"
    outcome = BlueGreen(platform, None, options(version="v2"), check_mode=False).deploy("v2")
    assert outcome.changed and platform.log == [("retire", "blue")] and platform.states["blue"].keep_until is None
    again = BlueGreen(platform, None, options(version="v2"), check_mode=False).deploy("v2")
    assert not again.changed and platform.log == [("retire", "blue")]
