"""create_indexes' pure parts (pg_indexes.py): the index list, the statement, the definition comparison, records."""
from __future__ import annotations

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.pg import PgError
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_indexes import (
    Outcome,
    IndexWork,
    create_statement,
    indexes_result,
    parse_index_specs,
    printed_definition,
    same_definition,
    split_indexdef,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems

BY_CLIENT = {"name": "Idx_Trades_Client", "table": "Trades", "columns": ["created_at", "Client_Id"]}


def test_the_index_list_is_parsed_and_folded_like_sql_names():
    spec = parse_index_specs([BY_CLIENT, {"name": "idx_open", "table": "ops.alarms", "expression": " lower(note) ",
                                          "where": "acked IS NULL", "unique": True, "method": "BTREE"}])
    assert (spec[0].qualified_name, spec[0].qualified_table, spec[0].columns) == (
        "public.idx_trades_client", "public.trades", ("created_at", "client_id"))
    assert (spec[1].schema, spec[1].expression, spec[1].where, spec[1].unique, spec[1].method) == (
        "ops", "lower(note)", "acked IS NULL", True, "btree")


@pytest.mark.parametrize("items, words", [
    ([], "non-empty list"),
    ([{"name": "a b", "table": "t", "columns": ["x"]}], "index name 'a b'"),
    ([{"name": "i", "table": "s.t.u", "columns": ["x"]}], "'s.t.u'"),
    ([{"name": "i", "table": "t"}], "exactly one of 'columns'"),
    ([{"name": "i", "table": "t", "columns": ["x"], "expression": "lower(x)"}], "exactly one of 'columns'"),
    ([{"name": "i", "table": "t", "columns": ["x desc"]}], "column 'x desc'"),
    ([{"name": "i", "table": "t", "columns": ["x"], "where": " "}], "'where' is empty"),
    ([{"name": "i", "table": "t", "columns": ["x"]}, {"name": "I", "table": "u", "columns": ["y"]}], "listed twice"),
])
def test_a_bad_index_list_fails_naming_the_value(items, words):
    with pytest.raises(PgError) as raised:
        parse_index_specs(items)
    assert words in raised.value.msg


def test_the_statement_quotes_names_and_keeps_the_operators_sql_as_written():
    spec = parse_index_specs([{"name": "idx_open", "table": "alarms", "expression": "lower(note), id DESC",
                               "where": "acked IS NULL AND id % 2 = 0", "unique": True}])[0]
    assert create_statement(spec).as_string(None) == (
        'CREATE UNIQUE INDEX CONCURRENTLY "idx_open" ON "public"."alarms" USING "btree" (lower(note), id DESC) '
        "WHERE (acked IS NULL AND id % 2 = 0)")
    plain = parse_index_specs([BY_CLIENT])[0]
    assert create_statement(plain, concurrently=False).as_string(None) == (
        'CREATE INDEX "idx_trades_client" ON "public"."trades" USING "btree" ("created_at", "client_id")')


def test_definitions_compare_as_postgresql_prints_them():
    spec = parse_index_specs([BY_CLIENT])[0]
    probe = "CREATE INDEX idx_trades_client ON pg_temp.streamops_index_probe USING btree (created_at, client_id)"
    wanted = printed_definition(spec, probe)
    assert wanted == "CREATE INDEX idx_trades_client ON public.trades USING btree (created_at, client_id)"
    assert same_definition(wanted, "CREATE INDEX idx_trades_client ON trades USING btree (created_at, client_id)")
    assert not same_definition(wanted, wanted.replace("CREATE INDEX", "CREATE UNIQUE INDEX"))
    assert not same_definition(wanted, wanted.replace("client_id)", "client_id DESC)"))
    assert not same_definition(wanted, wanted + " WHERE (client_id > 0)")
    assert split_indexdef("CREATE UNIQUE INDEX i ON ONLY p USING btree (x)") == (True, "btree (x)")
    with pytest.raises(PgError):
        split_indexdef("ALTER TABLE t")


def test_the_result_fails_on_a_refused_index_and_keeps_the_record_shape():
    spec = parse_index_specs([BY_CLIENT])[0]
    before = {"definition": "CREATE INDEX idx_trades_client ON public.trades USING btree (qty)", "valid": True,
              "bytes": 8192}
    refused = IndexWork(spec, statement="CREATE ...", wanted="CREATE INDEX ... (created_at, client_id)", before=before,
                        plan="conflict", status="failed", reason="refused: both definitions")
    built = IndexWork(spec, statement="CREATE ...", wanted="w", plan="rebuild", status="done", seconds=0.5,
                      state_after={"definition": "w", "valid": True, "bytes": 16384}, measured_after=True)
    result = indexes_result(Outcome(works=[refused, built]), check_mode=False, diff_mode=True)
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"].endswith("failed: public.idx_trades_client: refused: both definitions")
    assert result_problems(result) == []
    assert built.record()["after"] == {"definition": "w", "valid": True, "bytes": 16384, "build_seconds": 0.5}
    assert built.record()["detail"] == "invalid leftover of a failed build dropped and rebuilt: built in 0.5 s, 16.0 kB"
