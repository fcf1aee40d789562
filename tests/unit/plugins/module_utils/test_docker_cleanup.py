"""docker_cleanup: what the plan selects from /system/df, what protects an image, blue/green state, bad input."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from ansible_collections.streamops.maintenance.plugins.module_utils.docker_cleanup import (
    BlueGreenSource,
    DockerCleanupError,
    Protection,
    cleanup_settings,
    df_figures,
    plan_cleanup,
    protections_of,
    read_protections,
    run_docker_cleanup,
    summary_record,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.docker_conn import docker_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.records import record_problems
from ansible_collections.streamops.maintenance.plugins.modules import docker_cleanup

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
OLD = int((NOW - timedelta(days=3)).timestamp())
NEW = int((NOW - timedelta(minutes=5)).timestamp())


def container(ident, name, state, image_id, *, created=OLD, labels=None, volumes=(), size=100):
    return {"Id": ident, "Names": [f"/{name}"], "State": state, "Image": image_id, "ImageID": image_id,
            "Created": created, "Labels": labels or {}, "SizeRw": size,
            "Mounts": [{"Type": "volume", "Name": volume} for volume in volumes]}


def image(ident, tags=(), *, created=OLD, labels=None, size=1000, shared=0, parent=""):
    return {"Id": ident, "RepoTags": list(tags), "Created": created, "Labels": labels, "Size": size,
            "SharedSize": shared, "ParentId": parent, "Containers": -1}


def df(containers=(), images=(), volumes=(), cache=()):
    return {"LayersSize": sum(i["Size"] for i in images), "Containers": list(containers), "Images": list(images),
            "Volumes": [{"Name": n, "Driver": "local", "UsageData": {"Size": s, "RefCount": 0}} for n, s in volumes],
            "BuildCache": list(cache)}


def settings(**params):
    return cleanup_settings({"older_than": "24h", **params})


def by_name(plan):
    return {item.name: item for item in plan.items}


def test_stopped_old_containers_go_running_young_and_kept_ones_stay():
    data = df(containers=[
        container("c1", "old-exited", "exited", "sha256:a"),
        container("c2", "old-created", "created", "sha256:a"),
        container("c3", "running", "running", "sha256:a"),
        container("c4", "young", "exited", "sha256:a", created=NEW),
        container("c5", "kept", "exited", "sha256:a", labels={"org.streamops.keep": "true"}),
    ])
    plan = plan_cleanup(data, settings(), [], NOW)
    items = by_name(plan)
    assert items["old-exited"].status == items["old-created"].status == "planned"
    assert items["kept"].status == "unchanged" and "org.streamops.keep" in items["kept"].reason
    assert "running" not in items and "young" not in items
    assert plan.counts["containers_running"] == 1 and plan.counts["containers_too_young"] == 1


def test_include_labels_limit_the_cleanup():
    data = df(containers=[container("c1", "mine", "exited", "x", labels={"team": "a"}),
                          container("c2", "other", "exited", "x", labels={"team": "b"})],
              images=[image("sha256:d1", labels={"team": "b"})])
    plan = plan_cleanup(data, settings(include_labels=["team=a"], exclude_labels=[]), [], NOW)
    assert [item.name for item in plan.items] == ["mine"]
    assert plan.counts["containers_not_matching"] == 1 and plan.counts["images_not_matching"] == 1


def test_an_image_a_staying_container_uses_stays_one_used_only_by_removed_containers_goes():
    data = df(containers=[container("c1", "stopped-kept", "exited", "sha256:used",
                                    labels={"org.streamops.keep": ""}),
                          container("c2", "stopped-old", "exited", "sha256:freed")],
              images=[image("sha256:used"), image("sha256:freed")])
    items = by_name(plan_cleanup(data, settings(), [], NOW))
    used, freed = items["<none> used"], items["<none> freed"]
    assert used.status == "unchanged" and used.reason == "used by container stopped-kept"
    assert freed.status == "planned"


def test_tagged_images_go_only_with_unused_images_and_never_a_protected_one():
    data = df(images=[image("sha256:t1", ["web:1"]), image("sha256:t2", ["web:2"]), image("sha256:t3", ["other:2"])])
    assert by_name(plan_cleanup(data, settings(), [], NOW)) == {}
    kept = [Protection("web", "2", "kept colour green of app web")]
    items = by_name(plan_cleanup(data, settings(unused_images=True), kept, NOW))
    assert items["web:1"].status == "planned"
    assert items["web:2"].status == "unchanged" and items["web:2"].reason == "kept colour green of app web"
    assert items["other:2"].status == "planned"
    # Without a repository the tag is protected in every repository.
    items = by_name(plan_cleanup(data, settings(unused_images=True), [Protection(None, "2", "history")], NOW))
    assert items["other:2"].status == items["web:2"].status == "unchanged"


def test_parents_young_images_and_unique_bytes():
    data = df(images=[image("sha256:parent", size=500), image("sha256:child", ["app:1"], parent="sha256:parent"),
                      image("sha256:young", created=NEW), image("sha256:shared", size=1000, shared=600)])
    items = by_name(plan_cleanup(data, settings(), [], NOW))
    assert items["<none> parent"].status == "unchanged" and "parent" in items["<none> parent"].reason
    assert "<none> young" not in items
    assert items["<none> shared"].bytes == 400  # only what is not shared with another image is freed


def test_volumes_only_when_listed_existing_and_unmounted():
    data = df(containers=[container("c1", "db", "exited", "x", volumes=["pgdata"], labels={"org.streamops.keep": ""})],
              volumes=[("pgdata", 5000), ("scratch", 70), ("other", 9)])
    plan = plan_cleanup(data, settings(volumes=["pgdata", "scratch", "missing"]), [], NOW)
    items = by_name(plan)
    assert items["pgdata"].status == "skipped" and items["pgdata"].reason == "in use by container db"
    assert items["scratch"].status == "planned" and items["scratch"].bytes == 70
    assert items["missing"].status == "skipped" and "no such volume" in items["missing"].reason
    assert "other" not in items and plan.counts["volumes_not_listed"] == 1


@pytest.mark.parametrize("bad", [["*"], ["all"], ["data-?"], [""], "pgdata"])
def test_volume_patterns_and_all_are_refused(bad):
    with pytest.raises(DockerCleanupError, match="volume"):
        settings(volumes=bad)


def test_build_cache_old_unused_entries():
    old, new = (NOW - timedelta(days=2)).isoformat(), (NOW - timedelta(hours=1)).isoformat()
    cache = [{"ID": "a", "Size": 10, "LastUsedAt": old.replace("+00:00", ".123456789Z"), "InUse": False},
             {"ID": "b", "Size": 20, "LastUsedAt": new, "InUse": False},
             {"ID": "c", "Size": 40, "LastUsedAt": old, "InUse": True}]
    items = by_name(plan_cleanup(df(cache=cache), settings(build_cache=True), [], NOW))
    assert items["build cache"].status == "planned" and items["build cache"].bytes == 10
    assert items["build cache"].info["older_than_seconds"] == 86400


def history_entry(version, colour, result="live", **extra):
    return {"at": "2026-12-01T00:00:00+00:00", "action": "deploy", "version": version, "colour": colour,
            "result": result, **extra}


def test_blue_green_protects_kept_live_and_recent_versions():
    state = {"history": [history_entry("1.0", "blue"), history_entry("1.1", "green", from_colour="blue",
                                                                     from_version="1.0"),
                         history_entry("1.2", "blue", result="not ready"), history_entry("1.3", "blue")],
             "kept": {"green": None}}
    source = BlueGreenSource("web", "/x.json", "reg/web")
    found = protections_of(source, state, 1)
    reasons = {(p.tag, p.reason.split(" of ")[0]) for p in found}
    assert ("1.1", "kept colour green") in reasons
    assert ("1.3", "live colour blue") in reasons
    assert ("1.3", "deploy history") in reasons
    assert "1.0" not in {p.tag for p in found} and "1.2" not in {p.tag for p in found}
    assert all(p.repository == "reg/web" for p in found)
    assert {p.tag for p in protections_of(source, state, 4)} == {"1.0", "1.1", "1.2", "1.3"}


def test_an_unreadable_or_missing_state_fails_before_anything(tmp_path):
    bad = tmp_path / ".streamops-blue-green-web.json"
    bad.write_text("{not json")
    with pytest.raises(DockerCleanupError, match="cannot be read"):
        read_protections(settings(blue_green=[{"app": "web", "project_dir": str(tmp_path)}]).blue_green, 3)
    with pytest.raises(DockerCleanupError, match="not found"):
        read_protections(settings(blue_green=[{"app": "api", "project_dir": str(tmp_path)}]).blue_green, 3)
    bad.write_text(json.dumps({"history": [history_entry("2.0", "blue")], "kept": {}}))
    found = read_protections(settings(blue_green=[{"app": "web", "state_file": str(bad)}]).blue_green, 3)
    assert {p.tag for p in found} == {"2.0"}


@pytest.mark.parametrize(("params", "named"), [
    ({"older_than": "soon"}, "soon"),
    ({"older_than": "-1h"}, "-1h"),
    ({"history_versions": -1}, "-1"),
    ({"include_labels": ["=x"]}, "=x"),
    ({"blue_green": [{"app": "Web!", "project_dir": "/x"}]}, "Web!"),
    ({"blue_green": [{"app": "web", "project_dir": "relative"}]}, "relative"),
    ({"blue_green": [{"app": "web", "project_dir": "/x", "colour": "blue"}]}, "colour"),
    ({"blue_green": [{"app": "web", "project_dir": "/x", "image": "web:1"}]}, "web:1"),
])
def test_bad_input_names_the_value(params, named):
    with pytest.raises(DockerCleanupError) as raised:
        cleanup_settings({"older_than": "24h", **params})
    assert named in raised.value.msg


def test_bad_input_fails_before_the_engine_is_asked(monkeypatch):
    # An engine address nothing answers on: a bad option must fail first, naming itself.
    with pytest.raises(DockerCleanupError, match="older_than"):
        run_docker_cleanup({"older_than": "x", "docker_host": "tcp://127.0.0.1:9"})


def test_summary_in_check_mode_estimates_and_keeps_the_record_shape():
    data = df(containers=[container("c1", "old", "exited", "sha256:a")], images=[image("sha256:a", size=300)],
              volumes=[("scratch", 70)])
    plan = plan_cleanup(data, settings(volumes=["scratch"]), [], NOW)
    before = df_figures(data)
    assert before == {"containers_bytes": 100, "images_bytes": 300, "volumes_bytes": 70, "build_cache_bytes": 0,
                      "total_bytes": 470}
    record = summary_record("engine", plan, before, None, [], True, 0.1)
    assert record_problems(record) == []
    assert record["after"]["freed_bytes"] == 470 and record["after"]["total_bytes"] == 0


def test_module_options_match_the_doc():
    documented = yaml.safe_load(docker_cleanup.DOCUMENTATION)["options"]
    spec = docker_cleanup.argument_spec()
    own = {name: value for name, value in spec.items() if name not in docker_argument_spec()}
    assert set(own) == set(documented)
    for name, value in own.items():
        assert value.get("default") == documented[name].get("default"), name


def test_an_app_never_deployed_by_the_module_keeps_every_tag_of_its_named_image(tmp_path):
    # The lab's web app, like an app an operator started by hand, has no state file yet: with its image named, every
    # tag of that repository stays; without one, or with a project directory that does not exist, nothing is removed.
    named = [{"app": "web", "project_dir": str(tmp_path), "image": "reg/web"}]
    found = read_protections(settings(blue_green=named).blue_green, 3)
    assert [(p.repository, p.tag) for p in found] == [("reg/web", None)]
    assert found[0].matches(["reg/web:0.9"]) and not found[0].matches(["reg/other:0.9"])
    assert "no deploy history yet" in found[0].reason
    with pytest.raises(DockerCleanupError, match="name its image"):
        read_protections(settings(blue_green=[{**named[0], "project_dir": str(tmp_path / "typo")}]).blue_green, 3)
