# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The colours of the compose blue/green driver: compose projects ``<app>-blue``/``<app>-green`` of one file.

Both colours run the same compose file; they differ by the environment given
to compose (APP_IMAGE, APP_VERSION, APP_PORT, APP_COLOUR) and, when a deploy
carries a spec (env, resource limits of the app service), by an override file
of the colour beside the project, whose label records the spec on the
containers. What runs, and whether it is ready, is read from the engine with
the Docker SDK, never from compose's output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from .blue_green import ColourState, DeployError, check_image_repository, tail
from .blue_green_spec import decode_spec, encode_spec
from .compose_files import absolute, read_text, write_text
from .docker_conn import DOCKER_IMPORT_ERROR, DockerEngineError, DockerException, docker_client_from, engine_name

PROJECT_LABEL = "com.docker.compose.project"
ONEOFF_LABEL = "com.docker.compose.oneoff"
LOOPBACK = "127.0.0.1"
COMPOSE_TIMEOUT = 900.0
# A container that restarts this often is crash-looping, not starting.
MAX_RESTARTS = 3
# On the app service's containers: the spec of the deploy that created them.
SPEC_LABEL = "io.streamops.blue-green.spec"


@dataclass
class Instance:
    """One container of a colour's compose project, as the engine reports it."""

    name: str
    status: str  # created / running / restarting / exited / dead / ...
    health: str | None  # starting / healthy / unhealthy; None without a healthcheck
    exit_code: int
    restarts: int
    version: str | None  # None: not an app container (a sidecar)
    health_output: str
    container: Any
    spec: dict[str, Any] | None = None  # None: no spec label (a sidecar, or a colour started without one)


def succeeds(argv: list[str], env: dict[str, str]) -> bool:
    try:
        result = subprocess.run(argv, env=env, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def compose_cli(env: dict[str, str]) -> list[str]:
    """``docker compose`` (v2) when the docker CLI has the plugin and it reaches the engine, else ``docker-compose``.

    Debian ships docker-compose 1.29 (v1) and a docker client without the v2
    plugin; newer installs have only v2. Both take the same arguments here.
    """
    cli = shutil.which("docker")
    if cli is not None:
        # `version` alone does not talk to the engine; `ls` does, and fails when the plugin is too new for it.
        if succeeds([cli, "compose", "version"], env) and succeeds([cli, "compose", "ls", "--quiet"], env):
            return [cli, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    raise DeployError(msg="neither `docker compose` (v2) nor `docker-compose` (v1) is installed on this host")


def override_of(service: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The compose override giving ``service`` the spec: environment, cpus/mem_limit, and the label recording it."""
    # Compose interpolates every file it reads: a literal $ in a value is written $$.
    def literal(text: str) -> str:
        return text.replace("$", "$$")

    settings: dict[str, Any] = {"labels": {SPEC_LABEL: literal(encode_spec(spec))}}
    if spec.get("env"):
        settings["environment"] = {name: literal(value) for name, value in spec["env"].items()}
    limits = (spec.get("resources") or {}).get("limits") or {}
    if "cpus" in limits:
        settings["cpus"] = float(limits["cpus"])
    if "memory" in limits:
        settings["mem_limit"] = limits["memory"]
    return {"services": {service: settings}}


def finished(instance: Instance) -> bool:
    """A sidecar that ran to completion (an init job), which does not make the colour unready."""
    return instance.version is None and instance.status == "exited" and instance.exit_code == 0


class ComposeProject:
    """Both colours' compose projects: run compose on them, and read their containers from the engine."""

    def __init__(self, *, app: str, project_dir: str, compose_file: str | None, image: str, ports: dict[str, int],
                 docker_host: str | None = None, poll: float = 0.2, service: str | None = None) -> None:
        self.app = app
        self.project_dir = absolute(project_dir, "compose project_dir")
        if not os.path.isdir(self.project_dir):
            raise DeployError(msg=f"compose project_dir {self.project_dir} is not a directory")
        # A relative compose file is where the documentation puts the default one: in project_dir.
        self.compose_file = os.path.normpath(os.path.join(self.project_dir, compose_file or "docker-compose.yml"))
        self.image = check_image_repository(image or "")
        self.ports = ports
        if docker_host is not None and (not isinstance(docker_host, str) or not docker_host.strip()):
            raise DeployError(msg=f"compose docker_host {docker_host!r} must be an engine address "
                                  "such as unix:///run/docker.sock")
        self.docker_host = docker_host
        if not isinstance(poll, (int, float)) or poll <= 0:
            raise DeployError(msg=f"ready_timeout_poll {poll!r} must be above 0 seconds")
        self.poll = float(poll)
        # The app's service, which a spec tunes; the file's only service when None.
        self.service = service
        self._client: Any = None
        self._cli: list[str] | None = None

    # ----------------------------------------------------------------- compose

    def name(self, colour: str) -> str:
        return f"{self.app}-{colour}"

    def env(self, colour: str, version: str) -> dict[str, str]:
        env = dict(os.environ)
        # -p and -f are given; these would override or extend them.
        for var in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"):
            env.pop(var, None)
        if self.docker_host:
            env.pop("DOCKER_CONTEXT", None)
            env["DOCKER_HOST"] = self.docker_host
        env.update({"APP_IMAGE": f"{self.image}:{version}", "APP_VERSION": version,
                    "APP_PORT": str(self.ports[colour]), "APP_COLOUR": colour})
        return env

    def cli(self, env: dict[str, str] | None = None) -> list[str]:
        """The compose command (found once); DeployError when the compose file or the CLI is missing."""
        if not os.path.isfile(self.compose_file):
            raise DeployError(msg=f"compose file {self.compose_file} does not exist")
        if self._cli is None:
            self._cli = compose_cli(env if env is not None else self.env("blue", "plan"))
        return self._cli

    def override_file(self, colour: str) -> str:
        return os.path.join(self.project_dir, f".streamops-blue-green-{self.name(colour)}.override.yml")

    def run(self, colour: str, version: str, *args: str, override: bool = False) -> str:
        """One compose subcommand on ``colour``'s project (with its override file: ``override``); its output,
        DeployError naming the failure."""
        env = self.env(colour, version)
        cli = self.cli(env)
        files = ["-f", self.compose_file] + (["-f", self.override_file(colour)] if override else [])
        argv = [*cli, "-p", self.name(colour), *files, *args]
        what = f"`{' '.join(argv[len(cli):])}`"
        try:
            result = subprocess.run(argv, env=env, cwd=self.project_dir, capture_output=True, text=True,
                                    timeout=COMPOSE_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DeployError(msg=f"compose {what} did not finish within {COMPOSE_TIMEOUT:g}s") from exc
        except OSError as exc:
            raise DeployError(msg=f"compose {what} could not run: {exc}") from exc
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise DeployError(msg=f"compose {what} failed with exit code {result.returncode}: {tail(output)}")
        return output

    def require_image(self) -> None:
        if not self.image:
            raise DeployError(msg="image (the repository; the version is its tag) is needed to deploy")

    def plan(self, colour: str, version: str, spec: dict[str, Any] | None = None) -> str:
        """The deploy of ``version`` with ``spec`` to ``colour`` in one line; DeployError when it could not run."""
        spec = spec or {}
        self.require_image()
        self.cli()
        verb = "recreate" if self.instances(colour) else "create"
        tuned = (f" and service {self.app_service(colour, version)} tuned by {self.override_file(colour)}"
                 if spec else "")
        return (f"compose project {self.name(colour)}: {verb} from {self.compose_file} with image "
                f"{self.image}:{version} on {LOOPBACK}:{self.ports[colour]}{tuned}")

    def app_service(self, colour: str, version: str) -> str:
        """The service a spec tunes: compose.service, else the compose file's only service."""
        services = self.run(colour, version, "config", "--services").split()
        if self.service is not None:
            if self.service not in services:
                raise DeployError(msg=f"compose service {self.service!r} is not in {self.compose_file} "
                                      f"(it has {', '.join(services) or 'none'})")
            return self.service
        if len(services) != 1:
            raise DeployError(msg=f"{self.compose_file} has the services {', '.join(services) or 'none'}: "
                                  "set compose.service to the one the spec tunes")
        return services[0]

    def up(self, colour: str, version: str, spec: dict[str, Any] | None = None) -> None:
        """Recreate ``colour`` with ``version``; with a spec through the colour's override file, else without one."""
        spec = spec or {}
        self.require_image()
        path = self.override_file(colour)
        if spec:
            write_text(path, json.dumps(override_of(self.app_service(colour, version), spec), indent=1) + "\n")
        elif read_text(path) is not None:
            try:
                os.unlink(path)
            except OSError as exc:
                raise DeployError(msg=f"cannot remove the override file {path} of the previous spec: {exc}") from exc
        self.run(colour, version, "up", "-d", "--force-recreate", override=bool(spec))

    def stop(self, colour: str) -> None:
        versions = {instance.version for instance in self.instances(colour) if instance.version}
        # Compose interpolates the whole file even to stop it; the values do not matter then.
        self.run(colour, versions.pop() if len(versions) == 1 else "retired", "stop")

    # ----------------------------------------------------------------- engine

    def client(self) -> Any:
        if self._client is None:
            if DOCKER_IMPORT_ERROR is not None:
                raise DeployError(msg="the Python library docker (Docker SDK for Python) is required for "
                                      "platform compose", exception=DOCKER_IMPORT_ERROR)
            try:
                self._client = docker_client_from(self.docker_host, timeout=60)
            except DockerEngineError as exc:
                # A deploy step's error type, with the shared helper's message (it names the engine).
                raise DeployError(msg=exc.msg) from exc
        return self._client

    def engine_name(self) -> str:
        return engine_name(self.docker_host)

    def version_of(self, attrs: dict[str, Any]) -> str | None:
        config = attrs.get("Config") or {}
        for item in config.get("Env") or []:
            if item.startswith("APP_VERSION="):
                return item.split("=", 1)[1] or None
        reference = config.get("Image") or ""
        repository, _sep, tag = reference.rpartition(":")
        if self.image and repository == self.image and "/" not in tag:
            return tag
        return None

    def instances(self, colour: str) -> list[Instance]:
        """Every container of the colour's project (any state), one-off `compose run` containers left out."""
        try:
            found = self.client().containers.list(
                all=True, filters={"label": f"{PROJECT_LABEL}={self.name(colour)}"}, ignore_removed=True)
        except (DockerException, OSError) as exc:
            raise DeployError(msg=f"listing the containers of {self.name(colour)} on {self.engine_name()} "
                                  f"failed: {exc}") from exc
        seen = []
        for container in found:
            if (container.labels or {}).get(ONEOFF_LABEL) == "True":
                continue
            state = container.attrs.get("State") or {}
            health = state.get("Health") or {}
            log = health.get("Log") or []
            seen.append(Instance(
                name=container.name, status=state.get("Status") or container.status, health=health.get("Status"),
                exit_code=int(state.get("ExitCode") or 0), restarts=int(container.attrs.get("RestartCount") or 0),
                version=self.version_of(container.attrs),
                health_output=tail(str(log[-1].get("Output") or ""), 200) if log else "", container=container,
                spec=decode_spec((container.labels or {})[SPEC_LABEL]) if SPEC_LABEL in (container.labels or {})
                else None))
        return sorted(seen, key=lambda instance: instance.name)

    # ----------------------------------------------------------------- readiness

    @staticmethod
    def logs_of(instance: Instance) -> str:
        try:
            text = instance.container.logs(tail=5).decode(errors="replace")
        except (DockerException, OSError):
            return ""
        return f"; last output: {tail(text, 300)}" if text.strip() else ""

    def fatal(self, seen: list[Instance], version: str) -> list[str]:
        """Why ``version`` will never become ready (containers of an older version may still be replaced)."""
        problems = []
        for instance in seen:
            if instance.version not in (None, version) or finished(instance):
                continue
            if instance.status in ("exited", "dead"):
                problems.append(f"container {instance.name} exited with code {instance.exit_code}"
                                f"{self.logs_of(instance)}")
            elif instance.health == "unhealthy":
                problems.append(f"container {instance.name} is unhealthy: "
                                f"{instance.health_output or 'its healthcheck failed'}")
            elif instance.status == "restarting" and instance.restarts >= MAX_RESTARTS:
                problems.append(f"container {instance.name} keeps restarting (exit code {instance.exit_code}, "
                                f"{instance.restarts} restarts){self.logs_of(instance)}")
        return problems

    def blockers(self, colour: str, seen: list[Instance], version: str | None) -> list[str]:
        """What keeps the colour from being ready (running ``version``, when given); empty when ready."""
        if not [instance for instance in seen if instance.version is not None]:
            what = f"{self.image}:{version}" if version else "a version"
            return [f"no container of compose project {self.name(colour)} runs {what}"]
        problems = []
        for instance in seen:
            if version is not None and instance.version not in (None, version):
                problems.append(f"{instance.name} runs {instance.version}, not {version}")
            elif instance.status != "running" and not finished(instance):
                code = f" (exit code {instance.exit_code})" if instance.status == "exited" else ""
                problems.append(f"{instance.name} is {instance.status}{code}")
            elif instance.health not in (None, "healthy"):
                problems.append(f"{instance.name} is {instance.health}")
        return problems

    def state(self, colour: str, keep_until: str | None) -> ColourState:
        seen = self.instances(colour)
        if not seen:
            return ColourState(colour)
        versions = sorted({instance.version for instance in seen if instance.version})
        running = [instance for instance in seen if instance.status == "running"]
        blockers = self.blockers(colour, seen, None)
        detail = f"{len(running)}/{len(seen)} containers running"
        if len(versions) > 1:
            detail += f"; mixed versions {', '.join(versions)}"
        specs = {encode_spec(instance.spec or {}) for instance in seen if instance.version is not None}
        if len(specs) > 1:
            detail += "; containers of different specs"
        return ColourState(colour, exists=True, version=versions[0] if len(versions) == 1 else None,
                           ready=not blockers and len(versions) == 1 and len(specs) == 1, replicas=len(running),
                           keep_until=keep_until, detail="; ".join([detail, *blockers]),
                           spec=decode_spec(specs.pop()) if len(specs) == 1 else {})

    def wait_ready(self, colour: str, version: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            seen = self.instances(colour)
            fatal = self.fatal(seen, version)
            if fatal:
                raise DeployError(msg=f"compose project {self.name(colour)}: {'; '.join(fatal)}")
            blockers = self.blockers(colour, seen, version)
            if not blockers:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeployError(msg=f"compose project {self.name(colour)} not ready within {timeout:g}s: "
                                      f"{'; '.join(blockers)}")
            time.sleep(min(self.poll, left))


__all__ = ["ComposeProject", "DOCKER_IMPORT_ERROR", "Instance", "PROJECT_LABEL", "SPEC_LABEL", "compose_cli",
           "override_of"]
