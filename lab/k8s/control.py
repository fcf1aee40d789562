"""Start, stop and use the lab cluster from other processes (``python -m lab.k8s``, ``python -m lab``).

A pointer record in ``record_dir`` names the cluster's state directory; the
cluster keeps its own record (PIDs, ports, host directories it created) in
there, written before each process starts, so ``down`` can stop a cluster
whose ``up`` was killed half-way.
"""
from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from string import Template

from ..harness.base import HarnessError, ServiceRecord
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


def deploy_stream_systems(info: ClusterInfo, *, replicas: int = 2, timeout: int = 90) -> dict:
    """The Stream Systems estate: namespace, the stream-api Deployment (blue) and its Service."""
    manifest = Template((MANIFESTS / "stream-systems.yaml.tmpl").read_text()).substitute(
        NAMESPACE=STREAM_SYSTEMS_NAMESPACE, IMAGE=info.image, REPLICAS=replicas)
    applied = kubectl(info, ["apply", "-f", "-"], stdin=manifest)
    if applied.returncode != 0:
        raise HarnessError(f"kubectl apply of the Stream Systems estate failed: {applied.stderr.strip()}")
    rollout = kubectl(info, ["-n", STREAM_SYSTEMS_NAMESPACE, "rollout", "status",
                             "deployment/stream-api-blue", f"--timeout={timeout}s"], timeout=timeout + 10)
    if rollout.returncode != 0:
        described = kubectl(info, ["-n", STREAM_SYSTEMS_NAMESPACE, "describe", "pods"])
        raise HarnessError(f"stream-api-blue did not become Ready: {rollout.stderr.strip()}\n"
                           f"{described.stdout[-3000:]}")
    return {"namespace": STREAM_SYSTEMS_NAMESPACE, "deployment": "stream-api-blue",
            "service": "stream-api", "replicas": replicas}
