# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The one Kubernetes connection of the collection: its options (the ``kubernetes`` doc fragment) and its client."""

from __future__ import annotations

import json
import traceback
from typing import Any

from ansible.module_utils.basic import env_fallback

from .errors import MaintenanceError
from .timeouts import timeout_problem

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
except ImportError:
    k8s_client = None
    k8s_config = None
    KUBERNETES_IMPORT_ERROR: str | None = traceback.format_exc()

    class ApiException(Exception):  # type: ignore[no-redef]
        status = 0
else:
    KUBERNETES_IMPORT_ERROR = None

DEFAULT_REQUEST_TIMEOUT = 30


class K8sConnectionError(MaintenanceError):
    """The Kubernetes configuration cannot be loaded or the API server cannot be reached."""


def kubernetes_argument_spec() -> dict[str, Any]:
    """Connection options of every module of the ``kubernetes`` action group; documented by the ``kubernetes`` fragment."""
    return dict(
        kubeconfig=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
        context=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
        request_timeout=dict(type="int", default=DEFAULT_REQUEST_TIMEOUT),
    )


def check_request_timeout(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise K8sConnectionError(msg=f"request_timeout must be a whole number of seconds, at least 1, got {value!r}")
    # A huge value (2**63) overflows the socket timeout in urllib3: a traceback instead of this message.
    problem = timeout_problem(value, "request_timeout")
    if problem:
        raise K8sConnectionError(msg=problem)
    return value


def api_client_from(kubeconfig: str | None, context: str | None) -> Any:
    """An ApiClient for the kubeconfig (and context); with neither, the in-cluster account, else the default kubeconfig."""
    if k8s_client is None:
        raise K8sConnectionError(msg="the Python library kubernetes is required")
    try:
        if kubeconfig or context:
            return k8s_config.new_client_from_config(config_file=kubeconfig, context=context)
        try:
            k8s_config.load_incluster_config()
            return k8s_client.ApiClient()
        except k8s_config.ConfigException:
            return k8s_config.new_client_from_config()
    except (k8s_config.ConfigException, OSError) as exc:
        raise K8sConnectionError(
            msg=f"cannot load the Kubernetes configuration ({kubeconfig or 'default'}): {exc}") from exc


def reason_of(exc: ApiException) -> str:
    """The API server's own message of a failed call (its Status body), else the HTTP reason."""
    try:
        return json.loads(exc.body).get("message") or str(exc.reason)
    except (TypeError, ValueError, AttributeError):
        return str(getattr(exc, "reason", exc))
