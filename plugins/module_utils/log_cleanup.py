# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Remove old log files under named roots only: judge every root first, then find, then delete.

The guide's ``find /var/log/vitalstream -name "*.log" -mtime +30 -delete`` deletes whatever a typo
points it at. Here a root is refused, before anything is deleted anywhere, when it (as written or
as its symlinks resolve) is ``/``, a top-level directory, inside a system tree, one of the shared
directories themselves (``/var/log``...), a protected root (the backups) or a directory holding
one; only regular files whose names match are removed, and no symlink is followed.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean

from .errors import MaintenanceError
from .records import human_bytes, make_record

# Nothing below these may be cleaned, whatever the inventory says.
REFUSED_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
                 "/snap", "/sys", "/usr")
# These directories themselves are shared by every service; a directory of one service below them is fine.
REFUSED_ROOTS = ("/var/log", "/var/lib", "/var/backups", "/var/cache", "/var/mail", "/var/opt", "/var/spool",
                 "/var/tmp", "/var/www")
DEFAULT_PATTERNS = ("*.log", "*.log.[0-9]*", "*.gz")
ROOT_KEYS = {"root", "patterns", "age_days", "recurse"}
DAY = 86400


class LogCleanupError(MaintenanceError):
    """Some cleanup roots were refused; nothing was deleted. ``records`` has one per root."""


@dataclass
class CleanupRoot:
    root: str  # as written
    resolved: str  # what it really is (symlinks resolved); empty when it does not exist
    patterns: list[str]
    age_days: int
    recurse: bool
    problem: str | None = None  # why it is refused
    missing: bool = False


def normalise(path: str) -> str:
    return os.path.normpath(path) if path else path


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def refusal(path: str, protected: Iterable[str], recurse: bool) -> str | None:
    """Why ``path`` (absolute, normalised) may not be a cleanup root, or None."""
    if path == "/" or path.count("/") == 1:
        return "a top-level directory"
    for tree in REFUSED_TREES:
        if _inside(path, tree):
            return f"inside the system tree {tree}"
    if path in REFUSED_ROOTS:
        return "a directory shared by every service (name a directory of its own below it)"
    for kept in protected:
        if _inside(path, kept):
            return f"inside the protected root {kept}"
        if recurse and _inside(kept, path):
            return f"holds the protected root {kept} (and recurse is on)"
    return None


def judge_root(spec: Any, position: int, *, default_patterns: list[str], protected: list[str],
               missing_ok: bool) -> CleanupRoot:
    """The root as it will be cleaned, with ``problem`` set when it is refused."""
    where = f"roots[{position}]"
    if not isinstance(spec, Mapping):
        return CleanupRoot(str(spec), "", [], 0, False, problem=f"{where} must be a dict with root and age_days")
    unknown = sorted(set(spec) - ROOT_KEYS)
    root = str(spec.get("root") or "")
    patterns = spec.get("patterns") or list(default_patterns)
    if isinstance(patterns, str):
        patterns = [patterns]
    raw_age = spec.get("age_days")
    # A whole number of days only: 30.5 or true would be silently something else.
    age = int(raw_age) if isinstance(raw_age, int) and not isinstance(raw_age, bool) else (
        int(raw_age) if isinstance(raw_age, str) and raw_age.strip().isdigit() else 0)
    try:
        recurse = boolean(False if spec.get("recurse") is None else spec["recurse"], strict=True)
    except TypeError:
        recurse = None  # refused below: bool("false") is True, and a typo must not turn recursion on
    entry = CleanupRoot(root, "", [str(p) for p in patterns], age, bool(recurse))
    if unknown:
        entry.problem = f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(ROOT_KEYS))}"
    elif not root.strip():
        # Said in words: the detail starts with the root as written, which is nothing here.
        entry.problem = f"{where} has no root (got {spec.get('root')!r}): not an absolute path"
    elif not root.startswith("/"):
        entry.problem = "not an absolute path"
    elif age < 1:
        entry.problem = f"age_days must be a whole number of at least 1 (is {spec.get('age_days')!r})"
    elif recurse is None:
        entry.problem = f"recurse must be true or false (is {spec.get('recurse')!r})"
    elif not entry.patterns or any(not p.strip() for p in entry.patterns):
        entry.problem = "no file name patterns"
    elif any("/" in p for p in entry.patterns):
        entry.problem = "patterns match file names, not paths (no '/')"
    else:
        entry.problem = refusal(normalise(root), protected, entry.recurse)
    if entry.problem is not None:
        return entry
    if not os.path.lexists(root):
        entry.missing = True
        if not missing_ok:
            entry.problem = "does not exist"
        return entry
    resolved = os.path.realpath(root)
    entry.resolved = resolved
    if not os.path.isdir(resolved):
        entry.problem = "not a directory"
        return entry
    problem = refusal(resolved, protected, entry.recurse)
    if problem is not None:
        entry.problem = f"resolves to {resolved}, {problem}"
    return entry


@dataclass
class Sweep:
    """What one pass over a root found and did."""

    found: list[tuple[str, int]] = field(default_factory=list)  # (path, bytes) old enough to go
    removed: list[tuple[str, int]] = field(default_factory=list)
    not_removed: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    other_file_systems: list[str] = field(default_factory=list)  # mount points below the root, left alone


_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def sweep(entry: CleanupRoot, now: float, *, remove: bool) -> Sweep:
    """Walk the root through directory descriptors and (with ``remove``) unlink each old matching file.

    Every directory is opened relative to its parent without following symlinks, and every file is
    unlinked relative to the directory it was found in: a directory swapped for a symlink while the
    walk runs is never followed out of the root (the guide's ``find -delete`` would). Hidden files and
    directories are left alone, and so are other file systems mounted below the root (like find -xdev).
    """
    cutoff = now - entry.age_days * DAY
    done = Sweep()
    if os.path.realpath(entry.root) != entry.resolved:
        done.unreadable.append(f"{entry.root} no longer resolves to {entry.resolved}; not cleaned")
        return done
    try:
        root_fd = os.open(entry.resolved, _DIRECTORY_FLAGS)
    except OSError as exc:
        done.unreadable.append(f"{entry.resolved}: {exc.strerror or exc}")
        return done
    try:
        visit(root_fd, entry.resolved, os.fstat(root_fd).st_dev, entry, cutoff, remove, done)
    finally:
        os.close(root_fd)
    return done


def visit(fd: int, path: str, device: int, entry: CleanupRoot, cutoff: float, remove: bool, done: Sweep) -> None:
    try:
        with os.scandir(fd) as listing:
            names = sorted(item.name for item in listing)
    except OSError as exc:
        done.unreadable.append(f"{path}: {exc.strerror or exc}")
        return
    for name in names:
        if name.startswith("."):
            continue
        full = os.path.join(path, name)
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            continue  # gone meanwhile
        except OSError as exc:
            done.unreadable.append(f"{full}: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(info.st_mode):
            if entry.recurse:
                descend(fd, name, full, info, device, entry, cutoff, remove, done)
        elif stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff \
                and any(fnmatch.fnmatchcase(name, pattern) for pattern in entry.patterns):
            done.found.append((full, info.st_size))
            if remove:
                unlink_in(fd, name, full, info.st_size, done)


def descend(parent: int, name: str, full: str, info: os.stat_result, device: int, entry: CleanupRoot,
            cutoff: float, remove: bool, done: Sweep) -> None:
    if info.st_dev != device:
        done.other_file_systems.append(full)
        return
    try:
        child = os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
    except OSError as exc:  # ELOOP: it became a symlink since it was looked at
        done.unreadable.append(f"{full}: {exc.strerror or exc}")
        return
    try:
        opened = os.fstat(child)
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            done.unreadable.append(f"{full}: replaced while being cleaned; left alone")
            return
        visit(child, full, device, entry, cutoff, remove, done)
    finally:
        os.close(child)


def unlink_in(fd: int, name: str, full: str, size: int, done: Sweep) -> None:
    try:
        # Relative to the directory it was found in: a name can only ever mean a file here.
        os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        done.removed.append((full, 0))  # gone meanwhile: what we wanted
    except OSError as exc:
        done.not_removed.append(f"{full}: {exc.strerror or exc}")
    else:
        done.removed.append((full, size))


def describe(entry: CleanupRoot) -> str:
    what = f"{' '.join(entry.patterns)} older than {entry.age_days} days" + (" (recursive)" if entry.recurse else "")
    if entry.resolved and entry.resolved != normalise(entry.root):
        what += f", root resolves to {entry.resolved}"
    return what


def clean_root(entry: CleanupRoot, *, check_mode: bool, now: float) -> dict[str, Any]:
    if entry.missing:
        return make_record(entry.root, "cleanup", "unchanged", "does not exist, skipped (missing_ok)")
    started = time.monotonic()
    done = sweep(entry, now, remove=not check_mode)
    old_bytes = sum(size for _path, size in done.found)
    before = {"old_files": len(done.found), "old_bytes": old_bytes}
    if not done.found and not done.unreadable:
        detail = f"nothing to remove: {describe(entry)}"
        status, after = "unchanged", before
    elif check_mode:
        status = "failed" if done.unreadable else "planned"
        detail = f"would remove {len(done.found)} file(s), {human_bytes(old_bytes)}: {describe(entry)}"
        after = {"old_files": 0, "old_bytes": 0}
    else:
        freed = sum(size for _path, size in done.removed)
        after = {"old_files": len(done.found) - len(done.removed), "old_bytes": old_bytes - freed}
        status = "failed" if done.not_removed or done.unreadable else "done"
        detail = f"removed {len(done.removed)} file(s), {human_bytes(freed)} freed: {describe(entry)}"
    if done.not_removed:
        detail += f"; could not remove {len(done.not_removed)}: {done.not_removed[0]}"
    if done.unreadable:
        detail += f"; not examined: {', '.join(done.unreadable[:3])}"
    if done.other_file_systems:
        detail += f"; other file systems left alone: {', '.join(done.other_file_systems[:3])}"
    return make_record(entry.root, "cleanup", status, detail, before=before, after=after,
                       seconds=time.monotonic() - started)


def run_log_cleanup(params: dict[str, Any], *, check_mode: bool, diff_mode: bool = False,
                    clock: Any = time.time) -> dict[str, Any]:
    protected = [normalise(os.path.realpath(p)) if os.path.isabs(str(p)) else str(p)
                 for p in params.get("protected_roots") or []]
    relative = [p for p in protected if not os.path.isabs(p)]
    if relative:
        raise LogCleanupError(msg=f"protected_roots must be absolute paths: {', '.join(relative)}")
    entries = [judge_root(spec, position, default_patterns=params["default_patterns"], protected=protected,
                          missing_ok=params["missing_ok"])
               for position, spec in enumerate(params["roots"], start=1)]
    refused = [e for e in entries if e.problem is not None]
    if refused:
        records = [make_record(e.root, "cleanup", "failed", f"{e.root}: {e.problem}: refused")
                   for e in refused]
        raise LogCleanupError(msg="log cleanup refused before any change: "
                                  + "; ".join(r["detail"] for r in records), records=records)
    now = clock()
    records = [clean_root(e, check_mode=check_mode, now=now) for e in entries]
    # A root that failed half-way (a file it could not remove) still changed what it removed.
    touched = [r for r in records if (r["before"] or {}).get("old_files", 0) > (r["after"] or {}).get("old_files", 0)]
    files = sum(r["before"]["old_files"] - r["after"]["old_files"] for r in touched)
    msg = (f"{'would remove' if check_mode else 'removed'} {files} old log file(s) under "
           f"{len(touched)} of {len(records)} root(s)")
    failed = [r for r in records if r["status"] == "failed"]
    result: dict[str, Any] = {"changed": bool(touched), "msg": msg, "records": records}
    if failed:
        result["failed"] = True
        result["msg"] += "; " + "; ".join(f"{r['name']}: {r['detail']}" for r in failed)
    return result
