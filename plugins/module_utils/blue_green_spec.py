# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The app container's tuning of a blue/green deploy: ``spec`` (env and resources), checked and compared.

A spec travels with the version through the blue/green path: it is deployed to
the idle colour, recorded on what runs there (a pod template annotation, a
container label) and in the deploy history, so a rollback restores it. The
normal form (``normalize_spec``) is what is recorded and compared: string
values, empty parts left out, so ``{}`` is "no tuning" and equals what a colour
deployed before specs existed carries.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import MaintenanceError

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Kubernetes quantities as users write them: 500m, 0.5, 2 (cpu); 256Mi, 1G, 1e3 (memory).
K8S_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?([eE][0-9]+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")
# docker-compose 1.29's mem_limit: bytes, or a number with b, k, m or g.
COMPOSE_MEMORY = re.compile(r"[0-9]+[bkmgBKMG]?")
COMPOSE_CPUS = re.compile(r"[0-9]+(\.[0-9]+)?")
RESOURCE_KEYS = {
    "kubernetes": {"requests": ("cpu", "memory"), "limits": ("cpu", "memory")},
    "compose": {"limits": ("cpus", "memory")},
}
# The compose driver sets these itself (compose_project.ComposeProject.env); a spec may not change them.
COMPOSE_RESERVED_ENV = ("APP_IMAGE", "APP_VERSION", "APP_PORT", "APP_COLOUR")


class SpecError(MaintenanceError):
    """A spec option is invalid; ``msg`` names the value."""


def env_value(name: str, value: Any) -> str:
    if isinstance(value, bool) or value is None or not isinstance(value, (str, int, float)):
        raise SpecError(msg=f"spec.env.{name} {value!r} must be a string (quote numbers and booleans in YAML)")
    return str(value)


def check_quantity(platform: str, path: str, key: str, value: Any) -> str:
    text = str(value).strip() if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    if platform == "kubernetes":
        ok = text is not None and K8S_QUANTITY.fullmatch(text) is not None
        rule = "a Kubernetes quantity such as 500m or 0.5 (cpu), 256Mi or 1Gi (memory)"
    elif key == "cpus":
        ok = text is not None and COMPOSE_CPUS.fullmatch(text) is not None and float(text) > 0
        rule = "a number of CPUs above 0, such as 0.5"
    else:
        ok = text is not None and COMPOSE_MEMORY.fullmatch(text) is not None and int(text.rstrip("bkmgBKMG")) > 0
        rule = "bytes, or a number with b, k, m or g, such as 256m"
    if not ok:
        raise SpecError(msg=f"spec.resources.{path}.{key} {value!r} is not {rule}")
    return text or ""


def normalize_resources(platform: str, raw: Any) -> dict[str, dict[str, str]]:
    allowed = RESOURCE_KEYS[platform]
    if not isinstance(raw, dict):
        raise SpecError(msg=f"spec.resources must be a dict like {shape(platform)}, got {raw!r}")
    unknown = sorted(set(map(str, raw)) - set(allowed))
    if unknown:
        raise SpecError(msg=f"spec.resources: unknown key(s) {', '.join(unknown)} for platform {platform}; "
                            f"allowed: {', '.join(sorted(allowed))} ({shape(platform)})")
    found = {}
    for part, keys in allowed.items():
        values = raw.get(part)
        if values in (None, {}):
            continue
        if not isinstance(values, dict):
            raise SpecError(msg=f"spec.resources.{part} must be a dict of {', '.join(keys)}, got {values!r}")
        unknown = sorted(set(map(str, values)) - set(keys))
        if unknown:
            raise SpecError(msg=f"spec.resources.{part}: unknown key(s) {', '.join(unknown)} for platform "
                                f"{platform}; allowed: {', '.join(keys)}")
        checked = {key: check_quantity(platform, part, key, values[key]) for key in keys if values.get(key) is not None}
        if checked:
            found[part] = checked
    return found


def shape(platform: str) -> str:
    if platform == "kubernetes":
        return "{requests: {cpu: 250m, memory: 256Mi}, limits: {cpu: '1', memory: 512Mi}}"
    return "{limits: {cpus: '0.5', memory: 256m}}"


def normalize_spec(raw: Any, platform: str) -> dict[str, Any]:
    """The spec in its normal form; SpecError naming the first bad value. ``{}`` when there is no tuning."""
    if raw in (None, {}):
        return {}
    if not isinstance(raw, dict):
        raise SpecError(msg=f"spec must be a dict with env and/or resources, got {raw!r}")
    unknown = sorted(set(map(str, raw)) - {"env", "resources"})
    if unknown:
        raise SpecError(msg=f"spec: unknown key(s) {', '.join(unknown)}; allowed: env, resources")
    spec: dict[str, Any] = {}
    env = raw.get("env") or {}
    if not isinstance(env, dict):
        raise SpecError(msg=f"spec.env must be a dict of variable name to value, got {env!r}")
    for name in env:
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise SpecError(msg=f"spec.env name {name!r} is not an environment variable name "
                                "([A-Za-z_][A-Za-z0-9_]*)")
        if platform == "compose" and name in COMPOSE_RESERVED_ENV:
            raise SpecError(msg=f"spec.env name {name!r} is set by the module on platform compose "
                                f"({', '.join(COMPOSE_RESERVED_ENV)}); use version and compose.ports")
    if env:
        spec["env"] = {name: env_value(name, env[name]) for name in sorted(env)}
    resources = normalize_resources(platform, raw.get("resources") or {})
    if resources:
        spec["resources"] = resources
    return spec


def encode_spec(spec: dict[str, Any]) -> str:
    """The one text form of a spec, for annotations and labels (stable: keys sorted)."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def decode_spec(text: str | None) -> dict[str, Any]:
    """A recorded spec; ``{}`` when nothing (or something unreadable) is recorded."""
    if not text:
        return {}
    try:
        spec = json.loads(text)
    except ValueError:
        return {}
    return spec if isinstance(spec, dict) else {}


def describe_spec(spec: dict[str, Any] | None) -> list[str]:
    """One line per env variable and resource, for diffs and messages (values shown: env is no place for secrets)."""
    spec = spec or {}
    lines = [f"env {name}={value}" for name, value in sorted((spec.get("env") or {}).items())]
    for part, values in sorted((spec.get("resources") or {}).items()):
        lines += [f"resources {part}.{key}={value}" for key, value in sorted(values.items())]
    return lines


def spec_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """What changes from ``before`` to ``after``, in one line ("" when nothing)."""
    old, new = set(describe_spec(before)), set(describe_spec(after))
    removed = sorted(old - new)
    added = sorted(new - old)
    parts = ([f"+{line}" for line in added] + [f"-{line}" for line in removed])
    return ", ".join(parts)


def spec_of_version(history: list[dict[str, Any]], version: str) -> dict[str, Any]:
    """The spec ``version`` last went live with, from the history (``{}`` when it never recorded one)."""
    for entry in reversed(history):
        if entry.get("result") == "live" and entry.get("version") == version:
            return entry.get("spec") or {}
        if entry.get("from_version") == version and entry.get("from_spec") is not None:
            return entry.get("from_spec") or {}
    return {}


__all__ = ["COMPOSE_RESERVED_ENV", "SpecError", "decode_spec", "describe_spec", "encode_spec", "normalize_spec",
           "spec_changes", "spec_of_version"]
