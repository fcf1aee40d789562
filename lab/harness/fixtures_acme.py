"""pytest plugin: a TLS nginx (ACME webroot over HTTP, certificate files over TLS) and pebble behind it.

Register with ``pytest_plugins = ["lab.harness.fixtures_acme"]``; tests that use it are marked ``acme``.
Both run on 127.0.0.1 only, one pair per test (pebble keeps state in memory and starts in a second),
and are stopped afterwards, also when the test fails.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .acme import PebbleServer
from .tls_nginx import TlsNginx

# Issued certificates live 60 days: renewal is due for the harness's first (5-day) certificate under the
# default threshold of 30 days, and not due any more once renewed.
PEBBLE_VALIDITY_SECONDS = 60 * 86400


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "acme: needs the ACME harness (pebble + pebble-challtestsrv + a TLS nginx)")


@dataclass
class AcmeLab:
    nginx: TlsNginx
    pebble: PebbleServer
    root: Path

    def facts(self) -> dict:
        return {**self.nginx.facts(), **self.pebble.facts()}


@pytest.fixture
def tls_nginx(tmp_path: Path) -> Iterator[TlsNginx]:
    with TlsNginx(tmp_path / "nginx") as nginx:
        yield nginx


@pytest.fixture
def acme_lab(tmp_path: Path, tls_nginx: TlsNginx) -> Iterator[AcmeLab]:
    with PebbleServer(tmp_path / "pebble", http_port=tls_nginx.http_port,
                      validity_seconds=PEBBLE_VALIDITY_SECONDS) as pebble:
        yield AcmeLab(nginx=tls_nginx, pebble=pebble, root=tmp_path)
