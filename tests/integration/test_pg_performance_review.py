"""pg_maintenance performance_review against the harness's real PostgreSQL 15 (pg_stat_statements preloaded)."""
from __future__ import annotations

import json

import psycopg
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import pg_maintenance

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def run_review(conninfo, capsys, **args):
    module_args = {"login_host": conninfo["host"], "login_port": conninfo["port"],
                   "login_user": conninfo["user"], "login_password": conninfo["password"],
                   "database": conninfo["dbname"], "operation": "performance_review", **args}
    with patch_module_args(module_args), pytest.raises(SystemExit) as exited:
        pg_maintenance.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == 0, result
    assert result_problems(result) == [] and result["changed"] is False and result["executed"] == []
    return result


def make_tables(conn):
    conn.execute("CREATE TABLE vital_signs (id bigserial PRIMARY KEY, patient_id int, reading text)")
    conn.execute("INSERT INTO vital_signs (patient_id, reading) SELECT g % 100, md5(g::text) || repeat('r', 60) "
                 "FROM generate_series(1, 5000) g")
    conn.execute("CREATE INDEX idx_vital_signs_reading ON vital_signs (reading)")
    conn.execute("CREATE TABLE alarms (id bigserial PRIMARY KEY, note text)")
    conn.execute("INSERT INTO alarms (note) SELECT 'n' FROM generate_series(1, 10) g")


def test_review_lists_the_slowest_statements_and_the_largest_relations(pg_database, capsys):
    with psycopg.connect(**pg_database, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        make_tables(conn)
        for _call in range(2):
            conn.execute("SELECT pg_sleep(0.05)")
        long_query = "SELECT " + ", ".join(f"patient_id AS patient_number_{n}" for n in range(30)) + \
            " FROM vital_signs WHERE patient_id = 42"
        conn.execute(long_query)
        result = run_review(pg_database, capsys, top_statements=50, top_relations=2)
        sizes = dict(conn.execute("SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                                  "WHERE relname IN ('vital_signs', 'alarms')").fetchall())
        index_bytes = conn.execute("SELECT pg_relation_size('idx_vital_signs_reading')").fetchone()[0]
    statements = [r for r in result["records"] if r["action"] == "slow_statement"]
    assert all(r["status"] == "ok" and r["name"].startswith("statement ") for r in statements)
    slowest = statements[0]["after"]
    assert slowest["query"] == "SELECT pg_sleep($1)" and slowest["calls"] == 2 and slowest["mean_ms"] >= 45
    assert slowest["total_ms"] >= 2 * 45
    assert statements[0]["detail"].startswith(f"mean {slowest['mean_ms']:g} ms, 2 call(s)")
    shortened = next(r["after"]["query"] for r in statements if "patient_number_0" in r["after"]["query"])
    assert len(shortened) <= 120 and shortened.endswith("...") and "patient_number_" in shortened
    assert " ".join(shortened[:-3].split(" ")[:-1]) in long_query.replace("42", "$1")  # cut on a word boundary
    relations = [r for r in result["records"] if r["action"] == "relation_size"]
    tables = [r for r in relations if r["name"].startswith("table ")]
    assert [r["name"] for r in tables] == ["table public.vital_signs", "table public.alarms"]
    assert tables[0]["after"]["total_bytes"] == sizes["vital_signs"]
    assert tables[0]["after"]["total_bytes"] == tables[0]["after"]["table_bytes"] + tables[0]["after"]["index_bytes"]
    indexes = [r for r in relations if r["name"].startswith("index ")]
    assert indexes[0]["name"] == "index public.idx_vital_signs_reading" and len(indexes) == 2
    assert indexes[0]["after"]["bytes"] == index_bytes and indexes[0]["after"]["table"] == "public.vital_signs"


def test_review_without_the_extension_says_what_to_do(pg_database, capsys):
    with psycopg.connect(**pg_database, autocommit=True) as conn:
        make_tables(conn)
    result = run_review(pg_database, capsys, top_relations=1)
    first = result["records"][0]
    assert first["name"] == f"pg_stat_statements {pg_database['dbname']}"
    assert first["action"] == "slow_statement" and first["status"] == "unknown"
    assert first["detail"] == ("pg_stat_statements not installed: CREATE EXTENSION pg_stat_statements; "
                               "needs shared_preload_libraries")
    assert "CREATE EXTENSION pg_stat_statements" in first["after"]["remedy"]
    assert [r["name"] for r in result["records"][1:]] == ["table public.vital_signs",
                                                          "index public.idx_vital_signs_reading"]
