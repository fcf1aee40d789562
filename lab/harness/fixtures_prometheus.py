"""pytest fixtures for Prometheus: a private server per test (it starts in about a second)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .prometheus import PrometheusServer


@pytest.fixture()
def prometheus_server(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A started Prometheus on 127.0.0.1 scraping itself every second, rules from ``rules_dir/*.yml``."""
    server = PrometheusServer(tmp_path / "prometheus")
    server.start()
    try:
        yield server
    finally:
        server.stop()
