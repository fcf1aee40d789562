"""Fault injection helpers of the data services' campaign cases (PostgreSQL, Redis, a small disk).

Each helper injects at a real point of the work: it waits until the server itself shows the operation
running (pg_stat_activity / pg_stat_progress_*, Redis INFO), then stops, terminates or fills. Servers are
the test's own (lab/harness), never the services lane's Docker or Kubernetes.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.pg import table_fingerprint
from lab.harness.base import HarnessError, pid_alive, port_open, spawn, stop_pid, wait_for
from lab.harness.postgres import PostgresServer, postgres_bindir
from lab.harness.redis import RedisServer

# Every wait of a fault is bounded: a case that cannot reach its point fails, it never hangs.
FAULT_TIMEOUT = 30


def run_module(module: Any, capsys: pytest.CaptureFixture, **args: Any) -> tuple[bool, dict[str, Any]]:
    """(failed, result) of the module's main() as Ansible runs it in-process."""
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        module.main()
    result = json.loads(capsys.readouterr().out)
    if result.get("failed", False) != (exited.value.code != 0):
        raise AssertionError(f"exit code {exited.value.code} disagrees with failed={result.get('failed')}")
    return bool(result.get("failed", False)), result


def pg_args(conninfo: dict[str, Any]) -> dict[str, Any]:
    return {"login_host": conninfo["host"], "login_port": conninfo["port"], "login_user": conninfo["user"],
            "login_password": conninfo["password"], "database": conninfo["dbname"]}


# --------------------------------------------------------------------------- PostgreSQL


def pg_ctl(server: PostgresServer, *args: str) -> None:
    """pg_ctl on the server's data directory, as the server's user (PostgreSQL refuses root)."""
    assert server.info is not None
    argv = server._as_server_user([str(postgres_bindir() / "pg_ctl"), "-D", server.info.data_dir, *args])
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=FAULT_TIMEOUT + 30)
    if result.returncode != 0:
        raise HarnessError(f"pg_ctl {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")


def pg_stop_fast(server: PostgresServer) -> None:
    """A fast shutdown: every session is terminated, open transactions are rolled back."""
    pg_ctl(server, "-m", "fast", "-w", "-t", str(FAULT_TIMEOUT), "stop")


def pg_start(server: PostgresServer) -> None:
    """Start the stopped cluster again, on its port (crash recovery, if any, happens here)."""
    assert server.info is not None
    if server.pid() and pid_alive(server.pid()):
        return
    pg_ctl(server, "-l", server.info.log, "-w", "-t", str(FAULT_TIMEOUT + 30), "start")


def pg_connect(conninfo: dict[str, Any]) -> psycopg.Connection:
    return psycopg.connect(**conninfo, autocommit=True, connect_timeout=5)


def backend_running(conninfo: dict[str, Any], query_like: str, *, database: str | None = None) -> int | None:
    """The pid of an active backend whose query matches ``query_like`` (ILIKE), or None."""
    with pg_connect(conninfo) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
            "AND query ILIKE %s AND (%s::text IS NULL OR datname = %s) ORDER BY backend_start LIMIT 1",
            (query_like, database, database)).fetchone()
    return row[0] if row else None


def progress_phase(conninfo: dict[str, Any], view: str, phase_like: str) -> bool:
    """pg_stat_progress_<view> shows a phase matching ``phase_like``."""
    with pg_connect(conninfo) as conn:
        return conn.execute(f"SELECT count(*) FROM pg_stat_progress_{view} WHERE phase ILIKE %s",  # noqa: S608
                            (phase_like,)).fetchone()[0] > 0


class Injector:
    """Runs ``inject`` in a thread once ``ready()`` is true (polled every 10 ms, bounded); says what it did."""

    def __init__(self, ready: Callable[[], Any], inject: Callable[[Any], None], *, what: str) -> None:
        self.ready, self.inject, self.what = ready, inject, what
        self.injected = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + FAULT_TIMEOUT
        try:
            while time.monotonic() < deadline:
                found = self.ready()
                if found:
                    self.inject(found)
                    self.injected = True
                    return
                time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported by join() in the test's thread
            self.error = exc

    def __enter__(self) -> Injector:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.thread.join(FAULT_TIMEOUT + 30)

    def require(self) -> None:
        """The fault really happened mid-work: else the case tried nothing and must fail."""
        if self.error is not None:
            raise AssertionError(f"injecting {self.what} failed: {self.error!r}") from self.error
        if not self.injected:
            raise AssertionError(f"{self.what}: the work was never seen running, nothing was injected")


def fingerprints(conninfo: dict[str, Any], tables: list[str]) -> dict[str, tuple[int, str]]:
    """Row count and checksum (pg.table_fingerprint) of each ``schema.table``."""
    with pg_connect(conninfo) as conn:
        return {name: table_fingerprint(conn, *name.split(".")) for name in tables}


def invalid_indexes(conninfo: dict[str, Any]) -> list[str]:
    with pg_connect(conninfo) as conn:
        return [row[0] for row in conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE NOT i.indisvalid ORDER BY 1").fetchall()]


def databases(conninfo: dict[str, Any]) -> list[str]:
    with pg_connect(conninfo) as conn:
        return [row[0] for row in conn.execute("SELECT datname FROM pg_database ORDER BY 1").fetchall()]


# --------------------------------------------------------------------------- backup sets


def set_leftovers(root: Path, *, except_ids: tuple[str, ...] = ()) -> list[str]:
    """What a failed run may have left in a backup root: any set directory but the ones named, any temp file."""
    found = []
    for entry in sorted(root.iterdir()) if root.exists() else []:
        if entry.name in except_ids:
            continue
        kind = "complete-looking set" if (entry / "manifest.json").exists() else "unfinished set"
        found.append(f"{kind} {entry.name}: {sorted(p.name for p in entry.iterdir()) if entry.is_dir() else 'file'}")
    return found


def set_files_digest(directory: Path) -> dict[str, str]:
    """sha256 of every file of a set: the set unchanged, byte for byte."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path``; FAILS (never skips) when it cannot be mounted: a case that
    could not fill a disk did not try its fault."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        raise AssertionError(f"cannot mount a {size} tmpfs on {path}: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def grow_disk(path: Path, size: str) -> None:
    result = subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise AssertionError(f"cannot grow the tmpfs on {path} to {size}: {result.stderr.strip()}")


# --------------------------------------------------------------------------- Redis


def redis_client(server: RedisServer, **kwargs: Any) -> redis.Redis:
    assert server.info is not None
    return redis.Redis(host=server.info.host, port=server.info.port, password=server.info.password,
                       socket_timeout=10, **kwargs)


def redis_kill(server: RedisServer) -> None:
    """SIGKILL: no save, no goodbye (the AOF, written before every reply, is what a restart finds)."""
    assert server.info is not None
    if not stop_pid(server.info.pid, sig=9, timeout=5):
        raise HarnessError(f"redis-server pid {server.info.pid} survived SIGKILL")


def redis_restart(server: RedisServer) -> None:
    """Start the same server again from its own config file and directory (its AOF is loaded)."""
    assert server.info is not None
    info = server.info
    if pid_alive(info.pid):
        return
    root = Path(info.dir)
    proc = spawn([shutil.which("redis-server") or "redis-server", str(root / "redis.conf")],
                 log=root / "stdout.log")
    info.pid = proc.pid

    def loaded() -> bool:
        if not port_open(info.port):
            return False
        try:
            return redis_client(server).info("persistence").get("loading") == 0
        except redis.exceptions.RedisError:
            return False

    wait_for(loaded, timeout=FAULT_TIMEOUT, what="redis-server restart", log=Path(info.log))


def keys_digest(client: redis.Redis, match: str) -> tuple[int, str]:
    """(count, sha256 over the sorted keys and their values) of the keys matching ``match``."""
    keys = sorted(client.scan_iter(match=match, count=1000))
    digest = hashlib.sha256()
    for start in range(0, len(keys), 1000):
        chunk = keys[start:start + 1000]
        for key, value in zip(chunk, client.mget(chunk)):
            digest.update(key + b"\0" + (value or b"") + b"\0")
    return len(keys), digest.hexdigest()


def bgsave_running(client: redis.Redis) -> bool:
    return bool(client.info("persistence").get("rdb_bgsave_in_progress"))
