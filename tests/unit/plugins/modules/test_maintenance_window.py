"""The module as Ansible runs it: main() with module args, JSON on stdout, docs that render."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import maintenance_window

ROOT = Path(__file__).resolve().parents[4]
COLLECTIONS = ROOT / "build" / "collections"
BIN = Path(sys.executable).parent

WEEKLY = {"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h"}
BASE = {"windows": [WEEKLY], "timezone": "America/New_York"}
APPROVAL = {"approved_by": "alice", "reason": "disk 95% full", "ticket": "INC-4711"}


def run_main(args, capsys):
    """(exit code, result) of main() with these module args."""
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        maintenance_window.main()
    return exited.value.code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "extra, code, expected",
    [
        pytest.param(
            {"now": "2026-01-11T07:30:00Z"}, 0,
            {"allowed": True, "mode": "window", "name": "weekly", "seconds_left": 5400}, id="inside",
        ),
        pytest.param(
            {"now": "2026-01-11T07:30:00Z", "_ansible_check_mode": True}, 0,
            {"allowed": True, "mode": "window", "end": "2026-01-11T04:00:00-05:00"}, id="check-mode-same-answer",
        ),
        pytest.param(
            {"now": "2026-01-07T12:00:00Z"}, 0,
            {"allowed": False, "mode": "denied", "next_start": "2026-01-11T02:00:00-05:00"}, id="outside-reports",
        ),
        pytest.param(
            {"now": "2026-01-11T08:30:00Z", "cutoff": "15m", "estimated_duration": "45m"}, 0,
            {"allowed": False, "required_seconds": 2700, "seconds_left": 1800}, id="estimate-does-not-fit",
        ),
        pytest.param(
            {"now": "2026-01-07T12:00:00Z", "emergency": APPROVAL, "enforce": True}, 0,
            {"allowed": True, "mode": "emergency", "emergency": APPROVAL}, id="emergency",
        ),
        pytest.param(
            {"now": "2026-01-11T07:30:00Z", "blackouts": ["2026-01-11"]}, 0,
            {"allowed": False, "blackout": {
                "start": "2026-01-11T00:00:00-05:00", "end": "2026-01-12T00:00:00-05:00",
                "reason": None, "timezone": "America/New_York",
            }}, id="blackout",
        ),
    ],
)
def test_main_reports(extra, code, expected, capsys):
    exit_code, result = run_main(dict(BASE, **extra), capsys)
    assert exit_code == code
    assert result["changed"] is False
    assert not result.get("failed")
    assert {key: result["window"][key] for key in expected} == expected
    assert result_problems(result) == []
    assert result["records"][0]["status"] == "ok"


def test_main_enforce_fails_with_next_window(capsys):
    exit_code, result = run_main(dict(BASE, now="2026-01-07T12:00:00Z", enforce=True), capsys)
    assert exit_code == 1
    assert result["failed"] is True
    assert result["msg"] == (
        "maintenance work not allowed at 2026-01-07T12:00:00+00:00: outside all maintenance windows; "
        "next usable window 'weekly' opens 2026-01-11T02:00:00-05:00 (in 3d 19h)"
    )
    assert result["window"]["next_start"] == "2026-01-11T02:00:00-05:00"
    assert result["window"]["seconds_until_next"] == 327600
    assert [(r["name"], r["status"]) for r in result["records"]] == [("window", "breach")]


@pytest.mark.parametrize(
    "args, fragment",
    [
        pytest.param(dict(BASE, timezone="Mars/Olympus"), "unknown timezone 'Mars/Olympus'", id="timezone"),
        pytest.param(
            {"windows": [dict(WEEKLY, rrule="FREQ=SOMETIMES")]}, "window 'weekly': rrule 'FREQ=SOMETIMES'", id="rrule",
        ),
        pytest.param(dict(BASE, now="2026-01-07T12:00:00"), "has no UTC offset", id="naive-now"),
        pytest.param(dict(BASE, cutoff="soon"), "cutoff 'soon' is not a duration", id="cutoff"),
        pytest.param(dict(BASE, window="nightly"), "unknown window 'nightly'; known windows: 'weekly'", id="window"),
        pytest.param(
            dict(BASE, emergency={"reason": "disk", "ticket": "INC-1"}, now="2026-01-11T07:30:00Z"),
            "approved_by missing", id="emergency-without-approver",
        ),
    ],
)
def test_main_bad_input_fails_cleanly(args, fragment, capsys):
    exit_code, result = run_main(args, capsys)
    assert exit_code == 1
    assert result["failed"] is True
    assert fragment in result["msg"]
    assert "exception" not in result  # a message, never a traceback


def test_return_documentation_matches_result_keys(capsys):
    _exit_code, result = run_main(dict(BASE, now="2026-01-11T07:30:00Z"), capsys)
    documented = set(yaml.safe_load(maintenance_window.RETURN))
    ansible_keys = {"invocation"}
    assert set(result) - ansible_keys == documented


def test_examples_and_documentation_are_yaml():
    doc = yaml.safe_load(maintenance_window.DOCUMENTATION)
    assert {"cutoff", "estimated_duration", "enforce"} <= set(doc["options"])
    assert set(doc["options"]) | {"windows", "window", "blackouts", "timezone", "emergency", "now"} == set(
        maintenance_window.argument_spec()
    )
    assert all(task["streamops.maintenance.maintenance_window"] for task in yaml.safe_load(maintenance_window.EXAMPLES))


def _ansible_env(tmp_path):
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n")  # not the repo's: its callbacks are not under test here
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS))
    env["ANSIBLE_LOCAL_TEMP"] = str(tmp_path / "tmp")
    env["ANSIBLE_HOME"] = str(tmp_path / "home")
    return env


def test_ansible_doc_renders(tmp_path):
    completed = subprocess.run(
        [str(BIN / "ansible-doc"), "--json", "streamops.maintenance.maintenance_window"],
        capture_output=True, text=True, env=_ansible_env(tmp_path), timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    doc = json.loads(completed.stdout)["streamops.maintenance.maintenance_window"]["doc"]
    assert {"windows", "window", "blackouts", "timezone", "emergency", "now", "cutoff"} <= set(doc["options"])
    assert doc["attributes"]["check_mode"]["support"] == "full"
    assert doc["attributes"]["idempotent"]["description"]


@pytest.mark.ansible
def test_module_runs_through_ansible(tmp_path):
    """AnsiballZ packs the module with its module_utils and runs it as a task would."""
    args = dict(BASE, now="2026-01-07T12:00:00Z", enforce=True)
    completed = subprocess.run(
        [
            str(BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={sys.executable}",
            "-m", "streamops.maintenance.maintenance_window", "-a", json.dumps(args),
        ],
        capture_output=True, text=True, env=_ansible_env(tmp_path), timeout=300, check=False,
    )
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "next usable window 'weekly' opens 2026-01-11T02:00:00-05:00" in completed.stdout
