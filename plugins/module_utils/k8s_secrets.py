# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Secrets replaced in place and the Deployments that read them restarted (secret rotation, certificate renewal).

A Secret is never deleted and created again: between the two calls there is no Secret, and a pod
starting then fails. Its data is replaced with ONE update (PUT) of the object as it was read, carrying
its resourceVersion, so a change made by someone else in between is a 409 (SecretConflictError), never
a lost update. Values never appear in a message, a record or an exception raised here.

The rollout decisions (``rollout_state``, ``pod_problems``) are pure functions over the API's JSON
(camelCase dicts, as ``ApiClient.sanitize_for_serialization`` gives them).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from .errors import MaintenanceError
from .k8s_conn import ApiException, K8sConnectionError, reason_of
from .records import make_record

try:
    from urllib3.exceptions import HTTPError as Urllib3HTTPError
except ImportError:  # urllib3 comes with kubernetes; k8s_conn reports the missing library
    class Urllib3HTTPError(Exception):  # type: ignore[no-redef]
        pass

ROTATED_AT_ANNOTATION = "streamops.io/rotated-at"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
POD_TEMPLATE_HASH = "pod-template-hash"
POLL_SECONDS = 1.0
# Waiting reasons of a container that will not come up by itself (kubelet's own words).
STUCK_REASONS = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName",
                 "CreateContainerConfigError", "CreateContainerError", "RunContainerError")


class SecretError(MaintenanceError):
    """A Secret could not be read or written; ``msg`` names it and says what the API server said."""


class SecretConflictError(SecretError):
    """The Secret changed between its read and the update (409): nothing was written."""


def utc_stamp(instant: datetime | None = None) -> str:
    """RFC 3339 UTC to the second, ``2026-01-31T12:00:00Z``: what kubectl writes for restartedAt and what
    k8s_access_review's parse_timestamp reads for rotated-at."""
    instant = (instant or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def _api_error(exc: Exception, what: str, cls: type[SecretError] = SecretError) -> MaintenanceError:
    if isinstance(exc, Urllib3HTTPError):
        return K8sConnectionError(msg=f"{what}: cannot reach the Kubernetes API server: {exc}")
    return cls(msg=f"{what}: {getattr(exc, 'status', '')} {reason_of(exc)}".replace(":  ", ": "),
               status=getattr(exc, "status", None))


def read_secret(core_api: Any, *, namespace: str, name: str, request_timeout: float | None = None) -> Any | None:
    """The V1Secret, or None when it does not exist (404); any other refusal raises SecretError."""
    try:
        return core_api.read_namespaced_secret(name, namespace, _request_timeout=request_timeout)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise _api_error(exc, f"cannot read Secret {namespace}/{name}") from None
    except Urllib3HTTPError as exc:
        raise _api_error(exc, f"cannot read Secret {namespace}/{name}") from None


def replace_secret_data(core_api: Any, secret: Any, *, data: Mapping[str, str], annotations: Mapping[str, str],
                        remove_keys: Iterable[str] = (), request_timeout: float | None = None) -> Any:
    """ONE replace (PUT) of ``secret`` as read (its resourceVersion) with ``data`` (key -> base64) merged in.

    Keys not in ``data`` are kept unless named in ``remove_keys``; ``annotations`` are merged into the
    Secret's own. A concurrent change is a 409: SecretConflictError naming the Secret, nothing written.
    Returns the Secret the server now holds.
    """
    meta = secret.metadata
    label = f"{meta.namespace}/{meta.name}"
    if not meta.resource_version:
        raise SecretError(msg=f"Secret {label} carries no resourceVersion: read it from the API server first")
    if getattr(secret, "immutable", None):
        raise SecretError(msg=f"Secret {label} is immutable (immutable: true): its data cannot be replaced; "
                              f"the API server refuses every change but a delete")
    body = copy.deepcopy(secret)
    new_data = dict(body.data or {})
    for key in remove_keys:
        new_data.pop(key, None)
    new_data.update(data)
    body.data = new_data
    body.string_data = None
    body.metadata.annotations = {**(body.metadata.annotations or {}), **annotations}
    # managedFields are the server's bookkeeping; sending them back as read is allowed but pointless.
    body.metadata.managed_fields = None
    try:
        return core_api.replace_namespaced_secret(meta.name, meta.namespace, body, _request_timeout=request_timeout)
    except ApiException as exc:
        if exc.status == 409:
            raise SecretConflictError(
                msg=f"Secret {label} changed after it was read (resourceVersion {meta.resource_version} is no "
                    f"longer current: {reason_of(exc)}); nothing was written, run again to rotate from what it "
                    f"holds now", status=409) from None
        raise _api_error(exc, f"cannot replace the data of Secret {label}") from None
    except Urllib3HTTPError as exc:
        raise _api_error(exc, f"cannot replace the data of Secret {label}") from None


def create_secret(core_api: Any, *, namespace: str, name: str, data: Mapping[str, str],
                  annotations: Mapping[str, str], secret_type: str = "Opaque",
                  request_timeout: float | None = None) -> Any:
    """A new Secret (POST); one that appeared meanwhile is a 409, SecretConflictError."""
    from kubernetes import client as k8s_client  # noqa: PLC0415 - k8s_conn reports the missing library

    body = k8s_client.V1Secret(api_version="v1", kind="Secret", type=secret_type, data=dict(data),
                               metadata=k8s_client.V1ObjectMeta(name=name, namespace=namespace,
                                                                annotations=dict(annotations)))
    try:
        return core_api.create_namespaced_secret(namespace, body, _request_timeout=request_timeout)
    except ApiException as exc:
        if exc.status == 409:
            raise SecretConflictError(msg=f"Secret {namespace}/{name} was created by someone else meanwhile; "
                                          f"nothing was written, run again", status=409) from None
        raise _api_error(exc, f"cannot create Secret {namespace}/{name}") from None
    except Urllib3HTTPError as exc:
        raise _api_error(exc, f"cannot create Secret {namespace}/{name}") from None


# --------------------------------------------------------------------------- rollout decisions (pure)


def pod_problems(pods: Iterable[Mapping[str, Any]]) -> list[str]:
    """What keeps pods from coming up, as ``pod <name>: container <c> <Reason>`` (stuck waits, failed pods)."""
    found = []
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name")
        status = pod.get("status") or {}
        if status.get("phase") == "Failed":
            found.append(f"pod {name}: Failed ({status.get('reason') or status.get('message') or 'no reason'})")
            continue
        statuses = list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])
        for container in statuses:
            state = container.get("state") or {}
            waiting = state.get("waiting") or {}
            reason = waiting.get("reason")
            if reason in STUCK_REASONS:
                message = str(waiting.get("message") or "")[:160]
                found.append(f"pod {name}: container {container.get('name')} {reason}"
                             + (f" ({message})" if message else ""))
            elif (state.get("terminated") or {}).get("exitCode") not in (None, 0):
                terminated = state["terminated"]
                found.append(f"pod {name}: container {container.get('name')} exited {terminated.get('exitCode')} "
                             f"({terminated.get('reason') or 'Error'})")
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                found.append(f"pod {name}: not scheduled ({condition.get('reason')}: {condition.get('message')})")
    return found


def new_pod_hash(deployment: Mapping[str, Any], replica_sets: Iterable[Mapping[str, Any]]) -> str | None:
    """The pod-template-hash of the Deployment's current ReplicaSet (same revision annotation), or None yet."""
    revision = ((deployment.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    uid = (deployment.get("metadata") or {}).get("uid")
    for rs in replica_sets:
        meta = rs.get("metadata") or {}
        owned = any(ref.get("uid") == uid for ref in meta.get("ownerReferences") or []) if uid else True
        if owned and revision and (meta.get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
            return (meta.get("labels") or {}).get(POD_TEMPLATE_HASH)
    return None


def rollout_state(deployment: Mapping[str, Any], pods: Iterable[Mapping[str, Any]],
                  new_hash: str | None) -> tuple[bool, str]:
    """Whether the rollout is complete, and what it is waiting for (kubectl rollout status, plus no old pod left).

    Complete: observedGeneration >= generation, updatedReplicas == availableReplicas == replicas (spec), no
    surplus replicas, and no pod of another template (running or terminating) is left.
    """
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = spec.get("replicas", 1)
    generation, observed = meta.get("generation") or 0, status.get("observedGeneration") or 0
    if observed < generation:
        return False, f"waiting for the controller to see generation {generation} (observed {observed})"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return False, f"progress deadline exceeded: {condition.get('message')}"
    updated = status.get("updatedReplicas") or 0
    total = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < wanted:
        return False, f"{updated} of {wanted} new pod(s) created"
    if total > updated:
        return False, f"{total - updated} old pod(s) pending termination"
    if available < wanted:
        return False, f"{available} of {wanted} new pod(s) available"
    pods = list(pods)
    if new_hash is None and pods:
        return False, "the new ReplicaSet is not known yet"
    old = [(p.get("metadata") or {}).get("name") for p in pods
           if ((p.get("metadata") or {}).get("labels") or {}).get(POD_TEMPLATE_HASH) != new_hash]
    if old:
        return False, f"old pod(s) still present: {', '.join(sorted(str(n) for n in old))}"
    return True, f"{available} of {wanted} pod(s) updated and available"


def template_annotations(deployment: Mapping[str, Any]) -> dict[str, Any]:
    template = (deployment.get("spec") or {}).get("template") or {}
    return dict((template.get("metadata") or {}).get("annotations") or {})


def selector_of(deployment: Mapping[str, Any]) -> str:
    """The Deployment's matchLabels as a label selector string (matchExpressions are not used by the estates)."""
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


# --------------------------------------------------------------------------- rollout restart


def _json(apps_api: Any, obj: Any) -> dict[str, Any]:
    return apps_api.api_client.sanitize_for_serialization(obj)


def _observe(apps_api: Any, core_api: Any, namespace: str, name: str,
             request_timeout: float | None) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    deployment = _json(apps_api, apps_api.read_namespaced_deployment(name, namespace,
                                                                     _request_timeout=request_timeout))
    selector = selector_of(deployment)
    replica_sets = _json(apps_api, apps_api.list_namespaced_replica_set(
        namespace, label_selector=selector, _request_timeout=request_timeout)).get("items") or []
    pods = _json(apps_api, core_api.list_namespaced_pod(
        namespace, label_selector=selector, _request_timeout=request_timeout)).get("items") or []
    return deployment, pods, new_pod_hash(deployment, replica_sets)


def restart_deployments(apps_api: Any, *, namespace: str, names: list[str], timeout: float,
                        request_timeout: float | None = None, core_api: Any = None,
                        clock: Callable[[], float] = time.monotonic,
                        sleep: Callable[[float], None] = time.sleep) -> list[dict[str, Any]]:
    """kubectl rollout restart of each Deployment, then wait (all together, ``timeout`` seconds) until each rollout is
    complete. One record per Deployment: ``done``, or ``failed`` with what is ready and what keeps pods from coming
    up (CrashLoopBackOff, ImagePullBackOff, ...); a Deployment that does not exist is ``failed``, named.
    """
    from kubernetes import client as k8s_client  # noqa: PLC0415 - k8s_conn reports the missing library

    core_api = core_api or k8s_client.CoreV1Api(apps_api.api_client)
    stamp = utc_stamp()
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: stamp}}}}}
    records: dict[str, dict[str, Any]] = {}
    started: dict[str, float] = {}
    befores: dict[str, dict[str, Any]] = {}
    for name in names:
        label = f"deployment {namespace}/{name}"
        begin = clock()
        try:
            current = _json(apps_api, apps_api.read_namespaced_deployment(name, namespace,
                                                                          _request_timeout=request_timeout))
            befores[name] = {"restarted_at": template_annotations(current).get(RESTARTED_AT_ANNOTATION),
                             "generation": (current.get("metadata") or {}).get("generation")}
            if (current.get("spec") or {}).get("paused"):
                records[name] = make_record(label, "restart", "failed", "the Deployment is paused (kubectl rollout "
                                            "resume first): not restarted", before=befores[name])
                continue
            apps_api.patch_namespaced_deployment(name, namespace, patch, _request_timeout=request_timeout)
        except ApiException as exc:
            detail = ("does not exist: not restarted" if exc.status == 404
                      else f"cannot restart: {exc.status} {reason_of(exc)}")
            records[name] = make_record(label, "restart", "failed", detail, before=befores.get(name),
                                        seconds=clock() - begin)
            continue
        except Urllib3HTTPError as exc:
            records[name] = make_record(label, "restart", "failed", f"cannot reach the API server: {exc}",
                                        before=befores.get(name), seconds=clock() - begin)
            continue
        started[name] = begin
    deadline = clock() + timeout
    waiting = dict.fromkeys(started, "")
    last: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    while waiting:
        for name in list(waiting):
            try:
                deployment, pods, new_hash = _observe(apps_api, core_api, namespace, name, request_timeout)
            except (ApiException, Urllib3HTTPError) as exc:
                reason = f"{exc.status} {reason_of(exc)}" if isinstance(exc, ApiException) else str(exc)
                waiting[name] = f"cannot read its rollout: {reason}"
                continue
            last[name] = (deployment, pods)
            complete, why = rollout_state(deployment, pods, new_hash)
            if complete:
                status = deployment.get("status") or {}
                records[name] = make_record(
                    f"deployment {namespace}/{name}", "restart", "done", f"rollout restart complete: {why}",
                    before=befores[name],
                    after={"restarted_at": stamp, "generation": (deployment.get("metadata") or {}).get("generation"),
                           "replicas": status.get("replicas") or 0, "ready": status.get("readyReplicas") or 0,
                           "pods": sorted((p.get("metadata") or {}).get("name") for p in pods)},
                    seconds=clock() - started[name])
                del waiting[name]
            else:
                waiting[name] = why
                if why.startswith("progress deadline exceeded"):
                    records[name] = _failed_rollout(namespace, name, why, stamp, befores[name], last.get(name),
                                                    clock() - started[name])
                    del waiting[name]
        if not waiting:
            break
        if clock() >= deadline:
            for name, why in waiting.items():
                records[name] = _failed_rollout(namespace, name, f"not complete after {timeout:g}s: {why}", stamp,
                                                befores[name], last.get(name), clock() - started[name])
            break
        sleep(POLL_SECONDS)
    return [records[name] for name in names]


def _failed_rollout(namespace: str, name: str, why: str, stamp: str, before: Mapping[str, Any],
                    seen: tuple[dict[str, Any], list[dict[str, Any]]] | None, seconds: float) -> dict[str, Any]:
    deployment, pods = seen or ({}, [])
    status = deployment.get("status") or {}
    problems = pod_problems(pods)
    detail = why + (f"; {'; '.join(problems)}" if problems else "")
    return make_record(f"deployment {namespace}/{name}", "restart", "failed", detail, before=before,
                       after={"restarted_at": stamp, "replicas": status.get("replicas") or 0,
                              "updated": status.get("updatedReplicas") or 0, "ready": status.get("readyReplicas") or 0,
                              "available": status.get("availableReplicas") or 0, "pod_problems": problems},
                       seconds=seconds)
