"""The performance review's records (pg_performance.py) and their Markdown tables in the report (maintenance_report.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ansible_collections.streamops.maintenance.plugins.module_utils.maintenance_report import RunLog, render_markdown
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_performance import (
    NOT_INSTALLED,
    relation_records,
    shorten_statement,
    statement_records,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import record_problems

T0 = datetime(2026, 12, 6, 2, 0, tzinfo=timezone.utc)
SLOW = {"queryid": -4711, "calls": 3, "mean_ms": 52.25, "total_ms": 156.75, "rows": 3,
        "query": "SELECT pg_sleep($1)\n  -- wait | here"}
TABLE = {"schema": "public", "name": "vital_signs", "total_bytes": 52428800, "table_bytes": 41943040,
         "index_bytes": 10485760}
INDEX = {"schema": "public", "name": "idx_vital_signs_reading", "table_name": "public.vital_signs",
         "bytes": 8388608, "valid": True, "scans": 0}


def test_a_statement_is_shortened_on_a_word_boundary():
    assert shorten_statement("SELECT 1\n FROM  t") == "SELECT 1 FROM t"
    long_text = "SELECT " + ", ".join(f"column_{n}" for n in range(40)) + " FROM readings WHERE id = $1"
    short = shorten_statement(long_text)
    assert len(short) <= 120 and short.endswith("...")
    assert long_text.startswith(short[:-3]) and long_text[len(short) - 3] in " ,"
    assert shorten_statement("x" * 300) == "x" * 117 + "..."  # no space to cut at


def test_statement_and_relation_records_keep_the_shape():
    records = statement_records({"available": True, "installed": True, "statements": [SLOW]}, "vitalstream")
    records += relation_records([TABLE], [INDEX])
    assert all(record_problems(r) == [] for r in records)
    assert records[0]["name"] == "statement -4711" and records[0]["action"] == "slow_statement"
    assert records[0]["after"] == {"mean_ms": 52.25, "calls": 3, "total_ms": 156.75,
                                   "query": "SELECT pg_sleep($1) -- wait | here"}
    assert [r["name"] for r in records[1:]] == ["table public.vital_signs", "index public.idx_vital_signs_reading"]
    assert records[1]["detail"] == "50.0 MB (table 40.0 MB, indexes 10.0 MB)"
    missing = statement_records({"available": False, "installed": False, "reason": "x", "statements": []}, "db")
    assert missing[0]["status"] == "unknown" and missing[0]["detail"] == NOT_INSTALLED
    assert "CREATE EXTENSION pg_stat_statements in database db" in missing[0]["after"]["remedy"]
    unreadable = statement_records({"available": False, "installed": True, "reason": "must be loaded via "
                                    "shared_preload_libraries", "statements": []}, "db")
    assert "shared_preload_libraries" in unreadable[0]["after"]["remedy"]


def test_the_report_shows_the_review_as_tables_under_performance_review():
    run = RunLog(started=T0, playbook="monthly.yml")
    run.task_started("db1")
    records = statement_records({"available": True, "installed": True, "statements": [SLOW]}, "vitalstream")
    records += relation_records([TABLE], [INDEX])
    run.keep_role_records("db1", "postgres_routine", records)
    run.task_started("db2")
    run.keep_role_records("db2", "postgres_routine", statement_records(
        {"available": False, "installed": False, "reason": "x", "statements": []}, "vitalstream"))
    report = run.report(finished=T0 + timedelta(minutes=1), lead="lead")
    markdown = render_markdown(report)
    assert ("### Performance review\n\n"
            "| mean ms | calls | total ms | statement |\n|---:|---:|---:|---|\n"
            "| 52.25 | 3 | 156.75 | SELECT pg_sleep($1) -- wait \\| here |\n\n"
            "| relation | bytes |\n|---|---:|\n"
            "| table public.vital_signs | 50.0 MB |\n"
            "| index public.idx_vital_signs_reading | 8.0 MB |\n") in markdown
    # The tables replace a Validation line per row; the review is never a planned change.
    db1 = report["hosts"]["db1"]
    assert db1["validation"] == [] and db1["planned_changes"] == [] and db1["issues"] == []
    db2 = markdown.split("## db2", 1)[1]
    assert f"### Performance review\n\n- pg_stat_statements vitalstream: unknown: {NOT_INSTALLED}. What to do: " in db2
    assert report["hosts"]["db2"]["issues"] == [f"pg_stat_statements vitalstream: unknown: {NOT_INSTALLED}"]
