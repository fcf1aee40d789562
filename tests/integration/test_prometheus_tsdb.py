"""prometheus_tsdb against a real Prometheus (Debian's 2.42 from the harness), asserted from what its data dir holds."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.prometheus_tsdb import snapshot_time
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import prometheus_tsdb
from lab.harness import prometheus as prometheus_harness
from lab.harness.base import wait_for
from lab.harness.prometheus import PrometheusServer
from lab.harness.promtool import find_promtool

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def head_samples(server) -> float:
    url = f"{server.url}/api/v1/query?query=sum(prometheus_tsdb_head_samples_appended_total)"
    with _DIRECT.open(url, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture
def scraped(prometheus_server):
    """The harness' server once it has scraped itself (its first scrape comes a few seconds after start)."""
    wait_for(lambda: head_samples(prometheus_server) > 0, timeout=60, what="samples in the head", interval=0.5)
    return prometheus_server


def run_module(server, capsys, **args):
    options = {"url": server.url, "data_dir": str(server.data_dir), **args}
    with patch_module_args(options), pytest.raises(SystemExit) as exited:
        prometheus_tsdb.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=args.get("_ansible_check_mode", False)) == []
    return result


def on_disk(server) -> list[str]:
    snapshots = Path(server.data_dir) / "snapshots"
    return sorted(p.name for p in snapshots.iterdir()) if snapshots.exists() else []


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def test_snapshot_holds_the_head_and_the_report_lists_it(scraped, capsys):
    planned = run_module(scraped, capsys, operation="snapshot", _ansible_check_mode=True)
    assert planned["changed"] and [r["status"] for r in planned["records"]] == ["planned"]
    assert on_disk(scraped) == []  # check mode called no admin API

    result = run_module(scraped, capsys, operation="snapshot")
    name = result["snapshot"]["name"]
    assert snapshot_time(name) is not None and on_disk(scraped) == [name]
    path = Path(scraped.data_dir) / "snapshots" / name
    blocks = [p for p in path.iterdir() if (p / "meta.json").is_file()]
    assert blocks, "the head was not in the snapshot"
    meta = json.loads((blocks[0] / "meta.json").read_text())
    assert meta["stats"]["numSamples"] > 0
    measured = sum(p.stat().st_size for p in files_under(path))
    assert result["snapshot"]["bytes"] == measured > 0 and result["records"][0]["after"]["blocks"] == len(blocks)
    # the head is written fresh into the snapshot: nothing of it is shared with a block of the data dir
    assert result["snapshot"]["unshared_bytes"] == measured

    report = run_module(scraped, capsys, operation="report")
    assert not report["changed"] and report["source"] == "promtool"
    assert [s["name"] for s in report["snapshots"]] == [name]
    assert report["snapshots"][0]["bytes"] == measured
    assert report["totals"]["snapshots"] == 1 and report["totals"]["blocks"] == len(report["blocks"]) == 0
    assert report["executed"] == [f"/usr/bin/promtool tsdb list {scraped.data_dir}"]


def test_snapshot_of_persisted_blocks_is_hard_links(scraped, capsys, tmp_path):
    # Give the server a persisted block: promtool writes one from OpenMetrics, Prometheus picks it up on restart.
    now = int(time.time())
    samples = "".join(f'tsdb_test_metric{{job="t"}} {i} {now - 7200 + i * 15}\n' for i in range(200))
    source = tmp_path / "metrics.om"
    source.write_text("# TYPE tsdb_test_metric gauge\n" + samples + "# EOF\n")
    blocks = tmp_path / "blocks"
    subprocess.run([find_promtool(), "tsdb", "create-blocks-from", "openmetrics", str(source), str(blocks)],
                   check=True, capture_output=True)
    scraped.stop()
    for block in blocks.iterdir():
        block.rename(Path(scraped.data_dir) / block.name)
    scraped.start()
    report = run_module(scraped, capsys, operation="report")
    assert report["totals"]["blocks"] >= 1 and report["totals"]["samples"] >= 200
    block_bytes = report["totals"]["block_bytes"]

    result = run_module(scraped, capsys, operation="snapshot", skip_head=True)
    snap = result["snapshot"]
    assert snap["blocks"] == report["totals"]["blocks"] and snap["bytes"] > 0
    assert snap["unshared_bytes"] < snap["bytes"]  # the block files are links to the data dir's blocks
    linked = [p for p in files_under(Path(snap["path"])) if p.stat().st_nlink > 1]
    assert linked and block_bytes > 0


def test_retention_keeps_the_newest_and_leaves_foreign_entries(scraped, capsys):
    taken = []
    for _attempt in range(3):
        taken.append(run_module(scraped, capsys, operation="snapshot", skip_head=True)["snapshot"]["name"])
        time.sleep(1.1)  # one snapshot per second keeps the names' order the order taken
    snapshots = Path(scraped.data_dir) / "snapshots"
    (snapshots / "operator-notes.txt").write_text("not a snapshot")
    (snapshots / "manual-backup").mkdir()
    (snapshots / "manual-backup" / "keep").write_text("precious")

    planned = run_module(scraped, capsys, operation="retention", keep_snapshots=1, _ansible_check_mode=True,
                         _ansible_diff=True)
    assert planned["changed"] and sorted(on_disk(scraped)) == sorted(taken + ["manual-backup", "operator-notes.txt"])
    assert planned["diff"]["after"]["snapshots"] == [taken[-1]]
    assert {r["name"]: r["status"] for r in planned["records"]} == {
        f"snapshot {taken[0]}": "planned", f"snapshot {taken[1]}": "planned", f"snapshot {taken[2]}": "unchanged",
        "snapshots/manual-backup": "unchanged", "snapshots/operator-notes.txt": "unchanged"}

    done = run_module(scraped, capsys, operation="retention", keep_snapshots=1)
    assert done["changed"]
    assert on_disk(scraped) == sorted([taken[-1], "manual-backup", "operator-notes.txt"])
    assert (snapshots / "manual-backup" / "keep").read_text() == "precious"

    again = run_module(scraped, capsys, operation="retention", keep_snapshots=1)
    assert not again["changed"]


def test_snapshot_with_keep_never_deletes_the_one_taken(scraped, capsys):
    first = run_module(scraped, capsys, operation="snapshot", skip_head=True)["snapshot"]["name"]
    time.sleep(1.1)
    result = run_module(scraped, capsys, operation="snapshot", skip_head=True, keep_snapshots=1)
    assert on_disk(scraped) == [result["snapshot"]["name"]] != [first]


def test_admin_api_off_is_named(tmp_path, capsys, monkeypatch):
    real_spawn = prometheus_harness.spawn
    monkeypatch.setattr(prometheus_harness, "spawn", lambda argv, **kw: real_spawn(
        [arg for arg in argv if arg != "--web.enable-admin-api"], **kw))
    with PrometheusServer(tmp_path / "no-admin") as server:
        result = run_module(server, capsys, operation="snapshot")
        assert result["failed"]
        assert "admin API" in result["msg"] and "--web.enable-admin-api" in result["msg"]
        assert on_disk(server) == []
        # the snapshot API itself refuses too, whatever the flags say
        request = urllib.request.Request(f"{server.url}/api/v1/admin/tsdb/snapshot", method="POST", data=b"")
        with pytest.raises(urllib.error.HTTPError):
            _DIRECT.open(request, timeout=5)


def test_bad_data_dir_is_named_before_any_call(prometheus_server, capsys, tmp_path):
    result = run_module(prometheus_server, capsys, operation="snapshot", data_dir=str(tmp_path))
    assert result["failed"] and f"data_dir '{tmp_path}' is not a Prometheus data directory" in result["msg"]
    assert on_disk(prometheus_server) == []
    result = run_module(prometheus_server, capsys, operation="retention", keep_snapshots=0)
    assert result["failed"] and "keep_snapshots must be at least 1, got 0" in result["msg"]


def test_a_rerun_within_reuse_within_takes_no_second_snapshot(scraped, capsys):
    first = run_module(scraped, capsys, operation="snapshot", reuse_within="1h", keep_snapshots=4)
    assert first["changed"] and first["records"][0]["status"] == "done"
    again = run_module(scraped, capsys, operation="snapshot", reuse_within="1h", keep_snapshots=4)
    assert not again["changed"], again
    assert again["snapshot"]["name"] == first["snapshot"]["name"]
    assert again["records"][0]["status"] == "ok" and "reuse_within (1h)" in again["records"][0]["detail"]
    assert on_disk(scraped) == [first["snapshot"]["name"]]
