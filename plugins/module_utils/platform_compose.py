# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Blue/green on docker compose: projects ``<app>-blue``/``<app>-green`` behind an nginx upstream file.

Both colours run the same compose file; the driver tells them apart by the
environment it gives compose (APP_IMAGE, APP_VERSION, APP_PORT, APP_COLOUR).
What runs is read from the engine with the Docker SDK, never from compose's
output; which colour has the traffic is what the nginx upstream file says.

The switch rewrites that file atomically, has nginx test the whole
configuration (the old file comes back when the test fails) and reloads nginx
gracefully: the master starts workers with the new upstream and tells the old
ones to stop accepting and finish what they are serving, so no request fails.
It returns once every worker that still accepts requests is one of the new
workers, i.e. once every new request goes to the new colour. History and keep
times live in a JSON state file beside the project.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from .blue_green import COLOURS, ColourState, DeployError

try:
    import docker
    from docker.errors import DockerException
except ImportError:
    docker = None
    DOCKER_IMPORT_ERROR: str | None = traceback.format_exc()

    class DockerException(Exception):  # type: ignore[no-redef]
        """Stands in so the except clauses below still evaluate without the SDK."""
else:
    DOCKER_IMPORT_ERROR = None

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
LOOPBACK = "127.0.0.1"
# Compose normalises other project names (case, characters); the label
# filters below only find the containers when the name is already normal.
APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Docker's tag grammar.
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
COMPOSE_TIMEOUT = 900.0
NGINX_TIMEOUT = 60.0
SWITCH_TIMEOUT = 5.0
# A container that restarts this often is crash-looping, not starting.
MAX_RESTARTS = 3
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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


def ports_of(ports: Any) -> dict[str, int]:
    if not isinstance(ports, dict):
        raise DeployError(msg=f"compose ports must be a dict like {{blue: 8081, green: 8082}}, got {ports!r}")
    if set(ports) != set(COLOURS):
        raise DeployError(msg=f"compose ports must name exactly blue and green, got {sorted(map(str, ports))}")
    checked = {}
    for colour in COLOURS:
        value = ports[colour]
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= 65535:
            raise DeployError(msg=f"compose ports.{colour} {value!r} is not a TCP port (1-65535)")
        checked[colour] = int(text)
    if checked["blue"] == checked["green"]:
        raise DeployError(msg=f"compose ports.blue and ports.green are both {checked['blue']}: each colour "
                              "needs its own port")
    return checked


def absolute(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or not os.path.isabs(value):
        raise DeployError(msg=f"{what} {value!r} must be an absolute path")
    return os.path.normpath(value)


def front_url_of(value: Any) -> str:
    parsed = urllib.parse.urlsplit(value if isinstance(value, str) else "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise DeployError(msg=f"compose front_url {value!r} must be an http(s) URL such as http://127.0.0.1:8080")
    return value.rstrip("/")


def tail(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def nginx_problem(output: str) -> str:
    """The lines of nginx's output that say what is wrong, without the boilerplate."""
    lines = [re.sub(r"^.*?\[(emerg|alert|crit|error)\] (\d+#\d+: )?", r"[\1] ", line)
             for line in output.splitlines() if re.search(r"\[(emerg|alert|crit|error)\]", line)]
    return tail("; ".join(lines) if lines else output)


def write_atomically(path: str, text: str, mode: int) -> None:
    """Readers see the old content or the new one, never a part (temp file in the same dir, fsync, rename)."""
    directory = os.path.dirname(path)
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise DeployError(msg=f"cannot write {path}: {exc}") from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except OSError as exc:
        if os.path.exists(temp):
            os.unlink(temp)
        raise DeployError(msg=f"cannot write {path}: {exc}") from exc
    try:
        # The rename itself is durable only once the directory is synced.
        directory_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory_fd)
    except OSError:
        pass
    finally:
        os.close(directory_fd)


def read_text(path: str) -> str | None:
    """The file's content, None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployError(msg=f"cannot read {path}: {exc}") from exc


def mode_of(path: str, default: int = 0o644) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return default


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


def proc_workers(master: int) -> dict[int, bool] | None:
    """nginx worker processes of ``master``: pid -> draining; None when /proc cannot tell (not Linux)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    workers = {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stream:
                stat = stream.read().decode(errors="replace")
            if int(stat.rsplit(")", 1)[1].split()[1]) != master:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as stream:
                title = stream.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            # Gone between listdir and open: it is no worker any more.
            continue
        # nginx rewrites its workers' titles; a worker told to quit by a
        # reload becomes "worker process is shutting down" and no longer accepts.
        if "worker process" in title:
            workers[int(entry)] = "shutting down" in title
    return workers


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, it is only not ours
    return True


class ComposePlatform:
    kind = "compose"
    switch_timeout = SWITCH_TIMEOUT

    def __init__(self, *, app: str, project_dir: str, compose_file: str | None, image: str, ports: dict[str, int],
                 nginx_upstream_file: str, nginx_conf: str, nginx_binary: str = "nginx", front_url: str,
                 docker_host: str | None = None, state_file: str | None = None,
                 ready_timeout_poll: float = 0.2) -> None:
        if not isinstance(app, str) or not APP_NAME.match(app):
            raise DeployError(msg=f"app {app!r} cannot name compose projects and an nginx upstream: use "
                                  "lowercase letters, digits, '-' and '_', starting with a letter or digit")
        self.app = app
        self.project_dir = absolute(project_dir, "compose project_dir")
        if not os.path.isdir(self.project_dir):
            raise DeployError(msg=f"compose project_dir {self.project_dir} is not a directory")
        # A relative compose file is where the documentation puts the default one: in project_dir.
        self.compose_file = os.path.normpath(os.path.join(self.project_dir, compose_file or "docker-compose.yml"))
        image = image or ""
        if any(ch in image for ch in " @\t\n") or ":" in image.rsplit("/", 1)[-1]:
            raise DeployError(msg=f"image {image!r} must be a repository without tag or digest "
                                  "(the version is the tag)")
        self.image = image
        self.ports = ports_of(ports)
        self.nginx_upstream_file = absolute(nginx_upstream_file, "compose nginx_upstream_file")
        self.nginx_conf = absolute(nginx_conf, "compose nginx_conf")
        if not isinstance(nginx_binary, str) or not nginx_binary.strip():
            raise DeployError(msg=f"compose nginx_binary {nginx_binary!r} must name the nginx executable")
        self.nginx_binary = nginx_binary
        self.front_url = front_url_of(front_url)
        if docker_host is not None and (not isinstance(docker_host, str) or not docker_host.strip()):
            raise DeployError(msg=f"compose docker_host {docker_host!r} must be an engine address "
                                  "such as unix:///run/docker.sock")
        self.docker_host = docker_host
        default_state = os.path.join(self.project_dir, f".streamops-blue-green-{app}.json")
        self.state_file = absolute(state_file, "compose state_file") if state_file else default_state
        if not isinstance(ready_timeout_poll, (int, float)) or ready_timeout_poll <= 0:
            raise DeployError(msg=f"ready_timeout_poll {ready_timeout_poll!r} must be above 0 seconds")
        self.poll = float(ready_timeout_poll)
        self._client: Any = None
        self._compose: list[str] | None = None

    # ----------------------------------------------------------------- compose

    def project(self, colour: str) -> str:
        return f"{self.app}-{colour}"

    def compose_env(self, colour: str, version: str) -> dict[str, str]:
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

    def run_compose(self, colour: str, version: str, *args: str) -> str:
        """One compose subcommand on ``colour``'s project; its output, DeployError naming the failure."""
        if not os.path.isfile(self.compose_file):
            raise DeployError(msg=f"compose file {self.compose_file} does not exist")
        env = self.compose_env(colour, version)
        if self._compose is None:
            self._compose = compose_cli(env)
        argv = [*self._compose, "-p", self.project(colour), "-f", self.compose_file, *args]
        what = f"`{' '.join(argv[len(self._compose):])}`"
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

    # ----------------------------------------------------------------- engine

    def client(self) -> Any:
        if self._client is None:
            if docker is None:
                raise DeployError(msg="the Python library docker (Docker SDK for Python) is required for "
                                      "platform compose", exception=DOCKER_IMPORT_ERROR)
            try:
                if self.docker_host:
                    self._client = docker.DockerClient(base_url=self.docker_host, version="auto", timeout=60)
                else:
                    self._client = docker.from_env(version="auto", timeout=60)
            except (DockerException, OSError) as exc:
                raise DeployError(msg=f"cannot reach the Docker engine at {self.engine_name()}: {exc}") from exc
        return self._client

    def engine_name(self) -> str:
        return self.docker_host or os.environ.get("DOCKER_HOST") or "the default socket"

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
                all=True, filters={"label": f"{PROJECT_LABEL}={self.project(colour)}"}, ignore_removed=True)
        except (DockerException, OSError) as exc:
            raise DeployError(msg=f"listing the containers of {self.project(colour)} on {self.engine_name()} "
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
                health_output=tail(str(log[-1].get("Output") or ""), 200) if log else "", container=container))
        return sorted(seen, key=lambda instance: instance.name)

    @staticmethod
    def finished(instance: Instance) -> bool:
        """A sidecar that ran to completion (an init job), which does not make the colour unready."""
        return instance.version is None and instance.status == "exited" and instance.exit_code == 0

    def logs_of(self, instance: Instance) -> str:
        try:
            text = instance.container.logs(tail=5).decode(errors="replace")
        except (DockerException, OSError):
            return ""
        return f"; last output: {tail(text, 300)}" if text.strip() else ""

    def fatal(self, seen: list[Instance], version: str) -> list[str]:
        """Why ``version`` will never become ready (containers of an older version may still be replaced)."""
        problems = []
        for instance in seen:
            if instance.version not in (None, version) or self.finished(instance):
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
            return [f"no container of compose project {self.project(colour)} runs {what}"]
        problems = []
        for instance in seen:
            if version is not None and instance.version not in (None, version):
                problems.append(f"{instance.name} runs {instance.version}, not {version}")
            elif instance.status != "running" and not self.finished(instance):
                code = f" (exit code {instance.exit_code})" if instance.status == "exited" else ""
                problems.append(f"{instance.name} is {instance.status}{code}")
            elif instance.health not in (None, "healthy"):
                problems.append(f"{instance.name} is {instance.health}")
        return problems

    # ----------------------------------------------------------------- the Platform protocol

    def colours(self) -> dict[str, ColourState]:
        kept = self.read_state()["kept"]
        states = {}
        for colour in COLOURS:
            seen = self.instances(colour)
            if not seen:
                states[colour] = ColourState(colour)
                continue
            versions = sorted({instance.version for instance in seen if instance.version})
            running = [instance for instance in seen if instance.status == "running"]
            blockers = self.blockers(colour, seen, None)
            detail = f"{len(running)}/{len(seen)} containers running"
            if len(versions) > 1:
                detail += f"; mixed versions {', '.join(versions)}"
            states[colour] = ColourState(
                colour, exists=True, version=versions[0] if len(versions) == 1 else None,
                ready=not blockers and len(versions) == 1, replicas=len(running), keep_until=kept.get(colour),
                detail="; ".join([detail, *blockers]))
        return states

    def active(self) -> str | None:
        text = read_text(self.nginx_upstream_file)
        if text is None:
            return None
        servers = re.findall(r"\bserver\s+([^\s;]+)", re.sub(r"#[^\n]*", "", text))
        if not servers:
            raise DeployError(msg=f"nginx upstream file {self.nginx_upstream_file} has no `server` line")
        by_port = {port: colour for colour, port in self.ports.items()}
        found = set()
        for server in servers:
            port = server.rpartition(":")[2]
            found.add(by_port.get(int(port)) if port.isdigit() else None)
        if len(found) == 1:
            # A front that points at neither colour (the app before blue/green) has no colour yet:
            # the first deploy takes it over.
            return found.pop()
        raise DeployError(msg=f"nginx upstream file {self.nginx_upstream_file} points at {', '.join(servers)}, "
                              f"which is not one colour (blue is {LOOPBACK}:{self.ports['blue']}, green is "
                              f"{LOOPBACK}:{self.ports['green']}); point it at one of them by hand")

    def plan(self, colour: str, version: str) -> list[str]:
        self.require_image()
        port = self.ports[colour]
        verb = "recreate" if self.instances(colour) else "create"
        return [f"compose project {self.project(colour)}: {verb} from {self.compose_file} with image "
                f"{self.image}:{version} on {LOOPBACK}:{port}",
                f"nginx upstream file {self.nginx_upstream_file}: server {LOOPBACK}:{port} ({colour}), "
                "nginx -T (the test) and a graceful reload"]

    def deploy(self, colour: str, version: str) -> None:
        self.require_image()
        if not isinstance(version, str) or not IMAGE_TAG.match(version):
            raise DeployError(msg=f"version {version!r} is not an image tag")
        self.run_compose(colour, version, "up", "-d", "--force-recreate")
        # A fresh deploy is nobody's kept previous version.
        self.forget_kept(colour)

    def wait_ready(self, colour: str, version: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            seen = self.instances(colour)
            fatal = self.fatal(seen, version)
            if fatal:
                raise DeployError(msg=f"compose project {self.project(colour)}: {'; '.join(fatal)}")
            blockers = self.blockers(colour, seen, version)
            if not blockers:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeployError(msg=f"compose project {self.project(colour)} not ready within {timeout:g}s: "
                                      f"{'; '.join(blockers)}")
            time.sleep(min(self.poll, left))

    def targets(self, colour: str) -> list[str]:
        return [f"http://{LOOPBACK}:{self.ports[colour]}"]

    def front_targets(self) -> list[str]:
        return [self.front_url]

    def switch(self, colour: str) -> None:
        path = self.nginx_upstream_file
        if not os.path.isdir(os.path.dirname(path)):
            raise DeployError(msg=f"the directory of nginx upstream file {path} does not exist")
        old = read_text(path)
        mode = mode_of(path)
        write_atomically(path, self.upstream_text(colour), mode)
        problem, dump = self.nginx("-T")
        if problem:
            self.restore(path, old, mode)
            raise DeployError(msg=f"nginx rejects the configuration with {path} pointing at {colour}: {problem}; "
                                  f"{path} is restored, the traffic did not move")
        master = self.nginx_master(dump)
        before = proc_workers(master) if master else None
        problem, _dump = self.nginx("-s", "reload")
        if problem:
            self.restore(path, old, mode)
            raise DeployError(msg=f"nginx reload failed: {problem}; {path} is restored, the traffic did not move")
        if master and before:
            if not self.wait_new_workers(master, set(before)):
                self.restore(path, old, mode)
                self.nginx("-s", "reload")
                raise DeployError(msg=f"nginx (master {master}) did not start workers with {colour}'s upstream "
                                      f"within {self.switch_timeout:g}s (see nginx's error log); {path} is "
                                      "restored and nginx reloaded with it")
            return
        # No master or workers to watch (no pid file, master_process off, not Linux): the
        # reload is graceful all the same; wait until the front answers again.
        self.wait_front_answers(time.monotonic() + self.switch_timeout)

    def history(self) -> list[dict[str, Any]]:
        return self.read_state()["history"]

    def save_history(self, entries: list[dict[str, Any]]) -> None:
        state = self.read_state()
        state["history"] = list(entries)
        self.write_state(state)

    def mark_kept(self, colour: str, until: str | None) -> None:
        state = self.read_state()
        state["kept"][colour] = until
        self.write_state(state)

    def retire(self, colour: str) -> None:
        versions = {instance.version for instance in self.instances(colour) if instance.version}
        # Compose interpolates the whole file even to stop it; the values do not matter then.
        self.run_compose(colour, versions.pop() if len(versions) == 1 else "retired", "stop")
        self.forget_kept(colour)

    # ----------------------------------------------------------------- helpers

    def require_image(self) -> None:
        if not self.image:
            raise DeployError(msg="image (the repository; the version is its tag) is needed to deploy")

    def upstream_text(self, colour: str) -> str:
        return (f"# Written by streamops.maintenance blue_green_deploy: traffic of {self.app} goes to {colour} "
                f"(compose project {self.project(colour)}).\n# Rewritten on every switch; edits are lost.\n"
                f"upstream {self.app} {{ server {LOOPBACK}:{self.ports[colour]}; }}\n")

    def restore(self, path: str, old: str | None, mode: int) -> None:
        if old is not None:
            write_atomically(path, old, mode)
            return
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise DeployError(msg=f"cannot remove {path} again: {exc}") from exc

    def nginx(self, *args: str) -> tuple[str | None, str]:
        """Run nginx with the configuration: (what went wrong or None, stdout)."""
        argv = [self.nginx_binary, *args, "-c", self.nginx_conf]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=NGINX_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(argv)}` did not finish within {NGINX_TIMEOUT:g}s", ""
        except OSError as exc:
            return f"`{' '.join(argv)}` could not run: {exc}", ""
        if result.returncode != 0:
            return f"`{' '.join(argv)}` exited with {result.returncode}: {nginx_problem(result.stderr)}", ""
        return None, result.stdout

    def nginx_master(self, dump: str) -> int | None:
        """PID of the running nginx master, from the pid file its configuration names; None when unknown."""
        match = re.search(r"^\s*pid\s+\"?([^\s;\"]+)\"?\s*;", dump, re.MULTILINE)
        pid_file = match.group(1) if match else self.nginx_build_option("pid-path") or "logs/nginx.pid"
        if not os.path.isabs(pid_file):
            pid_file = os.path.join(self.nginx_build_option("prefix") or "/usr/local/nginx", pid_file)
        try:
            with open(pid_file, encoding="utf-8") as stream:
                text = stream.read().strip()
        except (OSError, UnicodeDecodeError):
            # The switch is under way (the new file is in place): not knowing the master only
            # means waiting for the front instead of watching the workers.
            return None
        if not text.isdigit():
            return None
        pid = int(text)
        return pid if pid_alive(pid) else None

    def nginx_build_option(self, name: str) -> str | None:
        try:
            result = subprocess.run([self.nginx_binary, "-V"], capture_output=True, text=True,
                                    timeout=NGINX_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        match = re.search(rf"--{name}=(\S+)", result.stderr + result.stdout)
        return match.group(1) if match else None

    def wait_new_workers(self, master: int, before: set[int]) -> bool:
        """True once the master runs new workers and every old one drains (accepts no new request) or is gone."""
        deadline = time.monotonic() + self.switch_timeout
        while True:
            workers = proc_workers(master) or {}
            accepting = {pid for pid, draining in workers.items() if not draining}
            if accepting and not accepting & before:
                return True
            if time.monotonic() > deadline or not pid_alive(master):
                return False
            time.sleep(0.01)

    def wait_front_answers(self, deadline: float) -> bool:
        while True:
            try:
                with _DIRECT.open(self.front_url, timeout=1):
                    return True
            except urllib.error.HTTPError:
                # Any HTTP answer is nginx answering; the post-switch checks judge the content.
                return True
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def read_state(self) -> dict[str, Any]:
        text = read_text(self.state_file)
        if text is None:
            return {"history": [], "kept": {}}
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DeployError(msg=f"state file {self.state_file} is not JSON ({exc}); move it away to start "
                                  "a new history") from exc
        if not isinstance(data, dict):
            raise DeployError(msg=f"state file {self.state_file} does not hold a JSON object")
        history = data.get("history")
        kept = data.get("kept")
        return {"history": history if isinstance(history, list) else [],
                "kept": kept if isinstance(kept, dict) else {}}

    def write_state(self, state: dict[str, Any]) -> None:
        write_atomically(self.state_file, json.dumps(state, indent=1, sort_keys=True) + "\n",
                         mode_of(self.state_file))

    def forget_kept(self, colour: str) -> None:
        state = self.read_state()
        if colour in state["kept"]:
            del state["kept"][colour]
            self.write_state(state)


__all__ = ["ComposePlatform", "DOCKER_IMPORT_ERROR"]
