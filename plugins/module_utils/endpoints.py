# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Does each service answer: a TCP connect, an HTTP GET judged by its status and body. Records out."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ansible.module_utils.parsing.convert_bool import boolean

from .errors import MaintenanceError
from .records import make_record
from .timeouts import timeout_problem

TCP_KEYS = {"name", "host", "port"}
HTTP_KEYS = {"name", "url", "status", "count", "max", "contains"}
BODY_LIMIT = 65536
T = TypeVar("T")


class EndpointError(MaintenanceError):
    """An endpoint given to check is malformed; ``msg`` names it."""


def parse_tcp(raw: Any, position: int) -> dict[str, Any]:
    where = f"tcp[{position}]"
    if not isinstance(raw, Mapping):
        raise EndpointError(msg=f"{where} must be a dict with name, host and port, got {raw!r}")
    unknown = sorted(set(raw) - TCP_KEYS)
    if unknown:
        raise EndpointError(msg=f"{where}: unknown key(s) {', '.join(unknown)}; allowed: name, host, port")
    host, port = raw.get("host"), str(raw.get("port", "")).strip()
    if not isinstance(host, str) or not host.strip():
        raise EndpointError(msg=f"{where}: host {host!r} must be a host name or address")
    if isinstance(raw.get("port"), bool) or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise EndpointError(msg=f"{where}: port {raw.get('port')!r} is not a TCP port (1-65535)")
    return {"name": str(raw.get("name") or f"{host.strip()}:{port}"), "host": host.strip(), "port": int(port)}


def parse_http(raw: Any, position: int) -> dict[str, Any]:
    where = f"http[{position}]"
    if not isinstance(raw, Mapping):
        raise EndpointError(msg=f"{where} must be a dict with name and url, got {raw!r}")
    unknown = sorted(set(raw) - HTTP_KEYS)
    if unknown:
        raise EndpointError(msg=f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(HTTP_KEYS))}")
    url = raw.get("url")
    try:
        parsed = urllib.parse.urlsplit(url if isinstance(url, str) else "")
    except ValueError as exc:  # an unclosed IPv6 bracket: 'http://[::1'
        raise EndpointError(msg=f"{where}: url {url!r} must be an http(s) URL ({exc})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise EndpointError(msg=f"{where}: url {url!r} must be an http(s) URL")
    status = str(raw.get("status", 200)).strip()
    if not status.isdigit() or not 100 <= int(status) <= 599:
        raise EndpointError(msg=f"{where}: status {raw.get('status')!r} is not an HTTP status code")
    limit = raw.get("max")
    if limit is not None and (isinstance(limit, bool) or not str(limit).strip().removeprefix("-").isdecimal()):
        raise EndpointError(msg=f"{where}: max {limit!r} must be a whole number")
    try:
        count = boolean(raw.get("count", False), strict=True)
    except TypeError as exc:
        raise EndpointError(msg=f"{where}: count {raw.get('count')!r} must be true or false") from exc
    return {"name": str(raw.get("name") or url), "url": url, "status": int(status), "count": count,
            "max": None if limit is None else int(limit), "contains": raw.get("contains")}


def tcp_record(check: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    where = f"{check['host']}:{check['port']}"
    started = time.monotonic()
    try:
        with socket.create_connection((check["host"], check["port"]), timeout=timeout):
            pass
    except OSError as exc:
        return make_record(check["name"], "tcp", "breach", f"{where} does not answer: {exc}",
                           seconds=time.monotonic() - started)
    elapsed = time.monotonic() - started
    return make_record(check["name"], "tcp", "ok", f"{where} answers", after={"connect_seconds": round(elapsed, 4)},
                       seconds=elapsed)


def get(url: str, timeout: float, validate_certs: bool, read: Callable[[Any], T]) -> tuple[int, T]:
    """(status, ``read(answer)``) of a GET, an HTTP error status included; OSError when nothing (or not HTTP)
    answered. ``read`` takes the response (or the HTTPError, which is one) and returns what the caller keeps."""
    context = None
    if url.startswith("https:") and not validate_certs:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    # No proxy: a check asks the service itself, never what a proxy variable points at.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(url, timeout=timeout) as response:  # noqa: S310 - the operator's own endpoint
            return response.status, read(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, read(exc)
    except urllib.error.URLError as exc:
        raise OSError(str(exc.reason)) from exc
    except http.client.HTTPException as exc:  # something answered, but not HTTP (a wrong port)
        raise OSError(f"not an HTTP answer: {type(exc).__name__}: {exc}".strip()) from exc


def fetch(url: str, timeout: float, validate_certs: bool) -> tuple[int, str]:
    """(status, body) of a GET, an HTTP error status included; OSError when nothing answered."""
    return get(url, timeout, validate_certs, lambda answer: answer.read(BODY_LIMIT).decode(errors="replace"))


def http_record(check: Mapping[str, Any], timeout: float, validate_certs: bool) -> dict[str, Any]:
    started = time.monotonic()
    try:
        status, body = fetch(check["url"], timeout, validate_certs)
    except OSError as exc:
        return make_record(check["name"], "http", "breach", f"HTTP no answer: {check['url']}: {exc}",
                           seconds=time.monotonic() - started)
    elapsed = time.monotonic() - started
    text = body.strip()
    problems = []
    if status != check["status"]:
        problems.append(f"expected HTTP {check['status']}")
    if check["contains"] is not None and str(check["contains"]) not in body:
        problems.append(f"body does not contain {check['contains']!r}")
    after: dict[str, Any] = {"http_status": status, "request_seconds": round(elapsed, 4)}
    note = ""
    if check["count"] and not problems:
        if not text.isdigit():
            problems.append("not a number")
        else:
            after["count"] = int(text)
            if check["max"] is not None:
                note = f" (max {check['max']})"
                if int(text) > check["max"]:
                    problems.append(f"over max {check['max']}")
    shown = text if len(text) <= 80 else text[:77] + "..."
    detail = f"HTTP {status}: {shown}{note}" + (f" ({'; '.join(problems)})" if problems else "")
    return make_record(check["name"], "http", "breach" if problems else "ok", detail, after=after, seconds=elapsed)


def run_endpoint_check(params: dict[str, Any], *, check_mode: bool = False, diff_mode: bool = False) -> dict[str, Any]:
    """Read-only, so check mode asks the same questions."""
    timeout = params["timeout"]
    problem = timeout_problem(timeout)
    if problem:
        raise EndpointError(msg=problem)
    tcp = [parse_tcp(raw, position) for position, raw in enumerate(params.get("tcp") or [], start=1)]
    http = [parse_http(raw, position) for position, raw in enumerate(params.get("http") or [], start=1)]
    records = [tcp_record(check, timeout) for check in tcp]
    records += [http_record(check, timeout, params["validate_certs"]) for check in http]
    bad = [r["name"] for r in records if r["status"] != "ok"]
    msg = f"{len(records)} endpoint(s) checked" + (f"; not as expected: {', '.join(bad)}" if bad else ", all answer")
    return {"changed": False, "msg": msg, "records": records}
