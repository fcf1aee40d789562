"""Debian's promtool, for checking and unit-testing the collection's Prometheus rules."""
from __future__ import annotations

import subprocess
from pathlib import Path

from .base import HarnessError
from .docker_engine import find_binary


def find_promtool() -> str:
    """Path of Debian's promtool, or HarnessError naming the package that ships it."""
    return find_binary("promtool", "prometheus")


def _promtool(*args: str, timeout: float = 60) -> tuple[bool, str]:
    argv = [find_promtool(), *args]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"{' '.join(argv)} did not finish within {timeout:.0f}s") from exc
    return result.returncode == 0, result.stdout + result.stderr


def check_rules(path: str | Path) -> tuple[bool, str]:
    """``promtool check rules PATH``: (whether the rules file is valid, promtool's output)."""
    return _promtool("check", "rules", str(path))


def run_rule_tests(path: str | Path) -> tuple[bool, str]:
    """``promtool test rules PATH`` (a rule unit-test file): (all tests passed, output)."""
    return _promtool("test", "rules", str(path))
