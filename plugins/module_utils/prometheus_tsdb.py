# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Prometheus TSDB maintenance: the blocks and snapshots of a data directory, a snapshot, snapshot retention.

The pure parts (parsing ``promtool tsdb list``, snapshot names, sizes, which snapshots retention deletes,
whether a path may be deleted) are plain functions with unit tests; ``run_prometheus_tsdb`` takes the
module options and a client with ``post(path, data)`` (module_utils/prometheus_conn.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import MaintenanceError
from .records import human_bytes, is_changed, make_record
from .window import parse_duration

# Prometheus names a snapshot fmt.Sprintf("%s-%016x", now.UTC().Format("20060102T150405Z0700"), rand.Int63())
# (web/api/v1/api.go), for example 20261206T141957Z-55baad91b995e27f.
SNAPSHOT_NAME_RE = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-(?P<random>[0-9a-f]{16})$")
# A block directory is named by its ULID (26 characters of Crockford's base32).
BLOCK_ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
PROMTOOL_TIMEOUT = 300

_GO_DURATION_RE = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>ns|us|µs|μs|ms|h|m|s)")
_GO_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_BASE2_RE = re.compile(r"(?P<number>\d+)(?P<unit>[KMGTPE]iB|B)")
_BASE2_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4, "PiB": 1024 ** 5,
                "EiB": 1024 ** 6}
_HUMAN_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"
# promtool aligns its columns with tabwriter (padding 2): cells are split by two or more spaces.
_COLUMN_GAP_RE = re.compile(r" {2,}")
_PROMTOOL_COLUMNS = ("BLOCK ULID", "MIN TIME", "MAX TIME", "DURATION", "NUM SAMPLES", "NUM CHUNKS", "NUM SERIES", "SIZE")


class TsdbError(MaintenanceError):
    """The data directory, promtool's output, a snapshot or a deletion could not be handled."""


# --------------------------------------------------------------------------- promtool tsdb list


def parse_go_duration(text: str) -> float:
    """Seconds of a Go duration as promtool prints it (``1h59m45.001s``, ``39m15.001s``, ``0s``)."""
    value = text.strip()
    matches = list(_GO_DURATION_RE.finditer(value))
    if not value or "".join(m.group(0) for m in matches) != value:
        raise TsdbError(msg=f"duration {text!r} is not a Go duration such as 1h59m45.001s")
    return round(sum(float(m["number"]) * _GO_DURATION_UNITS[m["unit"]] for m in matches), 6)


def parse_block_size(text: str) -> int:
    """Bytes of promtool's SIZE cell: plain bytes (``5256``), or with -r base-2 units (``5KiB136B``)."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    matches = list(_BASE2_RE.finditer(value))
    if not value or "".join(m.group(0) for m in matches) != value:
        raise TsdbError(msg=f"size {text!r} is neither bytes nor base-2 units such as 5KiB136B")
    return sum(int(m["number"]) * _BASE2_UNITS[m["unit"]] for m in matches)


def parse_block_time(text: str) -> int:
    """Milliseconds since the epoch of promtool's MIN/MAX TIME cell: ``1796544008000`` or, with -r,
    ``2026-12-06 08:00:08 +0000 UTC``."""
    value = text.strip()
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    parts = value.split(" ")
    if len(parts) == 4:  # the zone's name after the offset carries nothing the offset does not
        value = " ".join(parts[:3])
    try:
        instant = datetime.strptime(value, _HUMAN_TIME_FORMAT)
    except ValueError as exc:
        raise TsdbError(msg=f"block time {text!r} is neither epoch milliseconds nor "
                            "'YYYY-MM-DD HH:MM:SS +0000 UTC'") from exc
    return int(instant.timestamp() * 1000)


def iso_from_ms(milliseconds: int) -> str:
    return datetime.fromtimestamp(milliseconds / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def block_from_values(ulid: str, min_ms: int, max_ms: int, samples: int | None, chunks: int | None,
                      series: int | None, size: int | None) -> dict[str, Any]:
    """One block in the report's shape (max time is exclusive, as Prometheus keeps it)."""
    return {"ulid": ulid, "min_time": iso_from_ms(min_ms), "max_time": iso_from_ms(max_ms),
            "min_time_ms": min_ms, "max_time_ms": max_ms, "duration_seconds": round((max_ms - min_ms) / 1000, 3),
            "samples": samples, "chunks": chunks, "series": series, "bytes": size}


def parse_promtool_list(text: str) -> list[dict[str, Any]]:
    """The blocks of ``promtool tsdb list [-r] <dir>`` output, oldest first.

    The header names the columns; a line that does not have them all, a ULID that is not one, or a cell that
    does not parse is an error naming the line (a silently dropped block would understate the sizes).
    """
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise TsdbError(msg="promtool tsdb list printed nothing (not even its header)")
    header = _COLUMN_GAP_RE.split(lines[0].strip())
    if tuple(header) != _PROMTOOL_COLUMNS:
        raise TsdbError(msg=f"promtool tsdb list printed an unexpected header {lines[0].strip()!r} "
                            f"(expected the columns {', '.join(_PROMTOOL_COLUMNS)})")
    blocks = []
    for line in lines[1:]:
        cells = _COLUMN_GAP_RE.split(line.strip())
        if len(cells) != len(header) or not BLOCK_ULID_RE.match(cells[0]):
            raise TsdbError(msg=f"promtool tsdb list printed a line that is not a block: {line.strip()!r}")
        row = dict(zip(header, cells))
        try:
            samples, chunks, series = (int(row[key]) for key in ("NUM SAMPLES", "NUM CHUNKS", "NUM SERIES"))
        except ValueError as exc:
            raise TsdbError(msg=f"promtool tsdb list printed a count that is not a number: {line.strip()!r}") from exc
        blocks.append(block_from_values(row["BLOCK ULID"], parse_block_time(row["MIN TIME"]),
                                        parse_block_time(row["MAX TIME"]), samples, chunks, series,
                                        parse_block_size(row["SIZE"])))
    return sorted(blocks, key=lambda block: (block["min_time_ms"], block["ulid"]))


def find_promtool(explicit: str | None = None) -> str | None:
    """The promtool to use, else None (the blocks' meta.json is read instead)."""
    from .prometheus_conn import PrometheusError, locate_promtool
    try:
        return locate_promtool(explicit)
    except PrometheusError as exc:
        raise TsdbError(msg=exc.msg) from exc


def promtool_blocks(promtool: str, data_dir: Path, executed: list[str]) -> list[dict[str, Any]]:
    """``promtool tsdb list <data_dir>`` (exact numbers: epoch milliseconds and bytes), parsed."""
    argv = [promtool, "tsdb", "list", str(data_dir)]
    executed.append(" ".join(argv))
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TsdbError(msg=f"{' '.join(argv)} could not run: {exc}") from exc
    if result.returncode != 0:
        raise TsdbError(msg=f"{' '.join(argv)} exited with {result.returncode}: "
                            f"{(result.stderr or result.stdout).strip()[-500:]}")
    return parse_promtool_list(result.stdout)


def meta_blocks(data_dir: Path) -> list[dict[str, Any]]:
    """The blocks from each block directory's meta.json, sizes from the files (when promtool is absent)."""
    blocks = []
    for path in block_dirs(data_dir):
        try:
            meta = json.loads((path / "meta.json").read_text())
            stats = meta.get("stats") or {}
            blocks.append(block_from_values(meta["ulid"], int(meta["minTime"]), int(meta["maxTime"]),
                                            stats.get("numSamples"), stats.get("numChunks"), stats.get("numSeries"),
                                            tree_size(path)["bytes"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TsdbError(msg=f"block {path}: meta.json could not be read: {exc}") from exc
    return sorted(blocks, key=lambda block: (block["min_time_ms"], block["ulid"]))


# --------------------------------------------------------------------------- the data directory


def block_dirs(data_dir: Path) -> list[Path]:
    """Direct children named by a ULID that hold a meta.json (a block being written has none yet)."""
    return sorted(path for path in data_dir.iterdir()
                  if BLOCK_ULID_RE.match(path.name) and not path.is_symlink() and (path / "meta.json").is_file())


def check_data_dir(data_dir: str) -> Path:
    """``data_dir`` as a Path when it is a Prometheus data directory (``--storage.tsdb.path``).

    It must be a directory holding a ``wal`` directory (every running server has one), a block, or a
    ``snapshots`` directory; anything else is refused, naming the value, before anything is read or deleted.
    """
    path = Path(data_dir)
    try:
        # Inside the try: Path.exists() raises, not answers False, on a name too long (ENAMETOOLONG) or a loop.
        if not path.exists():
            raise TsdbError(msg=f"data_dir {data_dir!r} does not exist")
        if not path.is_dir():
            raise TsdbError(msg=f"data_dir {data_dir!r} is not a directory")
        looks_right = (path / "wal").is_dir() or (path / "snapshots").is_dir() or bool(block_dirs(path))
    except OSError as exc:
        raise TsdbError(msg=f"data_dir {data_dir!r} cannot be read: {exc}") from exc
    if not looks_right:
        raise TsdbError(msg=f"data_dir {data_dir!r} is not a Prometheus data directory (no wal/, no block "
                            "directory with a meta.json, no snapshots/): give Prometheus' --storage.tsdb.path")
    return path


def tree_size(path: Path) -> dict[str, int]:
    """Bytes of the regular files under ``path`` (symlinks are neither followed nor counted).

    ``unshared_bytes`` counts only files with a single link: the files of a snapshot are hard links to the
    blocks, so most of a snapshot costs no disk until Prometheus deletes the block it shares.
    """
    total = unshared = files = 0
    for root, _dirs, names in os.walk(path, followlinks=False):
        for name in names:
            try:
                info = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue  # Prometheus deleted it (compaction) while we walked
            if not stat.S_ISREG(info.st_mode):
                continue
            files += 1
            total += info.st_size
            if info.st_nlink == 1:
                unshared += info.st_size
    return {"bytes": total, "unshared_bytes": unshared, "files": files}


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class SnapshotEntry:
    """A direct child of <data_dir>/snapshots: a snapshot (its name has Prometheus' format) or something else."""

    name: str
    path: Path
    kind: str  # snapshot, foreign (another name or not a directory), symlink
    taken: datetime | None = None
    mtime_ns: int = 0


def snapshot_time(name: str) -> datetime | None:
    """The UTC time in a snapshot's name, or None when the name is not Prometheus' format."""
    match = SNAPSHOT_NAME_RE.match(name)
    if not match:
        return None
    try:
        return datetime.strptime(match["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None  # 20261399T..., digits in the shape of a time that is none


def classify_entry(path: Path) -> SnapshotEntry:
    """What one child of the snapshots directory is, from lstat (a symlink is never followed)."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return SnapshotEntry(path.name, path, "symlink", mtime_ns=info.st_mtime_ns)
    taken = snapshot_time(path.name)
    if taken is None or not stat.S_ISDIR(info.st_mode):
        return SnapshotEntry(path.name, path, "foreign", mtime_ns=info.st_mtime_ns)
    return SnapshotEntry(path.name, path, "snapshot", taken, info.st_mtime_ns)


def list_snapshot_entries(snapshots_dir: Path) -> list[SnapshotEntry]:
    if not snapshots_dir.exists() and not snapshots_dir.is_symlink():
        return []
    return sorted((classify_entry(child) for child in snapshots_dir.iterdir()), key=lambda entry: entry.name)


def snapshot_order(entry: SnapshotEntry) -> tuple:
    """Oldest first: the time in the name, then (two in one second) the directory's mtime, then the name."""
    return (entry.taken or datetime.min.replace(tzinfo=timezone.utc), entry.mtime_ns, entry.name)


@dataclass(frozen=True)
class RetentionPlan:
    keep: list[SnapshotEntry]
    delete: list[SnapshotEntry]
    left: list[SnapshotEntry]  # not snapshots: never candidates, reported


def select_retention(entries: Iterable[SnapshotEntry], keep: int, *, protect: Iterable[str] = (),
                     reserved: int = 0) -> RetentionPlan:
    """Keep the newest ``keep`` snapshots (``reserved`` of those places taken by snapshots not on disk yet, the
    one check mode would take); the names in ``protect`` (the snapshot just taken) are kept whatever their time.
    Only entries of kind ``snapshot`` are candidates; the others are left."""
    if keep < 1:
        raise TsdbError(msg=f"keep_snapshots must be at least 1, got {keep}")
    entries = list(entries)
    protected = set(protect)
    snapshots = sorted((e for e in entries if e.kind == "snapshot"), key=snapshot_order, reverse=True)
    slots = max(keep - reserved, 0)
    kept = [e for i, e in enumerate(snapshots) if i < slots or e.name in protected]
    deleted = [e for e in snapshots if e not in kept]
    return RetentionPlan(keep=kept, delete=deleted, left=[e for e in entries if e.kind != "snapshot"])


def deletable_path(snapshots_dir: Path, name: str) -> Path:
    """The path of snapshot ``name`` when it may be deleted, else TsdbError saying why.

    Only a direct child of the snapshots directory, with Prometheus' snapshot name, a real directory (not a
    symlink), whose resolved path is inside the resolved snapshots directory, reached through no symlink.
    """
    if not SNAPSHOT_NAME_RE.match(name) or snapshot_time(name) is None:
        raise TsdbError(msg=f"{name!r} is not a Prometheus snapshot name (YYYYMMDDTHHMMSSZ-<16 hex digits>)")
    if snapshots_dir.is_symlink():
        raise TsdbError(msg=f"{snapshots_dir} is a symlink: snapshots are never deleted through one")
    path = snapshots_dir / name
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise TsdbError(msg=f"{path} is a symlink: never followed nor deleted")
    if not stat.S_ISDIR(info.st_mode):
        raise TsdbError(msg=f"{path} is not a directory")
    resolved_root = snapshots_dir.resolve(strict=True)
    resolved = path.resolve(strict=True)
    if resolved.parent != resolved_root:
        raise TsdbError(msg=f"{path} resolves to {resolved}, outside {resolved_root}")
    return path


def delete_snapshot(snapshots_dir: Path, name: str) -> None:
    """Delete one snapshot after deletable_path agreed (rmtree removes symlinks inside, never their targets)."""
    path = deletable_path(snapshots_dir, name)
    try:
        shutil.rmtree(path)
    except OSError as exc:
        raise TsdbError(msg=f"{path} could not be deleted: {exc}") from exc


def snapshot_summary(entry: SnapshotEntry) -> dict[str, Any]:
    """What the report and the records say about one child of the snapshots directory."""
    summary: dict[str, Any] = {"name": entry.name, "path": str(entry.path), "kind": entry.kind,
                               "taken": entry.taken.isoformat().replace("+00:00", "Z") if entry.taken else None}
    if entry.kind == "snapshot":
        size = tree_size(entry.path)
        summary.update(bytes=size["bytes"], unshared_bytes=size["unshared_bytes"],
                       blocks=len(block_dirs(entry.path)))
    return summary


# --------------------------------------------------------------------------- the module


OPERATIONS = ("report", "snapshot", "retention")
SNAPSHOT_PATH = "/api/v1/admin/tsdb/snapshot"
FLAGS_PATH = "/api/v1/status/flags"
ADMIN_API_HINT = "start Prometheus with --web.enable-admin-api (the snapshot is an admin API call)"


def validate(params: dict[str, Any]) -> Path:
    """Bad input fails before anything is read or changed, naming the value; returns the data directory."""
    operation, keep = params["operation"], params.get("keep_snapshots")
    if keep is not None and keep < 1:
        raise TsdbError(msg=f"keep_snapshots must be at least 1, got {keep} (retention never deletes every snapshot)")
    if operation == "retention" and keep is None:
        raise TsdbError(msg="operation=retention needs keep_snapshots (how many of the newest snapshots to keep)")
    if operation == "report" and keep is not None:
        raise TsdbError(msg=f"keep_snapshots ({keep}) applies to operation snapshot or retention, not report")
    if operation != "snapshot" and params.get("skip_head"):
        raise TsdbError(msg=f"skip_head applies to operation snapshot, not {operation}")
    params["reuse_within_seconds"] = None
    if params.get("reuse_within") not in (None, ""):
        if operation != "snapshot":
            raise TsdbError(msg=f"reuse_within applies to operation snapshot, not {operation}")
        try:
            params["reuse_within_seconds"] = parse_duration(
                params["reuse_within"], field_name="reuse_within").total_seconds()
        except MaintenanceError as exc:
            raise TsdbError(msg=exc.msg) from exc
    return check_data_dir(params["data_dir"])


def run_prometheus_tsdb(params: dict[str, Any], *, check_mode: bool, diff_mode: bool = False,
                        client_factory: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
    data_dir = validate(params)
    if params["operation"] == "report":
        return report(data_dir, params.get("promtool"))
    if params["operation"] == "retention":
        return retention(data_dir, params["keep_snapshots"], check_mode=check_mode, diff_mode=diff_mode)
    if client_factory is None:
        from .prometheus_conn import PrometheusClient  # only the snapshot talks to the server
        client_factory = PrometheusClient.from_params
    return snapshot(client_factory(params), data_dir, params, check_mode=check_mode, diff_mode=diff_mode)


# --------------------------------------------------------------------------- report


def report(data_dir: Path, promtool: str | None) -> dict[str, Any]:
    """The blocks (promtool, else meta.json), the head's WAL and chunks, the snapshots; read-only."""
    executed: list[str] = []
    tool = find_promtool(promtool)
    blocks = promtool_blocks(tool, data_dir, executed) if tool else meta_blocks(data_dir)
    source = "promtool" if tool else "meta.json"
    snapshots = [snapshot_summary(entry) for entry in list_snapshot_entries(data_dir / "snapshots")]
    totals = report_totals(blocks, snapshots, wal=tree_size(data_dir / "wal")["bytes"],
                           head_chunks=tree_size(data_dir / "chunks_head")["bytes"])
    detail = (f"{totals['blocks']} block(s), {human_bytes(totals['block_bytes'])}, {totals['samples']} sample(s)"
              + (f" from {totals['oldest']} to {totals['newest']}" if blocks else "")
              + f"; WAL {human_bytes(totals['wal_bytes'])}; {totals['snapshots']} snapshot(s), "
              f"{human_bytes(totals['snapshot_bytes'])} ({human_bytes(totals['snapshot_unshared_bytes'])} not shared "
              f"with blocks)" + (f"; {totals['foreign_entries']} other entr(ies) in snapshots/"
                                 if totals["foreign_entries"] else "") + f" (blocks read from {source})")
    record = make_record(f"tsdb {data_dir}", "report", "ok", detail, after={**totals, "source": source})
    return {"changed": False, "msg": detail, "records": [record], "blocks": blocks, "snapshots": snapshots,
            "totals": totals, "source": source, "executed": executed}


def report_totals(blocks: Sequence[dict[str, Any]], snapshots: Sequence[dict[str, Any]], *, wal: int,
                  head_chunks: int) -> dict[str, Any]:
    real = [s for s in snapshots if s["kind"] == "snapshot"]
    return {"blocks": len(blocks), "samples": sum(b["samples"] or 0 for b in blocks),
            "block_bytes": sum(b["bytes"] or 0 for b in blocks),
            "oldest": blocks[0]["min_time"] if blocks else None,
            "newest": iso_from_ms(max(b["max_time_ms"] for b in blocks)) if blocks else None,
            "wal_bytes": wal, "head_chunks_bytes": head_chunks,
            "snapshots": len(real), "snapshot_bytes": sum(s["bytes"] for s in real),
            "snapshot_unshared_bytes": sum(s["unshared_bytes"] for s in real),
            "foreign_entries": len(snapshots) - len(real)}


# --------------------------------------------------------------------------- snapshot


def recent_snapshot(entries: Iterable[SnapshotEntry], within_seconds: float | None,
                    now: datetime | None = None) -> SnapshotEntry | None:
    """The newest snapshot taken less than ``within_seconds`` ago (by the time in its name), else None."""
    if not within_seconds:
        return None
    now = now or datetime.now(timezone.utc)
    young = [e for e in entries if e.kind == "snapshot" and e.taken is not None
             and 0 <= (now - e.taken).total_seconds() < within_seconds]
    return max(young, key=snapshot_order) if young else None


def snapshot(client: Any, data_dir: Path, params: dict[str, Any], *, check_mode: bool,
             diff_mode: bool) -> dict[str, Any]:
    skip_head = bool(params.get("skip_head"))
    request = f"POST {client.url}{SNAPSHOT_PATH}?skip_head={str(skip_head).lower()}"
    before = list_snapshot_entries(data_dir / "snapshots")
    reused = recent_snapshot(before, params.get("reuse_within_seconds"))
    if reused is not None:
        # A rerun of the same week's job (after a later step failed) takes no second snapshot.
        summary = snapshot_summary(reused)
        after = {key: summary[key] for key in ("name", "path", "bytes", "unshared_bytes", "blocks")}
        # ok, not unchanged: the week's snapshot is there, and the report lists it with its size under Validation.
        record = make_record(f"snapshot {reused.name}", "snapshot", "ok",
                             f"taken within reuse_within ({params['reuse_within']}), no new one: "
                             f"{after['blocks']} block(s), {human_bytes(after['bytes'])}", after=after)
        result = {"changed": False, "msg": record["detail"], "records": [record], "executed": [], "snapshot": after}
        if params.get("keep_snapshots"):
            result = _merge(result, retention(data_dir, params["keep_snapshots"], check_mode=check_mode,
                                              diff_mode=False, protect=[reused.name]))
        return _with_diff(result, before, data_dir, diff_mode)
    admin = admin_api_enabled(client)
    if admin is False:
        raise TsdbError(msg=f"the admin API of Prometheus at {client.url} is disabled: {ADMIN_API_HINT}")
    if check_mode:
        blocks = meta_blocks(data_dir)
        planned = make_record(
            "snapshot", "snapshot", "planned",
            f"would take a snapshot ({request}) of {len(blocks)} block(s), {human_bytes(sum(b['bytes'] for b in blocks))}"
            + ("" if skip_head else " and the head") + " (block files are hard links: little new disk)",
            after={"data_dir": str(data_dir), "skip_head": skip_head, "blocks": len(blocks),
                   "block_bytes": sum(b["bytes"] for b in blocks)})
        result = {"changed": True, "msg": planned["detail"], "records": [planned], "executed": []}
        if params.get("keep_snapshots"):
            result = _merge(result, retention(data_dir, params["keep_snapshots"], check_mode=True, diff_mode=False,
                                              reserved=1))
        return _with_diff(result, before, data_dir, diff_mode, planned_name="(new snapshot)")
    started = time.monotonic()
    name = take_snapshot(client, skip_head)
    path = data_dir / "snapshots" / name
    if not path.is_dir():
        raise TsdbError(msg=f"Prometheus at {client.url} took snapshot {name!r}, but {path} does not exist: data_dir "
                            "must be the server's --storage.tsdb.path, and the module must run on its host",
                        executed=[request])
    summary = snapshot_summary(classify_entry(path))
    after = {key: summary[key] for key in ("name", "path", "bytes", "unshared_bytes", "blocks")}
    record = make_record(f"snapshot {name}", "snapshot", "done",
                         f"taken: {after['blocks']} block(s), {human_bytes(after['bytes'])} "
                         f"({human_bytes(after['unshared_bytes'])} not shared with the data directory's blocks)",
                         after={**after, "skip_head": skip_head}, seconds=time.monotonic() - started)
    result = {"changed": True, "msg": record["detail"], "records": [record], "executed": [request], "snapshot": after}
    if params.get("keep_snapshots"):
        result = _merge(result, retention(data_dir, params["keep_snapshots"], check_mode=False, diff_mode=False,
                                          protect=[name]))
    return _with_diff(result, before, data_dir, diff_mode)


def admin_api_enabled(client: Any) -> bool | None:
    """The server's --web.enable-admin-api from /api/v1/status/flags (read-only), None when it does not say."""
    from .prometheus_conn import PrometheusError
    try:
        flags = client.get_json(FLAGS_PATH)
    except PrometheusError as exc:
        if exc.details.get("status") in (404, 405):
            return None  # a proxy that only lets the API through: the snapshot's own answer will tell
        raise
    value = (flags or {}).get("web.enable-admin-api") if isinstance(flags, dict) else None
    return None if value is None else str(value).lower() == "true"


def take_snapshot(client: Any, skip_head: bool) -> str:
    """POST the snapshot; its name, checked against Prometheus' format before anything uses it as a path."""
    from .prometheus_conn import PrometheusError
    try:
        body = client.post(SNAPSHOT_PATH, {"skip_head": str(skip_head).lower()})
    except PrometheusError as exc:
        admin_off = "admin apis disabled" in exc.msg.lower() or exc.details.get("status") in (404, 405)
        raise TsdbError(msg=f"snapshot refused: {exc.msg}" + (f": {ADMIN_API_HINT}" if admin_off else ""),
                        **exc.details) from exc
    return snapshot_name_from_answer(body)


def snapshot_name_from_answer(body: str) -> str:
    """The ``data.name`` of the snapshot API's answer, which must be a snapshot name (it becomes a path)."""
    try:
        answer = json.loads(body)
        name = answer["data"]["name"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TsdbError(msg=f"the snapshot API answered without a snapshot name: {body[:300]!r}") from exc
    if answer.get("status") != "success" or not isinstance(name, str) or snapshot_time(name) is None:
        raise TsdbError(msg=f"the snapshot API answered {body[:300]!r}: {name!r} is not a snapshot name")
    return name


# --------------------------------------------------------------------------- retention


def retention(data_dir: Path, keep: int, *, check_mode: bool, diff_mode: bool, protect: Sequence[str] = (),
              reserved: int = 0) -> dict[str, Any]:
    """Keep the newest ``keep`` snapshots, delete the others; entries that are not snapshots are left (skipped)."""
    snapshots_dir = data_dir / "snapshots"
    if snapshots_dir.is_symlink():
        raise TsdbError(msg=f"{snapshots_dir} is a symlink: retention never deletes through one")
    before = list_snapshot_entries(snapshots_dir)
    plan = select_retention(before, keep, protect=protect, reserved=reserved)
    records = [_left_record(entry) for entry in plan.left]
    records += [make_record(f"snapshot {e.name}", "keep_snapshot", "unchanged",
                            "kept: the snapshot just taken" if e.name in protect else f"kept: among the newest {keep}",
                            after=_sized(e)) for e in plan.keep]
    deleted, failure = [], None
    for entry in plan.delete:
        sized = _sized(entry)
        if check_mode:
            records.append(make_record(f"snapshot {entry.name}", "delete_snapshot", "planned",
                                       f"would delete: older than the newest {keep} ({human_bytes(sized['bytes'])}, "
                                       f"{human_bytes(sized['unshared_bytes'])} of it freed)", before=sized))
            continue
        if failure is not None:
            records.append(make_record(f"snapshot {entry.name}", "delete_snapshot", "skipped",
                                       f"not deleted: retention stopped after {failure} failed", before=sized))
            continue
        started = time.monotonic()
        try:
            delete_snapshot(snapshots_dir, entry.name)
        except FileNotFoundError:
            records.append(make_record(f"snapshot {entry.name}", "delete_snapshot", "unchanged",
                                       "already gone when retention came to it", before=sized))
            continue
        except TsdbError as exc:
            failure = entry.name
            records.append(make_record(f"snapshot {entry.name}", "delete_snapshot", "failed", exc.msg, before=sized,
                                       seconds=time.monotonic() - started))
            continue
        deleted.append(entry.name)
        records.append(make_record(f"snapshot {entry.name}", "delete_snapshot", "done",
                                   f"deleted: older than the newest {keep} ({human_bytes(sized['bytes'])})",
                                   before=sized, seconds=time.monotonic() - started))
    msg = _retention_msg(plan, keep, check_mode, deleted, failure)
    result = {"changed": is_changed(records), "msg": msg, "records": records, "executed": []}
    if failure is not None:
        result.update(failed=True, deleted=deleted,
                      not_deleted=[e.name for e in plan.delete if e.name not in deleted])
    return _with_diff(result, before, data_dir, diff_mode)


def _sized(entry: SnapshotEntry) -> dict[str, Any]:
    summary = snapshot_summary(entry)
    return {key: summary.get(key) for key in ("name", "path", "taken", "bytes", "unshared_bytes", "blocks")}


def _left_record(entry: SnapshotEntry) -> dict[str, Any]:
    why = ("a symlink: never followed nor deleted" if entry.kind == "symlink"
           else "not a Prometheus snapshot (name or type): left alone")
    # Left alone is not a problem of this run: unchanged, not skipped (the report lists skipped records as issues).
    return make_record(f"snapshots/{entry.name}", "keep_snapshot", "unchanged", why,
                       after={"path": str(entry.path), "kind": entry.kind})


def _retention_msg(plan: RetentionPlan, keep: int, check_mode: bool, deleted: list[str], failure: str | None) -> str:
    left = f"; {len(plan.left)} other entr(ies) in snapshots/ left alone" if plan.left else ""
    if failure is not None:
        missed = [e.name for e in plan.delete if e.name not in deleted]
        return (f"retention failed at {failure}: deleted {', '.join(deleted) or 'none'}; not deleted "
                f"{', '.join(missed)}{left}")
    if not plan.delete:
        return f"{len(plan.keep)} snapshot(s), none beyond the newest {keep}{left}"
    verb = "would delete" if check_mode else "deleted"
    return (f"{verb} {len(plan.delete)} snapshot(s) older than the newest {keep} "
            f"({', '.join(e.name for e in plan.delete)}); kept {len(plan.keep)}{left}")


def _merge(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """The snapshot's result followed by its retention's."""
    merged = {**second, **first}
    merged["records"] = first["records"] + second["records"]
    merged["executed"] = first["executed"] + second["executed"]
    merged["changed"] = is_changed(merged["records"])
    merged["msg"] = f"{first['msg']}; {second['msg']}"
    if second.get("failed"):
        merged["failed"] = True
    return merged


def _with_diff(result: dict[str, Any], before: Sequence[SnapshotEntry], data_dir: Path, diff_mode: bool,
               planned_name: str | None = None) -> dict[str, Any]:
    """In diff mode, the snapshot names before and after (in check mode, after as planned)."""
    if not diff_mode:
        return result
    names = sorted(e.name for e in before if e.kind == "snapshot")
    if planned_name is not None or any(r["status"] == "planned" for r in result["records"]):
        gone = {r["name"].split(" ", 1)[1] for r in result["records"] if r["status"] == "planned"
                and r["action"] == "delete_snapshot"}
        after = [n for n in names if n not in gone] + ([planned_name] if planned_name else [])
    else:
        after = sorted(e.name for e in list_snapshot_entries(data_dir / "snapshots") if e.kind == "snapshot")
    result["diff"] = {"before": {"snapshots": names}, "after": {"snapshots": after}}
    return result
