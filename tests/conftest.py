"""Test-wide fixtures: the real-service harness lives in lab/harness."""
from __future__ import annotations

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
