"""pg_compliance's decisions without a database: input, verdicts, records, and the audit-logger's JSON lines.

The reads themselves run against the real PostgreSQL in tests/integration/test_pg_compliance.py.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils import pg_compliance
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_compliance import (
    AuditSpec,
    Column,
    ComplianceError,
    MaxAge,
    RetentionRule,
    audit_event_record,
    audit_records,
    event_time,
    iso,
    parse_audit,
    parse_max_age,
    parse_rules,
    plan_scans,
    resolve_columns,
    retention_record,
    run_pg_compliance,
    summary_msg,
    validate,
    verbs_text,
    wanted_columns,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import record_problems, result_problems
from ansible_collections.streamops.maintenance.plugins.modules import pg_compliance as module

UTC = timezone.utc
NOW = datetime(2026, 1, 11, 7, 30, tzinfo=UTC)
TRADES = {"name": "trades_7y", "table": "trades", "column": "created_at", "max_age": "7y", "expect": "kept"}
AUDIT = AuditSpec(schema="public", table="audit_logs", time_column="created_at", verb_column="action",
                  id_column="id", hours=24, future_tolerance_seconds=300)


def rule(**changes) -> dict:
    return {**TRADES, **changes}


def refused(call) -> str:
    with pytest.raises(ComplianceError) as caught:
        call()
    return caught.value.msg


def assert_records(records) -> None:
    for record in records:
        assert record_problems(record) == []
        if record["status"] in ("breach", "unknown", "failed"):
            remedy = record["after"]["remedy"]
            assert remedy[0].isupper() and remedy.endswith(".") and "\n" not in remedy


# --------------------------------------------------------------------------- input


@pytest.mark.parametrize("value, years, delta", [
    ("7y", 7, timedelta(0)),
    ("10y", 10, timedelta(0)),
    (" 10 y ", 10, timedelta(0)),
    ("90d", 0, timedelta(days=90)),
    ("36h", 0, timedelta(hours=36)),
    ("2w", 0, timedelta(weeks=2)),
    ("P30D", 0, timedelta(days=30)),
])
def test_max_age(value, years, delta):
    assert parse_max_age(value, "rule x") == MaxAge(text=value.strip(), years=years, delta=delta)


@pytest.mark.parametrize("value, msg", [
    ("7", "rule x: max_age '7' is not a duration; use e.g. 2h, 90m, 4h30m, 1d, 45s, PT2H or 02:00 "
          "(use e.g. 7y, 10y, 90d, 36h or 2w)"),
    ("seven years", "rule x: max_age 'seven years' is not a duration; use e.g. 2h, 90m, 4h30m, 1d, 45s, PT2H or "
                    "02:00 (use e.g. 7y, 10y, 90d, 36h or 2w)"),
    ("0y", "rule x: max_age '0y' must be greater than zero"),
    ("0d", "rule x: max_age '0d' must be greater than zero (use e.g. 7y, 10y, 90d, 36h or 2w)"),
    ("-1d", "rule x: max_age '-1d' is negative; it must be greater than zero (use e.g. 7y, 10y, 90d, 36h or 2w)"),
    (7, "rule x: max_age 7 has no unit; use e.g. 2h, 90m, 4h30m, 1d, 45s, PT2H or 02:00 "
        "(use e.g. 7y, 10y, 90d, 36h or 2w)"),
])
def test_bad_max_age_names_the_value(value, msg):
    assert refused(lambda: parse_max_age(value, "rule x")) == msg


def test_rules_are_parsed_with_names_folded_like_postgresql():
    rules = parse_rules([rule(), rule(name="audit_10y", table="Archive.Audit_Logs", column="Created_At",
                                      max_age="10y", expect="gone")])
    assert rules == [
        RetentionRule("trades_7y", "public", "trades", "created_at", MaxAge("7y", 7), "kept"),
        RetentionRule("audit_10y", "archive", "audit_logs", "created_at", MaxAge("10y", 10), "gone")]
    assert rules[1].target == "archive.audit_logs"
    assert parse_rules(None) == []


@pytest.mark.parametrize("raw, msg", [
    ({"name": "x"}, "retention must be a list of rules, got dict"),
    (["trades"], "retention[0] must be a dict with name, table, column, max_age and expect"),
    ([rule(), {"name": "x", "table": "t"}], "retention[1] (x): missing column, expect, max_age"),
    ([rule(days=3)], "retention[0] (trades_7y): unknown key(s) days"),
    ([rule(), rule()], "retention rule 'trades_7y' is named twice; rule names must be unique (they name the "
                       "records)"),
    ([rule(expect="archived")], "retention rule 'trades_7y': expect 'archived' must be gone or kept"),
    ([rule(table="trades; DROP TABLE trades")],
     "retention rule 'trades_7y': table name 'trades; DROP TABLE trades' is not a plain identifier or "
     "schema.identifier (letters, digits, _ and $; not starting with a digit; at most 63 characters)"),
    ([rule(table="a.b.c")], "retention rule 'trades_7y': table name 'a.b.c' is not a plain identifier or "
                            "schema.identifier (letters, digits, _ and $; not starting with a digit; at most 63 "
                            "characters)"),
    ([rule(column="created at")], "retention rule 'trades_7y': column 'created at' is not a plain identifier"),
    ([rule(max_age="7 years")], "retention rule 'trades_7y': max_age '7 years' is not a duration; use e.g. 2h, "
                                "90m, 4h30m, 1d, 45s, PT2H or 02:00 (use e.g. 7y, 10y, 90d, 36h or 2w)"),
])
def test_bad_rules_name_the_rule_and_the_value(raw, msg):
    assert refused(lambda: parse_rules(raw)) == msg


@pytest.mark.parametrize("raw, expected", [
    (None, None),
    ({}, AUDIT),
    ({"table": "audit_logs", "hours": None}, AUDIT),
    ({"table": "compliance.Events", "time_column": "at", "verb_column": "verb", "id_column": "seq", "hours": 48,
      "future_tolerance_seconds": 0},
     AuditSpec("compliance", "events", "at", "verb", "seq", 48, 0)),
])
def test_audit_option(raw, expected):
    assert parse_audit(raw) == expected


@pytest.mark.parametrize("raw, msg", [
    ("audit_logs", "audit must be a dict, got str"),
    ({"tabel": "audit_logs"}, "audit: unknown key(s) tabel; known are table, time_column, verb_column, id_column, "
                              "hours, future_tolerance_seconds"),
    ({"hours": 0}, "audit: hours must be a whole number from 1 to 87600, got 0"),
    ({"hours": "24"}, "audit: hours must be a whole number from 1 to 87600, got '24'"),
    ({"hours": 10 ** 8}, "audit: hours must be a whole number from 1 to 87600, got 100000000"),
    ({"future_tolerance_seconds": -5}, "audit: future_tolerance_seconds must be a whole number from 0 to 86400, "
                                       "got -5"),
    ({"table": "audit-logs"}, "audit: table name 'audit-logs' is not a plain identifier or schema.identifier "
                              "(letters, digits, _ and $; not starting with a digit; at most 63 characters)"),
    ({"id_column": "1id"}, "audit: id_column '1id' is not a plain identifier"),
])
def test_bad_audit_option_names_the_value(raw, msg):
    assert refused(lambda: parse_audit(raw)) == msg


@pytest.mark.parametrize("params, msg", [
    ({}, "nothing to check: give retention rules, audit, or both"),
    ({"retention": [], "audit": None}, "nothing to check: give retention rules, audit, or both"),
    ({"audit": {}, "lock_timeout": 0},
     "lock_timeout must be a whole number of at least 1 ms (0 would wait forever), got 0"),
    ({"audit": {}, "lock_timeout": None},
     "lock_timeout must be a whole number of at least 1 ms (0 would wait forever), got None"),
    ({"audit": {}, "statement_timeout": 0},
     "statement_timeout must be a whole number of at least 1 ms (a compliance read is short), got 0"),
])
def test_validate_refuses(params, msg):
    assert refused(lambda: validate(params)) == msg


def test_bad_input_fails_before_connecting(monkeypatch):
    def no_connection(kwargs):
        raise AssertionError("connected although the input was bad")

    monkeypatch.setattr(pg_compliance, "connect", no_connection)
    params = {"retention": [rule(max_age="forever")], "lock_timeout": 5000, "statement_timeout": 60000}
    assert "max_age 'forever' is not a duration" in refused(lambda: run_pg_compliance(params))


@pytest.mark.parametrize("args, msg", [
    ({"retention": [rule(max_age="10 years")]}, "retention rule 'trades_7y': max_age '10 years' is not a duration"),
    ({"retention": [rule(expect="archived")]}, "value of expect must be one of: gone, kept, got: archived"),
    ({"audit": {"hours": 0}}, "audit: hours must be a whole number from 1 to 87600, got 0"),
    ({"retention": [rule(max_age="6m")]}, "retention rule 'trades_7y': max_age '6m' would be minutes; write months as "
                                          "days (180d) or years (1y)"),
    ({}, "one of the following is required: retention, audit"),
])
def test_module_fails_on_bad_input_naming_it(args, msg, capsys):
    # Port 9 (discard) has no PostgreSQL: a module that connected would fail with another message.
    with patch_module_args({"login_host": "127.0.0.1", "login_port": 9, **args}), pytest.raises(SystemExit) as exit_:
        module.main()
    result = json.loads(capsys.readouterr().out)
    assert exit_.value.code == 1 and result["failed"] is True
    assert msg in result["msg"], result["msg"]
    assert "cannot connect" not in result["msg"]


# --------------------------------------------------------------------------- the catalog


class FakeConn:
    """Answers each execute() with the next queued rows; keeps what was asked."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked = []

    def execute(self, query, params=None):
        self.asked.append((query, params))
        rows = self.answers.pop(0)
        return FakeCursor(rows)


class FakeCursor:
    def __init__(self, rows):
        self.rows = rows

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self):
        return list(self.rows)


RULES = parse_rules([rule(), rule(name="market_90d", table="market_data", column="timestamp", max_age="90d",
                                  expect="gone")])


def test_wanted_columns_name_their_owner():
    assert wanted_columns(RULES, AUDIT) == [
        ("retention rule 'trades_7y'", "public", "trades", "created_at", pg_compliance.TIME_TYPES),
        ("retention rule 'market_90d'", "public", "market_data", "timestamp", pg_compliance.TIME_TYPES),
        ("audit", "public", "audit_logs", "created_at", pg_compliance.TIME_TYPES),
        ("audit", "public", "audit_logs", "action", ()),
        ("audit", "public", "audit_logs", "id", pg_compliance.ID_TYPES)]


def test_resolve_columns_finds_types_and_indexes():
    conn = FakeConn([(16384, 7, "timestamptz", "idx_trades_created_at")], [(16390, 4, "timestamp", None)])
    assert resolve_columns(conn, wanted_columns(RULES, None)) == {
        ("public", "trades", "created_at"): Column(16384, 7, "timestamptz", "idx_trades_created_at"),
        ("public", "market_data", "timestamp"): Column(16390, 4, "timestamp", None)}
    assert [asked[1] for asked in conn.asked] == [
        {"schema": "public", "table": "trades", "column": "created_at"},
        {"schema": "public", "table": "market_data", "column": "timestamp"}]


@pytest.mark.parametrize("answers, msg", [
    ([[], [(1, 2, "timestamptz", None)]], "retention rule 'trades_7y': table public.trades does not exist"),
    ([[(1, None, None, None)], [(1, 2, "timestamptz", None)]],
     "retention rule 'trades_7y': column created_at does not exist in public.trades"),
    ([[(1, 3, "text", None)], [(1, 2, "int8", None)]],
     "retention rule 'trades_7y': column public.trades.created_at is text, not a timestamp or date; "
     "retention rule 'market_90d': column public.market_data.timestamp is int8, not a timestamp or date"),
])
def test_resolve_columns_fails_naming_every_bad_column(answers, msg):
    assert refused(lambda: resolve_columns(FakeConn(*answers), wanted_columns(RULES, None))) == (
        msg + "; nothing was read")


def test_a_missing_audit_table_is_named_once_and_an_id_must_be_an_integer():
    assert refused(lambda: resolve_columns(FakeConn([], [], []), wanted_columns([], AUDIT))) == (
        "audit: table public.audit_logs does not exist; nothing was read")
    conn = FakeConn([(1, 4, "timestamptz", None)], [(1, 3, "text", None)], [(1, 1, "uuid", None)])
    assert refused(lambda: resolve_columns(conn, wanted_columns([], AUDIT))) == (
        "audit: column public.audit_logs.id is uuid, not an integer; nothing was read")


@pytest.mark.parametrize("plan, scans", [
    ({"Node Type": "Result", "Plans": [
        {"Node Type": "Limit", "Plans": [{"Node Type": "Index Only Scan", "Relation Name": "trades"}]},
        {"Node Type": "Aggregate", "Plans": [{"Node Type": "Index Only Scan", "Relation Name": "trades"}]}]},
     ["Index Only Scan"]),
    ({"Node Type": "Result", "Plans": [
        {"Node Type": "Aggregate", "Plans": [{"Node Type": "Seq Scan", "Relation Name": "audit_logs"}]},
        {"Node Type": "Aggregate", "Plans": [{"Node Type": "Bitmap Heap Scan", "Relation Name": "audit_logs",
                                              "Plans": [{"Node Type": "Bitmap Index Scan"}]}]}]},
     ["Bitmap Heap Scan", "Seq Scan"]),
    ({"Node Type": "Seq Scan", "Relation Name": "other"}, []),
])
def test_plan_scans_lists_the_node_types_on_the_table(plan, scans):
    table = "trades" if scans == ["Index Only Scan"] else "audit_logs"
    for answer in ([{"Plan": plan}], json.dumps([{"Plan": plan}])):
        conn = FakeConn([(answer,)])
        assert plan_scans(conn, pg_compliance.sql.SQL("SELECT 1"), {}, table) == scans


@pytest.mark.parametrize("value, text", [
    (datetime(2019, 1, 10, 2, 30, tzinfo=timezone(timedelta(hours=-5))), "2019-01-10T07:30:00+00:00"),
    (datetime(2019, 1, 10, 7, 30), "2019-01-10T07:30:00"),
    (date(2019, 1, 10), "2019-01-10"),
    (None, None),
])
def test_iso(value, text):
    assert iso(value) == text


# --------------------------------------------------------------------------- retention verdicts


def figures(**changes) -> dict:
    base = {"table": "public.trades", "column": "created_at", "max_age": "7y", "expect": "kept",
            "cutoff": "2019-01-11T07:30:00+00:00", "older_rows": 2, "oldest": "2019-01-10T07:30:00+00:00",
            "oldest_age_days": 2558.0, "indexed": True, "index": "idx_trades_created_at", "scans": ["Index Only Scan"]}
    return {**base, **changes}


GONE = RetentionRule("audit_10y", "public", "audit_logs", "created_at", MaxAge("10y", 10), "gone")
KEPT = RetentionRule("trades_7y", "public", "trades", "created_at", MaxAge("7y", 7), "kept")


@pytest.mark.parametrize("given, measured, status, detail, remedy", [
    (KEPT, figures(), "ok",
     "2 row(s) older than 7y kept in public.trades.created_at (eligible for archiving), "
     "oldest 2019-01-10T07:30:00+00:00 (2558.0 days)", None),
    (KEPT, figures(older_rows=0, oldest=None, oldest_age_days=None), "ok",
     "0 row(s) older than 7y kept in public.trades.created_at (eligible for archiving), "
     "the table holds no dated row", None),
    (GONE, figures(table="public.audit_logs", max_age="10y", expect="gone", older_rows=1, indexed=False, index=None,
                   scans=["Seq Scan"], cutoff="2016-01-11T07:30:00+00:00", oldest="2016-01-10T07:30:00+00:00",
                   oldest_age_days=3654.0),
     "breach",
     "1 row(s) older than 10y (before 2016-01-11T07:30:00+00:00) in public.audit_logs.created_at, "
     "oldest 2016-01-10T07:30:00+00:00 (3654.0 days); the policy says they must be gone "
     "(no index on created_at: the count read the whole table)",
     "Archive and delete the 1 row(s) of public.audit_logs older than 10y, as the retention policy requires."),
    (GONE, figures(older_rows=0, oldest="2020-05-01T00:00:00+00:00", oldest_age_days=2081.3, indexed=False),
     "ok", "no row older than 10y in public.audit_logs.created_at, oldest 2020-05-01T00:00:00+00:00 "
           "(2081.3 days) (no index on created_at: the count read the whole table)", None),
])
def test_retention_record(given, measured, status, detail, remedy):
    record = retention_record(given, measured, 0.0042)
    assert_records([record])
    assert (record["name"], record["action"], record["status"], record["detail"]) == (
        f"retention {given.name}", "retention", status, detail)
    assert record["after"].get("remedy") == remedy
    assert {key: value for key, value in record["after"].items() if key != "remedy"} == measured
    assert record["seconds"] == 0.004


# --------------------------------------------------------------------------- audit verdicts


def audit_figures(**changes) -> dict:
    base = {"table": "public.audit_logs", "hours": 24, "since": "2026-01-10T07:30:00+00:00",
            "by_verb": {"login": 1430, "delete": 2}, "total": 1432, "indexed": True, "gaps": 0, "missing_ids": 0,
            "gap_examples": [], "future_rows": 0, "future_examples": [], "future_tolerance_seconds": 300}
    return {**base, **changes}


GAP = {"gaps": 2, "missing_ids": 4, "gap_examples": [{"after_id": 1200, "next_id": 1204, "missing": 3},
                                                     {"after_id": 1300, "next_id": 1302, "missing": 1}]}
FUTURE = {"future_rows": 1, "future_examples": [{"id": 1500, "at": "2026-01-12T07:30:00+00:00"}]}


@pytest.mark.parametrize("measured, status, detail, remedy", [
    (audit_figures(), "ok", "1432 row(s) of the last 24h: no id gap, no row dated in the future", None),
    (audit_figures(**GAP), "breach", "2 id gap(s), 4 id(s) missing (first: 1201..1203, 1301..1301)",
     "Find out whether the audit rows with the missing ids were deleted (backups, the audit-logger's own log); "
     "a rolled-back insert also leaves a gap."),
    (audit_figures(**FUTURE), "breach",
     "1 row(s) dated more than 300s in the future (latest id 1500 at 2026-01-12T07:30:00+00:00)",
     "Check the clock of the writers of the future-dated rows (NTP) and whether they were forged."),
    (audit_figures(**GAP, **FUTURE), "breach",
     "2 id gap(s), 4 id(s) missing (first: 1201..1203, 1301..1301); "
     "1 row(s) dated more than 300s in the future (latest id 1500 at 2026-01-12T07:30:00+00:00)",
     "Find out whether the audit rows with the missing ids were deleted (backups, the audit-logger's own log); "
     "a rolled-back insert also leaves a gap; check the clock of the writers of the future-dated rows (NTP) and "
     "whether they were forged."),
    (audit_figures(by_verb={}, total=0), "unknown", "no row of the last 24h: continuity not checked",
     "Check that public.audit_logs is written to: no row of the last 24h to check."),
])
def test_audit_records(measured, status, detail, remedy):
    summary, continuity = audit_records(AUDIT, measured, 0.01)
    assert_records([summary, continuity])
    assert (continuity["name"], continuity["action"], continuity["status"], continuity["detail"]) == (
        "audit public.audit_logs", "audit_continuity", status, detail)
    assert continuity["after"].get("remedy") == remedy
    assert continuity["after"]["gaps"] == measured["gaps"]
    assert continuity["after"]["future_rows"] == measured["future_rows"]
    assert summary["name"] == "audit public.audit_logs" and summary["action"] == "audit_summary"
    assert summary["after"]["by_verb"] == measured["by_verb"] and summary["after"]["total"] == measured["total"]
    assert summary["status"] == ("unknown" if not measured["total"] else "ok")


def test_audit_summary_says_when_the_table_was_read_whole():
    summary = audit_records(AUDIT, audit_figures(indexed=False))[0]
    assert summary["detail"] == ("1432 audit event(s) in the last 24h: login 1430, delete 2 "
                                 "(no index on created_at: read the whole table)")
    assert summary["after"] == {"by_verb": {"login": 1430, "delete": 2}, "total": 1432, "hours": 24,
                                "since": "2026-01-10T07:30:00+00:00", "indexed": False}


@pytest.mark.parametrize("by_verb, text", [
    ({"login": 3, "delete": 1, "create": 3}, "create 3, login 3, delete 1"),
    ({}, ""),
])
def test_verbs_text_most_frequent_first(by_verb, text):
    assert verbs_text(by_verb) == text


def test_summary_msg_lists_the_problems():
    records = [retention_record(KEPT, figures()), *audit_records(AUDIT, audit_figures(**GAP))]
    assert summary_msg(records, [KEPT], AUDIT) == (
        "checked 1 retention rule(s) and the audit log public.audit_logs over 1d: "
        "1 problem(s): audit public.audit_logs audit_continuity breach")
    assert summary_msg(records[:1], [KEPT], None) == "checked 1 retention rule(s): no problem"
    result = {"changed": False, "msg": summary_msg(records, [KEPT], AUDIT), "records": records}
    assert result_problems(result) == [] and result_problems(result, check_mode=True) == []


# --------------------------------------------------------------------------- the audit-logger's JSON lines


def event(verb=None, at="2026-01-11T07:00:00Z", key="verb", **extra) -> str:
    body = {"timestamp": at, **extra}
    if verb is not None:
        body[key] = verb
    return json.dumps(body)


@pytest.mark.parametrize("value, instant", [
    ("2026-01-11T07:00:00Z", datetime(2026, 1, 11, 7, tzinfo=UTC)),
    ("2026-01-11T07:00:00.123456789Z", datetime(2026, 1, 11, 7, 0, 0, 123456, tzinfo=UTC)),
    ("2026-01-11T02:00:00-05:00", datetime(2026, 1, 11, 7, tzinfo=UTC)),
    ("2026-01-11 07:00:00", datetime(2026, 1, 11, 7, tzinfo=UTC)),
    (1768114800, datetime(2026, 1, 11, 7, tzinfo=UTC)),
    (1768114800.5, datetime(2026, 1, 11, 7, 0, 0, 500000, tzinfo=UTC)),
    ("yesterday", None),
    (True, None),
    (None, None),
    (1e20, None),
])
def test_event_time(value, instant):
    assert event_time(value) == instant


@pytest.mark.parametrize("lines, kwargs, status, by_verb, counts, detail", [
    ([event("get"), event("get"), event("create"), event("delete", at="2026-01-10T06:00:00Z")], {}, "ok",
     {"get": 2, "create": 1}, {"lines": 4, "unparsed": 0, "undated": 0, "outside_window": 1},
     "3 audit event(s) in the last 24h: get 2, create 1"),
    ([event("login", key="action"), "I0111 07:00:00 audit-logger started", "", event(None), "[1, 2]"], {}, "ok",
     {"login": 1, "(none)": 1}, {"lines": 4, "unparsed": 2, "undated": 0, "outside_window": 0},
     "2 audit event(s) in the last 24h: (none) 1, login 1 (2 unparsed line(s))"),
    ([json.dumps({"op": "update", "at": 1768114800}), json.dumps({"op": "update"})],
     {"time_key": "at", "verb_key": "op"}, "ok",
     {"update": 2}, {"lines": 2, "unparsed": 0, "undated": 1, "outside_window": 0},
     "2 audit event(s) in the last 24h: update 2"),
    ([event("get", at="2026-01-11T01:00:00Z")], {"hours": 6}, "unknown",
     {}, {"lines": 1, "unparsed": 0, "undated": 0, "outside_window": 1},
     "no audit event in the last 6h"),
    (["panic: cannot open /var/log/audit", "goroutine 1 [running]:"], {}, "unknown",
     {}, {"lines": 2, "unparsed": 2, "undated": 0, "outside_window": 0},
     "none of the 2 log line(s) is a JSON object: no audit event could be counted"),
    ([], {}, "unknown", {}, {"lines": 0, "unparsed": 0, "undated": 0, "outside_window": 0},
     "no audit event in the last 24h"),
])
def test_audit_event_record(lines, kwargs, status, by_verb, counts, detail):
    record = audit_event_record(lines, now=NOW, **{"hours": 24, **kwargs})
    assert_records([record])
    assert (record["name"], record["action"], record["status"], record["detail"]) == (
        "audit audit-logger", "audit_summary", status, detail)
    assert record["after"]["by_verb"] == by_verb
    assert {key: record["after"][key] for key in counts} == counts
    assert record["after"]["total"] == sum(by_verb.values())


def test_audit_event_record_of_a_failed_read_is_unknown():
    record = audit_event_record(None, hours=24, now=NOW, error="Error from server (NotFound): pods \"audit-logger\" "
                                                               "not found\n")
    assert_records([record])
    assert record["status"] == "unknown"
    assert record["detail"] == 'could not read the log: Error from server (NotFound): pods "audit-logger" not found'
    assert record["after"] == {"remedy": "Fix the read of the audit-logger log (kubectl logs) and run the review "
                                         "again: no audit event was counted."}


@pytest.mark.parametrize("hours", [0, -1, True, "24"])
def test_audit_event_record_refuses_bad_hours(hours):
    with pytest.raises(ValueError) as caught:
        audit_event_record([], hours=hours, now=NOW)
    assert str(caught.value) == f"hours must be a whole number of at least 1, got {hours!r}"
