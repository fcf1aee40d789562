# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Disk use per file system as ``df -P`` reports it, and memory use, judged against limits. Records out."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

from .errors import MaintenanceError
from .records import make_record

# Pseudo and image file systems: full by design or not storage at all (df -x of the guide's check).
DEFAULT_EXCLUDED_TYPES = ("tmpfs", "devtmpfs", "squashfs", "overlay", "nsfs")


class HostUsageError(MaintenanceError):
    """A limit is out of range or /proc cannot be read; ``msg`` names it."""


def mounts(text: str, excluded_types: Iterable[str], *, once_per_device: bool = True) -> list[tuple[str, str]]:
    """(device, mount point) of each block-device file system in /proc/self/mounts; like df, a device mounted
    twice (a bind mount) is reported once, at its first mount point (every time with ``once_per_device`` false)."""
    excluded = set(excluded_types)
    found, seen = [], set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        device, point, kind = fields[0], fields[1], fields[2]
        # /proc/mounts escapes spaces and tabs in paths as octal.
        point = point.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        if not device.startswith("/") or kind in excluded or (once_per_device and device in seen):
            continue
        seen.add(device)
        found.append((device, point))
    return found


def used_percent(used: int, available: int) -> int:
    """df's Use%: used over what users can have (used + available), rounded up."""
    total = used + available
    return math.ceil(used * 100 / total) if total else 0


def disk_record(point: str, max_percent: float) -> dict[str, Any]:
    try:
        stats = os.statvfs(point)
    except OSError as exc:
        return make_record(f"disk {point}", "disk", "unknown", f"cannot read its usage: {exc}")
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    available = stats.f_bavail * stats.f_frsize
    percent = used_percent(used, available)
    return make_record(f"disk {point}", "disk", "breach" if percent > max_percent else "ok",
                       f"{percent}% used (limit {max_percent:g}%)",
                       after={"used_percent": percent, "used_kb": used // 1024, "available_kb": available // 1024})


def memory_record(meminfo: str, max_percent: float) -> dict[str, Any]:
    """Used = MemTotal - MemAvailable: what the kernel could not hand out without swapping."""
    values = {}
    for line in meminfo.splitlines():
        key, _colon, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0])
    if "MemTotal" not in values or "MemAvailable" not in values or not values["MemTotal"]:
        return make_record("memory", "memory", "unknown", "MemTotal or MemAvailable missing from /proc/meminfo")
    total_mb, available_mb = values["MemTotal"] // 1024, values["MemAvailable"] // 1024
    used_mb = total_mb - available_mb
    percent = round(used_mb * 100 / total_mb, 1)
    return make_record("memory", "memory", "breach" if percent > max_percent else "ok",
                       f"{used_mb}/{total_mb} MB ({percent:g}%, limit {max_percent:g}%)",
                       after={"used_mb": used_mb, "total_mb": total_mb, "used_percent": percent})


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.read()
    except OSError as exc:
        raise HostUsageError(msg=f"cannot read {path}: {exc}") from exc


def run_host_usage(params: dict[str, Any], *, check_mode: bool = False, diff_mode: bool = False) -> dict[str, Any]:
    for name in ("disk_max_percent", "memory_max_percent"):
        if not 0 < params[name] <= 100:
            raise HostUsageError(msg=f"{name} must be above 0 and at most 100, got {params[name]}")
    text = read_text("/proc/self/mounts")
    points = [point for _device, point in mounts(text, params["exclude_types"])]
    if params.get("mounts"):
        wanted = [os.path.normpath(point) for point in params["mounts"]]
        # A bind mount is mounted too, though the default listing names its device once.
        mounted = {point for _device, point in mounts(text, params["exclude_types"], once_per_device=False)}
        missing = sorted(set(wanted) - mounted)
        if missing:
            raise HostUsageError(msg=f"mounts: {', '.join(missing)} is not a mounted file system of this host "
                                     f"(mounted: {', '.join(points)})")
        points = wanted
    records = [disk_record(point, params["disk_max_percent"]) for point in points]
    records.append(memory_record(read_text("/proc/meminfo"), params["memory_max_percent"]))
    breached = [r["name"] for r in records if r["status"] != "ok"]
    msg = (f"{len(points)} file system(s) and memory: "
           + (f"not within the limits: {', '.join(breached)}" if breached else "all within the limits"))
    return {"changed": False, "msg": msg, "records": records}
