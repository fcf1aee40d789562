# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The compose blue/green driver's state file: the deploy history and the keep times, one JSON object."""

from __future__ import annotations

import json
from typing import Any

from .blue_green import DeployError
from .compose_files import read_text, write_text


class StateFile:
    """``{"history": [...], "kept": {colour: until}}`` in ``path``; every read goes to the file, every write is atomic."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self) -> dict[str, Any]:
        text = read_text(self.path)
        if text is None:
            return {"history": [], "kept": {}}
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DeployError(msg=f"state file {self.path} is not JSON ({exc}); move it away to start "
                                  "a new history") from exc
        if not isinstance(data, dict):
            raise DeployError(msg=f"state file {self.path} does not hold a JSON object")
        history = data.get("history")
        kept = data.get("kept")
        return {"history": history if isinstance(history, list) else [],
                "kept": kept if isinstance(kept, dict) else {}}

    def write(self, state: dict[str, Any]) -> None:
        # A new state file is 0600 (it names who deployed and why); an existing one keeps its mode.
        write_text(self.path, json.dumps(state, indent=1, sort_keys=True) + "\n")

    def history(self) -> list[dict[str, Any]]:
        return self.read()["history"]

    def save_history(self, entries: list[dict[str, Any]]) -> None:
        state = self.read()
        state["history"] = list(entries)
        self.write(state)

    def kept(self) -> dict[str, str | None]:
        return self.read()["kept"]

    def mark_kept(self, colour: str, until: str | None) -> None:
        state = self.read()
        state["kept"][colour] = until
        self.write(state)

    def forget_kept(self, colour: str) -> None:
        state = self.read()
        if colour in state["kept"]:
            del state["kept"][colour]
            self.write(state)


__all__ = ["StateFile"]
