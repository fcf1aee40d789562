"""A loopback HTTP(S) proxy that forwards to one upstream (moto, pebble, Prometheus) and injects faults by rule.

The reliability campaign (tests/reliability) puts it between a module and a real service, so a fault
happens at a real point of the work: the second part of a multipart upload, the CompleteMultipartUpload
POST, the ACME finalize, the Prometheus reload. Each rule matches by method and a regular expression over
the request target (path and query), fires on its ``nth`` match and then ``times`` times (``None``: on every
match from then on), and answers with one of ``ACTIONS``:

- ``500`` / ``503``: that status with an S3 XML error body (``InternalError`` / ``ServiceUnavailable``);
- ``slowdown``: 503 with ``<Code>SlowDown</Code>``, S3's throttling answer;
- ``hang``: the request is read and never answered (the client's read timeout fires); the connection is
  closed when the proxy stops or after ``hang_seconds``;
- ``drop``: the request is read and the connection closed without an answer (a broken connection);
- ``forward_drop``: the request reaches the upstream, and its answer is thrown away (the connection breaks);
- ``forward``: forwarded as any request (with ``before``, a point to act at, e.g. stop the upstream).

``before`` (a callable) runs when the rule fires, before the action: e.g. stop pebble when the finalize
arrives. The proxy keeps the ``Host`` header, so a server that builds its URLs from it (pebble) hands out
the proxy's URLs, and a signed request (SigV4) still matches its signature. Every request is logged in
``requests`` (method, target, what was done). Listens on 127.0.0.1 only.
"""
from __future__ import annotations

import http.client
import re
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from .base import LOOPBACK

ACTIONS = ("500", "503", "slowdown", "hang", "drop", "forward_drop", "forward")
# Headers of one connection (RFC 9110 7.6.1), never forwarded; Expect: the proxy already answered 100-continue.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "expect", "content-length"}
S3_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailable", "Please reduce your request rate."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
}


@dataclass
class FaultRule:
    """Fire ``action`` on the ``nth`` request matching ``method`` and ``target`` (a regex), then ``times`` times."""

    action: str
    method: str | None = None
    target: str | None = None
    nth: int = 1
    times: int | None = 1
    before: Callable[[], None] | None = None
    matched: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; one of {ACTIONS}")

    def fires(self, method: str, target: str) -> bool:
        """Counts a matching request; True when this one is to get the fault."""
        if self.method and method.upper() != self.method.upper():
            return False
        if self.target and not re.search(self.target, target):
            return False
        self.matched += 1
        if self.matched < self.nth or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


@dataclass
class Seen:
    method: str
    target: str
    action: str


@dataclass
class FaultProxy:
    """``FaultProxy(upstream).start()``; ``url`` is the proxy's base URL. ``tls``: (cert, key) files to serve
    HTTPS with, read on every connection (a restarted upstream may come with a new certificate)."""

    upstream: str
    tls: tuple[Path, Path] | None = None
    hang_seconds: float = 30.0
    upstream_timeout: float = 30.0
    rules: list[FaultRule] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.upstream)
        if parsed.hostname not in (LOOPBACK, "localhost", "::1"):
            raise ValueError(f"upstream {self.upstream} is not on loopback")
        self._upstream = parsed
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ rules

    def add(self, action: str, *, method: str | None = None, target: str | None = None, nth: int = 1,
            times: int | None = 1, before: Callable[[], None] | None = None) -> FaultRule:
        rule = FaultRule(action, method=method, target=target, nth=nth, times=times, before=before)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Healthy again: every rule gone, hung requests released."""
        with self._lock:
            self.rules.clear()
        self._released.set()
        self._released = threading.Event()

    def decide(self, method: str, target: str) -> FaultRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.fires(method, target):
                    return rule
        return None

    def seen(self, action: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.requests if action is None or s.action == action]

    # ------------------------------------------------------------------ server

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.port}"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        server = _Server((LOOPBACK, 0), Handler)
        server.tls = self.tls
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ forwarding

    def forward(self, method: str, target: str, headers: list[tuple[str, str]],
                body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """The upstream's answer (status, reason, headers, body)."""
        up = self._upstream
        port = up.port or (443 if up.scheme == "https" else 80)
        if up.scheme == "https":
            # The upstream is the test's own server on loopback with a throwaway CA: which one it is matters, not trust.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                up.hostname, port, timeout=self.upstream_timeout, context=context)
        else:
            conn = http.client.HTTPConnection(up.hostname, port, timeout=self.upstream_timeout)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            if body or method.upper() in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.reason, response.getheaders(), data
        finally:
            conn.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls: tuple[Path, Path] | None = None

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            sock = context.wrap_socket(sock, server_side=True)
        return sock, address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers: dropped with the chunking
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self) -> None:
        proxy = self.owner
        method, target = self.command, self.path
        body = self.read_body()
        rule = proxy.decide(method, target)
        action = rule.action if rule else "forward"
        with proxy._lock:
            proxy.requests.append(Seen(method, target, action))
        if rule is not None and rule.before is not None:
            rule.before()
        if action in S3_ERRORS:
            status, code, message = S3_ERRORS[action]
            self.answer(status, [("Content-Type", "application/xml")],
                        (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}'
                         f"</Message><RequestId>streamops-fault-proxy</RequestId></Error>").encode())
            return
        if action == "hang":
            proxy._released.wait(proxy.hang_seconds)
            self.close_connection = True
            return
        if action == "drop":
            self.close_connection = True
            return
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        try:
            status, _reason, answer_headers, data = proxy.forward(method, target, headers, body)
        except OSError:
            # The upstream is gone (stopped, refusing): the client sees what it would see, a broken connection.
            self.close_connection = True
            return
        if action == "forward_drop":
            self.close_connection = True
            return
        # send_response writes its own Server and Date.
        kept = [(k, v) for k, v in answer_headers if k.lower() not in HOP_BY_HOP | {"server", "date"}]
        self.answer(status, kept, data,
                    length=next((v for k, v in answer_headers if k.lower() == "content-length"), None))

    def answer(self, status: int, headers: list[tuple[str, str]], body: bytes, *, length: str | None = None) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        # HEAD answers carry the length of what a GET would send, and no body.
        self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_any  # noqa: N815 - http.server's names


__all__ = ["ACTIONS", "FaultProxy", "FaultRule"]
