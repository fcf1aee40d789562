"""A throwaway redis-server on 127.0.0.1 with its own directory."""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .base import LOOPBACK, HarnessError, ServiceRecord, free_port, port_open, spawn, stop_pid, wait_for


@dataclass
class RedisInfo:
    host: str
    port: int
    password: str | None
    dir: str
    log: str
    pid: int


class RedisServer:
    def __init__(self, *, port: int | None = None, password: str | None = None,
                 maxmemory: str | None = None, extra: dict[str, str] | None = None) -> None:
        self.port = port
        self.password = password
        self.maxmemory = maxmemory
        self.extra = extra or {}
        self.info: RedisInfo | None = None

    def start(self) -> RedisInfo:
        binary = shutil.which("redis-server")
        if binary is None:
            raise HarnessError("redis-server not found: install the Debian package redis-server")
        root = Path(tempfile.mkdtemp(prefix="streamops-redis-"))
        port = self.port or free_port()
        log = root / "redis.log"
        # Options go in a file so a password never shows on a command line.
        lines = [f"bind {LOOPBACK}", f"port {port}", "protected-mode yes", f"dir {root}",
                 'save ""', "appendonly no", "daemonize no", f"logfile {log}",
                 "enable-debug-command local"]
        if self.password:
            lines.append(f"requirepass {self.password}")
        if self.maxmemory:
            lines.append(f"maxmemory {self.maxmemory}")
        lines += [f"{key} {value}" for key, value in self.extra.items()]
        conf = root / "redis.conf"
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o600)
        proc = spawn([binary, str(conf)], log=root / "stdout.log")
        try:
            wait_for(lambda: port_open(port) or proc.poll() is not None, timeout=20, what="redis-server", log=log)
            if proc.poll() is not None:
                raise HarnessError(f"redis-server exited with {proc.returncode}" + (log.read_text() if log.exists() else ""))
        except HarnessError:
            stop_pid(proc.pid)
            shutil.rmtree(root, ignore_errors=True)
            raise
        self.info = RedisInfo(host=LOOPBACK, port=port, password=self.password, dir=str(root), log=str(log), pid=proc.pid)
        return self.info

    def url(self, db: int = 0) -> str:
        assert self.info is not None
        auth = f":{self.info.password}@" if self.info.password else ""
        return f"redis://{auth}{self.info.host}:{self.info.port}/{db}"

    def record(self) -> ServiceRecord:
        assert self.info is not None
        return ServiceRecord(name="redis", pid=self.info.pid, info=asdict(self.info))

    @classmethod
    def from_record(cls, record: ServiceRecord) -> RedisServer:
        server = cls()
        server.info = RedisInfo(**record.info)
        return server

    def stop(self) -> None:
        if self.info is None:
            return
        if not stop_pid(self.info.pid):
            raise HarnessError(f"redis-server pid {self.info.pid} did not stop")
        shutil.rmtree(self.info.dir, ignore_errors=True)
        self.info = None
