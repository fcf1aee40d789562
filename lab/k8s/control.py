"""Start, stop and use the lab cluster from other processes (``python -m lab.k8s``, ``python -m lab``).

A pointer record in ``record_dir`` names the cluster's state directory; the
cluster keeps its own record (PIDs, ports, host directories it created) in
there, written before each process starts, so ``down`` can stop a cluster
whose ``up`` was killed half-way.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from string import Template

from ..harness.base import HarnessError, ServiceRecord, free_port, wait_for
from .cluster import RECORD_NAME, ClusterInfo, KubernetesCluster

POINTER = "k8s-cluster"
MANIFESTS = Path(__file__).resolve().parent / "manifests"
STREAM_SYSTEMS_NAMESPACE = "stream-systems"


def up(record_dir: Path, progress=print) -> ClusterInfo:
    """Start the cluster (building the binaries first if needed); reuse a live one."""
    running = current(record_dir)
    if running is not None:
        progress(f"Kubernetes lab cluster already up (kubeconfig {running.kubeconfig})")
        return running
    down(record_dir, progress)  # a dead one's leftovers
    state_dir = Path(tempfile.mkdtemp(prefix="streamops-k8s-"))
    ServiceRecord(POINTER, None, {"state_dir": str(state_dir)}).save(record_dir)
    cluster = KubernetesCluster(state_dir, progress=progress)
    try:
        info = cluster.start()
    except BaseException:
        # start() stops what it started; when that left something behind, the
        # pointer stays so that `down` can try again.
        if not state_dir.exists():
            ServiceRecord.forget(record_dir, POINTER)
        raise
    progress(f"Kubernetes {info.version}: node {info.node_name} Ready "
             f"{cluster.timings['node_ready']:.1f}s after start; kubeconfig {info.kubeconfig}")
    return info


def _cluster(record_dir: Path) -> KubernetesCluster | None:
    pointer = ServiceRecord.load(record_dir, POINTER)
    if pointer is None:
        return None
    state_dir = Path(pointer.info["state_dir"])
    record = ServiceRecord.load(state_dir, RECORD_NAME)
    if record is None:
        return KubernetesCluster(state_dir)
    return KubernetesCluster.from_record(record)


def current(record_dir: Path) -> ClusterInfo | None:
    """The running cluster's ClusterInfo, or None when none is up (or one of its parts died)."""
    cluster = _cluster(record_dir)
    if cluster is None or not cluster.alive():
        return None
    record = ServiceRecord.load(cluster.state_dir, RECORD_NAME)
    data = record.info.get("info") if record else None
    return ClusterInfo(**data) if data else None


def down(record_dir: Path, progress=print) -> None:
    cluster = _cluster(record_dir)
    if cluster is None:
        return
    cluster.stop()
    ServiceRecord.forget(record_dir, POINTER)
    progress("Kubernetes lab cluster stopped (etcd, API server, controllers, kubelet, its dockerd)")


def kubectl(info: ClusterInfo, args: Sequence[str], *, stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the cluster's own kubectl (same version as the server) against its kubeconfig."""
    return subprocess.run(  # noqa: S603 - argv list
        [info.kubectl, f"--kubeconfig={info.kubeconfig}", *args], input=stdin,
        capture_output=True, text=True, timeout=timeout, check=False)


# Tags of the cluster's base image that the lab can deploy to stream-api (all the same busybox
# image; the app answers the version from its label). The last one fails its smoke test.
STREAM_API_IMAGE = "stream-api"
STREAM_API_VERSIONS = ("2026.11.0", "2026.11.1", "2026.12.0")
STREAM_API_SMOKE_FAIL = "2026.12.1-smoke-fail"
# The app: busybox httpd on 127.0.0.1:$APP_PORT serving /ready (the probes), /health (the smoke check) and
# /version ($APP_VERSION, from the pod's version label); "smoke-fail" versions answer "broken", "smoke500"
# ones answer /health with HTTP 500 (from cgi-bin/index.cgi, after a redirect to /health/), "never-ready"
# ones serve nothing.
STREAM_API_SCRIPT = r"""
v="$APP_VERSION"; mkdir -p /www
case "$v" in *never-ready*) exec sleep 3600;; esac
echo ok > /www/ready
case "$v" in
  *smoke500*) mkdir -p /www/health /www/cgi-bin
    printf '#!/bin/sh\nprintf "HTTP/1.0 500 Internal Server Error\\r\\n\\r\\nunhealthy\\n"\n' > /www/cgi-bin/index.cgi
    chmod 755 /www/cgi-bin/index.cgi;;
  *) echo ok > /www/health;;
esac
case "$v" in *smoke-fail*) echo broken > /www/version;; *) echo "$v" > /www/version;; esac
exec httpd -f -p "127.0.0.1:$APP_PORT" -h /www
"""


def tag_stream_api_images(info: ClusterInfo) -> list[str]:
    """Tag the cluster engine's base image as stream-api:<version> for every lab version (nothing is pulled)."""
    import docker  # noqa: PLC0415 - only the lab needs the SDK here

    versions = [*STREAM_API_VERSIONS, STREAM_API_SMOKE_FAIL]
    client = docker.DockerClient(base_url=info.docker_host)
    try:
        base = client.images.get(info.image)
        for version in versions:
            base.tag(STREAM_API_IMAGE, version)
    finally:
        client.close()
    return versions


def stream_systems_manifest(ports: dict[str, int], version: str) -> str:
    """The estate's objects (lab/k8s/manifests/stream-systems.yaml.tmpl): blue live with ``version``."""
    return Template((MANIFESTS / "stream-systems.yaml.tmpl").read_text()).substitute(
        NAMESPACE=STREAM_SYSTEMS_NAMESPACE, IMAGE=STREAM_API_IMAGE, VERSION=version,
        BLUE_PORT=ports["blue"], GREEN_PORT=ports["green"], SCRIPT=json.dumps(STREAM_API_SCRIPT))


def deploy_stream_systems(info: ClusterInfo, *, timeout: int = 90) -> dict:
    """The Stream Systems estate, blue/green: stream-api-blue live (1 pod), stream-api-green idle, the Service.

    Each colour listens on its own free loopback port (host network). Returns the estate's facts: what the
    inventory needs to reach it and to drive blue_green_deploy on it.
    """
    tag_stream_api_images(info)
    ports = {"blue": free_port(), "green": free_port()}
    live = STREAM_API_VERSIONS[0]
    applied = kubectl(info, ["apply", "-f", "-"], stdin=stream_systems_manifest(ports, live))
    if applied.returncode != 0:
        raise HarnessError(f"kubectl apply of the Stream Systems estate failed: {applied.stderr.strip()}")
    rollout = kubectl(info, ["-n", STREAM_SYSTEMS_NAMESPACE, "rollout", "status",
                             "deployment/stream-api-blue", f"--timeout={timeout}s"], timeout=timeout + 10)
    if rollout.returncode != 0:
        described = kubectl(info, ["-n", STREAM_SYSTEMS_NAMESPACE, "describe", "pods"])
        raise HarnessError(f"stream-api-blue did not become Ready: {rollout.stderr.strip()}\n"
                           f"{described.stdout[-3000:]}")
    # Ready pods are not yet endpoints: wait until the Service routes to blue.
    wait_for(lambda: _endpoint_ports(info) == [ports["blue"]], timeout=30,
             what="the Service stream-api routing to stream-api-blue")
    return {"namespace": STREAM_SYSTEMS_NAMESPACE, "deployment": "stream-api-blue",
            "service": "stream-api", "replicas": 1,
            "app": "stream-api", "app_image": STREAM_API_IMAGE, "app_ports": ports,
            "app_version": live, "app_versions": list(STREAM_API_VERSIONS),
            "app_smoke_fail_version": STREAM_API_SMOKE_FAIL}


def _endpoint_ports(info: ClusterInfo) -> list[int]:
    found = kubectl(info, ["-n", STREAM_SYSTEMS_NAMESPACE, "get", "endpoints", "stream-api", "-o",
                           "jsonpath={.subsets[*].ports[*].port}"])
    return [int(port) for port in found.stdout.split()] if found.returncode == 0 else []
