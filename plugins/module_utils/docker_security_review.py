# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The compose estate's security review: what each container of the engine runs with, judged. Read-only.

One record per container (action ``container_security``): ``breach`` listing every
failed check, ``ok`` when none failed or every finding is on the allow list, ``unknown``
when a check could not decide (the image could not be read). Findings are read from the
engine's inspect data, never from compose files: what runs is what counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .docker_conn import DockerEngineError, DockerException, docker_client_from, engine_name
from .errors import MaintenanceError
from .records import make_record
from .timestamps import parse_iso8601

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ACTION = "container_security"
# In the order a record lists them.
CHECKS = ("root", "privileged", "capabilities", "published_ports", "host_network", "image_age")
ALLOWED_KEYS = ("container", "checks", "reason")
# HostIp values that mean every interface. Empty is the engine's default address: all interfaces unless
# dockerd runs with --ip, which the API does not tell, so it counts as all.
ALL_INTERFACES = ("", "0.0.0.0", "::")
SECONDS_PER_DAY = 86400


class DockerReviewError(MaintenanceError):
    """An option of the review is invalid; ``msg`` names the value."""


@dataclass(frozen=True)
class Allowance:
    """Findings of ``checks`` on a container (its name or compose service) accepted, for ``reason``."""

    container: str
    checks: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class ReviewSettings:
    project: str | None
    include_stopped: bool
    image_max_age_days: int
    allowed: tuple[Allowance, ...]


# --------------------------------------------------------------------------- input


def parse_allowed(raw: Any) -> tuple[Allowance, ...]:
    """The allow list; DockerReviewError naming the entry and the bad value."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DockerReviewError(msg=f"allowed must be a list of {{container, checks, reason}}, got {raw!r}")
    found = []
    for position, entry in enumerate(raw, start=1):
        where = f"allowed[{position}]"
        if not isinstance(entry, Mapping):
            raise DockerReviewError(msg=f"{where} must be a dict with container, checks and reason, got {entry!r}")
        unknown = sorted(str(key) for key in set(entry) - set(ALLOWED_KEYS))
        if unknown:
            raise DockerReviewError(msg=f"{where}: unknown key(s) {', '.join(unknown)}; "
                                        f"allowed: {', '.join(ALLOWED_KEYS)}")
        container, checks, reason = entry.get("container"), entry.get("checks"), entry.get("reason")
        if not isinstance(container, str) or not container.strip():
            raise DockerReviewError(msg=f"{where}: container {container!r} must be a container name or compose service")
        if isinstance(checks, str):
            checks = [checks]
        if not isinstance(checks, list) or not checks:
            raise DockerReviewError(msg=f"{where}: checks {checks!r} must be a non-empty list of {', '.join(CHECKS)}")
        for check in checks:
            if check not in CHECKS:
                raise DockerReviewError(msg=f"{where}: unknown check {check!r}; known checks: {', '.join(CHECKS)}")
        # An exception nobody can explain is not reviewed; the report prints the reason.
        if not isinstance(reason, str) or not reason.strip():
            raise DockerReviewError(msg=f"{where}: reason {reason!r} must say why container "
                                        f"{container.strip()} may have {', '.join(checks)}")
        found.append(Allowance(container.strip(), tuple(dict.fromkeys(checks)), reason.strip()))
    return tuple(found)


def review_settings(params: Mapping[str, Any]) -> ReviewSettings:
    age = params.get("image_max_age_days")
    if isinstance(age, bool) or not isinstance(age, int) or age < 0:
        raise DockerReviewError(msg=f"image_max_age_days {age!r} must be a whole number of days, 0 or more")
    project = params.get("project")
    if project is not None and not isinstance(project, str):
        raise DockerReviewError(msg=f"project {project!r} must be a compose project name")
    return ReviewSettings(project=(project or "").strip() or None,
                          include_stopped=bool(params.get("include_stopped", True)),
                          image_max_age_days=age, allowed=parse_allowed(params.get("allowed")))


# --------------------------------------------------------------------------- the checks (pure)


def runs_as_root(user: str | None) -> bool:
    """Config.User as the engine merged it from image and container: empty, ``0``, ``root``, ``0:<group>``..."""
    name = (user or "").strip().split(":", 1)[0]
    return name in ("", "root") or (name.isdigit() and int(name) == 0)


def added_capabilities(attrs: Mapping[str, Any]) -> list[str]:
    """HostConfig.CapAdd without the optional ``CAP_`` prefix, so ``NET_ADMIN`` and ``CAP_NET_ADMIN`` are one."""
    caps = (attrs.get("HostConfig") or {}).get("CapAdd") or []
    return sorted({str(cap).upper().removeprefix("CAP_") for cap in caps})


def _binding_text(host_ip: str, host_port: str, container_port: str) -> str:
    address = "*" if host_ip == "" else f"[{host_ip}]" if ":" in host_ip else host_ip
    return f"{address}:{host_port or '(any)'}->{container_port}"


def ports_on_all_interfaces(attrs: Mapping[str, Any]) -> list[str]:
    """Published ports bound to every interface, as ``address:host port->container port/proto``.

    HostConfig.PortBindings is what the container asks for (all a stopped container has; an empty address there
    means the engine's default, all interfaces unless dockerd runs with --ip); NetworkSettings.Ports is what a
    running one got, the addresses the engine really bound, so a container that got ports is judged by those alone.
    """
    got = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    sources = (got,) if any(got.values()) else ((attrs.get("HostConfig") or {}).get("PortBindings"),)
    found: set[str] = set()
    for ports in sources:
        for container_port, bindings in (ports or {}).items():
            for binding in bindings or []:  # None: exposed but not published
                host_ip = str(binding.get("HostIp") or "")
                if host_ip in ALL_INTERFACES:
                    found.add(_binding_text(host_ip, str(binding.get("HostPort") or ""), container_port))
    return sorted(found)


def parse_created(text: Any) -> datetime | None:
    """The engine's RFC 3339 time (nanoseconds, ``Z``) as an aware datetime; None when unreadable or without a zone."""
    stamp = parse_iso8601(str(text or "").strip())
    return stamp if stamp is not None and stamp.tzinfo is not None else None


def image_age_days(created: datetime, now: datetime) -> float:
    return (now - created).total_seconds() / SECONDS_PER_DAY


def findings_of(attrs: Mapping[str, Any], image_created: datetime | None, max_age_days: int,
                now: datetime) -> list[dict[str, Any]]:
    """Every failed check of one container, ``{check, value}``, in CHECKS order (the allow list is applied later)."""
    config, host = attrs.get("Config") or {}, attrs.get("HostConfig") or {}
    found: list[dict[str, Any]] = []
    user = str(config.get("User") or "")
    if runs_as_root(user):
        found.append({"check": "root", "value": user or "(unset: root)"})
    if host.get("Privileged"):
        found.append({"check": "privileged", "value": True})
    caps = added_capabilities(attrs)
    if caps:
        found.append({"check": "capabilities", "value": caps})
    ports = ports_on_all_interfaces(attrs)
    if ports:
        found.append({"check": "published_ports", "value": ports})
    # The host's network: whatever it listens on is on the host's interfaces, and the engine cannot say which.
    if host.get("NetworkMode") == "host":
        found.append({"check": "host_network", "value": "host"})
    if image_created is not None and image_age_days(image_created, now) > max_age_days:
        found.append({"check": "image_age", "value": int(image_age_days(image_created, now))})
    return found


def allowance_for(check: str, names: Iterable[str], allowed: Iterable[Allowance]) -> Allowance | None:
    wanted = {name for name in names if name}
    return next((entry for entry in allowed if check in entry.checks and entry.container in wanted), None)


def describe(finding: Mapping[str, Any], max_age_days: int) -> str:
    check, value = finding["check"], finding["value"]
    if check == "root":
        return f"runs as root (user {value})"
    if check == "privileged":
        return "privileged"
    if check == "capabilities":
        return f"added capabilities {', '.join(value)}"
    if check == "published_ports":
        return f"ports published on all interfaces {', '.join(value)}"
    if check == "host_network":
        return "shares the host's network (what it listens on is on the host's interfaces)"
    return f"image built {value} days ago (limit {max_age_days})"


def remedy_of(finding: Mapping[str, Any], image: str, max_age_days: int) -> str:
    """One sentence: what the operator does about one finding."""
    check, value = finding["check"], finding["value"]
    if check == "root":
        return "Run it as a non-root user (compose `user:` or a USER line in the image)."
    if check == "privileged":
        return "Remove `privileged: true` and add only the capabilities it needs."
    if check == "capabilities":
        return f"Drop the added capabilities {', '.join(value)}, or allow-list them with the reason they are needed."
    if check == "published_ports":
        return "Publish the ports on 127.0.0.1 or one named interface (`127.0.0.1:8080:80`), not on all interfaces."
    if check == "host_network":
        return ("Give it a bridge network and publish only the ports it needs, or allow host_network with the reason "
                "(for example: it binds 127.0.0.1 only).")
    return f"Rebuild or update the image {image} (built {value} days ago, limit {max_age_days})."


def container_record(attrs: Mapping[str, Any], image_created: datetime | None, image_error: str | None,
                     settings: ReviewSettings, now: datetime) -> dict[str, Any]:
    """The one record of a container: ``breach`` (every failed check), ``ok``, or ``unknown`` (image unread)."""
    config = attrs.get("Config") or {}
    labels = config.get("Labels") or {}
    name = str(attrs.get("Name") or attrs.get("Id", "")[:12]).lstrip("/")
    service = labels.get(SERVICE_LABEL)
    image = str(config.get("Image") or attrs.get("Image") or "")
    findings, accepted = [], []
    for finding in findings_of(attrs, image_created, settings.image_max_age_days, now):
        allowance = allowance_for(finding["check"], (name, service), settings.allowed)
        if allowance is None:
            findings.append(finding)
        else:
            accepted.append({**finding, "reason": allowance.reason})
    # An image that could not be read leaves its age undecided, unless its age does not matter here.
    undecided = image_created is None and allowance_for("image_age", (name, service), settings.allowed) is None
    after: dict[str, Any] = {
        "container": name, "service": service, "project": labels.get(PROJECT_LABEL),
        "state": (attrs.get("State") or {}).get("Status"), "user": str(config.get("User") or ""),
        "image": image, "image_created": image_created.isoformat() if image_created else None,
        "image_age_days": int(image_age_days(image_created, now)) if image_created else None,
        "findings": findings, "allowed": accepted,
    }
    parts = [describe(finding, settings.image_max_age_days) for finding in findings]
    if undecided:
        parts.append(f"image age unknown: {image_error or 'the image has no creation time'}")
    if accepted:
        parts.append("allowed: " + "; ".join(f"{describe(item, settings.image_max_age_days)} ({item['reason']})"
                                             for item in accepted))
    prefix = f"service {service}: " if service else ""
    if findings:
        remedies = [remedy_of(finding, image, settings.image_max_age_days) for finding in findings]
        if undecided:
            remedies.append(unknown_image_remedy(image))
        after["remedy"] = " ".join(remedies)
        return make_record(f"container {name}", ACTION, "breach", prefix + "; ".join(parts), after=after)
    if undecided:
        after["remedy"] = unknown_image_remedy(image)
        return make_record(f"container {name}", ACTION, "unknown", prefix + "; ".join(parts), after=after)
    detail = "; ".join(parts) if parts else (
        f"no finding (user {after['user'] or 'root'}, image {after['image_age_days']} days old)")
    return make_record(f"container {name}", ACTION, "ok", prefix + detail, after=after)


def unknown_image_remedy(image: str) -> str:
    return f"Check that the image {image} still exists on the engine (rebuild or pull it), then review again."


def missing_project_record(project: str, engine: str) -> dict[str, Any]:
    """A named project with no container: a typo or a project that is not deployed here, never a clean review."""
    return make_record(f"project {project}", ACTION, "unknown",
                       f"no container has label {PROJECT_LABEL}={project} on {engine}",
                       after={"project": project, "engine": engine,
                              "remedy": "Check the project name, and that the project is deployed on this engine."})


# --------------------------------------------------------------------------- reading the engine


def list_containers(client: Any, settings: ReviewSettings, engine: str) -> list[Mapping[str, Any]]:
    """Inspect data of the containers under review (every state when ``include_stopped``)."""
    filters = {"label": f"{PROJECT_LABEL}={settings.project}"} if settings.project else {}
    try:
        # list() inspects each container; ignore_removed: one removed meanwhile is not an error.
        containers = client.containers.list(all=settings.include_stopped, filters=filters, ignore_removed=True)
    except (DockerException, OSError) as exc:
        raise DockerEngineError(msg=f"listing the containers on the Docker engine at {engine} failed: {exc}") from exc
    return [container.attrs for container in containers]


class ImageDates:
    """Creation time of each image, read once per image ID."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.seen: dict[str, tuple[datetime | None, str | None]] = {}

    def created(self, image_id: str) -> tuple[datetime | None, str | None]:
        """(creation time, None) or (None, why it could not be read)."""
        if image_id not in self.seen:
            self.seen[image_id] = self._read(image_id)
        return self.seen[image_id]

    def _read(self, image_id: str) -> tuple[datetime | None, str | None]:
        if not image_id:
            return None, "the container names no image"
        try:
            attrs = self.client.images.get(image_id).attrs
        except (DockerException, OSError) as exc:
            return None, f"image {image_id[:19]} could not be read: {exc}"
        created = parse_created(attrs.get("Created"))
        if created is None:
            return None, f"image {image_id[:19]} has creation time {attrs.get('Created')!r}"
        return created, None


def review(client: Any, settings: ReviewSettings, engine: str, now: datetime) -> list[dict[str, Any]]:
    images = ImageDates(client)
    records = []
    for attrs in list_containers(client, settings, engine):
        created, error = images.created(str(attrs.get("Image") or ""))
        records.append(container_record(attrs, created, error, settings, now))
    records.sort(key=lambda record: record["name"])
    if settings.project and not records:
        records.append(missing_project_record(settings.project, engine))
    return records


def summary(records: list[dict[str, Any]], settings: ReviewSettings, engine: str) -> str:
    scope = f"compose project {settings.project}" if settings.project else f"the Docker engine at {engine}"
    containers = [record for record in records if record["name"].startswith("container ")]
    bad = [record["name"] for record in records if record["status"] != "ok"]
    said = f"{len(containers)} container(s) of {scope} reviewed"
    return said + (f"; not clean: {', '.join(bad)}" if bad else ", no finding outside the allow list")


def run_docker_security_review(params: dict[str, Any], *, check_mode: bool = False,
                               diff_mode: bool = False) -> dict[str, Any]:
    """Read-only, so check mode reads and judges the same."""
    settings = review_settings(params)  # bad input fails before the engine is asked anything
    engine = engine_name(params.get("docker_host"))
    client = docker_client_from(params.get("docker_host"), params.get("timeout", 60))
    try:
        records = review(client, settings, engine, datetime.now(timezone.utc))
    finally:
        client.close()
    return {"changed": False, "msg": summary(records, settings, engine), "records": records}
