"""blue_green_deploy: switch and rollback times, and failed requests during a switch.

On the lab's real Kubernetes 1.20 (and, when nginx is installed, on docker compose
behind a private nginx), the module's logic called in-process:

- switch: from "idle colour ready and smoke-tested" to "traffic on it" (the Service's
  Endpoints hold only the new pods / nginx has reloaded onto the new upstream), as the
  module's own ``switched`` step measures it. Goal < 1 s.
- rollback: the whole ``state: rolled_back`` call (read state, switch, post-switch
  check), wall time. Goal < 2 s.
- a client polls the front every 5 ms during every deploy and rollback (Kubernetes: a GET
  to each endpoint of the Service, as a front would; compose: a GET through nginx).
  Goal: no failed request.

``python bench/bench_blue_green.py 5`` runs 5 deploy + rollback rounds per platform (3 by
default). Prints medians and maxima; exits 0 either way.
"""
from __future__ import annotations

import json
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "build" / "collections"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

import docker  # noqa: E402

from ansible_collections.streamops.maintenance.plugins.module_utils.blue_green_runner import (  # noqa: E402
    run_blue_green_deploy,
)
from lab.harness.base import free_port, wait_for  # noqa: E402
from lab.k8s.cluster import KubernetesCluster  # noqa: E402
from lab.k8s.control import kubectl  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ALWAYS = [{"name": "always", "rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "23h59m"}]


class Poller:
    """A client that requests the front every 5 ms and counts what failed."""

    def __init__(self, fetch) -> None:
        self.fetch = fetch
        self.ok = 0
        self.failed: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.fetch()
                self.ok += 1
            except Exception as exc:  # noqa: BLE001 - every failure counts, whatever it is
                self.failed.append(str(exc))
            time.sleep(0.005)

    def __enter__(self) -> Poller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def get(url: str) -> str:
    with DIRECT.open(url, timeout=2) as response:
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
        return response.read().decode().strip()


def rounds(params: dict, poller: Poller, versions: list[str]) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"switch": [], "rollback": [], "rollback_switch": []}
    for version in versions:
        result = run_blue_green_deploy({**params, "state": "deployed", "version": version}, check_mode=False)
        assert not result["failed"], result["msg"]
        figures["switch"].append(next(r["seconds"] for r in result["records"] if r["action"] == "switched"))
        began = time.perf_counter()
        result = run_blue_green_deploy({**params, "state": "rolled_back", "version": None}, check_mode=False)
        figures["rollback"].append(time.perf_counter() - began)
        assert not result["failed"], result["msg"]
        figures["rollback_switch"].append(next(r["seconds"] for r in result["records"] if r["action"] == "switched"))
    print(f"  polled the front {poller.ok} times during the rounds, {len(poller.failed)} failed"
          + (f": {poller.failed[:3]}" if poller.failed else ""), flush=True)
    return figures


def report(platform: str, figures: dict[str, list[float]]) -> None:
    for name, goal in (("switch", 1.0), ("rollback", 2.0)):
        values = figures[name]
        print(f"{platform:10s} {name:8s} median {statistics.median(values) * 1000:7.1f} ms  max "
              f"{max(values) * 1000:7.1f} ms  (goal < {goal:g} s: {'met' if max(values) < goal else 'NOT met'})")
    values = figures["rollback_switch"]
    print(f"{platform:10s} rollback's own switch: median {statistics.median(values) * 1000:.1f} ms")


def kubernetes() -> None:
    from test_blue_green_k8s import APP, MANIFEST, SERVICE  # the test estate, one source of truth

    cluster = KubernetesCluster()
    info = cluster.start()
    try:
        client = docker.DockerClient(base_url=info.docker_host)
        base = client.images.get(info.image)
        versions = [f"b{n}" for n in range(ROUNDS)]
        for tag in ["v1", *versions]:
            base.tag("bg-app", tag)
        client.close()
        kubectl(info, ["create", "namespace", "bench"])
        wait_for(lambda: cluster.service_account_ready("bench"), timeout=30, what="service account")
        ports = {"blue": free_port(), "green": free_port()}
        docs = [MANIFEST.substitute(colour=c, replicas=1 if c == "blue" else 0, port=ports[c], script=json.dumps(APP))
                for c in ("blue", "green")]
        kubectl(info, ["--namespace=bench", "apply", "-f", "-"], stdin="\n---\n".join(docs + [SERVICE]))
        kubectl(info, ["--namespace=bench", "rollout", "status", "deployment/bgapp-blue", "--timeout=60s"])
        params = {"platform": "kubernetes", "app": "bgapp", "image": "bg-app", "windows": ALWAYS, "window": None,
                  "blackouts": None, "timezone": "UTC", "emergency": None, "now": None, "to_version": None,
                  "kubernetes": {"kubeconfig": info.kubeconfig, "namespace": "bench", "port_name": "http",
                                 "context": None, "container": None, "service": None, "preview_service": None,
                                 "colour_label": "color"},
                  "smoke_checks": [{"path": "/health"}], "post_checks": None, "ready_timeout": 60,
                  "migration": None, "keep_previous_for": None, "deployed_by": "bench", "reason": "bench"}
        from kubernetes import client as k8s, config  # noqa: PLC0415

        core = k8s.CoreV1Api(config.new_client_from_config(config_file=info.kubeconfig))

        def through_the_service() -> None:
            endpoints = core.read_namespaced_endpoints("bgapp", "bench")
            addresses = [(a.ip, p.port) for s in endpoints.subsets or [] for a in s.addresses or [] for p in s.ports]
            if not addresses:
                raise OSError("no endpoint")
            for ip, port in addresses:
                get(f"http://{ip}:{port}/health")

        with Poller(through_the_service) as poller:
            figures = rounds(params, poller, versions)
        report("kubernetes", figures)
    finally:
        cluster.stop()


def compose() -> None:
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from lab.harness.compose_app import compose_command, remove_project  # noqa: PLC0415
    from lab.harness.docker_engine import DockerEngine  # noqa: PLC0415
    from lab.harness.nginx import NginxFront  # noqa: PLC0415

    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        print("compose: nginx is not installed (make deps installs nginx-light); skipped")
        return
    root = Path(tempfile.mkdtemp(prefix="streamops-bench-bg-"))
    engine = DockerEngine(root / "docker")
    engine.ensure()
    nginx = None
    app = "bgbench"
    try:
        base = engine.client().images.get(engine.base_image())
        versions = [f"b{n}" for n in range(ROUNDS)]
        for tag in ["v1", *versions]:
            base.tag("streamops-lab/bg-app", tag)
        upstream = root / "upstream.conf"
        upstream.write_text(f"upstream {app} {{ server 127.0.0.1:{free_port()}; }}\n")
        (root / "project").mkdir()
        nginx = NginxFront(root / "nginx", upstream_file=upstream, upstream_name=app)
        nginx.start()
        params = {"platform": "compose", "app": app, "image": "streamops-lab/bg-app", "windows": ALWAYS,
                  "window": None, "blackouts": None, "timezone": "UTC", "emergency": None, "now": None,
                  "to_version": None, "kubernetes": None,
                  "compose": {"project_dir": str(root / "project"),
                              "compose_file": str(REPO / "lab" / "compose" / "bluegreen" / "docker-compose.yml"),
                              "ports": {"blue": free_port(), "green": free_port()},
                              "nginx_upstream_file": str(upstream), "nginx_conf": str(nginx.conf),
                              "nginx_binary": nginx.binary, "front_url": nginx.url, "docker_host": engine.host,
                              "state_file": None},
                  "smoke_checks": [{"path": "/health"}], "post_checks": None, "ready_timeout": 60,
                  "migration": None, "keep_previous_for": None, "deployed_by": "bench", "reason": "bench"}
        result = run_blue_green_deploy({**params, "state": "deployed", "version": "v1"}, check_mode=False)
        assert not result["failed"], result["msg"]
        with Poller(lambda: get(nginx.url + "/health")) as poller:
            figures = rounds(params, poller, versions)
        report("compose", figures)
    finally:
        if nginx is not None:
            nginx.stop()
        env = {**engine.docker_env(), "APP_IMAGE": "x:down", "APP_VERSION": "down", "APP_PORT": "1",
               "APP_COLOUR": "down"}
        for colour in ("blue", "green"):
            subprocess.run([*compose_command(engine.host), "-p", f"{app}-{colour}", "-f",
                            str(REPO / "lab" / "compose" / "bluegreen" / "docker-compose.yml"), "down",
                            "--timeout", "5"], env=env, capture_output=True, check=False)
            remove_project(engine, f"{app}-{colour}")
        engine.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    print(f"{ROUNDS} deploy + rollback rounds per platform", flush=True)
    kubernetes()
    compose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
