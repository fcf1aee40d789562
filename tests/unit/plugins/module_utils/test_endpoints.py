"""endpoint_check: endpoint options, TCP connects and HTTP GETs against real listeners on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.endpoints import (
    EndpointError,
    http_record,
    parse_http,
    parse_tcp,
    run_endpoint_check,
    tcp_record,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import endpoint_check

LONG_BODY = "alarm " * 30
PAGES = {  # path: (status, body)
    "/api/alarms/active/count": (200, "3\n"),
    "/api/alarms/active/many": (200, "120"),
    "/health": (200, "OK: ready"),
    "/broken": (500, "internal error"),
    "/long": (200, LONG_BODY),
}


class Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status, body = PAGES.get(self.path, (404, "not found"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 in a thread; yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def listener() -> Iterator[int]:
    """A listening TCP socket on 127.0.0.1 that never accepts (the kernel completes the handshake); its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: bound once by the kernel's choice, then released."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def not_http() -> Iterator[int]:
    """A TCP service that answers a GET with something else than HTTP (as Redis does); its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def answer() -> None:
        conn, _peer = sock.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"-ERR unknown command 'GET'\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    thread.join(5)
    sock.close()


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("raw, expected", [
    pytest.param({"name": "postgresql", "host": "127.0.0.1", "port": 5432},
                 {"name": "postgresql", "host": "127.0.0.1", "port": 5432}, id="int port"),
    pytest.param({"host": " redis-service ", "port": " 6379 "}, {"name": "redis-service:6379",
                                                                 "host": "redis-service", "port": 6379},
                 id="str port, default name"),
    pytest.param({"host": "h", "port": 65535}, {"name": "h:65535", "host": "h", "port": 65535}, id="highest port"),
])
def test_parse_tcp(raw, expected):
    assert parse_tcp(raw, 1) == expected


@pytest.mark.parametrize("raw, msg", [
    pytest.param("postgres-service:5432", "tcp[2] must be a dict with name, host and port, got 'postgres-service:5432'",
                 id="a str"),
    pytest.param({"host": "h", "port": 1, "timeout": 3},
                 "tcp[2]: unknown key(s) timeout; allowed: name, host, port", id="unknown key"),
    pytest.param({"port": 5432}, "tcp[2]: host None must be a host name or address", id="no host"),
    pytest.param({"host": "  ", "port": 5432}, "tcp[2]: host '  ' must be a host name or address", id="blank host"),
    pytest.param({"host": 10, "port": 5432}, "tcp[2]: host 10 must be a host name or address", id="int host"),
    pytest.param({"host": "h"}, "tcp[2]: port None is not a TCP port (1-65535)", id="no port"),
    pytest.param({"host": "h", "port": "postgres"}, "tcp[2]: port 'postgres' is not a TCP port (1-65535)",
                 id="named port"),
    pytest.param({"host": "h", "port": 0}, "tcp[2]: port 0 is not a TCP port (1-65535)", id="port 0"),
    pytest.param({"host": "h", "port": 65536}, "tcp[2]: port 65536 is not a TCP port (1-65535)", id="port 65536"),
    pytest.param({"host": "h", "port": -1}, "tcp[2]: port -1 is not a TCP port (1-65535)", id="negative port"),
    pytest.param({"host": "h", "port": True}, "tcp[2]: port True is not a TCP port (1-65535)", id="bool port"),
    pytest.param({"host": "h", "port": 54.32}, "tcp[2]: port 54.32 is not a TCP port (1-65535)", id="float port"),
])
def test_parse_tcp_rejects(raw, msg):
    with pytest.raises(EndpointError) as caught:
        parse_tcp(raw, 2)
    assert caught.value.msg == msg


@pytest.mark.parametrize("raw, expected", [
    pytest.param({"url": "http://localhost:8081/api/alarms/active/count"},
                 {"name": "http://localhost:8081/api/alarms/active/count",
                  "url": "http://localhost:8081/api/alarms/active/count", "status": 200, "count": False, "max": None,
                  "contains": None}, id="defaults"),
    pytest.param({"name": "alarms", "url": "https://api.example/x", "status": "204", "count": "yes", "max": " 50 ",
                  "contains": "ok"},
                 {"name": "alarms", "url": "https://api.example/x", "status": 204, "count": True, "max": 50,
                  "contains": "ok"}, id="everything as strings"),
    pytest.param({"url": "http://h/", "max": -1, "count": True},
                 {"name": "http://h/", "url": "http://h/", "status": 200, "count": True, "max": -1,
                  "contains": None}, id="negative max"),
])
def test_parse_http(raw, expected):
    assert parse_http(raw, 1) == expected


@pytest.mark.parametrize("raw, msg", [
    pytest.param(["http://h/"], "http[3] must be a dict with name and url, got ['http://h/']", id="a list"),
    pytest.param({"url": "http://h/", "method": "POST"},
                 "http[3]: unknown key(s) method; allowed: contains, count, max, name, status, url", id="unknown key"),
    pytest.param({"name": "x"}, "http[3]: url None must be an http(s) URL", id="no url"),
    pytest.param({"url": "ftp://h/file"}, "http[3]: url 'ftp://h/file' must be an http(s) URL", id="ftp"),
    pytest.param({"url": "localhost:8081/api"}, "http[3]: url 'localhost:8081/api' must be an http(s) URL",
                 id="no scheme"),
    pytest.param({"url": "http:///path"}, "http[3]: url 'http:///path' must be an http(s) URL", id="no host"),
    pytest.param({"url": "http://h/", "status": "2xx"}, "http[3]: status '2xx' is not an HTTP status code",
                 id="status pattern"),
    pytest.param({"url": "http://h/", "status": 99}, "http[3]: status 99 is not an HTTP status code",
                 id="status 99"),
    pytest.param({"url": "http://h/", "status": 600}, "http[3]: status 600 is not an HTTP status code",
                 id="status 600"),
    pytest.param({"url": "http://h/", "max": "many"}, "http[3]: max 'many' must be a whole number", id="max a word"),
    pytest.param({"url": "http://h/", "max": 1.5}, "http[3]: max 1.5 must be a whole number", id="max a float"),
    pytest.param({"url": "http://h/", "max": True}, "http[3]: max True must be a whole number", id="max a bool"),
    pytest.param({"url": "http://h/", "max": ""}, "http[3]: max '' must be a whole number", id="max empty"),
    pytest.param({"url": "http://h/", "max": "--1"}, "http[3]: max '--1' must be a whole number", id="max --1"),
])
def test_parse_http_rejects(raw, msg):
    with pytest.raises(EndpointError) as caught:
        parse_http(raw, 3)
    assert caught.value.msg == msg


# --------------------------------------------------------------------------- real TCP and HTTP


def test_tcp_record_on_a_listening_socket(listener):
    found = tcp_record(parse_tcp({"name": "postgresql", "host": "127.0.0.1", "port": listener}, 1), timeout=2)
    assert (found["name"], found["action"], found["status"]) == ("postgresql", "tcp", "ok")
    assert found["detail"] == f"127.0.0.1:{listener} answers"
    assert set(found["after"]) == {"connect_seconds"} and 0 <= found["after"]["connect_seconds"] < 2


def test_tcp_record_on_a_closed_port(closed_port):
    found = tcp_record(parse_tcp({"name": "redis", "host": "127.0.0.1", "port": closed_port}, 1), timeout=2)
    assert found["status"] == "breach" and found["after"] is None
    assert found["detail"] == f"127.0.0.1:{closed_port} does not answer: [Errno 111] Connection refused"


def http_check(url: str, **options) -> dict:
    return parse_http({"name": "api", "url": url, **options}, 1)


@pytest.mark.parametrize("path, options, status, detail, count", [
    pytest.param("/api/alarms/active/count", {"count": True, "max": 50}, "ok", "HTTP 200: 3 (max 50)", 3,
                 id="a number under max"),
    pytest.param("/api/alarms/active/count", {"count": True, "max": 3}, "ok", "HTTP 200: 3 (max 3)", 3,
                 id="a number at max"),
    pytest.param("/api/alarms/active/many", {"count": True, "max": 50}, "breach",
                 "HTTP 200: 120 (max 50) (over max 50)", 120, id="a number over max"),
    pytest.param("/api/alarms/active/many", {"count": True}, "ok", "HTTP 200: 120", 120, id="count without max"),
    pytest.param("/health", {"count": True}, "breach", "HTTP 200: OK: ready (not a number)", None, id="not a number"),
    pytest.param("/health", {}, "ok", "HTTP 200: OK: ready", None, id="plain 200"),
    pytest.param("/health", {"contains": "ready"}, "ok", "HTTP 200: OK: ready", None, id="contains"),
    pytest.param("/health", {"contains": "healthy"}, "breach",
                 "HTTP 200: OK: ready (body does not contain 'healthy')", None, id="does not contain"),
    pytest.param("/broken", {}, "breach", "HTTP 500: internal error (expected HTTP 200)", None, id="a 500"),
    pytest.param("/broken", {"status": 500, "contains": "error"}, "ok", "HTTP 500: internal error", None,
                 id="a 500 expected"),
    pytest.param("/broken", {"count": True, "max": 1, "contains": "nope"}, "breach",
                 "HTTP 500: internal error (expected HTTP 200; body does not contain 'nope')", None,
                 id="count not judged on a wrong answer"),
    pytest.param("/nowhere", {}, "breach", "HTTP 404: not found (expected HTTP 200)", None, id="a 404"),
    pytest.param("/long", {}, "ok", f"HTTP 200: {LONG_BODY.strip()[:77]}...", None, id="long body shortened"),
])
def test_http_record_on_a_real_server(server, path, options, status, detail, count):
    found = http_record(http_check(server + path, **options), timeout=5, validate_certs=True)
    assert (found["name"], found["action"], found["status"], found["detail"]) == ("api", "http", status, detail)
    expected_keys = {"http_status", "request_seconds"} | ({"count"} if count is not None else set())
    assert set(found["after"]) == expected_keys
    assert found.get("after", {}).get("count") == count
    assert found["after"]["http_status"] == int(detail.split()[1].rstrip(":"))


def test_http_record_with_no_answer(closed_port):
    url = f"http://127.0.0.1:{closed_port}/health"
    found = http_record(http_check(url), timeout=2, validate_certs=True)
    assert found["status"] == "breach" and found["after"] is None
    assert found["detail"] == f"HTTP no answer: {url}: [Errno 111] Connection refused"


def test_http_record_when_nothing_answers_in_time(listener):
    url = f"http://127.0.0.1:{listener}/health"
    found = http_record(http_check(url), timeout=0.3, validate_certs=True)
    assert found["status"] == "breach"
    assert found["detail"] == f"HTTP no answer: {url}: timed out"
    assert found["seconds"] >= 0.3


def test_http_record_when_the_port_speaks_another_protocol(not_http):
    url = f"http://127.0.0.1:{not_http}/"
    found = http_record(http_check(url), timeout=2, validate_certs=True)
    assert found["status"] == "breach"
    assert found["detail"] == f"HTTP no answer: {url}: not an HTTP answer: BadStatusLine: -ERR unknown command 'GET'"


def test_a_proxy_in_the_environment_is_not_used(server, monkeypatch):
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:1")
    # urllib's default would send the request to the proxy, which does not answer: the variable is in effect.
    # (A fresh opener: urlopen() would keep this proxy in its process-wide opener, for every later test.)
    with pytest.raises(urllib.error.URLError):
        urllib.request.build_opener().open(server + "/health", timeout=2)  # noqa: S310 - our own server
    found = http_record(http_check(server + "/health"), timeout=2, validate_certs=True)
    assert (found["status"], found["detail"]) == ("ok", "HTTP 200: OK: ready")


# --------------------------------------------------------------------------- run_endpoint_check and main()


def test_run_endpoint_check_end_to_end(server, listener, closed_port):
    params = {"timeout": 2, "validate_certs": True,
              "tcp": [{"name": "postgresql", "host": "127.0.0.1", "port": listener},
                      {"name": "redis", "host": "127.0.0.1", "port": closed_port}],
              "http": [{"name": "active alarms API", "url": server + "/api/alarms/active/count", "count": True,
                        "max": 50},
                       {"name": "health", "url": server + "/health", "contains": "ready"}]}
    for check_mode in (False, True):
        result = run_endpoint_check(params, check_mode=check_mode)
        assert result_problems(result, check_mode=check_mode) == []
        assert result["changed"] is False
        assert result["msg"] == "4 endpoint(s) checked; not as expected: redis"
        assert [(r["name"], r["action"], r["status"]) for r in result["records"]] == [
            ("postgresql", "tcp", "ok"), ("redis", "tcp", "breach"), ("active alarms API", "http", "ok"),
            ("health", "http", "ok")]
        assert result["records"][2]["after"]["count"] == 3


def test_run_endpoint_check_all_answer(server):
    result = run_endpoint_check({"timeout": 2, "validate_certs": True, "tcp": None,
                                 "http": [{"url": server + "/health"}]})
    assert result["msg"] == "1 endpoint(s) checked, all answer"
    assert result_problems(result) == []


@pytest.mark.parametrize("params, msg", [
    pytest.param({"timeout": 0}, "timeout must be above 0 seconds, got 0", id="timeout 0"),
    pytest.param({"timeout": -1.5}, "timeout must be above 0 seconds, got -1.5", id="negative timeout"),
    pytest.param({"http": [{"url": "http://h/"}, {"url": "h/"}]}, "http[2]: url 'h/' must be an http(s) URL",
                 id="the second endpoint is bad"),
    pytest.param({"tcp": [{"host": "h", "port": 99999}]}, "tcp[1]: port 99999 is not a TCP port (1-65535)",
                 id="a bad port"),
])
def test_run_endpoint_check_fails_on_bad_input(params, msg):
    full = {"timeout": 2, "validate_certs": True, "tcp": [], "http": []} | params
    with pytest.raises(EndpointError) as caught:
        run_endpoint_check(full)
    assert caught.value.msg == msg


def test_main_as_ansible_runs_it(server, listener, capsys):
    args = {"tcp": [{"name": "postgresql", "host": "127.0.0.1", "port": listener}],
            "http": [{"name": "health", "url": server + "/broken"}], "_ansible_check_mode": True}
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        endpoint_check.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == 0, result
    assert result["msg"] == "2 endpoint(s) checked; not as expected: health"
    assert result_problems(result, check_mode=True) == []

    with patch_module_args({"http": [{"url": "gopher://h/"}]}), pytest.raises(SystemExit) as exited:
        endpoint_check.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == 1
    assert result["msg"] == "http[1]: url 'gopher://h/' must be an http(s) URL"
