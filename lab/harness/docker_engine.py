"""A Docker engine on this machine for tests and the lab, plus a tiny local base image.

``DockerEngine.ensure()`` uses an engine that already answers on the socket
(then it is not ours and we never stop it); otherwise it starts Debian's
``dockerd`` with no bridge, no iptables and no masquerading, so the engine
cannot put anything on a network: containers run with host networking and
bind 127.0.0.1 themselves. ``stop()`` stops only a dockerd we started, by PID,
and everything it spawned (containerd, shims, container processes), and
unmounts what libnetwork leaves in the exec-root.

No registry can be reached, so ``base_image()`` makes ``streamops-lab/busybox``
by importing a rootfs tar built here from the static busybox binary.
"""
from __future__ import annotations

import ctypes
import fcntl
import hashlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Literal

import docker
import docker.errors

from .base import LOOPBACK, HarnessError, ServiceRecord, children_by_parent, log_tail, pid_alive, spawn, stop_pid

DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_DATA_ROOT = Path("/var/lib/docker")
RECORD_NAME = "dockerd"
BASE_IMAGE_REPO = "streamops-lab/busybox"
LAB_LABEL = "org.streamops.lab"

# Binaries the engine needs, and the Debian package that ships each one.
ENGINE_BINARIES: dict[str, str] = {
    "dockerd": "docker.io",
    "containerd": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "runc": "runc",
}
# dockerd finds containerd, runc and the shims on PATH; a login PATH for a
# non-root user may lack the sbin directories.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

# Applets linked into the base image. Bump IMAGE_LAYOUT when the layout
# changes: it is part of the tag, so a stale cached image is never reused.
IMAGE_LAYOUT = "1"
APPLETS: tuple[str, ...] = tuple("""
    sh ash cat echo printf sleep usleep date env true false test [ [[
    ls mkdir rm rmdir cp mv ln touch chmod chown stat readlink realpath mktemp
    basename dirname head tail grep egrep fgrep sed awk cut tr sort uniq wc tee
    find xargs seq expr yes timeout watch sync nproc
    ps kill pidof top free df du id whoami hostname uname logger
    httpd wget nc nslookup ping
    gzip gunzip zcat tar md5sum sha256sum base64 vi less
""".split())

# Names of processes dockerd spawns; used to find leftovers of *our* engine,
# always together with our exec-root path (never by name alone).
_ENGINE_PROCESS_NAMES = frozenset({
    "dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v1",
    "containerd-shim-runc-v2",
})
_MNT_DETACH = 2
# sun_path is 108 bytes; containerd puts "containerd/containerd.sock.ttrpc"
# (and runc its state) under the exec-root.
_MAX_EXEC_ROOT = 70
# One advisory lock for engine starts and image imports across harness
# processes (xdist workers, lab + tests): both are short, and one fixed file
# does not pile up in /run/lock the way per-engine files would.
HARNESS_LOCK = (Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")) / "streamops-docker-harness.lock"


def find_binary(name: str, package: str) -> str:
    """Path of ``name``, or HarnessError naming the apt package that ships it.

    Debian's directories first: the harness is written against the packaged
    versions (dockerd 20.10's flags, docker-compose 1.29), and /usr/local/bin
    on this machine holds an unrelated newer docker client.
    """
    path = shutil.which(name, path=DEBIAN_PATH + os.pathsep + os.environ.get("PATH", ""))
    if path is None:
        raise HarnessError(f"`{name}` not found: install the Debian package `{package}` "
                           f"(apt-get install {package})")
    return path


def docker_cli() -> str:
    """Debian's docker client (/usr/bin/docker), not the newer one earlier on PATH."""
    return find_binary("docker", "docker.io")


def ping(host: str, timeout: float = 2.0) -> bool:
    """True when a Docker engine answers ``GET /_ping`` on ``host``.

    Raw HTTP rather than the SDK: it is polled while dockerd starts and must be
    cheap, silent and free of API-version negotiation.
    """
    try:
        sock = _connect(host, timeout)
    except OSError:
        return False
    try:
        sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    except OSError:
        return False
    finally:
        sock.close()
    head, _sep, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"] and body.strip() == b"OK"


def _connect(host: str, timeout: float) -> socket.socket:
    if host.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: str | tuple[str, int] = host[len("unix://"):]
    else:
        hostname, port = _tcp_address(host)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = (hostname, port)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


def _tcp_address(host: str) -> tuple[str, int]:
    match = re.fullmatch(r"tcp://([^:/]+):(\d+)/?", host)
    # The network rule: an engine is only ever reached over loopback.
    if match is None or match.group(1) != LOOPBACK:
        raise HarnessError(f"Docker host {host!r}: only unix:// sockets and tcp://{LOOPBACK}:PORT are allowed")
    return match.group(1), int(match.group(2))


class DockerEngine:
    """The Docker engine tests and the lab use; started here only when none answers.

    ``state_dir`` holds dockerd's log, pidfile, exec-root and the ServiceRecord
    that lets another process (``lab down``) stop an engine this one started.
    ``data_root`` defaults to /var/lib/docker so images stay cached between runs;
    pass a private ``host`` and ``data_root`` together for an isolated engine
    (two engines must never share a data-root).
    """

    def __init__(self, state_dir: Path, *, host: str = DEFAULT_HOST,
                 data_root: Path = DEFAULT_DATA_ROOT, start_timeout: float = 60.0,
                 shutdown_timeout: int = 10) -> None:
        if not host.startswith("unix://"):
            _tcp_address(host)
        self.state_dir = Path(state_dir).resolve()
        self.host = host
        self.data_root = Path(data_root)
        self.start_timeout = start_timeout
        self.shutdown_timeout = shutdown_timeout
        self.log = self.state_dir / "dockerd.log"
        self.pidfile = self.state_dir / "dockerd.pid"
        self.exec_root = self._exec_root_for(self.state_dir)
        self.owned = False
        self.pid: int | None = None
        self.start_seconds: float | None = None
        self.image_build_seconds: float | None = None
        self._client: docker.DockerClient | None = None
        self._data_root_was_mountpoint: bool | None = None

    # -- lifecycle ---------------------------------------------------------

    def ensure(self) -> DockerEngine:
        """Make sure an engine answers on ``host``; start ours if none does."""
        if self._adopt_recorded():
            return self
        if ping(self.host):
            self.owned = False
            return self
        argv = self._dockerd_argv()
        with _file_lock(HARNESS_LOCK):
            # Another harness process may have started one while we waited.
            if ping(self.host):
                self.owned = False
                return self
            if self._another_engine_came_up():
                self.owned = False
                return self
            # A run of ours that was killed may have left containerd, shims,
            # containers or mounts behind: clear them first.
            self._clean_up_after_dockerd(ServiceRecord.load(self.state_dir, RECORD_NAME))
            ServiceRecord.forget(self.state_dir, RECORD_NAME)
            self._start(argv)
        return self

    def _start(self, argv: list[str]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        # A pidfile left by a killed run would make dockerd refuse to start
        # if its PID has been reused; nothing else writes this path.
        self.pidfile.unlink(missing_ok=True)
        env = dict(os.environ)
        env["PATH"] = SYSTEM_PATH
        # dockerd bind-mounts its data-root onto itself; whether it was a
        # mount point before tells a later cleanup whether that mount is ours.
        self._data_root_was_mountpoint = os.path.ismount(self.data_root)
        started = time.monotonic()
        proc = spawn(argv, log=self.log, env=env)
        self.pid = proc.pid
        self.owned = True
        # Record before waiting: if the wait fails, ``lab down`` can still stop it.
        self._record()
        deadline = started + self.start_timeout
        while not ping(self.host):
            if proc.poll() is not None:
                self._clean_up_after_dockerd(ServiceRecord.load(self.state_dir, RECORD_NAME))
                ServiceRecord.forget(self.state_dir, RECORD_NAME)
                self.owned, self.pid = False, None
                raise HarnessError(f"dockerd exited with status {proc.returncode} during start"
                                   f"{log_tail(self.log, 25)}")
            if time.monotonic() > deadline:
                self.stop()
                raise HarnessError(f"dockerd did not answer on {self.host} within "
                                   f"{self.start_timeout:.0f}s{log_tail(self.log, 25)}")
            time.sleep(0.05)
        self.start_seconds = time.monotonic() - started
        self._record()

    def _dockerd_argv(self) -> list[str]:
        for name, package in ENGINE_BINARIES.items():
            find_binary(name, package)
        argv = [
            find_binary("dockerd", "docker.io"),
            # The network rule: no docker0 bridge, no iptables/NAT rules on the
            # host, nothing masqueraded; containers use host networking.
            "--bridge=none", "--iptables=false", "--ip-masq=false",
            # Should anyone publish a port anyway, bind it to loopback, and
            # without docker-proxy listeners.
            f"--ip={LOOPBACK}", "--userland-proxy=false",
            f"--host={self.host}",
            f"--data-root={self.data_root}",
            # Own pidfile and exec-root (containerd sockets, runc state, netns
            # mounts) so a stale /var/run/docker* from another run cannot
            # block the start, and our leftovers are findable by path.
            f"--pidfile={self.pidfile}",
            f"--exec-root={self.exec_root}",
            f"--shutdown-timeout={self.shutdown_timeout}",
            # Not --oom-score-adjust: Debian's 20.10 build defaults to 0, so
            # nothing tries the negative oom_score_adj this sandbox forbids.
        ]
        # Debian ships no `docker-init`; tini-static (a docker.io dependency)
        # makes `docker run --init` / compose `init: true` work.
        if os.access("/usr/bin/tini-static", os.X_OK):
            argv.append("--init-path=/usr/bin/tini-static")
        return argv

    def _another_engine_came_up(self) -> bool:
        """Never start a second dockerd on a data-root or socket a live one uses.

        True when such a dockerd turned out to be starting and now answers on
        ``host`` (then it is not ours); HarnessError when it stays silent.
        """
        for pid, argv in _engine_processes():
            if Path(argv[0]).name != "dockerd":
                continue
            data_root = _dockerd_data_root(argv)
            hosts = _options(argv, "--host", "-H") or [DEFAULT_HOST]
            if data_root != self.data_root and self.host not in hosts:
                continue
            # It may just be starting: give it a moment to answer.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and pid_alive(pid):
                if ping(self.host):
                    return True
                time.sleep(0.2)
            if pid_alive(pid):
                raise HarnessError(
                    f"a dockerd (pid {pid}: {' '.join(argv)}) uses data-root {data_root} / {hosts} "
                    f"but does not answer on {self.host}; refusing to start a second engine "
                    "on the same data-root or socket")
        return False

    def _adopt_recorded(self) -> bool:
        """Take back an engine this state dir's record says we started (``make demo`` → ``lab down``)."""
        record = ServiceRecord.load(self.state_dir, RECORD_NAME)
        if record is None or record.pid is None or not pid_alive(record.pid):
            return False
        argv = _cmdline(record.pid)
        if not argv or Path(argv[0]).name != "dockerd" or f"--exec-root={self.exec_root}" not in argv:
            return False
        if not ping(self.host):
            return False
        self.pid = record.pid
        self.owned = True
        return True

    def stop(self) -> None:
        """Stop the dockerd we started and everything it spawned; leave an engine that is not ours."""
        self._close_client()
        record = ServiceRecord.load(self.state_dir, RECORD_NAME)
        if not self.owned and record is None:
            return
        pid = self.pid if self.owned and self.pid is not None else (record.pid if record else None)
        if pid is not None and pid_alive(pid) and Path((_cmdline(pid) or [""])[0]).name == "dockerd":
            # SIGTERM: dockerd stops its containers (shutdown-timeout), then
            # containerd, and undoes its mounts.
            if not stop_pid(pid, timeout=self.shutdown_timeout + 30):
                raise HarnessError(f"dockerd (pid {pid}) survived SIGKILL")
        self._clean_up_after_dockerd(record)
        remaining = self.leftover_pids()
        if remaining:
            raise HarnessError(f"processes of our Docker engine survived stop(): {remaining}")
        ServiceRecord.forget(self.state_dir, RECORD_NAME)
        self.pidfile.unlink(missing_ok=True)
        self.owned = False
        self.pid = None

    def leftover_pids(self) -> list[int]:
        """PIDs of dockerd/containerd/shims/containers of *our* engine still alive (for checks)."""
        containers, engine = self._leftovers()
        return containers + engine

    def _leftovers(self) -> tuple[list[int], list[int]]:
        """(container processes, engine processes) that carry our exec-root, in stopping order."""
        marker = str(self.exec_root)
        dockerds: list[int] = []
        containerds: list[int] = []
        shims: list[int] = []
        for pid, argv in _engine_processes():
            if not any(marker in arg for arg in argv):
                continue
            name = Path(argv[0]).name
            (dockerds if name == "dockerd" else shims if "shim" in name else containerds).append(pid)
        containers = [p for shim in shims for p in _descendants(shim)]
        # Containers (children first), their shims, containerd, dockerd.
        return containers[::-1], shims + containerds + dockerds

    def _clean_up_after_dockerd(self, record: ServiceRecord | None) -> None:
        """Once our dockerd is gone: after a clean exit a no-op; after a crash or
        SIGKILL, containerd, shims, containers and mounts are left behind."""
        containers, engine = self._leftovers()
        for pid in containers:
            # A container of a dead engine gets no graceful stop, and as PID 1
            # it would ignore SIGTERM anyway.
            stop_pid(pid, timeout=5, sig=signal.SIGKILL)
        for pid in engine:
            stop_pid(pid, timeout=5)
        # libnetwork bind-mounts the host netns at <exec-root>/netns/default
        # and leaves it mounted even after a clean exit.
        for mountpoint in _mounts_under(self.exec_root):
            _umount(mountpoint)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        if self.exec_root.parent.name == "streamops-dockerd":
            with _suppress_oserror():
                self.exec_root.parent.rmdir()
        if record is None or record.info.get("data_root_was_mountpoint") is not False:
            return
        data_root = Path(record.info.get("data_root", str(self.data_root)))
        if any(_dockerd_data_root(argv) == data_root for _pid, argv in _engine_processes()
               if Path(argv[0]).name == "dockerd"):
            # Another engine uses that data-root now: its mounts are not ours.
            return
        # A killed dockerd leaves its data-root self-bind (undone only on a
        # clean shutdown) and the layer/shm mounts of running containers.
        for mountpoint in _mounts_under(data_root):
            _umount(mountpoint)

    def _record(self) -> None:
        ServiceRecord(RECORD_NAME, self.pid, {
            "host": self.host, "data_root": str(self.data_root), "exec_root": str(self.exec_root),
            "pidfile": str(self.pidfile), "log": str(self.log), "start_seconds": self.start_seconds,
            "data_root_was_mountpoint": self._data_root_was_mountpoint,
        }).save(self.state_dir)

    @staticmethod
    def _exec_root_for(state_dir: Path) -> Path:
        candidate = state_dir / "exec"
        if len(str(candidate)) <= _MAX_EXEC_ROOT:
            return candidate
        digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]
        return Path("/run/streamops-dockerd") / digest

    # -- clients -----------------------------------------------------------

    def docker_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for docker/docker-compose/Ansible subprocesses: talk to this engine only."""
        env = dict(os.environ if base is None else base)
        # A context, TLS settings or a pinned API version from the caller's
        # shell would point clients elsewhere or break negotiation.
        for var in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"):
            env.pop(var, None)
        env["DOCKER_HOST"] = self.host
        return env

    def client(self) -> docker.DockerClient:
        """A Docker SDK client for this engine (cached)."""
        if self._client is None:
            if not ping(self.host):
                raise HarnessError(f"no Docker engine answers on {self.host}; call ensure() first")
            self._client = docker.DockerClient(base_url=self.host, version="auto", timeout=300)
        return self._client

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- images ------------------------------------------------------------

    def base_image(self) -> str:
        """``streamops-lab/busybox:<busybox version>-<digest>``, imported once and then reused."""
        busybox = find_binary("busybox", "busybox-static")
        binary = Path(busybox).read_bytes()
        if _elf_interpreter(binary):
            # Debian's `busybox` (not -static) is dynamic: it cannot run in an
            # image that has no libc.
            raise HarnessError(f"{busybox} is dynamically linked; install the Debian package "
                               "`busybox-static` (apt-get install busybox-static)")
        version = _busybox_version(busybox)
        available = set(_run([busybox, "--list"]).split())
        applets = [name for name in APPLETS if name in available]
        digest = hashlib.sha256(binary + IMAGE_LAYOUT.encode() + " ".join(applets).encode()).hexdigest()
        tag = f"{version}-{digest[:12]}"
        ref = f"{BASE_IMAGE_REPO}:{tag}"
        client = self.client()
        if _image_exists(client, ref):
            return ref
        with _file_lock(HARNESS_LOCK):
            if _image_exists(client, ref):
                return ref
            started = time.monotonic()
            rootfs = build_rootfs_tar(binary, applets)
            changes = [
                f"ENV PATH={SYSTEM_PATH}",
                'CMD ["/bin/sh"]',
                f"LABEL {LAB_LABEL}.image=busybox",
                f"LABEL {LAB_LABEL}.busybox={version}",
            ]
            # import_image_from_data, never import_image(src=str): the latter
            # treats an unreadable path as a URL for the engine to fetch.
            output = client.api.import_image_from_data(rootfs, repository=BASE_IMAGE_REPO, tag=tag,
                                                       changes=changes)
            if "errorDetail" in str(output) or not _image_exists(client, ref):
                raise HarnessError(f"docker import of {ref} failed: {output}")
            self.image_build_seconds = time.monotonic() - started
        return ref

    # -- context manager ---------------------------------------------------

    def __enter__(self) -> DockerEngine:
        return self.ensure()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DockerEngine(host={self.host!r}, owned={self.owned}, pid={self.pid})"


def build_rootfs_tar(busybox: bytes, applets: list[str]) -> bytes:
    """A minimal root filesystem as an uncompressed tar: busybox, applet links, /etc, /tmp.

    Fixed mtimes and owners so the same inputs give the same bytes.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes, mode: int, data: bytes = b"", target: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.linkname = target
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        for directory in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "var",
                          "var/log", "var/run", "www", "proc", "sys", "dev", "run"):
            add(directory, tarfile.DIRTYPE, 0o700 if directory == "root" else 0o755)
        # Sticky, world-writable: what programs expect of /tmp.
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add("var/tmp", tarfile.DIRTYPE, 0o1777)
        add("bin/busybox", tarfile.REGTYPE, 0o755, busybox)
        for applet in applets:
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, target="busybox")
        # `#!/usr/bin/env sh` scripts.
        add("usr/bin/env", tarfile.SYMTYPE, 0o777, target="/bin/busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\nnogroup:x:65534:\n")
        add("etc/shadow", tarfile.REGTYPE, 0o600, b"root:*:0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n")
    return buffer.getvalue()


# -- helpers ----------------------------------------------------------------

def _busybox_version(busybox: str) -> str:
    match = re.search(r"BusyBox v(\d[\w.]*)", _run([busybox, "--help"]))
    if match is None:
        raise HarnessError(f"cannot read the BusyBox version from `{busybox} --help`")
    return match.group(1)


def _run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    return result.stdout + result.stderr


def _elf_interpreter(binary: bytes) -> bool:
    """True when the ELF64 binary has a PT_INTERP header, i.e. needs a dynamic loader."""
    if binary[:4] != b"\x7fELF" or binary[4] != 2:
        raise HarnessError("busybox is not an ELF64 binary")
    order: Literal["little", "big"] = "little" if binary[5] == 1 else "big"
    phoff = int.from_bytes(binary[0x20:0x28], order)
    phentsize = int.from_bytes(binary[0x36:0x38], order)
    phnum = int.from_bytes(binary[0x38:0x3A], order)
    for index in range(phnum):
        offset = phoff + index * phentsize
        if int.from_bytes(binary[offset:offset + 4], order) == 3:  # PT_INTERP
            return True
    return False


def _image_exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _engine_processes() -> Iterator[tuple[int, list[str]]]:
    """(pid, argv) of every live dockerd/containerd/shim on the machine."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        argv = _cmdline(pid)
        if argv and Path(argv[0]).name in _ENGINE_PROCESS_NAMES and pid_alive(pid):
            yield pid, argv


def _descendants(root: int) -> list[int]:
    """All live descendants of ``root``, parents before children."""
    children = children_by_parent()
    found: list[int] = []
    queue = list(children.get(root, []))
    while queue:
        pid = queue.pop(0)
        if pid_alive(pid):
            found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def _dockerd_data_root(argv: list[str]) -> Path:
    return Path(_option(argv, "--data-root", "-g") or DEFAULT_DATA_ROOT)


def _option(argv: list[str], *names: str) -> str | None:
    values = _options(argv, *names)
    return values[-1] if values else None


def _options(argv: list[str], *names: str) -> list[str]:
    values: list[str] = []
    for index, arg in enumerate(argv):
        for name in names:
            if arg.startswith(name + "="):
                values.append(arg[len(name) + 1:])
            elif arg == name and index + 1 < len(argv):
                values.append(argv[index + 1])
    return values


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mountpoint = line.split()[4].encode().decode("unicode_escape")
        if mountpoint.startswith(prefix) or mountpoint == str(root):
            mounts.append(mountpoint)
    # Deepest first.
    return sorted(mounts, key=len, reverse=True)


def _umount(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(path.encode(), _MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        raise HarnessError(f"cannot unmount {path}: {os.strerror(errno)}")


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise engine starts and image imports across harness processes (xdist, lab + tests)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _suppress_oserror() -> Iterator[None]:
    try:
        yield
    except OSError:
        pass
