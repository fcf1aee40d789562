# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Judgements of the daily health check: which pods and compose services are unhealthy.

Plain functions over what kubectl and docker report (the Kubernetes API's pod objects, one
JSON object per container), returning records (docs/records.md). The health_check role
reaches them through the filters of the same names.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any

from .records import make_record

# Pods in these phases are healthy unless a container waits (a crash loop stays in Running).
HEALTHY_POD_PHASES = ("Running", "Succeeded")


def pod_problem(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """None for a healthy pod, else {phase, reasons, restarts} saying why it is not."""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Unknown"
    containers = list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])
    waiting = [(c.get("state") or {}).get("waiting", {}).get("reason") or "Waiting"
               for c in containers if "waiting" in (c.get("state") or {})]
    terminating = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    restarts = sum(int(c.get("restartCount") or 0) for c in containers)
    if phase in HEALTHY_POD_PHASES and not waiting and not terminating:
        return None
    reasons = ([status["reason"]] if status.get("reason") else []) + waiting + (["Terminating"] if terminating else [])
    return {"phase": phase, "reasons": list(dict.fromkeys(reasons)), "restarts": restarts}


def pod_records(namespace: str, pods: Iterable[Mapping[str, Any]] | None, error: str | None = None) -> list[dict[str, Any]]:
    """A record for the namespace (breach when it could not be listed, has no pods or has a bad one), one per bad pod."""
    name = f"pods {namespace}"
    if error is not None:
        return [make_record(name, "pods", "breach", f"kubectl failed: {error.strip()[:200]}")]
    pods = list(pods or [])
    bad = []
    for pod in pods:
        problem = pod_problem(pod)
        if problem is None:
            continue
        meta = pod.get("metadata") or {}
        why = problem["phase"] + (f": {', '.join(problem['reasons'])}" if problem["reasons"] else "")
        bad.append(make_record(f"pod {meta.get('namespace', namespace)}/{meta.get('name')}", "pods", "breach",
                               f"{why} ({problem['restarts']} restarts)", after=problem))
    if not pods:
        summary = make_record(name, "pods", "breach", "no pods", after={"pods": 0, "not_running": 0})
    else:
        summary = make_record(name, "pods", "breach" if bad else "ok",
                              f"{len(pods) - len(bad)} of {len(pods)} pods Running or Succeeded",
                              after={"pods": len(pods), "not_running": len(bad)})
    return [summary, *bad]


def compose_service_records(project: str, containers: Iterable[Mapping[str, Any]] | None,
                            expected: Iterable[str] = (), error: str | None = None) -> list[dict[str, Any]]:
    """One record per container of the project (breach unless running and not unhealthy), one per missing service.

    ``containers`` are {service, name, state, status} as ``docker ps --format`` gives them.
    """
    where = f"compose {project}"
    if error is not None:
        return [make_record(where, "compose", "breach", f"docker ps failed: {error.strip()[:200]}")]
    containers = sorted(containers or [], key=lambda c: str(c.get("name")))
    if not containers:
        return [make_record(where, "compose", "breach",
                            f"no containers with label com.docker.compose.project={project}")]
    records = []
    for container in containers:
        state, status = str(container.get("state") or "unknown"), str(container.get("status") or "")
        healthy = state == "running" and "(unhealthy)" not in status
        records.append(make_record(f"{where}/{container.get('service')}", "compose", "ok" if healthy else "breach",
                                   f"{state}: {status} ({container.get('name')})",
                                   after={"state": state, "status": status, "container": container.get("name")}))
    present = {str(c.get("service")) for c in containers}
    records += [make_record(f"{where}/{service}", "compose", "breach", f"no container of service {service}")
                for service in expected if service not in present]
    return records


def tls_secret_texts(namespace: str, lines: Iterable[str]) -> list[dict[str, str]]:
    """``name<TAB>base64 tls.crt`` lines (kubectl jsonpath) as certificate texts {name, pem} for certificate_expiry.

    Only the certificate is ever read: the private key (tls.key) never leaves the cluster.
    """
    texts = []
    for line in lines:
        if not line.strip():
            continue
        secret, _tab, encoded = line.partition("\t")
        try:
            pem = base64.b64decode(encoded.strip(), validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            pem = ""  # certificate_expiry reports an unreadable certificate as failed, with its name
        texts.append({"name": f"secret {namespace}/{secret.strip()}", "pem": pem})
    return texts
