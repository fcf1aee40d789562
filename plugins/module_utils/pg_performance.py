# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""performance_review of pg_maintenance: the slowest statements and the largest tables and indexes, read-only.

The statements come from pg_stat_statements of the database reviewed, with the text as the extension
stores it (constants replaced by ``$1``, ``$2``: PostgreSQL's normalisation), shortened on a word
boundary. Without the extension the review says so in an ``unknown`` record with what to do.
"""

from __future__ import annotations

import re
from typing import Any

from . import pg_admin
from .pg_stats import LOCKED_CTE
from .records import human_bytes, make_record

STATEMENT_WIDTH = 120
# Read wider than shown, so the cut falls on a word boundary of the real text.
STATEMENT_READ_WIDTH = 1000
NOT_INSTALLED = "pg_stat_statements not installed: CREATE EXTENSION pg_stat_statements; needs shared_preload_libraries"

SCOPE = """
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
   AND (%(schemas)s::text[] IS NULL OR n.nspname = ANY(%(schemas)s::text[]))
   AND NOT (n.nspname = ANY(%(exclude)s::text[]))
"""
# Relations another session holds ACCESS EXCLUSIVE are listed without sizes: the size functions would wait.
LARGEST_TABLES_SQL = LOCKED_CTE + """
SELECT n.nspname AS schema, c.relname AS name,
       CASE WHEN lt.pid IS NULL THEN pg_total_relation_size(c.oid) END AS total_bytes,
       CASE WHEN lt.pid IS NULL THEN pg_table_size(c.oid) END AS table_bytes,
       CASE WHEN lt.pid IS NULL THEN pg_indexes_size(c.oid) END AS index_bytes
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN locked_tables lt ON lt.oid = c.oid
 WHERE c.relkind IN ('r', 'm', 'p')""" + SCOPE + """
 ORDER BY 3 DESC NULLS LAST, 1, 2
 LIMIT %(limit)s
"""
LARGEST_INDEXES_SQL = LOCKED_CTE + """
SELECT n.nspname AS schema, ic.relname AS name, n.nspname || '.' || t.relname AS table_name,
       CASE WHEN lt.pid IS NULL THEN pg_relation_size(ic.oid) END AS bytes, i.indisvalid AS valid,
       COALESCE(s.idx_scan, 0) AS scans
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = i.indexrelid
  LEFT JOIN locked_tables lt ON lt.oid = t.oid
 WHERE t.relkind IN ('r', 'm')""" + SCOPE + """
 ORDER BY 4 DESC NULLS LAST, 1, 2
 LIMIT %(limit)s
"""


def shorten_statement(text: Any, width: int = STATEMENT_WIDTH) -> str:
    """One line of at most ``width`` characters, cut on a word boundary with ``...`` when longer."""
    line = re.sub(r"\s+", " ", str(text or "")).strip()
    if len(line) <= width:
        return line
    cut = line[:width - 3]
    space = cut.rfind(" ")
    # A single long token (a huge IN list without spaces) is cut where it is.
    if space > width // 2:
        cut = cut[:space]
    return cut.rstrip(" ,(") + "..."


def statement_records(found: dict[str, Any], database: str) -> list[dict[str, Any]]:
    """``statement <queryid>`` ok per statement, or one ``unknown`` record saying why there are none."""
    if not found["available"]:
        name = f"pg_stat_statements {database}"
        if not found.get("installed", True):
            remedy = (f"CREATE EXTENSION pg_stat_statements in database {database} (as its owner or a superuser); "
                      "the server needs pg_stat_statements in shared_preload_libraries, which takes a restart")
            return [make_record(name, "slow_statement", "unknown", NOT_INSTALLED,
                                after={"reason": NOT_INSTALLED, "remedy": remedy})]
        reason = f"pg_stat_statements cannot be read: {found['reason']}"
        remedy = ("add pg_stat_statements to shared_preload_libraries and restart PostgreSQL, or grant "
                  "pg_read_all_stats to the maintenance user")
        return [make_record(name, "slow_statement", "unknown", reason, after={"reason": reason, "remedy": remedy})]
    records = []
    for row in found["statements"]:
        query = shorten_statement(row["query"])
        after = {"mean_ms": row["mean_ms"], "calls": row["calls"], "total_ms": row["total_ms"], "query": query}
        records.append(make_record(
            f"statement {row['queryid']}", "slow_statement", "ok",
            f"mean {row['mean_ms']:g} ms, {row['calls']} call(s), total {row['total_ms']:g} ms: {query}", after=after))
    return records


def relation_records(tables: list[dict[str, Any]], indexes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``table <schema.table>`` and ``index <schema.index>``, action relation_size, ok, with their bytes."""
    records = []
    for row in tables:
        after = {"total_bytes": row["total_bytes"], "table_bytes": row["table_bytes"], "index_bytes": row["index_bytes"]}
        detail = (f"{human_bytes(row['total_bytes'])} (table {human_bytes(row['table_bytes'])}, "
                  f"indexes {human_bytes(row['index_bytes'])})")
        if row["total_bytes"] is None:
            detail += ": not measured, another session holds the table exclusively"
        records.append(make_record(f"table {row['schema']}.{row['name']}", "relation_size", "ok", detail, after=after))
    for row in indexes:
        after = {"bytes": row["bytes"], "table": row["table_name"], "scans": row["scans"], "valid": row["valid"]}
        detail = f"{human_bytes(row['bytes'])} on {row['table_name']}, {row['scans']} scan(s)"
        if not row["valid"]:
            detail += ", INVALID"
        records.append(make_record(f"index {row['schema']}.{row['name']}", "relation_size", "ok", detail, after=after))
    return records


def _rows(conn: Any, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = conn.execute(query, params)
    names = [d.name for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def largest_relations(conn: Any, *, limit: int, schemas: list[str] | None = None,
                      exclude_schemas: list[str] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``limit`` largest tables (total bytes) and the ``limit`` largest indexes of the schemas in scope."""
    if limit <= 0:
        return [], []
    params = {"limit": limit, "schemas": schemas or None, "exclude": exclude_schemas or []}
    return _rows(conn, LARGEST_TABLES_SQL, params), _rows(conn, LARGEST_INDEXES_SQL, params)


def performance_review(conn: Any, params: dict[str, Any], server_version: int) -> dict[str, Any]:
    """The read-only review: slowest statements by mean time, then the largest tables and indexes."""
    database = conn.info.dbname
    records: list[dict[str, Any]] = []
    if params["top_statements"] > 0:
        found = pg_admin.top_statements(conn, limit=params["top_statements"], server_version=server_version,
                                        width=STATEMENT_READ_WIDTH, this_database_only=True)
        records += statement_records(found, database)
    tables, indexes = largest_relations(conn, limit=params["top_relations"], schemas=params.get("schemas"),
                                        exclude_schemas=params.get("exclude_schemas"))
    records += relation_records(tables, indexes)
    statements = sum(r["name"].startswith("statement ") for r in records)
    msg = f"performance review of {database}: {statements} statement(s), {len(tables)} table(s), {len(indexes)} index(es)"
    unknown = [r for r in records if r["status"] == "unknown"]
    if unknown:
        msg += "; " + unknown[0]["detail"]
    return {"changed": False, "msg": msg, "records": records, "executed": [], "warnings_detail": []}
