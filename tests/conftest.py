"""Test-wide fixtures: the real-service harness lives in lab/harness.

Every test that needs the Docker engine or the Kubernetes cluster (itself or through a fixture such as
lab_services) gets the marker ``platform``: make test runs those in the services lane, one at a time on the
lab's single engine and cluster, and every other integration test beside them, in the lane that starts
servers of its own (scripts/run-tests.sh).
"""
from __future__ import annotations

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
