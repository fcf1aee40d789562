# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Blue/green on docker compose: projects ``<app>-blue``/``<app>-green`` behind an nginx upstream file.

ComposePlatform is the flow's Platform made of three parts, each in its own file:
the compose projects (compose_project: compose CLI, containers, readiness), the
nginx front (compose_nginx: which colour the upstream file names, the switch by a
tested graceful reload) and the state file beside the project (compose_state:
history and keep times).
"""

from __future__ import annotations

import os
import re
from typing import Any

from .blue_green import COLOURS, ColourState, DeployError, check_image_tag
from .compose_files import absolute
from .compose_nginx import LOOPBACK, NginxFront, nginx_problem
from .compose_project import DOCKER_IMPORT_ERROR, ComposeProject
from .compose_state import StateFile

# Compose normalises other project names (case, characters); the label
# filters only find the containers when the name is already normal.
APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def ports_of(ports: Any) -> dict[str, int]:
    if not isinstance(ports, dict):
        raise DeployError(msg=f"compose ports must be a dict like {{blue: 8081, green: 8082}}, got {ports!r}")
    if set(ports) != set(COLOURS):
        raise DeployError(msg=f"compose ports must name exactly blue and green, got {sorted(map(str, ports))}")
    checked = {}
    for colour in COLOURS:
        value = ports[colour]
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= 65535:
            raise DeployError(msg=f"compose ports.{colour} {value!r} is not a TCP port (1-65535)")
        checked[colour] = int(text)
    if checked["blue"] == checked["green"]:
        raise DeployError(msg=f"compose ports.blue and ports.green are both {checked['blue']}: each colour "
                              "needs its own port")
    return checked


class ComposePlatform:
    kind = "compose"

    def __init__(self, *, app: str, project_dir: str, compose_file: str | None, image: str, ports: dict[str, int],
                 nginx_upstream_file: str, nginx_conf: str, nginx_binary: str = "nginx", front_url: str,
                 docker_host: str | None = None, state_file: str | None = None,
                 ready_timeout_poll: float = 0.2, service: str | None = None) -> None:
        if not isinstance(app, str) or not APP_NAME.match(app):
            raise DeployError(msg=f"app {app!r} cannot name compose projects and an nginx upstream: use "
                                  "lowercase letters, digits, '-' and '_', starting with a letter or digit")
        self.app = app
        self.ports = ports_of(ports)
        self.compose = ComposeProject(app=app, project_dir=project_dir, compose_file=compose_file, image=image,
                                      ports=self.ports, docker_host=docker_host, poll=ready_timeout_poll,
                                      service=service)
        self.front = NginxFront(app=app, ports=self.ports, upstream_file=nginx_upstream_file, conf=nginx_conf,
                                binary=nginx_binary, front_url=front_url)
        default_state = os.path.join(self.compose.project_dir, f".streamops-blue-green-{app}.json")
        self.state = StateFile(absolute(state_file, "compose state_file") if state_file else default_state)

    # ----------------------------------------------------------------- the Platform protocol

    def colours(self) -> dict[str, ColourState]:
        kept = self.state.kept()
        return {colour: self.compose.state(colour, kept.get(colour)) for colour in COLOURS}

    def active(self) -> str | None:
        return self.front.active()

    def plan(self, colour: str, version: str, spec: dict[str, Any] | None = None) -> list[str]:
        return [self.compose.plan(colour, version, spec), self.front.plan(colour)]

    def deploy(self, colour: str, version: str, spec: dict[str, Any] | None = None) -> None:
        check_image_tag(version, "version")
        self.compose.up(colour, version, spec or {})
        # A fresh deploy is nobody's kept previous version.
        self.state.forget_kept(colour)

    def wait_ready(self, colour: str, version: str, timeout: float) -> None:
        self.compose.wait_ready(colour, version, timeout)

    def targets(self, colour: str) -> list[str]:
        return [f"http://{LOOPBACK}:{self.ports[colour]}"]

    def front_targets(self) -> list[str]:
        return [self.front.front_url]

    def switch(self, colour: str) -> None:
        self.front.switch(colour)

    def history(self) -> list[dict[str, Any]]:
        return self.state.history()

    def save_history(self, entries: list[dict[str, Any]]) -> None:
        self.state.save_history(entries)

    def mark_kept(self, colour: str, until: str | None) -> None:
        self.state.mark_kept(colour, until)

    def retire(self, colour: str) -> None:
        self.compose.stop(colour)
        self.state.forget_kept(colour)


__all__ = ["ComposePlatform", "DOCKER_IMPORT_ERROR", "nginx_problem", "ports_of"]
