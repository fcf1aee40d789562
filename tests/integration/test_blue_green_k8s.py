"""blue_green_deploy on the lab's real Kubernetes 1.20, asserted by requesting through the Service's endpoints.

The pods use the host's network (the lab engine has no pod network), each colour on
its own loopback port; the Service's Endpoints are what a front (kube-proxy, an
ingress) would send traffic to, so a GET to each endpoint is where traffic really goes.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from string import Template

import docker
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import blue_green_deploy
from lab.harness.base import free_port, wait_for
from lab.k8s.control import STREAM_API_SCRIPT

pytestmark = [pytest.mark.integration, pytest.mark.k8s]

ALWAYS = [{"name": "always", "rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "23h59m"}]
WEEKLY = [{"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h"}]
OUTSIDE = "2026-11-24T15:00:00Z"
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# The lab's own stream-api app: it picks its behaviour from its version label (all tags are the
# same busybox image): "never-ready" serves nothing, "smoke-fail" serves a wrong /version, "smoke500"
# answers /health with HTTP 500 (its readiness probe asks /ready, which it passes).
# Here it also answers /tuning with $TUNING (a variable a deploy's spec sets), is never ready when that
# holds "never-ready" and exits 3 at once (saying why in its termination message) when it holds "crash":
# the spec goes through the same gates as a version.
APP = ('case "${TUNING:-}" in *never-ready*) exec sleep 3600;;\n'
       '  *crash*) echo "refusing TUNING=$TUNING" > /dev/termination-log; exit 3;; esac\n'
       + STREAM_API_SCRIPT.replace("exec httpd", 'echo "${TUNING:-}" > /www/tuning\nexec httpd', 1))
assert "/www/tuning" in APP, "lab/k8s/control.py STREAM_API_SCRIPT no longer starts httpd with `exec httpd`"
MANIFEST = Template("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: bgapp-$colour, labels: {app: bgapp, color: $colour}}
spec:
  replicas: $replicas
  progressDeadlineSeconds: 120
  # The idle colour has no traffic: replace its pod outright (host network: a new pod could
  # not bind the port while the old one runs).
  strategy: {type: Recreate}
  selector: {matchLabels: {app: bgapp, color: $colour}}
  template:
    metadata:
      labels: {app: bgapp, color: $colour, app.kubernetes.io/version: "v1"}
    spec:
      hostNetwork: true
      terminationGracePeriodSeconds: 1
      containers:
        - name: bgapp
          image: bg-app:v1
          imagePullPolicy: Never
          # A failed start says why in the pod's status, which the module's message quotes: CI keeps no pod logs.
          terminationMessagePolicy: FallbackToLogsOnError
          command: ["/bin/sh", "-c", $script]
          env:
            - {name: APP_PORT, value: "$port"}
            - name: APP_VERSION
              valueFrom: {fieldRef: {fieldPath: "metadata.labels['app.kubernetes.io/version']"}}
          ports: [{name: http, containerPort: $port}]
          readinessProbe:
            exec: {command: [wget, -q, -Y, "off", -O, /dev/null, "http://127.0.0.1:$port/ready"]}
            periodSeconds: 1
""")
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: bgapp}
spec:
  selector: {app: bgapp, color: blue}
  ports: [{name: http, port: 80, targetPort: http}]
"""


@pytest.fixture(scope="module")
def images(k8s_cluster):
    client = docker.DockerClient(base_url=k8s_cluster.info.docker_host)
    try:
        base = client.images.get(k8s_cluster.image)
        for tag in ("v1", "v2", "v3", "v4-never-ready", "v5-smoke-fail", "v2-smoke500"):
            base.tag("bg-app", tag)
        yield "bg-app"
    finally:
        client.close()


@pytest.fixture
def estate(k8s_cluster, k8s_namespace, images):
    """bgapp-blue (v1, 1 pod, with the traffic) and bgapp-green (0 pods), each on its own loopback port."""
    ports = {"blue": free_port(), "green": free_port()}
    docs = [MANIFEST.substitute(colour=colour, replicas=1 if colour == "blue" else 0, port=ports[colour],
                                script=json.dumps(APP)) for colour in ("blue", "green")]
    k8s_cluster.kubectl("apply", "-f", "-", namespace=k8s_namespace, stdin="\n---\n".join(docs + [SERVICE]))
    k8s_cluster.kubectl("rollout", "status", "deployment/bgapp-blue", "--timeout=60s", namespace=k8s_namespace)
    wait_for(lambda: front_versions(k8s_cluster, k8s_namespace) == ["v1"], timeout=30, what="v1 behind the Service")
    return {"namespace": k8s_namespace, "ports": ports}


def endpoints(k8s_cluster, namespace):
    out = json.loads(k8s_cluster.kubectl("get", "endpoints", "bgapp", "-o", "json", namespace=namespace))
    return [(a["ip"], p["port"]) for s in out.get("subsets") or [] for a in s.get("addresses") or []
            for p in s.get("ports") or []]


def get(url, timeout=2.0):
    with DIRECT.open(url, timeout=timeout) as response:
        return response.read().decode().strip()


def front_versions(k8s_cluster, namespace):
    """What traffic through the Service gets: GET /version on every endpoint."""
    return sorted({get(f"http://{ip}:{port}/version") for ip, port in endpoints(k8s_cluster, namespace)})


def module_args(k8s_cluster, estate, **args):
    return {"platform": "kubernetes", "app": "bgapp", "image": "bg-app", "windows": ALWAYS,
            "kubernetes": {"kubeconfig": k8s_cluster.kubeconfig, "namespace": estate["namespace"],
                           "port_name": "http"},
            "smoke_checks": [{"path": "/version", "contains": args.get("version") or "v"}],
            # Generous: a healthy rollout takes seconds, but on 2 cores under the full suite the old pod's
            # termination and the new pod's start were once seen to take over 60 s (0 updated after 60 s).
            "ready_timeout": 180, **args}


def run(k8s_cluster, estate, capsys, **args):
    with patch_module_args(module_args(k8s_cluster, estate, **args)), pytest.raises(SystemExit) as exited:
        blue_green_deploy.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=bool(args.get("_ansible_check_mode"))) == [], result
    return result.get("failed", False), result


def test_deploy_switches_traffic_and_keeps_the_previous_colour(k8s_cluster, estate, capsys):
    failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v2", reason="CHG-1")
    assert not failed, result
    assert front_versions(k8s_cluster, estate["namespace"]) == ["v2"]
    assert result["active_before"] == "blue" and result["active_after"] == "green"
    ns = estate["namespace"]
    # The previous version still runs, ready, for an instant rollback.
    assert get(f"http://127.0.0.1:{estate['ports']['blue']}/version") == "v1"
    selector = json.loads(k8s_cluster.kubectl("get", "service", "bgapp", "-o", "json", namespace=ns))["spec"]["selector"]
    assert selector["color"] == "green"
    failed, again = run(k8s_cluster, estate, capsys, state="deployed", version="v2")
    assert not failed and again["changed"] is False
    failed, status = run(k8s_cluster, estate, capsys, state="status")
    assert status["active"] == "green" and status["colours"]["blue"]["version"] == "v1"
    assert [e["result"] for e in status["history"]] == ["switching", "live"]
    assert status["history"][-1]["reason"] == "CHG-1"


def test_check_mode_plans_and_changes_nothing(k8s_cluster, estate, capsys):
    failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v2", _ansible_check_mode=True)
    assert not failed and result["changed"] is True
    assert result["plan"]["from"] == {"colour": "blue", "version": "v1"}
    assert result["plan"]["to"] == {"colour": "green", "version": "v2"}
    assert front_versions(k8s_cluster, estate["namespace"]) == ["v1"]
    replicas = k8s_cluster.kubectl("get", "deployment", "bgapp-green", "-o", "jsonpath={.spec.replicas}",
                                   namespace=estate["namespace"])
    assert replicas == "0"


# --------------------------------------------------------------------------- campaign: green failing (issue 20)
# A poller through the Service (GET /version on each of its endpoints) from before the failed deploy to after
# the re-run: every sample must be a healthy version (v1, v2), never an error or an empty Service.


def check_failed_green(case, k8s_cluster, estate, capsys, poller, result, *, bad, names):
    """A failed deploy of ``bad`` while blue (v1) has the traffic: message, Service, history; then v2 converges."""
    ns = estate["namespace"]
    case.check_error(result, names=names)
    served = front_versions(k8s_cluster, ns)
    case.check_data(served == ["v1"], f"the Service serves {served} after the failed deploy of {bad}")
    selector, _annotations = service(k8s_cluster, ns)
    failed, status = run(k8s_cluster, estate, capsys, state="status")
    open_entries = [entry for entry in status["history"] if entry.get("version") == bad
                    and entry.get("result") in ("live", "switching") and entry is status["history"][-1]]
    case.check_no_partial(open_entries + ([f"Service selects {selector}"] if selector.get("color") != "blue" else []),
                          f"after the failed deploy of {bad}")
    failed, again = run(k8s_cluster, estate, capsys, state="deployed", version="v2")
    served = front_versions(k8s_cluster, ns)
    case.check_converged(not failed and served == ["v2"], f"v2 after the failure: {again['msg']}; Service {served}")
    time.sleep(0.1)
    poller.stop()
    unhealthy = [versions for versions in poller.seen if versions not in (["v1"], ["v2"])]
    case.check_data(not unhealthy and len(poller.seen) > 10,
                    f"traffic through the Service: {len(unhealthy)} of {len(poller.seen)} samples not one healthy "
                    f"version: {unhealthy[:3]}")


@pytest.mark.reliability
def test_a_version_that_never_gets_ready_never_gets_traffic(k8s_cluster, estate, capsys, campaign):
    poller = FrontPoller(k8s_cluster, estate["namespace"])
    poller.start()
    try:
        with campaign.case("bluegreen_green", "kubernetes: green never ready") as case:
            failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v4-never-ready",
                                 ready_timeout=8)
            check_failed_green(case, k8s_cluster, estate, capsys, poller, result, bad="v4-never-ready",
                               names=["v4-never-ready", "did not become ready", "traffic stays on blue"])
    finally:
        poller.stop()


@pytest.mark.reliability
def test_a_version_that_fails_smoke_never_gets_traffic(k8s_cluster, estate, capsys, campaign):
    poller = FrontPoller(k8s_cluster, estate["namespace"])
    poller.start()
    try:
        with campaign.case("bluegreen_green", "kubernetes: green fails its smoke checks") as case:
            failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v5-smoke-fail")
            check_failed_green(case, k8s_cluster, estate, capsys, poller, result, bad="v5-smoke-fail",
                               names=["smoke checks on green failed", "does not contain 'v5-smoke-fail'",
                                      "traffic stays on blue"])
    finally:
        poller.stop()


@pytest.mark.reliability
def test_a_failure_after_the_switch_puts_traffic_back(k8s_cluster, estate, capsys, campaign):
    poller = FrontPoller(k8s_cluster, estate["namespace"])
    poller.start()
    try:
        with campaign.case("bluegreen_green",
                           "kubernetes: the Service fails its checks right after the switch") as case:
            failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v2",
                                 post_checks=[{"path": "/version", "contains": "v9", "retries": 1}])
            assert result["active_after"] == "blue"
            check_failed_green(case, k8s_cluster, estate, capsys, poller, result, bad="v9",
                               names=["post-switch checks failed", "traffic is back on blue (v1)"])
    finally:
        poller.stop()


def test_rollback_is_instant_and_can_name_an_older_version(k8s_cluster, estate, capsys):
    for version in ("v2", "v3"):
        failed, result = run(k8s_cluster, estate, capsys, state="deployed", version=version)
        assert not failed, result["msg"]
    assert front_versions(k8s_cluster, estate["namespace"]) == ["v3"]
    failed, result = run(k8s_cluster, estate, capsys, state="rolled_back")
    assert not failed and result["version_after"] == "v2", result
    assert front_versions(k8s_cluster, estate["namespace"]) == ["v2"]
    switched = next(record for record in result["records"] if record["action"] == "switched")
    assert switched["seconds"] < 2
    failed, result = run(k8s_cluster, estate, capsys, state="rolled_back", to_version="v1")
    assert not failed and result["version_after"] == "v1", result
    assert front_versions(k8s_cluster, estate["namespace"]) == ["v1"]
    failed, result = run(k8s_cluster, estate, capsys, state="rolled_back", to_version="v7")
    assert failed and "to_version 'v7' was never live here" in result["msg"]


def test_traffic_does_not_move_outside_the_window(k8s_cluster, estate, capsys):
    failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v2", windows=WEEKLY, now=OUTSIDE)
    assert failed and "refusing to switch traffic to v2" in result["msg"]
    assert result["window"]["allowed"] is False and result["window"]["next_window"] == "weekly"
    assert [(r["action"], r["status"]) for r in result["records"]] == [("deploy", "failed")]
    assert front_versions(k8s_cluster, estate["namespace"]) == ["v1"]
    failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v2", windows=WEEKLY, now=OUTSIDE,
                         emergency={"approved_by": "oncall", "reason": "CVE fix", "ticket": "INC-9"})
    assert not failed, result
    assert result["window"]["mode"] == "emergency" and result["window"]["emergency"]["ticket"] == "INC-9"
    assert front_versions(k8s_cluster, estate["namespace"]) == ["v2"]


def generation(k8s_cluster, namespace, name):
    return int(k8s_cluster.kubectl("get", "deployment", name, "-o", "jsonpath={.metadata.generation}",
                                   namespace=namespace))


def green_pods(k8s_cluster, namespace):
    found = json.loads(k8s_cluster.kubectl("get", "pods", "-l", "color=green", "-o", "json", namespace=namespace))
    return sorted((pod["metadata"]["name"], sum(s["restartCount"] for s in pod["status"].get("containerStatuses") or []))
                  for pod in found["items"])


def test_a_rerun_of_a_failed_deploy_leaves_the_idle_colours_pods_as_they_are(k8s_cluster, estate, capsys):
    """The re-run an operator makes after a failed deploy checks the same pods again, it does not roll them: a
    null annotation stored as "" made the second patch change the template (and, on a host port, crash the new
    pod on the port the old one still held)."""
    ns = estate["namespace"]
    failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v5-smoke-fail")
    assert failed and "smoke checks on green failed" in result["msg"], result["msg"]
    before = (generation(k8s_cluster, ns, "bgapp-green"), green_pods(k8s_cluster, ns))
    failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v5-smoke-fail")
    assert failed and "smoke checks on green failed" in result["msg"], result["msg"]
    assert (generation(k8s_cluster, ns, "bgapp-green"), green_pods(k8s_cluster, ns)) == before
    assert front_versions(k8s_cluster, ns) == ["v1"]


KILLABLE = """
import json, sys
from ansible.module_utils.testing import patch_module_args
from ansible_collections.streamops.maintenance.plugins.modules import blue_green_deploy
with patch_module_args(json.loads(sys.argv[1])):
    blue_green_deploy.main()
"""


@pytest.mark.reliability
def test_killed_mid_deploy_then_rerun_converges_with_healthy_traffic_throughout(k8s_cluster, estate, capsys, campaign):
    ns = estate["namespace"]
    poller = FrontPoller(k8s_cluster, ns)
    poller.start()
    try:
        with campaign.case("bluegreen_killed", "kubernetes deploy v1 -> v2, killed (-9) while green rolls out") as case:
            args = module_args(k8s_cluster, estate, state="deployed", version="v2")
            # Its own session: the kill takes the module and whatever it runs, as an AWX cancel does.
            proc = subprocess.Popen([sys.executable, "-c", KILLABLE, json.dumps(args)], stdout=subprocess.PIPE,
                                    env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                                    start_new_session=True)
            # Killed while green rolls out: after the Deployment was patched, before the switch.
            wait_for(lambda: k8s_cluster.kubectl("get", "deployment", "bgapp-green", "-o",
                                                 "jsonpath={.spec.replicas}", namespace=ns) == "1",
                     timeout=60, what="green being deployed")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rolled = generation(k8s_cluster, ns, "bgapp-green")
            # Killed before its switch (almost always: the rollout takes seconds), or just after it.
            served = front_versions(k8s_cluster, ns)
            case.check_data(served in (["v1"], ["v2"]), f"the Service serves {served} after the kill")
            failed, status = run(k8s_cluster, estate, capsys, state="status")
            last = status["history"][-1] if status["history"] else {}
            case.check_no_partial([f"history's last entry {last} while the Service serves {served}"]
                                  if last.get("result") == "live" and [last.get("version")] != served else [],
                                  "after the kill")
            failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v2")
            served = front_versions(k8s_cluster, ns)
            case.check_converged(not failed and served == ["v2"], f"{result['msg']}; Service {served}")
            # The re-run finishes the killed run's rollout; rolling green again put a second pod on its host port.
            case.check_converged(generation(k8s_cluster, ns, "bgapp-green") == rolled,
                                 f"the re-run changed green's template again (generation {rolled} before it)")
            failed, status = run(k8s_cluster, estate, capsys, state="status")
            last = status["history"][-1]
            case.check_converged((last["version"], last["result"], status["active"]) == ("v2", "live", "green"),
                                 f"history after the re-run ends {last}")
            failed, again = run(k8s_cluster, estate, capsys, state="deployed", version="v2")
            case.check_converged(not failed and again["changed"] is False, again["msg"])
            poller.stop()
            unhealthy = [versions for versions in poller.seen if versions not in (["v1"], ["v2"])]
            case.check_data(not unhealthy and len(poller.seen) > 10,
                            f"traffic through the Service: {len(unhealthy)} of {len(poller.seen)} samples not one "
                            f"healthy version: {sorted(map(str, unhealthy))[-5:]}")
    finally:
        poller.stop()


# --------------------------------------------------------------------------- rollback to a known-good version only

HEALTH = [{"path": "/health", "retries": 2, "delay": 0.2}]


def start_green_by_hand(k8s_cluster, estate, version):
    """What an operator did before the collection managed the app: green scaled up with ``version`` by kubectl."""
    patch = {"spec": {"replicas": 1, "template": {
        "metadata": {"labels": {"app.kubernetes.io/version": version}},
        "spec": {"containers": [{"name": "bgapp", "image": f"bg-app:{version}"}]}}}}
    ns = estate["namespace"]
    k8s_cluster.kubectl("patch", "deployment", "bgapp-green", "-p", json.dumps(patch), namespace=ns)
    k8s_cluster.kubectl("rollout", "status", "deployment/bgapp-green", "--timeout=60s", namespace=ns)


def service(k8s_cluster, namespace):
    found = json.loads(k8s_cluster.kubectl("get", "service", "bgapp", "-o", "json", namespace=namespace))
    return found["spec"]["selector"], found["metadata"].get("annotations") or {}


def status_of(url):
    try:
        with DIRECT.open(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class FrontPoller(threading.Thread):
    """What traffic through the Service gets (GET /version on each of its endpoints), every 20 ms, until stopped."""

    def __init__(self, k8s_cluster, namespace):
        from kubernetes import client  # noqa: PLC0415

        super().__init__(daemon=True)
        self.core = client.CoreV1Api(k8s_cluster.api_client())
        self.namespace = namespace
        self.seen, self.done = [], threading.Event()

    def versions(self):
        found = self.core.read_namespaced_endpoints("bgapp", self.namespace)
        return sorted({get(f"http://{address.ip}:{port.port}/version") for subset in found.subsets or []
                       for address in subset.addresses or [] for port in subset.ports or []})

    def run(self):
        while not self.done.is_set():
            try:
                self.seen.append(self.versions() or ["(no endpoint)"])
            except (OSError, ValueError) as exc:
                self.seen.append([f"error: {exc}"])
            time.sleep(0.02)

    def stop(self):
        self.done.set()
        self.join(5)


def test_a_rollback_without_history_never_switches_to_a_kept_version_that_fails_its_smoke_check(
        k8s_cluster, estate, capsys):
    ns = estate["namespace"]
    start_green_by_hand(k8s_cluster, estate, "v2-smoke500")
    green = f"http://127.0.0.1:{estate['ports']['green']}"
    assert status_of(green + "/health") == 500 and get(green + "/version") == "v2-smoke500"
    before = service(k8s_cluster, ns)
    assert before[0]["color"] == "blue" and not any("blue-green-history" in key for key in before[1])
    poller = FrontPoller(k8s_cluster, ns)
    poller.start()
    try:
        failed, planned = run(k8s_cluster, estate, capsys, state="rolled_back", smoke_checks=HEALTH,
                              _ansible_check_mode=True)
        assert not failed and planned["changed"], planned["msg"]
        assert planned["plan"]["changes"][0].startswith("check green (v2-smoke500) first, as a deploy does")
        failed, bare = run(k8s_cluster, estate, capsys, state="rolled_back", smoke_checks=[])
        assert failed and "nothing proves it good" in bare["msg"] and "traffic stays on blue (v1)" in bare["msg"]
        for extra in ({}, {"to_version": "v2-smoke500"}):
            failed, result = run(k8s_cluster, estate, capsys, state="rolled_back", smoke_checks=HEALTH, **extra)
            assert failed and not result["changed"], result["msg"]
            assert "smoke checks on green failed" in result["msg"] and "HTTP 500" in result["msg"], result["msg"]
            assert "traffic stays on blue (v1)" in result["msg"] and result["active_after"] == "blue"
            assert [(r["action"], r["status"]) for r in result["records"]] == [
                ("rollback", "failed"), ("ready", "ok"), ("smoke", "failed"), ("live", "ok")]
        time.sleep(0.3)
    finally:
        poller.stop()
    assert len(poller.seen) > 20 and all(versions == ["v1"] for versions in poller.seen), sorted(map(str, poller.seen))[-5:]
    assert service(k8s_cluster, ns) == before
    assert front_versions(k8s_cluster, ns) == ["v1"]
    # Green is left as it was: running, ready, without traffic.
    assert get(green + "/version") == "v2-smoke500"


def test_a_rollback_without_history_checks_a_healthy_kept_version_then_switches(k8s_cluster, estate, capsys):
    ns = estate["namespace"]
    start_green_by_hand(k8s_cluster, estate, "v2")
    failed, result = run(k8s_cluster, estate, capsys, state="rolled_back", smoke_checks=HEALTH)
    assert not failed and result["msg"] == "rolled back to v2 on green; v1 kept on blue", result["msg"]
    assert [(r["action"], r["status"]) for r in result["records"]] == [
        ("rollback", "done"), ("ready", "ok"), ("smoke", "ok"), ("switched", "done"), ("post_check", "ok"),
        ("live", "ok")]
    assert front_versions(k8s_cluster, ns) == ["v2"]
    assert service(k8s_cluster, ns)[0]["color"] == "green"
    failed, status = run(k8s_cluster, estate, capsys, state="status")
    assert [(e["action"], e["result"]) for e in status["history"]] == [("rollback", "switching"), ("rollback", "live")]


# --------------------------------------------------------------------------- tuning: env and resources


def app_container(k8s_cluster, namespace, colour):
    deployment = json.loads(k8s_cluster.kubectl("get", "deployment", f"bgapp-{colour}", "-o", "json",
                                                namespace=namespace))
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "bgapp")


def front_tuning(k8s_cluster, namespace):
    return sorted({get(f"http://{ip}:{port}/tuning") for ip, port in endpoints(k8s_cluster, namespace)})


def test_a_spec_goes_through_the_blue_green_path_and_a_rollback_restores_it(k8s_cluster, estate, capsys):
    ns = estate["namespace"]
    fast = {"env": {"TUNING": "fast"},
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}}}
    failed, planned = run(k8s_cluster, estate, capsys, state="deployed", version="v1", spec=fast,
                          _ansible_check_mode=True, _ansible_diff=True)
    assert not failed and planned["changed"] and planned["plan"]["spec"]["changes"].startswith("+env TUNING=fast")
    assert "green env TUNING=fast" in planned["diff"]["after"] and "limits.memory=64Mi" in planned["diff"]["after"]
    assert front_versions(k8s_cluster, ns) == ["v1"]
    assert "TUNING" not in {item["name"] for item in app_container(k8s_cluster, ns, "green")["env"]}

    # The same version with a spec is a deploy: to green, through readiness and smoke, then the switch.
    failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v1", spec=fast)
    assert not failed and result["active_after"] == "green" and result["spec_after"]["env"] == {"TUNING": "fast"}, result
    assert front_versions(k8s_cluster, ns) == ["v1"] and front_tuning(k8s_cluster, ns) == ["fast"]
    green = app_container(k8s_cluster, ns, "green")
    assert {"name": "TUNING", "value": "fast"} in green["env"]
    assert green["resources"] == fast["resources"]
    failed, again = run(k8s_cluster, estate, capsys, state="deployed", version="v1", spec=fast)
    assert not failed and again["changed"] is False, again["msg"]

    # A spec whose pods never get ready never gets traffic.
    failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v1", ready_timeout=8,
                         spec={"env": {"TUNING": "never-ready"}})
    assert failed and "did not become ready" in result["msg"] and "traffic stays on green" in result["msg"]
    assert front_tuning(k8s_cluster, ns) == ["fast"]

    # A spec whose container exits fails as soon as the pod crash-loops, saying how the container ended.
    failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v1", spec={"env": {"TUNING": "crash"}})
    assert failed and "CrashLoopBackOff" in result["msg"] and "traffic stays on green" in result["msg"], result["msg"]
    assert "last ended: exit code 3, Error: refusing TUNING=crash" in result["msg"], result["msg"]
    assert front_tuning(k8s_cluster, ns) == ["fast"]

    # Another spec goes live on blue (the crashing one replaced), then the rollback restores green's.
    failed, result = run(k8s_cluster, estate, capsys, state="deployed", version="v2", spec={"env": {"TUNING": "slow"}})
    assert not failed and front_tuning(k8s_cluster, ns) == ["slow"] and front_versions(k8s_cluster, ns) == ["v2"]
    blue = app_container(k8s_cluster, ns, "blue")
    assert {"name": "TUNING", "value": "slow"} in blue["env"] and not blue.get("resources")
    failed, result = run(k8s_cluster, estate, capsys, state="rolled_back")
    assert not failed and result["version_after"] == "v1" and result["spec_after"] == result["records"][0]["after"]["spec"]
    assert front_tuning(k8s_cluster, ns) == ["fast"] and front_versions(k8s_cluster, ns) == ["v1"]
    failed, status = run(k8s_cluster, estate, capsys, state="status")
    assert status["colours"]["green"]["spec"]["env"] == {"TUNING": "fast"}
    assert status["colours"]["blue"]["spec"] == {"env": {"TUNING": "slow"}}
    assert [e.get("spec", {}).get("env") for e in status["history"] if e["result"] == "live"] == [
        {"TUNING": "fast"}, {"TUNING": "slow"}, {"TUNING": "fast"}]
