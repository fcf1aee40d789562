"""What the controller configuration is made from: the collection's playbooks and role specs, and an inventory.

Nothing here is written for a particular playbook or role: a playbook that a later change adds
is found in playbooks/, its steps and launch inputs are read from its plays (or from the
checklist play it imports), and a role's options from its meta/argument_specs.yml.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
COLLECTION = "streamops.maintenance"


class SourceError(RuntimeError):
    """An input of the generator is missing or does not say what the generator needs; the message names it."""


@dataclass(frozen=True)
class LaunchInput:
    name: str
    required: bool | None = None  # None: as the role's spec says


@dataclass
class Playbook:
    """A playbook a job template runs: its file, the variables its plays set, its steps and launch inputs."""

    path: str  # relative to the repository (the AWX project)
    description: str
    variables: dict[str, Any]
    steps: list[tuple[str, str]]  # (role, entry point) in the order they run
    launch_inputs: list[LaunchInput] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.path).stem

    @property
    def schedule_name(self) -> str:
        return str(self.variables.get("maintenance_schedule") or self.name)

    @property
    def gated(self) -> bool:
        """The first step is the window gate: the playbook can be started when a window opens."""
        return bool(self.steps) and self.steps[0][0] == "maintenance_window"


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None


def _header(path: Path) -> str:
    """The playbook's opening comment, as one paragraph (its description in AWX)."""
    lines = []
    for line in path.read_text().splitlines():
        if line.strip() in ("---", ""):
            if lines:
                break
            continue
        if not line.startswith("#"):
            break
        if line.startswith("#  "):  # an indented usage example stays in the file
            continue
        lines.append(line.lstrip("#").strip())
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


def _imported(playbook_dir: Path) -> set[str]:
    names = set()
    for path in playbook_dir.glob("*.yml"):
        for entry in _load_yaml(path) or []:
            if isinstance(entry, Mapping):
                target = entry.get("ansible.builtin.import_playbook") or entry.get("import_playbook")
                if target:
                    names.add(Path(str(target)).name)
    return names


def _plays(path: Path, inherited: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(play, variables) of every play the file runs, imports followed, import vars over play vars."""
    plays = []
    for entry in _load_yaml(path) or []:
        if not isinstance(entry, Mapping):
            raise SourceError(f"{path}: a playbook entry is not a mapping")
        target = entry.get("ansible.builtin.import_playbook") or entry.get("import_playbook")
        if target:
            plays += _plays(path.parent / str(target), {**inherited, **(entry.get("vars") or {})})
        else:
            plays.append((dict(entry), {**(entry.get("vars") or {}), **inherited}))
    return plays


def _role_step(name: str, entry: str | None) -> tuple[str, str]:
    return name.removeprefix(COLLECTION + "."), entry or "main"


def _static_role_steps(play: Mapping[str, Any]) -> list[tuple[str, str]]:
    steps = []
    for role in play.get("roles") or []:
        name = role.get("role") or role.get("name") if isinstance(role, Mapping) else role
        steps.append(_role_step(str(name), role.get("tasks_from") if isinstance(role, Mapping) else None))

    def walk(tasks: Sequence[Any]) -> None:
        for task in tasks or []:
            if not isinstance(task, Mapping):
                continue
            for key in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
                spec = task.get(key)
                if isinstance(spec, Mapping) and "{{" not in str(spec.get("name", "{{")):
                    steps.append(_role_step(str(spec["name"]), spec.get("tasks_from")))
            for key in ("block", "rescue", "always"):
                walk(task.get(key) or [])

    for key in ("pre_tasks", "tasks", "post_tasks"):
        walk(play.get(key) or [])
    return steps


def _launch_inputs(path: Path, raw: Any) -> list[LaunchInput]:
    inputs = []
    for item in raw or []:
        if isinstance(item, str):
            inputs.append(LaunchInput(item))
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            inputs.append(LaunchInput(item["name"], item.get("required")))
        else:
            raise SourceError(f"{path}: maintenance_launch_inputs item {item!r} is neither a name nor {{name, required}}")
    return inputs


def load_playbooks(repo: Path, render: Any) -> list[Playbook]:
    """Every playbook of playbooks/ that no other playbook imports; ``render(value, variables)`` templates.

    The steps of a cadence playbook are its checklist's list for its ``maintenance_schedule``
    (rendered, since the emergency list is an expression); a plain play's are its static roles.
    """
    playbook_dir = Path(repo) / "playbooks"
    imported = _imported(playbook_dir)
    found = []
    for path in sorted(playbook_dir.glob("*.yml")):
        if path.name in imported:
            continue
        steps: list[tuple[str, str]] = []
        inputs: list[LaunchInput] = []
        variables: dict[str, Any] = {}
        for play, play_vars in _plays(path, {}):
            variables.update(play_vars)
            inputs += _launch_inputs(path, play_vars.get("maintenance_launch_inputs"))
            checklists = play_vars.get("maintenance_checklists")
            schedule = play_vars.get("maintenance_schedule")
            if checklists and schedule:
                if schedule not in checklists:
                    raise SourceError(f"{path}: maintenance_schedule {schedule!r} has no checklist; known: "
                                      f"{', '.join(checklists)}")
                for step in render(checklists[schedule], play_vars):
                    role, _sep, entry = str(step).partition(":")
                    steps.append(_role_step(role, entry or None))
            else:
                steps += _static_role_steps(play)
        found.append(Playbook(os.path.relpath(path, repo), _header(path), variables, steps, inputs))
    if not found:
        raise SourceError(f"no playbooks found in {playbook_dir}")
    return found


def role_options(repo: Path, role: str, entry: str) -> dict[str, Any]:
    """The options of one entry point of a role of the collection (its meta/argument_specs.yml)."""
    path = Path(repo) / "roles" / role / "meta" / "argument_specs.yml"
    if not path.exists():
        raise SourceError(f"role {role!r} has no {path.relative_to(repo)}")
    specs = (_load_yaml(path) or {}).get("argument_specs") or {}
    if entry not in specs:
        raise SourceError(f"{path.relative_to(repo)} has no entry point {entry!r}; it has {', '.join(specs)}")
    return dict(specs[entry].get("options") or {})


def role_defaults(repo: Path, role: str) -> dict[str, Any]:
    path = Path(repo) / "roles" / role / "defaults" / "main.yml"
    return dict(_load_yaml(path) or {}) if path.exists() else {}
