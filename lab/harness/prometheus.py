"""A private Prometheus (Debian's ``prometheus`` package) on 127.0.0.1, for one test or the lab.

It scrapes itself every second (job ``prometheus``), so its TSDB holds real
samples for snapshots, and loads ``<root>/rules/*.yml`` as rule files. The
admin API (snapshots) and the lifecycle API (``/-/reload``) are on.
"""
from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType

from .base import LOOPBACK, HarnessError, free_port, spawn, stop_started, wait_for, wait_started
from .docker_engine import find_binary

# No proxy for the lab's own loopback server, whatever the environment says.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def find_prometheus() -> str:
    """Path of Debian's prometheus server, or HarnessError naming the package."""
    return find_binary("prometheus", "prometheus")


class PrometheusServer:
    """``prometheus --config.file <root>/prometheus.yml`` on 127.0.0.1:<port>, data in ``<root>/data``."""

    def __init__(self, root: Path, port: int | None = None, *, scrape_interval: str = "1s",
                 evaluation_interval: str = "1s") -> None:
        self.root = Path(root)
        self.port = port or free_port()
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.binary = find_prometheus()
        self.data_dir = self.root / "data"
        self.rules_dir = self.root / "rules"
        self.config_path = self.root / "prometheus.yml"
        self.pid_file = self.root / "prometheus.pid"
        self.log = self.root / "prometheus.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def config(self) -> str:
        return ("global:\n"
                f"  scrape_interval: {self.scrape_interval}\n"
                f"  evaluation_interval: {self.evaluation_interval}\n"
                "rule_files:\n"
                f"  - {self.rules_dir}/*.yml\n"
                "scrape_configs:\n"
                "  - job_name: prometheus\n"
                "    static_configs:\n"
                f"      - targets: ['{LOOPBACK}:{self.port}']\n")

    def _ready(self) -> bool:
        try:
            with _DIRECT.open(f"{self.url}/-/ready", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        self.rules_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config())
        self.proc = spawn([self.binary, f"--config.file={self.config_path}",
                           f"--storage.tsdb.path={self.data_dir}",
                           f"--web.listen-address={LOOPBACK}:{self.port}",
                           f"--web.external-url={self.url}/",
                           "--web.enable-admin-api", "--web.enable-lifecycle",
                           "--log.level=info"],
                          log=self.log, cwd=self.root)
        self.pid_file.write_text(f"{self.proc.pid}\n")
        try:
            wait_started(self.proc, self._ready, name="prometheus", what=f"prometheus on {self.url}", timeout=timeout,
                         log=self.log)
        except HarnessError:
            self.stop()
            raise
        return self

    def query(self, expr: str) -> list[dict]:
        """An instant query's result vector (for tests and the lab's own checks)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with _DIRECT.open(url, timeout=5) as response:
            return json.load(response)["data"]["result"]

    def wait_for_scrape(self, timeout: float = 20.0) -> None:
        """Wait until the self-scrape has stored a sample (target discovery takes ~5 s after start)."""
        wait_for(lambda: bool(self.query('up{job="prometheus"}')), timeout=timeout,
                 what=f"a first scrape by prometheus on {self.url}", log=self.log, interval=0.2)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (prometheus shuts down its TSDB cleanly), SIGKILL after ``timeout``; verify it is gone."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            stop_started(proc, name="prometheus", timeout=timeout, log=self.log)
        finally:
            self.pid_file.unlink(missing_ok=True)

    def facts(self) -> dict:
        """What a lab inventory needs to point the collection's modules at this server."""
        return {"url": self.url, "data_dir": str(self.data_dir), "rules_dir": str(self.rules_dir),
                "config": str(self.config_path), "pid_file": str(self.pid_file)}

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


__all__ = ["PrometheusServer", "find_prometheus"]
