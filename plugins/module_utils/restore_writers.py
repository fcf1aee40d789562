# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The writers of a database, stopped for a production restore and started again exactly as they were.

Two kinds, one interface (``running``, ``stop``, ``start``):

- ``ComposeWriters``: the containers of listed services of a compose project, found on the engine by
  compose's labels. Stopped and started again with the Docker API (the same containers, with the
  configuration compose gave them), so compose's file and its variables are not needed for either.
- ``K8sWriters``: Deployments (by name or label selector) scaled to 0. Each one's replicas are written
  into an annotation on it first, in the same patch, so the operator of a killed run can see what
  to scale back to; ``start`` puts exactly those replicas back and removes the annotation.

The decisions (what to stop, what to start, what a killed run left) are pure functions below the classes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import MaintenanceError
from .records import make_record

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
REPLICAS_ANNOTATION = "streamops.io/restore-replicas"
WRITER_KEYS = ("compose", "kubernetes", "start_timeout")
COMPOSE_KEYS = ("project", "project_dir", "services", "stop_timeout")
K8S_KEYS = ("namespace", "deployments", "selector")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
POLL_SECONDS = 0.5


class WritersError(MaintenanceError):
    """The writers option is wrong, or a writer could not be read, stopped or started."""


@dataclass
class Writer:
    """One thing that writes: a container of a compose service, or a Deployment."""

    name: str  # "container <name>" or "deployment <ns>/<name>"
    running: bool
    state: dict[str, Any] = field(default_factory=dict)  # status / replicas as read before the stop
    handle: Any = None

    def plan_entry(self) -> dict[str, Any]:
        return {"name": self.name, "running": self.running, **self.state}


# --------------------------------------------------------------------------- the option


def check_writers(raw: Any) -> dict[str, Any]:
    """The writers option, checked: exactly one of compose or kubernetes, no unknown keys."""
    if not isinstance(raw, dict) or not raw:
        raise WritersError(msg="writers is required: give writers.compose (project and services) or "
                               "writers.kubernetes (namespace and deployments or selector), the applications "
                               "that write to the database")
    unknown = sorted(set(raw) - set(WRITER_KEYS))
    if unknown:
        raise WritersError(msg=f"writers: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(WRITER_KEYS)}")
    kinds = [kind for kind in ("compose", "kubernetes") if raw.get(kind)]
    if len(kinds) != 1:
        raise WritersError(msg=f"writers: give exactly one of compose or kubernetes, got "
                               f"{' and '.join(kinds) or 'neither'}")
    timeout = raw.get("start_timeout", 120)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise WritersError(msg=f"writers.start_timeout {timeout!r} must be a whole number of seconds, at least 1")
    checked: dict[str, Any] = {"start_timeout": timeout}
    if kinds == ["compose"]:
        checked["compose"] = check_compose(raw["compose"])
    else:
        checked["kubernetes"] = check_kubernetes(raw["kubernetes"])
    return checked


def compose_project_name(project_dir: str) -> str:
    """The project name compose gives a directory: its base name, lower case, only [a-z0-9_-]."""
    base = project_dir.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9_-]", "", base.lower())


def check_compose(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise WritersError(msg=f"writers.compose must be a dict with project and services, got {raw!r}")
    unknown = sorted(set(raw) - set(COMPOSE_KEYS))
    if unknown:
        raise WritersError(msg=f"writers.compose: unknown key(s) {', '.join(unknown)}; "
                               f"allowed: {', '.join(COMPOSE_KEYS)}")
    project = raw.get("project") or (compose_project_name(str(raw["project_dir"])) if raw.get("project_dir") else "")
    if not isinstance(project, str) or not re.match(r"^[a-z0-9][a-z0-9_-]*$", project):
        raise WritersError(msg=f"writers.compose: project {project!r} is not a compose project name "
                               "(give project, or project_dir whose base name is one)")
    services = raw.get("services")
    if not isinstance(services, list) or not services or not all(isinstance(s, str) and s for s in services):
        raise WritersError(msg=f"writers.compose.services {services!r} must list the services that write "
                               "(for example [api-gateway, alarm-engine])")
    stop_timeout = raw.get("stop_timeout", 10)
    if isinstance(stop_timeout, bool) or not isinstance(stop_timeout, int) or stop_timeout < 0:
        raise WritersError(msg=f"writers.compose.stop_timeout {stop_timeout!r} must be whole seconds, 0 or more")
    return {"project": project, "services": list(dict.fromkeys(services)), "stop_timeout": stop_timeout}


def check_kubernetes(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise WritersError(msg=f"writers.kubernetes must be a dict with namespace and deployments or selector, "
                               f"got {raw!r}")
    unknown = sorted(set(raw) - set(K8S_KEYS))
    if unknown:
        raise WritersError(msg=f"writers.kubernetes: unknown key(s) {', '.join(unknown)}; "
                               f"allowed: {', '.join(K8S_KEYS)}")
    namespace = raw.get("namespace")
    if not isinstance(namespace, str) or not DNS_LABEL.match(namespace):
        raise WritersError(msg=f"writers.kubernetes.namespace {namespace!r} is not a namespace name")
    deployments, selector = raw.get("deployments") or [], raw.get("selector") or ""
    if bool(deployments) == bool(selector):
        raise WritersError(msg="writers.kubernetes: give exactly one of deployments (names) or selector "
                               "(a label selector such as app.kubernetes.io/name=stream-api)")
    if deployments and (not isinstance(deployments, list) or not all(
            isinstance(d, str) and DNS_LABEL.match(d) for d in deployments)):
        raise WritersError(msg=f"writers.kubernetes.deployments {deployments!r} must be Deployment names")
    if selector and not isinstance(selector, str):
        raise WritersError(msg=f"writers.kubernetes.selector {selector!r} must be a label selector string")
    return {"namespace": namespace, "deployments": list(dict.fromkeys(deployments)), "selector": selector}


def describe_writers(writers: dict[str, Any]) -> str:
    if "compose" in writers:
        spec = writers["compose"]
        return f"compose project {spec['project']} services {', '.join(spec['services'])}"
    spec = writers["kubernetes"]
    which = ", ".join(spec["deployments"]) if spec["deployments"] else f"selector {spec['selector']}"
    return f"Deployments in namespace {spec['namespace']}: {which}"


# --------------------------------------------------------------------------- pure decisions


def compose_writers(containers: list[dict[str, Any]], services: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """(the containers of the listed services, sorted; the listed services with no container at all).

    ``containers``: {name, service, status, oneoff}. One-off ``compose run`` containers are not writers.
    """
    mine = sorted((c for c in containers if c.get("service") in services and not c.get("oneoff")),
                  key=lambda c: c["name"])
    found = {c["service"] for c in mine}
    return mine, [service for service in services if service not in found]


def replicas_to_restore(annotations: dict[str, str] | None) -> int | None:
    """The replicas a Deployment had before a restore stopped it: its annotation (a run that was killed after
    scaling it to 0), else None (not stopped by a restore)."""
    value = (annotations or {}).get(REPLICAS_ANNOTATION)
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit():
        raise WritersError(msg=f"annotation {REPLICAS_ANNOTATION}={value!r} is not a number of replicas; "
                               "set the replicas by hand and remove the annotation")
    return int(text)


def stop_patch(replicas: int) -> dict[str, Any]:
    """One patch: remember the replicas on the Deployment itself, and scale it to 0."""
    return {"metadata": {"annotations": {REPLICAS_ANNOTATION: str(replicas)}}, "spec": {"replicas": 0}}


def start_patch(replicas: int) -> dict[str, Any]:
    """Scale back to what was recorded and drop the annotation (null removes it in a merge patch)."""
    return {"metadata": {"annotations": {REPLICAS_ANNOTATION: None}}, "spec": {"replicas": replicas}}


# --------------------------------------------------------------------------- compose


class ComposeWriters:
    """The listed services' containers of one compose project, through the Docker API."""

    kind = "compose"

    def __init__(self, client: Any, spec: dict[str, Any], *, engine: str, start_timeout: int,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.project = spec["project"]
        self.services = spec["services"]
        self.stop_timeout = spec["stop_timeout"]
        self.engine = engine
        self.start_timeout = start_timeout
        self.clock = clock
        self.sleep = sleep
        self.stopped: list[Writer] = []

    def _containers(self) -> list[Writer]:
        from .docker_conn import DockerException  # noqa: PLC0415 - docker_conn reports the missing library

        try:
            found = self.client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"},
                                                ignore_removed=True)
        except (DockerException, OSError) as exc:
            raise WritersError(msg=f"listing the containers of compose project {self.project} on {self.engine} "
                                   f"failed: {exc}") from exc
        by_name = {c.name: c for c in found}
        described = [{"name": c.name, "service": (c.labels or {}).get(SERVICE_LABEL),
                      "status": (c.attrs.get("State") or {}).get("Status") or c.status,
                      "oneoff": (c.labels or {}).get(ONEOFF_LABEL) == "True"} for c in found]
        mine, missing = compose_writers(described, self.services)
        if missing:
            raise WritersError(msg=f"compose project {self.project} on {self.engine} has no container of "
                                   f"service(s) {', '.join(missing)}: check writers.compose")
        return [Writer(f"container {c['name']}", c["status"] == "running",
                       {"service": c["service"], "status": c["status"]}, by_name[c["name"]]) for c in mine]

    def running(self) -> list[Writer]:
        return self._containers()

    def stop(self, writers: list[Writer], records: list[dict[str, Any]]) -> None:
        """Stop each running one (recorded), remembering it; a failure raises after recording what was stopped."""
        from .docker_conn import DockerException  # noqa: PLC0415

        for writer in writers:
            if not writer.running:
                records.append(make_record(writer.name, "stop_writer", "unchanged",
                                           f"{writer.state['status']}: not running, so not stopped and not started "
                                           "afterwards", before=writer.state))
                continue
            begun = self.clock()
            try:
                writer.handle.stop(timeout=self.stop_timeout)
                writer.handle.reload()
            except (DockerException, OSError) as exc:
                records.append(make_record(writer.name, "stop_writer", "failed", f"stopping it failed: {exc}",
                                           before=writer.state, seconds=self.clock() - begun))
                raise WritersError(msg=f"stopping {writer.name} failed: {exc}") from exc
            self.stopped.append(writer)
            status = (writer.handle.attrs.get("State") or {}).get("Status")
            records.append(make_record(writer.name, "stop_writer", "done",
                                       f"service {writer.state['service']} stopped ({status})", before=writer.state,
                                       after={"service": writer.state["service"], "status": status},
                                       seconds=self.clock() - begun))

    def start(self, records: list[dict[str, Any]]) -> bool:
        """Start every container this run stopped and wait until each runs (healthy, with a healthcheck)."""
        from .docker_conn import DockerException  # noqa: PLC0415

        started_all = True
        begun = self.clock()
        for writer in self.stopped:
            try:
                writer.handle.start()
            except (DockerException, OSError) as exc:
                started_all = False
                records.append(make_record(writer.name, "start_writer", "failed",
                                           f"starting it failed: {exc}; start it by hand", before=writer.state))
                continue
            problem = self._wait_running(writer, deadline=begun + self.start_timeout)
            state = writer.handle.attrs.get("State") or {}
            after = {"service": writer.state["service"], "status": state.get("Status"),
                     "health": (state.get("Health") or {}).get("Status")}
            if problem:
                started_all = False
                records.append(make_record(writer.name, "start_writer", "failed", problem, before=writer.state,
                                           after=after, seconds=self.clock() - begun))
            else:
                records.append(make_record(writer.name, "start_writer", "done",
                                           f"service {writer.state['service']} running again"
                                           + (f" ({after['health']})" if after["health"] else ""),
                                           before=writer.state, after=after, seconds=self.clock() - begun))
        self.stopped = []
        return started_all

    def _wait_running(self, writer: Writer, *, deadline: float) -> str | None:
        from .docker_conn import DockerException  # noqa: PLC0415

        while True:
            try:
                writer.handle.reload()
            except (DockerException, OSError) as exc:
                return f"started, but cannot be read: {exc}"
            state = writer.handle.attrs.get("State") or {}
            health = (state.get("Health") or {}).get("Status")
            if state.get("Status") == "running" and health in (None, "healthy"):
                return None
            if state.get("Status") in ("exited", "dead"):
                return f"started, but exited with code {state.get('ExitCode')}"
            if self.clock() >= deadline:
                return (f"started, but not running{' healthy' if health else ''} within {self.start_timeout}s "
                        f"({state.get('Status')}{', ' + health if health else ''})")
            self.sleep(POLL_SECONDS)


# --------------------------------------------------------------------------- kubernetes


class K8sWriters:
    """Deployments scaled to 0 and back, their replicas recorded on each of them while stopped."""

    kind = "kubernetes"

    def __init__(self, api_client: Any, spec: dict[str, Any], *, start_timeout: int, request_timeout: int,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        from kubernetes import client as k8s_client  # noqa: PLC0415 - k8s_conn reports the missing library

        self.apps = k8s_client.AppsV1Api(api_client)
        self.namespace = spec["namespace"]
        self.names = spec["deployments"]
        self.selector = spec["selector"]
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self.clock = clock
        self.sleep = sleep
        self.stopped: list[Writer] = []

    def _label(self, name: str) -> str:
        return f"deployment {self.namespace}/{name}"

    def _call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from .k8s_conn import ApiException, reason_of  # noqa: PLC0415

        try:
            return function(*args, _request_timeout=self.request_timeout, **kwargs)
        except ApiException as exc:
            raise WritersError(msg=f"{what}: {exc.status} {reason_of(exc)}", status=exc.status) from exc
        except OSError as exc:
            raise WritersError(msg=f"{what}: cannot reach the Kubernetes API server: {exc}") from exc

    def _writer(self, deployment: Any) -> Writer:
        meta = deployment.metadata
        replicas = deployment.spec.replicas if deployment.spec.replicas is not None else 1
        pending = replicas_to_restore(meta.annotations)
        state = {"replicas": replicas, "ready": (deployment.status.ready_replicas or 0) if deployment.status else 0}
        if pending is not None:
            # A run was killed after scaling it down: what to restore is the annotation, not today's 0.
            raise WritersError(msg=f"{self._label(meta.name)} carries {REPLICAS_ANNOTATION}={pending} from a restore "
                                   f"that did not finish: scale it back to {pending} replicas and remove the "
                                   "annotation first")
        return Writer(self._label(meta.name), replicas > 0, state, meta.name)

    def running(self) -> list[Writer]:
        if self.names:
            found = []
            for name in self.names:
                found.append(self._writer(self._call(f"reading {self._label(name)}",
                                                     self.apps.read_namespaced_deployment, name, self.namespace)))
            return found
        listed = self._call(f"listing the Deployments of {self.namespace} with selector {self.selector}",
                            self.apps.list_namespaced_deployment, self.namespace, label_selector=self.selector)
        if not listed.items:
            raise WritersError(msg=f"no Deployment in namespace {self.namespace} matches selector {self.selector}: "
                                   "check writers.kubernetes")
        return [self._writer(d) for d in sorted(listed.items, key=lambda d: d.metadata.name)]

    def stop(self, writers: list[Writer], records: list[dict[str, Any]]) -> None:
        for writer in writers:
            if not writer.running:
                records.append(make_record(writer.name, "stop_writer", "unchanged",
                                           "0 replicas: not running, so not scaled and not started afterwards",
                                           before=writer.state))
                continue
            begun = self.clock()
            try:
                self._call(f"scaling {writer.name} to 0", self.apps.patch_namespaced_deployment, writer.handle,
                           self.namespace, stop_patch(writer.state["replicas"]))
                self.stopped.append(writer)
                problem = self._wait(writer.handle, 0, deadline=begun + self.start_timeout)
            except WritersError as exc:
                records.append(make_record(writer.name, "stop_writer", "failed", exc.msg, before=writer.state,
                                           seconds=self.clock() - begun))
                raise
            if problem:
                records.append(make_record(writer.name, "stop_writer", "failed", problem, before=writer.state,
                                           seconds=self.clock() - begun))
                raise WritersError(msg=f"{writer.name}: {problem}")
            records.append(make_record(writer.name, "stop_writer", "done",
                                       f"scaled {writer.state['replicas']} -> 0 (annotation {REPLICAS_ANNOTATION}="
                                       f"{writer.state['replicas']} until it is started again)",
                                       before=writer.state, after={"replicas": 0, "ready": 0},
                                       seconds=self.clock() - begun))

    def start(self, records: list[dict[str, Any]]) -> bool:
        started_all = True
        begun = self.clock()
        patched = []
        for writer in self.stopped:
            try:
                self._call(f"scaling {writer.name} back", self.apps.patch_namespaced_deployment, writer.handle,
                           self.namespace, start_patch(writer.state["replicas"]))
                patched.append(writer)
            except WritersError as exc:
                started_all = False
                records.append(make_record(writer.name, "start_writer", "failed",
                                           f"{exc.msg}; scale it to {writer.state['replicas']} by hand",
                                           before=writer.state))
        for writer in patched:
            problem = self._wait(writer.handle, writer.state["replicas"], deadline=begun + self.start_timeout)
            after = {"replicas": writer.state["replicas"]}
            if problem:
                started_all = False
                records.append(make_record(writer.name, "start_writer", "failed", f"scaled back, but {problem}",
                                           before={"replicas": 0}, after=after, seconds=self.clock() - begun))
            else:
                records.append(make_record(writer.name, "start_writer", "done",
                                           f"scaled 0 -> {writer.state['replicas']}, every replica ready",
                                           before={"replicas": 0}, after={**after, "ready": writer.state["replicas"]},
                                           seconds=self.clock() - begun))
        self.stopped = []
        return started_all

    def _wait(self, name: str, replicas: int, *, deadline: float) -> str | None:
        """None once the Deployment has exactly ``replicas`` pods, all ready (0: every pod gone)."""
        while True:
            deployment = self._call(f"reading {self._label(name)}", self.apps.read_namespaced_deployment, name,
                                    self.namespace)
            status = deployment.status
            total, ready = (status.replicas or 0), (status.ready_replicas or 0)
            generation_seen = (status.observed_generation or 0) >= (deployment.metadata.generation or 0)
            if generation_seen and total == replicas and ready == replicas:
                return None
            if self.clock() >= deadline:
                return f"{ready} of {replicas} replica(s) ready, {total} pod(s) after {self.start_timeout}s"
            self.sleep(POLL_SECONDS)
