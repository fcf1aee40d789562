"""Paths, caches, locks and subprocess helpers shared by the execution-environment build."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import yaml

from ..harness.base import HarnessError, cache_dir

REPO = Path(__file__).resolve().parents[2]
EE_FILE = REPO / "execution-environment.yml"
CONSTRAINTS_FILE = REPO / "constraints-test.txt"
GALAXY_FILE = REPO / "galaxy.yml"
# Everything generated inside the checkout (git-ignored with build/). The
# offline directories and the tarball are execution-environment.yml's
# additional_build_files, so their paths are fixed relative to it.
BUILD_DIR = REPO / "build" / "ee"
OFFLINE_DIR = BUILD_DIR / "offline"
TARBALL = BUILD_DIR / "collection" / "streamops-maintenance.tar.gz"
CONTEXT_DIR = BUILD_DIR / "context"
# One build of build/ee at a time per checkout (staging, create, docker build).
BUILD_LOCK = BUILD_DIR / ".lock"
DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Progress = Callable[[str], None]


def cache_root() -> Path:
    """``$STREAMOPS_EE_CACHE``, else ``$XDG_CACHE_HOME``/``~/.cache`` + streamops-maintenance/ee."""
    return cache_dir("ee", "STREAMOPS_EE_CACHE")


def load_ee_definition(path: Path = EE_FILE) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise HarnessError(f"cannot read the execution environment definition {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != 3:
        raise HarnessError(f"{path} is not an ansible-builder schema version 3 definition")
    return data


def galaxy_version(path: Path = GALAXY_FILE) -> str:
    data = yaml.safe_load(path.read_text())
    version = data.get("version") if isinstance(data, dict) else None
    if not version:
        raise HarnessError(f"{path} has no version")
    return str(version)


def venv_tool(name: str, package: str) -> str:
    """A console script of this Python's environment (the venv), else from PATH."""
    beside = Path(sys.executable).parent / name
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise HarnessError(f"`{name}` not found: install the Python package `{package}` "
                           "(it is in requirements-test.txt: `make venv`)")
    return found


def system_tool(name: str, package: str) -> str:
    """A Debian command, or HarnessError naming the apt package that ships it."""
    found = shutil.which(name, path=DEBIAN_PATH)
    if found is None:
        raise HarnessError(f"`{name}` not found: install the Debian package `{package}` "
                           f"(apt-get install {package})")
    return found


def run(argv: Sequence[str], *, what: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float | None = None, log: Path | None = None) -> str:
    """Run ``argv``; its stdout, or HarnessError naming ``what`` with the end of its output.

    With ``log``, output goes to that file (long, chatty commands) and only its
    tail appears in the error.
    """
    try:
        if log is None:
            result = subprocess.run(  # noqa: S603 - argv list, no shell
                list(argv), cwd=cwd, env=env, timeout=timeout, capture_output=True, text=True,
                stdin=subprocess.DEVNULL, check=False)
            output, stdout = result.stderr.strip() or result.stdout.strip(), result.stdout
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "wb") as out:
                result = subprocess.run(  # noqa: S603 - argv list, no shell
                    list(argv), cwd=cwd, env=env, timeout=timeout, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, check=False)
            output, stdout = f"(log: {log})\n" + tail(log, 30), ""
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"{what} did not finish within {timeout:.0f}s") from exc
    if result.returncode != 0:
        last = "\n".join(output.splitlines()[-30:])
        raise HarnessError(f"{what} failed (exit {result.returncode}):\n{last}")
    return stdout


def tail(log: Path, lines: int) -> str:
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


class Timings:
    """Wall time of each step of a build, printed as it ends and summed up at the end."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.steps: list[tuple[str, float]] = []

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        seconds = time.monotonic() - started
        self.steps.append((name, seconds))
        self.progress(f"  {name}: {seconds:.1f}s")

    def summary(self) -> str:
        parts = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.steps)
        return f"{parts}; total {sum(s for _n, s in self.steps):.1f}s"


def link_or_copy(source: Path, target: Path) -> None:
    """Hard link (the cache and the checkout usually share a file system), else copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
