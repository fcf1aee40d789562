# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""What a PostgreSQL database's tables and indexes look like: sizes, dead tuples, estimated bloat.

The bloat estimate is the usual one from ``pg_stats`` (expected pages for the
live rows at their average width, against the pages the relation really has).
It is wrong when the statistics are stale or missing, and ``pg_stats`` hides
the rows of tables the user cannot read; both are detected and the estimate is
then ``None`` with the reason, never a silently wrong figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


PAGE_HEADER = 24
ITEM_ID = 4
HEAP_TUPLE_HEADER = 23
INDEX_TUPLE_HEADER = 8
BTREE_SPECIAL = 16
MAXALIGN = 8
DEFAULT_INDEX_FILLFACTOR = 90

# Size functions take ACCESS SHARE on the table and its indexes, so they would wait on a
# table another session holds exclusively: such tables are reported unmeasured instead.
LOCKED_CTE = """
WITH locked AS (
  SELECT l.relation, min(l.pid) AS pid FROM pg_locks l
   WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.granted
     AND l.pid <> pg_backend_pid()
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   GROUP BY l.relation),
locked_tables AS (
  SELECT c.oid, min(l.pid) AS pid FROM pg_class c JOIN locked l
      ON l.relation = c.oid OR l.relation IN (SELECT indexrelid FROM pg_index WHERE indrelid = c.oid)
   GROUP BY c.oid)
"""

TABLES_SQL = LOCKED_CTE + """
SELECT n.nspname AS schema, c.relname AS name, c.oid, c.reltuples, lt.pid AS locked_by,
       CASE WHEN lt.pid IS NULL THEN pg_relation_size(c.oid) END AS table_bytes,
       CASE WHEN lt.pid IS NULL THEN pg_indexes_size(c.oid) END AS index_bytes,
       CASE WHEN lt.pid IS NULL THEN pg_total_relation_size(c.oid) END AS total_bytes,
       COALESCE(s.n_live_tup, 0) AS live_tuples, COALESCE(s.n_dead_tup, 0) AS dead_tuples,
       COALESCE(s.n_mod_since_analyze, 0) AS mod_since_analyze,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       has_table_privilege(c.oid, 'SELECT') AS readable,
       COALESCE((SELECT o.option_value::int FROM pg_options_to_table(c.reloptions) o
                 WHERE o.option_name = 'fillfactor'), 100) AS fillfactor,
       (SELECT count(*) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       st.with_stats, st.data_width, st.max_null_frac
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
  LEFT JOIN locked_tables lt ON lt.oid = c.oid
  LEFT JOIN LATERAL (
       SELECT count(*) AS with_stats, sum((1 - ps.null_frac) * ps.avg_width) AS data_width,
              max(ps.null_frac) AS max_null_frac
         FROM pg_stats ps
        WHERE %(bloat)s AND ps.schemaname = n.nspname AND ps.tablename = c.relname AND NOT ps.inherited) st ON true
 WHERE c.relkind IN ('r', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
   AND (%(only)s::text[] IS NULL OR n.nspname || '.' || c.relname = ANY(%(only)s::text[]))
 ORDER BY n.nspname, c.relname
"""

INDEXES_SQL = LOCKED_CTE + """
SELECT n.nspname AS schema, t.relname AS table_name, ic.relname AS name, ic.reltuples,
       CASE WHEN lt.pid IS NULL THEN pg_relation_size(i.indexrelid) END AS bytes,
       am.amname AS method, i.indisvalid AS valid,
       COALESCE((SELECT o.option_value::int FROM pg_options_to_table(ic.reloptions) o
                 WHERE o.option_name = 'fillfactor'), %(default_fillfactor)s) AS fillfactor,
       i.indnatts AS key_columns, (0 = ANY (i.indkey::int2[])) AS has_expression,
       ks.with_stats, ks.key_width
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_am am ON am.oid = ic.relam
  LEFT JOIN locked_tables lt ON lt.oid = t.oid
  LEFT JOIN LATERAL (
       SELECT count(ps.attname) AS with_stats, sum((1 - ps.null_frac) * ps.avg_width) AS key_width
         FROM unnest(i.indkey::int2[]) AS k(attnum)
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
         LEFT JOIN pg_stats ps ON ps.schemaname = n.nspname AND ps.tablename = t.relname
                              AND ps.attname = a.attname AND NOT ps.inherited) ks ON true
 WHERE t.relkind IN ('r', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
   AND (%(only)s::text[] IS NULL OR n.nspname || '.' || t.relname = ANY(%(only)s::text[]))
 ORDER BY n.nspname, t.relname, ic.relname
"""


def maxalign(size: float) -> int:
    return int(math.ceil(size / MAXALIGN) * MAXALIGN)


@dataclass
class BloatEstimate:
    ratio: float | None
    bytes: int | None
    reason: str | None = None

    @property
    def known(self) -> bool:
        return self.ratio is not None


def estimate_table_bloat(*, actual_bytes: int, reltuples: float, columns: int, data_width: float,
                         max_null_frac: float, fillfactor: int, block_size: int) -> BloatEstimate:
    """Bloat of a heap from its real size and the pages its live rows need at their average width."""
    if actual_bytes <= 0:
        return BloatEstimate(0.0, 0)
    null_bitmap = math.ceil(columns / 8) if max_null_frac > 0 else 0
    tuple_bytes = maxalign(HEAP_TUPLE_HEADER + null_bitmap) + maxalign(data_width)
    usable = (block_size - PAGE_HEADER) * fillfactor / 100
    per_page = max(1, math.floor(usable / (tuple_bytes + ITEM_ID)))
    expected_pages = math.ceil(max(reltuples, 0) / per_page)
    actual_pages = math.ceil(actual_bytes / block_size)
    bloat_pages = max(0, actual_pages - expected_pages)
    return BloatEstimate(round(bloat_pages / actual_pages, 4), bloat_pages * block_size)


def estimate_btree_bloat(*, actual_bytes: int, reltuples: float, key_width: float, fillfactor: int,
                         block_size: int) -> BloatEstimate:
    """Bloat of a btree index: leaf pages its entries need at the fill factor, plus the meta page."""
    if actual_bytes <= 0:
        return BloatEstimate(0.0, 0)
    entry = maxalign(INDEX_TUPLE_HEADER + key_width) + ITEM_ID
    usable = (block_size - PAGE_HEADER - BTREE_SPECIAL) * fillfactor / 100
    per_page = max(1, math.floor(usable / entry))
    expected_pages = math.ceil(max(reltuples, 0) / per_page) + 1
    actual_pages = math.ceil(actual_bytes / block_size)
    bloat_pages = max(0, actual_pages - expected_pages)
    return BloatEstimate(round(bloat_pages / actual_pages, 4), bloat_pages * block_size)


def statistics_problem(row: dict[str, Any], *, stale_ratio: float) -> str | None:
    """Why ``pg_stats`` cannot be trusted for this table, or None when it can."""
    if row.get("locked_by"):
        return f"locked exclusively by pid {row['locked_by']}, so not measured"
    if not row["readable"]:
        return "no SELECT privilege on the table, so pg_stats hides its statistics"
    if row["reltuples"] is not None and row["reltuples"] < 0:
        return "never analyzed (reltuples unknown)"
    if (row["with_stats"] or 0) < row["columns"]:
        return (f"statistics missing for {row['columns'] - (row['with_stats'] or 0)} of {row['columns']} "
                "columns (not analyzed since they were added)")
    if row["last_analyze"] is None and row["last_autoanalyze"] is None and row["columns"]:
        return "never analyzed"
    modified, tuples = row["mod_since_analyze"], max(row["reltuples"] or 0, 0)
    if modified > max(50, stale_ratio * tuples):
        return (f"statistics stale: {modified} rows changed since the last analyze "
                f"({modified / max(tuples, 1):.0%} of {int(tuples)})")
    return None


@dataclass
class IndexInfo:
    name: str
    method: str
    valid: bool
    bytes: int | None
    bloat: BloatEstimate

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "valid": self.valid, "bytes": self.bytes,
                "bloat_ratio": self.bloat.ratio, "bloat_bytes": self.bloat.bytes,
                "bloat_note": self.bloat.reason}


@dataclass
class TableInfo:
    schema: str
    name: str
    table_bytes: int | None
    index_bytes: int | None
    total_bytes: int | None
    live_tuples: int
    dead_tuples: int
    mod_since_analyze: int
    last_vacuum: str | None
    last_autovacuum: str | None
    last_analyze: str | None
    last_autoanalyze: str | None
    stats_problem: str | None
    bloat: BloatEstimate
    indexes: list[IndexInfo] = field(default_factory=list)
    locked_by: int | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def dead_ratio(self) -> float:
        total = self.live_tuples + self.dead_tuples
        return round(self.dead_tuples / total, 4) if total else 0.0

    @property
    def index_bloat(self) -> BloatEstimate:
        """The worst btree index of the table (what a REINDEX would win back)."""
        known = [i.bloat for i in self.indexes if i.bloat.known]
        unknown = [i for i in self.indexes if not i.bloat.known]
        if not self.indexes:
            return BloatEstimate(0.0, 0, "no indexes")
        if not known:
            return BloatEstimate(None, None, unknown[0].bloat.reason)
        worst = max(known, key=lambda b: b.ratio or 0)
        return BloatEstimate(worst.ratio, sum(b.bytes or 0 for b in known),
                             f"{len(unknown)} index(es) without an estimate" if unknown else None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.qualified_name, "table_bytes": self.table_bytes, "index_bytes": self.index_bytes,
            "total_bytes": self.total_bytes, "live_tuples": self.live_tuples, "dead_tuples": self.dead_tuples,
            "dead_ratio": self.dead_ratio, "mod_since_analyze": self.mod_since_analyze,
            "bloat_ratio": self.bloat.ratio, "bloat_bytes": self.bloat.bytes, "bloat_note": self.bloat.reason,
            "index_bloat_ratio": self.index_bloat.ratio, "statistics": self.stats_problem or "fresh",
            "last_vacuum": self.last_vacuum, "last_autovacuum": self.last_autovacuum,
            "last_analyze": self.last_analyze, "last_autoanalyze": self.last_autoanalyze,
            "indexes": [i.as_dict() for i in self.indexes],
        }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def read_tables(conn: Any, *, stale_ratio: float = 0.2, only: list[str] | None = None,
                estimate_bloat: bool = True) -> dict[str, TableInfo]:
    """Every user table of the database (or the ``only`` schema.name ones), keyed by schema.name,
    with its indexes and bloat estimates (skipped, and cheaper, with ``estimate_bloat=False``)."""
    block_size = int(conn.execute("SHOW block_size").fetchone()[0])
    cursor = conn.cursor()
    tables: dict[str, TableInfo] = {}
    cursor.execute(TABLES_SQL, {"only": only, "bloat": estimate_bloat})
    names = [d.name for d in cursor.description]
    for values in cursor.fetchall():
        row = dict(zip(names, values))
        problem = statistics_problem(row, stale_ratio=stale_ratio) if estimate_bloat else None
        if not estimate_bloat:
            bloat = BloatEstimate(None, None, "not estimated for this operation")
        elif problem:
            bloat = BloatEstimate(None, None, f"bloat unknown: {problem}")
        else:
            bloat = estimate_table_bloat(
                actual_bytes=row["table_bytes"], reltuples=row["reltuples"], columns=row["columns"],
                data_width=float(row["data_width"] or 0), max_null_frac=float(row["max_null_frac"] or 0),
                fillfactor=row["fillfactor"], block_size=block_size)
        table = TableInfo(
            schema=row["schema"], name=row["name"], table_bytes=row["table_bytes"],
            index_bytes=row["index_bytes"], total_bytes=row["total_bytes"], live_tuples=row["live_tuples"],
            dead_tuples=row["dead_tuples"], mod_since_analyze=row["mod_since_analyze"],
            last_vacuum=_iso(row["last_vacuum"]), last_autovacuum=_iso(row["last_autovacuum"]),
            last_analyze=_iso(row["last_analyze"]), last_autoanalyze=_iso(row["last_autoanalyze"]),
            stats_problem=problem, bloat=bloat, locked_by=row["locked_by"])
        tables[table.qualified_name] = table
    if not estimate_bloat:
        return tables
    cursor.execute(INDEXES_SQL, {"default_fillfactor": DEFAULT_INDEX_FILLFACTOR, "only": only})
    names = [d.name for d in cursor.description]
    for values in cursor.fetchall():
        row = dict(zip(names, values))
        table = tables.get(f"{row['schema']}.{row['table_name']}")
        if table is None:
            continue
        table.indexes.append(IndexInfo(row["name"], row["method"], row["valid"], row["bytes"],
                                       _index_bloat(row, table, block_size)))
    return tables


def _index_bloat(row: dict[str, Any], table: TableInfo, block_size: int) -> BloatEstimate:
    if row["method"] != "btree":
        return BloatEstimate(None, None, f"no estimate for {row['method']} indexes")
    if table.stats_problem:
        return BloatEstimate(None, None, f"bloat unknown: {table.stats_problem}")
    if row["has_expression"] or (row["with_stats"] or 0) < row["key_columns"]:
        return BloatEstimate(None, None, "bloat unknown: expression or column without statistics")
    return estimate_btree_bloat(actual_bytes=row["bytes"], reltuples=row["reltuples"],
                                key_width=float(row["key_width"] or 0), fillfactor=row["fillfactor"],
                                block_size=block_size)


# --------------------------------------------------------------------------- server

def read_server(conn: Any, *, server_version: int) -> dict[str, Any]:
    """Version and connection use of the server: the daily health check's PostgreSQL figures."""
    # numbackends counts every session connected to a database, whoever owns it; pg_stat_activity
    # hides other users' backend_type from a role without pg_read_all_stats.
    connections = int(conn.execute("SELECT coalesce(sum(numbackends), 0) FROM pg_stat_database").fetchone()[0])
    maximum = int(conn.execute("SHOW max_connections").fetchone()[0])
    return {
        "version": conn.execute("SHOW server_version").fetchone()[0],
        "version_num": server_version,
        "connections": connections,
        "max_connections": maximum,
        "connections_percent": round(connections * 100 / maximum, 1),
    }
