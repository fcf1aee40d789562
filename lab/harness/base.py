"""Process, port and readiness helpers shared by every lab service."""
from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"


class HarnessError(RuntimeError):
    """A lab service could not be started, reached or stopped."""


def cache_dir(kind: str, env_var: str) -> Path:
    """``$<env_var>``, else ``$XDG_CACHE_HOME`` (or ~/.cache) + streamops-maintenance/<kind>: what runs keep."""
    explicit = os.environ.get(env_var)
    if explicit:
        return Path(explicit).expanduser().resolve()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (base / "streamops-maintenance" / kind).resolve()


@contextmanager
def exclusive(path: Path, progress: Callable[[str], None], what: str) -> Iterator[None]:
    """An advisory lock on ``path``: two processes never build the same thing at once (the second waits, and says so)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"another process is {what} ({path}); waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def wait_reporting(proc: subprocess.Popen, progress: Callable[[str], None], describe: Callable[[float], str], *,
                   every: float = 30, poll: float = 0.5) -> None:
    """Wait for a long build step, saying ``describe(seconds so far)`` every ``every`` seconds; an interrupted
    wait (Ctrl-C, a test timeout) kills the step rather than leaving it running."""
    started = last_report = time.monotonic()
    try:
        while proc.poll() is None:
            time.sleep(poll)
            if time.monotonic() - last_report >= every:
                last_report = time.monotonic()
                progress(describe(last_report - started))
    except BaseException:
        proc.kill()
        proc.wait()
        raise


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# One file for every harness process on the machine: a port is theirs while they hold a one-byte lock at
# its offset. POSIX record locks go with the process, so a killed run releases its ports by itself.
PORT_CLAIMS = Path(tempfile.gettempdir()) / "streamops-harness-ports.lock"
HARNESS_PORTS = 12000


class _PortClaims:
    """The ports this process handed out, locked in PORT_CLAIMS; the file stays open for the process's life
    (closing any descriptor of it would drop every lock)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.handle: int | None = None
        self.ports: set[int] = set()
        self.cursor: int | None = None

    def claim(self, port: int) -> bool:
        if self.pid != os.getpid():
            # A forked child holds none of its parent's locks: it claims its own, in a file of its own opening.
            self.pid, self.handle, self.ports = os.getpid(), None, set()
        if self.handle is None:
            self.handle = os.open(PORT_CLAIMS, os.O_RDWR | os.O_CREAT, 0o666)
        if port in self.ports:
            return False
        try:
            fcntl.lockf(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
        except OSError:  # another harness process has it
            return False
        self.ports.add(port)
        return True

    def release(self, port: int) -> None:
        self.ports.discard(port)
        fcntl.lockf(self.handle, fcntl.LOCK_UN, 1, port)


_CLAIMS = _PortClaims()


def harness_port_range() -> range | None:
    """The ports free_port hands out: just below the kernel's ephemeral range (else just above it), or None
    when that range leaves no room.

    Every bind to port 0 and every outgoing connection on the machine takes its port from the ephemeral
    range. A port the harness picks there can be taken by one of them before its server (a pod on the host
    network, a server another process starts) binds it. A pod whose port is taken exits and crash-loops: CI
    saw a pod on the host network crash-loop while the other lane ran (its logs were gone, so the taken
    port is the likely cause, not a proven one). Outside that range only the harness hands ports out, and
    PORT_CLAIMS keeps its processes from handing out the same one.
    """
    try:
        low, high = (int(value) for value in EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    if low - HARNESS_PORTS >= 1024:
        return range(low - HARNESS_PORTS, low)
    if high + HARNESS_PORTS <= 65535:
        return range(high + 1, high + 1 + HARNESS_PORTS)
    return None


def _bindable(port: int) -> bool:
    # Without SO_REUSEADDR: a port some connection still holds (TIME_WAIT included) is skipped too.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now, that no other harness process was
    given, and that the kernel gives to no one else (see harness_port_range): safe to bind seconds later,
    from another process or a pod on the host network."""
    span = harness_port_range()
    if span is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            return sock.getsockname()[1]
    if _CLAIMS.cursor is None:
        # Each process starts somewhere else, and walks on, so a port is not handed out twice by one
        # process (a pod of an earlier test may still be starting or stopping on it).
        _CLAIMS.cursor = random.randrange(len(span))
    for _attempt in range(len(span)):
        port = span[_CLAIMS.cursor % len(span)]
        _CLAIMS.cursor += 1
        if not _CLAIMS.claim(port):
            continue
        if _bindable(port):
            return port
        _CLAIMS.release(port)
    raise HarnessError(f"no free port on {LOOPBACK} in {span.start}-{span.stop - 1}: every one is in use or claimed "
                       f"by another harness process ({PORT_CLAIMS})")


def port_open(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for(check: Callable[[], bool], *, timeout: float, what: str,
             log: Path | None = None, interval: float = 0.05) -> None:
    """Poll ``check`` until it is true; on timeout raise with the tail of ``log``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise HarnessError(f"{what} not ready after {timeout:.0f}s{log_tail(log)}")


def log_tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- last lines of {} ---\n{}".format(log, "\n".join(tail))


def children_by_parent() -> dict[int, list[int]]:
    """Every process's children, from /proc (a process may vanish while it is read)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); it is gone for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def stop_pid(pid: int, *, timeout: float = 15.0, sig: int = signal.SIGTERM) -> bool:
    """Stop a process we started: ``sig`` first, SIGKILL after ``timeout``.

    Returns True when the process is gone. Reaps it when it is our child.
    """
    # A child that already exited is a zombie until reaped: pid_alive() calls
    # it gone, but it would linger in `ps` until this process exits.
    _reap(pid)
    if not pid_alive(pid):
        return True
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    for _attempt in range(100):
        _reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def spawn(argv: Sequence[str], *, log: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    """Start a long-running server in its own session, output to ``log``.

    Its own session keeps a Ctrl-C on ``make demo`` from killing the lab half-way;
    ``make lab-down`` stops it by PID instead.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(  # noqa: S603 - argv list, no shell
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True,
        )


def wait_started(proc: subprocess.Popen, ready: Callable[[], bool], *, name: str, what: str, timeout: float,
                 log: Path) -> None:
    """Return once ``ready()``; HarnessError with the tail of ``log`` when ``proc`` exited first or never got ready."""
    wait_for(lambda: proc.poll() is not None or ready(), timeout=timeout, what=what, log=log)
    if proc.poll() is not None:
        raise HarnessError(f"{name} exited with {proc.returncode}{log_tail(log)}")


def stop_started(proc: subprocess.Popen, *, name: str, timeout: float, log: Path) -> None:
    """SIGTERM, SIGKILL after ``timeout``; HarnessError with the tail of ``log`` when it outlived both."""
    pid = proc.pid
    if not stop_pid(pid, timeout=timeout) or pid_alive(pid):
        raise HarnessError(f"{name} (pid {pid}) outlived SIGTERM and SIGKILL{log_tail(log)}")


@dataclass
class ServiceRecord:
    """What ``lab down`` needs to stop a service started by an earlier process."""

    name: str
    pid: int | None = None
    info: dict = field(default_factory=dict)

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / f"{self.name}.json"
        path.write_text(json.dumps({"name": self.name, "pid": self.pid, "info": self.info}, indent=2))

    @classmethod
    def load(cls, state_dir: Path, name: str) -> ServiceRecord | None:
        path = state_dir / f"{name}.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(name=data["name"], pid=data.get("pid"), info=data.get("info", {}))

    @staticmethod
    def forget(state_dir: Path, name: str) -> None:
        (state_dir / f"{name}.json").unlink(missing_ok=True)
