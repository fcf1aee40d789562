"""pg_maintenance report's server section and its record (version, connections against max_connections)."""

from __future__ import annotations

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.pg_runner import connections_record
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_stats import read_server
from ansible_collections.streamops.maintenance.plugins.module_utils.records import record_problems


class Answers:
    """Answers each statement by a fragment of it, and keeps the statements."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.statements: list[str] = []

    def execute(self, statement: str):
        self.statements.append(statement)
        return _Row(next(v for k, v in self.answers.items() if k in statement))


class _Row:
    def __init__(self, value: object) -> None:
        self.value = value

    def fetchone(self):
        return (self.value,)


@pytest.mark.parametrize(
    "connections, maximum, percent",
    [(17, "200", 8.5), (0, "100", 0.0), (97, "100", 97.0), (1, "3", 33.3)],
    ids=["some", "none", "nearly-full", "rounded"],
)
def test_server_section_counts_sessions_against_max_connections(connections, maximum, percent):
    conn = Answers({"pg_stat_database": connections, "max_connections": maximum,
                    "server_version": "15.4 (Debian 15.4-1)"})
    server = read_server(conn, server_version=150004)
    assert server == {"version": "15.4 (Debian 15.4-1)", "version_num": 150004, "connections": connections,
                      "max_connections": int(maximum), "connections_percent": percent}
    # Every session counts, not only the ones pg_stat_activity shows this role in full.
    assert "numbackends" in conn.statements[0]


SERVER = {"version": "15.19", "version_num": 150019, "connections": 5, "max_connections": 100,
          "connections_percent": 5.0}


@pytest.mark.parametrize(
    "server, limit, status, detail",
    [
        (SERVER, 80.0, "ok", "PostgreSQL 15.19: 5 of 100 connections (5.0%, limit 80%)"),
        (SERVER, None, "ok", "PostgreSQL 15.19: 5 of 100 connections (5.0%)"),
        ({**SERVER, "connections": 85, "connections_percent": 85.0}, 80.0, "breach",
         "PostgreSQL 15.19: 85 of 100 connections (85.0%, limit 80%)"),
        ({**SERVER, "connections": 80, "connections_percent": 80.0}, 80.0, "ok",
         "PostgreSQL 15.19: 80 of 100 connections (80.0%, limit 80%)"),
        ({**SERVER, "connections": 99, "connections_percent": 99.0}, None, "ok",
         "PostgreSQL 15.19: 99 of 100 connections (99.0%)"),
    ],
    ids=["under", "no-limit", "over", "at-the-limit", "no-limit-no-breach"],
)
def test_connections_record_breaches_only_over_a_given_limit(server, limit, status, detail):
    record = connections_record("streamsystems", server, limit)
    assert record_problems(record) == []
    assert (record["name"], record["action"], record["status"]) == ("postgresql streamsystems", "connections", status)
    assert record["detail"] == detail and record["after"] == server
