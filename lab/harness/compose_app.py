"""A small VitalStream-like docker-compose project on the lab Docker engine.

Files: lab/compose/vitalstream/ (docker-compose.yml, bin/, www/). Services use
host networking and bind 127.0.0.1 on ports from ``free_port()``; the image is
the local busybox base image, so nothing is pulled.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType

from .base import LOOPBACK, HarnessError, ServiceRecord, free_port
from .docker_engine import DockerEngine, docker_cli, find_binary

COMPOSE_DIR = Path(__file__).resolve().parent.parent / "compose" / "vitalstream"
DEFAULT_COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ALARM_COUNT_PATH = "/api/alarms/active/count"
HEALTH_PATH = "/health"

# Never through a proxy from the caller's environment: the target is loopback.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def compose_command(host: str) -> tuple[str, ...]:
    """The compose CLI to use against the engine on ``host``.

    ``docker compose`` (v2) only when Debian's docker client has the plugin and
    it talks to this engine; otherwise docker-compose v1 (Debian's
    ``docker-compose`` 1.29, which is what this machine has).
    """
    return _compose_command(host)


@cache
def _compose_command(host: str) -> tuple[str, ...]:
    env = dict(os.environ, DOCKER_HOST=host)
    env.pop("DOCKER_CONTEXT", None)
    try:
        cli = docker_cli()
    except HarnessError:
        cli = None
    if cli is not None:
        v2 = (cli, "compose")
        # `version` alone does not touch the engine; `ls` does.
        if _succeeds([*v2, "version"], env) and _succeeds([*v2, "ls", "--quiet"], env):
            return v2
    return (find_binary("docker-compose", "docker-compose"),)


def _succeeds(argv: list[str], env: dict[str, str]) -> bool:
    try:
        result = subprocess.run(argv, env=env, capture_output=True, timeout=30, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@dataclass(frozen=True)
class ContainerState:
    """One container of the project, as the engine reports it."""

    service: str
    name: str
    id: str
    status: str  # created / running / exited / ...
    health: str | None  # starting / healthy / unhealthy, None without a healthcheck
    exit_code: int | None


class ComposeApp:
    """``docker-compose -p PROJECT -f FILE up -d`` / ``down`` with ports on 127.0.0.1.

    ``state_dir`` (optional) gets a ServiceRecord so ``lab down`` can remove the
    project from another process.
    """

    def __init__(self, engine: DockerEngine, image: str, *, project: str | None = None,
                 compose_file: Path = DEFAULT_COMPOSE_FILE, api_port: int | None = None,
                 state_dir: Path | None = None, extra_env: dict[str, str] | None = None) -> None:
        self.engine = engine
        self.image = image
        self.project = project or f"vitalstream-{uuid.uuid4().hex[:8]}"
        # Compose lowercases and strips other characters; a name we did not
        # choose would make the label filters below miss the containers.
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.project):
            raise HarnessError(f"compose project name {self.project!r}: use [a-z0-9][a-z0-9_-]*")
        self.compose_file = Path(compose_file).resolve()
        self.api_port = api_port if api_port is not None else free_port()
        self.state_dir = state_dir
        self.extra_env = dict(extra_env or {})
        self.up_seconds: float | None = None

    @property
    def record_name(self) -> str:
        return f"compose-{self.project}"

    def env(self) -> dict[str, str]:
        """Environment for the compose CLI: engine, image and ports."""
        env = self.engine.docker_env()
        # Only the values of this app may reach interpolation.
        for var in ("LAB_IMAGE", "API_PORT", "ALARM_INTERVAL", "ERROR_EVERY", "COMPOSE_FILE",
                    "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"):
            env.pop(var, None)
        env.update({"LAB_IMAGE": self.image, "API_PORT": str(self.api_port)})
        env.update(self.extra_env)
        return env

    def compose(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run one compose subcommand for this project; output captured."""
        argv = [*compose_command(self.engine.host), "-p", self.project, "-f", str(self.compose_file), *args]
        try:
            return subprocess.run(argv, env=self.env(), capture_output=True, text=True,  # noqa: S603
                                  timeout=timeout, check=False, cwd=self.compose_file.parent)
        except subprocess.TimeoutExpired as exc:
            raise HarnessError(f"{' '.join(argv)} did not finish within {timeout:.0f}s") from exc

    def url(self, path: str = "/") -> str:
        return f"http://{LOOPBACK}:{self.api_port}{path}"

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        """(status, body) of an HTTP GET to the gateway on 127.0.0.1."""
        try:
            with _DIRECT.open(self.url(path), timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def up(self, timeout: float = 60.0) -> ComposeApp:
        """Create and start the project; return once ``/health`` answers ``ok`` on 127.0.0.1."""
        started = time.monotonic()
        if self.state_dir is not None:
            # Before `up`, so a half-started project can still be found and removed.
            ServiceRecord(self.record_name, None, {
                "project": self.project, "compose_file": str(self.compose_file),
                "host": self.engine.host, "api_port": self.api_port, "image": self.image,
            }).save(self.state_dir)
        result = self.compose("up", "-d", "--no-build", timeout=timeout + 60)
        if result.returncode != 0:
            raise HarnessError(f"compose up of {self.project} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}")
        deadline = started + timeout
        while True:
            try:
                if self.get(HEALTH_PATH) == (200, "ok"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.project}: {self.url(HEALTH_PATH)} did not answer `ok` within "
                                   f"{timeout:.0f}s\n{self._diagnostics()}")
            time.sleep(0.1)
        self.up_seconds = time.monotonic() - started
        return self

    def down(self, timeout: float = 120.0) -> None:
        """Remove the project's containers, volumes and orphans; verify via the SDK that none remain."""
        result = self.compose("down", "-v", "--remove-orphans", "--timeout", "5", timeout=timeout)
        # Whatever compose could not remove (it failed, or was interrupted
        # during `up`) is removed by label, only for this project.
        remove_project(self.engine, self.project)
        left = self.containers()
        if left:
            raise HarnessError(f"containers of {self.project} remain after down: {left}\n"
                               f"{result.stdout}{result.stderr}")
        if self.state_dir is not None:
            ServiceRecord.forget(self.state_dir, self.record_name)

    def containers(self) -> list[str]:
        """Names of every container (any state) labelled with this project."""
        client = self.engine.client()
        return [c.name for c in client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"})]

    def services(self) -> dict[str, list[ContainerState]]:
        """Container states by compose service, from the engine (SDK), not from compose."""
        client = self.engine.client()
        states: dict[str, list[ContainerState]] = {}
        for container in client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"}):
            state = container.attrs.get("State", {})
            health = state.get("Health", {}).get("Status") if state.get("Health") else None
            service = container.labels.get(SERVICE_LABEL, "")
            states.setdefault(service, []).append(ContainerState(
                service=service, name=container.name, id=container.id, status=container.status,
                health=health, exit_code=state.get("ExitCode")))
        return states

    def logs(self, service: str, tail: int | str = "all") -> str:
        """stdout+stderr of the service's containers, via the SDK."""
        client = self.engine.client()
        filters = {"label": [f"{PROJECT_LABEL}={self.project}", f"{SERVICE_LABEL}={service}"]}
        return "".join(c.logs(tail=tail).decode(errors="replace")
                       for c in client.containers.list(all=True, filters=filters))

    def _diagnostics(self) -> str:
        lines = [f"containers: {self.services()}"]
        for service in self.services():
            lines.append(f"--- logs of {service} ---\n{self.logs(service, tail=20)}")
        return "\n".join(lines)

    def __enter__(self) -> ComposeApp:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.down()


def remove_project(engine: DockerEngine, project: str) -> None:
    """Remove every container and volume of ``project`` by label (for ``lab down`` without the compose file)."""
    client = engine.client()
    for container in client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}):
        container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"label": f"{PROJECT_LABEL}={project}"}):
        volume.remove(force=True)


__all__ = ["COMPOSE_DIR", "DEFAULT_COMPOSE_FILE", "ComposeApp", "ContainerState", "compose_command",
           "remove_project"]
