"""The collection's Prometheus rule files pass `promtool check rules`, and their unit tests pass `promtool test rules`.

Every shipped rule file has a test file in tests/prometheus, and every alert in it is
tested (an `alert_rule_test` names it).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.harness.promtool import check_rules, run_rule_tests
from tests.helpers import REPO

pytestmark = pytest.mark.static

RULE_FILES = sorted((REPO / "roles" / "monitoring" / "files" / "prometheus").glob("*.rules.yml"))
TEST_FILES = sorted((REPO / "tests" / "prometheus").glob("*.test.yml"))


def test_rule_files_are_shipped():
    assert {p.name for p in RULE_FILES} >= {"stream_systems.rules.yml", "vitalstream.rules.yml"}


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path):
    ok, output = check_rules(path)
    assert ok, output


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(path: Path):
    # promtool resolves rule_files relative to the test file's directory.
    ok, output = run_rule_tests(path)
    assert ok, output


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_alert_has_a_unit_test(path: Path):
    test_file = REPO / "tests" / "prometheus" / path.name.replace(".rules.yml", ".test.yml")
    assert test_file.exists(), f"{path.name} has no promtool unit tests ({test_file} missing)"
    tests = yaml.safe_load(test_file.read_text())
    assert any(Path(r).name == path.name for r in tests["rule_files"]), f"{test_file.name} does not load {path.name}"
    tested = {case["alertname"] for t in tests["tests"] for case in t.get("alert_rule_test", [])}
    alerts = {r["alert"] for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"] if "alert" in r}
    assert alerts - tested == set(), f"alerts without a promtool test: {sorted(alerts - tested)}"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_alert_has_severity_and_description(path: Path):
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["labels"].get("severity") in {"warning", "critical"}, rule["alert"]
                assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
