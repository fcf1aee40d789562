"""What the data modules say when a server or a connection goes away mid-work (reliability campaign, issue 20).

The pure decisions behind the campaign's PostgreSQL and Redis cases (tests/reliability/test_faults_*.py): the
message of a maintenance run that stopped half-way names the tables done, interrupted and not started; a Redis
connection the server dropped is told apart from a server that stopped.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import redis

from ansible_collections.streamops.maintenance.plugins.module_utils import redis_rdb
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_maintenance import (
    NOT_STARTED,
    stopped_message,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.redis_conn import dropped_connection_cause


def work(name, status, reason=None):
    return SimpleNamespace(name=name, status=status, reason=reason)


@pytest.mark.parametrize("works, expected", [
    ([work("public.trades", "failed", "connection lost during the statement (rolled back): terminating connection")],
     "vacuum_full stopped: boom; 0 table(s) done; failed: public.trades (connection lost during the statement "
     "(rolled back)); 0 not started"),
    ([work("public.alpha", "done"), work("public.bravo", "failed", "cancelled by statement_timeout (50 ms)"),
      work("public.charlie", "skipped", NOT_STARTED)],
     "vacuum_full stopped: boom; 1 table(s) done (public.alpha); failed: public.bravo (cancelled by "
     "statement_timeout (50 ms)); 1 not started (public.charlie)"),
    ([work("public.a", "skipped", NOT_STARTED), work("public.b", "skipped", "lock not available")],
     "vacuum_full stopped: boom; 0 table(s) done; 1 not started (public.a)"),
])
def test_a_stopped_run_names_what_was_done_and_what_was_not(works, expected):
    assert stopped_message("vacuum_full", "boom", works) == expected


def test_a_stopped_run_with_many_tables_names_ten_and_counts_the_rest():
    works = [work(f"public.t{n:02d}", "skipped", NOT_STARTED) for n in range(13)]
    message = stopped_message("analyze", "gone", works)
    assert message.endswith("13 not started (public.t00, public.t01, public.t02, public.t03, public.t04, public.t05, "
                            "public.t06, public.t07, public.t08, public.t09 and 3 more)")


class FakeClient:
    def __init__(self, *, answers=True, limits="normal 0 0 0 replica 64kb 0 0 pubsub 32mb 8mb 60",
                 config_denied=False):
        self.answers, self.limits, self.config_denied = answers, limits, config_denied

    def ping(self):
        if not self.answers:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return True

    def config_get(self, name):
        if self.config_denied:
            raise redis.exceptions.NoPermissionError("NOPERM this user has no permissions to run 'config|get'")
        return {name: self.limits}


def test_a_server_that_no_longer_answers_stopped():
    cause = dropped_connection_cause(FakeClient(answers=False))
    assert cause.startswith("the server does not answer now (") and "stopped or restarted" in cause


def test_a_server_that_still_answers_dropped_the_connection_itself_naming_its_limits():
    cause = dropped_connection_cause(FakeClient())
    assert "closed this connection itself" in cause
    assert "client-output-buffer-limit (now: normal 0 0 0 replica 64kb 0 0 pubsub 32mb 8mb 60)" in cause


def test_limits_an_acl_hides_are_not_named():
    cause = dropped_connection_cause(FakeClient(config_denied=True))
    assert "client-output-buffer-limit," in cause and "now:" not in cause


@pytest.mark.parametrize("ping, config, expected", [
    ((1, b"", b"Could not connect to Redis at 127.0.0.1:1: Connection refused"), None,
     "the server does not answer now (Could not connect to Redis at 127.0.0.1:1: Connection refused): it stopped"),
    ((0, b"PONG\n", b""), (0, b"client-output-buffer-limit\nreplica 64kb 0 0\n", b""),
     "client-output-buffer-limit for replicas (now: replica 64kb 0 0), else repl-timeout"),
    ((0, b"PONG\n", b""), (1, b"", b"NOPERM"), "client-output-buffer-limit for replicas, else repl-timeout"),
])
def test_a_broken_rdb_transfer_says_whether_the_server_stopped_or_dropped_the_copy(monkeypatch, ping, config,
                                                                                   expected):
    answers = iter([ping, config])

    def fake_run(argv, **_kwargs):
        code, out, err = next(answers)
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    monkeypatch.setattr(redis_rdb.subprocess, "run", fake_run)
    assert expected in redis_rdb.transfer_broke_cause(["redis-cli", "-h", "127.0.0.1", "-p", "1"], {})


def test_a_table_left_out_because_its_refresh_analyze_failed_says_so():
    from ansible_collections.streamops.maintenance.plugins.module_utils.pg_maintenance import refresh_failed_records
    left_out = [{"name": "public.trades", "action": "vacuum_full", "status": "unchanged",
                 "detail": "bloat unknown (bloat unknown: never analyzed); analyze the table first"},
                {"name": "public.audit", "action": "vacuum_full", "status": "unchanged", "detail": "bloat 1% < 30%"}]
    records = refresh_failed_records(left_out, {
        "public.trades": ("failed", "cancelled by statement_timeout (50 ms)")}, "vacuum_full")
    assert records[0]["status"] == "failed" and records[0]["detail"] == (
        "ANALYZE before estimating its bloat: cancelled by statement_timeout (50 ms); vacuum_full not run "
        "(bloat unknown (bloat unknown: never analyzed); analyze the table first)")
    assert records[1] == left_out[1]
