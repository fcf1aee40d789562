"""docker_cleanup against the lab's real Docker engine: what goes, and what must never go.

Planted, all labelled with this module's own label (every run passes it as include_labels, so the cleanup
never touches another test's images or containers on the shared engine), images committed from one
container of the lab's busybox image (no registry, no build):
- ``old``: a stopped container with a named volume holding data: the container goes, the volume and its data stay;
- ``db``: a stopped container labelled org.streamops.keep, from the tagged ``app`` image, mounting ``inuse``:
  it stays, its image stays, and ``inuse`` stays although the volumes list names it;
- a dangling image (goes), ``web:0.9`` (unused, goes), ``web:1.0`` (the kept old colour green of a compose
  blue/green state written by compose_state's own writer: stays), the volume ``scratch`` (listed, unmounted: goes).
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import docker
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils import docker_cleanup as cleanup_utils
from ansible_collections.streamops.maintenance.plugins.module_utils.compose_state import StateFile
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import docker_cleanup
from lab.harness.docker_engine import LAB_LABEL

pytestmark = [pytest.mark.integration, pytest.mark.docker]

TEST_LABEL = "org.streamops.test"
KEEP_LABEL = "org.streamops.keep"
APP = "dcu-web"
DATA = "patient-records-v1"


@dataclass
class Planted:
    host: str
    prefix: str
    project_dir: str
    dangling: str
    app_image: str
    web_old: str
    web_kept: str

    @property
    def label(self) -> str:
        return f"{TEST_LABEL}={self.prefix}"

    def name(self, what: str) -> str:
        return f"{self.prefix}-{what}"


def commit(client, source, prefix: str, repository: str | None = None, tag: str | None = None) -> str:
    """An image of ``source`` carrying the test label; dangling without a repository.

    Each gets its own label value, so no two commits of one container can be the same image under two names.
    """
    item = f"{repository}:{tag}" if repository else uuid.uuid4().hex
    result = client.api.commit(source.id, repository=repository, tag=tag,
                               changes=[f"LABEL {TEST_LABEL}={prefix}", f"LABEL {TEST_LABEL}.item={item}"])
    return result["Id"]


def filled(client, image: str, name: str | None, labels: dict, command: str = "true", **options):
    """A container that ran ``command`` after writing 64 kB to its own layer, so removing it frees real bytes."""
    container = client.containers.run(image, ["sh", "-c", f"head -c 65536 /dev/urandom > /filler && {command}"],
                                      name=name, network_mode="none", labels=labels, detach=True, **options)
    assert container.wait(timeout=30)["StatusCode"] == 0
    return container


@pytest.fixture(scope="module")
def planted(docker_engine, lab_image, tmp_path_factory):
    client = docker_engine.client()
    prefix = f"dcu-{uuid.uuid4().hex[:6]}"
    labels = {TEST_LABEL: prefix, LAB_LABEL: "test"}
    project_dir = tmp_path_factory.mktemp("bluegreen")
    try:
        # The dangling image has a 64 kB layer of its own, so its removal frees bytes df sees.
        source = filled(client, lab_image, f"{prefix}-src", labels)
        dangling = commit(client, source, prefix)
        source.remove()
        source = client.containers.create(lab_image, ["true"], name=f"{prefix}-src", network_mode="none",
                                          labels=labels)
        app_image = f"{prefix}/app:1"
        commit(client, source, prefix, f"{prefix}/app", "1")
        web_old, web_kept = f"{prefix}/web:0.9", f"{prefix}/web:1.0"
        commit(client, source, prefix, f"{prefix}/web", "0.9")
        commit(client, source, prefix, f"{prefix}/web", "1.0")
        source.remove()
        for volume in ("data", "inuse", "scratch"):
            client.volumes.create(f"{prefix}-{volume}", labels=labels)
        # Ran and exited: a stopped container whose named volume holds data, as a stopped database's would.
        filled(client, lab_image, f"{prefix}-old", labels, f"echo {DATA} > /data/records",
               volumes={f"{prefix}-data": {"bind": "/data", "mode": "rw"}})
        client.containers.create(app_image, ["true"], name=f"{prefix}-db", network_mode="none",
                                 labels={**labels, KEEP_LABEL: "true"},
                                 volumes={f"{prefix}-inuse": {"bind": "/data", "mode": "rw"}})
        # The compose driver's state: 1.0 was live on green, 1.1 went live on blue, green (1.0) is kept.
        state = StateFile(str(project_dir / f".streamops-blue-green-{APP}.json"))
        state.write({"history": [
            {"at": "2026-12-01T10:00:00+00:00", "action": "deploy", "version": "0.9", "colour": "blue", "result": "live"},
            {"at": "2026-12-02T10:00:00+00:00", "action": "deploy", "version": "1.0", "colour": "green",
             "result": "live", "from_colour": "blue", "from_version": "0.9"},
            {"at": "2026-12-03T10:00:00+00:00", "action": "deploy", "version": "1.1", "colour": "blue",
             "result": "live", "from_colour": "green", "from_version": "1.0"}],
            "kept": {"green": "2026-12-10T10:00:00+00:00"}})
        yield Planted(docker_engine.host, prefix, str(project_dir), dangling, app_image, web_old, web_kept)
    finally:
        remove_everything_of(client, prefix)
        assert names_on_engine(client, prefix) == (set(), set(), set()), f"left behind by {prefix}"


def remove_everything_of(client, prefix: str) -> None:
    label = f"{TEST_LABEL}={prefix}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    for image in client.images.list(all=True, filters={"label": label}):
        try:
            client.images.remove(image.id, force=True)
        except docker.errors.NotFound:
            pass  # went with a parent removed just before
    for volume in client.volumes.list(filters={"label": label}):
        volume.remove(force=True)


def run_module(capsys, planted, *, check_mode=False, **args):
    options = {"docker_host": planted.host, "older_than": "0s", "unused_images": True,
               "include_labels": [planted.label], "history_versions": 0,
               "volumes": [planted.name("inuse"), planted.name("scratch")],
               "blue_green": [{"app": APP, "project_dir": planted.project_dir, "image": f"{planted.prefix}/web"}],
               "_ansible_check_mode": check_mode, **args}
    with patch_module_args(options), pytest.raises(SystemExit) as exited:
        docker_cleanup.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=check_mode) == []
    return result


def statuses(result):
    return {record["name"]: record["status"] for record in result["records"]}


def image_exists(client, reference: str) -> bool:
    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def names_on_engine(client, planted):
    label = {"label": f"{TEST_LABEL}={planted}" if isinstance(planted, str) else planted.label}
    return ({c.name for c in client.containers.list(all=True, filters=label)},
            {i.id for i in client.images.list(all=True, filters=label)},
            {v.name for v in client.volumes.list(filters=label)})


def expected(planted, gone: str):
    """Each record's status: ``gone`` for what goes (planned or done)."""
    short = planted.dangling.removeprefix("sha256:")[:12]
    return {
        f"container {planted.name('old')}": gone,
        f"container {planted.name('db')}": "unchanged",
        f"image <none> {short}": gone,
        f"image {planted.web_old}": gone,
        f"image {planted.web_kept}": "unchanged",
        f"image {planted.app_image}": "unchanged",
        f"volume {planted.name('inuse')}": "skipped",
        f"volume {planted.name('scratch')}": gone,
    }


def test_check_mode_lists_what_would_go_and_removes_nothing(capsys, docker_engine, planted):
    client = docker_engine.client()
    on_engine = names_on_engine(client, planted)
    result = run_module(capsys, planted, check_mode=True)
    found = statuses(result)
    summary = found.pop(f"docker {planted.host}")
    assert found == expected(planted, "planned"), result["records"]
    assert summary == "planned" and result["changed"] is True
    planned = [r for r in result["records"] if r["status"] == "planned" and r["action"] != "cleanup"]
    assert all(r["detail"].startswith("would remove") for r in planned)
    total = next(r for r in result["records"] if r["action"] == "cleanup")["after"]["freed_bytes"]
    assert total == sum(r["after"]["bytes"] for r in planned)
    assert names_on_engine(client, planted) == on_engine


def test_the_real_run_keeps_data_images_in_use_and_the_kept_colour(capsys, docker_engine, planted):
    client = docker_engine.client()
    df_before = cleanup_utils.df_figures(client.df())
    result = run_module(capsys, planted)
    df_after = cleanup_utils.df_figures(client.df())
    found = statuses(result)
    assert found.pop(f"docker {planted.host}") == "done"
    assert found == expected(planted, "done"), result["records"]
    records = {record["name"]: record for record in result["records"]}
    assert records[f"image {planted.web_kept}"]["detail"] == f"kept colour green of app {APP}"
    assert records[f"image {planted.app_image}"]["detail"] == f"used by container {planted.name('db')}"
    assert records[f"volume {planted.name('inuse')}"]["detail"] == f"in use by container {planted.name('db')}"

    # What the engine really holds afterwards.
    containers, volumes = names_on_engine(client, planted)[::2]
    assert containers == {planted.name("db")}
    assert volumes == {planted.name("data"), planted.name("inuse")}
    assert not image_exists(client, planted.dangling) and not image_exists(client, planted.web_old)
    assert image_exists(client, planted.web_kept) and image_exists(client, planted.app_image)
    read = client.containers.run(planted.app_image, ["cat", "/data/records"], network_mode="none", remove=True,
                                 volumes={planted.name("data"): {"bind": "/data", "mode": "ro"}})
    assert read.decode().strip() == DATA

    # The freed bytes are /system/df's own figures before and after.
    summary = records[f"docker {planted.host}"]
    assert summary["before"] == df_before
    assert {key: summary["after"][key] for key in df_after} == df_after
    assert summary["after"]["freed_bytes"] == df_before["total_bytes"] - df_after["total_bytes"]
    # The old container's and the dangling image's 64 kB each, at least.
    assert summary["after"]["freed_bytes"] >= 2 * 65536

    again = run_module(capsys, planted)
    assert again["changed"] is False
    assert set(statuses(again).values()) <= {"unchanged", "skipped"}


def test_an_image_taken_into_use_meanwhile_fails_alone(docker_engine, lab_image, planted):
    client = docker_engine.client()
    # Its own label too (committed images inherit the container's labels): this plan holds only these two.
    race = f"{TEST_LABEL}.race"
    source = client.containers.create(lab_image, ["true"], name=planted.name("race"), network_mode="none",
                                      labels={TEST_LABEL: planted.prefix, race: "1", LAB_LABEL: "test"})
    first, second = commit(client, source, planted.prefix), commit(client, source, planted.prefix)
    source.remove()
    settings = cleanup_utils.cleanup_settings({"older_than": "0s", "include_labels": [planted.label, race],
                                               "exclude_labels": [KEEP_LABEL]})
    plan = cleanup_utils.plan_cleanup(client.df(), settings, [], datetime.now(timezone.utc))
    assert {item.ident for item in plan.planned("image")} == {first, second}
    client.containers.create(first, ["true"], name=planted.name("late"), network_mode="none",
                             labels={TEST_LABEL: planted.prefix})
    records = {r["after"]["id"]: r for r in cleanup_utils.apply_plan(client, plan) if r["action"] == "remove_image"}
    assert records[first]["status"] == "failed" and "in use" in records[first]["detail"]
    assert records[second]["status"] == "done"
    assert image_exists(client, first) and not image_exists(client, second)


def test_an_unreadable_blue_green_state_removes_nothing(capsys, docker_engine, planted, tmp_path):
    client = docker_engine.client()
    (tmp_path / f".streamops-blue-green-{APP}.json").write_text("{half a state")
    on_engine = names_on_engine(client, planted)
    result = run_module(capsys, planted, blue_green=[{"app": APP, "project_dir": str(tmp_path)}])
    assert result["failed"] is True and "cannot be read" in result["msg"] and result["records"] == []
    assert names_on_engine(client, planted) == on_engine
