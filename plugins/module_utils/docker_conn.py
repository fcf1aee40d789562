# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The one way the collection reaches a Docker engine: the options of the ``docker`` doc fragment and a client.

Every module of the ``docker`` action group (meta/runtime.yml) takes these
options, so a play states the engine once (``docker_login``) with module_defaults.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from ansible.module_utils.basic import env_fallback

from .errors import MaintenanceError
from .timeouts import timeout_problem

try:
    import docker
    from docker.errors import DockerException
except ImportError:
    docker = None
    DOCKER_IMPORT_ERROR: str | None = traceback.format_exc()

    class DockerException(Exception):  # type: ignore[no-redef]
        """Stands in so the except clauses below still evaluate without the SDK."""
else:
    DOCKER_IMPORT_ERROR = None

DEFAULT_TIMEOUT = 60


class DockerEngineError(MaintenanceError):
    """The Docker engine cannot be reached or read; ``msg`` names its address."""


def docker_argument_spec() -> dict[str, Any]:
    """Connection options of every Docker module; documented by the ``docker`` doc fragment."""
    return dict(
        docker_host=dict(type="str", fallback=(env_fallback, ["DOCKER_HOST"])),
        timeout=dict(type="int", default=DEFAULT_TIMEOUT),
    )


def engine_name(docker_host: str | None) -> str:
    """The engine's address as an error message should name it."""
    return docker_host or os.environ.get("DOCKER_HOST") or "the default socket"


def docker_client_from(docker_host: str | None, timeout: int = DEFAULT_TIMEOUT) -> Any:
    """A Docker SDK client of the engine at ``docker_host`` (unset: the environment's, then the default socket).

    ``version="auto"`` asks the engine for its API version, so an engine that does not answer
    fails here, with its address, rather than at the first read.
    """
    if docker is None:
        raise DockerEngineError(msg="the Python library docker (Docker SDK for Python) is required",
                                exception=DOCKER_IMPORT_ERROR)
    if docker_host is not None and (not isinstance(docker_host, str) or not docker_host.strip()):
        raise DockerEngineError(msg=f"docker_host {docker_host!r} must be an engine address "
                                    "such as unix:///run/docker.sock")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        raise DockerEngineError(msg=f"timeout {timeout!r} must be a whole number of seconds above 0")
    # 2**63 overflowed the socket timeout, reported as 'cannot reach the Docker engine': not what was wrong.
    problem = timeout_problem(timeout)
    if problem:
        raise DockerEngineError(msg=problem)
    try:
        if docker_host:
            return docker.DockerClient(base_url=docker_host, version="auto", timeout=timeout)
        return docker.from_env(version="auto", timeout=timeout)
    except (DockerException, OSError) as exc:
        raise DockerEngineError(msg=f"cannot reach the Docker engine at {engine_name(docker_host)}: {exc}") from exc
