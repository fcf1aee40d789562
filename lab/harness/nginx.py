"""A private nginx master on 127.0.0.1 in front of a blue/green upstream, for one test or the lab.

Everything nginx writes (pid, logs, temp files) is in its own directory; the
configuration ``include``s the upstream file that the compose blue/green
driver rewrites, and proxies ``/`` to that upstream. Debian's nginx-light.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from .base import LOOPBACK, HarnessError, children_by_parent, free_port, log_tail, pid_alive, port_open, spawn, stop_pid, wait_for
from .docker_engine import find_binary

TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class NginxFront:
    """``nginx -c <dir>/nginx.conf`` in the foreground (``daemon off``), stopped with ``nginx -s quit``.

    ``upstream_file`` must define ``upstream <upstream_name>`` before ``start()``;
    ``extra_include`` (a glob, may match nothing) lets a test add configuration.
    """

    def __init__(self, root: Path, *, upstream_file: Path, upstream_name: str, port: int | None = None,
                 extra_include: str | None = None, worker_processes: int = 2) -> None:
        self.root = Path(root)
        self.upstream_file = Path(upstream_file)
        self.upstream_name = upstream_name
        self.port = port or free_port()
        self.extra_include = extra_include
        self.worker_processes = worker_processes
        self.binary = find_binary("nginx", "nginx-light")
        self.conf = self.root / "nginx.conf"
        self.pid_file = self.root / "nginx.pid"
        self.error_log = self.root / "error.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def config(self) -> str:
        temp = "\n".join(f"    {name}_temp_path {self.root / 'temp' / name};" for name in TEMP_PATHS)
        # Workers of a root master run as `nobody` by default, which cannot
        # enter pytest's 0700 temp directories.
        user = "user root;\n" if os.geteuid() == 0 else ""
        extra = f"    include {self.extra_include};\n" if self.extra_include else ""
        return (f"{user}daemon off;\nmaster_process on;\nworker_processes {self.worker_processes};\n"
                f"pid {self.pid_file};\nerror_log {self.error_log} notice;\n"
                "events { worker_connections 512; }\n"
                "http {\n"
                f"    access_log off;\n{temp}\n"
                f"    include {self.upstream_file};\n{extra}"
                "    server {\n"
                f"        listen {LOOPBACK}:{self.port};\n"
                "        location / {\n"
                f"            proxy_pass http://{self.upstream_name};\n"
                "            proxy_connect_timeout 2s;\n"
                "            proxy_read_timeout 10s;\n"
                "        }\n"
                "    }\n"
                "}\n")

    def start(self, timeout: float = 15.0) -> NginxFront:
        self.root.mkdir(parents=True, exist_ok=True)
        for name in TEMP_PATHS:
            (self.root / "temp" / name).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.config())
        # -e: the log of the start itself, before the configuration is read
        # (Debian's default is /var/log/nginx/error.log).
        self.proc = spawn([self.binary, "-c", str(self.conf), "-e", str(self.error_log)],
                          log=self.root / "stdout.log")
        try:
            wait_for(lambda: self.proc.poll() is not None or (port_open(self.port) and self.master_pid() is not None),
                     timeout=timeout, what=f"nginx on {self.url}", log=self.error_log)
            if self.proc.poll() is not None:
                raise HarnessError(f"nginx exited with {self.proc.returncode}{log_tail(self.error_log)}"
                                   f"{log_tail(self.root / 'stdout.log')}")
        except HarnessError:
            self.stop()
            raise
        return self

    def master_pid(self) -> int | None:
        try:
            text = self.pid_file.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def workers(self) -> list[int]:
        """PIDs of the master's children (workers), from /proc."""
        if self.proc is None:
            return []
        return children_by_parent().get(self.proc.pid, [])

    def stop(self, timeout: float = 10.0) -> None:
        """``nginx -s quit`` (graceful), then by PID if it lingers; verify the master and workers are gone."""
        if self.proc is None:
            return
        workers = self.workers()
        if self.proc.poll() is None:
            subprocess.run([self.binary, "-s", "quit", "-c", str(self.conf)], capture_output=True,  # noqa: S603
                           timeout=30, check=False)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop_pid(self.proc.pid, sig=signal.SIGTERM, timeout=5)
        pid = self.proc.pid
        self.proc = None
        deadline = time.monotonic() + timeout
        while any(pid_alive(p) for p in [pid, *workers]) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [p for p in [pid, *workers] if pid_alive(p)]
        for worker in left:
            stop_pid(worker, sig=signal.SIGKILL, timeout=2)
        if left:
            raise HarnessError(f"nginx processes {left} outlived `nginx -s quit`{log_tail(self.error_log)}")

    def __enter__(self) -> NginxFront:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


__all__ = ["NginxFront"]
