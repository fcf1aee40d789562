"""pg_maintenance report's server section (version, connections against max_connections)."""

from __future__ import annotations

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.pg_stats import read_server


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
