"""The controller configuration, in the variable format of the infra.aap_configuration collection.

One job template per playbook and estate (each estate its own credentials, limited to its hosts),
schedules from the windows the playbook is gated by, surveys from the roles' argument specs,
credential types from the collection's credential table. Secrets are never read: a credential's
secret inputs point at vault variables the dispatch playbook templates.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.streamops.maintenance.plugins.module_utils import awx_schedule, awx_survey
from ansible_collections.streamops.maintenance.plugins.module_utils import job_credentials as jc
from ansible_collections.streamops.maintenance.plugins.module_utils import window
from ansible_collections.streamops.maintenance.plugins.module_utils.errors import MaintenanceError

from .inventory import Estate, InventoryReader
from .sources import Playbook, SourceError, load_playbooks, role_defaults, role_options

DEFAULTS = Path(__file__).with_name("defaults.yml")
# The variables of infra.aap_configuration, in the order its dispatch role applies them.
VARIABLES = ("controller_credential_types", "controller_credentials", "controller_execution_environments",
             "controller_projects", "controller_inventories", "controller_inventory_sources",
             "controller_notifications", "controller_templates", "controller_schedules")


class VaultRef(str):
    """A value the dispatch playbook must template (a vault variable); every other template text is AWX's."""


@dataclass
class Generated:
    config: dict[str, list[dict[str, Any]]]
    vault_variables: list[str] = field(default_factory=list)
    checked_until: datetime | None = None
    skipped: list[str] = field(default_factory=list)


def load_settings(path: Path | None) -> dict[str, Any]:
    settings = yaml.safe_load(DEFAULTS.read_text())
    if path is not None:
        try:
            given = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SourceError(f"cannot read settings {path}: {exc}") from None
        unknown = sorted(set(given) - set(settings))
        if unknown:
            raise SourceError(f"settings {path}: unknown key(s) {unknown}; known: {sorted(settings)}")
        for key, value in given.items():
            settings[key] = {**settings[key], **value} if isinstance(settings[key], dict) else value
    return settings


def _collection_version(repo: Path) -> str:
    return str(yaml.safe_load((repo / "galaxy.yml").read_text())["version"])


# --------------------------------------------------------------------------- credentials


def _credentials(reader: InventoryReader, estate: Estate, settings: Mapping[str, Any],
                 vault: list[str]) -> list[dict[str, Any]]:
    found = []
    for cred in jc.CREDENTIALS:
        secret_options = {f.option for f in cred.fields if f.secret}
        connection = reader.connection(estate, cred.variable, skip=secret_options)
        if connection is None:
            continue
        inputs: dict[str, Any] = {"estate": estate.name}
        for spec in cred.fields:
            if spec.file or spec.option == "estate":
                continue  # a CA stays a path in the inventory; add its PEM to the credential by hand if wanted
            if spec.secret or (spec.id in cred.required and connection.get(spec.option) in (None, "")):
                name = f"{settings['vault_prefix']}_{estate.name}_{cred.key}_{spec.id}"
                vault.append(name)
                inputs[spec.id] = VaultRef("{{ %s }}" % name)
            elif connection.get(spec.option) not in (None, ""):
                value = connection[spec.option]
                inputs[spec.id] = bool(value) if spec.boolean else str(value)
        found.append({"name": f"streamops {estate.name} {cred.title}", "description": cred.description,
                      "organization": settings["organization"], "credential_type": cred.name, "inputs": inputs})
    return found


# --------------------------------------------------------------------------- surveys


def _survey(repo: Path, playbook: Playbook, title: str) -> dict[str, Any] | None:
    if not playbook.launch_inputs:
        return None
    specs = []
    for role, entry in playbook.steps:
        try:
            specs.append((f"role {role} ({entry})", role_options(repo, role, entry)))
        except SourceError:
            continue  # a role of another collection: its options are not ours to ask
    questions = []
    for launch in playbook.launch_inputs:
        try:
            option = awx_survey.find_option(launch.name, specs)
            questions.append(awx_survey.survey_question(launch.name, option, required=launch.required))
        except MaintenanceError as exc:
            raise SourceError(f"{playbook.path}: {exc.msg}") from None
    return awx_survey.survey_spec(title, f"Asked when {playbook.path} is launched", questions)


# --------------------------------------------------------------------------- schedules


def _window_settings(reader: InventoryReader, estate: Estate, playbook: Playbook) -> dict[str, Any]:
    play = {**playbook.variables, "maintenance_schedule": playbook.schedule_name}
    names = ("maintenance_window_windows", "maintenance_window_name", "maintenance_window_blackouts",
             "maintenance_window_timezone", "maintenance_window_enforce")
    return {name: reader.value(estate, name, play) for name in names}


def _schedule(reader: InventoryReader, estate: Estate, playbook: Playbook, template: Mapping[str, Any],
              settings: Mapping[str, Any], now: datetime,
              skipped: list[str]) -> tuple[dict[str, Any], datetime] | None:
    """The schedule that starts the template when the playbook's window opens (and until when it is checked)."""
    where = f"{template['name']}"
    if not playbook.gated:
        return None
    survey = template.get("survey_spec") or {}
    if any(question["required"] for question in survey.get("spec", [])):
        skipped.append(f"{where}: not scheduled, it asks a required question at launch")
        return None
    values = _window_settings(reader, estate, playbook)
    name = values["maintenance_window_name"]
    if not name:
        skipped.append(f"{where}: not scheduled, it names no window (maintenance_window_name is empty)")
        return None
    zone = values["maintenance_window_timezone"] or "UTC"
    try:
        specs = window.select_windows(window.parse_windows(values["maintenance_window_windows"], zone), name)
        # A playbook that only records the window (enforce false) runs in blackouts too.
        blackouts = window.parse_blackouts(values["maintenance_window_blackouts"], zone) \
            if values["maintenance_window_enforce"] else []
        horizon = timedelta(days=int(settings["schedule_horizon_days"]))
        found = awx_schedule.schedule_for_window(specs[0], blackouts, after=now, horizon=horizon)
    except MaintenanceError as exc:
        raise SourceError(f"{where}: {exc.msg}") from None
    if found is None:
        skipped.append(f"{where}: not scheduled, window {name!r} does not open after {now.isoformat()}")
        return None
    checked = found.checked_until.date().isoformat()
    return {
        "name": f"{template['name']} when window {name} opens",
        "description": (f"Starts when window '{name}' opens, as maintenance_window computes it (daylight saving "
                        f"{'and blackouts ' if blackouts else ''}applied; corrections through {checked}: "
                        f"regenerate before then)"),
        "organization": settings["organization"],
        "unified_job_template": template["name"],
        "rrule": found.rrule,
        "enabled": True,
    }, found.checked_until


# --------------------------------------------------------------------------- the whole configuration


def _template(playbook: Playbook, estate: Estate, settings: Mapping[str, Any], credentials: Sequence[str],
              notifications: Mapping[str, list[str]], repo: Path) -> dict[str, Any]:
    jobs = settings["job_templates"]
    name = f"streamops {estate.name} {playbook.name}"
    template: dict[str, Any] = {
        "name": name,
        "description": playbook.description[:512],
        "organization": settings["organization"],
        "job_type": "run",
        "project": settings["project"]["name"],
        "playbook": playbook.path,
        "inventory": settings["inventory"]["name"],
        "limit": estate.limit,
        "execution_environment": settings["execution_environment"]["name"],
        "credentials": list(credentials) + list(jobs["credentials"]),
        "forks": int(jobs["forks"]),
        "verbosity": int(jobs["verbosity"]),
        "job_slice_count": int(jobs["job_slice_count"].get(playbook.name, 1)),
        # Two runs of one checklist on one estate must never overlap: AWX queues the second.
        "allow_simultaneous": False,
        "ask_variables_on_launch": False,
        "extra_vars": dict(jobs["extra_vars"]),
        "notification_templates_error": notifications.get("error", []),
        "notification_templates_success": notifications.get("success", []),
        "notification_templates_started": notifications.get("started", []),
    }
    survey = _survey(repo, playbook, name)
    template["survey_enabled"] = survey is not None
    if survey is not None:
        template["survey_spec"] = survey
    return template


def _notifications(settings: Mapping[str, Any], vault: list[str]) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    templates, attach = [], {}
    for item in settings["notifications"]:
        config = dict(item["notification_configuration"])
        for key in ("password", "token"):
            if key in config:
                name = f"{settings['vault_prefix']}_notification_{key}"
                vault.append(name)
                config[key] = VaultRef("{{ %s }}" % name)
        templates.append({"name": item["name"], "description": item.get("description", ""),
                          "organization": settings["organization"], "notification_type": item["notification_type"],
                          "notification_configuration": config})
        for event in item.get("on", ["error"]):
            if event not in ("started", "success", "error"):
                raise SourceError(f"notification {item['name']!r}: on {event!r} is not started, success or error")
            attach.setdefault(event, []).append(item["name"])
    return templates, attach


def _project_path(repo: Path, inventory: Path) -> str:
    try:
        return str(Path(inventory).resolve().relative_to(Path(repo).resolve()))
    except ValueError:
        raise SourceError(f"inventory {inventory} is not inside the project {repo}: say where AWX finds it with "
                          "the setting inventory.source_path") from None


def generate(repo: Path, inventory: Path, settings: Mapping[str, Any], now: datetime) -> Generated:
    reader = InventoryReader(inventory, defaults=role_defaults(repo, "maintenance_window"))
    playbooks = load_playbooks(repo, reader.render)
    version = _collection_version(repo)
    vault: list[str] = []
    skipped: list[str] = []
    notifications, attach = _notifications(settings, vault)
    ee = settings["execution_environment"]
    project = settings["project"]
    source_path = settings["inventory"]["source_path"] or _project_path(repo, inventory)
    config: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIABLES}
    config["controller_credential_types"] = [jc.credential_type(cred) for cred in jc.CREDENTIALS]
    config["controller_execution_environments"] = [{
        "name": ee["name"], "description": "streamops.maintenance and its clients (execution-environment.yml)",
        "organization": settings["organization"], "image": ee["image"].format(version=version), "pull": ee["pull"]}]
    config["controller_projects"] = [{
        "name": project["name"], "description": "The streamops.maintenance repository: playbooks and inventory",
        "organization": settings["organization"], "scm_type": "git", "scm_url": project["scm_url"],
        "scm_branch": project["scm_branch"], "scm_update_on_launch": True,
        "default_environment": ee["name"]}]
    config["controller_inventories"] = [{
        "name": settings["inventory"]["name"], "description": f"The estates of {source_path}",
        "organization": settings["organization"]}]
    config["controller_inventory_sources"] = [{
        "name": f"{settings['inventory']['name']} from {source_path}", "inventory": settings["inventory"]["name"],
        "organization": settings["organization"], "source": "scm", "source_project": project["name"],
        "source_path": source_path, "overwrite": True, "overwrite_vars": True, "update_on_launch": True}]
    config["controller_notifications"] = notifications
    checked_until = None
    for estate in reader.estates():
        credentials = _credentials(reader, estate, settings, vault)
        config["controller_credentials"] += credentials
        for playbook in playbooks:
            template = _template(playbook, estate, settings, [c["name"] for c in credentials], attach, repo)
            config["controller_templates"].append(template)
            scheduled = _schedule(reader, estate, playbook, template, settings, now, skipped)
            if scheduled:
                schedule, checked_until = scheduled
                config["controller_schedules"].append(schedule)
    return Generated(config, sorted(set(vault)), checked_until, skipped)


# --------------------------------------------------------------------------- YAML


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # each object spelled out: the file is read by people too


def _unsafe(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", str(value))


def _plain(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Any other template text is AWX's to render (credential injectors): Ansible must not touch it.
    if "{{" in value or "{%" in value:
        return _unsafe(dumper, value)
    return dumper.represent_str(value)


_Dumper.add_representer(str, _plain)
_Dumper.add_representer(VaultRef, lambda dumper, value: dumper.represent_str(str(value)))


def render_yaml(generated: Generated, *, inventory: str, now: datetime) -> str:
    head = [
        "---",
        "# Controller configuration for AWX/Tower in the variable format of the infra.aap_configuration",
        f"# collection, generated by `python -m controller_config generate` from {inventory} at {now.isoformat()}.",
        "# Do not edit: change the playbooks, roles, inventory or settings and generate again.",
        "# Load it with infra.aap_configuration's dispatch role (docs/awx.md); the !unsafe values are AWX",
        "# templates that Ansible must pass through untouched.",
    ]
    if generated.checked_until:
        head.append(f"# The schedules are checked against the windows until {generated.checked_until.date()}:"
                    " generate again before then.")
    if generated.vault_variables:
        head.append("# Vault variables the credentials and notifications read (none of their secrets are here):")
        head += [f"#   {name}" for name in generated.vault_variables]
    body = yaml.dump(generated.config, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return "\n".join(head) + "\n" + body


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_yaml(text: str) -> dict[str, Any]:
    """The configuration as the awx.awx modules receive it (``!unsafe`` values as plain strings)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader with one extra scalar tag
