# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""One blue/green flow over a platform driver (Kubernetes or compose).

Deploy to the idle colour, prove it ready and healthy, switch traffic, check
through the front, and switch back on any failure: traffic only ever moves to
a colour that passed its checks, and ends on the previous colour otherwise.
A rollback switches only to a version the history records as live, or to one
that passes the deploy's readiness and smoke checks first.
The drivers (platform_k8s, platform_compose) only answer what is where and do
one atomic thing each; the decisions are here.
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from .blue_green_spec import describe_spec, spec_changes, spec_of_version
from .endpoints import fetch
from .errors import MaintenanceError
from .records import is_changed, make_record
from .window import WindowGuard, format_duration, parse_duration

COLOURS = ("blue", "green")
HISTORY_KEEP = 50
# Docker's tag grammar; the one image-tag rule of the collection (check_image_tag).
IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class DeployError(MaintenanceError):
    """A deploy, switch or rollback step failed; ``msg`` says which and where the traffic is."""


def other(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


def check_image_tag(value: Any, option: str) -> str:
    """``value`` when it is a Docker image tag; else DeployError naming ``option``, the value and the rule."""
    if not isinstance(value, str) or not IMAGE_TAG.fullmatch(value):
        raise DeployError(msg=f"{option} '{value}' is not an image tag: letters, digits, '_', '.' and '-', "
                              "starting with a letter, digit or '_', at most 128 characters")
    return value


def check_image_repository(value: str) -> str:
    """``value`` when it names an image repository without tag or digest (the version is the tag)."""
    if any(ch in value for ch in " @\t\n") or ":" in value.rsplit("/", 1)[-1]:
        raise DeployError(msg=f"image {value!r} must be a repository without tag or digest "
                              "(the version is the tag)")
    return value


@dataclass
class ColourState:
    colour: str
    exists: bool = False
    version: str | None = None
    ready: bool = False
    replicas: int = 0
    keep_until: str | None = None
    detail: str = ""
    # The app container's tuning recorded on what runs there (blue_green_spec); {} for none.
    spec: dict[str, Any] = field(default_factory=dict)


class Platform(Protocol):
    """What the flow needs from a platform. Every method acts on the real platform, nothing is cached."""

    kind: str

    def colours(self) -> dict[str, ColourState]:
        """State of both colours (a colour that does not exist has ``exists=False``)."""

    def active(self) -> str | None:
        """The colour that has the traffic now, or None when nothing has it yet (first deploy)."""

    def plan(self, colour: str, version: str, spec: dict[str, Any]) -> list[str]:
        """Objects that deploying ``version`` with ``spec`` to ``colour`` would create or change; DeployError when
        it cannot."""

    def deploy(self, colour: str, version: str, spec: dict[str, Any]) -> None:
        """Run ``version`` with ``spec`` (env, resources of the app container) on ``colour``, without touching the
        traffic; the spec replaces the one the colour had (variables of that one not in ``spec`` go)."""

    def wait_ready(self, colour: str, version: str, timeout: float) -> None:
        """Return when every instance of ``colour`` runs ``version`` and is ready; DeployError with the reason."""

    def targets(self, colour: str) -> list[str]:
        """Base URLs (http://host:port) that reach ``colour`` directly, for smoke checks."""

    def front_targets(self) -> list[str]:
        """Base URLs through the traffic front (Service endpoints, nginx), for post-switch checks."""

    def switch(self, colour: str) -> None:
        """Send all traffic to ``colour`` in one atomic step; return when the front routes to it."""

    def history(self) -> list[dict[str, Any]]:
        """The deploy history recorded on the platform, oldest first."""

    def save_history(self, entries: list[dict[str, Any]]) -> None:
        """Replace the recorded history."""

    def mark_kept(self, colour: str, until: str | None) -> None:
        """Record until when the previous colour is kept running (None: until the next run)."""

    def retire(self, colour: str) -> None:
        """Stop ``colour`` (scale to zero / stop its containers); it never has traffic when called."""


# --------------------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    path: str = "/"
    status: int = 200
    contains: str | None = None
    command: list[str] | None = None
    timeout: float = 5.0
    retries: int = 3
    delay: float = 0.5


def parse_checks(raw: list[dict[str, Any]] | None, what: str) -> list[Check]:
    checks = []
    for position, item in enumerate(raw or [], start=1):
        if not isinstance(item, dict):
            raise DeployError(msg=f"{what}[{position}] must be a dict, got {item!r}")
        known = {"name", "path", "status", "contains", "command", "timeout", "retries", "delay"}
        unknown = sorted(set(item) - known)
        if unknown:
            raise DeployError(msg=f"{what}[{position}]: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
        command = item.get("command")
        if command is not None and (not isinstance(command, list) or not command
                                    or not all(isinstance(arg, str) for arg in command)):
            raise DeployError(msg=f"{what}[{position}].command must be a non-empty list of strings (argv, no shell)")
        path = item.get("path") or "/"
        if command is None and not str(path).startswith("/"):
            raise DeployError(msg=f"{what}[{position}].path {path!r} must start with '/'")
        values = {key: value for key, value in item.items() if value is not None}
        values.setdefault("name", command[0] if command else f"GET {path}")
        checks.append(Check(**values))
    return checks


def run_check(check: Check, base_url: str, env: dict[str, str]) -> tuple[bool, str]:
    """One check against one target, with its retries: (passed, detail)."""
    detail = ""
    for attempt in range(max(1, check.retries)):
        if attempt:
            time.sleep(check.delay)
        if check.command:
            try:
                proc = subprocess.run(check.command, env={**os.environ, **env, "BG_TARGET": base_url},
                                      capture_output=True, timeout=check.timeout, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                detail = f"{check.command[0]}: {exc}"
                continue
            output = (proc.stdout + proc.stderr).decode(errors="replace").strip()
            if proc.returncode == 0:
                return True, f"exit 0 {output[-200:]}".strip()
            detail = f"exit {proc.returncode}: {output[-300:]}"
            continue
        url = base_url.rstrip("/") + check.path
        try:
            status, body = fetch(url, check.timeout, validate_certs=True)
        except OSError as exc:
            detail = f"{url}: {exc}"
            continue
        if status != check.status:
            detail = f"{url}: HTTP {status}, expected {check.status}"
        elif check.contains is not None and check.contains not in body:
            detail = f"{url}: body does not contain {check.contains!r}"
        else:
            return True, f"{url}: HTTP {status}"
    return False, detail


def run_checks(checks: list[Check], targets: list[str], env: dict[str, str],
               action: str) -> tuple[list[dict[str, Any]], str]:
    """Each check on its targets: one record each (name ``<check> <target>``), and what failed ("" when nothing)."""
    found, failed = [], []
    for check in checks:
        if not check.command and not targets:
            found.append(make_record(check.name, action, "failed", "no target to check (no ready endpoint)"))
            failed.append(f"{check.name} (no target to check (no ready endpoint))")
        # A command check runs once (it is given the first target); an HTTP check runs on every target.
        for target in (targets[:1] or [""]) if check.command else targets:
            began = time.monotonic()
            passed, detail = run_check(check, target, env)
            found.append(make_record(f"{check.name} {target}".strip(), action, "ok" if passed else "failed", detail,
                                     seconds=time.monotonic() - began))
            if not passed:
                failed.append(f"{check.name} ({detail})")
    return found, "; ".join(failed)


def tail(text: str, limit: int = 300) -> str:
    """The end of a command's or container's output for a message, marked when cut: errors come last."""
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def run_hook(argv: list[str] | None, what: str, env: dict[str, str], timeout: float) -> str | None:
    """None when it passed (or there is none), else what went wrong."""
    if not argv:
        return None
    try:
        proc = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{what} {argv[0]}: {exc}"
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).decode(errors="replace").strip()
        return f"{what} exited {proc.returncode}: {output[-300:]}"
    return None


# --------------------------------------------------------------------------- the flow


@dataclass
class Options:
    version: str | None
    ready_timeout: float
    smoke: list[Check]
    post: list[Check]
    migration: list[str] | None = None
    migration_rollback: list[str] | None = None
    hook_timeout: float = 600.0
    keep_previous_for: timedelta | None = None
    deployed_by: str = ""
    reason: str = ""
    to_version: str | None = None
    app: str = ""
    # GET of this path must answer a body holding the version going live, before and after the switch.
    version_check_path: str | None = None
    # The app container's tuning to deploy with the version (blue_green_spec.normalize_spec); {} for none.
    spec: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    changed: bool = False
    failed: bool = False
    msg: str = ""
    active_before: str | None = None
    active_after: str | None = None
    version_before: str | None = None
    version_after: str | None = None
    # The app container's spec on the colour with the traffic before, and live now (None after a failure).
    spec_before: dict[str, Any] = field(default_factory=dict)
    spec_after: dict[str, Any] | None = None
    plan: dict[str, Any] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    # The window decision, once the flow consulted the window.
    window: dict[str, Any] | None = None


@dataclass
class Proof:
    """What the readiness, migration and smoke step found: ``problem`` is None when the colour passed."""

    problem: str | None = None
    result: str = ""  # the history's word for the failure: "not ready" or "failed before switch"
    migrated: bool = False


def now_iso(clock: Callable[[], datetime]) -> str:
    return clock().astimezone(timezone.utc).isoformat(timespec="seconds")


class BlueGreen:
    def __init__(self, platform: Platform, guard: WindowGuard | None, options: Options, *,
                 check_mode: bool, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.platform = platform
        self.guard = guard
        self.options = options
        self.check_mode = check_mode
        self.clock = clock
        self.outcome = Outcome()
        # Steps and checks, in the order they ran; finish() puts the change first and the live version last.
        self.records: list[dict[str, Any]] = []
        self.action = "deploy"
        self.target_version: str | None = None
        self.target_spec: dict[str, Any] = {}
        self.begun = time.monotonic()
        # What settling an interrupted run's switch did (settle_interrupted_switch); "" when there was none.
        self.settled = ""

    # ----------------------------------------------------------------- helpers

    def name(self, colour: str | None) -> str:
        """What a step record is about: the colour's objects (``<app>-<colour>``)."""
        colour = colour or "no colour"
        return f"{self.options.app}-{colour}" if self.options.app else colour

    def step(self, action: str, colour: str | None, status: str, detail: str, began: float | None = None) -> None:
        self.records.append(make_record(self.name(colour), action, status, detail,
                                        seconds=None if began is None else time.monotonic() - began))

    def spec_in_play(self) -> bool:
        """Whether this run deploys or meets a spec; records and plans name the spec only then (older shapes stay)."""
        return bool(self.target_spec or self.outcome.spec_before)

    def where(self, colour: str | None, version: str | None, spec: dict[str, Any] | None) -> dict[str, Any]:
        """A colour, the version on it and (when specs are in play) its spec: the plan's and records' shape."""
        found: dict[str, Any] = {"colour": colour, "version": version}
        if self.spec_in_play():
            found["spec"] = spec
        return found

    def env(self, colour: str, version: str) -> dict[str, str]:
        return {"BG_COLOUR": colour, "BG_VERSION": version, "BG_PLATFORM": self.platform.kind}

    def version_check(self, version: str) -> list[Check]:
        path = self.options.version_check_path
        return [Check(name="version", path=path, contains=version)] if path else []

    def require_window(self, what: str) -> None:
        if self.guard is not None:
            self.outcome.window = self.guard.require(refusal=f"refusing to {what}").decision()

    def record_history(self, entry: dict[str, Any]) -> None:
        if self.check_mode:
            return
        entries = self.platform.history()
        entries.append({"at": now_iso(self.clock), "by": self.options.deployed_by or user_name(),
                        "reason": self.options.reason, **entry})
        self.platform.save_history(entries[-HISTORY_KEEP:])

    def keep_previous(self, colour: str) -> None:
        until = None
        if self.options.keep_previous_for is not None:
            until = (self.clock() + self.options.keep_previous_for).astimezone(timezone.utc).isoformat(timespec="seconds")
        self.platform.mark_kept(colour, until)

    def retire_expired(self, states: dict[str, ColourState], active: str | None) -> None:
        """A previous colour whose keep time has passed is stopped (never the one with traffic).

        A stopped colour still marked kept (a run killed between the stop and clearing the mark) is retired again:
        both steps are idempotent, and the mark would otherwise stay forever.
        """
        for colour, state in states.items():
            if colour == active or not state.exists or not state.keep_until:
                continue
            if datetime.fromisoformat(state.keep_until) <= self.clock():
                began = time.monotonic()
                if not self.check_mode:
                    self.platform.retire(colour)
                self.step("retired", colour, "planned" if self.check_mode else "done",
                          f"{state.version} on {colour} kept until {state.keep_until}, which has passed", began)

    def read_traffic(self) -> tuple[dict[str, ColourState], str | None]:
        states = self.platform.colours()
        active = self.platform.active()
        self.outcome.active_before = active
        self.outcome.version_before = states[active].version if active else None
        self.outcome.spec_before = states[active].spec if active else {}
        return states, active

    def active_now(self) -> str | None:
        """Where the traffic is, read back; the colour it had before in check mode or when it cannot be read."""
        if self.check_mode:
            return self.outcome.active_before
        try:
            return self.platform.active()
        except DeployError:
            return self.outcome.active_before

    def fail(self, msg: str) -> Outcome:
        self.outcome.failed = True
        self.outcome.msg = msg
        self.outcome.active_after = self.active_now()
        return self.outcome

    def checks(self, checks: list[Check], targets: Callable[[], list[str]], env: dict[str, str],
               action: str) -> str:
        """Run ``checks`` on the targets the platform names; their records are kept. What failed, or ""."""
        if not checks:
            return ""
        try:
            found = targets()
        except DeployError as exc:
            self.records.append(make_record(f"{action} targets", action, "failed", exc.msg))
            return f"cannot find the targets to check: {exc.msg}"
        records, failed = run_checks(checks, found, env, action)
        self.records += records
        return failed

    # ----------------------------------------------------------------- an interrupted run

    def settle_interrupted_switch(self) -> None:
        """Settle the switch of a run stopped (killed: an AWX cancel, an OOM kill) between its ``switching``
        history entry and that switch's outcome, before this run reads anything.

        Left open, that entry misleads the next run: killed between the upstream write and nginx's reload, the
        front names the new colour while nginx still serves the old one, and a re-run found the version
        "already live" and checked nothing; a rollback re-run read the open entry as the kept colour's failure,
        or flipped back to the version it was undoing. Where the front names the entry's colour and that colour
        runs the entry's version, the switch is made again (it is idempotent) and checked through the front,
        then recorded live, or the traffic goes back and this run stops; otherwise the traffic never moved and
        the entry is closed as ``interrupted``. The window is not consulted: this finishes or undoes a switch
        the interrupted run was allowed to make.
        """
        history = self.platform.history()
        entry = history[-1] if history else None
        if entry is None or entry.get("result") != "switching" or entry.get("colour") not in COLOURS:
            return
        target, version, source = entry["colour"], entry.get("version"), entry.get("from_colour")
        began = time.monotonic()
        states = self.platform.colours()
        active = self.platform.active()
        moved = (active == target and states[target].version == version
                 and (states[target].spec or {}) == (entry.get("spec") or {}))
        run = f"the run of {entry.get('at')} by {entry.get('by')}"
        if self.check_mode:
            would = (f"finish the switch to {target} ({version}) that {run} left open: switch again and check "
                     "through the front" if moved
                     else f"record that {run} stopped before moving the traffic to {target} ({version})")
            self.step("resume", target, "planned", f"would {would}", began)
            return
        if not moved:
            where = f"{active} ({states[active].version})" if active else "nothing"
            detail = (f"{run} stopped after its checks of {version} on {target}, before the traffic moved; the "
                      f"traffic stayed on {where}")
            self.record_history({**closing(entry), "action": entry.get("action"), "result": "interrupted",
                                 "detail": detail})
            self.step("resume", target, "done", f"{detail}; recorded as interrupted", began)
            self.settled = f"{run} was interrupted before its switch to {target} ({version}), which never happened"
            return
        problem = self.finish_switch(target, version)
        if problem is None:
            kind = "rollback" if entry.get("action") == "rollback" else "deploy"
            self.record_history({**closing(entry), "action": kind, "result": "live",
                                 "detail": f"{run} stopped during its switch; finished by this run"})
            if source in COLOURS and source != target:
                self.keep_previous(source)
            self.step("resume", target, "done", f"{run} stopped during its switch to {target} ({version}): switched "
                                                "again, checked through the front, recorded live", began)
            self.settled = f"{run} was interrupted during its switch to {target} ({version}): finished, it is live"
            return
        where = self.switch_back_from_interrupted(entry, problem)
        self.step("resume", target, "failed", f"{run} stopped during its switch to {target} ({version}); "
                                              f"{problem}; {where}", began)
        raise DeployError(msg=f"{run} was interrupted during its switch to {target} ({version}), and finishing it "
                              f"failed: {problem}; {where}. Nothing else was done: run again")

    def finish_switch(self, target: str, version: str) -> str | None:
        """Switch to ``target`` again and run the post-switch checks through the front: None, or what failed."""
        try:
            self.platform.switch(target)
        except DeployError as exc:
            return f"switching to {target} again failed: {exc.msg}"
        failed = self.checks(self.options.post + self.version_check(version), self.platform.front_targets,
                             self.env(target, version), "post_check")
        return f"post-switch checks failed: {failed}" if failed else None

    def switch_back_from_interrupted(self, entry: dict[str, Any], problem: str) -> str:
        """Put the traffic back where the interrupted switch took it from; says where it ended."""
        source, version = entry.get("from_colour"), entry.get("from_version")
        if source not in COLOURS:
            return "no previous colour to go back to"
        try:
            self.platform.switch(source)
        except DeployError as exc:
            return f"switching back to {source} failed too: {exc.msg}; check the front by hand"
        self.record_history({"action": "switch back", "version": version, "colour": source, "result": "rolled back",
                             "detail": problem, "spec": entry.get("from_spec") or {}})
        return f"traffic is back on {source} ({version})"

    # ----------------------------------------------------------------- records

    def finish(self, out: Outcome) -> Outcome:
        """The run's records: the change first, then each step and check, then (a real run) the live version."""
        live = None if self.check_mode else self.live_record(out)
        if live is not None and live["status"] == "failed" and not out.failed:
            out.failed = True
            out.msg = f"{out.msg}; but read back, {live['detail']}"
        if self.settled:
            out.msg = f"{self.settled}; {out.msg}"
        out.records = [self.main_record(out, live), *self.records, *([live] if live else [])]
        out.changed = is_changed(out.records)
        return out

    def refusal(self, exc: MaintenanceError) -> Outcome:
        """The failed outcome of a deploy or rollback that raised (refused, or a platform error): its records."""
        out = self.outcome
        out.failed = True
        out.msg = f"{self.settled}; {exc.msg}" if self.settled else exc.msg
        out.active_after = self.active_now()
        if exc.details.get("window") is not None:
            out.window = exc.details["window"]
        out.records = [self.main_record(out, None), *self.records]
        out.changed = is_changed(out.records)
        return out

    def main_record(self, out: Outcome, live: dict[str, Any] | None) -> dict[str, Any]:
        name = " ".join(part for part in (self.options.app, self.target_version) if part) or self.action
        before = self.where(out.active_before, out.version_before, out.spec_before)
        if out.failed:
            status = "failed"
            stayed = out.active_after == out.active_before
            after = (self.where(live["after"]["colour"], live["after"]["version"], live["after"].get("spec")) if live
                     else self.where(out.active_after, out.version_before if stayed else None,
                                     out.spec_before if stayed else None))
        elif self.check_mode and out.plan:
            status, after = "planned", dict(out.plan["to"])
        else:
            after = self.where(out.active_after, out.version_after, out.spec_after)
            status = "unchanged" if after == before else "done"
        return make_record(name, self.action, status, out.msg, before=before, after=after,
                           seconds=time.monotonic() - self.begun)

    def live_record(self, out: Outcome) -> dict[str, Any] | None:
        """The version with the traffic, read back from the platform; None when no colour should have it."""
        expected = ((out.active_before, out.version_before, out.spec_before) if out.failed
                    else (out.active_after, out.version_after, out.spec_after))
        if expected[0] is None:
            return None
        name = f"{self.options.app or 'app'} live version"
        began = time.monotonic()
        try:
            active = self.platform.active()
            state = self.platform.colours()[active] if active else None
        except DeployError as exc:
            return make_record(name, "live", "failed", f"the traffic cannot be read back: {exc.msg}",
                               seconds=time.monotonic() - began)
        version = state.version if state else None
        spec = state.spec if state else None
        ready = bool(state and state.ready)
        passed = (active, version, spec) == expected and ready
        wrong_spec = "" if spec == expected[2] or (active, version) != expected[:2] else (
            f"; its spec differs from the expected one: {spec_changes(expected[2], spec)}")
        detail = (f"{active or 'no colour'} has the traffic and runs {version} "
                  f"({'ready' if ready else 'not ready'}; expected {expected[1]} on {expected[0]}){wrong_spec}")
        after = {"colour": active, "version": version, "ready": ready}
        if self.spec_in_play():
            after["spec"] = spec
        return make_record(name, "live", "ok" if passed else "failed", detail, after=after,
                           seconds=time.monotonic() - began)

    # ----------------------------------------------------------------- status

    def status(self) -> dict[str, Any]:
        states = self.platform.colours()
        active = self.platform.active()
        records = []
        for colour, state in states.items():
            if state.exists:
                tuned = f"; spec {', '.join(describe_spec(state.spec))}" if state.spec else ""
                detail = (f"{state.version or 'no single version'}, {'ready' if state.ready else 'not ready'} "
                          f"({state.detail}){tuned}" + ("; has the traffic" if colour == active else ""))
            else:
                detail = "does not exist"
            records.append(make_record(self.name(colour), "status", "ok", detail, after={
                "exists": state.exists, "version": state.version, "ready": state.ready, "replicas": state.replicas,
                "keep_until": state.keep_until, "live": colour == active, "spec": state.spec}))
        msg = (f"{active} has the traffic ({states[active].version})" if active
               else "no colour has the traffic yet")
        return {"changed": False, "msg": msg, "records": records, "active": active,
                "colours": {c: asdict(s) for c, s in states.items()}, "history": self.platform.history()}

    # ----------------------------------------------------------------- deploy

    def deploy(self, version: str) -> Outcome:
        """Make ``version`` (with the options' spec) live; raises (DeployError, WindowClosedError) when refused before anything changed."""
        self.action = "deploy"
        self.settle_interrupted_switch()
        return self.finish(self.deploy_steps(version))

    def deploy_steps(self, version: str, spec: dict[str, Any] | None = None) -> Outcome:
        """Deploy ``version`` with ``spec`` (the options' spec when None); the same version with another spec is
        a deploy too."""
        spec = self.options.spec if spec is None else spec
        self.target_version, self.target_spec = version, spec
        states, active = self.read_traffic()
        out = self.outcome
        if active and states[active].version == version and states[active].spec == spec and states[active].ready:
            out.active_after, out.version_after, out.spec_after = active, version, spec
            out.msg = f"{version} already has the traffic on {active}" + (" with this spec" if spec else "")
            self.retire_expired(states, active)
            return out
        target = other(active) if active else "blue"
        out.plan = {"from": self.where(active, out.version_before, out.spec_before),
                    "to": self.where(target, version, spec),
                    "changes": self.platform.plan(target, version, spec)
                    + ["traffic: " + (active or "none") + " -> " + target]}
        if self.spec_in_play():
            idle = states[target]
            out.plan["spec"] = {"colour": target, "before": idle.spec if idle.exists else {}, "after": spec,
                                "live": out.spec_before, "changes": spec_changes(out.spec_before, spec)}
        what = f"{version}" + (" with another spec" if active and states[active].version == version else "")
        self.require_window(f"switch traffic to {what}")
        if self.check_mode:
            out.msg = f"would deploy {what} to {target} and switch traffic from {active or 'nothing'} to it"
            return out
        return self.roll_out(target, version, active)

    def roll_out(self, target: str, version: str, active: str | None) -> Outcome:
        spec = self.target_spec
        began = time.monotonic()
        try:
            self.platform.deploy(target, version, spec)
        except DeployError as exc:
            self.step("deployed", target, "failed", f"{version}: {exc.msg}", began)
            self.record_history({"action": "deploy", "version": version, "colour": target, "result": "not deployed",
                                 "detail": exc.msg, "spec": spec})
            return self.fail(f"deploying {version} to {target} failed: {exc.msg}; traffic stays on {active or 'nothing'}")
        tuned = f" with spec {', '.join(describe_spec(spec))}" if spec else ""
        self.step("deployed", target, "done", f"{version} on {target}{tuned}", began)
        proof = self.prove(target, version, migrate=True)
        if proof.problem:
            undone = self.undo_migration(proof.migrated, self.env(target, version))
            self.record_history({"action": "deploy", "version": version, "colour": target, "result": proof.result,
                                 "detail": proof.problem, "spec": spec})
            return self.fail(f"{proof.problem}{undone}; traffic stays on {active or 'nothing'}")
        return self.switch_and_verify(target, version, active, migrated=proof.migrated)

    def prove(self, colour: str, version: str, *, migrate: bool) -> Proof:
        """The deploy's gate before traffic: ready, then the migration (``migrate``), then the smoke checks."""
        env = self.env(colour, version)
        began = time.monotonic()
        try:
            self.platform.wait_ready(colour, version, self.options.ready_timeout)
        except DeployError as exc:
            self.step("ready", colour, "failed", exc.msg, began)
            return Proof(f"{version} on {colour} did not become ready: {exc.msg}", "not ready")
        self.step("ready", colour, "ok", f"{version} is ready on {colour}", began)
        migrated = False
        if migrate and self.options.migration:
            began = time.monotonic()
            problem = run_hook(self.options.migration, "migration", env, self.options.hook_timeout)
            self.step("migration", colour, "failed" if problem else "done", problem or f"migration for {version} ran",
                      began)
            if problem:
                return Proof(problem, "failed before switch")
            migrated = True
        failed = self.checks(self.options.smoke + self.version_check(version), lambda: self.platform.targets(colour),
                             env, "smoke")
        if failed:
            return Proof(f"smoke checks on {colour} failed: {failed}", "failed before switch", migrated)
        return Proof(migrated=migrated)

    def switch_and_verify(self, target: str, version: str, active: str | None, *, migrated: bool = False) -> Outcome:
        """Move the traffic to a proven ``target``, check through the front, go back on any failure; record it."""
        out = self.outcome
        env = self.env(target, version)
        moving = "roll back to" if self.action == "rollback" else "switch traffic to"
        try:
            self.require_window(f"{moving} {version}")
        except MaintenanceError as exc:
            if exc.details.get("window") is not None:
                out.window = exc.details["window"]
            undone = self.undo_migration(migrated, env)
            return self.fail(f"{version} is ready on {target} but the window closed: {exc.msg}{undone}; "
                             f"traffic stays on {active or 'nothing'}")
        self.record_history({"action": "rollback" if self.action == "rollback" else "switch", "version": version,
                             "colour": target, "result": "switching", "from_colour": active,
                             "from_version": out.version_before, "spec": self.target_spec,
                             "from_spec": out.spec_before})
        began = time.monotonic()
        try:
            self.platform.switch(target)
        except DeployError as exc:
            self.step("switched", target, "failed", exc.msg, began)
            undone = self.undo_migration(migrated, env)
            where = self.after_failed_switch(active, exc.msg)
            return self.fail(f"switching traffic to {target} failed: {exc.msg}{undone}; {where}")
        self.step("switched", target, "done", f"traffic moved from {active or 'nothing'} to {target} ({version})", began)
        failed = self.checks(self.options.post + self.version_check(version), self.platform.front_targets, env,
                             "post_check")
        if failed:
            reason = f"post-switch checks failed: {failed}"
            where = self.back_to(active)
            undone = self.undo_migration(migrated, env)
            self.record_history({"action": "switch back", "version": out.version_before, "colour": active,
                                 "result": "rolled back", "detail": reason, "spec": out.spec_before})
            return self.fail(f"{reason}{undone}; {where}")
        self.record_history({"action": self.action, "version": version, "colour": target, "result": "live",
                             "from_colour": active, "from_version": out.version_before, "spec": self.target_spec,
                             "from_spec": out.spec_before})
        if active is not None:
            self.keep_previous(active)
        out.active_after, out.version_after, out.spec_after = target, version, self.target_spec
        kept = f"; {out.version_before} kept on {active}" if active else ""
        out.msg = (f"rolled back to {version} on {target}{kept}" if self.action == "rollback"
                   else f"{version} is live on {target}{kept}")
        return out

    def after_failed_switch(self, active: str | None, problem: str) -> str:
        """After a switch that raised: back on ``active`` (switched back only when the front left it), the
        ``switching`` entry closed, so the next run does not take this run for one that was killed; says where
        the traffic is."""
        try:
            stayed = active is not None and self.platform.active() == active
        except DeployError:
            stayed = False
        if stayed:
            # The driver undid its own half (nginx rejected the file, which was restored): nothing to switch back.
            where = f"traffic stays on {active} ({self.outcome.version_before})"
        else:
            where = self.back_to(active)
        if stayed or where.startswith("traffic is back"):
            self.record_history({"action": "switch back", "version": self.outcome.version_before, "colour": active,
                                 "result": "rolled back", "detail": f"switching failed: {problem}",
                                 "spec": self.outcome.spec_before})
        return where

    def back_to(self, active: str | None) -> str:
        """Put the traffic back on ``active`` after a failed switch; says where it ended."""
        if active is None:
            return "no previous colour to go back to"
        began = time.monotonic()
        try:
            self.platform.switch(active)
        except DeployError as exc:
            self.step("switched back", active, "failed", exc.msg, began)
            return f"switching back to {active} failed too: {exc.msg}; check the front by hand"
        self.step("switched back", active, "done", f"traffic back on {active} ({self.outcome.version_before})", began)
        return f"traffic is back on {active} ({self.outcome.version_before})"

    def undo_migration(self, migrated: bool, env: dict[str, str]) -> str:
        if not migrated or not self.options.migration_rollback:
            return ""
        began = time.monotonic()
        problem = run_hook(self.options.migration_rollback, "migration rollback", env, self.options.hook_timeout)
        self.step("migration rollback", env.get("BG_COLOUR"), "failed" if problem else "done",
                  problem or "migration rolled back", began)
        return "; migration rolled back" if problem is None else f"; {problem} (the migration is NOT undone)"

    # ----------------------------------------------------------------- rollback

    def rollback(self) -> Outcome:
        """Go back to a known-good version; raises (DeployError, WindowClosedError) when refused before any change."""
        self.action = "rollback"
        self.settle_interrupted_switch()
        return self.finish(self.rollback_steps())

    def rollback_steps(self) -> Outcome:
        states, active = self.read_traffic()
        out = self.outcome
        wanted = self.options.to_version
        self.target_version = wanted
        if wanted is not None and active and states[active].version == wanted:
            self.target_spec = out.spec_before
            out.active_after, out.version_after, out.spec_after = active, wanted, out.spec_before
            out.msg = f"{wanted} already has the traffic on {active}"
            return out
        if active is None:
            raise DeployError(msg="nothing has traffic yet: there is nothing to roll back")
        history = self.platform.history()
        last = last_change(history)
        if wanted is None and last is not None and last.get("action") == "rollback" \
                and last.get("colour") == active and last.get("version") == out.version_before:
            # A rollback undoes the last deploy; run again, it must not flip back to what it undid.
            self.target_version, self.target_spec = out.version_before, out.spec_before
            out.active_after, out.version_after, out.spec_after = active, out.version_before, out.spec_before
            out.msg = (f"{active} ({out.version_before}) has the traffic since the rollback of {last.get('at')}: "
                       "nothing left to undo; name an older version with to_version")
            return out
        previous = other(active)
        kept = states[previous]
        proven = passed_checks(history, previous, kept.version, kept.spec)
        if wanted is None or (kept.version == wanted and proven is not False):
            return self.switch_back(previous, kept, active, proven)
        # Live once: deployed here, or what had the traffic when a switch was made (the first version
        # may predate this module's history).
        known = set()
        for entry in history:
            if entry.get("result") == "live":
                known.add(entry.get("version"))
            known.add(entry.get("from_version"))
        known.discard(None)
        if wanted not in known:
            raise DeployError(msg=f"to_version {wanted!r} was never live here (history: "
                                  f"{', '.join(sorted(v for v in known if v)) or 'empty'}); "
                                  f"traffic stays on {active} ({out.version_before})")
        # Deployed again as it last went live: its version with its spec.
        return self.deploy_steps(wanted, spec_of_version(history, wanted))

    def switch_back(self, previous: str, kept: ColourState, active: str, proven: bool | None) -> Outcome:
        """Switch to the version kept on ``previous``: at once when the history proves it, after the checks when
        the history does not know it, never when the history says it failed."""
        out = self.outcome
        self.target_version, self.target_spec = kept.version, kept.spec
        where = f"traffic stays on {active} ({out.version_before})"
        if not kept.exists or not kept.replicas or kept.version is None:
            raise DeployError(msg=f"no previous version is kept on {previous}: nothing to switch back to; "
                                  f"name a version from the history with to_version; {where}")
        if proven is False:
            raise DeployError(msg=f"{kept.version} on {previous} never passed its checks there (its deploy failed or "
                                  f"was interrupted): it gets no traffic; {active} ({out.version_before}) keeps it. "
                                  "Name a version that was live with to_version")
        if not kept.ready:
            raise DeployError(msg=f"{kept.version} on {previous} is not ready ({kept.detail or 'no ready instance'}); "
                                  f"{where}")
        unknown = f"no deploy history records {kept.version} on {previous} as live"
        if proven is None and not self.options.smoke:
            raise DeployError(msg=f"{unknown} and no smoke_checks are given: nothing proves it good, so it gets no "
                                  f"traffic; {where}. Give smoke_checks to check it first, or name a version that "
                                  "was live with to_version")
        changes = [f"traffic: {active} -> {previous}"]
        if proven is None:
            changes.insert(0, f"check {previous} ({kept.version}) first, as a deploy does: readiness and "
                              f"{len(self.options.smoke)} smoke check(s) ({unknown})")
        out.plan = {"from": self.where(active, out.version_before, out.spec_before),
                    "to": self.where(previous, kept.version, kept.spec), "changes": changes}
        if self.spec_in_play():
            out.plan["spec"] = {"colour": previous, "before": kept.spec, "after": kept.spec, "live": out.spec_before,
                                "changes": spec_changes(out.spec_before, kept.spec)}
        self.require_window(f"roll back to {kept.version}")
        if self.check_mode:
            first = (f"check {kept.version} on {previous} first (readiness and smoke checks: {unknown}) and, "
                     "if it passes, " if proven is None else "")
            out.msg = f"would {first}switch traffic back from {active} to {previous} ({kept.version})"
            return out
        if proven is None:
            proof = self.prove(previous, kept.version, migrate=False)
            if proof.problem:
                return self.fail(f"{proof.problem} ({unknown}, so it had to pass the checks first): it gets no "
                                 f"traffic; {where}")
        return self.switch_and_verify(previous, kept.version, active)


def last_change(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The latest history entry that put a version live (a deploy or a rollback); None when there is none."""
    for entry in reversed(history):
        if entry.get("result") == "live":
            return entry
    return None


def closing(entry: dict[str, Any]) -> dict[str, Any]:
    """The fields of a ``switching`` entry that the entry closing it repeats: the move it was about."""
    return {"version": entry.get("version"), "colour": entry.get("colour"), "from_colour": entry.get("from_colour"),
            "from_version": entry.get("from_version"), "spec": entry.get("spec") or {},
            "from_spec": entry.get("from_spec") or {}}


def passed_checks(history: list[dict[str, Any]], colour: str, version: str | None,
                  spec: dict[str, Any] | None = None) -> bool | None:
    """Whether ``version`` (with ``spec``) on ``colour`` last had the traffic or passed its checks there.

    The latest entry that names the colour decides: as the target of a switch that went live (or of a switch
    back), or as the colour the traffic left. A failed deploy, a switch that never went live, or a colour that
    now runs another version (or spec) than the one recorded is False. An entry written before specs were
    recorded does not judge the spec. None when the history says nothing of the colour (a colour set up before
    this module kept history). A switch that a killed run never made (``interrupted``, with the ``switching``
    entry it closes) judges nothing of its target: the entries before it decide, and False when none does.
    """
    spec = spec or {}
    skipped = False
    position = len(history)
    while position:
        position -= 1
        entry = history[position]
        if entry.get("result") == "interrupted" and entry.get("colour") == colour:
            previous = history[position - 1] if position else {}
            if previous.get("result") == "switching" and previous.get("colour") == colour:
                position -= 1
            skipped = True
            continue
        if entry.get("colour") == colour:
            same_spec = "spec" not in entry or (entry.get("spec") or {}) == spec
            return entry.get("result") in ("live", "rolled back") and entry.get("version") == version and same_spec
        if entry.get("from_colour") == colour:
            same_spec = "from_spec" not in entry or (entry.get("from_spec") or {}) == spec
            return entry.get("from_version") == version and same_spec
    return False if skipped else None


def user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def describe_keep(value: Any) -> timedelta | None:
    if value in (None, ""):
        return None
    return parse_duration(value, field_name="keep_previous_for", allow_zero=True)


__all__ = ["BlueGreen", "COLOURS", "Check", "ColourState", "DeployError", "IMAGE_TAG", "Options", "Outcome",
           "Platform", "Proof", "check_image_repository", "check_image_tag", "describe_keep", "format_duration", "last_change", "other",
           "parse_checks", "passed_checks", "run_checks", "tail"]
