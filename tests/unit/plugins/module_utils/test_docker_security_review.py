"""docker_security_review: the checks over the engine's inspect data, the allow list, the records, bad input."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils import docker_security_review as review_utils
from ansible_collections.streamops.maintenance.plugins.module_utils.docker_conn import docker_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.docker_security_review import (
    Allowance,
    DockerReviewError,
    ReviewSettings,
    container_record,
    parse_allowed,
    parse_created,
    ports_on_all_interfaces,
    review,
    review_settings,
    run_docker_security_review,
    runs_as_root,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import record_problems, result_problems
from ansible_collections.streamops.maintenance.plugins.modules import docker_security_review

NOW = datetime(2026, 1, 14, 12, 0, tzinfo=timezone.utc)
FRESH = NOW - timedelta(days=3, hours=1)
OLD = NOW - timedelta(days=400)


def settings(**overrides):
    values = {"project": "vs", "include_stopped": True, "image_max_age_days": 90, "allowed": ()}
    values.update(overrides)
    return ReviewSettings(**values)


def attrs(name="vs-api-1", service="api", user="1000", privileged=False, cap_add=None, bindings=None, ports=None,
          status="running", image="sha256:" + "a" * 64):
    return {
        "Id": "c" * 64, "Name": f"/{name}", "Image": image, "State": {"Status": status},
        "Config": {"User": user, "Image": "vitalstream/api:2.4.1", "Env": ["DB_PASSWORD=hunter2"],
                   "Labels": {"com.docker.compose.project": "vs", "com.docker.compose.service": service}},
        "HostConfig": {"Privileged": privileged, "CapAdd": cap_add, "PortBindings": bindings or {}},
        "NetworkSettings": {"Ports": ports or {}},
    }


@pytest.mark.parametrize("user, root", [
    ("", True), (None, True), ("0", True), ("root", True), ("0:0", True), ("root:root", True), ("0:1000", True),
    ("000", True), (" root ", True),
    ("1000", False), ("1000:0", False), ("65534:65534", False), ("nobody", False), ("postgres", False),
    ("rootless", False),
])
def test_runs_as_root(user, root):
    assert runs_as_root(user) is root


@pytest.mark.parametrize("bindings, ports, expected", [
    pytest.param({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, {}, ["*:8080->80/tcp"], id="empty address"),
    pytest.param({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}, {}, ["0.0.0.0:8080->80/tcp"], id="ipv4 any"),
    pytest.param({}, {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}, {"HostIp": "::", "HostPort": "32768"}]},
                 ["0.0.0.0:32768->80/tcp", "[::]:32768->80/tcp"], id="running: the ports it got"),
    pytest.param({"53/udp": [{"HostIp": "", "HostPort": ""}]}, {}, ["*:(any)->53/udp"], id="random host port"),
    pytest.param({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
                 {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}, [], id="loopback only"),
    pytest.param({"80/tcp": [{"HostIp": "10.0.0.5", "HostPort": "80"}]}, {}, [], id="one named interface"),
    pytest.param({}, {"80/tcp": None}, [], id="exposed, not published"),
    pytest.param({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
                 {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}, ["0.0.0.0:8080->80/tcp"],
                 id="asked and got: one finding"),
    # dockerd --ip=10.0.0.5: the empty address asked for became that one interface.
    pytest.param({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, {"80/tcp": [{"HostIp": "10.0.0.5", "HostPort": "8080"}]},
                 [], id="asked for the default, got one named interface"),
])
def test_ports_on_all_interfaces(bindings, ports, expected):
    assert ports_on_all_interfaces(attrs(bindings=bindings, ports=ports)) == expected


@pytest.mark.parametrize("text, expected", [
    ("2026-01-02T10:20:30.123456789Z", datetime(2026, 1, 2, 10, 20, 30, 123456, tzinfo=timezone.utc)),
    ("2015-01-01T00:00:00Z", datetime(2015, 1, 1, tzinfo=timezone.utc)),
    ("2026-01-02T10:20:30.5+01:00", datetime(2026, 1, 2, 9, 20, 30, 500000, tzinfo=timezone.utc)),
    ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=timezone.utc)),
    ("yesterday", None), ("", None), (None, None), ("2026-01-02 10:20:30", None),
])
def test_parse_created(text, expected):
    assert parse_created(text) == expected


@pytest.mark.parametrize("raw, message", [
    ("root", "allowed must be a list of {container, checks, reason}, got 'root'"),
    (["api"], "allowed[1] must be a dict with container, checks and reason, got 'api'"),
    ([{"container": "api", "checks": ["root"], "reason": "r", "until": "2026"}],
     "allowed[1]: unknown key(s) until; allowed: container, checks, reason"),
    ([{"container": "", "checks": ["root"], "reason": "r"}],
     "allowed[1]: container '' must be a container name or compose service"),
    ([{"container": "api", "checks": [], "reason": "r"}],
     "allowed[1]: checks [] must be a non-empty list of root, privileged, capabilities, published_ports, host_network, image_age"),
    ([{"container": "api", "checks": ["root"], "reason": "r"}, {"container": "db", "checks": ["rooot"], "reason": "r"}],
     "allowed[2]: unknown check 'rooot'; known checks: root, privileged, capabilities, published_ports, host_network, image_age"),
    ([{"container": "api", "checks": ["privileged"]}],
     "allowed[1]: reason None must say why container api may have privileged"),
    ([{"container": "api", "checks": ["privileged"], "reason": "  "}],
     "allowed[1]: reason '  ' must say why container api may have privileged"),
])
def test_bad_allow_list_names_the_value(raw, message):
    with pytest.raises(DockerReviewError) as raised:
        parse_allowed(raw)
    assert raised.value.msg == message


def test_allow_list_accepts_one_check_as_a_string():
    assert parse_allowed([{"container": " nginx ", "checks": "root", "reason": " binds 443 "}]) == (
        Allowance("nginx", ("root",), "binds 443"),)


@pytest.mark.parametrize("age, message", [
    (-1, "image_max_age_days -1 must be a whole number of days, 0 or more"),
    (None, "image_max_age_days None must be a whole number of days, 0 or more"),
    (True, "image_max_age_days True must be a whole number of days, 0 or more"),
])
def test_bad_age_names_the_value(age, message):
    with pytest.raises(DockerReviewError) as raised:
        review_settings({"image_max_age_days": age, "allowed": []})
    assert raised.value.msg == message


def test_bad_input_reads_nothing(monkeypatch):
    def must_not_connect(*_args, **_kwargs):
        raise AssertionError("the engine was asked before the input was checked")

    monkeypatch.setattr(review_utils, "docker_client_from", must_not_connect)
    with pytest.raises(DockerReviewError, match="unknown check 'sudo'"):
        run_docker_security_review({"docker_host": "unix:///x.sock", "timeout": 5, "project": "vs",
                                    "include_stopped": True, "image_max_age_days": 90,
                                    "allowed": [{"container": "api", "checks": ["sudo"], "reason": "r"}]})


BAD = attrs(name="vs-bad-1", service="bad", user="", privileged=True, cap_add=["NET_ADMIN", "CAP_SYS_TIME"],
            bindings={"80/tcp": [{"HostIp": "", "HostPort": "18080"}]}, status="created")


@pytest.mark.parametrize("container, created, allowed, status, checks, accepted", [
    pytest.param(attrs(), FRESH, (), "ok", [], [], id="clean"),
    pytest.param(BAD, OLD, (), "breach",
                 ["root", "privileged", "capabilities", "published_ports", "image_age"], [], id="everything"),
    pytest.param(BAD, FRESH, (Allowance("bad", ("root", "privileged"), "vendor image"),), "breach",
                 ["capabilities", "published_ports"], ["root", "privileged"], id="partly allowed, by service"),
    pytest.param(BAD, OLD, (Allowance("vs-bad-1", tuple(review_utils.CHECKS), "lab fixture"),), "ok",
                 [], ["root", "privileged", "capabilities", "published_ports", "image_age"],
                 id="all allowed, by container name"),
    pytest.param(attrs(user="root"), FRESH, (Allowance("other", ("root",), "not this one"),), "breach",
                 ["root"], [], id="allowance of another container"),
    pytest.param(attrs(), None, (), "unknown", [], [], id="image unreadable"),
    pytest.param(attrs(), None, (Allowance("api", ("image_age",), "pinned"),), "ok", [], [],
                 id="image unreadable, age allowed"),
    pytest.param(attrs(privileged=True), None, (), "breach", ["privileged"], [], id="breach wins over unknown"),
])
def test_container_record(container, created, allowed, status, checks, accepted):
    record = container_record(container, created, None if created else "image gone", settings(allowed=allowed), NOW)
    assert record_problems(record) == []
    assert record["status"] == status
    assert record["action"] == "container_security"
    assert record["name"] == f"container {container['Name'][1:]}"
    assert [finding["check"] for finding in record["after"]["findings"]] == checks
    assert [item["check"] for item in record["after"]["allowed"]] == accepted
    assert ("remedy" in record["after"]) == (status != "ok")
    assert "hunter2" not in json.dumps(record)  # the container's environment is never returned


def test_breach_record_lists_every_finding_with_its_remedy():
    record = container_record(BAD, OLD, None, settings(), NOW)
    assert record["detail"] == ("service bad: runs as root (user (unset: root)); privileged; "
                                "added capabilities NET_ADMIN, SYS_TIME; "
                                "ports published on all interfaces *:18080->80/tcp; "
                                "image built 400 days ago (limit 90)")
    assert record["after"]["findings"] == [
        {"check": "root", "value": "(unset: root)"}, {"check": "privileged", "value": True},
        {"check": "capabilities", "value": ["NET_ADMIN", "SYS_TIME"]},
        {"check": "published_ports", "value": ["*:18080->80/tcp"]}, {"check": "image_age", "value": 400}]
    remedy = record["after"]["remedy"]
    assert remedy.count(". ") == 4 and remedy.endswith(".")
    assert "non-root user" in remedy and "privileged: true" in remedy and "NET_ADMIN, SYS_TIME" in remedy
    assert "127.0.0.1" in remedy and "vitalstream/api:2.4.1" in remedy
    assert record["after"]["image_age_days"] == 400
    assert record["after"]["state"] == "created"


def test_allowed_finding_says_why():
    allowed = (Allowance("bad", ("root", "privileged", "capabilities", "published_ports"), "lab fixture"),)
    record = container_record(BAD, FRESH, None, settings(allowed=allowed), NOW)
    assert record["status"] == "ok"
    assert record["detail"] == ("service bad: allowed: runs as root (user (unset: root)) (lab fixture); "
                                "privileged (lab fixture); added capabilities NET_ADMIN, SYS_TIME (lab fixture); "
                                "ports published on all interfaces *:18080->80/tcp (lab fixture)")


def test_clean_record_detail():
    assert container_record(attrs(), FRESH, None, settings(), NOW)["detail"] == (
        "service api: no finding (user 1000, image 3 days old)")


@pytest.mark.parametrize("max_age, old", [(0, True), (3, True), (4, False), (90, False)])
def test_image_age_limit(max_age, old):
    record = container_record(attrs(), FRESH, None, settings(image_max_age_days=max_age), NOW)
    assert (record["status"] == "breach") is old


class FakeContainer:
    def __init__(self, data):
        self.attrs = data


class FakeImage:
    def __init__(self, created):
        self.attrs = {"Created": created}


class FakeClient:
    """What review() uses of a DockerClient: containers.list and images.get."""

    def __init__(self, containers, images):
        self.listed = []
        self.images_read = []
        self.containers = self
        self.images = self
        self._containers, self._images = containers, images

    def list(self, **kwargs):
        self.listed.append(kwargs)
        return [FakeContainer(c) for c in self._containers]

    def get(self, image_id):
        self.images_read.append(image_id)
        if image_id not in self._images:
            from docker.errors import ImageNotFound
            raise ImageNotFound(f"No such image: {image_id}")
        return FakeImage(self._images[image_id])


def test_review_reads_each_image_once_and_sorts():
    image = "sha256:" + "a" * 64
    client = FakeClient([attrs(name="vs-web-1", service="web"), attrs(), BAD], {image: "2026-01-11T10:00:00.5Z"})
    records = review(client, settings(), "unix:///x.sock", NOW)
    assert [r["name"] for r in records] == ["container vs-api-1", "container vs-bad-1", "container vs-web-1"]
    assert [r["status"] for r in records] == ["ok", "breach", "ok"]
    assert client.images_read == [image]
    assert client.listed == [{"all": True, "filters": {"label": "com.docker.compose.project=vs"},
                              "ignore_removed": True}]


def test_review_of_a_removed_image_is_unknown():
    client = FakeClient([attrs(image="sha256:" + "f" * 64)], {})
    (record,) = review(client, settings(), "unix:///x.sock", NOW)
    assert record["status"] == "unknown"
    assert "image age unknown: image sha256:ffffffffffff could not be read" in record["detail"]
    assert record["after"]["remedy"].startswith("Check that the image vitalstream/api:2.4.1 still exists")


@pytest.mark.parametrize("project, include_stopped, listed, records", [
    ("vs", True, {"all": True, "filters": {"label": "com.docker.compose.project=vs"}, "ignore_removed": True},
     [("project vs", "unknown")]),
    (None, False, {"all": False, "filters": {}, "ignore_removed": True}, []),
])
def test_review_of_nothing(project, include_stopped, listed, records):
    client = FakeClient([], {})
    found = review(client, settings(project=project, include_stopped=include_stopped), "unix:///x.sock", NOW)
    assert [(r["name"], r["status"]) for r in found] == records
    assert client.listed == [listed]
    assert all("remedy" in r["after"] for r in found)


# --------------------------------------------------------------------------- the module


def _shape(options):
    return {name: {"type": o.get("type", "str"), "default": o.get("default"), "choices": o.get("choices"),
                   "elements": o.get("elements")} for name, o in options.items()}


def test_module_options_are_documented_exactly():
    documented = yaml.safe_load(docker_security_review.DOCUMENTATION)["options"]
    own = {k: v for k, v in docker_security_review.argument_spec().items() if k not in docker_argument_spec()}
    assert _shape(documented) == _shape(own)


@pytest.mark.parametrize("args, message", [
    ({"image_max_age_days": -5}, "image_max_age_days -5 must be a whole number of days, 0 or more"),
    ({"allowed": [{"container": "api", "checks": ["root", "sudo"], "reason": "r"}]},
     "allowed[1]: unknown check 'sudo'; known checks: root, privileged, capabilities, published_ports, host_network, image_age"),
    ({"docker_host": "unix:///nonexistent/streamops/docker.sock"},
     "cannot reach the Docker engine at unix:///nonexistent/streamops/docker.sock: "),
])
def test_module_fails_naming_the_value(capsys, args, message):
    with patch_module_args({"timeout": 5, **args}), pytest.raises(SystemExit) as exited:
        docker_security_review.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == 1 and result["failed"] is True
    assert result["msg"].startswith(message)
    assert result["records"] == [] and result["changed"] is False
    assert result_problems(result) == []
