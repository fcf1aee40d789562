"""prometheus_conn: the prometheus doc fragment and prometheus_argument_spec() agree; bad URLs and server errors are named."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from ansible.module_utils.basic import env_fallback

from ansible_collections.streamops.maintenance.plugins.doc_fragments.prometheus import ModuleDocFragment
from ansible_collections.streamops.maintenance.plugins.module_utils import prometheus_conn
from ansible_collections.streamops.maintenance.plugins.module_utils.prometheus_conn import (
    PrometheusClient,
    PrometheusError,
    _server_said,
    base_url_of,
    prometheus_argument_spec,
)


def _shape(options):
    return {name: {"type": o.get("type", "str"), "default": o.get("default"), "choices": o.get("choices"),
                   "aliases": sorted(o.get("aliases", []))} for name, o in options.items()}


def test_prometheus_fragment_matches_argument_spec():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert _shape(documented) == _shape(prometheus_argument_spec())


def test_url_falls_back_to_the_environment_and_password_is_no_log():
    spec = prometheus_argument_spec()
    assert spec["url"]["fallback"] == (env_fallback, ["PROMETHEUS_URL"])
    assert spec["password"]["no_log"] is True


@pytest.mark.parametrize("value, expected", [
    ("http://127.0.0.1:9090", "http://127.0.0.1:9090"),
    ("http://127.0.0.1:9090/", "http://127.0.0.1:9090"),
    ("https://prom.example:9090/prometheus/", "https://prom.example:9090/prometheus"),
])
def test_base_url_of(value, expected):
    assert base_url_of(value) == expected


@pytest.mark.parametrize("value, fragment", [
    ("127.0.0.1:9090", "url must be http(s)://host"),
    ("ftp://127.0.0.1:9090", "'ftp://127.0.0.1:9090'"),
    ("http://", "url must be http(s)://host"),
    (None, "got None"),
    ("http://127.0.0.1:9090/?x=1", "must not carry a query"),
    ("http://admin:secret@127.0.0.1:9090", "must not carry credentials"),
])
def test_base_url_of_rejects(value, fragment):
    with pytest.raises(PrometheusError) as info:
        base_url_of(value)
    assert fragment in info.value.msg
    assert "secret" not in info.value.msg


@pytest.mark.parametrize("kwargs, fragment", [
    ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
    ({"password": "x"}, "password is set but username is not"),
])
def test_client_rejects(kwargs, fragment):
    with pytest.raises(PrometheusError, match=fragment):
        PrometheusClient("http://127.0.0.1:9090", **kwargs)


@pytest.mark.parametrize("body, expected", [
    (b'{"status":"error","errorType":"bad_data","error":"invalid parameter"}', "bad_data: invalid parameter"),
    (b'{"status":"error","error":"boom"}', "boom"),
    (b"Lifecycle API is not enabled.\n", "Lifecycle API is not enabled."),
    (b"x" * 400, "x" * 300 + "..."),
])
def test_server_said(body, expected):
    assert _server_said(body) == expected


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def log_message(self, *args):  # noqa: D401 - keep pytest output clean
        return

    def _answer(self):
        _Handler.seen.append({"method": self.command, "path": self.path,
                              "auth": self.headers.get("Authorization")})
        if self.path.startswith("/api/v1/ok"):
            code, body = 200, {"status": "success", "data": {"groups": []}}
        elif self.path.startswith("/api/v1/bad"):
            code, body = 400, {"status": "error", "errorType": "bad_data", "error": "parse error"}
        else:
            code, body = 200, {"status": "error", "error": "odd"}
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = _answer
    do_POST = _answer


@pytest.fixture()
def fake_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.seen.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_client_sends_basic_auth_and_returns_data(fake_server):
    client = PrometheusClient(fake_server, username="ops", password="pw", timeout=5)
    assert client.get_json("/api/v1/ok") == {"groups": []}
    client.post("/api/v1/ok")
    assert [s["method"] for s in _Handler.seen] == ["GET", "POST"]
    assert _Handler.seen[0]["auth"] == "Basic b3BzOnB3"


@pytest.mark.parametrize("path, fragment", [
    ("/api/v1/bad", "HTTP 400: bad_data: parse error"),
    ("/api/v1/odd", ": odd"),
])
def test_client_names_url_and_server_error(fake_server, path, fragment):
    with pytest.raises(PrometheusError) as info:
        PrometheusClient(fake_server, timeout=5).get_json(path)
    assert fragment in info.value.msg
    assert fake_server + path in info.value.msg


def test_locate_promtool_takes_an_executable_given_refuses_another_and_falls_back(tmp_path, monkeypatch):
    tool = tmp_path / "promtool"
    tool.write_text("#!/bin/sh\n")
    with pytest.raises(prometheus_conn.PrometheusError, match=f"promtool {tool} is not an executable file"):
        prometheus_conn.locate_promtool(str(tool))
    tool.chmod(0o755)
    assert prometheus_conn.locate_promtool(str(tool)) == str(tool)
    monkeypatch.setattr(prometheus_conn, "DEBIAN_PROMTOOL", str(tmp_path / "absent"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert prometheus_conn.locate_promtool() == str(tool)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert prometheus_conn.locate_promtool() is None
