"""docker_conn: the docker doc fragment and docker_argument_spec() agree; an engine that does not answer is named."""

from __future__ import annotations

import pytest
import yaml
from ansible.module_utils.basic import env_fallback

from ansible_collections.streamops.maintenance.plugins.doc_fragments.docker import ModuleDocFragment
from ansible_collections.streamops.maintenance.plugins.module_utils.blue_green import DeployError
from ansible_collections.streamops.maintenance.plugins.module_utils.compose_project import ComposeProject
from ansible_collections.streamops.maintenance.plugins.module_utils.docker_conn import (
    DockerEngineError,
    docker_argument_spec,
    docker_client_from,
    engine_name,
)


def _shape(options):
    return {name: {"type": o.get("type", "str"), "default": o.get("default"), "choices": o.get("choices"),
                   "aliases": sorted(o.get("aliases", []))} for name, o in options.items()}


def test_docker_fragment_matches_argument_spec():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert _shape(documented) == _shape(docker_argument_spec())


def test_docker_host_falls_back_to_the_environment_when_the_module_runs():
    # The environment is read by Ansible when the module runs, never when this is imported.
    assert docker_argument_spec()["docker_host"]["fallback"] == (env_fallback, ["DOCKER_HOST"])


@pytest.mark.parametrize("docker_host, environment, expected", [
    ("unix:///srv/docker.sock", "tcp://127.0.0.1:2375", "unix:///srv/docker.sock"),
    (None, "tcp://127.0.0.1:2375", "tcp://127.0.0.1:2375"),
    (None, None, "the default socket"),
])
def test_engine_name(monkeypatch, docker_host, environment, expected):
    if environment is None:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    else:
        monkeypatch.setenv("DOCKER_HOST", environment)
    assert engine_name(docker_host) == expected


@pytest.mark.parametrize("docker_host, timeout, message", [
    ("unix:///nonexistent/streamops/docker.sock", 5,
     "cannot reach the Docker engine at unix:///nonexistent/streamops/docker.sock: "),
    ("   ", 5, "docker_host '   ' must be an engine address such as unix:///run/docker.sock"),
    ("unix:///nonexistent/streamops/docker.sock", 0, "timeout 0 must be a whole number of seconds above 0"),
    ("unix:///nonexistent/streamops/docker.sock", -3, "timeout -3 must be a whole number of seconds above 0"),
])
def test_client_errors_name_the_value(docker_host, timeout, message):
    with pytest.raises(DockerEngineError) as raised:
        docker_client_from(docker_host, timeout)
    assert raised.value.msg.startswith(message)


def test_compose_project_keeps_its_deploy_error_and_message(tmp_path):
    """compose_project.client() goes through docker_client_from and still raises a DeployError naming the engine."""
    project = ComposeProject(app="vs", project_dir=str(tmp_path), compose_file=None, image="vitalstream/api",
                             ports={"blue": 8081, "green": 8082},
                             docker_host="unix:///nonexistent/streamops/docker.sock")
    with pytest.raises(DeployError) as raised:
        project.client()
    assert raised.value.msg.startswith("cannot reach the Docker engine at unix:///nonexistent/streamops/docker.sock: ")
    assert project.engine_name() == "unix:///nonexistent/streamops/docker.sock"
