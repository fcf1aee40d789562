"""prometheus_tsdb's pure parts: promtool's output, snapshot names, sizes with hard links, retention, safe deletion."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from ansible_collections.streamops.maintenance.plugins.module_utils import prometheus_tsdb as tsdb
from ansible_collections.streamops.maintenance.plugins.module_utils.prometheus_conn import (
    PrometheusError,
    prometheus_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.module_utils.prometheus_tsdb import (
    RetentionPlan,
    SnapshotEntry,
    TsdbError,
)
from ansible_collections.streamops.maintenance.plugins.modules import prometheus_tsdb as module

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "prometheus_tsdb"
# Real output of Debian's promtool 2.42 over four blocks made with `promtool tsdb create-blocks-from openmetrics`.
ULIDS = ["01M95VMV3KYDGCKWVRG4T33F5Q", "01M95VMV5GCD1F0EM9G7ZS1F7A", "01M95VMVB9M5F4B2STQR7XD2HE",
         "01M95VMVDNG8CGZEB30XENA87N"]
HEADER = "BLOCK ULID   MIN TIME     MAX TIME     DURATION     NUM SAMPLES  NUM CHUNKS   NUM SERIES   SIZE"


def _shape(options):
    return {name: {"type": o.get("type", "str"), "default": o.get("default"), "choices": o.get("choices"),
                   "required": o.get("required", False)} for name, o in options.items()}


def test_module_options_are_documented_exactly():
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    own = {k: v for k, v in module.argument_spec().items() if k not in prometheus_argument_spec()}
    assert _shape(documented) == _shape(own)


# --------------------------------------------------------------------------- promtool tsdb list


@pytest.mark.parametrize("fixture", ["promtool-tsdb-list.txt", "promtool-tsdb-list-r.txt"])
def test_real_promtool_output_parses_the_same_with_and_without_r(fixture):
    blocks = tsdb.parse_promtool_list((FIXTURES / fixture).read_text())
    assert [b["ulid"] for b in blocks] == ULIDS
    assert [b["bytes"] for b in blocks] == [2220, 5256, 5256, 3888]
    assert [b["samples"] for b in blocks] == [790, 2400, 2400, 1610]
    assert [b["series"] for b in blocks] == [5, 5, 5, 5]
    assert [b["chunks"] for b in blocks] == [5, 20, 20, 15]
    assert blocks[0]["min_time"] == "2026-12-06T07:20:38Z"
    # -r prints seconds: the exact milliseconds come from the plain output
    assert blocks[0]["min_time_ms"] // 1000 == 1796541638
    assert blocks[1]["max_time"].startswith("2026-12-06T09:59:53")


def test_plain_output_keeps_the_milliseconds():
    blocks = tsdb.parse_promtool_list((FIXTURES / "promtool-tsdb-list.txt").read_text())
    assert blocks[0]["min_time_ms"] == 1796541638000 and blocks[0]["max_time_ms"] == 1796543993001
    assert blocks[0]["duration_seconds"] == 2355.001


def test_real_output_of_a_data_dir_without_blocks_is_no_blocks():
    assert tsdb.parse_promtool_list((FIXTURES / "promtool-tsdb-list-empty.txt").read_text()) == []


def test_blocks_come_oldest_first_whatever_the_order_printed():
    lines = (FIXTURES / "promtool-tsdb-list.txt").read_text().splitlines()
    shuffled = "\n".join([lines[0], lines[3], lines[1], lines[4], lines[2]])
    assert [b["ulid"] for b in tsdb.parse_promtool_list(shuffled)] == ULIDS


@pytest.mark.parametrize("text, fragment", [
    ("", "printed nothing"),
    ("ULID MIN MAX\n", "unexpected header"),
    (HEADER + "\n01M95VMV3KYDGCKWVRG4T33F5Q  1796541638000  1796543993001  39m15.001s  790  5  5\n",
     "not a block"),
    (HEADER + "\nnot-a-ulid  1  2  1s  790  5  5  2220\n", "not a block"),
    (HEADER + "\n01M95VMV3KYDGCKWVRG4T33F5Q  1  2  1s  many  5  5  2220\n", "count that is not a number"),
    (HEADER + "\n01M95VMV3KYDGCKWVRG4T33F5Q  yesterday  2  1s  790  5  5  2220\n", "'yesterday' is neither"),
    (HEADER + "\n01M95VMV3KYDGCKWVRG4T33F5Q  1  2  1s  790  5  5  2KB\n", "size '2KB' is neither"),
])
def test_promtool_output_that_does_not_parse_is_named(text, fragment):
    with pytest.raises(TsdbError, match=fragment):
        tsdb.parse_promtool_list(text)


@pytest.mark.parametrize("text, seconds", [
    ("1h59m45.001s", 7185.001), ("39m15.001s", 2355.001), ("0s", 0), ("2h0m0s", 7200), ("500ms", 0.5),
    ("1m30.5s", 90.5), ("48h0m0s", 172800),
])
def test_go_durations(text, seconds):
    assert tsdb.parse_go_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1 h", "1d", "h", "5"])
def test_bad_go_durations_are_named(text):
    with pytest.raises(TsdbError, match=f"duration {text!r} is not a Go duration"):
        tsdb.parse_go_duration(text)


@pytest.mark.parametrize("text, size", [
    ("5256", 5256), ("5KiB136B", 5256), ("975B", 975), ("1MiB", 1048576), ("1GiB512MiB", 1610612736), ("0", 0),
])
def test_block_sizes(text, size):
    assert tsdb.parse_block_size(text) == size


@pytest.mark.parametrize("text, ms", [
    ("1796544008000", 1796544008000), ("2026-12-06 08:00:08 +0000 UTC", 1796544008000),
    ("2026-12-06 09:00:08 +0100 CET", 1796544008000),
])
def test_block_times(text, ms):
    assert tsdb.parse_block_time(text) == ms


def test_meta_json_gives_the_blocks_when_promtool_is_absent(tmp_path):
    block = tmp_path / ULIDS[0]
    (block / "chunks").mkdir(parents=True)
    (block / "chunks" / "000001").write_bytes(b"x" * 1000)
    (block / "index").write_bytes(b"i" * 200)
    meta = {"ulid": ULIDS[0], "minTime": 1796541638000, "maxTime": 1796543993001,
            "stats": {"numSamples": 790, "numSeries": 5, "numChunks": 5}, "version": 1}
    (block / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "01M95VMV5GCD1F0EM9G7ZS1F7A.tmp-for-creation").mkdir()  # a block being written: not a block
    [found] = tsdb.meta_blocks(tmp_path)
    assert found["samples"] == 790 and found["series"] == 5 and found["min_time"] == "2026-12-06T07:20:38Z"
    assert found["bytes"] == 1200 + len(json.dumps(meta))


def test_a_broken_meta_json_is_named(tmp_path):
    (tmp_path / ULIDS[0]).mkdir()
    (tmp_path / ULIDS[0] / "meta.json").write_text("{")
    with pytest.raises(TsdbError, match=f"block {tmp_path / ULIDS[0]}: meta.json could not be read"):
        tsdb.meta_blocks(tmp_path)


# --------------------------------------------------------------------------- the data directory


@pytest.mark.parametrize("layout, fragment", [
    (None, "does not exist"),
    ("file", "is not a directory"),
    ([], "is not a Prometheus data directory"),
    (["lost+found"], "is not a Prometheus data directory"),
    (["wal"], None), (["snapshots"], None),
])
def test_data_dir_must_be_a_prometheus_one(tmp_path, layout, fragment):
    data_dir = tmp_path / "data"
    if layout == "file":
        data_dir.write_text("")
    elif layout is not None:
        data_dir.mkdir()
        for name in layout:
            (data_dir / name).mkdir()
    if fragment is None:
        assert tsdb.check_data_dir(str(data_dir)) == data_dir
    else:
        with pytest.raises(TsdbError, match=f"data_dir '{data_dir}' {fragment}"):
            tsdb.check_data_dir(str(data_dir))


@pytest.mark.parametrize("params, fragment", [
    ({"operation": "retention", "keep_snapshots": 0}, "keep_snapshots must be at least 1, got 0"),
    ({"operation": "snapshot", "keep_snapshots": -2}, "keep_snapshots must be at least 1, got -2"),
    ({"operation": "retention"}, "operation=retention needs keep_snapshots"),
    ({"operation": "report", "keep_snapshots": 3}, r"keep_snapshots \(3\) applies to operation snapshot or retention"),
    ({"operation": "retention", "keep_snapshots": 2, "skip_head": True}, "skip_head applies to operation snapshot"),
    ({"operation": "retention", "keep_snapshots": 2, "reuse_within": "1h"}, "reuse_within applies to operation snapshot"),
    ({"operation": "snapshot", "reuse_within": "soon"}, "reuse_within"),
])
def test_bad_options_are_named_before_anything(tmp_path, params, fragment):
    with pytest.raises(TsdbError, match=fragment):
        tsdb.validate({"data_dir": str(tmp_path / "absent"), "skip_head": False, **params})


# --------------------------------------------------------------------------- sizes


def test_tree_size_counts_hard_links_apparent_and_unshared(tmp_path):
    block, snap = tmp_path / "block", tmp_path / "snap"
    block.mkdir()
    snap.mkdir()
    (block / "chunks").write_bytes(b"c" * 4000)
    os.link(block / "chunks", snap / "chunks")  # what a snapshot of a persisted block is
    (snap / "head-block").write_bytes(b"h" * 300)  # the head, written fresh
    (snap / "link").symlink_to(tmp_path / "block" / "chunks")  # never followed nor counted
    assert tsdb.tree_size(snap) == {"bytes": 4300, "unshared_bytes": 300, "files": 2}
    (block / "chunks").unlink()  # Prometheus compacted the block away: the snapshot now owns the file
    assert tsdb.tree_size(snap)["unshared_bytes"] == 4300
    assert tsdb.tree_size(tmp_path / "absent") == {"bytes": 0, "unshared_bytes": 0, "files": 0}


# --------------------------------------------------------------------------- snapshot names


@pytest.mark.parametrize("name, expected", [
    ("20261206T141957Z-55baad91b995e27f", datetime(2026, 12, 6, 14, 19, 57, tzinfo=timezone.utc)),
    ("20261206T141950Z-0e06a839cfd291ed", datetime(2026, 12, 6, 14, 19, 50, tzinfo=timezone.utc)),
    ("20261206T141957Z-55baad91b995e27", None),     # 15 hex digits
    ("20261206T141957Z-55BAAD91B995E27F", None),    # Prometheus prints lower case
    ("20261206T141957-55baad91b995e27f", None),     # no Z
    ("20261399T141957Z-55baad91b995e27f", None),    # no 99th day of the 13th month
    ("backup-20261206", None), ("..", None), ("", None),
    ("20261206T141957Z-55baad91b995e27f/..", None),
])
def test_snapshot_names(name, expected):
    assert tsdb.snapshot_time(name) == expected


@pytest.mark.parametrize("body, fragment", [
    ('{"status":"success","data":{"name":"../../etc"}}', "'../../etc' is not a snapshot name"),
    ('{"status":"error","error":"x"}', "without a snapshot name"),
    ("<html>", "without a snapshot name"),
])
def test_snapshot_answer_must_carry_a_snapshot_name(body, fragment):
    with pytest.raises(TsdbError, match=fragment):
        tsdb.snapshot_name_from_answer(body)


def test_snapshot_answer_name():
    body = '{"status":"success","data":{"name":"20261206T141957Z-55baad91b995e27f"}}'
    assert tsdb.snapshot_name_from_answer(body) == "20261206T141957Z-55baad91b995e27f"


# --------------------------------------------------------------------------- retention selection

A, B, C, D = ("20261201T020000Z-aaaaaaaaaaaaaaaa", "20261202T020000Z-bbbbbbbbbbbbbbbb",
              "20261203T020000Z-cccccccccccccccc", "20261204T020000Z-dddddddddddddddd")


def entry(name, kind="snapshot", mtime_ns=0):
    return SnapshotEntry(name, Path("/data/snapshots") / name, kind, tsdb.snapshot_time(name), mtime_ns)


def names(entries):
    return [e.name for e in entries]


@pytest.mark.parametrize("present, keep, protect, reserved, kept, deleted", [
    ([A, B, C, D], 1, [], 0, [D], [C, B, A]),
    ([A, B, C, D], 2, [], 0, [D, C], [B, A]),
    ([D, B, A, C], 2, [], 0, [D, C], [B, A]),                  # by the time in the name, not the listing order
    ([A, B], 5, [], 0, [B, A], []),
    ([], 1, [], 0, [], []),
    ([A, B, C, D], 1, [A], 0, [D, A], [C, B]),                 # the snapshot just taken stays whatever its time
    ([A, B, C, D], 2, [], 1, [D], [C, B, A]),                  # check mode: one place is the snapshot to be taken
    ([A], 1, [], 1, [], [A]),
])
def test_retention_keeps_the_newest(present, keep, protect, reserved, kept, deleted):
    plan = tsdb.select_retention([entry(n) for n in present], keep, protect=protect, reserved=reserved)
    assert names(plan.keep) == kept and names(plan.delete) == deleted and plan.left == []


def test_retention_leaves_what_is_not_a_snapshot():
    present = [entry(A), entry(B), entry("notes.txt", "foreign"), entry(C, "symlink"),
               entry("20261205T020000Z-eeeeeeeeeeeeeeee", "foreign")]  # the right name, but a file
    plan = tsdb.select_retention(present, 1)
    assert names(plan.keep) == [B] and names(plan.delete) == [A]
    assert names(plan.left) == ["notes.txt", C, "20261205T020000Z-eeeeeeeeeeeeeeee"]


def test_two_snapshots_in_one_second_are_ordered_by_mtime():
    first, second = "20261201T020000Z-ffffffffffffffff", "20261201T020000Z-0000000000000000"
    plan = tsdb.select_retention([entry(first, mtime_ns=1), entry(second, mtime_ns=2)], 1)
    assert names(plan.keep) == [second] and names(plan.delete) == [first]


def test_retention_never_keeps_none():
    with pytest.raises(TsdbError, match="keep_snapshots must be at least 1, got 0"):
        tsdb.select_retention([entry(A)], 0)
    assert isinstance(tsdb.select_retention([], 1), RetentionPlan)


# --------------------------------------------------------------------------- safe deletion on a real tree


@pytest.fixture
def snapshots(tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "wal").mkdir(parents=True)
    snapshots_dir = data_dir / "snapshots"
    for name in (A, B, C):
        (snapshots_dir / name / "01M95VMV3KYDGCKWVRG4T33F5Q").mkdir(parents=True)
        (snapshots_dir / name / "01M95VMV3KYDGCKWVRG4T33F5Q" / "index").write_bytes(b"i" * 100)
    return data_dir


def test_classify_entries_without_following_symlinks(snapshots, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (snapshots / "snapshots" / D).symlink_to(outside)
    (snapshots / "snapshots" / "README").write_text("keep me")
    kinds = {e.name: e.kind for e in tsdb.list_snapshot_entries(snapshots / "snapshots")}
    assert kinds == {A: "snapshot", B: "snapshot", C: "snapshot", D: "symlink", "README": "foreign"}


@pytest.mark.parametrize("make, fragment", [
    (lambda d, out: (d / D).symlink_to(out), "is a symlink: never followed nor deleted"),
    (lambda d, out: (d / D).write_text("x"), "is not a directory"),
    (lambda d, out: None, "No such file"),
])
def test_deletable_path_refuses(snapshots, tmp_path, make, fragment):
    outside = tmp_path / "precious"
    outside.mkdir()
    make(snapshots / "snapshots", outside)
    with pytest.raises((TsdbError, FileNotFoundError), match=fragment):
        tsdb.deletable_path(snapshots / "snapshots", D)
    assert outside.is_dir()


@pytest.mark.parametrize("name", ["..", "../data", "README", f"{A}/../{B}", ""])
def test_deletable_path_refuses_names_that_are_not_snapshots(snapshots, name):
    with pytest.raises(TsdbError, match="is not a Prometheus snapshot name"):
        tsdb.deletable_path(snapshots / "snapshots", name)


def test_deletable_path_refuses_a_symlinked_snapshots_dir(tmp_path, snapshots):
    data_dir = tmp_path / "other"
    (data_dir / "wal").mkdir(parents=True)
    (data_dir / "snapshots").symlink_to(snapshots / "snapshots")
    with pytest.raises(TsdbError, match="is a symlink: snapshots are never deleted through one"):
        tsdb.deletable_path(data_dir / "snapshots", A)
    with pytest.raises(TsdbError, match="is a symlink: retention never deletes through one"):
        tsdb.retention(data_dir, 1, check_mode=False, diff_mode=False)
    assert (snapshots / "snapshots" / A).is_dir()


def test_retention_on_a_tree(snapshots, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (snapshots / "snapshots" / D).symlink_to(outside)
    (snapshots / "snapshots" / "README").write_text("keep me")
    planned = tsdb.retention(snapshots, 1, check_mode=True, diff_mode=True)
    assert result_problems(planned, check_mode=True) == []
    assert planned["changed"] and sorted(p.name for p in (snapshots / "snapshots").iterdir()) == sorted(
        [A, B, C, D, "README"])
    by_status = {(r["name"], r["status"]) for r in planned["records"]}
    assert {(f"snapshot {A}", "planned"), (f"snapshot {B}", "planned"), (f"snapshot {C}", "unchanged"),
            (f"snapshots/{D}", "unchanged"), ("snapshots/README", "unchanged")} == by_status
    assert planned["diff"] == {"before": {"snapshots": [A, B, C]}, "after": {"snapshots": [C]}}
    assert next(r for r in planned["records"] if r["name"] == f"snapshot {A}")["before"]["bytes"] == 100

    done = tsdb.retention(snapshots, 1, check_mode=False, diff_mode=False)
    assert result_problems(done) == [] and done["changed"]
    assert sorted(p.name for p in (snapshots / "snapshots").iterdir()) == sorted([C, D, "README"])
    assert outside.is_dir()
    again = tsdb.retention(snapshots, 1, check_mode=False, diff_mode=False)
    assert not again["changed"] and result_problems(again) == []


def test_a_deletion_that_fails_half_way_says_what_was_and_was_not_deleted(snapshots, monkeypatch):
    real = tsdb.shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if Path(path).name == B:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(tsdb.shutil, "rmtree", rmtree)
    four = snapshots / "snapshots" / D
    four.mkdir()
    result = tsdb.retention(snapshots, 1, check_mode=False, diff_mode=False)
    assert result["failed"] and result["deleted"] == [C] and result["not_deleted"] == [B, A]
    statuses = {r["name"]: r["status"] for r in result["records"]}
    assert statuses == {f"snapshot {D}": "unchanged", f"snapshot {C}": "done", f"snapshot {B}": "failed",
                        f"snapshot {A}": "skipped"}
    assert f"deleted {C}; not deleted {B}, {A}" in result["msg"]
    assert sorted(p.name for p in (snapshots / "snapshots").iterdir()) == [A, B, D]


# --------------------------------------------------------------------------- snapshot, with a stand-in client


class FakeClient:
    url = "http://127.0.0.1:9"

    def __init__(self, data_dir, *, admin="true", refuse=None, create=True):
        self.data_dir, self.admin, self.refuse, self.create, self.posts = data_dir, admin, refuse, create, []

    def get_json(self, path):
        assert path == tsdb.FLAGS_PATH
        return {"web.enable-admin-api": self.admin} if self.admin is not None else {}

    def post(self, path, params):
        self.posts.append((path, params))
        if self.refuse:
            raise PrometheusError(msg=self.refuse, status=503)
        name = "20991231T235959Z-0123456789abcdef"
        if self.create:
            (self.data_dir / "snapshots" / name).mkdir(parents=True)
            (self.data_dir / "snapshots" / name / "x").write_bytes(b"x" * 10)
        return json.dumps({"status": "success", "data": {"name": name}})


def run_snapshot(data_dir, client, check_mode=False, **params):
    options = {"operation": "snapshot", "data_dir": str(data_dir), "skip_head": False, "keep_snapshots": None,
               "promtool": None, **params}
    return tsdb.run_prometheus_tsdb(options, check_mode=check_mode, client_factory=lambda _params: client)


def test_snapshot_in_check_mode_posts_nothing(snapshots):
    client = FakeClient(snapshots)
    result = run_snapshot(snapshots, client, check_mode=True, keep_snapshots=2)
    assert client.posts == [] and result_problems(result, check_mode=True) == []
    assert [(r["name"], r["status"]) for r in result["records"]] == [
        ("snapshot", "planned"), (f"snapshot {C}", "unchanged"), (f"snapshot {B}", "planned"),
        (f"snapshot {A}", "planned")]


def test_snapshot_then_retention_keeps_the_one_taken(snapshots):
    client = FakeClient(snapshots)
    result = run_snapshot(snapshots, client, keep_snapshots=1, skip_head=True)
    assert client.posts == [(tsdb.SNAPSHOT_PATH, {"skip_head": "true"})]
    assert result_problems(result) == [] and result["snapshot"]["bytes"] == 10
    assert sorted(p.name for p in (snapshots / "snapshots").iterdir()) == ["20991231T235959Z-0123456789abcdef"]


@pytest.mark.parametrize("client_args, fragment", [
    ({"admin": "false"}, "admin API of Prometheus at http://127.0.0.1:9 is disabled: start Prometheus with "
                         "--web.enable-admin-api"),
    ({"admin": None, "refuse": "POST x: HTTP 503: unavailable: admin APIs disabled"},
     "snapshot refused: .*admin APIs disabled: start Prometheus with --web.enable-admin-api"),
    ({"create": False}, "does not exist: data_dir must be the server's --storage.tsdb.path"),
])
def test_snapshot_failures_are_named(snapshots, client_args, fragment):
    with pytest.raises(TsdbError, match=fragment):
        run_snapshot(snapshots, FakeClient(snapshots, **client_args))


def test_report_without_promtool_reads_meta_json(snapshots, monkeypatch):
    monkeypatch.setattr(tsdb, "find_promtool", lambda explicit=None: None)
    result = tsdb.run_prometheus_tsdb({"operation": "report", "data_dir": str(snapshots), "keep_snapshots": None,
                                       "skip_head": False, "promtool": None}, check_mode=False)
    assert result["source"] == "meta.json" and result["executed"] == [] and result_problems(result) == []
    assert result["totals"]["snapshots"] == 3 and result["totals"]["snapshot_bytes"] == 300


def test_a_snapshot_within_reuse_within_is_reused_and_an_older_one_is_not(tmp_path):
    now = datetime(2026, 12, 6, 14, 30, tzinfo=timezone.utc)
    young = tsdb.SnapshotEntry("20261206T140000Z-0123456789abcdef", tmp_path, "snapshot",
                               datetime(2026, 12, 6, 14, 0, tzinfo=timezone.utc))
    old = tsdb.SnapshotEntry("20261205T140000Z-0123456789abcdef", tmp_path, "snapshot",
                             datetime(2026, 12, 5, 14, 0, tzinfo=timezone.utc))
    foreign = tsdb.SnapshotEntry("notes", tmp_path, "foreign")
    assert tsdb.recent_snapshot([old, young, foreign], 3600, now=now) is young
    assert tsdb.recent_snapshot([old, young], 1200, now=now) is None
    assert tsdb.recent_snapshot([old, young], None, now=now) is None
