"""The VitalStream web app, blue/green behind nginx, as the compose driver of blue_green_deploy expects it.

Two compose projects of lab/compose/bluegreen (``<app>-blue`` and
``<app>-green``), each on its own free loopback port, and a private nginx
master (lab/harness/nginx.py) whose upstream file points at the live colour.
At start, blue runs the first lab version and has the traffic; green does not
exist yet (the first deploy creates it). Every version is a tag of the lab's
busybox base image; the app answers /version with its version ("broken" for a
"smoke-fail" version), so what answers through nginx is what has the traffic.
A "smoke500" version is ready (its healthcheck asks /ready) but answers /health
with HTTP 500: the kept colour a rollback must check before it gets traffic.
"""
from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from .base import LOOPBACK, HarnessError, ServiceRecord, free_port, pid_alive, stop_pid, wait_for
from .compose_app import compose_command, remove_project
from .docker_engine import DockerEngine
from .nginx import NginxFront

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "compose" / "bluegreen" / "docker-compose.yml"
APP = "vitalstream-web"
IMAGE = "streamops-lab/vitalstream-web"
VERSIONS = ("2026.11.0", "2026.11.1", "2026.12.0")
SMOKE_FAIL = "2026.12.1-smoke-fail"
SMOKE_500 = "2026.12.2-smoke500"
COLOURS = ("blue", "green")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_text(url: str, timeout: float = 2.0) -> str | None:
    """Body of a 200 answer, None otherwise (refused, error status)."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return response.read().decode(errors="replace").strip()
    except (urllib.error.URLError, OSError):
        return None


class BlueGreenCompose:
    """Start, describe and stop the stack; ``root`` holds nginx's files, the upstream and the project dir.

    ``state_dir`` (optional) gets a ServiceRecord written before anything starts, so ``lab down`` can
    stop a stack whose ``up`` ran in another process (or was killed half-way).
    """

    def __init__(self, engine: DockerEngine, base_image: str, root: Path, *, app: str = APP,
                 ports: dict[str, int] | None = None, front_port: int | None = None,
                 state_dir: Path | None = None) -> None:
        self.engine = engine
        self.base_image = base_image
        self.root = Path(root)
        self.app = app
        self.ports = dict(ports) if ports else {colour: free_port() for colour in COLOURS}
        self.project_dir = self.root / "project"
        self.upstream_file = self.root / "upstream.conf"
        self.nginx = NginxFront(self.root / "nginx", upstream_file=self.upstream_file, upstream_name=app,
                                port=front_port)
        self.state_dir = state_dir
        # The nginx master a ServiceRecord names, when another process started it.
        self.recorded_nginx_pid: int | None = None

    @property
    def record_name(self) -> str:
        return f"bluegreen-{self.app}"

    @property
    def front_url(self) -> str:
        return self.nginx.url

    def record(self, nginx_pid: int | None = None) -> ServiceRecord:
        return ServiceRecord(self.record_name, nginx_pid, {
            "app": self.app, "root": str(self.root), "ports": self.ports, "front_port": self.nginx.port,
            "base_image": self.base_image, "host": self.engine.host})

    @classmethod
    def from_record(cls, engine: DockerEngine, record: ServiceRecord, state_dir: Path | None = None) -> BlueGreenCompose:
        info = record.info
        stack = cls(engine, info.get("base_image", ""), Path(info["root"]), app=info["app"],
                    ports=info.get("ports"), front_port=info.get("front_port"), state_dir=state_dir)
        stack.recorded_nginx_pid = record.pid
        return stack

    # ----------------------------------------------------------------- up

    def tag_images(self) -> list[str]:
        client = self.engine.client()
        base = client.images.get(self.base_image)
        versions = [*VERSIONS, SMOKE_FAIL, SMOKE_500]
        for version in versions:
            base.tag(IMAGE, version)
        return versions

    def compose(self, colour: str, version: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        env = self.engine.docker_env()
        for var in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"):
            env.pop(var, None)
        env.update({"APP_IMAGE": f"{IMAGE}:{version}", "APP_VERSION": version,
                    "APP_PORT": str(self.ports[colour]), "APP_COLOUR": colour})
        argv = [*compose_command(self.engine.host), "-p", f"{self.app}-{colour}", "-f", str(COMPOSE_FILE), *args]
        try:
            return subprocess.run(argv, env=env, cwd=COMPOSE_FILE.parent, capture_output=True, text=True,  # noqa: S603
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise HarnessError(f"{' '.join(argv)} did not finish within {timeout:.0f}s") from exc

    def upstream_text(self, colour: str) -> str:
        # The same form the compose driver writes, so it reads the live colour from it.
        return (f"# Traffic of {self.app} goes to {colour}; rewritten by blue_green_deploy on every switch.\n"
                f"upstream {self.app} {{ server {LOOPBACK}:{self.ports[colour]}; }}\n")

    def up(self, timeout: float = 60.0) -> BlueGreenCompose:
        """Blue runs the first version and has the traffic through nginx; return once nginx answers it."""
        live = VERSIONS[0]
        self.project_dir.mkdir(parents=True, exist_ok=True)
        if self.state_dir is not None:
            self.record().save(self.state_dir)
        self.tag_images()
        result = self.compose("blue", live, "up", "-d", "--no-build", timeout=timeout + 60)
        if result.returncode != 0:
            raise HarnessError(f"compose up of {self.app}-blue failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}")
        blue = f"http://{LOOPBACK}:{self.ports['blue']}/version"
        wait_for(lambda: get_text(blue) == live, timeout=timeout, what=f"{self.app}-blue answering {live} on {blue}")
        self.upstream_file.write_text(self.upstream_text("blue"))
        self.nginx.start()
        if self.state_dir is not None:
            self.record(self.nginx.proc.pid).save(self.state_dir)
        wait_for(lambda: get_text(self.front_url + "/version") == live, timeout=15,
                 what=f"nginx {self.front_url} answering {live}")
        return self

    def facts(self) -> dict:
        """What the inventory needs to drive blue_green_deploy here (the module's compose options included)."""
        return {
            "platform": "compose", "app": self.app, "image": IMAGE, "version": VERSIONS[0],
            "versions": list(VERSIONS), "smoke_fail_version": SMOKE_FAIL, "smoke500_version": SMOKE_500,
            "front_url": self.front_url,
            "compose": {
                "project_dir": str(self.project_dir), "compose_file": str(COMPOSE_FILE),
                "ports": dict(self.ports), "nginx_upstream_file": str(self.upstream_file),
                "nginx_conf": str(self.nginx.conf), "nginx_binary": self.nginx.binary,
                "front_url": self.front_url, "docker_host": self.engine.host,
            },
        }

    # ----------------------------------------------------------------- down

    def down(self) -> None:
        """Stop nginx (ours, by PID), remove both colours' containers; verify none remain."""
        if self.nginx.proc is not None:
            self.nginx.stop()
        elif self.recorded_nginx_pid is not None and pid_alive(self.recorded_nginx_pid):
            subprocess.run([self.nginx.binary, "-s", "quit", "-c", str(self.nginx.conf)],  # noqa: S603
                           capture_output=True, timeout=30, check=False)
            try:
                wait_for(lambda: not pid_alive(self.recorded_nginx_pid), timeout=10, what="nginx to quit")
            except HarnessError:
                stop_pid(self.recorded_nginx_pid)
        left = []
        client = self.engine.client()
        for colour in COLOURS:
            project = f"{self.app}-{colour}"
            self.compose(colour, "down", "down", "-v", "--timeout", "5", timeout=120)
            remove_project(self.engine, project)
            left += [c.name for c in client.containers.list(
                all=True, filters={"label": f"com.docker.compose.project={project}"})]
        if left:
            raise HarnessError(f"containers of {self.app} remain after down: {left}")
        if self.state_dir is not None:
            ServiceRecord.forget(self.state_dir, self.record_name)


__all__ = ["APP", "BlueGreenCompose", "COMPOSE_FILE", "IMAGE", "SMOKE_500", "SMOKE_FAIL", "VERSIONS"]
