"""log_pattern_review: options refused with their value, literals a pattern needs, timestamps, rotation order,
block reading, redaction, and the records of small logs."""

from __future__ import annotations

import datetime
import gzip
import io
import os

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.log_pattern_review import (
    LogFile,
    LogReviewError,
    StampParser,
    parse_iso8601,
    read_blocks,
    redact,
    parse_redactions,
    required_literals,
    rotated_files,
    run_log_pattern_review,
    shown_line,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems

NOW = datetime.datetime(2026, 12, 6, 10, 46, 36, tzinfo=datetime.timezone.utc)
UTC = datetime.timezone.utc
FAILED = {"name": "failed_logins", "regex": "Failed password|authentication failure"}


def params(**overrides):
    return {"files": ["/nonexistent/auth.log"], "patterns": [FAILED], "now": "2026-12-06T10:46:36Z", **overrides}


@pytest.mark.parametrize("overrides, message", [
    pytest.param({"patterns": [{"name": "x", "regex": "Failed (password"}]},
                 "patterns[0] (x): regex 'Failed (password' does not compile", id="regex does not compile"),
    pytest.param({"patterns": [{"name": "x", "regex": "SQL injection|XSS|"}]},
                 "regex 'SQL injection|XSS|' matches an empty line", id="regex matches every line"),
    pytest.param({"patterns": [{"name": "x", "regex": "a"}, {"name": "x", "regex": "b"}]},
                 "pattern names must be unique, repeated: x", id="duplicate pattern name"),
    pytest.param({"patterns": [{"name": "x", "regex": "a", "max": -1}]},
                 "patterns[0] (x): max -1 must be a whole number", id="negative max"),
    pytest.param({"patterns": [{"name": "x", "regex": "a", "limit": 1}]},
                 "patterns[0]: unknown key(s) limit", id="unknown pattern key"),
    pytest.param({"patterns": []}, "patterns must be a non-empty list", id="no patterns"),
    pytest.param({"hours": 0}, "hours must be above 0, got 0", id="hours zero"),
    pytest.param({"hours": -3}, "hours must be above 0, got -3", id="hours negative"),
    pytest.param({"newest_lines": -1}, "newest_lines must be at least 0, got -1", id="newest_lines negative"),
    pytest.param({"line_max_chars": 0}, "line_max_chars must be at least 1, got 0", id="line_max_chars zero"),
    pytest.param({"timestamp": {"format": "rfc9999"}},
                 "timestamp.format 'rfc9999' is neither a preset (common-log, iso8601, nginx, syslog)",
                 id="unknown preset"),
    pytest.param({"timestamp": {"format": "%H:%M:%S"}},
                 "timestamp.format '%H:%M:%S' has no date fields", id="format without a date"),
    pytest.param({"timestamp": {"format": "%Y-%m-%d %Q"}},
                 "timestamp.format '%Y-%m-%d %Q': unsupported directive(s) %Q", id="unknown directive"),
    pytest.param({"timestamp": {"format": "iso8601", "regex": r"\d+"}},
                 r"timestamp.regex '\\d+' needs a group", id="stamp regex without group"),
    pytest.param({"timestamp": {"timezone": "Mars/Olympus"}},
                 "timestamp.timezone 'Mars/Olympus' is not an IANA timezone", id="unknown timezone"),
    pytest.param({"now": "2026-12-06T10:46:36"},
                 "now '2026-12-06T10:46:36' must be an ISO 8601 datetime with an offset", id="now without offset"),
    pytest.param({"redact": ["token=(["]}, "redact[0]: regex 'token=([' does not compile", id="bad redaction"),
    pytest.param({"files": []}, "files must be a non-empty list", id="no files"),
    pytest.param({"files": [{"path": "/a.log", "rotate": []}]}, "files[0]: unknown key(s) rotate", id="unknown file key"),
    pytest.param({"files": ["/a.log", "/a.log"]}, "files must be unique, repeated: /a.log", id="duplicate file"),
    pytest.param({"files": [{"path": "/a.log", "rotated": "/a.log.*"}]}, "files[0]: rotated '/a.log.*' must be a list",
                 id="rotated not a list"),
])
def test_bad_input_fails_naming_the_value(overrides, message, tmp_path):
    with pytest.raises(LogReviewError) as raised:
        run_log_pattern_review(params(**overrides))
    assert message in raised.value.msg


@pytest.mark.parametrize("regex, expected", [
    ("Failed password|authentication failure", ("Failed password", "authentication failure")),
    ("SQL injection|XSS|CSRF", ("CSRF", "SQL injection", "XSS")),
    (r"user \w+ denied", (" denied",)),
    (r"Failed (?:password|publickey) for \S+", ("Failed p",)),  # the parser takes the branches' common "p" out
    (r"(?:error|fatal): disk", (": disk",)),
    (r"(?:ab)+cdef", ("cdef",)),
    (r"(?i)failed", None),  # case-insensitive: no str.find prefilter
    (r"Fa(?i:iled)", None),  # too short outside the case-insensitive group
    (r"a(bc)?d", None),  # optional part needed by nothing; the rest too short
    (r"\d{3} \d+", None),
    (r"[Ff]ailed password", ("ailed password",)),
    (r"(?=Failed)\w+", None),  # a lookahead's text is not consumed: not relied on
])
def test_required_literals(regex, expected):
    assert required_literals(regex) == expected


@pytest.mark.parametrize("text, expected", [
    ("2026-12-06T10:46:36Z", datetime.datetime(2026, 12, 6, 10, 46, 36, tzinfo=UTC)),
    ("2026-12-06 10:46:36,250+0100",
     datetime.datetime(2026, 12, 6, 10, 46, 36, 250000, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))),
    ("2026-12-06T10:46:36.123456789-05:00",
     datetime.datetime(2026, 12, 6, 10, 46, 36, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))),
    ("2026-12-06T10:46", datetime.datetime(2026, 12, 6, 10, 46)),
    ("2026-13-06T10:46:36Z", None),
    ("yesterday", None),
])
def test_parse_iso8601(text, expected):
    assert parse_iso8601(text) == expected


@pytest.mark.parametrize("timestamp, line, expected", [
    pytest.param({}, "2026-12-06T09:00:00.5+00:00 host sshd[1]: x", datetime.datetime(2026, 12, 6, 9, 0, 0, 500000, tzinfo=UTC),
                 id="iso8601 default"),
    pytest.param({}, '{"level":"warn","time":"2026-12-06 09:00:00Z","msg":"x"}',
                 datetime.datetime(2026, 12, 6, 9, tzinfo=UTC), id="iso8601 inside json"),
    pytest.param({"timezone": "America/New_York"}, "2026-07-01 09:00:00 x",
                 datetime.datetime(2026, 7, 1, 13, tzinfo=UTC), id="naive iso in a timezone"),
    pytest.param({"format": "syslog"}, "Dec  6 10:40:00 host sshd[9]: Failed password",
                 datetime.datetime(2026, 12, 6, 10, 40, tzinfo=UTC), id="syslog this year"),
    pytest.param({"format": "syslog"}, "Dec  6 10:50:00 host sshd[9]: x",
                 datetime.datetime(2026, 12, 6, 10, 50, tzinfo=UTC), id="syslog minutes after now stays this year"),
    pytest.param({"format": "syslog"}, "Dec  9 10:50:00 host sshd[9]: x",
                 datetime.datetime(2025, 12, 9, 10, 50, tzinfo=UTC), id="syslog days after now is last year"),
    pytest.param({"format": "syslog"}, "Feb 29 10:00:00 host x", None, id="syslog feb 29 in no recent year"),
    pytest.param({"format": "nginx"}, '203.0.113.9 - - [06/Dec/2026:10:46:36 +0200] "GET / HTTP/1.1" 200 1',
                 datetime.datetime(2026, 12, 6, 8, 46, 36, tzinfo=UTC), id="nginx"),
    pytest.param({"format": "common-log"}, '1.2.3.4 - - [06/Dec/2026:10:46:36 +0000] "GET /"',
                 datetime.datetime(2026, 12, 6, 10, 46, 36, tzinfo=UTC), id="common-log alias"),
    pytest.param({"format": "%Y/%m/%d %H:%M:%S"}, "[2026/12/06 08:00:01] [error] x",
                 datetime.datetime(2026, 12, 6, 8, 0, 1, tzinfo=UTC), id="strptime format, regex made from it"),
    pytest.param({"format": "%d.%m %H:%M"}, "08.12 11:00 x", datetime.datetime(2025, 12, 8, 11, 0, tzinfo=UTC),
                 id="strptime format without year"),
    pytest.param({"format": "%d/%m/%Y %H:%M:%S", "regex": r"ts=(\S+ \S+)"}, "level=error ts=06/12/2026 07:00:00",
                 datetime.datetime(2026, 12, 6, 7, tzinfo=UTC), id="explicit regex"),
    pytest.param({}, "no stamp here", None, id="no stamp"),
    pytest.param({"format": "syslog"}, "2026-12-06T09:00:00Z x", None, id="wrong format"),
])
def test_stamp_parser(timestamp, line, expected):
    stamp = StampParser(timestamp, NOW).stamp(line)
    assert (stamp.astimezone(UTC) if stamp else None) == expected


@pytest.mark.parametrize("names, expected", [
    pytest.param(["app.log.1", "app.log.2.gz", "app.log.10.gz", "app.log.3.bz2", "app.logx.1", "other.log.1"],
                 ["app.log.1", "app.log.2.gz", "app.log.3.bz2", "app.log.10.gz"], id="numbered"),
    pytest.param(["app.log-20261204.gz", "app.log-20261206", "app.log-20261205.gz", "app.log-2026.gz"],
                 ["app.log-20261206", "app.log-20261205.gz", "app.log-20261204.gz"], id="dateext"),
])
def test_rotated_files_discovered_newest_first(names, expected, tmp_path):
    (tmp_path / "app.log").write_text("")
    for name in names:
        (tmp_path / name).write_text("")
    found = rotated_files(LogFile(path=str(tmp_path / "app.log"), rotated=None))
    assert [os.path.basename(path) for path in found] == expected


def test_rotated_files_mixed_names_by_mtime_and_explicit_globs(tmp_path):
    (tmp_path / "app.log").write_text("")
    for age, name in enumerate(["app.log.1", "app.log-20261201.gz"]):
        (tmp_path / name).write_text("")
        os.utime(tmp_path / name, (1_000_000 - age, 1_000_000 - age))
    found = rotated_files(LogFile(path=str(tmp_path / "app.log"), rotated=None))
    assert [os.path.basename(path) for path in found] == ["app.log.1", "app.log-20261201.gz"]
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "app.log.2.gz").write_text("")
    explicit = rotated_files(LogFile(path=str(tmp_path / "app.log"), rotated=("archive/app.log.*", "app.log")))
    assert explicit == [str(archive / "app.log.2.gz")]  # the log itself is never its own rotated file
    assert rotated_files(LogFile(path=str(tmp_path / "app.log"), rotated=())) == []


@pytest.mark.parametrize("data, block, expected_lines", [
    pytest.param(b"a\nb\nc\n", 2, ["a", "b", "c"], id="small blocks"),
    pytest.param(b"a\nb", 64, ["a", "b"], id="last line without newline"),
    pytest.param(b"a\r\nb\r\n", 3, ["a", "b"], id="crlf"),
    pytest.param(b"x" * 50 + b"\nok\n", 8, ["x" * 20, "ok"], id="overlong line cut"),
    pytest.param("\u00e9t\u00e9\n".encode() * 3, 1, ["\u00e9t\u00e9"] * 3, id="utf-8 split across blocks"),
    pytest.param(b"bad \xff byte\n", 64, ["bad \ufffd byte"], id="bad byte replaced"),
    pytest.param(b"", 64, [], id="empty"),
])
def test_read_blocks(data, block, expected_lines):
    lines = []
    for text, end in read_blocks(io.BytesIO(data), block_chars=block, max_line_chars=20):
        assert text[end - 1] == "\n"
        lines.extend(text[:end].split("\n")[:-1])
    assert lines == expected_lines


@pytest.mark.parametrize("line, expected", [
    ("login password=hunter2 ok", "login password=<redacted> ok"),
    ('{"user":"a","password": "s3cret"}', '{"user":"a","password": <redacted>}'),
    ("GET /api?user=a&api_key=XYZ123&x=1", "GET /api?user=a&api_key=<redacted>&x=1"),
    ("Authorization: Bearer eyJhbGciOi.abc", "Authorization: Bearer <redacted>"),
    ("header authorization=Basic dXNlcjpwYXNz", "header authorization=Basic <redacted>"),
    ("connect postgres://app:pa55@db:5432/x", "connect postgres://app:<redacted>@db:5432/x"),
    ("client_secret: abc token=def", "client_secret: <redacted> token=<redacted>"),
    ("key AKIAABCDEFGHIJKLMNOP used", "key <redacted> used"),
    ("Failed password for root from 203.0.113.9", "Failed password for root from 203.0.113.9"),
    ("patient_id=12345 viewed", "patient_id=<redacted> viewed"),
])
def test_redaction(line, expected):
    assert redact(line, parse_redactions([r"patient_id=(\d+)"])) == expected


def test_shown_line_redacts_before_truncating():
    redactions = parse_redactions([])
    secret = "x" * 30 + " token=" + "s" * 40
    assert shown_line((secret, True), redactions, 40) == "x" * 30 + " token=<re..."
    assert shown_line(("short\r", False), redactions, 40) == "short"


def write(path, lines, opener=open):
    with opener(path, "wt") as stream:
        stream.write("".join(line + "\n" for line in lines))


def test_records_of_a_log_and_its_rotated_files(tmp_path):
    log = tmp_path / "auth.log"
    write(log, ["2026-12-06T09:00:00Z sshd: Failed password for root password=hunter2",
                "2026-12-06T09:30:00Z sshd: Accepted publickey for deploy",
                "Failed password in a line without a stamp",
                "2026-12-06T11:00:00Z sshd: Failed password after now: not counted"])
    write(tmp_path / "auth.log.1", ["2026-12-05T12:00:00Z sshd: authentication failure; rhost=203.0.113.9",
                                    "2026-12-05T20:00:00Z sshd: Failed password for admin"])
    write(tmp_path / "auth.log.2.gz", ["2026-12-05T10:00:00Z sshd: Failed password before the window",
                                       "2026-12-05T11:00:00Z sshd: Failed password in the window"], gzip.open)
    write(tmp_path / "auth.log.3.gz", ["2026-12-01T00:00:00Z sshd: Failed password long ago"], gzip.open)
    result = run_log_pattern_review(params(
        files=[str(log)], newest_lines=2,
        patterns=[{**FAILED, "max": 3}, {"name": "sql", "regex": "SQL injection"}]))
    assert result_problems(result) == []
    failed, sql = result["records"]
    assert failed["name"] == f"{log} failed_logins" and failed["action"] == "log_pattern"
    assert failed["status"] == "breach"
    after = failed["after"]
    assert after["count"] == 4 and after["unparsed"] == 1 and after["max"] == 3 and after["future"] == 1
    assert after["files_read"] == [str(tmp_path / "auth.log.2.gz"), str(tmp_path / "auth.log.1"), str(log)]
    assert after["files_skipped"] == [str(tmp_path / "auth.log.3.gz")]  # .2.gz starts before the window
    assert after["lines_read"] == 8
    assert after["first_seen"] == "2026-12-05T11:00:00+00:00" and after["last_seen"] == "2026-12-06T09:00:00+00:00"
    assert after["newest"] == ["2026-12-05T20:00:00Z sshd: Failed password for admin",
                               "2026-12-06T09:00:00Z sshd: Failed password for root password=<redacted>"]
    assert "remedy" in after
    assert sql["status"] == "ok" and sql["after"]["count"] == 0 and "remedy" not in sql["after"]
    assert result["changed"] is False


def test_undated_matches_that_could_pass_the_limit_are_unknown(tmp_path):
    log = tmp_path / "app.log"
    write(log, ["2026-12-06T09:00:00Z Failed password", "Failed password, no stamp", "Failed password, none either"])
    (record,) = run_log_pattern_review(params(files=[str(log)], patterns=[{**FAILED, "max": 2}]))["records"]
    assert record["status"] == "unknown" and "with them the limit of 2 may be passed" in record["detail"]
    (record,) = run_log_pattern_review(params(files=[str(log)], patterns=[{**FAILED, "max": 3}]))["records"]
    assert record["status"] == "ok"


@pytest.mark.parametrize("hours", [float("nan"), float("inf"), 1e9])
def test_hours_out_of_range_are_named(hours, tmp_path):
    with pytest.raises(LogReviewError, match="hours .* must be a number of hours up to 87600"):
        run_log_pattern_review(params(files=[str(tmp_path / "app.log")], hours=hours))


@pytest.mark.parametrize("line", [
    "PGPASSWORD=hunter2 pg_dump", "dbpassword: hunter2", "GET /login?user=a&password%3Dhunter2",
    "clone https://hunter2@git.example/repo.git"])
def test_secrets_with_a_prefix_encoded_or_as_url_user_are_redacted(line, tmp_path):
    log = tmp_path / "app.log"
    write(log, [f"2026-12-06T09:00:00Z Failed password {line}"])
    (record,) = run_log_pattern_review(params(files=[str(log)]))["records"]
    assert record["after"]["newest"] and "hunter2" not in record["after"]["newest"][0]


@pytest.mark.parametrize("lines, status, count", [
    pytest.param([], "ok", 0, id="empty file"),
    pytest.param(["Failed password, no stamp", "Failed password, none either"], "unknown", None, id="no stamps"),
    pytest.param(["2026-12-04T00:00:00Z Failed password"], "ok", 0, id="only before the window"),
    pytest.param(["2026-12-06T00:00:00Z Failed password"], "breach", 1, id="one over max 0"),
    # The newest lines written in local time east of UTC, read as UTC: they look like the future.
    pytest.param(["2026-12-06T11:40:00 Failed password"], "unknown", 0, id="dated after now: the timezone is wrong"),
    pytest.param(["2026-12-06T10:50:00Z Failed password"], "breach", 1, id="a few minutes ahead: clocks differ"),
])
def test_status_of_one_log(lines, status, count, tmp_path):
    log = tmp_path / "app.log"
    write(log, lines)
    (record,) = run_log_pattern_review(params(files=[str(log)]))["records"]
    if status == "unknown" and count == 0:
        assert "timezone is probably not 'UTC'" in record["detail"]
    assert record["status"] == status
    if count is not None:
        assert record["after"]["count"] == count
    assert ("remedy" in record["after"]) is (status != "ok")


def test_missing_and_unreadable_logs(tmp_path):
    directory = tmp_path / "a-directory.log"
    directory.mkdir()
    result = run_log_pattern_review(params(files=[str(tmp_path / "missing.log"), str(directory)]))
    missing, unreadable = result["records"]
    assert missing["status"] == "unknown" and "no such file" in missing["detail"] and missing["after"]["count"] is None
    assert unreadable["status"] == "failed" and "Is a directory" in unreadable["detail"]
    assert unreadable["after"]["remedy"]
    assert result_problems(result) == []


def test_corrupt_rotated_archive_fails_the_log(tmp_path):
    write(tmp_path / "app.log", ["2026-12-06T10:00:00Z Failed password"])
    (tmp_path / "app.log.1.gz").write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    (record,) = run_log_pattern_review(params(files=[str(tmp_path / "app.log")]))["records"]
    assert record["status"] == "failed" and "app.log.1.gz" in record["detail"]
