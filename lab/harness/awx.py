"""What AWX does around a job, for tests that run the collection the way AWX runs it.

No AWX server can run here, so the parts of a job that matter to the collection are reproduced
from AWX's own behaviour:

* ``inject_credential``: a custom credential type's injectors rendered as AWX renders them
  (a sandboxed Jinja environment whose namespace holds the credential's inputs, empty inputs left
  out, missing booleans false; ``file`` templates written to 0600 files under ``env/`` of the
  private data dir and named in ``tower.filename``; ``env`` templates into the job's environment;
  ``extra_vars`` into a file passed with ``-e @``). Inputs are checked as AWX checks them when a
  credential is saved (required fields, choices, types).
* ``PrivateDataDir``: the directory ansible-runner reads (project, inventory, env/extravars,
  env/envvars, env/cmdline), with the inventory written as AWX writes it: an executable script
  that prints the inventory as JSON.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .base import HarnessError

CONTAINER_ROOT = "/runner"


def _check_inputs(credential_type: Mapping[str, Any], inputs: Mapping[str, Any]) -> None:
    fields = {f["id"]: f for f in credential_type["inputs"].get("fields", [])}
    unknown = sorted(set(inputs) - set(fields))
    if unknown:
        raise HarnessError(f"{credential_type['name']}: unknown input(s) {unknown}")
    for name in credential_type["inputs"].get("required", []):
        if inputs.get(name) in (None, ""):
            raise HarnessError(f"{credential_type['name']}: input {name!r} is required")
    for name, value in inputs.items():
        spec = fields[name]
        if spec.get("type") == "boolean":
            if not isinstance(value, bool):
                raise HarnessError(f"{credential_type['name']}: input {name!r} must be a boolean")
        elif not isinstance(value, str):
            raise HarnessError(f"{credential_type['name']}: input {name!r} must be a string")
        elif spec.get("choices") and value and value not in spec["choices"]:
            raise HarnessError(f"{credential_type['name']}: input {name!r} must be one of {spec['choices']}")


def inject_credential(credential_type: Mapping[str, Any], inputs: Mapping[str, Any], private_data_dir: Path,
                      *, container_root: str = CONTAINER_ROOT) -> tuple[dict[str, str], list[str]]:
    """(environment, extra command-line arguments) of one credential, files written as AWX writes them."""
    _check_inputs(credential_type, inputs)
    tower = SimpleNamespace()
    namespace: dict[str, Any] = {"tower": tower}
    for name, value in inputs.items():
        if isinstance(value, bool) or len(value):
            namespace[name] = value
    for spec in credential_type["inputs"].get("fields", []):
        if spec.get("type") == "boolean" and spec["id"] not in inputs:
            namespace[spec["id"]] = False
    sandbox = ImmutableSandboxedEnvironment()
    env_dir = Path(private_data_dir) / "env"
    env_dir.mkdir(parents=True, exist_ok=True)
    injectors = credential_type.get("injectors") or {}
    for label, template in (injectors.get("file") or {}).items():
        handle, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, "w") as out:
            out.write(sandbox.from_string(template).render(**namespace))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        container_path = f"{container_root}/env/{Path(path).name}"
        if "." not in label:
            tower.filename = container_path
        else:
            if not isinstance(getattr(tower, "filename", None), SimpleNamespace):
                tower.filename = SimpleNamespace()
            setattr(tower.filename, label.split(".", 1)[1], container_path)
    env = {name: sandbox.from_string(template).render(**namespace)
           for name, template in (injectors.get("env") or {}).items()}

    def build(node: Any) -> Any:
        if isinstance(node, dict):
            return {build(key): build(value) for key, value in node.items()}
        if isinstance(node, list):
            return [build(item) for item in node]
        return sandbox.from_string(node).render(**namespace)

    cmdline: list[str] = []
    extra_vars = build(injectors.get("extra_vars") or {})
    if extra_vars:
        handle, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, "w") as out:
            out.write(yaml.safe_dump(extra_vars))
        os.chmod(path, stat.S_IRUSR)
        cmdline += ["-e", f"@{container_root}/env/{Path(path).name}"]
    return env, cmdline


def inventory_script(inventory: Mapping[str, Any]) -> str:
    """An executable inventory in the shape AWX gives a job: a script printing the inventory as JSON."""
    payload = json.dumps(inventory, indent=1, sort_keys=True)
    return ("#!/usr/bin/env python3\n"
            "# Written by the test harness as AWX writes a job's inventory.\n"
            "import sys\n"
            "if '--host' in sys.argv:\n"
            "    print('{}')\n"
            "else:\n"
            f"    print({payload!r})\n")


@dataclass
class PrivateDataDir:
    """An ansible-runner private data dir laid out as AWX lays out a job's."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    cmdline: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        for sub in ("project", "inventory", "env", "artifacts"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def add_project(self, repo: Path, paths: Sequence[str]) -> None:
        """Copy what AWX's project checkout would hold (only ``paths`` of the repository)."""
        for relative in paths:
            source = Path(repo) / relative
            target = self.root / "project" / relative
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)

    def set_inventory(self, inventory: Mapping[str, Any]) -> Path:
        script = self.root / "inventory" / "hosts"
        script.write_text(inventory_script(inventory))
        script.chmod(0o700)
        return script

    def add_credential(self, credential_type: Mapping[str, Any], inputs: Mapping[str, Any]) -> None:
        env, cmdline = inject_credential(credential_type, inputs, self.root)
        clash = sorted(set(env) & set(self.env))
        if clash:
            # AWX refuses two credentials that inject the same variable.
            raise HarnessError(f"{credential_type['name']} injects {clash}, already injected by another credential")
        self.env.update(env)
        self.cmdline += cmdline

    def write(self, extra_vars: Mapping[str, Any], job_env: Mapping[str, str] | None = None) -> None:
        """env/extravars (the job's extra vars and survey answers), env/envvars, env/cmdline."""
        env_dir = self.root / "env"
        (env_dir / "extravars").write_text(yaml.safe_dump(dict(extra_vars)))
        envvars = env_dir / "envvars"
        envvars.write_text(yaml.safe_dump({**self.env, **(job_env or {})}))
        envvars.chmod(0o600)
        if self.cmdline:
            (env_dir / "cmdline").write_text(" ".join(self.cmdline))


# --------------------------------------------------------------------------- a job of the generated configuration
# What AWX adds to every job (a representative part): the job's own variables and environment.
def awx_job_vars(job_id: int, template: Mapping[str, Any], *, launch_type: str = "scheduled") -> dict[str, Any]:
    values = {"job_id": job_id, "job_launch_type": launch_type, "job_template_name": template["name"],
              "user_name": "awx-scheduler", "inventory_name": template["inventory"],
              "project_revision": "0" * 40, "execution_node": "awx-task"}
    return {f"{prefix}_{key}": value for prefix in ("awx", "tower") for key, value in values.items()}


def awx_job_env(job_id: int) -> dict[str, str]:
    return {"JOB_ID": str(job_id), "INVENTORY_ID": "1", "PROJECT_REVISION": "0" * 40,
            "ANSIBLE_RETRY_FILES_ENABLED": "False", "MAX_EVENT_RES": "700000", "AWX_HOST": "https://awx.invalid",
            "ANSIBLE_FORCE_COLOR": "True", "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
            # A job whose inventory does not parse fails at once instead of running on no host.
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
            "ANSIBLE_COLLECTIONS_PATH": "/runner/requirements_collections:~/.ansible/collections:"
                                        "/usr/share/ansible/collections"}


def job_from_config(config: Mapping[str, Any], template_name: str, inputs: Mapping[str, Mapping[str, Any]],
                    root: Path, *, repo: Path, inventory: Mapping[str, Any], job_id: int) -> PrivateDataDir:
    """The private data dir AWX would make for one job template of a generated controller configuration.

    ``inputs`` are the final inputs of each credential by name (the configuration's, with the vault
    references filled in, as the dispatch playbook would have sent them to AWX).
    """
    templates = {t["name"]: t for t in config["controller_templates"]}
    if template_name not in templates:
        raise HarnessError(f"no job template {template_name!r}; known: {sorted(templates)}")
    template = templates[template_name]
    credentials = {c["name"]: c for c in config["controller_credentials"]}
    types = {t["name"]: t for t in config["controller_credential_types"]}
    job = PrivateDataDir(root)
    job.add_project(repo, ["ansible.cfg", "playbooks"])
    job.set_inventory(inventory)
    for name in template["credentials"]:
        job.add_credential(types[credentials[name]["credential_type"]], inputs[name])
    job.write({**template.get("extra_vars", {}), **awx_job_vars(job_id, template)}, awx_job_env(job_id))
    return job
