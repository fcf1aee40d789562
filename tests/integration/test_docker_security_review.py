"""docker_security_review against the lab's real Docker engine: one planted bad container, one good one.

The engine runs with --bridge=none --iptables=false and nothing may listen on a
non-loopback address, so the bad container is created and never started, on
network mode ``none``: the engine records its port binding (HostIp empty, all
interfaces) in HostConfig.PortBindings, which is what the review reads, and binds
nothing; even if it were started, a container without a network gets no published
port. The good one runs (no network, user 65534, nothing published, no capability).
The bad one's image is the lab's busybox loaded again with a creation time of
2001-01-01, so its age is a real finding the engine reports.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import docker_security_review
from lab.harness.base import free_port
from lab.harness.docker_engine import LAB_LABEL

pytestmark = [pytest.mark.integration, pytest.mark.docker]

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
OLD_CREATED = "2001-01-01T00:00:00Z"
# The lab image is made on this machine, far younger than this; the 2001 image far older.
MAX_AGE = 3650
ALL_CHECKS = ["root", "privileged", "capabilities", "published_ports", "image_age"]


@dataclass
class Planted:
    host: str
    project: str
    bad: str
    good: str
    port: int
    old_image: str


def old_copy(client, image: str, reference: str) -> str:
    """``image`` saved and loaded again as ``reference`` with every creation time set to 2001 (no registry needed)."""
    saved = b"".join(client.images.get(image).save())
    source = tarfile.open(fileobj=io.BytesIO(saved))
    manifest = json.loads(source.extractfile("manifest.json").read())
    config = json.loads(source.extractfile(manifest[0]["Config"]).read())
    config["created"] = OLD_CREATED
    for step in config.get("history") or []:
        step["created"] = OLD_CREATED
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{**manifest[0], "Config": config_name, "RepoTags": [reference]}]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as target:
        for member in source.getmembers():
            # The old config and the legacy `repositories` file (it would tag the original) are replaced.
            top_level_json = member.name.endswith(".json") and "/" not in member.name
            if member.name == "repositories" or top_level_json:
                continue
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        for name, data in (("manifest.json", json.dumps(manifest).encode()), (config_name, config_bytes)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))
    client.images.load(buffer.getvalue())
    assert client.images.get(reference).attrs["Created"].startswith("2001-01-01T00:00:00")
    return reference


@pytest.fixture(scope="module")
def planted(docker_engine, lab_image):
    client = docker_engine.client()
    project = f"secreview-{uuid.uuid4().hex[:6]}"
    port = free_port()
    made = []
    old_image = None
    try:
        old_image = old_copy(client, lab_image, f"streamops-lab/old-busybox:{project}")
        # Created, never started: see the module docstring for why this binds nothing.
        bad = client.containers.create(
            old_image, ["sleep", "600"], name=f"{project}-bad-1", network_mode="none", privileged=True,
            cap_add=["NET_ADMIN"], ports={"80/tcp": port},
            labels={PROJECT_LABEL: project, SERVICE_LABEL: "bad", LAB_LABEL: "test"})
        made.append(bad)
        good = client.containers.run(
            lab_image, ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"], name=f"{project}-good-1",
            network_mode="none", user="65534:65534", detach=True,
            labels={PROJECT_LABEL: project, SERVICE_LABEL: "good", LAB_LABEL: "test"})
        made.append(good)
        yield Planted(docker_engine.host, project, bad.name, good.name, port, old_image)
    finally:
        for container in made:
            container.remove(force=True)
        if old_image is not None:
            client.images.remove(old_image, force=True)
        left = client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
        assert left == [], f"containers of {project} left behind: {left}"


def run_module(capsys, planted, **args):
    check_mode = args.pop("check_mode", False)
    options = {"docker_host": planted.host, "project": planted.project, "image_max_age_days": MAX_AGE,
               "_ansible_check_mode": check_mode, **args}
    with patch_module_args(options), pytest.raises(SystemExit) as exited:
        docker_security_review.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=check_mode) == []
    assert result["changed"] is False
    return result


def by_name(result):
    return {record["name"]: record for record in result["records"]}


def checks_of(record):
    return [finding["check"] for finding in record["after"]["findings"]]


def listening_ports() -> set[int]:
    """Local TCP ports in LISTEN, read from /proc/net (this host's and host-network containers' sockets)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                found.add(int(fields[1].rsplit(":", 1)[1], 16))
    return found


def test_exactly_the_planted_findings(capsys, planted):
    result = run_module(capsys, planted)
    records = by_name(result)
    assert set(records) == {f"container {planted.bad}", f"container {planted.good}"}
    bad, good = records[f"container {planted.bad}"], records[f"container {planted.good}"]

    assert bad["status"] == "breach"
    assert checks_of(bad) == ALL_CHECKS
    values = {finding["check"]: finding["value"] for finding in bad["after"]["findings"]}
    assert values["root"] == "(unset: root)"
    assert values["privileged"] is True
    assert values["capabilities"] == ["NET_ADMIN"]
    assert values["published_ports"] == [f"*:{planted.port}->80/tcp"]
    assert values["image_age"] > 9000
    assert bad["after"]["image"] == planted.old_image
    assert bad["after"]["image_created"] == "2001-01-01T00:00:00+00:00"
    assert bad["after"]["service"] == "bad" and bad["after"]["state"] == "created"
    assert bad["detail"].startswith("service bad: runs as root")
    assert len(bad["after"]["remedy"].split(". ")) == 5

    assert good["status"] == "ok", good
    assert good["after"]["findings"] == [] and good["after"]["allowed"] == []
    assert good["after"]["user"] == "65534:65534" and good["after"]["state"] == "running"
    assert "remedy" not in good["after"]
    assert result["msg"] == (f"2 container(s) of compose project {planted.project} reviewed; "
                             f"not clean: container {planted.bad}")

    # The planted binding is only recorded: the bad container never ran, nothing listens on its port.
    assert planted.port not in listening_ports()


def test_check_mode_reads_the_same(capsys, planted):
    real = run_module(capsys, planted)
    checked = run_module(capsys, planted, check_mode=True)
    assert checked["records"] == real["records"]
    assert checked["msg"] == real["msg"]


def test_running_containers_only(capsys, planted):
    result = run_module(capsys, planted, include_stopped=False)
    assert [(r["name"], r["status"]) for r in result["records"]] == [(f"container {planted.good}", "ok")]


def test_every_image_is_old_at_age_zero(capsys, planted):
    records = by_name(run_module(capsys, planted, image_max_age_days=0))
    good = records[f"container {planted.good}"]
    assert good["status"] == "breach" and checks_of(good) == ["image_age"]
    assert good["after"]["remedy"].startswith("Rebuild or update the image ")
    assert checks_of(records[f"container {planted.bad}"]) == ALL_CHECKS


def test_the_host_network_is_a_finding_unless_allowed(capsys, planted):
    client = docker.DockerClient(base_url=planted.host, version="auto")
    lab_image = client.containers.get(planted.good).attrs["Config"]["Image"]
    # Created, never started: the review reads its settings only.
    hostnet = client.containers.create(lab_image, ["true"], name=f"{planted.project}-hostnet-1", network_mode="host",
                                       user="65534:65534", labels={PROJECT_LABEL: planted.project,
                                                                   SERVICE_LABEL: "hostnet", LAB_LABEL: "test"})
    try:
        record = by_name(run_module(capsys, planted))[f"container {hostnet.name}"]
        assert record["status"] == "breach" and checks_of(record) == ["host_network"]
        assert record["after"]["remedy"].startswith("Give it a bridge network")
        allowed = [{"container": "hostnet", "checks": ["host_network"], "reason": "binds 127.0.0.1 only"}]
        record = by_name(run_module(capsys, planted, allowed=allowed))[f"container {hostnet.name}"]
        assert record["status"] == "ok" and "(binds 127.0.0.1 only)" in record["detail"]
    finally:
        hostnet.remove(force=True)
        client.close()


def test_allowed_findings(capsys, planted):
    allowed = [{"container": "bad", "checks": ["root", "privileged"], "reason": "vendor appliance, ticket SEC-12"}]
    bad = by_name(run_module(capsys, planted, allowed=allowed))[f"container {planted.bad}"]
    assert bad["status"] == "breach"
    assert checks_of(bad) == ["capabilities", "published_ports", "image_age"]
    assert [item["check"] for item in bad["after"]["allowed"]] == ["root", "privileged"]
    assert "allowed: runs as root (user (unset: root)) (vendor appliance, ticket SEC-12)" in bad["detail"]

    everything = [{"container": planted.bad, "checks": ALL_CHECKS, "reason": "lab fixture"}]
    bad = by_name(run_module(capsys, planted, allowed=everything))[f"container {planted.bad}"]
    assert bad["status"] == "ok"
    assert bad["detail"].startswith("service bad: allowed: runs as root") and bad["detail"].endswith("(lab fixture)")
    assert "remedy" not in bad["after"]


def test_whole_engine_includes_the_project(capsys, planted):
    records = by_name(run_module(capsys, planted, project=""))
    assert records[f"container {planted.bad}"]["status"] == "breach"
    assert records[f"container {planted.good}"]["status"] == "ok"


def test_unknown_project_is_never_clean(capsys, planted):
    result = run_module(capsys, planted, project=f"{planted.project}-typo")
    assert [(r["name"], r["status"]) for r in result["records"]] == [(f"project {planted.project}-typo", "unknown")]
    assert result["records"][0]["after"]["remedy"]


def test_unreachable_engine_fails_naming_it(capsys, planted, tmp_path):
    socket = f"unix://{tmp_path}/no-engine.sock"
    result = run_module(capsys, planted, docker_host=socket, timeout=5)
    assert result["failed"] is True
    assert result["msg"].startswith(f"cannot reach the Docker engine at {socket}: ")
    assert result["records"] == []


def test_bad_input_fails_naming_the_value(capsys, planted):
    result = run_module(capsys, planted, image_max_age_days=-1)
    assert result["failed"] is True
    assert result["msg"] == "image_max_age_days -1 must be a whole number of days, 0 or more"
    result = run_module(capsys, planted, allowed=[{"container": "bad", "checks": ["sudo"], "reason": "r"}])
    assert result["failed"] is True and "unknown check 'sudo'" in result["msg"]
