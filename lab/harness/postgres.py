"""A throwaway PostgreSQL cluster (initdb + pg_ctl) on 127.0.0.1.

PostgreSQL refuses to run as root, so when we are root the server runs as the
``postgres`` system user (``runuser``) and its directory lives where that user
can reach it (a fresh directory under the system temp dir, not pytest's 0700
tree).
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .base import LOOPBACK, HarnessError, ServiceRecord, free_port, pid_alive, stop_pid, wait_for

SERVER_USER = "postgres"


def postgres_bindir() -> Path:
    """The newest installed server's bin dir (Debian keeps one per major version)."""
    root = Path("/usr/lib/postgresql")
    candidates = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise HarnessError("no PostgreSQL server binaries under /usr/lib/postgresql: install the Debian package postgresql-15")
    return candidates[-1]


@dataclass
class PostgresInfo:
    host: str
    port: int
    user: str
    password: str
    socket_dir: str
    data_dir: str
    root_dir: str
    log: str
    version: str

    def conninfo(self, dbname: str = "postgres", **overrides) -> dict:
        params = {"host": self.host, "port": self.port, "user": self.user,
                  "password": self.password, "dbname": dbname}
        params.update(overrides)
        return params


class PostgresServer:
    """Start/stop one cluster. ``start()`` returns the connection facts."""

    def __init__(self, *, port: int | None = None, settings: dict[str, str] | None = None) -> None:
        self.port = port
        self.settings = settings or {}
        self.info: PostgresInfo | None = None

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", SERVER_USER, "--", *argv]
        return argv

    def _run(self, argv: list[str], what: str) -> None:
        result = subprocess.run(self._as_server_user(argv), capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise HarnessError(f"{what} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> PostgresInfo:
        bindir = postgres_bindir()
        root = Path(tempfile.mkdtemp(prefix="streamops-pg-"))
        data, sockets, log = root / "data", root / "sockets", root / "server.log"
        sockets.mkdir()
        password = secrets.token_urlsafe(18)
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            try:
                ids = pwd.getpwnam(SERVER_USER)
            except KeyError as exc:
                raise HarnessError("no 'postgres' system user to run the server as: install the Debian package postgresql-15") from exc
            for path in (root, sockets, pwfile):
                os.chown(path, ids.pw_uid, ids.pw_gid)
        os.chmod(root, 0o700)
        port = self.port or free_port()
        try:
            self._run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
                       "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                       "--no-instructions"], "initdb")
            pwfile.unlink()
            options = {
                "listen_addresses": LOOPBACK,
                "port": str(port),
                "unix_socket_directories": str(sockets),
                # A throwaway cluster: durability buys nothing and costs seconds.
                "fsync": "off",
                "full_page_writes": "off",
                "synchronous_commit": "off",
                "shared_preload_libraries": "pg_stat_statements",
                "log_min_messages": "warning",
                **self.settings,
            }
            with open(data / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
                for key, value in options.items():
                    conf.write(f"{key} = '{value}'\n")
            self._run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"], "pg_ctl start")
        except HarnessError:
            shutil.rmtree(root, ignore_errors=True)
            raise
        version = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False).stdout.strip()  # noqa: S603
        self.info = PostgresInfo(host=LOOPBACK, port=port, user="postgres", password=password,
                                 socket_dir=str(sockets), data_dir=str(data), root_dir=str(root),
                                 log=str(log), version=version)
        return self.info

    def pid(self) -> int | None:
        if self.info is None:
            return None
        pidfile = Path(self.info.data_dir) / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def record(self) -> ServiceRecord:
        assert self.info is not None
        return ServiceRecord(name="postgres", pid=self.pid(), info=asdict(self.info))

    @classmethod
    def from_record(cls, record: ServiceRecord) -> PostgresServer:
        server = cls(port=record.info.get("port"))
        server.info = PostgresInfo(**record.info)
        return server

    def stop(self) -> None:
        if self.info is None:
            return
        data = Path(self.info.data_dir)
        pid = self.pid()
        if data.exists() and pid and pid_alive(pid):
            try:
                self._run([str(postgres_bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"], "pg_ctl stop")
            except HarnessError:
                stop_pid(pid, sig=15)
        if pid:
            wait_for(lambda: not pid_alive(pid), timeout=30, what=f"postgres pid {pid} exit")
        shutil.rmtree(self.info.root_dir, ignore_errors=True)
        self.info = None
