# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Prometheus HTTP connection shared by the Prometheus modules; options documented by the ``prometheus`` fragment.

Plain urllib, never a proxy (the server is the one the module was pointed at),
basic auth from a ``no_log`` option, TLS verified against O(ca_cert) when given.
Every failure is a PrometheusError naming the URL and what the server said.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ansible.module_utils.basic import env_fallback

from .errors import MaintenanceError
from .timeouts import timeout_problem

DEFAULT_URL = "http://127.0.0.1:9090"
# Bodies quoted in messages are cut here: an HTML error page must not flood the result.
_BODY_LIMIT = 300


# Debian's `prometheus` package installs promtool here; PATH is the fallback.
DEBIAN_PROMTOOL = "/usr/bin/promtool"


def locate_promtool(explicit: str | None = None) -> str | None:
    """The promtool to run: ``explicit`` (which must be executable), else Debian's, else PATH's, else None."""
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise PrometheusError(msg=f"promtool {explicit} is not an executable file")
        return explicit
    if os.access(DEBIAN_PROMTOOL, os.X_OK):
        return DEBIAN_PROMTOOL
    return shutil.which("promtool")


class PrometheusError(MaintenanceError):
    """The server could not be reached, refused a request or answered something unexpected."""


def prometheus_argument_spec() -> dict[str, Any]:
    """Connection options of every Prometheus module; documented by the ``prometheus`` doc fragment."""
    return dict(
        url=dict(type="str", default=DEFAULT_URL, fallback=(env_fallback, ["PROMETHEUS_URL"])),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        ca_cert=dict(type="path"),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="int", default=30),
    )


def base_url_of(value: Any) -> str:
    """The server's base URL without a trailing slash; PrometheusError for anything but http(s)://host[:port][/path]."""
    text = value if isinstance(value, str) else ""
    try:
        parsed = urllib.parse.urlsplit(text)
    except ValueError as exc:  # an unclosed IPv6 bracket: 'http://[::1'
        raise PrometheusError(msg=f"url must be http(s)://host[:port][/prefix], got {value!r} ({exc})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise PrometheusError(msg=f"url must be http(s)://host[:port][/prefix], got {value!r}")
    if parsed.query or parsed.fragment:
        raise PrometheusError(msg=f"url must not carry a query or fragment, got {value!r}")
    if parsed.username or parsed.password:
        raise PrometheusError(msg="url must not carry credentials: use the username and password options")
    return text.rstrip("/")


def _server_said(body: bytes) -> str:
    """The ``error`` field of a Prometheus API answer, else the start of the body."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and decoded.get("error"):
        kind = decoded.get("errorType")
        return f"{kind}: {decoded['error']}" if kind else str(decoded["error"])
    return text[:_BODY_LIMIT] + ("..." if len(text) > _BODY_LIMIT else "")


class PrometheusClient:
    """A few HTTP calls to one Prometheus server."""

    def __init__(self, url: str, *, username: str | None = None, password: str | None = None,
                 ca_cert: str | None = None, validate_certs: bool = True, timeout: int = 30) -> None:
        self.url = base_url_of(url)
        if timeout <= 0:
            raise PrometheusError(msg=f"timeout must be a positive number of seconds, got {timeout}")
        # 2**63 overflowed the socket timeout: a traceback instead of this message.
        problem = timeout_problem(timeout)
        if problem:
            raise PrometheusError(msg=problem)
        if password is not None and not username:
            raise PrometheusError(msg="password is set but username is not: basic auth needs both")
        self.timeout = timeout
        self._auth: str | None = None
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
            self._auth = f"Basic {token}"
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if self.url.startswith("https://"):
            context = ssl.create_default_context(cafile=ca_cert) if ca_cert else ssl.create_default_context()
            if not validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> PrometheusClient:
        return cls(params["url"], username=params.get("username"), password=params.get("password"),
                   ca_cert=params.get("ca_cert"), validate_certs=params.get("validate_certs", True),
                   timeout=params.get("timeout", 30))

    def request(self, method: str, path: str, params: dict[str, str] | None = None) -> tuple[int, bytes]:
        """(HTTP status, body) of a 2xx answer; PrometheusError naming the URL for anything else."""
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        if self._auth:
            req.add_header("Authorization", self._auth)
        try:
            with self._opener.open(req, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read() if exc.fp is not None else b""
            raise PrometheusError(msg=f"{method} {url}: HTTP {exc.code}: {_server_said(body) or exc.reason}",
                                  url=url, status=exc.code) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(msg=f"Prometheus at {self.url} is unreachable ({method} {url}): {reason}",
                                  url=url) from exc

    def get_text(self, path: str) -> str:
        return self.request("GET", path)[1].decode("utf-8", errors="replace")

    def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        """The ``data`` of an API answer (``{"status": "success", "data": ...}``)."""
        _status, body = self.request("GET", path, params)
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise PrometheusError(msg=f"GET {self.url}{path}: not JSON: {_server_said(body)}",
                                  url=self.url + path) from exc
        if not isinstance(decoded, dict) or decoded.get("status") != "success":
            raise PrometheusError(msg=f"GET {self.url}{path}: {_server_said(body)}", url=self.url + path)
        return decoded.get("data")

    def post(self, path: str, params: dict[str, str] | None = None) -> str:
        return self.request("POST", path, params)[1].decode("utf-8", errors="replace")
