"""pytest plugin: a real Docker engine, the lab base image, the VitalStream compose app, promtool.

Register with ``pytest_plugins = ["lab.harness.fixtures_docker"]`` (tests/conftest.py)
or ``pytest -p lab.harness.fixtures_docker``. Every fixture tears down in a
``finally``, so a failing test still leaves no container, and no dockerd we started.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from .compose_app import ComposeApp
from .docker_engine import DockerEngine
from .promtool import find_promtool


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "docker: needs a real Docker engine (started by the harness when none answers)")


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """The Docker engine on the default socket; started (and stopped at session end) if none answered."""
    engine = DockerEngine(tmp_path_factory.mktemp("docker-engine"))
    try:
        # Inside the try: a start that fails half-way must still be cleaned up.
        engine.ensure()
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def lab_image(docker_engine: DockerEngine) -> str:
    """Reference of the local busybox base image (imported once, cached in the engine)."""
    return docker_engine.base_image()


@pytest.fixture
def compose_app(request: pytest.FixtureRequest, docker_engine: DockerEngine, lab_image: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeApp]:
    """The VitalStream compose project, up for one test under a unique project name, then down."""
    # Test name in the project name: a leftover container says which test made it.
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30] or "test"
    app = ComposeApp(docker_engine, lab_image, project=f"vs-{slug}-{uuid.uuid4().hex[:6]}",
                     state_dir=tmp_path_factory.mktemp("compose"))
    try:
        app.up()
        yield app
    finally:
        app.down()


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of Debian's promtool (HarnessError naming the `prometheus` package if absent)."""
    return find_promtool()
