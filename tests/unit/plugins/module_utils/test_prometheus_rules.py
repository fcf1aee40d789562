"""prometheus_rules: input checks name the bad value; the server's answers become the right records."""

from __future__ import annotations

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.prometheus_rules import (
    RulesError,
    alerts_record,
    check_name,
    group_names,
    group_record,
    missing_groups,
    parse_time,
    promtool_check,
    promtool_error,
    reload_status_record,
    rule_names,
    short_diff,
    validate,
    wanted_contents,
)
from ansible_collections.streamops.maintenance.plugins.modules.prometheus_rules import argument_spec

RULES = b"groups:\n- name: g1\n  rules:\n  - alert: A\n    expr: up == 0\n  - record: job:up:sum\n    expr: sum(up)\n"


def params(**overrides):
    base = {name: spec.get("default") for name, spec in argument_spec().items()}
    base.update(overrides)
    return base


@pytest.mark.parametrize("name", ["a.yml", "stream_systems.rules.yml", "x.yaml", "v1-a@b+c.yml"])
def test_check_name_accepts(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["a.yml.tmp", ".hidden.yml", "dir/a.yml", "../a.yml", "a.json", "", None, "a b.yml"])
def test_check_name_rejects(name):
    with pytest.raises(RulesError, match="must be a plain file name"):
        check_name(name)


@pytest.mark.parametrize("overrides, fragment", [
    ({"rule_files": []}, "operation deploy needs rule_files"),
    ({"rule_files": [{"name": "a.yml", "src": None, "content": None}]}, "'a.yml' needs exactly one of src or content"),
    ({"rule_files": [{"name": "a.yml", "src": "/x", "content": "y"}]}, "'a.yml' needs exactly one of src or content"),
    ({"rule_files": [{"name": "a.yml", "src": None, "content": "y"}] * 2}, "names 'a.yml' twice"),
    ({"rule_files": [{"name": "a/b.yml", "src": None, "content": "y"}]}, "'a/b.yml' must be a plain file name"),
    ({"rules_dir": None}, "needs rules_dir"),
    ({"rules_dir": "relative/rules"}, "must be an absolute path, got 'relative/rules'"),
    ({"rules_dir": "/nonexistent/rules"}, "rules_dir /nonexistent/rules does not exist"),
    ({"reload": "sighup"}, "reload sighup needs pid_file"),
    ({"reload": "sighup", "pid_file": "/nonexistent.pid"}, "cannot read pid_file /nonexistent.pid"),
    ({"promtool": "/nonexistent/promtool"}, "promtool /nonexistent/promtool is not an executable file"),
])
def test_validate_rejects(tmp_path, overrides, fragment):
    args = params(rule_files=[{"name": "a.yml", "src": None, "content": "groups: []"}], rules_dir=str(tmp_path))
    args.update(overrides)
    with pytest.raises(RulesError) as info:
        validate(args)
    assert fragment in info.value.msg


@pytest.mark.parametrize("text, fragment", [("", "does not hold a process id"), ("abc", "(found 'abc')"),
                                            ("999999999", "no process 999999999")])
def test_validate_rejects_bad_pid_files(tmp_path, text, fragment):
    pid_file = tmp_path / "p.pid"
    pid_file.write_text(text)
    args = params(rule_files=[{"name": "a.yml", "src": None, "content": "x"}], rules_dir=str(tmp_path),
                  reload="sighup", pid_file=str(pid_file))
    with pytest.raises(RulesError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        validate(args)


def test_validate_status_rejects_an_empty_expected_group():
    with pytest.raises(RulesError, match="expected_groups has an empty group name"):
        validate(params(operation="status", expected_groups=["a", " "]))


def test_group_and_rule_names():
    assert group_names(RULES) == ["g1"]
    assert rule_names(RULES) == {"g1": ["A", "job:up:sum"]}


@pytest.mark.parametrize("content", [b"", b"[1, 2]", b"groups: 3", b"groups: [\n", b"\x00\xff"])
def test_group_names_of_a_file_that_is_not_rules(content):
    assert group_names(content) == []
    assert rule_names(content) == {}


def test_promtool_check_names_the_file_not_the_temp_copy():
    ok, output = promtool_check("/usr/bin/promtool", "bad.yml", b"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up ==\n")
    assert not ok
    assert "bad.yml" in output and "streamops-rules-" not in output
    assert "parse error" in promtool_error(output)
    assert promtool_check("/usr/bin/promtool", "good.yml", RULES)[0]


@pytest.mark.parametrize("value, expected", [
    ("2026-12-06T14:19:43Z", 1796566783.0),
    ("2026-12-06T14:19:43.008971619Z", 1796566783.008971),
    ("2026-12-06T15:19:43+01:00", 1796566783.0),
    ("0001-01-01T00:00:00Z", -62135596800.0),
    ("", None), (None, None), ("yesterday", None),
])
def test_parse_time(value, expected):
    assert parse_time(value) == (pytest.approx(expected) if expected is not None else None)


def _group(name, file, rules):
    return {"name": name, "file": file, "rules": [{"name": r} for r in rules]}


@pytest.mark.parametrize("groups, missing", [
    ([_group("g1", "/r/a.yml", ["A", "B"])], []),
    ([], ["a.yml: g1"]),
    ([_group("g1", "/other/a.yml", ["A", "B"])], ["a.yml: g1"]),
    ([_group("g1", "/r/a.yml", ["A"])], ["a.yml: g1 (loaded rules ['A'], want ['A', 'B'])"]),
])
def test_missing_groups(groups, missing):
    assert missing_groups(groups, {"/r/a.yml": {"g1": ["A", "B"]}}) == missing


@pytest.mark.parametrize("rules, status, fragment", [
    ([{"name": "A", "health": "ok"}], "ok", "1 rule(s) evaluate without error"),
    ([{"name": "A", "health": "err", "lastError": "found duplicate series for the match group"}], "breach",
     "A: found duplicate series for the match group"),
    ([{"name": "A", "health": "unknown"}], "unknown", "not evaluated yet: A"),
])
def test_group_record(rules, status, fragment):
    record = group_record({"name": "g", "file": "/r/a.yml", "rules": rules})
    assert (record["name"], record["status"]) == ("g (a.yml)", status)
    assert fragment in record["detail"]


@pytest.mark.parametrize("success, status", [(True, "ok"), (False, "breach"), (None, "unknown")])
def test_reload_status_record(success, status):
    record = reload_status_record("prometheus x", {"reload_config_success": success, "last_config_time": "t",
                                                   "last_config_epoch": 0})
    assert record["status"] == status


def test_alerts_record_counts_firing_as_information():
    alerts = [{"state": "firing", "labels": {"alertname": "B"}}, {"state": "firing", "labels": {"alertname": "A"}},
              {"state": "pending", "labels": {"alertname": "C"}}]
    record = alerts_record("prometheus x", alerts)
    assert record["status"] == "ok"
    assert record["after"] == {"firing": 2, "pending": 1, "firing_alerts": ["A", "B"]}


@pytest.mark.parametrize("before, after, expected", [
    (None, b"a\n", "new file"),
    (b"a\nb\n", b"a\nc\n", "2 line(s) differ: -b; +c"),
    (b"a\nb", b"a\nb\n", "only the line endings or the final newline differ"),
])
def test_short_diff(before, after, expected):
    assert short_diff(before, after) == expected


@pytest.mark.parametrize(("content", "written"), [
    # What the file lookup gives: the file without its final newline.
    ("groups: []", b"groups: []\n"),
    ("groups: []\n", b"groups: []\n"),
    ("", b""),
])
def test_content_is_written_ending_in_one_newline_as_a_file_would(content, written):
    assert wanted_contents([{"name": "a.yml", "content": content}]) == {"a.yml": written}
