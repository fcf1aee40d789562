# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""File helpers of the compose blue/green driver's parts: checked paths, reads and atomic writes as DeployError."""

from __future__ import annotations

import os
from typing import Any

from .blue_green import DeployError
from .files import write_atomically


def absolute(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or not os.path.isabs(value):
        raise DeployError(msg=f"{what} {value!r} must be an absolute path")
    return os.path.normpath(value)


def read_text(path: str) -> str | None:
    """The file's content, None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployError(msg=f"cannot read {path}: {exc}") from exc


def write_text(path: str, text: str, mode: int | None = None) -> None:
    """Readers see the old content or the new one, never a part (files.write_atomically)."""
    try:
        write_atomically(path, text, mode)
    except OSError as exc:
        raise DeployError(msg=f"cannot write {path}: {exc}") from exc


def mode_of(path: str, default: int) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return default


__all__ = ["absolute", "mode_of", "read_text", "write_text"]
