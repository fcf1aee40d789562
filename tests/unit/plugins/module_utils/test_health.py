"""The daily health check's judgements: which pods and compose services are unhealthy, TLS secrets' certificates."""

from __future__ import annotations

import base64

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.health import (
    compose_service_records,
    pod_problem,
    pod_records,
    tls_secret_texts,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import make_record, result_problems


def running(restarts: int = 0) -> dict:
    return {"name": "app", "ready": True, "restartCount": restarts,
            "state": {"running": {"startedAt": "2026-01-11T02:00:00Z"}}}


def waiting(reason: str | None, restarts: int = 0) -> dict:
    state = {"reason": reason, "message": "back-off 5m0s restarting failed container"} if reason else {}
    return {"name": "app", "ready": False, "restartCount": restarts, "state": {"waiting": state}}


def terminated(reason: str = "Completed", restarts: int = 0) -> dict:
    return {"name": "migrate", "ready": False, "restartCount": restarts,
            "state": {"terminated": {"exitCode": 0, "reason": reason}}}


def pod(name: str = "vitalstream-api-7d9f", phase: str | None = "Running", *, containers=(), init=(),
        namespace: str = "streaming", reason: str | None = None, deleting: bool = False) -> dict:
    meta = {"name": name, "namespace": namespace, "uid": "0b6c"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-11T07:30:00Z"
    status: dict = {"containerStatuses": list(containers)}
    if phase is not None:
        status["phase"] = phase
    if init:
        status["initContainerStatuses"] = list(init)
    if reason:
        status["reason"] = reason
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": status}


@pytest.mark.parametrize("given, expected", [
    pytest.param(pod(containers=[running()]), None, id="Running"),
    pytest.param(pod(phase="Succeeded", containers=[terminated()]), None, id="Succeeded"),
    pytest.param(pod(containers=[running(restarts=3)]), None, id="Running with restarts is healthy"),
    pytest.param(pod(init=[terminated()], containers=[running()]), None, id="finished init container"),
    pytest.param(pod(phase="Pending", containers=[waiting("ContainerCreating")]),
                 {"phase": "Pending", "reasons": ["ContainerCreating"], "restarts": 0}, id="Pending"),
    pytest.param(pod(phase="Pending"), {"phase": "Pending", "reasons": [], "restarts": 0},
                 id="Pending, not scheduled"),
    pytest.param(pod(phase="Failed", reason="Evicted", containers=[terminated("Error", 1)]),
                 {"phase": "Failed", "reasons": ["Evicted"], "restarts": 1}, id="Failed (evicted)"),
    pytest.param(pod(containers=[running(), waiting("CrashLoopBackOff", restarts=7)]),
                 {"phase": "Running", "reasons": ["CrashLoopBackOff"], "restarts": 7},
                 id="Running with a crash-looping container"),
    pytest.param(pod(containers=[waiting(None)]), {"phase": "Running", "reasons": ["Waiting"], "restarts": 0},
                 id="waiting without a reason"),
    pytest.param(pod(containers=[running()], deleting=True),
                 {"phase": "Running", "reasons": ["Terminating"], "restarts": 0}, id="terminating"),
    pytest.param(pod(phase="Pending", init=[waiting("CrashLoopBackOff", 4)], containers=[waiting("PodInitializing")]),
                 {"phase": "Pending", "reasons": ["CrashLoopBackOff", "PodInitializing"], "restarts": 4},
                 id="init container crash-looping"),
    pytest.param(pod(init=[terminated(restarts=2)],
                     containers=[waiting("ImagePullBackOff", 1), waiting("ImagePullBackOff", 3)]),
                 {"phase": "Running", "reasons": ["ImagePullBackOff"], "restarts": 6},
                 id="restarts summed, reasons once"),
    pytest.param(pod(phase=None), {"phase": "Unknown", "reasons": [], "restarts": 0}, id="no phase"),
    pytest.param({"metadata": {"name": "x"}}, {"phase": "Unknown", "reasons": [], "restarts": 0}, id="no status"),
])
def test_pod_problem(given, expected):
    assert pod_problem(given) == expected


CRASHING = pod("vitalstream-worker-5c4b", containers=[waiting("CrashLoopBackOff", restarts=12)])
PENDING = pod("vitalstream-api-new", phase="Pending", containers=[waiting("ImagePullBackOff")])


@pytest.mark.parametrize("pods, error, expected", [
    pytest.param(None, "Unable to connect to the server: dial tcp 127.0.0.1:6443: connect: connection refused\n",
                 [make_record("pods streaming", "pods", "breach", "kubectl failed: Unable to connect to the server: "
                              "dial tcp 127.0.0.1:6443: connect: connection refused")], id="kubectl error"),
    pytest.param(None, "x" * 300, [make_record("pods streaming", "pods", "breach", "kubectl failed: " + "x" * 200)],
                 id="long error cut"),
    pytest.param([], None, [make_record("pods streaming", "pods", "breach", "no pods",
                                        after={"pods": 0, "not_running": 0})], id="no pods"),
    pytest.param(None, None, [make_record("pods streaming", "pods", "breach", "no pods",
                                          after={"pods": 0, "not_running": 0})], id="pods None"),
    pytest.param([pod(containers=[running()]), pod("job-1", "Succeeded", containers=[terminated()])], None,
                 [make_record("pods streaming", "pods", "ok", "2 of 2 pods Running or Succeeded",
                              after={"pods": 2, "not_running": 0})], id="all good"),
    pytest.param([pod(containers=[running()]), CRASHING, PENDING], None,
                 [make_record("pods streaming", "pods", "breach", "1 of 3 pods Running or Succeeded",
                              after={"pods": 3, "not_running": 2}),
                  make_record("pod streaming/vitalstream-worker-5c4b", "pods", "breach",
                              "Running: CrashLoopBackOff (12 restarts)",
                              after={"phase": "Running", "reasons": ["CrashLoopBackOff"], "restarts": 12}),
                  make_record("pod streaming/vitalstream-api-new", "pods", "breach", "Pending: ImagePullBackOff "
                              "(0 restarts)", after={"phase": "Pending", "reasons": ["ImagePullBackOff"],
                                                     "restarts": 0})], id="some bad"),
    pytest.param([pod(phase="Pending")], None,
                 [make_record("pods streaming", "pods", "breach", "0 of 1 pods Running or Succeeded",
                              after={"pods": 1, "not_running": 1}),
                  make_record("pod streaming/vitalstream-api-7d9f", "pods", "breach", "Pending (0 restarts)",
                              after={"phase": "Pending", "reasons": [], "restarts": 0})], id="a reason-less pod"),
])
def test_pod_records(pods, error, expected):
    found = pod_records("streaming", pods, error=error)
    assert found == expected
    assert result_problems({"changed": False, "msg": "", "records": found}) == []


def test_a_pod_is_named_by_its_own_namespace():
    [_summary, bad] = pod_records("streaming", [pod(namespace="other", phase="Failed")])
    assert bad["name"] == "pod other/vitalstream-api-7d9f"


def container(service: str, state: str, status: str, name: str | None = None) -> dict:
    return {"service": service, "name": name or f"vitalstream-{service}-1", "state": state, "status": status}


@pytest.mark.parametrize("containers, expected_services, error, expected", [
    pytest.param([container("web", "running", "Up 2 hours"), container("api", "running", "Up 2 hours (healthy)")],
                 (), None,
                 [make_record("compose vitalstream/api", "compose", "ok",
                              "running: Up 2 hours (healthy) (vitalstream-api-1)",
                              after={"state": "running", "status": "Up 2 hours (healthy)",
                                     "container": "vitalstream-api-1"}),
                  make_record("compose vitalstream/web", "compose", "ok", "running: Up 2 hours (vitalstream-web-1)",
                              after={"state": "running", "status": "Up 2 hours", "container": "vitalstream-web-1"})],
                 id="running, sorted by container name"),
    pytest.param([container("worker", "exited", "Exited (137) 5 minutes ago")], (), None,
                 [make_record("compose vitalstream/worker", "compose", "breach",
                              "exited: Exited (137) 5 minutes ago (vitalstream-worker-1)",
                              after={"state": "exited", "status": "Exited (137) 5 minutes ago",
                                     "container": "vitalstream-worker-1"})], id="exited"),
    pytest.param([container("api", "running", "Up 3 minutes (unhealthy)")], (), None,
                 [make_record("compose vitalstream/api", "compose", "breach",
                              "running: Up 3 minutes (unhealthy) (vitalstream-api-1)",
                              after={"state": "running", "status": "Up 3 minutes (unhealthy)",
                                     "container": "vitalstream-api-1"})], id="running (unhealthy)"),
    pytest.param([container("api", "restarting", "Restarting (1) 2 seconds ago")], (), None,
                 [make_record("compose vitalstream/api", "compose", "breach",
                              "restarting: Restarting (1) 2 seconds ago (vitalstream-api-1)",
                              after={"state": "restarting", "status": "Restarting (1) 2 seconds ago",
                                     "container": "vitalstream-api-1"})], id="restarting"),
    pytest.param([{"service": "api", "name": "vitalstream-api-1"}], (), None,
                 [make_record("compose vitalstream/api", "compose", "breach", "unknown:  (vitalstream-api-1)",
                              after={"state": "unknown", "status": "", "container": "vitalstream-api-1"})],
                 id="no state"),
    pytest.param(None, (), "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                           "Is the docker daemon running?\n",
                 [make_record("compose vitalstream", "compose", "breach", "docker ps failed: Cannot connect to the "
                              "Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")],
                 id="docker error"),
    pytest.param([], ("api",), None,
                 [make_record("compose vitalstream", "compose", "breach",
                              "no containers with label com.docker.compose.project=vitalstream")],
                 id="no containers"),
    pytest.param([container("web", "running", "Up 1 hour")], ("web", "api"), None,
                 [make_record("compose vitalstream/web", "compose", "ok", "running: Up 1 hour (vitalstream-web-1)",
                              after={"state": "running", "status": "Up 1 hour", "container": "vitalstream-web-1"}),
                  make_record("compose vitalstream/api", "compose", "breach", "no container of service api")],
                 id="an expected service with no container"),
])
def test_compose_service_records(containers, expected_services, error, expected):
    found = compose_service_records("vitalstream", containers, expected_services, error=error)
    assert found == expected
    assert result_problems({"changed": False, "msg": "", "records": found}) == []


PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgICHzowCgYIKoZIzj0EAwIw\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize("lines, expected", [
    pytest.param([f"api-tls\t{base64.b64encode(PEM.encode()).decode()}"],
                 [{"name": "secret streaming/api-tls", "pem": PEM}], id="good"),
    pytest.param([f" api-tls \t {base64.b64encode(PEM.encode()).decode()} ", "", "   "],
                 [{"name": "secret streaming/api-tls", "pem": PEM}], id="spaces and blank lines"),
    pytest.param(["broken-tls\tnot base64!!"], [{"name": "secret streaming/broken-tls", "pem": ""}],
                 id="broken base64"),
    pytest.param(["cut-tls\tTUlJQ"], [{"name": "secret streaming/cut-tls", "pem": ""}], id="cut off base64"),
    pytest.param([f"binary-tls\t{base64.b64encode(bytes([0xff, 0xfe, 0x00])).decode()}"],
                 [{"name": "secret streaming/binary-tls", "pem": ""}], id="not text"),
    pytest.param(["empty-tls\t"], [{"name": "secret streaming/empty-tls", "pem": ""}], id="no tls.crt"),
    pytest.param(["a-tls\t" + base64.b64encode(b"A").decode(), "b-tls\t%%%"],
                 [{"name": "secret streaming/a-tls", "pem": "A"}, {"name": "secret streaming/b-tls", "pem": ""}],
                 id="one good, one broken"),
    pytest.param([], [], id="no secrets"),
])
def test_tls_secret_texts(lines, expected):
    assert tls_secret_texts("streaming", lines) == expected
