"""The statement router: kinds, FORMAT clauses, insert data, multi-statements, file access."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.embedded.errors import WarehouseError
from warehouse.embedded.sql import Kind, parse

FORMATS = frozenset({"json", "jsoneachrow", "native", "tabseparated", "csv"})


@pytest.mark.parametrize(
    ("sql", "kind", "fmt"),
    [
        ("SELECT 1", Kind.READ, None),
        ("  with x as (select 1) select * from x FORMAT JSON", Kind.READ, "JSON"),
        ("SELECT format FROM t", Kind.READ, None),
        ("SELECT 'FORMAT CSV' -- FORMAT JSON\n", Kind.READ, None),
        ("SELECT 1 /* FORMAT CSV */ FORMAT Native;", Kind.READ, "Native"),
        ("SELECT (SELECT 1 FORMAT JSON)", Kind.READ, None),
        ("SHOW TABLES", Kind.READ, None),
        ("SET max_threads = 1", Kind.SET, None),
        ("USE meterhouse", Kind.USE, None),
        ("CREATE TABLE t (a Int8) ENGINE = Memory", Kind.DDL, None),
        ("INSERT INTO t VALUES (1, ';')", Kind.INSERT, None),
    ],
)
def test_kind_and_format(sql: str, kind: Kind, fmt: str | None) -> None:
    statement = parse(sql, FORMATS)
    assert statement.kind is kind
    assert statement.format == fmt


def test_insert_data_starts_after_format_and_one_newline() -> None:
    text = "INSERT INTO t (a, b) FORMAT Native\n\x00\x01;SELECT 'x"
    statement = parse(text, FORMATS)
    assert statement.sql == "INSERT INTO t (a, b)"
    assert statement.format == "Native"
    assert text[statement.insert_data_offset :] == "\x00\x01;SELECT 'x"


@pytest.mark.parametrize("sql", ["SELECT 1; SELECT 2", "DROP TABLE a; DROP TABLE b;"])
def test_multi_statements_are_refused(sql: str) -> None:
    with pytest.raises(WarehouseError) as raised:
        parse(sql, FORMATS)
    assert raised.value.code == 62


@pytest.mark.parametrize(
    ("sql", "feature"),
    [
        ("SELECT * FROM file('x.csv')", "table function file()"),
        ("SELECT * FROM URL('http://h/x', CSV)", "table function url()"),
        ("SELECT 1 INTO OUTFILE 'x'", "INTO OUTFILE"),
        ("SELECT 'file(' FROM t", None),
        ("SELECT file FROM t", None),
    ],
)
def test_outside_world_detection(sql: str, feature: str | None) -> None:
    assert parse(sql, FORMATS).touches_outside_world() == feature


@given(st.text())
def test_parse_never_crashes_on_arbitrary_text(text: str) -> None:
    try:
        parse(text, FORMATS)
    except WarehouseError as error:
        assert error.code == 62


@given(st.text(alphabet=st.characters(blacklist_characters="'\\"), max_size=40))
def test_semicolons_inside_strings_are_not_statement_ends(inner: str) -> None:
    statement = parse(f"SELECT '{inner}; {inner}'", FORMATS)
    assert statement.kind is Kind.READ
