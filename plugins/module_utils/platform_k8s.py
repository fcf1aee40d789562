# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Blue/green on Kubernetes: Deployments ``<app>-blue``/``<app>-green``, a Service whose selector picks the colour.

Readiness is the Deployment's own rollout status (observed generation, updated
and available replicas) plus the pods' waiting reasons for a fast, named
failure; the switch is one patch of the Service selector, done when the
Service's Endpoints hold only the new colour's pods. History lives in an
annotation of the Service, so rollback never guesses.
"""

from __future__ import annotations

import copy
import json
import re
import time
from typing import Any

from .blue_green import COLOURS, ColourState, DeployError, check_image_tag, other, tail
from .blue_green_spec import decode_spec, encode_spec, spec_changes
from .k8s_conn import KUBERNETES_IMPORT_ERROR, ApiException, K8sConnectionError, k8s_client, reason_of
from .k8s_conn import api_client_from as _api_client_from

try:
    from kubernetes import watch as k8s_watch
    from urllib3.exceptions import HTTPError as Urllib3Error
except ImportError:
    k8s_watch = None  # KUBERNETES_IMPORT_ERROR (k8s_conn) already says the library is missing

    class Urllib3Error(Exception):  # type: ignore[no-redef]
        """Stands in for urllib3's base error when the kubernetes library (and urllib3) are missing."""

__all__ = ["KUBERNETES_IMPORT_ERROR", "K8sPlatform", "api_client_from", "reason_of"]

ANNOTATION = "streamops.io/"
HISTORY = ANNOTATION + "blue-green-history"
VERSION = ANNOTATION + "version"
KEEP_UNTIL = ANNOTATION + "keep-until"
# On the pod template: the spec (env, resources) the module gave the app container, so it rolls out with it.
SPEC = ANNOTATION + "spec"
VERSION_LABEL = "app.kubernetes.io/version"
FATAL_WAITING = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CrashLoopBackOff",
                 "CreateContainerConfigError", "CreateContainerError", "RunContainerError")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


def spec_patch(container: dict[str, Any], previous: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The strategic-merge patch of one container (serialized, camelCase) from the ``previous`` spec to ``spec``.

    Variables of ``spec`` are set (a ``valueFrom`` of the same name goes); those only ``previous`` set are
    deleted; the resources become exactly ``spec``'s, and are cleared when only ``previous`` had some.
    """
    patch: dict[str, Any] = {}
    wanted = spec.get("env") or {}
    gone = sorted(set(previous.get("env") or {}) - set(wanted))
    present = {item.get("name"): item for item in container.get("env") or []}
    env = [{"name": name, "value": value} for name, value in sorted(wanted.items())]
    # A variable the manifest fills from a field or secret becomes the plain value.
    env = [{**item, "valueFrom": None} if (present.get(item["name"]) or {}).get("valueFrom") else item
           for item in env]
    env += [{"name": name, "$patch": "delete"} for name in gone if name in present]
    if env:
        patch["env"] = env
    if spec.get("resources") or previous.get("resources"):
        now = container.get("resources") or {}
        desired = spec.get("resources") or {}
        resources = {}
        for part in ("requests", "limits"):
            values = {key: None for key in now.get(part) or {}}
            values.update(desired.get(part) or {})
            if values:
                resources[part] = values
        if resources:
            patch["resources"] = resources
    return patch


def map_patch(current: dict[str, str] | None, wanted: dict[str, str | None]) -> dict[str, str | None]:
    """The entries of a labels or annotations patch: None removes a key, and is left out where there is no such key.

    Sent into a template that had no annotations yet, such a null was stored as "" (Kubernetes 1.20), and the next
    deploy's null removed it: a re-run of the same deploy changed the template and rolled the colour's pods again.
    """
    current = current or {}
    return {key: value for key, value in wanted.items() if value is not None or key in current}


def with_spec(container: dict[str, Any], previous: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The whole container (serialized) with ``spec`` in place of ``previous``: what ``spec_patch`` makes of it."""
    wanted = spec.get("env") or {}
    dropped = set(previous.get("env") or {}) | set(wanted)
    env = [item for item in container.get("env") or [] if item.get("name") not in dropped]
    env += [{"name": name, "value": value} for name, value in sorted(wanted.items())]
    changed = {**container, "env": env}
    if spec.get("resources") or previous.get("resources"):
        changed["resources"] = copy.deepcopy(spec.get("resources") or {})
    return changed


def api_client_from(kubeconfig: str | None, context: str | None) -> Any:
    """k8s_conn's client; blue_green_deploy keeps failing with its own DeployError."""
    try:
        return _api_client_from(kubeconfig, context)
    except K8sConnectionError as exc:
        raise DeployError(msg=exc.msg) from exc


class K8sPlatform:
    kind = "kubernetes"

    def __init__(self, api_client: Any, *, namespace: str, app: str, image: str, container: str | None = None,
                 service: str | None = None, preview_service: str | None = None, colour_label: str = "color",
                 port_name: str | None = None, switch_timeout: float = 30.0) -> None:
        self.apps = k8s_client.AppsV1Api(api_client)
        self.core = k8s_client.CoreV1Api(api_client)
        self.namespace = namespace
        self.app = app
        self.image = image
        self.container = container or app
        self.service = service or app
        self.preview_service = preview_service
        self.colour_label = colour_label
        self.port_name = port_name
        self.switch_timeout = switch_timeout

    # ----------------------------------------------------------------- reading

    def name(self, colour: str) -> str:
        return f"{self.app}-{colour}"

    def unreachable(self, what: str, exc: Exception) -> DeployError:
        # An API server that does not answer raises urllib3's errors, not ApiException: a traceback before this.
        return DeployError(msg=f"Kubernetes {what} in namespace {self.namespace} failed: cannot reach the "
                               f"Kubernetes API server: {exc}")

    def call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except ApiException as exc:
            raise DeployError(msg=f"Kubernetes {what} in namespace {self.namespace} failed: "
                                  f"{exc.status} {reason_of(exc)}") from exc
        except Urllib3Error as exc:
            raise self.unreachable(what, exc) from exc

    def deployment(self, colour: str) -> Any | None:
        try:
            return self.apps.read_namespaced_deployment(self.name(colour), self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise DeployError(msg=f"reading Deployment {self.name(colour)} failed: {exc.status} {reason_of(exc)}") from exc
        except Urllib3Error as exc:
            raise self.unreachable(f"reading Deployment {self.name(colour)}", exc) from exc

    def read_service(self, name: str) -> Any:
        return self.call(f"reading Service {name}", self.core.read_namespaced_service, name, self.namespace)

    def container_of(self, deployment: Any) -> Any:
        for container in deployment.spec.template.spec.containers:
            if container.name == self.container:
                return container
        raise DeployError(msg=f"Deployment {deployment.metadata.name} has no container {self.container!r} "
                              f"(it has {', '.join(c.name for c in deployment.spec.template.spec.containers)})")

    def version_of(self, deployment: Any) -> str | None:
        annotations = deployment.metadata.annotations or {}
        if annotations.get(VERSION):
            return annotations[VERSION]
        image = self.container_of(deployment).image or ""
        return image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else None

    @staticmethod
    def spec_of(deployment: Any) -> dict[str, Any]:
        """The spec the module gave the app container, from the pod template ({} when none)."""
        return decode_spec((deployment.spec.template.metadata.annotations or {}).get(SPEC))

    @staticmethod
    def rolled_out(deployment: Any) -> bool:
        status, wanted = deployment.status, deployment.spec.replicas or 0
        return (wanted > 0 and (status.observed_generation or 0) >= (deployment.metadata.generation or 0)
                and (status.updated_replicas or 0) == wanted and (status.available_replicas or 0) == wanted
                and (status.ready_replicas or 0) == wanted and (status.replicas or 0) == wanted)

    def colours(self) -> dict[str, ColourState]:
        states = {}
        for colour in COLOURS:
            deployment = self.deployment(colour)
            if deployment is None:
                states[colour] = ColourState(colour)
                continue
            status = deployment.status
            states[colour] = ColourState(
                colour, exists=True, version=self.version_of(deployment), ready=self.rolled_out(deployment),
                replicas=deployment.spec.replicas or 0,
                keep_until=(deployment.metadata.annotations or {}).get(KEEP_UNTIL),
                detail=f"{status.ready_replicas or 0}/{deployment.spec.replicas or 0} ready",
                spec=self.spec_of(deployment))
        return states

    def active(self) -> str | None:
        selector = self.read_service(self.service).spec.selector or {}
        colour = selector.get(self.colour_label)
        return colour if colour in COLOURS else None

    def plan(self, colour: str, version: str, spec: dict[str, Any] | None = None) -> list[str]:
        existing = self.deployment(colour)
        source = existing if existing is not None else self.deployment(other(colour))
        if source is None:
            raise DeployError(msg=self.nothing_to_copy())
        # The deploy changes this container's image: a missing one fails here, before anything changes.
        self.container_of(source)
        verb = "update" if existing is not None else "create (copied from the other colour)"
        changes = spec_changes(self.spec_of(source), spec or {})
        tuned = f", container {self.container}: {changes}" if changes else ""
        return [f"Deployment {self.namespace}/{self.name(colour)}: {verb}, image {self.image}:{version}{tuned}",
                f"Service {self.namespace}/{self.service}: selector {self.colour_label}={colour}"]

    # ----------------------------------------------------------------- acting

    def deploy(self, colour: str, version: str, spec: dict[str, Any] | None = None) -> None:
        image = f"{self.image}:{check_image_tag(version, 'version')}"
        spec = spec or {}
        label = version if LABEL_VALUE.match(version) else None
        existing = self.deployment(colour)
        source = self.deployment(other(colour))
        replicas = max(1, (source.spec.replicas or 0) if source is not None else 0,
                       (existing.spec.replicas or 0) if existing is not None else 0)
        recorded = encode_spec(spec) if spec else None
        if existing is not None:
            serialize = self.apps.api_client.sanitize_for_serialization
            app_container = {**spec_patch(serialize(self.container_of(existing)), self.spec_of(existing), spec),
                             "name": self.container, "image": image}
            containers = [app_container if c.name == self.container else {"name": c.name}
                          for c in existing.spec.template.spec.containers]
            template = existing.spec.template.metadata
            patch = {"metadata": {"annotations": map_patch(existing.metadata.annotations,
                                                           {VERSION: version, KEEP_UNTIL: None})},
                     "spec": {"replicas": replicas, "template": {
                         "metadata": {"labels": map_patch(template.labels, {VERSION_LABEL: label}),
                                      "annotations": map_patch(template.annotations,
                                                               {VERSION: version, SPEC: recorded})},
                         "spec": {"containers": containers}}}}
            self.call(f"updating Deployment {self.name(colour)}", self.apps.patch_namespaced_deployment,
                      self.name(colour), self.namespace, patch)
            return
        if source is None:
            raise DeployError(msg=self.nothing_to_copy())
        body = self.apps.api_client.sanitize_for_serialization(source)
        body = {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": self.name(colour), "namespace": self.namespace,
                             "labels": {**(body["metadata"].get("labels") or {}), self.colour_label: colour},
                             "annotations": {VERSION: version}},
                "spec": copy.deepcopy(body["spec"])}
        deployment_spec = body["spec"]
        deployment_spec["replicas"] = replicas
        deployment_spec["selector"]["matchLabels"][self.colour_label] = colour
        template = deployment_spec["template"]["metadata"]
        template["labels"] = {**(template.get("labels") or {}), self.colour_label: colour}
        if label:
            template["labels"][VERSION_LABEL] = label
        previous = decode_spec((template.get("annotations") or {}).get(SPEC))
        template["annotations"] = {**(template.get("annotations") or {}), VERSION: version}
        template["annotations"].pop(SPEC, None)
        if recorded:
            template["annotations"][SPEC] = recorded
        containers = deployment_spec["template"]["spec"]["containers"]
        for position, container in enumerate(containers):
            if container["name"] == self.container:
                containers[position] = {**with_spec(container, previous, spec), "image": image}
        self.call(f"creating Deployment {self.name(colour)}", self.apps.create_namespaced_deployment,
                  self.namespace, body)

    def nothing_to_copy(self) -> str:
        return (f"neither {self.name('blue')} nor {self.name('green')} exists in namespace {self.namespace}: "
                "create one of them first (the other is copied from it)")

    def template_key(self, pod_or_template: Any) -> tuple[str | None, ...]:
        """What tells one pod template from another here: the app container's image, and the version and spec
        the deploy wrote on it."""
        annotations = pod_or_template.metadata.annotations or {}
        image = next((c.image for c in pod_or_template.spec.containers if c.name == self.container), None)
        return image, annotations.get(VERSION), annotations.get(SPEC)

    def pod_problems(self, colour: str, deployment: Any) -> list[str]:
        """What keeps the pods of ``deployment``'s current template from starting (crash loop, image missing).

        Only that template's pods count: a colour that crash-looped with the previous version still has those
        pods while the fixed one rolls out (Recreate deletes them first), and their back-off is no verdict on it.
        A pod is of the template when it is not being deleted and has its image and the version and spec the
        deploy wrote on it (no ReplicaSet read: that would need one more RBAC permission).
        """
        wanted = self.template_key(deployment.spec.template)
        pods = self.call("listing pods", self.core.list_namespaced_pod, self.namespace,
                         label_selector=f"{self.colour_label}={colour}").items
        problems = []
        for pod in pods:
            if (not pod.metadata.name.startswith(self.name(colour) + "-") or pod.metadata.deletion_timestamp
                    or self.template_key(pod) != wanted):
                continue
            for status in pod.status.container_statuses or []:
                waiting = status.state.waiting if status.state else None
                if waiting is not None and waiting.reason in FATAL_WAITING:
                    # A crash loop's message names only the back-off; how the container last ended says why.
                    ended = status.last_state.terminated if status.last_state else None
                    # The message's end: with terminationMessagePolicy FallbackToLogsOnError it is the log's tail.
                    said = tail(" ".join(ended.message.split())) if ended and ended.message else ""
                    last = (f" (last ended: exit code {ended.exit_code}, {ended.reason or 'no reason'}"
                            + (f": {said}" if said else "") + ")") if ended else ""
                    problems.append(f"pod {pod.metadata.name}: {waiting.reason}: {waiting.message or ''}".strip()
                                    + last)
        return problems

    def wait_ready(self, colour: str, version: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        name = self.name(colour)
        seen = "no status yet"
        while True:
            deployment = self.deployment(colour)
            if deployment is None:
                raise DeployError(msg=f"Deployment {name} disappeared while waiting for it")
            image = self.container_of(deployment).image
            status = deployment.status
            seen = (f"{status.updated_replicas or 0} updated, {status.ready_replicas or 0} ready, "
                    f"{status.available_replicas or 0} available of {deployment.spec.replicas}")
            if image == f"{self.image}:{version}" and self.rolled_out(deployment):
                return
            current = (status.observed_generation or 0) >= (deployment.metadata.generation or 0)
            for condition in status.conditions or [] if current else []:
                if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
                    raise DeployError(msg=f"Deployment {name} exceeded its progress deadline ({condition.message}); "
                                          f"{seen}; {'; '.join(self.pod_problems(colour, deployment))}".rstrip("; "))
            problems = self.pod_problems(colour, deployment)
            if problems:
                raise DeployError(msg=f"{'; '.join(problems)} ({seen})")
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeployError(msg=f"Deployment {name} not ready within {timeout:g}s: {seen}")
            # Wake on the Deployment's own changes, not on a timer; the short timeout bounds each wait
            # so pod problems (which do not touch the Deployment) are seen within a couple of seconds.
            stream = k8s_watch.Watch()
            for _event in stream.stream(self.apps.list_namespaced_deployment, self.namespace,
                                        field_selector=f"metadata.name={name}",
                                        resource_version=deployment.metadata.resource_version,
                                        timeout_seconds=max(1, int(min(left, 2)))):
                stream.stop()

    def urls_of_pods(self, colour: str) -> list[str]:
        pods = self.call("listing pods", self.core.list_namespaced_pod, self.namespace,
                         label_selector=f"{self.colour_label}={colour}").items
        urls = []
        for pod in pods:
            if not pod.metadata.name.startswith(self.name(colour) + "-") or not pod.status.pod_ip:
                continue
            ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
            if ready and pod.metadata.deletion_timestamp is None:
                urls.append(f"http://{pod.status.pod_ip}:{self.pod_port(pod)}")
        return sorted(urls)

    def pod_port(self, pod: Any) -> int:
        for container in pod.spec.containers:
            if container.name != self.container:
                continue
            for port in container.ports or []:
                if self.port_name is None or port.name == self.port_name:
                    return port.container_port
        raise DeployError(msg=f"container {self.container} of {pod.metadata.name} declares no "
                              f"{'port named ' + self.port_name if self.port_name else 'port'}")

    def targets(self, colour: str) -> list[str]:
        return self.urls_of_pods(colour)

    def endpoints(self) -> list[tuple[str, int, str]]:
        try:
            found = self.core.read_namespaced_endpoints(self.service, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise DeployError(msg=f"reading Endpoints {self.service} failed: {exc.status} {reason_of(exc)}") from exc
        except Urllib3Error as exc:
            raise self.unreachable(f"reading Endpoints {self.service}", exc) from exc
        out = []
        for subset in found.subsets or []:
            ports = [p.port for p in subset.ports or [] if self.port_name is None or p.name in (self.port_name, None)]
            for address in subset.addresses or []:
                pod = address.target_ref.name if address.target_ref else ""
                out += [(address.ip, port, pod) for port in ports[:1]]
        return out

    def front_targets(self) -> list[str]:
        return sorted({f"http://{ip}:{port}" for ip, port, _pod in self.endpoints()})

    def switch(self, colour: str) -> None:
        self.call(f"switching Service {self.service}", self.core.patch_namespaced_service, self.service,
                  self.namespace, {"spec": {"selector": {self.colour_label: colour}}})
        if self.preview_service:
            self.call(f"pointing Service {self.preview_service} at {other(colour)}",
                      self.core.patch_namespaced_service, self.preview_service, self.namespace,
                      {"spec": {"selector": {self.colour_label: other(colour)}}})
        # The switch is done when the endpoints controller has moved the Service to the new pods only.
        deadline = time.monotonic() + self.switch_timeout
        prefix = self.name(colour) + "-"
        while True:
            pods = [pod for _ip, _port, pod in self.endpoints()]
            if pods and all(pod.startswith(prefix) for pod in pods):
                return
            if time.monotonic() > deadline:
                raise DeployError(msg=f"Service {self.service} selects {colour} but its endpoints still are "
                                      f"{', '.join(pods) or 'empty'} after {self.switch_timeout:g}s")
            time.sleep(0.02)

    def history(self) -> list[dict[str, Any]]:
        raw = (self.read_service(self.service).metadata.annotations or {}).get(HISTORY)
        if not raw:
            return []
        try:
            entries = json.loads(raw)
        except ValueError as exc:
            raise DeployError(msg=f"annotation {HISTORY} of Service {self.service} is not JSON: {exc}") from exc
        return entries if isinstance(entries, list) else []

    def save_history(self, entries: list[dict[str, Any]]) -> None:
        self.call(f"recording history on Service {self.service}", self.core.patch_namespaced_service,
                  self.service, self.namespace,
                  {"metadata": {"annotations": {HISTORY: json.dumps(entries, separators=(",", ":"))}}})

    def mark_kept(self, colour: str, until: str | None) -> None:
        if self.deployment(colour) is not None:
            self.call(f"marking {self.name(colour)} kept", self.apps.patch_namespaced_deployment, self.name(colour),
                      self.namespace, {"metadata": {"annotations": {KEEP_UNTIL: until}}})

    def retire(self, colour: str) -> None:
        self.call(f"scaling {self.name(colour)} to 0", self.apps.patch_namespaced_deployment, self.name(colour),
                  self.namespace, {"spec": {"replicas": 0}, "metadata": {"annotations": {KEEP_UNTIL: None}}})
