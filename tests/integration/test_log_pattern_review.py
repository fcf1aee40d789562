"""log_pattern_review on real log files: VitalStream's auth.log (syslog stamps, numbered rotation, gzip) and
security.log (ISO stamps, dateext rotation), an nginx access log, a missing log and an unreadable one, through the
module's main() as Ansible runs it. Exactly the planted findings are reported, secrets never."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.log_pattern_review import run_log_pattern_review
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import log_pattern_review

NOW = "2026-12-06T10:46:36Z"  # the window is 2026-12-05T10:46:36Z .. NOW
SECRET = "hunter2-Secret"


def run_as_nobody(work):
    """``work()``'s JSON result, computed in a forked child that runs as nobody (no exec: the code is loaded)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(writer, json.dumps(work()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as stream:
        output = stream.read()
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    return json.loads(output)


def run_main(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        log_pattern_review.main()
    result = json.loads(capsys.readouterr().out)
    result.pop("invocation", None)
    return result


def write(path: Path, lines, *, compress=False):
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.fixture
def vitalstream_logs(tmp_path):
    logs = tmp_path / "vitalstream"
    logs.mkdir()
    # auth.log: syslog stamps (no year), logrotate's numbered rotation with delaycompress.
    write(logs / "auth.log.3.gz", [  # older than the window, and .2.gz starts before it: never opened
        "Dec  1 08:00:00 web1 sshd[100]: Failed password for root from 198.51.100.1 port 40000 ssh2"] * 50,
        compress=True)
    write(logs / "auth.log.2.gz", [
        "Dec  4 23:00:00 web1 sshd[200]: Failed password for root from 198.51.100.2 port 40001 ssh2",  # before
        "Dec  5 10:50:00 web1 sshd[201]: Failed password for invalid user admin from 203.0.113.5 port 40002 ssh2",
    ], compress=True)
    write(logs / "auth.log.1", [
        "Dec  5 11:00:00 web1 sshd[300]: Accepted publickey for deploy from 10.0.0.5 port 50000 ssh2",
        "Dec  5 18:30:00 web1 sshd[301]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
        "tty=ssh ruser= rhost=203.0.113.6  user=root",
        "Dec  5 23:59:59 web1 CRON[302]: pam_unix(cron:session): session opened for user root",
    ])
    write(logs / "auth.log", [
        "Dec  6 00:00:01 web1 CRON[400]: pam_unix(cron:session): session closed for user root",
        "Dec  6 08:15:00 web1 sshd[401]: Failed password for invalid user test from 203.0.113.7 port 40100 ssh2",
        f"Dec  6 09:41:17 web1 vitalstream-api[402]: Failed password for nurse1 password={SECRET} via /login",
        "Dec  6 10:00:00 web1 sshd[403]: Accepted publickey for deploy from 10.0.0.5 port 50001 ssh2",
        "Failed password continuation line without a stamp",
        "Dec  6 11:30:00 web1 sshd[404]: Failed password for root (after NOW: not counted)",
    ])
    # security.log: ISO stamps, dateext rotation.
    write(logs / "security.log-20261201.gz", [
        "2026-12-01T03:00:00Z WARN XSS payload in /search, blocked"] * 10, compress=True)
    write(logs / "security.log-20261205.gz", [
        "2026-12-05T09:00:00Z WARN SQL injection attempt in /patients?id=1%27, blocked",  # before the window
        "2026-12-05T21:12:00+01:00 WARN SQL injection attempt in /patients?id=2%27 token=abc123, blocked",
    ], compress=True)
    write(logs / "security.log", [
        "2026-12-06T01:00:00Z INFO login ok user=nurse1",
        "2026-12-06T07:07:07.123456Z WARN XSS payload in /notes Authorization: Bearer eyJzZWNyZXQ.payload",
        "2026-12-06T08:00:00Z INFO CSRF check passed",  # matches CSRF too: the pattern is the guide's
    ])
    write(logs / "access.log", [
        '203.0.113.9 - - [06/Dec/2026:10:00:00 +0000] "GET /wp-admin/ HTTP/1.1" 404 0 "-" "curl"',
        '10.0.0.5 - - [06/Dec/2026:10:01:00 +0000] "GET /api/vitals HTTP/1.1" 200 512 "-" "app"',
    ])
    return logs


def review(logs, check_mode, **args):
    return {"now": NOW, "_ansible_check_mode": check_mode, **args}


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check-mode"])
def test_vitalstream_access_log_review(vitalstream_logs, check_mode, capsys):
    logs = vitalstream_logs
    auth = run_main(review(logs, check_mode, files=[str(logs / "auth.log"), str(logs / "missing.log")],
                           timestamp={"format": "syslog"},
                           patterns=[{"name": "failed_logins", "regex": "Failed password|authentication failure",
                                      "max": 2}]), capsys)
    security = run_main(review(logs, check_mode, files=[str(logs / "security.log")],
                               patterns=[{"name": "injection_markers", "regex": "SQL injection|XSS|CSRF"}]), capsys)
    access = run_main(review(logs, check_mode, files=[str(logs / "access.log")], timestamp={"format": "nginx"},
                             patterns=[{"name": "admin_probes", "regex": r'"GET /(?:wp-admin|phpmyadmin)',
                                        "max": 100}]), capsys)
    for result in (auth, security, access):
        assert result_problems(result, check_mode=check_mode) == [], result
        assert result["changed"] is False
    statuses = {record["name"]: record["status"] for result in (auth, security, access) for record in result["records"]}
    assert statuses == {
        f"{logs}/auth.log failed_logins": "breach",
        f"{logs}/missing.log failed_logins": "unknown",
        f"{logs}/security.log injection_markers": "breach",
        f"{logs}/access.log admin_probes": "ok",
    }

    failed, missing = auth["records"]
    after = failed["after"]
    assert after["count"] == 4 and after["unparsed"] == 1 and after["max"] == 2
    assert after["files_read"] == [f"{logs}/auth.log.2.gz", f"{logs}/auth.log.1", f"{logs}/auth.log"]
    assert after["files_skipped"] == [f"{logs}/auth.log.3.gz"]
    assert after["lines_read"] == 2 + 3 + 6
    assert (after["first_seen"], after["last_seen"]) == ("2026-12-05T10:50:00+00:00", "2026-12-06T09:41:17+00:00")
    assert after["newest"][-1] == ("Dec  6 09:41:17 web1 vitalstream-api[402]: Failed password for nurse1 "
                                   "password=<redacted> via /login")
    assert len(after["newest"]) == 4 and after["remedy"]
    assert missing["after"]["count"] is None and "no such file" in missing["detail"] and missing["after"]["remedy"]

    (markers,) = security["records"]
    assert markers["after"]["count"] == 3
    assert markers["after"]["files_read"] == [f"{logs}/security.log-20261205.gz", f"{logs}/security.log"]
    assert markers["after"]["files_skipped"] == [f"{logs}/security.log-20261201.gz"]
    assert markers["after"]["newest"] == [
        "2026-12-05T21:12:00+01:00 WARN SQL injection attempt in /patients?id=2%27 token=<redacted>, blocked",
        "2026-12-06T07:07:07.123456Z WARN XSS payload in /notes Authorization: Bearer <redacted>",
        "2026-12-06T08:00:00Z INFO CSRF check passed",
    ]
    assert access["records"][0]["after"]["count"] == 1

    text = json.dumps([auth, security, access])
    assert SECRET not in text and "abc123" not in text and "eyJzZWNyZXQ" not in text


def test_a_log_the_review_may_not_read_is_failed(tmp_path, capsys):
    args = {"files": [], "patterns": [{"name": "failed_logins", "regex": "Failed password"}], "now": NOW}
    if os.geteuid() != 0:
        log = tmp_path / "auth.log"
        write(log, ["2026-12-06T09:00:00Z Failed password"])
        log.chmod(0)
        result = run_main({**args, "files": [str(log)]}, capsys)
    else:
        # root reads any file: a forked child drops to nobody (65534) and reviews a root-only file.
        directory = Path(tempfile.mkdtemp(prefix="log-review-"))
        try:
            directory.chmod(0o755)
            log = directory / "auth.log"
            write(log, ["2026-12-06T09:00:00Z Failed password"])
            log.chmod(0o600)
            result = run_as_nobody(lambda: run_log_pattern_review({**args, "files": [str(log)]}))
        finally:
            for path in directory.iterdir():
                path.unlink()
            directory.rmdir()
    assert result_problems(result) == []
    (record,) = result["records"]
    assert record["status"] == "failed" and "Permission denied" in record["detail"], record
    assert record["after"]["remedy"]
