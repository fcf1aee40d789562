# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Safe cleanup of a Docker engine: old stopped containers, unused images, build cache, named volumes only.

Unlike ``docker system prune --volumes``, a volume goes only when it is named on
an explicit list and no container (running or stopped) mounts it; an image goes
only when no container that stays uses it and no blue/green colour kept for a
rollback names it. Everything is planned from one read of the engine's
``/system/df`` (sizes included), so check mode and a real run decide alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .blue_green import DeployError
from .compose_files import absolute
from .compose_state import StateFile
from .docker_conn import DockerEngineError, DockerException, docker_client_from, engine_name
from .errors import MaintenanceError, WindowError
from .platform_compose import APP_NAME
from .records import human_bytes, make_record
from .window import format_duration, parse_duration

try:
    from docker.errors import APIError, NotFound
except ImportError:  # the module reports the missing SDK; these only keep the except clauses valid
    class APIError(Exception):  # type: ignore[no-redef]
        status_code: int | None = None

    class NotFound(APIError):  # type: ignore[no-redef]
        pass

# Stopped: the states `docker container prune` removes. Running, paused and restarting containers are never touched.
STOPPED_STATES = ("exited", "created", "dead")
DEFAULT_EXCLUDE_LABELS = ("org.streamops.keep",)
BLUE_GREEN_KEYS = ("app", "project_dir", "state_file", "image")
COLOURS = ("blue", "green")
# The history results of a blue/green entry whose version had the traffic on its colour.
LIVE_RESULTS = ("live", "rolled back")
NONE_TAG = "<none>:<none>"
CONFLICT = 409


class DockerCleanupError(MaintenanceError):
    """An option is invalid or a blue/green state cannot be read; nothing was removed. ``msg`` names the value."""


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class LabelMatch:
    """``key`` (present, any value) or ``key=value``."""

    key: str
    value: str | None

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return self.key in labels and (self.value is None or labels[self.key] == self.value)

    def __str__(self) -> str:
        return self.key if self.value is None else f"{self.key}={self.value}"


@dataclass(frozen=True)
class BlueGreenSource:
    """A compose blue/green app whose state file names the images a rollback needs."""

    app: str
    state_file: str
    repository: str | None  # None: protect the versions as tags of any repository


@dataclass(frozen=True)
class CleanupSettings:
    older_than: timedelta
    unused_images: bool
    build_cache: bool
    volumes: tuple[str, ...]
    blue_green: tuple[BlueGreenSource, ...]
    history_versions: int
    include_labels: tuple[LabelMatch, ...]
    exclude_labels: tuple[LabelMatch, ...]


def parse_labels(raw: Any, option: str) -> tuple[LabelMatch, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DockerCleanupError(msg=f"{option} must be a list of labels (key or key=value), got {raw!r}")
    found = []
    for entry in raw:
        if not isinstance(entry, str) or not entry.strip() or entry.strip().startswith("="):
            raise DockerCleanupError(msg=f"{option}: {entry!r} is not a label (key or key=value)")
        key, sep, value = entry.strip().partition("=")
        found.append(LabelMatch(key.strip(), value if sep else None))
    return tuple(found)


def default_state_file(project_dir: str, app: str) -> str:
    # Where blue_green_deploy's compose platform keeps it when compose.state_file is unset (platform_compose.py).
    return os.path.join(project_dir, f".streamops-blue-green-{app}.json")


def parse_blue_green(raw: Any) -> tuple[BlueGreenSource, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DockerCleanupError(msg=f"blue_green must be a list of {{app, project_dir}}, got {raw!r}")
    found = []
    for position, entry in enumerate(raw, start=1):
        where = f"blue_green[{position}]"
        if not isinstance(entry, Mapping):
            raise DockerCleanupError(msg=f"{where} must be a dict with app and project_dir, got {entry!r}")
        unknown = sorted(str(key) for key in set(entry) - set(BLUE_GREEN_KEYS))
        if unknown:
            raise DockerCleanupError(msg=f"{where}: unknown key(s) {', '.join(unknown)}; "
                                         f"allowed: {', '.join(BLUE_GREEN_KEYS)}")
        app = entry.get("app")
        if not isinstance(app, str) or not APP_NAME.match(app):
            raise DockerCleanupError(msg=f"{where}: app {app!r} is not a blue/green app name (lowercase letters, "
                                         "digits, '-' and '_')")
        repository = entry.get("image")
        if repository is not None and (not isinstance(repository, str) or not repository.strip()
                                       or "@" in repository or ":" in repository.rsplit("/", 1)[-1]):
            raise DockerCleanupError(msg=f"{where}: image {repository!r} must be a repository without tag or digest")
        try:
            if entry.get("state_file"):
                state_file = absolute(entry["state_file"], f"{where} state_file")
            else:
                state_file = default_state_file(absolute(entry.get("project_dir"), f"{where} project_dir"), app)
        except DeployError as exc:
            raise DockerCleanupError(msg=exc.msg) from exc
        found.append(BlueGreenSource(app, state_file, repository.strip() if repository else None))
    return tuple(found)


def parse_volumes(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        raise DockerCleanupError(msg=f"volumes must be a list of volume names, got {raw!r}")
    for name in raw:
        # No pattern and no "all": every volume that may go is named, one by one.
        if not name.strip() or any(char in name for char in "*?[]") or name.strip().lower() == "all":
            raise DockerCleanupError(msg=f"volumes: {name!r} is not a volume name (patterns and 'all' are refused)")
    return tuple(dict.fromkeys(name.strip() for name in raw))


def cleanup_settings(params: Mapping[str, Any]) -> CleanupSettings:
    try:
        older_than = parse_duration(params.get("older_than"), allow_zero=True, field_name="older_than")
    except WindowError as exc:
        raise DockerCleanupError(msg=exc.msg) from exc
    history = params.get("history_versions", 3)
    if isinstance(history, bool) or not isinstance(history, int) or history < 0:
        raise DockerCleanupError(msg=f"history_versions {history!r} must be a whole number, 0 or more")
    return CleanupSettings(
        older_than=older_than, unused_images=bool(params.get("unused_images")),
        build_cache=bool(params.get("build_cache")), volumes=parse_volumes(params.get("volumes")),
        blue_green=parse_blue_green(params.get("blue_green")), history_versions=history,
        include_labels=parse_labels(params.get("include_labels"), "include_labels"),
        exclude_labels=parse_labels(params.get("exclude_labels", list(DEFAULT_EXCLUDE_LABELS)), "exclude_labels"))


# --------------------------------------------------------------------------- blue/green protection (pure)


@dataclass(frozen=True)
class Protection:
    """Image ``repository:tag`` (any repository when None; every tag when ``tag`` is None) kept for ``reason``."""

    repository: str | None
    tag: str | None
    reason: str

    def matches(self, repo_tags: Iterable[str]) -> bool:
        for ref in repo_tags:
            repository, tag = ref.rpartition(":")[::2]
            if (self.tag is None or tag == self.tag) and (self.repository is None or repository == self.repository):
                return True
        return False


def version_on(history: list[Mapping[str, Any]], colour: str) -> str | None:
    """The version the history last saw with the traffic on ``colour`` (as target, or as the colour it left)."""
    for entry in reversed(history):
        if entry.get("colour") == colour and entry.get("result") in LIVE_RESULTS:
            return str(entry.get("version") or "") or None
        if entry.get("from_colour") == colour and entry.get("from_version"):
            return str(entry["from_version"])
    return None


def protections_of(source: BlueGreenSource, state: Mapping[str, Any], history_versions: int) -> list[Protection]:
    """The versions a rollback of ``source.app`` may need: kept colours, the live one, the last history entries."""
    history = [entry for entry in state.get("history") or [] if isinstance(entry, Mapping)]
    found: list[Protection] = []

    def keep(version: Any, reason: str) -> None:
        if version not in (None, ""):
            found.append(Protection(source.repository, str(version), reason))

    for colour in sorted(state.get("kept") or {}):
        keep(version_on(history, colour), f"kept colour {colour} of app {source.app}")
    for entry in reversed(history):
        if entry.get("result") in LIVE_RESULTS:
            keep(entry.get("version"), f"live colour {entry.get('colour')} of app {source.app}")
            break
    for entry in history[len(history) - history_versions:] if history_versions else []:
        keep(entry.get("version"), f"deploy history of app {source.app} ({entry.get('at') or 'undated'})")
        keep(entry.get("from_version"), f"deploy history of app {source.app} ({entry.get('at') or 'undated'})")
    return found


def read_protections(sources: Iterable[BlueGreenSource], history_versions: int) -> list[Protection]:
    """Every protection of every app; DockerCleanupError when a state cannot be read (nothing is guessed)."""
    found: list[Protection] = []
    for source in sources:
        if not os.path.isfile(source.state_file):
            # An app not yet deployed through blue_green_deploy (started by hand) has no state: with its repository
            # named, every tag of it stays, which keeps whatever a rollback may need. Without one, or when the
            # project directory itself is missing (a mistyped path), nothing tells what to keep.
            if source.repository and os.path.isdir(os.path.dirname(source.state_file)):
                found.append(Protection(source.repository, None,
                                        f"every tag of {source.repository}: app {source.app} has no deploy history "
                                        f"yet ({os.path.basename(source.state_file)} not found)"))
                continue
            raise DockerCleanupError(msg=f"blue/green state of app {source.app} not found at {source.state_file}: "
                                         "cannot tell which images a rollback needs, so nothing is removed (an app "
                                         "not yet deployed by blue_green_deploy: name its image to keep all its tags)")
        try:
            state = StateFile(source.state_file).read()
        except DeployError as exc:
            raise DockerCleanupError(msg=f"blue/green state of app {source.app} cannot be read: {exc.msg}; "
                                         "nothing is removed") from exc
        found.extend(protections_of(source, state, history_versions))
    return found


# --------------------------------------------------------------------------- the plan (pure, from /system/df)


@dataclass
class Item:
    """One container, image, volume or the build cache: what would go, or why it stays."""

    kind: str  # container, image, volume, build_cache
    ident: str
    name: str
    status: str  # planned, unchanged, skipped, failed
    reason: str
    bytes: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return {"container": "remove_container", "image": "remove_image", "volume": "remove_volume",
                "build_cache": "prune_build_cache"}[self.kind]


@dataclass
class Plan:
    items: list[Item]
    counts: dict[str, int]  # what was left out without a record: running, too young, not matching the labels

    def planned(self, kind: str | None = None) -> list[Item]:
        return [item for item in self.items if item.status == "planned" and kind in (None, item.kind)]


def image_tags(image: Mapping[str, Any]) -> list[str]:
    return [tag for tag in image.get("RepoTags") or [] if tag and tag != NONE_TAG]


def container_name(container: Mapping[str, Any]) -> str:
    names = container.get("Names") or []
    return str(names[0]).lstrip("/") if names else str(container.get("Id", ""))[:12]


def _size(value: Any) -> int:
    # The engine says -1 for a size it did not compute.
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else 0


def old_enough(created: Any, now: datetime, older_than: timedelta) -> bool:
    try:
        return now - datetime.fromtimestamp(int(created), timezone.utc) >= older_than
    except (TypeError, ValueError, OverflowError):
        return False  # an unreadable age is never old enough


def label_filter(labels: Mapping[str, str] | None, settings: CleanupSettings) -> str | None:
    """Why labels keep an item out of the cleanup, or None when they let it in."""
    excluded = next((match for match in settings.exclude_labels if match.matches(labels)), None)
    if excluded is not None:
        return f"label {excluded}"
    missing = [str(match) for match in settings.include_labels if not match.matches(labels)]
    return f"not labelled {', '.join(missing)}" if missing else None


def plan_containers(df: Mapping[str, Any], settings: CleanupSettings, now: datetime,
                    counts: dict[str, int]) -> list[Item]:
    items = []
    for container in df.get("Containers") or []:
        name, state = container_name(container), str(container.get("State") or "")
        if state not in STOPPED_STATES:
            counts["containers_running"] += 1
            continue
        if not all(match.matches(container.get("Labels")) for match in settings.include_labels):
            counts["containers_not_matching"] += 1
            continue
        if not old_enough(container.get("Created"), now, settings.older_than):
            counts["containers_too_young"] += 1
            continue
        info = {"container": name, "state": state, "image": container.get("Image"),
                "image_id": container.get("ImageID"), "bytes": _size(container.get("SizeRw"))}
        excluded = label_filter(container.get("Labels"), settings)
        if excluded is not None:
            items.append(Item("container", str(container["Id"]), name, "unchanged", f"kept: {excluded}",
                              info["bytes"], info))
            continue
        items.append(Item("container", str(container["Id"]), name, "planned", f"{state}, older than "
                          f"{format_duration(settings.older_than)}", info["bytes"], info))
    return items


def plan_images(df: Mapping[str, Any], settings: CleanupSettings, protections: list[Protection],
                removed_containers: set[str], now: datetime, counts: dict[str, int]) -> list[Item]:
    """Dangling (and with ``unused_images`` every unused) image older than the age, unless something needs it."""
    users: dict[str, list[str]] = {}
    for container in df.get("Containers") or []:
        if container.get("Id") not in removed_containers:
            users.setdefault(str(container.get("ImageID") or ""), []).append(container_name(container))
    parents = {str(image.get("ParentId")) for image in df.get("Images") or [] if image.get("ParentId")}
    items = []
    for image in df.get("Images") or []:
        ident, tags = str(image.get("Id") or ""), image_tags(image)
        if tags and not settings.unused_images:
            counts["images_tagged"] += 1
            continue
        if not all(match.matches(image.get("Labels")) for match in settings.include_labels):
            counts["images_not_matching"] += 1
            continue
        if not old_enough(image.get("Created"), now, settings.older_than):
            counts["images_too_young"] += 1
            continue
        size = max(_size(image.get("Size")) - _size(image.get("SharedSize")), 0)
        name = ", ".join(tags) if tags else f"<none> {ident.removeprefix('sha256:')[:12]}"
        info = {"image": name, "id": ident, "tags": tags, "created": image.get("Created"), "bytes": size}
        protection = next((p for p in protections if p.matches(tags)), None)
        excluded = label_filter(image.get("Labels"), settings)
        if ident in users:
            reason = f"used by container {', '.join(sorted(users[ident]))}"
        elif protection is not None:
            reason = protection.reason
        elif ident in parents:
            reason = "parent of another image"
        elif excluded is not None:
            reason = f"kept: {excluded}"
        else:
            items.append(Item("image", ident, name, "planned", "dangling" if not tags else "unused", size, info))
            continue
        items.append(Item("image", ident, name, "unchanged", reason, size, info))
    return items


def plan_volumes(df: Mapping[str, Any], settings: CleanupSettings, counts: dict[str, int]) -> list[Item]:
    """Only the volumes named in ``volumes``; one a container mounts (running or stopped) stays."""
    known = {str(volume.get("Name")): volume for volume in df.get("Volumes") or []}
    mounted: dict[str, list[str]] = {}
    for container in df.get("Containers") or []:
        for mount in container.get("Mounts") or []:
            if mount.get("Type") == "volume" and mount.get("Name"):
                mounted.setdefault(str(mount["Name"]), []).append(container_name(container))
    counts["volumes_not_listed"] = len(set(known) - set(settings.volumes))
    items = []
    for name in settings.volumes:
        volume = known.get(name)
        if volume is None:
            # Not failed: after a run that removed it, the same list must not fail the next run.
            items.append(Item("volume", name, name, "skipped", "no such volume on the engine (already removed, or "
                              "a wrong name on the volumes list)", 0, {"volume": name}))
            continue
        size = _size((volume.get("UsageData") or {}).get("Size"))
        info = {"volume": name, "bytes": size, "driver": volume.get("Driver")}
        if name in mounted:
            items.append(Item("volume", name, name, "skipped",
                              f"in use by container {', '.join(sorted(mounted[name]))}", size, info))
        else:
            items.append(Item("volume", name, name, "planned", "on the volumes list, mounted by no container",
                              size, info))
    return items


def plan_build_cache(df: Mapping[str, Any], settings: CleanupSettings, now: datetime) -> list[Item]:
    if not settings.build_cache:
        return []
    old = []
    for entry in df.get("BuildCache") or []:
        last_used = entry.get("LastUsedAt") or entry.get("CreatedAt")
        stamp = _parse_time(last_used)
        if not entry.get("InUse") and stamp is not None and now - stamp >= settings.older_than:
            old.append(entry)
    size = sum(_size(entry.get("Size")) for entry in old)
    info = {"entries": len(old), "bytes": size, "older_than_seconds": int(settings.older_than.total_seconds())}
    if not old:
        return [Item("build_cache", "build cache", "build cache", "unchanged",
                     f"no unused entry older than {format_duration(settings.older_than)}", 0, info)]
    return [Item("build_cache", "build cache", "build cache", "planned",
                 f"{len(old)} unused entries older than {format_duration(settings.older_than)}", size, info)]


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    # The engine writes nanoseconds; fromisoformat takes at most microseconds.
    head, dot, rest = text.replace("Z", "+00:00").partition(".")
    if dot:
        digits = "".join(char for char in rest if char.isdigit())
        rest = digits[:6] + rest[len(digits):]
        head = f"{head}.{rest}"
    try:
        stamp = datetime.fromisoformat(head)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def plan_cleanup(df: Mapping[str, Any], settings: CleanupSettings, protections: list[Protection],
                 now: datetime) -> Plan:
    counts = {key: 0 for key in ("containers_running", "containers_not_matching", "containers_too_young",
                                 "images_tagged", "images_not_matching", "images_too_young", "volumes_not_listed")}
    containers = plan_containers(df, settings, now, counts)
    # An image used only by containers removed in this run is free once they are gone.
    removed = {item.ident for item in containers if item.status == "planned"}
    images = plan_images(df, settings, protections, removed, now, counts)
    return Plan(containers + images + plan_volumes(df, settings, counts) + plan_build_cache(df, settings, now),
                counts)


def df_figures(df: Mapping[str, Any]) -> dict[str, int]:
    """``docker system df`` in bytes: containers' writable layers, image layers, volumes, build cache."""
    figures = {
        "containers_bytes": sum(_size(c.get("SizeRw")) for c in df.get("Containers") or []),
        "images_bytes": _size(df.get("LayersSize")),
        "volumes_bytes": sum(_size((v.get("UsageData") or {}).get("Size")) for v in df.get("Volumes") or []),
        # Shared cache entries are counted once by the engine's own df, under the image layers.
        "build_cache_bytes": sum(_size(b.get("Size")) for b in df.get("BuildCache") or [] if not b.get("Shared")),
    }
    figures["total_bytes"] = sum(figures.values())
    return figures


# --------------------------------------------------------------------------- applying the plan


def _api_error_text(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip()


def _status_code(exc: Exception) -> int | None:
    return getattr(exc, "status_code", None)


def remove_image(api: Any, item: Item) -> None:
    """Remove the image and every tag of it, or nothing: a tag taken off before a refusal is put back."""
    tags = item.info["tags"]
    if len(tags) <= 1:
        api.remove_image(tags[0] if tags else item.ident, force=False, noprune=False)
        return
    # Untagging never checks for containers; only the last tag's removal would, after the others are gone.
    if api.containers(all=True, filters={"ancestor": item.ident}, quiet=True):
        raise APIError(f"conflict: a container created meanwhile uses image {item.name}",
                       explanation=f"a container created meanwhile uses image {item.name}")
    untagged = []
    try:
        for tag in tags[:-1]:
            api.remove_image(tag, force=False, noprune=True)
            untagged.append(tag)
        api.remove_image(tags[-1], force=False, noprune=False)
    except (APIError, DockerException):
        for tag in untagged:
            repository, name = tag.rpartition(":")[::2]
            api.tag(item.ident, repository, name)
        raise


def apply_item(client: Any, item: Item) -> tuple[str, str, int | None]:
    """(status, detail, bytes freed when the engine said) of removing one planned item."""
    api = client.api
    try:
        if item.kind == "container":
            # v=False: a container's anonymous volumes stay; no volume goes unless it is on the list.
            api.remove_container(item.ident, v=False, force=False)
        elif item.kind == "image":
            remove_image(api, item)
        elif item.kind == "volume":
            api.remove_volume(item.name, force=False)
        else:
            until = f"{int(item.info['older_than_seconds'])}s"
            result = api.prune_builds(filters={"until": until}, all=True) or {}
            freed = _size(result.get("SpaceReclaimed"))
            deleted = len(result.get("CachesDeleted") or [])
            return "done", f"{deleted} build cache entries pruned, {human_bytes(freed)} freed", freed
    except NotFound:
        return "unchanged", "already gone (removed meanwhile)", 0
    except (APIError, DockerException) as exc:
        if _status_code(exc) == CONFLICT:
            return "failed", f"not removed, in use: {_api_error_text(exc)}", None
        return "failed", f"not removed: {_api_error_text(exc)}", None
    return "done", f"removed ({item.reason}), {human_bytes(item.bytes)}", item.bytes


def apply_plan(client: Any, plan: Plan) -> list[dict[str, Any]]:
    """Remove every planned item, containers first; one failure does not stop the rest."""
    records = []
    kept_containers: dict[str, list[str]] = {}  # image ID -> containers that were to go and stayed
    for item in plan.items:
        if item.status != "planned":
            records.append(item_record(item, check_mode=False))
            continue
        if item.kind == "image":
            blocked = sorted(kept_containers.get(item.ident, []))
            if blocked:
                records.append(item_record(item, check_mode=False, status="skipped",
                                           detail=f"not removed: container {', '.join(blocked)} was not removed"))
                continue
        began = time.monotonic()
        status, detail, freed = apply_item(client, item)
        if item.kind == "container" and status == "failed":
            kept_containers.setdefault(str(item.info.get("image_id")), []).append(item.name)
        records.append(item_record(item, check_mode=False, status=status, detail=detail, freed=freed,
                                   seconds=time.monotonic() - began))
    return records


# --------------------------------------------------------------------------- records and the result


def item_record(item: Item, *, check_mode: bool, status: str | None = None, detail: str | None = None,
                freed: int | None = None, seconds: float | None = None) -> dict[str, Any]:
    prefix = {"container": "container ", "image": "image ", "volume": "volume ", "build_cache": ""}[item.kind]
    status = status or item.status
    if detail is None:
        if item.status == "planned":
            detail = f"would remove ({item.reason}), {human_bytes(item.bytes)}" if check_mode else item.reason
        else:
            detail = item.reason
    after = dict(item.info)
    if status == "done":
        after["freed_bytes"] = freed
    return make_record(prefix + item.name, item.action, status, detail, before=None, after=after, seconds=seconds)


def summary_record(engine: str, plan: Plan, before: dict[str, int], after: dict[str, int] | None,
                   records: list[dict[str, Any]], check_mode: bool, seconds: float | None) -> dict[str, Any]:
    removed = [r for r in records if r["status"] in ("done", "planned") and r["action"] != "cleanup"]
    failed = [r for r in records if r["status"] == "failed"]
    kept = [r for r in records if r["status"] in ("unchanged", "skipped")]
    planned_bytes = sum(item.bytes for item in plan.planned())
    counts = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in plan.counts.items() if value)
    if check_mode:
        figures = dict(before)
        for kind, key in (("container", "containers_bytes"), ("image", "images_bytes"), ("volume", "volumes_bytes"),
                          ("build_cache", "build_cache_bytes")):
            figures[key] = max(figures[key] - sum(item.bytes for item in plan.planned(kind)), 0)
        figures["total_bytes"] = max(before["total_bytes"] - planned_bytes, 0)
        figures["freed_bytes"] = planned_bytes
        detail = f"would remove {len(removed)} item(s), about {human_bytes(planned_bytes)}"
        status = "planned" if removed else "unchanged"
    else:
        figures = dict(after or {})
        figures["freed_bytes"] = before["total_bytes"] - figures.get("total_bytes", before["total_bytes"])
        detail = (f"removed {len(removed)} item(s); docker system df {human_bytes(before['total_bytes'])} -> "
                  f"{human_bytes(figures.get('total_bytes'))}, {human_bytes(figures['freed_bytes'])} freed")
        status = "done" if removed else "unchanged"
    detail += f"; kept {len(kept)}" + (f"; failed {len(failed)}" if failed else "") + (f"; left out: {counts}" if counts else "")
    figures.update({"left_out": dict(plan.counts)})
    return make_record(f"docker {engine}", "cleanup", status, detail, before=before, after=figures, seconds=seconds)


def result_message(records: list[dict[str, Any]], check_mode: bool, engine: str) -> str:
    items = [r for r in records if r["action"] != "cleanup"]
    gone = [r["name"] for r in items if r["status"] in ("done", "planned")]
    failed = [f"{r['name']} ({r['detail']})" for r in items if r["status"] == "failed"]
    summary = next(r for r in records if r["action"] == "cleanup")
    freed = human_bytes((summary["after"] or {}).get("freed_bytes"))
    verb = "would remove" if check_mode else "removed"
    said = f"{verb} {len(gone)} item(s) on {engine} ({freed})" + (f": {', '.join(gone)}" if gone else "")
    if failed:
        said += f"; NOT removed: {'; '.join(failed)}"
    return said


def read_df(client: Any, engine: str) -> dict[str, Any]:
    try:
        return client.df()
    except (DockerException, OSError) as exc:
        raise DockerEngineError(msg=f"reading docker system df of the engine at {engine} failed: {exc}") from exc


def run_docker_cleanup(params: dict[str, Any], *, check_mode: bool = False,
                       diff_mode: bool = False) -> dict[str, Any]:
    settings = cleanup_settings(params)  # bad input fails before the engine is asked anything
    protections = read_protections(settings.blue_green, settings.history_versions)  # an unreadable state: nothing goes
    engine = engine_name(params.get("docker_host"))
    client = docker_client_from(params.get("docker_host"), params.get("timeout", 60))
    began = time.monotonic()
    try:
        df = read_df(client, engine)
        plan = plan_cleanup(df, settings, protections, datetime.now(timezone.utc))
        before = df_figures(df)
        if check_mode:
            records = [item_record(item, check_mode=True) for item in plan.items]
            after = None
        else:
            records = apply_plan(client, plan)
            after = df_figures(read_df(client, engine))
    finally:
        client.close()
    records.append(summary_record(engine, plan, before, after, records, check_mode, time.monotonic() - began))
    result: dict[str, Any] = {"changed": any(r["status"] in ("done", "planned") for r in records),
                              "msg": result_message(records, check_mode, engine), "records": records}
    if diff_mode:
        result["diff"] = {"before": "".join(f"{r['name']}\n" for r in records if r["status"] in ("done", "planned")
                                            and r["action"] != "cleanup"), "after": ""}
    if any(r["status"] == "failed" for r in records):
        result["failed"] = True
    return result
