# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""One backup set on disk: its files (and the tools writing them), checksums, manifest, verified mark, retention.

A set is the directory ``<backup_root>/<name>-<YYYYmmddTHHMMSSZ>/``. Its
``manifest.json`` is written last (atomically), so a directory without one is
an unfinished set. ``verified.json`` beside it is written by backup_verify.
Retention only ever looks at directories directly under the root whose name
is a backup id of the asked name, and never removes the root itself. A set
with ``hold.json`` (a safety backup taken before a production restore) is
kept whatever the policy says, until the hold is released.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

from .errors import MaintenanceError
from .files import write_atomically
from .window import format_duration

MANIFEST = "manifest.json"
VERIFIED = "verified.json"
HOLD = "hold.json"
MANIFEST_VERSION = 1
CHUNK = 1024 * 1024
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class BackupError(MaintenanceError):
    """A backup, verification or retention step failed; ``msg`` says which step and what is left."""


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise BackupError(msg=f"backup name {name!r} must be letters, digits, '_', '.' or '-' "
                              "(starting with a letter or digit, at most 100 characters)")
    return name


def backup_id(name: str, started: datetime) -> str:
    return f"{name}-{started.astimezone(timezone.utc).strftime(STAMP_FORMAT)}"


def id_pattern(name: str | None) -> re.Pattern[str]:
    """A set id of ``name``; of any backup name when ``name`` is None (the stamp is group 1 either way)."""
    if name is None:
        return ANY_ID
    return re.compile(rf"^{re.escape(name)}-(\d{{8}}T\d{{6}}Z)$")


# The name part is NAME's pattern; the stamp is the last '-'-separated part, so 'a-b-20260101T000000Z' is name 'a-b'.
ANY_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,99})-(\d{8}T\d{6}Z)$")


def started_of(name: str | None, set_id: str) -> datetime | None:
    match = id_pattern(name).match(set_id)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), STAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:  # digits in the right places, but no such time (month 13)
        return None


# --------------------------------------------------------------------------- files


class HashingWriter:
    """A binary file that keeps the sha256 and size of what goes through it: one pass, no re-read."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.target.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()

    def record(self, name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "bytes": self.size, "sha256": self.digest.hexdigest(), **extra}


def copy_hashing(source: IO[bytes], target: IO[bytes], *, hold_back: int = 0) -> tuple[HashingWriter, bytes]:
    """Copy and hash; the last ``hold_back`` bytes are returned unwritten, for the caller to judge."""
    writer = HashingWriter(target)
    pending = b""
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            return writer, pending
        pending += chunk
        if len(pending) > hold_back:
            cut = len(pending) - hold_back
            writer.write(pending[:cut])
            pending = pending[cut:]


def set_bytes(manifest: dict[str, Any]) -> int:
    """The bytes of a set's files, as its manifest lists them (0 for entries that are not file records)."""
    return sum(int(f.get("bytes") or 0) for f in manifest.get("files") or [] if isinstance(f, dict))


def hash_file(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                return size, digest.hexdigest()
            digest.update(chunk)
            size += len(chunk)


def fsync_file(handle: IO[bytes]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def json_bytes(data: dict[str, Any]) -> bytes:
    """The one serialisation of a manifest or mark, locally and in S3 (so the copies compare byte for byte)."""
    return json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """A reader sees the whole document or none (through the collection's one atomic writer)."""
    write_atomically(path, json_bytes(data))


def read_json(path: Path, *, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(msg=f"{what} {path} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise BackupError(msg=f"{what} {path} cannot be read as JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BackupError(msg=f"{what} {path} is not a JSON object")
    return data


# --------------------------------------------------------------------------- child processes


def stream_child(argv: list[str], env: dict[str, str], target: Path, *, step: str,
                 hold_back: int = 0, judge_tail: Callable[[str, bytes], bytes] | None = None,
                 ) -> tuple[HashingWriter, str]:
    """Run ``argv`` with stdout hashed into ``target``; (writer, stderr). Raises with stderr on failure.

    ``judge_tail(stderr, last bytes)`` decides which of the last ``hold_back`` bytes belong to the file.
    """
    with tempfile.TemporaryFile() as errors, target.open("wb") as handle:
        # stderr to a file, not a pipe: a chatty child can never block on a full pipe we do not read.
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, env=env, stdin=subprocess.DEVNULL)
        try:
            writer, tail_bytes = copy_hashing(proc.stdout, handle, hold_back=hold_back)
            code = proc.wait()
            errors.seek(0)
            stderr = errors.read().decode(errors="replace")
            if code == 0:
                writer.write(judge_tail(stderr, tail_bytes) if judge_tail else tail_bytes)
            fsync_file(handle)
        except OSError as exc:
            proc.kill()
            proc.wait()
            raise BackupError(msg=f"{step}: writing {target} failed: {exc}", step=step) from exc
        finally:
            proc.stdout.close()
    if code != 0:
        raise BackupError(msg=f"{step}: {Path(argv[0]).name} exited with {code}: {tail(stderr)}", step=step)
    return writer, stderr


def tail(text: str, lines: int = 5) -> str:
    """The last non-empty lines of a tool's output, on one line."""
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) or "(no message)"


# --------------------------------------------------------------------------- words for records


# --------------------------------------------------------------------------- local root


def check_root(root: Any, *, create: bool, allow_missing: bool = False) -> Path:
    """The backup root as an absolute, real directory; '/' and relative paths are refused."""
    if not isinstance(root, str) or not root.strip():
        raise BackupError(msg=f"backup_root {root!r} is empty")
    path = Path(root)
    if not path.is_absolute():
        raise BackupError(msg=f"backup_root {root!r} must be an absolute path")
    if path.resolve() == Path("/"):
        raise BackupError(msg=f"backup_root {root!r} is the file system root; give a directory of its own")
    if not path.exists() and create:
        path.mkdir(parents=True, mode=0o700)
    if not path.exists() and allow_missing:
        return path
    if not path.is_dir():
        raise BackupError(msg=f"backup_root {root!r} is not a directory")
    return path.resolve()


def set_dir_in_root(root: Path, set_id: str) -> Path:
    """``root/set_id``, refusing anything that would land elsewhere (a symlink, '..')."""
    candidate = root / set_id
    if candidate.is_symlink() or candidate.resolve().parent != root or candidate.resolve() == root:
        raise BackupError(msg=f"{candidate} is not a directory directly inside the backup root {root}; "
                              "refusing to touch it")
    return candidate


@dataclass
class BackupRef:
    """What retention needs to know of one set, local or in S3."""

    set_id: str
    started: datetime
    complete: bool
    verified: bool
    location: str  # 'local' or 's3'
    where: str  # the directory, or s3://bucket/prefix/
    reasons: list[str] = field(default_factory=list)
    held: bool = False  # hold.json: retention keeps it until the hold is released
    hold_reason: str = ""


def local_sets(root: Path, name: str | None) -> list[BackupRef]:
    """The sets directly under ``root`` of ``name`` (None: of any name), complete or not, oldest first."""
    sets: list[BackupRef] = []
    if not root.is_dir():
        return sets
    for entry in sorted(root.iterdir()):
        started = started_of(name, entry.name)
        if started is None or entry.is_symlink() or not entry.is_dir():
            continue
        hold = read_hold(entry)
        sets.append(BackupRef(entry.name, started, (entry / MANIFEST).is_file(), (entry / VERIFIED).is_file(),
                              "local", str(entry), held=hold is not None,
                              hold_reason=str(hold.get("reason") or "no reason given") if hold else ""))
    return sorted(sets, key=lambda ref: (ref.started, ref.set_id))


def newest_set(root: Path, name: str | None, *, verified: bool = False) -> BackupRef | None:
    """The newest complete set directly under ``root`` (of ``name``; None: of any name), or None.

    ``verified=True``: the newest one backup_verify marked verified (an unverified newer set is passed over).
    """
    candidates = [ref for ref in local_sets(root, name) if ref.complete and (ref.verified or not verified)]
    return candidates[-1] if candidates else None


def find_set(root: Path, set_id: Any) -> Path:
    """The directory of ``set_id`` directly inside ``root``; anything else (a path, '..', a symlink) is refused."""
    if not isinstance(set_id, str) or started_of(None, set_id) is None:
        raise BackupError(msg=f"backup set id {set_id!r} is not a set id (<name>-<YYYYmmddTHHMMSSZ>)")
    directory = set_dir_in_root(root, set_id)
    if not directory.is_dir():
        raise BackupError(msg=f"backup set {set_id!r} does not exist in {root}")
    return directory


# --------------------------------------------------------------------------- holds


def write_hold(directory: Path, hold: dict[str, Any]) -> None:
    """Keep this set out of retention (``hold['reason']`` says why, in the retention record)."""
    write_json_atomically(directory / HOLD, hold)


def read_hold(directory: Path) -> dict[str, Any] | None:
    """The set's hold, or None. A hold file that cannot be read still holds: a set is never lost to a typo."""
    path = directory / HOLD
    if not path.exists():
        return None
    try:
        return read_json(path, what="hold")
    except BackupError as exc:
        return {"reason": f"{HOLD} cannot be read ({exc.msg}); held until it is removed"}


def release_hold(directory: Path) -> bool:
    """Remove the hold; True when there was one."""
    try:
        (directory / HOLD).unlink()
    except FileNotFoundError:
        return False
    return True


def remove_local_set(root: Path, set_id: str) -> None:
    path = set_dir_in_root(root, set_id)
    if path.exists():
        shutil.rmtree(path)


# --------------------------------------------------------------------------- retention


RETENTION_KEYS = ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_within", "incomplete_after")


@dataclass
class RetentionPolicy:
    keep_last: int = 7
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 12
    keep_within: timedelta = timedelta(0)
    incomplete_after: timedelta = timedelta(hours=24)


def plan_retention(sets: Iterable[BackupRef], policy: RetentionPolicy, now: datetime,
                   *, verified_ids: set[str] | None = None) -> tuple[list[BackupRef], list[BackupRef]]:
    """(keep, delete) for the sets of one location, grandfather-father-son, newest first.

    Always kept, whatever the policy says: a held set, the newest verified set
    (verified in any location, by ``verified_ids``), the newest complete set, and
    unfinished sets younger than ``incomplete_after`` (a backup may be running right now).
    """
    verified_ids = verified_ids or set()
    ordered = sorted(sets, key=lambda ref: ref.started, reverse=True)
    complete = [ref for ref in ordered if ref.complete]
    for ref in ordered:
        if ref.held:
            ref.reasons.append(f"held: {ref.hold_reason}")
        if not ref.complete:
            if now - ref.started < policy.incomplete_after:
                ref.reasons.append(f"unfinished, younger than {format_duration(policy.incomplete_after, words=True)}")
            continue
        if policy.keep_within and now - ref.started <= policy.keep_within:
            ref.reasons.append(f"within {format_duration(policy.keep_within, words=True)}")
    for ref in complete[:policy.keep_last]:
        ref.reasons.append(f"last {policy.keep_last}")
    for label, count, period_of in (("daily", policy.keep_daily, lambda d: d.date().isoformat()),
                                    ("weekly", policy.keep_weekly, lambda d: "{0}-W{1:02d}".format(*d.isocalendar())),
                                    ("monthly", policy.keep_monthly, lambda d: d.strftime("%Y-%m"))):
        seen: list[str] = []
        for ref in complete:
            period = period_of(ref.started)
            if period in seen:
                continue
            seen.append(period)
            if len(seen) > count:
                break
            ref.reasons.append(f"{label} {period}")
    newest_verified = next((ref for ref in complete if ref.verified or ref.set_id in verified_ids), None)
    if newest_verified is not None:
        newest_verified.reasons.append("newest verified")
    if complete:
        complete[0].reasons.append("newest complete")
    keep = [ref for ref in ordered if ref.reasons]
    delete = [ref for ref in ordered if not ref.reasons]
    return keep, delete


def deletion_reason(ref: BackupRef, policy: RetentionPolicy) -> str:
    """Why ``plan_retention`` let this set go, in the words of a record's detail."""
    if not ref.complete:
        return f"unfinished (no manifest), older than {format_duration(policy.incomplete_after, words=True)}"
    return "no rule keeps it"


def retention_policy(raw: dict[str, Any] | None, parse_duration: Any) -> RetentionPolicy:
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(RETENTION_KEYS))
    if unknown:
        raise BackupError(msg=f"retention: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(RETENTION_KEYS)}")
    policy = RetentionPolicy()
    for key in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly"):
        if raw.get(key) is not None:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BackupError(msg=f"retention.{key} {value!r} must be a whole number, 0 or more")
            setattr(policy, key, value)
    for key in ("keep_within", "incomplete_after"):
        if raw.get(key) is not None:
            setattr(policy, key, parse_duration(raw[key], allow_zero=True, field_name=f"retention.{key}"))
    return policy
