"""pytest plugin: the collection's execution environment image, built on the test Docker engine.

Register with ``pytest_plugins = ["lab.harness.fixtures_ee"]`` (tests/conftest.py).
``ee_image`` runs the same build as ``make ee`` (lab/ee): cold it takes a few
minutes (debootstrap, wheels, .debs, every layer), so a test that is the first
to ask for it needs a long ``pytest.mark.timeout``; warm it costs the
collection tarball, ``ansible-builder create`` and a content hash (seconds),
plus the layers after the collection when the collection changed.
"""
from __future__ import annotations

import pytest

from ..ee.image import build_image
from .docker_engine import DockerEngine


def _say(message: str) -> None:
    # Captured by pytest; shown with the test's output when something fails.
    print(f"ee: {message}", flush=True)


@pytest.fixture(scope="session")
def ee_image(docker_engine: DockerEngine) -> str:
    """Reference (``streamops-maintenance-ee:<version>-<content hash>``) of the EE image for this checkout."""
    return build_image(docker_engine, _say)
