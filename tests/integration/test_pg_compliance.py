"""pg_compliance against the harness's real PostgreSQL 15: rows planted at exact ages, an audit log with a gap."""
from __future__ import annotations

import json

import psycopg
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import pg_compliance

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

RULES = [
    {"name": "trades_7y", "table": "trades", "column": "created_at", "max_age": "7y", "expect": "kept"},
    {"name": "audit_logs_10y", "table": "audit_logs", "column": "created_at", "max_age": "10y", "expect": "gone"},
    {"name": "market_data_90d", "table": "public.market_data", "column": "timestamp", "max_age": "90d",
     "expect": "gone"},
    {"name": "alarms_30d", "table": "alarms", "column": "raised_on", "max_age": "30d", "expect": "gone"},
]
AUDIT = {"table": "audit_logs", "hours": 24}
# Fresh audit rows g = 1..1400 get ids 52 + g; g 701..703 are deleted: one gap of three ids.
FIRST_FRESH_ID, DELETED = 53, (753, 754, 755)

PLANT = """
CREATE TABLE trades (id bigserial PRIMARY KEY, client_id int NOT NULL, created_at timestamptz NOT NULL);
CREATE INDEX idx_trades_created_at_client_id ON trades (created_at, client_id);
INSERT INTO trades (client_id, created_at)
  SELECT g % 500, now() - (g || ' seconds')::interval FROM generate_series(1, 20000) g;
INSERT INTO trades (client_id, created_at) VALUES
  (1, now() - interval '7 years 1 day'), (2, now() - interval '7 years 1 day 1 hour'),
  (3, now() - interval '7 years' + interval '1 day');
CREATE TABLE market_data (id bigserial PRIMARY KEY, instrument text NOT NULL, "timestamp" timestamptz NOT NULL);
CREATE INDEX idx_market_data_timestamp ON market_data ("timestamp" DESC);
INSERT INTO market_data (instrument, "timestamp")
  SELECT 'INSTR' || (g % 200), now() - (g || ' seconds')::interval FROM generate_series(1, 5000) g;
INSERT INTO market_data (instrument, "timestamp") VALUES ('INSTR1', now() - interval '89 days');
CREATE TABLE alarms (id bigserial PRIMARY KEY, severity text NOT NULL, raised_on date NOT NULL);
CREATE INDEX idx_alarms_raised_on ON alarms (raised_on);
INSERT INTO alarms (severity, raised_on) VALUES ('high', current_date - 31), ('low', current_date - 29),
  ('low', current_date);
CREATE TABLE audit_logs (id bigserial PRIMARY KEY, actor text NOT NULL, action text NOT NULL,
                         created_at timestamptz NOT NULL);
INSERT INTO audit_logs (actor, action, created_at) VALUES
  ('archiver', 'login', now() - interval '10 years 1 day'), ('archiver', 'login', now() - interval '10 years'
   + interval '1 day');
INSERT INTO audit_logs (actor, action, created_at)
  SELECT 'user' || g, 'login', now() - interval '48 hours' + (g || ' minutes')::interval FROM generate_series(1, 50) g;
DELETE FROM audit_logs WHERE id = 10;
INSERT INTO audit_logs (actor, action, created_at)
  SELECT 'user' || (g % 50), CASE WHEN g % 100 = 0 THEN 'delete_trade' WHEN g % 10 = 0 THEN 'export' ELSE 'login' END,
         now() - (g || ' minutes')::interval
  FROM generate_series(1, 1400) g;
DELETE FROM audit_logs WHERE id IN (753, 754, 755);
INSERT INTO audit_logs (actor, action, created_at) VALUES ('ntp-ok', 'login', now() + interval '60 seconds');
INSERT INTO audit_logs (actor, action, created_at) VALUES ('clock-skewed', 'login', now() + interval '1 day');
"""


def run_module(conninfo, capsys, **args):
    """(failed, result) of the module's main() as Ansible runs it; every result keeps the record shape."""
    module_args = {"login_host": conninfo["host"], "login_port": conninfo["port"],
                   "login_user": conninfo["user"], "login_password": conninfo["password"],
                   "database": conninfo["dbname"], **args}
    with patch_module_args(module_args), pytest.raises(SystemExit) as exited:
        pg_compliance.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=args.get("_ansible_check_mode", False)) == []
    assert result["changed"] is False
    assert conninfo["password"] not in out
    return result.get("failed", False), result


@pytest.fixture
def planted(pg_database):
    with psycopg.connect(**pg_database, autocommit=True) as conn:
        conn.execute(PLANT)
        for table in ("trades", "market_data", "alarms", "audit_logs"):
            conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return pg_database


def statements(conninfo) -> list[str]:
    """What was run in the test's database since the last reset (pg_stat_statements is preloaded by the harness)."""
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        return [row[0] for row in conn.execute(
            "SELECT query FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) AND query NOT LIKE '%%pg_stat_statements%%'")]


def reset_statements(conninfo) -> None:
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def by_key(records):
    return {(r["name"], r["action"]): r for r in records}


def test_reports_exactly_the_planted_findings(planted, capsys):
    reset_statements(planted)
    failed, result = run_module(planted, capsys, retention=RULES, audit=AUDIT)
    assert not failed
    records = by_key(result["records"])
    assert list(records) == [("retention trades_7y", "retention"), ("retention audit_logs_10y", "retention"),
                             ("retention market_data_90d", "retention"), ("retention alarms_30d", "retention"),
                             ("audit public.audit_logs", "audit_summary"),
                             ("audit public.audit_logs", "audit_continuity")]
    assert {key: r["status"] for key, r in records.items() if r["status"] != "ok"} == {
        ("retention audit_logs_10y", "retention"): "breach",
        ("retention alarms_30d", "retention"): "breach",
        ("audit public.audit_logs", "audit_continuity"): "breach"}
    assert result["msg"] == ("checked 4 retention rule(s) and the audit log public.audit_logs over 1d: 3 problem(s): "
                             "retention audit_logs_10y retention breach, retention alarms_30d retention breach, "
                             "audit public.audit_logs audit_continuity breach")

    trades = records[("retention trades_7y", "retention")]["after"]
    assert (trades["older_rows"], trades["expect"], trades["indexed"], trades["index"]) == (
        2, "kept", True, "idx_trades_created_at_client_id")
    assert 7 * 365 + 2 <= trades["oldest_age_days"] <= 7 * 366 + 2
    assert trades["scans"] and "Seq Scan" not in trades["scans"]
    assert "remedy" not in trades
    assert "(eligible for archiving)" in records[("retention trades_7y", "retention")]["detail"]

    audit_10y = records[("retention audit_logs_10y", "retention")]
    assert (audit_10y["after"]["older_rows"], audit_10y["after"]["indexed"], audit_10y["after"]["scans"]) == (
        1, False, ["Seq Scan"])
    assert audit_10y["after"]["remedy"] == ("Archive and delete the 1 row(s) of public.audit_logs older than 10y, "
                                            "as the retention policy requires.")
    assert "(no index on created_at: the count read the whole table)" in audit_10y["detail"]

    market = records[("retention market_data_90d", "retention")]["after"]
    assert (market["older_rows"], market["indexed"], market["index"]) == (0, True, "idx_market_data_timestamp")
    assert 89 <= market["oldest_age_days"] < 89.1 and "Seq Scan" not in market["scans"]

    alarms = records[("retention alarms_30d", "retention")]["after"]
    assert (alarms["older_rows"], alarms["indexed"]) == (1, True) and "Seq Scan" not in alarms["scans"]
    assert alarms["remedy"].startswith("Archive and delete the 1 row(s) of public.alarms older than 30d")

    summary = records[("audit public.audit_logs", "audit_summary")]
    assert summary["status"] == "ok"
    # 1400 fresh rows (14 delete_trade, 126 export, the rest login), 3 deleted logins, 2 future-dated logins.
    assert summary["after"]["by_verb"] == {"login": 1259, "export": 126, "delete_trade": 14}
    assert (summary["after"]["total"], summary["after"]["hours"], summary["after"]["indexed"]) == (1399, 24, False)

    continuity = records[("audit public.audit_logs", "audit_continuity")]
    after = continuity["after"]
    with psycopg.connect(**planted) as conn:
        future_id, future_at = conn.execute("SELECT id, created_at FROM audit_logs WHERE actor = 'clock-skewed'"
                                            ).fetchone()
    assert (after["gaps"], after["missing_ids"], after["gap_examples"]) == (
        1, 3, [{"after_id": 752, "next_id": 756, "missing": 3}])
    assert after["future_rows"] == 1
    assert after["future_examples"] == [{"id": future_id, "at": future_at.isoformat()}]
    assert continuity["detail"].startswith("1 id gap(s), 3 id(s) missing (first: 753..755); 1 row(s) dated more "
                                           "than 300s in the future")
    assert "remedy" in after

    # Read only: nothing but SELECTs, EXPLAINs, and the transaction's and session's settings.
    run = statements(planted)
    assert run, "pg_stat_statements saw nothing of the run"
    for query in run:
        first = query.split(None, 1)[0].upper()
        assert first in ("SELECT", "EXPLAIN", "SET", "BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "WITH"), query


def test_the_indexed_counts_need_no_sequential_scan(planted):
    """The planner's own choice, with its default settings: an index when there is one, else the whole table."""
    def scans(query):
        with psycopg.connect(**planted) as conn:
            return json.dumps(conn.execute("EXPLAIN (FORMAT JSON) " + query).fetchone()[0])

    indexed = scans("SELECT (SELECT min(created_at) FROM trades), "
                    "(SELECT count(*) FROM trades WHERE created_at < now() - interval '7 years')")
    assert "Seq Scan" not in indexed and "idx_trades_created_at_client_id" in indexed
    market = scans("SELECT (SELECT min(\"timestamp\") FROM market_data), "
                   "(SELECT count(*) FROM market_data WHERE \"timestamp\" < now() - interval '90 days')")
    assert "Seq Scan" not in market
    unindexed = scans("SELECT (SELECT min(created_at) FROM audit_logs), "
                      "(SELECT count(*) FROM audit_logs WHERE created_at < now() - interval '10 years')")
    assert "Seq Scan" in unindexed


def test_check_mode_reads_the_same(planted, capsys):
    real = run_module(planted, capsys, retention=RULES, audit=AUDIT)[1]
    checked = run_module(planted, capsys, retention=RULES, audit=AUDIT, _ansible_check_mode=True)[1]

    def stable(records):
        volatile = ("cutoff", "since", "oldest_age_days")
        return [(r["name"], r["action"], r["status"],
                 {k: v for k, v in (r["after"] or {}).items() if k not in volatile}) for r in records]

    assert stable(checked["records"]) == stable(real["records"])
    assert checked["changed"] is False and checked["msg"] == real["msg"]


def test_a_slow_check_fails_alone(planted, capsys):
    with psycopg.connect(**planted, autocommit=True) as conn:
        conn.execute("CREATE VIEW slow_events AS SELECT now() AS created_at FROM pg_sleep(2)")
    rules = [{"name": "slow", "table": "slow_events", "column": "created_at", "max_age": "1d", "expect": "gone"},
             RULES[0]]
    failed, result = run_module(planted, capsys, retention=rules, statement_timeout=500)
    assert not failed
    slow, trades = result["records"]
    assert (slow["name"], slow["status"]) == ("retention slow", "failed")
    assert slow["detail"] == "could not be read: canceling statement due to statement timeout"
    assert slow["after"]["remedy"].startswith("Index public.slow_events.created_at or raise statement_timeout")
    assert (trades["name"], trades["status"], trades["after"]["older_rows"]) == ("retention trades_7y", "ok", 2)
    assert result["msg"] == "checked 2 retention rule(s): 1 problem(s): retention slow retention failed"


@pytest.mark.parametrize("args, msg", [
    pytest.param({"retention": [RULES[0], {"name": "history", "table": "trade_history", "column": "created_at",
                                           "max_age": "7y", "expect": "kept"}]},
                 "retention rule 'history': table public.trade_history does not exist; nothing was read",
                 id="missing table"),
    pytest.param({"retention": [RULES[0]], "audit": {"time_column": "logged_at"}},
                 "audit: column logged_at does not exist in public.audit_logs; nothing was read", id="missing column"),
    pytest.param({"retention": [RULES[0], {"name": "by_client", "table": "trades", "column": "client_id",
                                           "max_age": "7y", "expect": "kept"}]},
                 "retention rule 'by_client': column public.trades.client_id is int4, not a timestamp or date; "
                 "nothing was read", id="not a timestamp"),
    pytest.param({"audit": {"verb_column": "action", "id_column": "actor"}},
                 "audit: column public.audit_logs.actor is text, not an integer; nothing was read",
                 id="id not an integer"),
    pytest.param({"retention": [RULES[0], {**RULES[1], "max_age": "10 years"}]},
                 "retention rule 'audit_logs_10y': max_age '10 years' is not a duration", id="bad duration"),
])
def test_bad_input_fails_naming_it_and_reads_no_row(planted, capsys, args, msg):
    reset_statements(planted)
    failed, result = run_module(planted, capsys, **args)
    assert failed and msg in result["msg"], result["msg"]
    assert result["records"] == []
    # The catalog was asked (or, for a bad duration, nothing at all); no table was read.
    assert [query for query in statements(planted) if '"public".' in query] == []
