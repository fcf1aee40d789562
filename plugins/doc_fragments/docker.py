# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Paired with plugins/module_utils/docker_conn.py docker_argument_spec(); a unit test keeps them equal.

from __future__ import annotations


class ModuleDocFragment:
    # The options of the `docker` action group; a play passes them once as `docker_login`.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - Address of the Docker engine, for example V(unix:///var/run/docker.sock) or V(tcp://127.0.0.1:2375).
      - When unset, E(DOCKER_HOST) is used, then the Docker SDK's default (the local socket, with
        E(DOCKER_TLS_VERIFY) and E(DOCKER_CERT_PATH) honoured).
      - An engine that does not answer fails the task with a message naming this address.
    type: str
  timeout:
    description:
      - Seconds to wait for each answer of the engine's API.
    type: int
    default: 60
requirements:
  - docker (Docker SDK for Python) >= 7.0
"""
