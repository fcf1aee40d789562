# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""One blue/green flow over a platform driver (Kubernetes or compose).

Deploy to the idle colour, prove it ready and healthy, switch traffic, check
through the front, and switch back on any failure: traffic only ever moves to
a colour that passed its checks, and ends on the previous colour otherwise.
The drivers (platform_k8s, platform_compose) only answer what is where and do
one atomic thing each; the decisions are here.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from .errors import MaintenanceError
from .window import WindowGuard, format_duration, parse_duration

COLOURS = ("blue", "green")
HISTORY_KEEP = 50
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DeployError(MaintenanceError):
    """A deploy, switch or rollback step failed; ``msg`` says which and where the traffic is."""


def other(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


@dataclass
class ColourState:
    colour: str
    exists: bool = False
    version: str | None = None
    ready: bool = False
    replicas: int = 0
    keep_until: str | None = None
    detail: str = ""


class Platform(Protocol):
    """What the flow needs from a platform. Every method acts on the real platform, nothing is cached."""

    kind: str

    def colours(self) -> dict[str, ColourState]:
        """State of both colours (a colour that does not exist has ``exists=False``)."""

    def active(self) -> str | None:
        """The colour that has the traffic now, or None when nothing has it yet (first deploy)."""

    def plan(self, colour: str, version: str) -> list[str]:
        """Objects that deploying ``version`` to ``colour`` would create or change."""

    def deploy(self, colour: str, version: str) -> None:
        """Run ``version`` on ``colour`` (create it, or change its image), without touching the traffic."""

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
            with _DIRECT.open(url, timeout=check.timeout) as response:  # noqa: S310 - operator-given URL
                status, body = response.status, response.read(65536).decode(errors="replace")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read(65536).decode(errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            detail = f"{url}: {getattr(exc, 'reason', exc)}"
            continue
        if status != check.status:
            detail = f"{url}: HTTP {status}, expected {check.status}"
        elif check.contains is not None and check.contains not in body:
            detail = f"{url}: body does not contain {check.contains!r}"
        else:
            return True, f"{url}: HTTP {status}"
    return False, detail


def run_checks(checks: list[Check], targets: list[str], env: dict[str, str], stage: str) -> list[dict[str, Any]]:
    results = []
    for check in checks:
        if not check.command and not targets:
            results.append({"stage": stage, "check": check.name, "target": None, "passed": False,
                            "detail": "no target to check (no ready endpoint)"})
        # A command check runs once (it is given the first target); an HTTP check runs on every target.
        for target in (targets[:1] or [""]) if check.command else targets:
            passed, detail = run_check(check, target, env)
            results.append({"stage": stage, "check": check.name, "target": target, "passed": passed, "detail": detail})
    return results


def failures(results: list[dict[str, Any]]) -> str:
    return "; ".join(f"{r['check']} ({r['detail']})" for r in results if not r["passed"])


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


@dataclass
class Outcome:
    changed: bool = False
    failed: bool = False
    msg: str = ""
    active_before: str | None = None
    active_after: str | None = None
    version_before: str | None = None
    version_after: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    plan: dict[str, Any] = field(default_factory=dict)


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
        self.begun = time.monotonic()

    # ----------------------------------------------------------------- helpers

    def step(self, name: str, **extra: Any) -> None:
        self.outcome.steps.append({"step": name, "at_s": round(time.monotonic() - self.begun, 3), **extra})

    def env(self, colour: str, version: str) -> dict[str, str]:
        return {"BG_COLOUR": colour, "BG_VERSION": version, "BG_PLATFORM": self.platform.kind}

    def require_window(self, what: str) -> None:
        if self.guard is not None:
            self.guard.require(refusal=f"refusing to {what}")

    def record(self, entry: dict[str, Any]) -> None:
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
        """A previous colour whose keep time has passed is stopped (never the one with traffic)."""
        for colour, state in states.items():
            if colour == active or not state.exists or not state.replicas or not state.keep_until:
                continue
            if datetime.fromisoformat(state.keep_until) <= self.clock():
                if not self.check_mode:
                    self.platform.retire(colour)
                self.step("retired", colour=colour, version=state.version, kept_until=state.keep_until)
                self.outcome.changed = True

    def fail(self, msg: str) -> Outcome:
        self.outcome.failed = True
        self.outcome.msg = msg
        self.outcome.active_after = self.platform.active() if not self.check_mode else self.outcome.active_before
        return self.outcome

    # ----------------------------------------------------------------- status

    def status(self) -> dict[str, Any]:
        states = self.platform.colours()
        return {"active": self.platform.active(), "colours": {c: asdict(s) for c, s in states.items()},
                "history": self.platform.history()}

    # ----------------------------------------------------------------- deploy

    def deploy(self, version: str) -> Outcome:
        states = self.platform.colours()
        active = self.platform.active()
        out = self.outcome
        out.active_before = active
        out.version_before = states[active].version if active else None
        if active and states[active].version == version and states[active].ready:
            out.active_after, out.version_after = active, version
            out.msg = f"{version} already has the traffic on {active}"
            self.retire_expired(states, active)
            return out
        target = other(active) if active else "blue"
        out.plan = {"from": {"colour": active, "version": out.version_before},
                    "to": {"colour": target, "version": version},
                    "changes": self.platform.plan(target, version) + ["traffic: " + (active or "none") + " -> " + target]}
        self.require_window(f"switch traffic to {version}")
        if self.check_mode:
            out.changed = True
            out.msg = f"would deploy {version} to {target} and switch traffic from {active or 'nothing'} to it"
            return out
        return self.roll_out(target, version, states, active)

    def roll_out(self, target: str, version: str, states: dict[str, ColourState], active: str | None) -> Outcome:
        out = self.outcome
        out.changed = True
        env = self.env(target, version)
        self.platform.deploy(target, version)
        self.step("deployed", colour=target, version=version)
        try:
            self.platform.wait_ready(target, version, self.options.ready_timeout)
        except DeployError as exc:
            self.record({"action": "deploy", "version": version, "colour": target, "result": "not ready",
                         "detail": exc.msg})
            return self.fail(f"{version} on {target} did not become ready: {exc.msg}; "
                             f"traffic stays on {active or 'nothing'}")
        self.step("ready", colour=target)
        migrated = False
        problem = run_hook(self.options.migration, "migration", env, self.options.hook_timeout)
        if self.options.migration:
            migrated = problem is None
            self.step("migration", passed=problem is None)
        if problem is None:
            smoke = run_checks(self.options.smoke, self.platform.targets(target), env, "smoke")
            out.checks += smoke
            problem = failures(smoke) and f"smoke checks on {target} failed: {failures(smoke)}"
            self.step("smoke", passed=not problem)
        if problem:
            undone = self.undo_migration(migrated, env)
            self.record({"action": "deploy", "version": version, "colour": target, "result": "failed before switch",
                         "detail": problem})
            return self.fail(f"{problem}{undone}; traffic stays on {active or 'nothing'}")
        try:
            self.require_window(f"switch traffic to {version}")
        except MaintenanceError as exc:
            self.undo_migration(migrated, env)
            return self.fail(f"{version} is ready on {target} but the window closed: {exc.msg}; "
                             f"traffic stays on {active or 'nothing'}")
        self.record({"action": "switch", "version": version, "colour": target, "result": "switching",
                     "from_colour": active, "from_version": out.version_before})
        switched_at = time.monotonic()
        try:
            self.platform.switch(target)
        except DeployError as exc:
            undone = self.undo_migration(migrated, env)
            return self.fail(f"switching traffic to {target} failed: {exc.msg}{undone}; {self.back_to(active)}")
        self.step("switched", colour=target, seconds=round(time.monotonic() - switched_at, 3))
        post = run_checks(self.options.post, self.platform.front_targets(), env, "post-switch")
        out.checks += post
        if failures(post):
            reason = f"post-switch checks failed: {failures(post)}"
            where = self.back_to(active)
            undone = self.undo_migration(migrated, env)
            self.record({"action": "switch back", "version": out.version_before, "colour": active,
                         "result": "rolled back", "detail": reason})
            return self.fail(f"{reason}{undone}; {where}")
        self.record({"action": "deploy", "version": version, "colour": target, "result": "live",
                     "from_colour": active, "from_version": out.version_before})
        if active is not None:
            self.keep_previous(active)
        out.active_after, out.version_after = target, version
        out.msg = f"{version} is live on {target}" + (f"; {out.version_before} kept on {active}" if active else "")
        return out

    def back_to(self, active: str | None) -> str:
        """Put the traffic back on ``active`` after a failed switch; says where it ended."""
        if active is None:
            return "no previous colour to go back to"
        try:
            self.platform.switch(active)
        except DeployError as exc:
            return f"switching back to {active} failed too: {exc.msg}; check the front by hand"
        self.step("switched back", colour=active)
        return f"traffic is back on {active} ({self.outcome.version_before})"

    def undo_migration(self, migrated: bool, env: dict[str, str]) -> str:
        if not migrated or not self.options.migration_rollback:
            return ""
        problem = run_hook(self.options.migration_rollback, "migration rollback", env, self.options.hook_timeout)
        self.step("migration rollback", passed=problem is None)
        return "; migration rolled back" if problem is None else f"; {problem} (the migration is NOT undone)"

    # ----------------------------------------------------------------- rollback

    def rollback(self) -> Outcome:
        states = self.platform.colours()
        active = self.platform.active()
        out = self.outcome
        out.active_before = active
        out.version_before = states[active].version if active else None
        wanted = self.options.to_version
        if wanted is not None and active and states[active].version == wanted:
            out.active_after, out.version_after = active, wanted
            out.msg = f"{wanted} already has the traffic on {active}"
            return out
        if active is None:
            raise DeployError(msg="nothing has traffic yet: there is nothing to roll back")
        history = self.platform.history()
        last = last_change(history)
        if wanted is None and last is not None and last.get("action") == "rollback" \
                and last.get("colour") == active and last.get("version") == out.version_before:
            # A rollback undoes the last deploy; run again, it must not flip back to what it undid.
            out.active_after, out.version_after = active, out.version_before
            out.msg = (f"{active} ({out.version_before}) has the traffic since the rollback of {last.get('at')}: "
                       "nothing left to undo; name an older version with to_version")
            return out
        previous = other(active)
        kept = states[previous]
        proven = passed_checks(history, previous, kept.version)
        if wanted is None and proven is False:
            raise DeployError(msg=f"{kept.version} on {previous} never passed its checks there (its deploy failed): "
                                  f"it gets no traffic; {active} ({out.version_before}) keeps it. Name a version "
                                  "that was live with to_version")
        if wanted is None or (kept.version == wanted and proven is not False):
            if not kept.exists or not kept.replicas or kept.version is None:
                raise DeployError(msg=f"no previous version is kept on {previous}: nothing to switch back to; "
                                      "name a version from the history with to_version")
            if not kept.ready:
                raise DeployError(msg=f"{kept.version} on {previous} is not ready ({kept.detail or 'no ready instance'}); "
                                      f"traffic stays on {active} ({out.version_before})")
            out.plan = {"from": {"colour": active, "version": out.version_before},
                        "to": {"colour": previous, "version": kept.version}, "changes": [f"traffic: {active} -> {previous}"]}
            self.require_window(f"roll back to {kept.version}")
            if self.check_mode:
                out.changed = True
                out.msg = f"would switch traffic back from {active} to {previous} ({kept.version})"
                return out
            out.changed = True
            self.record({"action": "rollback", "version": kept.version, "colour": previous, "result": "switching",
                         "from_colour": active, "from_version": out.version_before})
            began = time.monotonic()
            try:
                self.platform.switch(previous)
            except DeployError as exc:
                return self.fail(f"switching traffic back to {previous} failed: {exc.msg}; {self.back_to(active)}")
            self.step("switched", colour=previous, seconds=round(time.monotonic() - began, 3))
            env = self.env(previous, kept.version)
            post = run_checks(self.options.post, self.platform.front_targets(), env, "post-switch")
            out.checks += post
            if failures(post):
                where = self.back_to(active)
                self.record({"action": "rollback", "version": kept.version, "colour": previous,
                             "result": "failed, switched back", "detail": failures(post)})
                return self.fail(f"after rolling back to {kept.version} the post-switch checks failed: "
                                 f"{failures(post)}; {where}")
            self.record({"action": "rollback", "version": kept.version, "colour": previous, "result": "live",
                         "from_colour": active, "from_version": out.version_before})
            self.keep_previous(active)
            out.active_after, out.version_after = previous, kept.version
            out.msg = f"rolled back to {kept.version} on {previous}; {out.version_before} kept on {active}"
            return out
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
                                  f"{', '.join(sorted(v for v in known if v)) or 'empty'})")
        return self.deploy(wanted)


def last_change(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The latest history entry that put a version live (a deploy or a rollback); None when there is none."""
    for entry in reversed(history):
        if entry.get("result") == "live":
            return entry
    return None


def passed_checks(history: list[dict[str, Any]], colour: str, version: str | None) -> bool | None:
    """Whether ``version`` on ``colour`` last had the traffic or passed its checks there.

    The latest entry that names the colour decides: as the target of a switch that went live (or of a switch
    back), or as the colour the traffic left. A failed deploy, a switch that never went live, or a colour that
    now runs another version than the one recorded is False. None when the history says nothing of the colour
    (a colour set up before this module kept history).
    """
    for entry in reversed(history):
        if entry.get("colour") == colour:
            return entry.get("result") in ("live", "rolled back") and entry.get("version") == version
        if entry.get("from_colour") == colour:
            return entry.get("from_version") == version
    return None


def user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def describe_keep(value: Any) -> timedelta | None:
    if value in (None, ""):
        return None
    return parse_duration(value, field_name="keep_previous_for", allow_zero=True)


__all__ = ["BlueGreen", "COLOURS", "Check", "ColourState", "DeployError", "Options", "Platform", "format_duration",
           "other", "parse_checks", "describe_keep", "last_change", "passed_checks"]
