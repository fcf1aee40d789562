# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Typed exceptions of the collection; each module turns them into fail_json(msg=...) in main()."""

from __future__ import annotations

from typing import Any


class MaintenanceError(Exception):
    """Base error: ``msg`` is what the user reads, ``details`` become extra keys of the failed result."""

    def __init__(self, *, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details: dict[str, Any] = details


class WindowError(MaintenanceError):
    """A maintenance window, blackout, duration or emergency approval is invalid."""


class WindowClosedError(WindowError):
    """Disruptive work may not start now; ``details`` holds the window status (next opening, reason)."""
