# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The per-estate run lock: one maintenance run of an estate at a time (docs/playbooks.md, "Run lock").

A lock is one JSON file, ``<directory>/<name>.lock``, on the host where the checklist runs its modules. It
names the run that holds it (its run id, Maintenance ID, who started it from which controller, the
ansible-playbook pid and that process's start time, the controller's boot id) and when it expires.

- **Acquire** writes the whole file under a temporary name, then ``os.link``s it to the lock's name: the
  link fails when a lock exists, so two runs can never both create it, and nobody reads half a file.
- **Decide**: no lock (free), a lock of this run id (re-entered: a later serial batch, another host of the
  estate), a lock past its ``expires_at`` (expired), a lock whose holder is provably gone (stale: same
  machine and pid namespace and the pid is gone or is another process now, or the machine rebooted since),
  otherwise held by another run: refused, naming it.
- **Take over** (expired or stale) replaces the judged lock with ``os.rename`` of the new file over it, after
  checking it is still the very file judged (same inode and content).
- **Release** removes the lock only when it carries this run's id.

Every decision that changes the directory is made while holding ``flock`` on the directory itself: the kernel
drops that guard when its process dies, so a killed run never leaves the guard behind, and the directory holds
nothing but the locks.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import stat
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import MaintenanceError
from .records import make_record
from .window import parse_duration

UTC = timezone.utc
DEFAULT_DIRECTORY = "/var/lib/streamops-maintenance/locks"
DEFAULT_TTL = "6h"
LOCK_FORMAT = 1
NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
NAME_MAX = 200  # <name>.lock and its temporary name stay under the 255 bytes of a file name
GUARD_TIMEOUT_S = 10.0
_TEMP_PREFIX = ".tmp-"
_TEMP_SUFFIX = ".lock-tmp"

FREE, OWN, HELD, EXPIRED, STALE = "free", "own", "held", "expired", "stale"


# --------------------------------------------------------------------------- errors


class LockError(MaintenanceError):
    """The lock could not be read, written or decided on (a bad name, an unusable directory)."""


class LockHeldError(LockError):
    """Another run holds the estate's lock; ``details`` carry the failed record and the holder's lock."""


class LockChangedError(LockError):
    """The lock changed between the decision and the take-over (another process ignored the guard)."""


# --------------------------------------------------------------------------- who holds it


@dataclass(frozen=True)
class Holder:
    """The run that holds (or asks for) a lock, as the controller describes it (the run_holder lookup)."""

    maintenance_id: str = ""
    user: str = ""
    controller: str = ""
    pid: int | None = None
    # /proc/<pid>/stat's start time (clock ticks after boot): a reused pid has another one.
    pid_start: str = ""
    boot_id: str = ""
    pid_namespace: str = ""
    machine_id: str = ""
    awx_job_id: str = ""
    awx_user: str = ""

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> Holder:
        raw = raw or {}
        known = {key: raw.get(key) for key in cls.__dataclass_fields__ if raw.get(key) not in (None, "")}
        pid = known.pop("pid", None)
        try:
            pid_value = int(pid) if pid is not None else None
        except (TypeError, ValueError):
            raise LockError(msg=f"holder pid {pid!r} is not a process id (a whole number)") from None
        return cls(pid=pid_value, **{key: str(value) for key, value in known.items()})

    def who(self) -> str:
        if self.awx_job_id or self.awx_user:
            return f"AWX user {self.awx_user or '?'} (job {self.awx_job_id or '?'})"
        return self.user or "an unknown user"

    def where(self) -> str:
        pid = f" (ansible-playbook pid {self.pid})" if self.pid is not None else ""
        return f"{self.controller or 'an unknown controller'}{pid}"


@dataclass(frozen=True)
class Machine:
    """The machine a decision is made on: what proves that a holder on it is gone."""

    hostname: str = ""
    boot_id: str = ""
    machine_id: str = ""
    pid_namespace: str = ""


@dataclass(frozen=True)
class ProcessState:
    """A pid as seen now: gone (no such process), or alive with its start time when it can be read."""

    alive: bool
    start: str = ""


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks after boot (/proc/<pid>/stat field 22); '' when unreadable."""
    text = _read_text(f"/proc/{pid}/stat")
    # The command name (field 2) is in parentheses and may contain spaces or parentheses: split after the last.
    fields = text.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def probe_process(pid: int) -> ProcessState:
    """Is ``pid`` alive? Signal 0 answers even where /proc hides other users' processes (hidepid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return ProcessState(alive=False)
    except PermissionError:
        pass  # it exists, owned by someone else
    return ProcessState(alive=True, start=process_start(pid))


def pid_namespace(pid: int | str = "self") -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


def this_machine() -> Machine:
    return Machine(hostname=socket.gethostname(), boot_id=_read_text("/proc/sys/kernel/random/boot_id"),
                   machine_id=_read_text("/etc/machine-id"), pid_namespace=pid_namespace())


# --------------------------------------------------------------------------- the lock file


@dataclass(frozen=True)
class Lock:
    name: str
    run_id: str
    holder: Holder
    acquired_at: datetime
    expires_at: datetime
    # Whose lock this one replaced, and why (expired, stale): kept so the holder's report can say it.
    took_over: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": LOCK_FORMAT, "name": self.name, "run_id": self.run_id, "holder": asdict(self.holder),
                "acquired_at": _iso(self.acquired_at), "expires_at": _iso(self.expires_at),
                "took_over": self.took_over}

    @classmethod
    def from_json(cls, raw: Any) -> Lock:
        if not isinstance(raw, Mapping):
            raise ValueError("not a JSON object")
        return cls(name=str(raw["name"]), run_id=str(raw["run_id"]), holder=Holder.from_mapping(raw.get("holder")),
                   acquired_at=_parse_iso(raw["acquired_at"]), expires_at=_parse_iso(raw["expires_at"]),
                   took_over=raw.get("took_over") if isinstance(raw.get("took_over"), Mapping) else None)

    def describe(self) -> str:
        """The run that holds it, in the words of a refusal."""
        holder = self.holder
        return (f"Maintenance ID {holder.maintenance_id or '?'} (run {self.run_id}), started by {holder.who()} "
                f"from {holder.where()}, holding it since {_iso(self.acquired_at)}, "
                f"the lock expires {_iso(self.expires_at)}")

    def summary(self) -> dict[str, Any]:
        """What a record's before/after shows of a lock."""
        holder = self.holder
        return {"run_id": self.run_id, "maintenance_id": holder.maintenance_id, "user": holder.who(),
                "controller": holder.controller, "pid": holder.pid, "since": _iso(self.acquired_at),
                "expires": _iso(self.expires_at)}


@dataclass(frozen=True)
class Found:
    """What is at a lock's path: nothing, a lock, or a file that is no lock (``unreadable`` says why)."""

    lock: Lock | None = None
    unreadable: str = ""
    modified: datetime | None = None
    inode: tuple[int, int] | None = None
    content: bytes = b""

    @property
    def exists(self) -> bool:
        return self.inode is not None


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse_iso(text: Any) -> datetime:
    instant = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return instant.astimezone(UTC)


def validate_name(name: Any) -> str:
    text = "" if name is None else str(name)
    if not NAME_RE.fullmatch(text) or set(text) == {"."} or len(text) > NAME_MAX:
        raise LockError(msg=f"lock name {text!r} is not valid: use letters, digits, '_', '.' and '-' only "
                            f"(not only dots), at most {NAME_MAX} characters")
    return text


def lock_path(directory: str, name: str) -> str:
    return os.path.join(directory, f"{validate_name(name)}.lock")


def read_lock(path: str) -> Found:
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return Found()
    except OSError as exc:
        raise LockError(msg=f"cannot read the lock file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(descriptor)
        found = Found(modified=datetime.fromtimestamp(info.st_mtime, UTC), inode=(info.st_dev, info.st_ino))
        if not stat.S_ISREG(info.st_mode):
            return replace(found, unreadable="it is not a regular file")
        chunks = []
        while True:
            chunk = os.read(descriptor, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as exc:
        raise LockError(msg=f"cannot read the lock file {path}: {exc.strerror}") from None
    finally:
        os.close(descriptor)
    content = b"".join(chunks)
    found = replace(found, content=content)
    try:
        return replace(found, lock=Lock.from_json(json.loads(content.decode("utf-8"))))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, LockError) as exc:
        return replace(found, unreadable=f"it is not a lock this collection wrote ({exc})")


# --------------------------------------------------------------------------- the decision


@dataclass(frozen=True)
class Decision:
    verdict: str  # FREE, OWN, HELD, EXPIRED or STALE
    reason: str = ""


def stale_proof(holder: Holder, machine: Machine, probe: Callable[[int], ProcessState]) -> str:
    """Why the holder is provably gone ('' when it cannot be proven: then only its expiry frees the lock)."""
    if (holder.boot_id and machine.boot_id and holder.boot_id != machine.boot_id
            and holder.machine_id and holder.machine_id == machine.machine_id
            and holder.controller and holder.controller == machine.hostname):
        return (f"its controller {holder.controller} has rebooted since it took the lock "
                f"(boot id {holder.boot_id} then, {machine.boot_id} now)")
    # Only on the same running system and pid namespace does a pid mean the same process.
    if not (holder.pid and holder.boot_id and holder.boot_id == machine.boot_id
            and holder.pid_namespace and holder.pid_namespace == machine.pid_namespace):
        return ""
    state = probe(holder.pid)
    if not state.alive:
        return f"its ansible-playbook (pid {holder.pid} on {holder.controller or 'this machine'}) is gone"
    if holder.pid_start and state.start and state.start != holder.pid_start:
        return (f"pid {holder.pid} on {holder.controller or 'this machine'} is another process now (started at "
                f"tick {state.start}, the holder at tick {holder.pid_start})")
    return ""


def decide(found: Found, *, run_id: str, now: datetime, ttl: timedelta, machine: Machine,
           probe: Callable[[int], ProcessState]) -> Decision:
    """Free, this run's own, held by another run, or another run's that may be taken over (expired, stale)."""
    if not found.exists:
        return Decision(FREE)
    lock = found.lock
    if lock is None:
        # Not ours to judge by content: only its age (as a lock's TTL) may free it.
        modified = found.modified or now
        if modified + ttl <= now:
            return Decision(EXPIRED, f"the file is no lock ({found.unreadable}) and is older than the ttl "
                                     f"({_iso(modified)})")
        return Decision(HELD, f"the file is no lock ({found.unreadable}), written {_iso(modified)}")
    if lock.run_id == run_id:
        return Decision(OWN, "this run holds it already")
    if lock.expires_at <= now:
        return Decision(EXPIRED, f"it expired at {_iso(lock.expires_at)}")
    proof = stale_proof(lock.holder, machine, probe)
    if proof:
        return Decision(STALE, proof)
    return Decision(HELD, lock.describe())


# --------------------------------------------------------------------------- the directory


def ensure_directory(directory: str) -> None:
    """The lock directory, made 0750 when missing; an error naming the path when it cannot be."""
    if os.path.isdir(directory):
        return
    try:
        os.makedirs(directory, mode=0o750)
        os.chmod(directory, 0o750)  # makedirs' mode is filtered by the umask
    except FileExistsError:
        pass  # made meanwhile by another run starting at the same moment, or not a directory: judged below
    except OSError as exc:
        raise LockError(msg=f"cannot create the lock directory {directory}: {exc.strerror}") from None
    if not os.path.isdir(directory):
        raise LockError(msg=f"the lock directory {directory} exists and is not a directory")


@contextmanager
def directory_guard(directory: str, *, timeout: float = GUARD_TIMEOUT_S) -> Iterator[None]:
    """flock on the directory: one decision at a time; the kernel releases it when the process dies."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise LockError(msg=f"cannot open the lock directory {directory}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise LockError(msg=f"cannot guard the lock directory {directory}: {exc.strerror}") from None
                if time.monotonic() >= deadline:
                    raise LockError(msg=f"the lock directory {directory} stayed busy for {timeout:g}s "
                                        "(another process holds its guard)") from None
                time.sleep(0.02)
        yield
    finally:
        os.close(descriptor)  # closing drops the flock


def _remove_leftover_temps(directory: str) -> list[str]:
    """Temporary files of writers killed mid-write: under the guard no live writer has one."""
    removed = []
    for entry in os.listdir(directory):
        if entry.startswith(_TEMP_PREFIX) and entry.endswith(_TEMP_SUFFIX):
            try:
                os.unlink(os.path.join(directory, entry))
                removed.append(entry)
            except FileNotFoundError:
                pass
    return removed


def _write_temp(directory: str, lock: Lock) -> str:
    temp = os.path.join(directory, f"{_TEMP_PREFIX}{lock.name}-{os.getpid()}-{uuid.uuid4().hex[:12]}{_TEMP_SUFFIX}")
    data = (json.dumps(lock.to_json(), indent=2, sort_keys=True) + "\n").encode("utf-8")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view):]
        os.fsync(descriptor)
    except OSError:
        os.close(descriptor)
        os.unlink(temp)
        raise
    os.close(descriptor)
    return temp


def _fsync_directory(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def create_lock(directory: str, lock: Lock) -> bool:
    """Create the lock file atomically: False when a lock already exists (nothing is changed then)."""
    temp = _write_temp(directory, lock)
    try:
        os.link(temp, lock_path(directory, lock.name))
    except FileExistsError:
        return False
    finally:
        os.unlink(temp)
    _fsync_directory(directory)
    return True


def replace_lock(directory: str, lock: Lock, judged: Found) -> None:
    """Replace the judged (expired or stale) lock by ``lock``: a rename, so the estate is never unlocked."""
    path = lock_path(directory, lock.name)
    temp = _write_temp(directory, lock)
    try:
        current = read_lock(path)
        if current.inode != judged.inode or current.content != judged.content:
            raise LockChangedError(msg=f"the lock {path} changed while it was judged; nothing was taken over")
        os.rename(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    _fsync_directory(directory)


# --------------------------------------------------------------------------- acquire, release, status


@dataclass(frozen=True)
class Outcome:
    """What a call did (or, in check mode, would do): ``action`` and the lock before and after."""

    action: str  # acquired, reentered, took_over, released, absent, not_owned, status, would_*
    decision: Decision
    before: Lock | None = None
    after: Lock | None = None
    path: str = ""
    removed_temps: list[str] = field(default_factory=list)


def new_lock(name: str, run_id: str, holder: Holder, *, now: datetime, ttl: timedelta,
             previous: Found | None = None, reason: str = "") -> Lock:
    took_over = None
    if previous is not None and previous.exists:
        took_over = {"reason": reason, "lock": previous.lock.summary() if previous.lock else None}
    return Lock(name=name, run_id=run_id, holder=holder, acquired_at=now, expires_at=now + ttl, took_over=took_over)


def acquire(directory: str, name: str, *, run_id: str, holder: Holder, ttl: timedelta, now: datetime,
            machine: Machine | None = None, probe: Callable[[int], ProcessState] = probe_process,
            check_mode: bool = False) -> Outcome:
    """Take the lock of ``name`` for ``run_id``, or raise LockHeldError naming the run that holds it."""
    path = lock_path(directory, name)
    machine = machine or this_machine()
    if not run_id:
        raise LockError(msg="run_id is empty: a lock needs the id of the run that holds it")
    if check_mode:
        found = read_lock(path) if os.path.isdir(directory) else Found()
        decision = decide(found, run_id=run_id, now=now, ttl=ttl, machine=machine, probe=probe)
        return Outcome(f"would_{decision.verdict}", decision, before=found.lock, after=found.lock, path=path)
    ensure_directory(directory)
    try:
        return _acquire_guarded(directory, name, path, run_id=run_id, holder=holder, ttl=ttl, now=now,
                                machine=machine, probe=probe)
    except OSError as exc:  # a full disk or a read-only directory while writing: nothing was taken
        raise LockError(msg=f"cannot write the lock {path}: {exc.strerror or exc}; nothing was taken") from None


def _acquire_guarded(directory: str, name: str, path: str, *, run_id: str, holder: Holder, ttl: timedelta,
                     now: datetime, machine: Machine, probe: Callable[[int], ProcessState]) -> Outcome:
    with directory_guard(directory):
        removed = _remove_leftover_temps(directory)
        found = read_lock(path)
        decision = decide(found, run_id=run_id, now=now, ttl=ttl, machine=machine, probe=probe)
        if decision.verdict == OWN:
            return Outcome("reentered", decision, before=found.lock, after=found.lock, path=path,
                           removed_temps=removed)
        if decision.verdict == HELD:
            raise LockHeldError(msg=refusal_message(name, path, found, decision), lock=found.lock, path=path)
        lock = new_lock(name, run_id, holder, now=now, ttl=ttl, previous=found, reason=decision.reason)
        if decision.verdict == FREE:
            if not create_lock(directory, lock):  # a writer that ignored the guard: judge again next run
                raise LockChangedError(msg=f"the lock {path} appeared while it was being taken; nothing was taken")
            return Outcome("acquired", decision, after=lock, path=path, removed_temps=removed)
        replace_lock(directory, lock, found)
        return Outcome("took_over", decision, before=found.lock, after=lock, path=path, removed_temps=removed)


def release(directory: str, name: str, *, run_id: str, check_mode: bool = False) -> Outcome:
    """Remove the lock of ``name`` only when ``run_id`` holds it; another run's lock is left alone."""
    path = lock_path(directory, name)
    if not os.path.isdir(directory):
        return Outcome("absent", Decision(FREE), path=path)
    if check_mode:
        found = read_lock(path)
        return _release_outcome(found, run_id, path, remove=None)
    try:
        with directory_guard(directory):
            found = read_lock(path)
            return _release_outcome(found, run_id, path,
                                    remove=lambda: (os.unlink(path), _fsync_directory(directory)))
    except OSError as exc:
        raise LockError(msg=f"cannot release the lock {path}: {exc.strerror or exc}") from None


def _release_outcome(found: Found, run_id: str, path: str, *, remove: Callable[[], Any] | None) -> Outcome:
    if not found.exists:
        return Outcome("absent", Decision(FREE), path=path)
    if found.lock is None or found.lock.run_id != run_id:
        reason = found.lock.describe() if found.lock else f"the file is no lock ({found.unreadable})"
        return Outcome("not_owned", Decision(HELD, reason), before=found.lock, after=found.lock, path=path)
    if remove is None:
        return Outcome("would_release", Decision(OWN), before=found.lock, path=path)
    remove()
    return Outcome("released", Decision(OWN), before=found.lock, path=path)


def status(directory: str, name: str, *, run_id: str, ttl: timedelta, now: datetime,
           machine: Machine | None = None, probe: Callable[[int], ProcessState] = probe_process) -> Outcome:
    path = lock_path(directory, name)
    found = read_lock(path) if os.path.isdir(directory) else Found()
    decision = decide(found, run_id=run_id or "", now=now, ttl=ttl, machine=machine or this_machine(), probe=probe)
    return Outcome("status", decision, before=found.lock, after=found.lock, path=path)


def refusal_message(name: str, path: str, found: Found, decision: Decision) -> str:
    holder = f"another run holds it: {decision.reason}" if found.lock is not None else decision.reason
    return (f"estate {name!r} is locked, {holder}. This run did nothing and stops here. A run that is gone loses the "
            f"lock when it expires (or at once when it ran on this machine); to clear it sooner, remove {path} by hand "
            "once sure no run holds it")


# --------------------------------------------------------------------------- the module's work


def argument_spec() -> dict[str, Any]:
    return dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="acquired", choices=["acquired", "released", "status"]),
        run_id=dict(type="str"),
        holder=dict(type="dict", default={}, options=dict(
            maintenance_id=dict(type="str", default=""),
            user=dict(type="str", default=""),
            controller=dict(type="str", default=""),
            pid=dict(type="int"),
            pid_start=dict(type="str", default=""),
            boot_id=dict(type="str", default=""),
            pid_namespace=dict(type="str", default=""),
            machine_id=dict(type="str", default=""),
            awx_job_id=dict(type="str", default=""),
            awx_user=dict(type="str", default=""),
        )),
        path=dict(type="path", default=DEFAULT_DIRECTORY),
        ttl=dict(type="str", default=DEFAULT_TTL),
    )


def run_maintenance_lock(params: Mapping[str, Any], *, check_mode: bool = False, diff_mode: bool = False,
                         now: datetime | None = None) -> dict[str, Any]:
    name = validate_name(params["name"])
    state = params.get("state") or "acquired"
    run_id = str(params.get("run_id") or "")
    directory = str(params.get("path") or DEFAULT_DIRECTORY)
    ttl = parse_duration(params.get("ttl") or DEFAULT_TTL, field_name="ttl")
    now = now or datetime.now(UTC)
    label = f"run lock {name}"
    if state in ("acquired", "released") and not run_id:
        raise LockError(msg=f"run_id is required with state={state}")
    started = time.monotonic()
    if state == "acquired":
        holder = Holder.from_mapping(params.get("holder"))
        try:
            outcome = acquire(directory, name, run_id=run_id, holder=holder, ttl=ttl, now=now,
                              check_mode=check_mode)
        except LockHeldError as exc:
            lock = exc.details.get("lock")
            record = make_record(label, "acquire", "failed", exc.msg,
                                 before=lock.summary() if lock else None, seconds=time.monotonic() - started)
            raise LockHeldError(msg=exc.msg, records=[record], held=False, path=exc.details.get("path"),
                                lock=lock.to_json() if lock else None) from None
        record, msg = _acquire_record(label, name, outcome)
    elif state == "released":
        outcome = release(directory, name, run_id=run_id, check_mode=check_mode)
        record, msg = _release_record(label, name, outcome)
    else:
        outcome = status(directory, name, run_id=run_id, ttl=ttl, now=now)
        record, msg = _status_record(label, name, outcome)
    record["seconds"] = round(time.monotonic() - started, 3)
    held_by_this_run = outcome.action in ("acquired", "reentered", "took_over")
    current = outcome.after if state != "released" else (outcome.before if outcome.action == "not_owned" else None)
    result: dict[str, Any] = {
        "changed": record["status"] in ("done", "planned"),
        "msg": msg,
        "records": [record],
        "held": held_by_this_run,
        "verdict": outcome.decision.verdict,
        "path": outcome.path,
        "lock": current.to_json() if current else None,
    }
    if diff_mode:
        result["diff"] = {"before": outcome.before.to_json() if outcome.before else {},
                          "after": current.to_json() if current else {}}
    return result


def _summary(lock: Lock | None) -> dict[str, Any] | None:
    return lock.summary() if lock else None


def _acquire_record(label: str, name: str, outcome: Outcome) -> tuple[dict[str, Any], str]:
    reason = outcome.decision.reason
    before, after = _summary(outcome.before), _summary(outcome.after)
    if outcome.action == "acquired":
        detail = f"took the lock of estate {name!r} until {_iso(outcome.after.expires_at)} ({outcome.path})"
        return make_record(label, "acquire", "done", detail, after=after), detail
    if outcome.action == "reentered":
        detail = f"this run holds the lock of estate {name!r} already (until {_iso(outcome.after.expires_at)})"
        return make_record(label, "acquire", "unchanged", detail, after=after), detail
    if outcome.action == "took_over":
        detail = (f"took over the lock of estate {name!r} from {_previous(outcome)}: {reason}; "
                  f"held until {_iso(outcome.after.expires_at)}")
        return make_record(label, "acquire", "done", detail, before=before, after=after), detail
    # check mode: no lock is taken; another run's lock is reported, and is not clean
    verdict = outcome.decision.verdict
    if verdict == FREE:
        detail = f"check mode: would take the lock of estate {name!r} ({outcome.path})"
        return make_record(label, "acquire", "planned", detail), detail
    if verdict == OWN:
        detail = f"check mode: this run holds the lock of estate {name!r} already"
        return make_record(label, "acquire", "unchanged", detail, before=before, after=before), detail
    if verdict in (EXPIRED, STALE):
        detail = f"check mode: would take over the lock of estate {name!r} from {_previous(outcome)}: {reason}"
        return make_record(label, "acquire", "planned", detail, before=before), detail
    detail = (f"check mode: estate {name!r} is locked by another run, a real run now would be refused: {reason}")
    return make_record(label, "acquire", "unknown", detail, before=before, after=before), detail


def _previous(outcome: Outcome) -> str:
    lock = outcome.before
    if lock is None:
        return "a file that is no lock"
    return (f"Maintenance ID {lock.holder.maintenance_id or '?'} (run {lock.run_id}, {lock.holder.who()} from "
            f"{lock.holder.where()}, since {_iso(lock.acquired_at)})")


def _release_record(label: str, name: str, outcome: Outcome) -> tuple[dict[str, Any], str]:
    before = _summary(outcome.before)
    if outcome.action == "released":
        detail = f"released the lock of estate {name!r}"
        return make_record(label, "release", "done", detail, before=before), detail
    if outcome.action == "would_release":
        detail = f"check mode: would release the lock of estate {name!r}"
        return make_record(label, "release", "planned", detail, before=before), detail
    if outcome.action == "absent":
        detail = f"no lock of estate {name!r} to release"
        return make_record(label, "release", "unchanged", detail), detail
    # Another run's lock: this run's expired and was taken over, or it never held one. Left alone, and flagged.
    detail = (f"left the lock of estate {name!r} alone: it is not this run's ({outcome.decision.reason}); "
              "if this run held it, another run took it over while this one was still working")
    return make_record(label, "release", "breach", detail, before=before, after=before), detail


def _status_record(label: str, name: str, outcome: Outcome) -> tuple[dict[str, Any], str]:
    before = _summary(outcome.before)
    texts = {
        FREE: f"estate {name!r} is not locked",
        OWN: f"this run holds the lock of estate {name!r}",
        HELD: f"estate {name!r} is locked by another run: {outcome.decision.reason}",
        EXPIRED: f"estate {name!r} has a lock that the next run takes over: {outcome.decision.reason}",
        STALE: f"estate {name!r} has a lock that the next run takes over: {outcome.decision.reason}",
    }
    detail = texts[outcome.decision.verdict]
    return make_record(label, "status", "ok", detail, before=before, after=before), detail
