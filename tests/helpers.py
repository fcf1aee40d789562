"""Shared helpers for tests that run Ansible the way users do."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from lab import seed

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COLLECTIONS = REPO / "build" / "collections"


def ansible_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{BIN}:{env.get('PATH', '')}",
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    env.update(extra)
    return env


def run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO,
        timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env or ansible_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


def lab_inventory(tmp_path: Path, lab_services: dict) -> Path:
    """A copy of inventory/lab whose connection facts are the fixtures' services."""
    target = tmp_path / "inventory"
    shutil.copytree(REPO / "inventory" / "lab", target,
                    ignore=shutil.ignore_patterns("lab_services.yml"))
    (target / "group_vars" / "all" / "lab_services.yml").write_text(
        yaml.safe_dump({"lab_services": lab_services}))
    seed.make_lab_logs(tmp_path / "lab-state")  # lab_state_dir of the copy: beside it
    return target


def output_of(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
