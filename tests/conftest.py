"""Test-wide fixtures: the real-service harness lives in lab/harness.

Every test that needs the Docker engine or the Kubernetes cluster (itself or through a fixture such as
lab_services) gets the marker ``platform``: make test runs those in the services lane, one at a time on the
lab's single engine and cluster, and every other integration test beside them, in the lane that starts
servers of its own (scripts/run-tests.sh).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest_plugins = [
    "lab.harness.fixtures_acme",
    "lab.harness.fixtures_data",
    "lab.harness.fixtures_docker",
    "lab.harness.fixtures_ee",
    "lab.harness.fixtures_k8s",
    "lab.harness.fixtures_lab",
    "lab.harness.fixtures_notify",
    "lab.harness.fixtures_prometheus",
    "tests.reliability.campaign",
]

# The fixtures behind the engine and the cluster; lab_services, lab_image, ee_image... depend on them, and
# an item's fixturenames holds the whole closure.
PLATFORM_FIXTURES = frozenset({"docker_engine", "k8s_cluster"})
PLATFORM_MARKERS = frozenset({"docker", "k8s", "molecule"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "platform: needs the Docker engine or the Kubernetes cluster (set by "
                                       "tests/conftest.py from the test's fixtures and markers)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        markers = {mark.name for mark in item.iter_markers()}
        if fixtures & PLATFORM_FIXTURES or markers & PLATFORM_MARKERS:
            item.add_marker(pytest.mark.platform)


@pytest.fixture
def http_endpoint() -> Iterator[str]:
    """A loopback HTTP server answering every GET with the body "3" (a count for endpoint_check): its URL."""
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            body = b"3"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
