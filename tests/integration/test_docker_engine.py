"""The Docker lab harness runs a real engine, real containers and Debian's promtool."""
from __future__ import annotations

import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from lab.harness.base import LOOPBACK, free_port, wait_for
from lab.harness.compose_app import ALARM_COUNT_PATH, PROJECT_LABEL, ComposeApp
from lab.harness.docker_engine import BASE_IMAGE_REPO, LAB_LABEL, DockerEngine, ping
from lab.harness.promtool import check_rules

pytestmark = pytest.mark.docker

# Requests go straight to loopback, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(port: int, path: str = "/") -> str:
    with _DIRECT.open(f"http://{LOOPBACK}:{port}{path}", timeout=2) as response:
        body: bytes = response.read()
    return body.decode()


def answers(port: int, path: str = "/") -> bool:
    try:
        http_get(port, path)
    except OSError:
        return False
    return True


def listen_addresses(port: int) -> set[str]:
    """Local addresses of every TCP listener on ``port`` (IPv4 and IPv6), from /proc/net."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                if len(address) == 8:
                    found.add(".".join(str(b) for b in bytes.fromhex(address)[::-1]))
                else:
                    found.add(address)
    return found


def test_engine_has_no_bridge_network(docker_engine: DockerEngine) -> None:
    assert ping(docker_engine.host)
    if not docker_engine.owned:
        pytest.skip("engine was already running; its networks are not ours to judge")
    drivers = {net.name: net.attrs["Driver"] for net in docker_engine.client().networks.list()}
    assert "bridge" not in drivers.values(), drivers


def test_base_image_is_local_busybox(docker_engine: DockerEngine, lab_image: str) -> None:
    assert lab_image.startswith(f"{BASE_IMAGE_REPO}:")
    image = docker_engine.client().images.get(lab_image)
    assert image.labels[f"{LAB_LABEL}.image"] == "busybox"
    # Cached: a second call reuses the image instead of importing again.
    started = time.monotonic()
    assert docker_engine.base_image() == lab_image
    assert time.monotonic() - started < 5


def test_host_network_container_serves_on_loopback(docker_engine: DockerEngine, lab_image: str) -> None:
    port = free_port()
    body = f"hello-from-container-{uuid.uuid4().hex[:8]}"
    script = (f"mkdir -p /www && printf '%s' '{body}' > /www/index.html && "
              f"exec httpd -f -p {LOOPBACK}:{port} -h /www")
    container = docker_engine.client().containers.run(
        lab_image, ["sh", "-c", script], network_mode="host", detach=True,
        name=f"lab-httpd-{uuid.uuid4().hex[:8]}", labels={LAB_LABEL: "test"})
    try:
        wait_for(lambda: answers(port), timeout=20, what=f"httpd in container on port {port}")
        assert http_get(port, "/index.html") == body
        # The container shares the host's network namespace: its listener is
        # visible here, and only on loopback.
        assert listen_addresses(port) == {LOOPBACK}
    finally:
        container.remove(force=True)


def test_compose_app_answers_alarm_count(compose_app: ComposeApp) -> None:
    assert http_get(compose_app.api_port, ALARM_COUNT_PATH) == "3"
    assert http_get(compose_app.api_port, "/health") == "ok"
    assert listen_addresses(compose_app.api_port) == {LOOPBACK}
    services = compose_app.services()
    assert set(services) == {"api-gateway", "alarm-engine"}
    assert all(state.status == "running" for states in services.values() for state in states)
    # The alarm engine logs an ERROR on its first tick, for log-review tasks.
    wait_for(lambda: "ERROR" in compose_app.logs("alarm-engine"), timeout=15, what="an ERROR log line")


def test_compose_down_leaves_no_container(docker_engine: DockerEngine, lab_image: str,
                                          tmp_path: Path) -> None:
    app = ComposeApp(docker_engine, lab_image, project=f"vs-down-{uuid.uuid4().hex[:6]}", state_dir=tmp_path)
    try:
        app.up()
        assert len(app.containers()) == 2
        port = app.api_port
    finally:
        app.down()
    client = docker_engine.client()
    label = {"label": f"{PROJECT_LABEL}={app.project}"}
    assert client.containers.list(all=True, filters=label) == []
    assert client.volumes.list(filters=label) == []
    assert [n.name for n in client.networks.list() if app.project in n.name] == []
    assert not answers(port)
    assert not (tmp_path / f"{app.record_name}.json").exists()


def test_private_engine_stop_leaves_nothing(tmp_path_factory: pytest.TempPathFactory, lab_image: str) -> None:
    """An engine of our own (private socket and data-root) with a running container stops completely."""
    state = tmp_path_factory.mktemp("private-engine")
    engine = DockerEngine(state, host=f"unix://{state}/docker.sock", data_root=state / "data")
    try:
        engine.ensure()
        assert engine.owned and engine.pid is not None
        image = engine.base_image()
        engine.client().containers.run(image, ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"],
                                       network_mode="host", detach=True)
        assert len(engine.leftover_pids()) >= 4  # dockerd, containerd, shim, container
    finally:
        engine.stop()
    assert engine.leftover_pids() == []
    assert not engine.exec_root.exists()
    assert not ping(engine.host)


def test_promtool_accepts_valid_rules(promtool: str, tmp_path: Path) -> None:
    rules = tmp_path / "valid.rules.yml"
    rules.write_text(
        "groups:\n"
        "  - name: vitalstream\n"
        "    rules:\n"
        "      - alert: AlarmEngineDown\n"
        "        expr: up{job=\"alarm-engine\"} == 0\n"
        "        for: 2m\n"
        "        labels: {severity: critical}\n"
        "        annotations: {summary: alarm engine down}\n")
    ok, output = check_rules(rules)
    assert ok, output
    assert "SUCCESS" in output


def test_promtool_rejects_invalid_rules(promtool: str, tmp_path: Path) -> None:
    rules = tmp_path / "invalid.rules.yml"
    rules.write_text(
        "groups:\n"
        "  - name: vitalstream\n"
        "    rules:\n"
        "      - alert: Broken\n"
        "        expr: sum(rate(http_requests_total[5m]) by\n")
    ok, output = check_rules(rules)
    assert not ok
    assert "FAILED" in output
