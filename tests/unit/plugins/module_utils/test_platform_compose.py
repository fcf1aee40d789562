"""The parts of the compose blue/green driver that need no engine and no nginx: inputs, upstream file, state file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.blue_green import DeployError
from ansible_collections.streamops.maintenance.plugins.module_utils.platform_compose import (
    ComposePlatform,
    nginx_problem,
)


def make(tmp_path: Path, **overrides: object) -> ComposePlatform:
    values: dict = dict(app="api-gateway", project_dir=str(tmp_path), compose_file=None, image="registry/app",
                        ports={"blue": 8081, "green": 8082}, nginx_upstream_file=str(tmp_path / "upstream.conf"),
                        nginx_conf=str(tmp_path / "nginx.conf"), front_url="http://127.0.0.1:8080")
    values.update(overrides)
    return ComposePlatform(**values)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"app": "API Gateway"}, "app 'API Gateway'"),
    ({"ports": {"blue": 8081}}, "exactly blue and green"),
    ({"ports": {"blue": 8081, "green": 8081}}, "both 8081"),
    ({"ports": {"blue": 0, "green": 8082}}, "ports.blue 0"),
    ({"ports": {"blue": True, "green": 8082}}, "ports.blue True"),
    ({"ports": {"blue": "http", "green": 8082}}, "ports.blue 'http'"),
    ({"ports": [8081, 8082]}, "must be a dict"),
    ({"nginx_conf": "nginx.conf"}, "nginx_conf 'nginx.conf' must be an absolute path"),
    ({"nginx_upstream_file": ""}, "nginx_upstream_file '' must be an absolute path"),
    ({"project_dir": "/nonexistent/streamops"}, "is not a directory"),
    ({"front_url": "127.0.0.1:8080"}, "front_url '127.0.0.1:8080'"),
    ({"image": "registry/app:1.2"}, "without tag"),
    ({"state_file": "state.json"}, "state_file 'state.json'"),
    ({"docker_host": " "}, "docker_host ' '"),
    ({"ready_timeout_poll": 0}, "ready_timeout_poll 0"),
])
def test_bad_inputs_are_named(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(DeployError) as caught:
        make(tmp_path, **overrides)
    assert message in caught.value.msg


def test_defaults_and_string_ports(tmp_path: Path) -> None:
    platform = make(tmp_path, ports={"blue": "8081", "green": 8082})
    assert platform.ports == {"blue": 8081, "green": 8082}
    assert platform.compose.compose_file == str(tmp_path / "docker-compose.yml")
    assert platform.state.path == str(tmp_path / ".streamops-blue-green-api-gateway.json")
    assert platform.targets("green") == ["http://127.0.0.1:8082"]
    assert platform.front_targets() == ["http://127.0.0.1:8080"]
    env = platform.compose.env("green", "1.2.3")
    assert {k: env[k] for k in ("APP_IMAGE", "APP_VERSION", "APP_PORT", "APP_COLOUR")} == {
        "APP_IMAGE": "registry/app:1.2.3", "APP_VERSION": "1.2.3", "APP_PORT": "8082", "APP_COLOUR": "green"}


def test_active_reads_the_upstream_file(tmp_path: Path) -> None:
    platform = make(tmp_path)
    upstream = tmp_path / "upstream.conf"
    assert platform.active() is None
    for colour in ("blue", "green"):
        upstream.write_text(platform.front.upstream_text(colour))
        assert platform.active() == colour
    upstream.write_text("upstream api-gateway {\n  # server 127.0.0.1:8082;\n  server localhost:8081 max_fails=0;\n}\n")
    assert platform.active() == "blue"
    # The app before blue/green: no colour has the traffic yet.
    upstream.write_text("upstream api-gateway { server 127.0.0.1:9000; }\n")
    assert platform.active() is None
    upstream.write_text("upstream api-gateway { server 127.0.0.1:8081; server 127.0.0.1:8082; }\n")
    with pytest.raises(DeployError, match="not one colour"):
        platform.active()
    upstream.write_text("upstream api-gateway { }\n")
    with pytest.raises(DeployError, match="no `server` line"):
        platform.active()


def test_state_file_round_trip(tmp_path: Path) -> None:
    platform = make(tmp_path)
    assert platform.history() == []
    platform.save_history([{"version": "v1", "result": "live"}])
    platform.mark_kept("blue", "2026-11-24T00:00:00+00:00")
    platform.mark_kept("green", None)
    state = json.loads(Path(platform.state.path).read_text())
    assert state == {"history": [{"version": "v1", "result": "live"}],
                     "kept": {"blue": "2026-11-24T00:00:00+00:00", "green": None}}
    platform.state.forget_kept("blue")
    assert platform.state.read()["kept"] == {"green": None}
    assert [p.name for p in tmp_path.iterdir()] == [Path(platform.state.path).name]
    # A new state file names who deployed and why: only its owner reads it.
    assert Path(platform.state.path).stat().st_mode & 0o777 == 0o600
    Path(platform.state.path).write_text("{not json")
    with pytest.raises(DeployError, match="is not JSON"):
        platform.history()


def test_nginx_problem_keeps_only_what_is_wrong() -> None:
    output = ('2026/11/23 15:16:12 [emerg] 1020#1020: unknown directive "x" in /etc/nginx/a.conf:1\n'
              "nginx: configuration file /etc/nginx/nginx.conf test failed\n")
    assert nginx_problem(output) == '[emerg] unknown directive "x" in /etc/nginx/a.conf:1'


def test_a_state_file_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    platform = make(tmp_path, state_file=str(tmp_path / "missing" / "state.json"))
    with pytest.raises(DeployError, match=r"cannot write .*/missing/state.json"):
        platform.save_history([{"version": "v1"}])
    assert not (tmp_path / "missing").exists()


def test_a_rejected_configuration_puts_the_upstream_file_back(tmp_path: Path) -> None:
    # `false` stands in for an nginx whose test (-T) rejects the configuration.
    platform = make(tmp_path, nginx_binary="false")
    upstream = tmp_path / "upstream.conf"
    upstream.write_text(platform.front.upstream_text("blue"))
    before = upstream.read_text()
    with pytest.raises(DeployError, match="nginx rejects the configuration .* is restored, the traffic did not move"):
        platform.switch("green")
    assert upstream.read_text() == before and platform.active() == "blue"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upstream.conf"]


def test_the_plan_and_the_deploy_check_their_inputs_first(tmp_path: Path) -> None:
    platform = make(tmp_path, nginx_upstream_file=str(tmp_path / "nowhere" / "upstream.conf"))
    with pytest.raises(DeployError, match="the directory of nginx upstream file .* does not exist"):
        platform.front.plan("green")
    with pytest.raises(DeployError, match=r"compose file .*docker-compose.yml does not exist"):
        platform.compose.cli()
    with pytest.raises(DeployError, match="version 'v2:latest' is not an image tag: letters, digits"):
        platform.deploy("green", "v2:latest")
