"""The lab's Kubernetes cluster is real: controllers, scheduler and kubelet act on what we ask.

Everything is asserted on what the API server holds afterwards (read through
the Python client), after changes made the way an operator makes them (kubectl).
"""
from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from lab.harness.base import pid_alive, wait_for
from lab.harness.docker_engine import _mounts_under

pytestmark = [pytest.mark.integration, pytest.mark.k8s, pytest.mark.docker]


def deployment_yaml(name: str, image: str, *, color: str = "blue", replicas: int = 2,
                    progress_deadline: int = 600) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": "web", "color": color}},
        "spec": {
            "replicas": replicas, "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": {"app": "web", "color": color}},
            "template": {
                "metadata": {"labels": {"app": "web", "color": color}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "web", "image": image, "imagePullPolicy": "Never",
                        "command": ["/bin/sh", "-c", "mkdir -p /www && echo ok > /www/health && "
                                    "echo serving /www on 127.0.0.1:8080 && "
                                    "exec httpd -f -p 127.0.0.1:8080 -h /www"],
                        "readinessProbe": {"exec": {"command": ["wget", "-q", "-O", "/dev/null",
                                                                "http://127.0.0.1:8080/health"]},
                                           "periodSeconds": 1},
                    }],
                },
            },
        },
    })


def apps(k8s_cluster):
    from kubernetes import client

    return client.AppsV1Api(k8s_cluster.api_client())


def core(k8s_cluster):
    from kubernetes import client

    return client.CoreV1Api(k8s_cluster.api_client())


def ready_pods(k8s_cluster, namespace: str, selector: str) -> set[str]:
    pods = core(k8s_cluster).list_namespaced_pod(namespace, label_selector=selector).items
    return {p.metadata.name for p in pods if p.metadata.deletion_timestamp is None
            and any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))}


def endpoint_pods(k8s_cluster, namespace: str, service: str) -> set[str]:
    endpoints = core(k8s_cluster).read_namespaced_endpoints(service, namespace)
    return {a.target_ref.name for s in (endpoints.subsets or []) for a in (s.addresses or [])}


def test_the_node_is_ready_on_loopback_and_nothing_listens_elsewhere(k8s_cluster):
    node = core(k8s_cluster).read_node(k8s_cluster.info.node_name)
    conditions = {c.type: c.status for c in node.status.conditions}
    assert conditions["Ready"] == "True"
    assert node.status.node_info.kubelet_version == "v1.20.2"
    assert node.status.node_info.container_runtime_version.startswith("docker://")
    assert {a.type: a.address for a in node.status.addresses}["InternalIP"] == "127.0.0.1"

    ours = set(k8s_cluster.cluster.pids.values())
    listeners = subprocess.run(["ss", "-Hltnup"], capture_output=True, text=True, check=True).stdout
    seen = set()
    for line in listeners.splitlines():
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if pids & ours:
            local = line.split()[4]
            seen |= pids & ours
            assert local.startswith("127.0.0.1:"), line
    # etcd, API server, controller-manager, scheduler and kubelet all listen.
    assert seen == ours, (seen, k8s_cluster.cluster.pids)


def test_a_deployment_reaches_ready(k8s_cluster, k8s_namespace):
    k8s_cluster.kubectl("apply", "-f", "-", namespace=k8s_namespace,
                        stdin=deployment_yaml("web-blue", k8s_cluster.image))
    k8s_cluster.kubectl("rollout", "status", "deployment/web-blue", "--timeout=60s", namespace=k8s_namespace)

    deployment = apps(k8s_cluster).read_namespaced_deployment("web-blue", k8s_namespace)
    assert deployment.status.ready_replicas == 2
    assert deployment.status.available_replicas == 2
    assert len(ready_pods(k8s_cluster, k8s_namespace, "app=web,color=blue")) == 2
    # The pod really serves: exec through the API server and the kubelet.
    assert k8s_cluster.kubectl("exec", "deployment/web-blue", "--", "wget", "-q", "-O-",
                               "http://127.0.0.1:8080/health", namespace=k8s_namespace).strip() == "ok"
    # Logs through the API server, which reaches the kubelet by its InternalIP.
    logs = k8s_cluster.kubectl("logs", "deployment/web-blue", namespace=k8s_namespace)
    assert "serving /www on 127.0.0.1:8080" in logs


def test_service_endpoints_follow_a_selector_change(k8s_cluster, k8s_namespace):
    for color in ("blue", "green"):
        k8s_cluster.kubectl("apply", "-f", "-", namespace=k8s_namespace,
                            stdin=deployment_yaml(f"web-{color}", k8s_cluster.image, color=color))
    for color in ("blue", "green"):
        k8s_cluster.kubectl("rollout", "status", f"deployment/web-{color}", "--timeout=60s",
                            namespace=k8s_namespace)
    k8s_cluster.kubectl("create", "service", "clusterip", "web", "--tcp=8080:8080", namespace=k8s_namespace)
    k8s_cluster.kubectl("set", "selector", "service/web", "app=web,color=blue", namespace=k8s_namespace)
    blue = ready_pods(k8s_cluster, k8s_namespace, "color=blue")
    green = ready_pods(k8s_cluster, k8s_namespace, "color=green")
    assert len(blue) == len(green) == 2

    wait_for(lambda: endpoint_pods(k8s_cluster, k8s_namespace, "web") == blue, timeout=30,
             what="endpoints of service/web = the blue pods")
    k8s_cluster.kubectl("patch", "service/web", "-p", '{"spec":{"selector":{"color":"green"}}}',
                        namespace=k8s_namespace)
    wait_for(lambda: endpoint_pods(k8s_cluster, k8s_namespace, "web") == green, timeout=30,
             what="endpoints of service/web = the green pods")


def test_a_bad_image_exceeds_the_progress_deadline_and_rollout_undo_restores(k8s_cluster, k8s_namespace):
    good = k8s_cluster.image
    k8s_cluster.kubectl("apply", "-f", "-", namespace=k8s_namespace,
                        stdin=deployment_yaml("web-blue", good, progress_deadline=8))
    k8s_cluster.kubectl("rollout", "status", "deployment/web-blue", "--timeout=60s", namespace=k8s_namespace)

    k8s_cluster.kubectl("set", "image", "deployment/web-blue", "web=streamops-lab/not-built:0.0.0",
                        namespace=k8s_namespace)

    def progress_reason() -> str | None:
        status = apps(k8s_cluster).read_namespaced_deployment("web-blue", k8s_namespace).status
        return next((c.reason for c in status.conditions or [] if c.type == "Progressing"), None)

    wait_for(lambda: progress_reason() == "ProgressDeadlineExceeded", timeout=60,
             what="Progressing=False/ProgressDeadlineExceeded")
    # The old pods kept serving while the new ReplicaSet failed.
    assert len(ready_pods(k8s_cluster, k8s_namespace, "app=web")) >= 1
    waiting = [s.state.waiting.reason for p in core(k8s_cluster).list_namespaced_pod(k8s_namespace).items
               for s in (p.status.container_statuses or []) if s.state.waiting]
    assert "ErrImageNeverPull" in waiting, waiting

    k8s_cluster.kubectl("rollout", "undo", "deployment/web-blue", namespace=k8s_namespace)
    k8s_cluster.kubectl("rollout", "status", "deployment/web-blue", "--timeout=60s", namespace=k8s_namespace)
    deployment = apps(k8s_cluster).read_namespaced_deployment("web-blue", k8s_namespace)
    assert deployment.spec.template.spec.containers[0].image == good
    assert deployment.status.updated_replicas == deployment.status.ready_replicas == 2
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    # The failed ReplicaSet is scaled to zero; its never-started pod may linger
    # as Terminating for a while (kubelet 1.20), but none is live.
    replica_sets = apps(k8s_cluster).list_namespaced_replica_set(k8s_namespace).items
    bad = [rs for rs in replica_sets if rs.spec.template.spec.containers[0].image != good]
    assert len(bad) == 1 and bad[0].spec.replicas == 0
    live = [c.image for p in core(k8s_cluster).list_namespaced_pod(k8s_namespace).items
            if p.metadata.deletion_timestamp is None for c in p.spec.containers]
    assert live == [good, good]


def test_lab_up_deploys_stream_systems_and_down_leaves_nothing(tmp_path):
    """The `python -m lab.k8s up/down` path: a second cluster, stopped from its records alone."""
    from lab.k8s import control
    from lab.k8s.cluster import ClusterInfo

    messages: list[str] = []
    info: ClusterInfo = control.up(tmp_path, messages.append)
    try:
        estate = control.deploy_stream_systems(info)
        assert estate["namespace"] == "stream-systems"
        assert estate["app"] == "stream-api" and estate["app_version"] == "2026.11.0"
        cluster = control._cluster(tmp_path)
        pids = dict(cluster.pids)
        state_dir = Path(info.state_dir)
        pod_uids = set(control.kubectl(info, ["-n", "stream-systems", "get", "pods", "-o",
                                              "jsonpath={.items[*].metadata.uid}"]).stdout.split())
        # Blue/green: stream-api-blue live with one pod, stream-api-green idle with none.
        assert len(pod_uids) == 1
        replicas = control.kubectl(info, ["-n", "stream-systems", "get", "deployments", "-o",
                                          "jsonpath={range .items[*]}{.metadata.name}={.spec.replicas} {end}"])
        assert replicas.stdout.split() == ["stream-api-blue=1", "stream-api-green=0"]
        # Patch 0006: the pods' logs are in the state dir, not under /var/log.
        pod_logs = state_dir / "logs" / "pods-and-containers" / "pods"
        assert {p.name.rsplit("_", 1)[-1] for p in pod_logs.iterdir()} == pod_uids
        assert not any(uid in str(p) for uid in pod_uids for p in Path("/var/log").glob("*/*"))
        assert "2026.11.0" in control.kubectl(info, ["-n", "stream-systems", "exec", "deploy/stream-api-blue",
                                                     "--", "cat", "/www/version"]).stdout
        endpoints = control.kubectl(info, ["-n", "stream-systems", "get", "endpoints", "stream-api", "-o",
                                           "jsonpath={.subsets[*].addresses[*].ip}:{.subsets[*].ports[*].port}"])
        assert endpoints.stdout.split() == [f"127.0.0.1:{estate['app_ports']['blue']}"]
        # Through the Service's only endpoint (host network, loopback): the live version answers.
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                f"http://{endpoints.stdout.strip()}/version", timeout=5) as response:
            assert response.read().decode().strip() == "2026.11.0"
        assert _mounts_under(state_dir), "secret volumes and the engine are mounted while up"
        assert control.current(tmp_path) is not None
    finally:
        control.down(tmp_path, messages.append)

    assert control.current(tmp_path) is None
    assert not [name for name, pid in pids.items() if pid_alive(pid)]
    assert not _mounts_under(state_dir)
    assert not state_dir.exists()


def test_a_component_failing_half_way_stops_what_had_started(tmp_path):
    """A kubelet that cannot start: the error says so, and etcd, the API server, the
    controllers and the cluster's dockerd are stopped, its state removed."""
    from lab.harness.base import HarnessError
    from lab.k8s.build import COMPONENTS, ensure_binaries
    from lab.k8s.cluster import KubernetesCluster

    real = ensure_binaries(print)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in COMPONENTS:
        (bin_dir / name).symlink_to(real / name)
    (bin_dir / "kubelet").unlink()
    (bin_dir / "kubelet").write_text("#!/bin/sh\necho 'kubelet: cannot start: simulated fault' >&2\nexit 3\n")
    (bin_dir / "kubelet").chmod(0o755)

    cluster = KubernetesCluster(bin_dir=bin_dir, start_timeout=30)
    with pytest.raises(HarnessError, match=r"kubelet exited during start(.|\n)*simulated fault"):
        cluster.start()
    assert cluster.state_dir is not None and not cluster.state_dir.exists()
    assert not _mounts_under(cluster.state_dir)
    # Every component (etcd, API server, controllers, dockerd, containerd) names the
    # state dir on its command line.
    survivors = subprocess.run(["pgrep", "-a", "-f", str(cluster.state_dir)], capture_output=True,
                               text=True, check=False).stdout.strip()
    assert not survivors
