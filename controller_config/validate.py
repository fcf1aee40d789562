"""Offline validation of a controller configuration.

Each object is handed to the awx.awx module that infra.aap_configuration calls for it, in a
separate interpreter, pointed at a closed port on 127.0.0.1: the module validates its arguments
before it makes any request, so an object it accepts ends in "Connection refused" and one it
refuses ends in the module's own message. awx.awx comes from the `ansible` package on PyPI
(the collection alone is unpacked from the wheel, nothing else). Surveys are checked against
AWX's survey format (a JSON schema and AWX's own rules), schedules against AWX's rrule rules,
and every name an object refers to must be defined in the configuration.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible_collections.streamops.maintenance.plugins.module_utils import awx_schedule, awx_survey

from .sources import REPO, SourceError

ANSIBLE_WHEEL = "ansible==12.3.0"  # carries awx.awx 24.6.1
AWX_MODULES = {
    "controller_credential_types": "credential_type",
    "controller_credentials": "credential",
    "controller_execution_environments": "execution_environment",
    "controller_projects": "project",
    "controller_inventories": "inventory",
    "controller_inventory_sources": "inventory_source",
    "controller_notifications": "notification_template",
    "controller_templates": "job_template",
    "controller_schedules": "schedule",
}
SCHEMA = Path(__file__).with_name("awx_survey_spec.schema.json")
_CHECKER = Path(__file__).with_name("awx_module_check.py")


def cache_dir() -> Path:
    base = os.environ.get("STREAMOPS_WHEEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "streamops-maintenance", "wheels")
    return Path(base)


def awx_collection(root: Path = REPO / "build" / "vendor" / "awx") -> Path:
    """A directory holding ansible_collections/awx/awx, unpacked from the ansible wheel on first use."""
    if (root / "ansible_collections" / "awx" / "awx" / "plugins" / "modules").is_dir():
        return root
    wheels = cache_dir()
    wheel = next(iter(sorted(wheels.glob("ansible-12.3.0-*.whl"))), None)
    if wheel is None:
        wheels.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                                 "--disable-pip-version-check", "--dest", str(wheels), ANSIBLE_WHEEL],
                                capture_output=True, text=True, check=False)
        wheel = next(iter(sorted(wheels.glob("ansible-12.3.0-*.whl"))), None)
        if wheel is None:
            raise SourceError(f"cannot download {ANSIBLE_WHEEL} (for awx.awx) into {wheels}: {result.stderr.strip()}")
    partial = root.with_name(root.name + ".partial")
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist() if name.startswith("ansible_collections/awx/awx/")]
        archive.extractall(partial, members)
    partial.rename(root)
    return root


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def module_problems(objects: list[tuple[str, Mapping[str, Any]]], awx_root: Path) -> list[str | None]:
    """For each (awx.awx module, params): None when the module accepts the params, else its message."""
    payload = json.dumps({"host": f"https://127.0.0.1:{_closed_port()}",
                          "objects": [[module, dict(params)] for module, params in objects]})
    env = {**os.environ, "PYTHONPATH": str(awx_root)}
    result = subprocess.run([sys.executable, str(_CHECKER)], input=payload, capture_output=True, text=True,
                            env=env, check=False, timeout=600)
    if result.returncode != 0:
        raise SourceError(f"the awx.awx check failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout)


def _names(config: Mapping[str, Any], variable: str) -> set[str]:
    return {item["name"] for item in config.get(variable) or []}


def reference_problems(config: Mapping[str, Any]) -> list[str]:
    problems = []
    known = {variable: _names(config, variable) for variable in AWX_MODULES}

    def need(owner: str, variable: str, name: Any) -> None:
        if name not in known[variable]:
            problems.append(f"{owner} refers to {name!r}, which {variable} does not define")

    for item in config.get("controller_credentials") or []:
        need(f"credential {item['name']!r}", "controller_credential_types", item["credential_type"])
    for item in config.get("controller_projects") or []:
        if item.get("default_environment"):
            need(f"project {item['name']!r}", "controller_execution_environments", item["default_environment"])
    for item in config.get("controller_inventory_sources") or []:
        need(f"inventory source {item['name']!r}", "controller_inventories", item["inventory"])
        need(f"inventory source {item['name']!r}", "controller_projects", item["source_project"])
    for item in config.get("controller_templates") or []:
        owner = f"job template {item['name']!r}"
        need(owner, "controller_projects", item["project"])
        need(owner, "controller_inventories", item["inventory"])
        need(owner, "controller_execution_environments", item["execution_environment"])
        for name in item.get("credentials") or []:
            need(owner, "controller_credentials", name)
        for key in ("notification_templates_error", "notification_templates_success", "notification_templates_started"):
            for name in item.get(key) or []:
                need(owner, "controller_notifications", name)
        if (REPO / item["playbook"]).suffix != ".yml" or not (REPO / item["playbook"]).exists():
            problems.append(f"{owner}: playbook {item['playbook']} is not in the project")
    for item in config.get("controller_schedules") or []:
        need(f"schedule {item['name']!r}", "controller_templates", item["unified_job_template"])
    return problems


def survey_schema_problems(spec: Mapping[str, Any]) -> list[str]:
    import jsonschema  # noqa: PLC0415 - a test and tooling dependency, not the collection's

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    return [f"{'/'.join(map(str, error.absolute_path)) or 'survey'}: {error.message}"
            for error in validator.iter_errors(spec)]


def validate(config: Mapping[str, Any], awx_root: Path | None = None) -> list[str]:
    """Every problem found, each naming the object; empty when the configuration would load into AWX."""
    problems = []
    unknown = sorted(set(config) - set(AWX_MODULES))
    if unknown:
        problems.append(f"unknown variables {unknown}")
    objects = [(AWX_MODULES[variable], item) for variable in AWX_MODULES for item in config.get(variable) or []]
    verdicts = module_problems(objects, awx_root or awx_collection())
    for (module, item), verdict in zip(objects, verdicts):
        if verdict:
            problems.append(f"awx.awx.{module} refuses {item.get('name')!r}: {verdict}")
    for item in config.get("controller_templates") or []:
        if item.get("survey_enabled"):
            spec = item.get("survey_spec")
            found = survey_schema_problems(spec) + awx_survey.survey_problems(spec)
            problems += [f"survey of {item['name']!r}: {problem}" for problem in found]
    for item in config.get("controller_schedules") or []:
        problems += [f"schedule {item['name']!r}: {problem}" for problem in awx_schedule.awx_rrule_problems(item["rrule"])]
    problems += reference_problems(config)
    return problems
