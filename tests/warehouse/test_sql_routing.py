"""The statement router: kinds, FORMAT clauses, insert data, multi-statements, file access."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.embedded.errors import WarehouseError
from warehouse.embedded.sql import Kind, parse, parse_insert_head

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


# Pieces of INSERT heads where a cut can fall: quotes, comments, heredocs, a FORMAT clause inside
# each, and the real clause.
_HEAD_PIECES = st.sampled_from(
    [
        " ", "\n", "(a, b)", "t", "db.t", "SETTINGS x = 1", "'it''s FORMAT CSV'",
        "'a\\' FORMAT CSV'", '"FORMAT CSV"', "`format`", "-- FORMAT CSV\n", "# FORMAT CSV\n",
        "/* FORMAT CSV */",
        "$$ FORMAT CSV $$", "$t$ FORMAT CSV $t$", "1/2", "FORMAT", "CSVWithNames", "é", ";",
    ]
)  # fmt: skip


@given(
    st.lists(_HEAD_PIECES, max_size=12),
    st.sampled_from(["FORMAT CSV\n", "FORMAT Native\r\n", "FORMAT JSONEachRow ", "format csv"]),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=120),
)
def test_insert_head_parses_like_the_whole_text(
    pieces: list[str], clause: str, data: bytes, window: int
) -> None:
    head = ("INSERT INTO t " + " ".join(pieces) + " " + clause).encode() + data

    def outcome(read):  # type: ignore[no-untyped-def]
        try:
            return read()
        except WarehouseError as error:
            return error.code

    whole = outcome(lambda: parse(head.decode("latin-1"), FORMATS))
    assert outcome(lambda: parse_insert_head(head, FORMATS, window=window)) == whole


@pytest.mark.parametrize(
    "head", [b"INSERT INTO t FORMAT CSV\r\n1,2\n", b"INSERT INTO t FORMAT CSVWithNames\na\n1\n"]
)
def test_insert_head_cut_at_every_position(head: bytes) -> None:
    whole = parse(head.decode("latin-1"), FORMATS)
    for window in range(1, len(head) + 1):
        assert parse_insert_head(head, FORMATS, window=window) == whole, window
