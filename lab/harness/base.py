"""Process, port and readiness helpers shared by every lab service."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
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


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


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
