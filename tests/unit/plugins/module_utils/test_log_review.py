"""What logrotate did (read from the real /usr/sbin/logrotate's output) and error line counts of service logs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.log_review import (
    error_count_record,
    logrotate_records,
    nothing_read_record,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import make_record, result_problems

LOGROTATE = "/usr/sbin/logrotate"

pytestmark = pytest.mark.skipif(not os.access(LOGROTATE, os.X_OK), reason="Debian's logrotate is not installed")


def logrotate(tmp_path: Path, *flags: str, last_rotated: str | None, logs=("api.log", "worker.log"),
              missing: tuple[str, ...] = ()) -> tuple[str, int, list[str]]:
    """Run the real logrotate on a daily config of tmp_path/logs with its own state file: (config, rc, lines).

    ``last_rotated`` is the state file's date for every log (None: no state file, so logrotate takes now).
    """
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir(exist_ok=True)
    for log in logs:
        (logs_dir / log).write_text("2026-01-11T02:00:00 INFO started\n")
    config = tmp_path / "vitalstream.conf"
    paths = [str(logs_dir / log) for log in (*logs, *missing)]
    config.write_text(" ".join(paths) + " {\n    daily\n    rotate 3\n    create\n    nocompress\n}\n")
    state = tmp_path / "logrotate.status"
    if last_rotated is not None:
        state.write_text("logrotate state -- version 2\n"
                         + "".join(f'"{logs_dir / log}" {last_rotated}\n' for log in logs))
    run = subprocess.run([LOGROTATE, *flags, "--state", str(state), str(config)],
                         capture_output=True, text=True, timeout=60, check=False)
    # The role's filter reads stderr_lines + stdout_lines of the registered command result.
    return str(config), run.returncode, run.stderr.splitlines() + run.stdout.splitlines()


LONG_AGO = "2020-1-1-0:0:0"


@pytest.mark.parametrize("flags, last_rotated, check_mode, forced, status, verb, rotated_on_disk", [
    pytest.param(["--verbose"], LONG_AGO, False, False, "done", "rotated", True, id="verbose: rotated"),
    pytest.param(["--verbose", "--force"], None, False, True, "done", "rotated", True, id="verbose: forced"),
    pytest.param(["--debug"], LONG_AGO, True, False, "planned", "would rotate", False, id="debug: would rotate"),
    pytest.param(["--debug", "--force"], None, True, True, "planned", "would rotate", False,
                 id="debug: forced, would rotate"),
])
def test_logrotate_that_rotates(tmp_path, flags, last_rotated, check_mode, forced, status, verb, rotated_on_disk):
    config, rc, lines = logrotate(tmp_path, *flags, last_rotated=last_rotated)
    assert rc == 0, lines
    logs = [str(tmp_path / "logs" / "api.log"), str(tmp_path / "logs" / "worker.log")]
    assert any(line.startswith(f"rotating log {logs[0]}, log->rotateCount is 3") for line in lines)
    found = logrotate_records(config, rc, lines, check_mode=check_mode, forced=forced)
    note = " (forced)" if forced else ""
    assert found == [make_record(config, "logrotate", status, f"{verb} 2 of 2 log(s): {', '.join(logs)}{note}",
                                 after={"considered": 2, "rotated": logs})]
    assert (tmp_path / "logs" / "api.log.1").exists() is rotated_on_disk
    assert result_problems({"changed": True, "msg": "", "records": found}, check_mode=check_mode) == []


@pytest.mark.parametrize("flags, check_mode", [
    pytest.param(["--verbose"], False, id="verbose"),
    pytest.param(["--debug"], True, id="debug"),
])
def test_logrotate_with_nothing_to_rotate(tmp_path, flags, check_mode):
    # Without a state entry logrotate takes now as the last rotation: a daily log does not need rotating.
    config, rc, lines = logrotate(tmp_path, *flags, last_rotated=None)
    assert rc == 0, lines
    assert sum("log does not need rotating" in line for line in lines) == 2
    found = logrotate_records(config, rc, lines, check_mode=check_mode)
    assert found == [make_record(config, "logrotate", "unchanged", "2 log(s) considered, none needed rotating",
                                 after={"considered": 2, "rotated": []})]
    assert result_problems({"changed": False, "msg": "", "records": found}, check_mode=check_mode) == []


def test_logrotate_second_run_is_unchanged(tmp_path):
    config, rc, lines = logrotate(tmp_path, "--verbose", last_rotated=LONG_AGO)
    assert logrotate_records(config, rc, lines, check_mode=False)[0]["status"] == "done"
    run = subprocess.run([LOGROTATE, "--verbose", "--state", str(tmp_path / "logrotate.status"), config],
                         capture_output=True, text=True, timeout=60, check=False)
    [again] = logrotate_records(config, run.returncode, run.stderr.splitlines(), check_mode=False)
    assert again["status"] == "unchanged", run.stderr


def test_logrotate_that_fails_names_the_error(tmp_path):
    # A log named without missingok that does not exist: logrotate 3.21 says so and exits 1.
    config, rc, lines = logrotate(tmp_path, "--verbose", last_rotated=LONG_AGO, missing=("gone.log",))
    assert rc == 1, lines
    [found] = logrotate_records(config, rc, lines, check_mode=False)
    missing = tmp_path / "logs" / "gone.log"
    assert found["status"] == "failed"
    assert found["detail"] == f"logrotate exited 1: error: stat of {missing} failed: No such file or directory"


@pytest.mark.parametrize("rc, lines, detail", [
    pytest.param(1, ["reading config file /etc/logrotate.d/app", "error: /etc/logrotate.d/app:2 unknown option "
                     "'bogus' -- ignoring line", "Handling 1 logs", "error: stat of /var/log/app.log failed"],
                 "logrotate exited 1: error: /etc/logrotate.d/app:2 unknown option 'bogus' -- ignoring line / "
                 "error: stat of /var/log/app.log failed", id="every error line"),
    pytest.param(3, ["a", "b", "c", "d"], "logrotate exited 3: b / c / d", id="no error line: the last three"),
    pytest.param(1, [], "logrotate exited 1: ", id="no output"),
    pytest.param(1, ["error: " + "x" * 400], "logrotate exited 1: error: " + "x" * 293, id="cut at 300"),
])
def test_logrotate_failed_detail(rc, lines, detail):
    for check_mode in (False, True):
        assert logrotate_records("/etc/logrotate.d/app", rc, lines, check_mode=check_mode) == [
            make_record("/etc/logrotate.d/app", "logrotate", "failed", detail)]


LOG = ["2026-01-11T02:00:01 INFO started", "2026-01-11T02:00:02 ERROR db timeout",
       "2026-01-11T02:00:03 ERROR db timeout", "2026-01-11T02:00:04 WARN slow", "2026-01-11T02:00:05 FATAL gone"]


@pytest.mark.parametrize("lines, pattern, limit, error, expected", [
    pytest.param(LOG, "ERROR|FATAL", 5, None, make_record(
        "service api (vitalstream-api-1)", "errors", "ok", "3 error line(s) of 5 in the last 24h (limit 5)",
        after={"errors": 3, "lines": 5}), id="under the limit"),
    pytest.param(LOG, "ERROR|FATAL", 3, None, make_record(
        "service api (vitalstream-api-1)", "errors", "ok", "3 error line(s) of 5 in the last 24h (limit 3)",
        after={"errors": 3, "lines": 5}), id="at the limit"),
    pytest.param(LOG, "ERROR|FATAL", 2, None, make_record(
        "service api (vitalstream-api-1)", "errors", "breach", "3 error line(s) of 5 in the last 24h (limit 2)",
        after={"errors": 3, "lines": 5}), id="over the limit"),
    pytest.param(LOG, "ERROR|FATAL", 0, None, make_record(
        "service api (vitalstream-api-1)", "errors", "breach", "3 error line(s) of 5 in the last 24h (limit 0)",
        after={"errors": 3, "lines": 5}), id="limit 0"),
    pytest.param(LOG, "(?i)error", None, None, make_record(
        "service api (vitalstream-api-1)", "errors", "ok", "2 error line(s) of 5 in the last 24h (no limit)",
        after={"errors": 2, "lines": 5}), id="no limit"),
    pytest.param(None, "ERROR", 1, None, make_record(
        "service api (vitalstream-api-1)", "errors", "ok", "0 error line(s) of 0 in the last 24h (limit 1)",
        after={"errors": 0, "lines": 0}), id="empty log"),
    pytest.param(None, "ERROR", 1, "Error response from daemon: No such container: 3f2a\n", make_record(
        "service api (vitalstream-api-1)", "errors", "failed",
        "could not read the log: Error response from daemon: No such container: 3f2a"), id="an error"),
    pytest.param(LOG, "(ERROR", 1, "daemon down", make_record(
        "service api (vitalstream-api-1)", "errors", "failed", "could not read the log: daemon down"),
        id="an error before the pattern is looked at"),
])
def test_error_count_record(lines, pattern, limit, error, expected):
    assert error_count_record("service api (vitalstream-api-1)", lines, pattern=pattern, hours=24, limit=limit,
                              error=error) == expected


@pytest.mark.parametrize("pattern, why", [
    ("(ERROR", "missing ), unterminated subpattern at position 0"),
    ("*ERROR", "nothing to repeat at position 0"),
    ("[E", "unterminated character set at position 0"),
])
def test_error_count_record_names_a_bad_pattern(pattern, why):
    with pytest.raises(ValueError) as caught:
        error_count_record("pod api-1", LOG, pattern=pattern, hours=24, limit=None)
    assert str(caught.value) == f"error pattern {pattern!r} is not a regular expression: {why}"


def test_nothing_read_is_unknown_not_clean():
    found = nothing_read_record("compose vitalstream", "containers")
    assert found == make_record("compose vitalstream", "errors", "unknown",
                                "no containers to read logs from: no error count")
    assert result_problems({"changed": False, "msg": "", "records": [found]}) == []
