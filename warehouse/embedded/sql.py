"""Just enough of ClickHouse's lexer to route a statement safely.

The server must know, without executing anything: how many statements a request holds, what kind
the statement is (read, insert, SET, USE, DDL), its FORMAT clause, where an INSERT's inline data
starts, and whether it touches files or the network. A real tokenizer is needed for that: a
``format`` column, a ``';'`` inside a string or a ``FORMAT`` in a comment must not fool it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from warehouse.embedded.errors import SYNTAX_ERROR, WarehouseError

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|\#[^\n]*|/\*(?:[^*]|\*(?!/))*\*/)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<quoted>"(?:[^"\\]|\\.|"")*"|`(?:[^`\\]|\\.|``)*`)
  | (?P<heredoc>\$(?P<tag>[A-Za-z0-9_]*)\$.*?\$(?P=tag)\$)
  | (?P<number>\d[\w.]*(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<semicolon>;)
  | (?P<open>[(\[{])
  | (?P<close>[)\]}])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class Kind(Enum):
    READ = "read"  # returns rows: SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN
    INSERT = "insert"
    SET = "set"
    USE = "use"
    DDL = "ddl"  # everything else: CREATE, ALTER, DROP, TRUNCATE, OPTIMIZE, SYSTEM, ...


_READ_KEYWORDS = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK"}

# Table functions that reach files, other servers or programs: admin only.
EXTERNAL_TABLE_FUNCTIONS = {
    "file", "url", "urlcluster", "s3", "s3cluster", "gcs", "azureblobstorage", "hdfs",
    "hdfscluster", "remote", "remotesecure", "cluster", "clusterallreplicas", "mysql",
    "postgresql", "sqlite", "mongodb", "redis", "odbc", "jdbc", "executable", "input",
    "deltalake", "hudi", "iceberg", "filesystem", "fuzzjson",
}  # fmt: skip


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int
    depth: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def iter_tokens(sql: str) -> Iterator[Token]:
    """Significant tokens (no whitespace or comments), each with its parenthesis depth.

    Lazy, so that an INSERT's header can be read without scanning the data after it.
    """
    depth = 0
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "other"
        if kind == "tag":
            kind = "heredoc"
        if kind in ("ws", "comment"):
            continue
        if kind == "close":
            depth = max(depth - 1, 0)
        yield Token(kind, match.group(), match.start(), match.end(), depth)
        if kind == "open":
            depth += 1


def tokenize(sql: str) -> list[Token]:
    return list(iter_tokens(sql))


@dataclass(frozen=True)
class Statement:
    sql: str  # the statement text, without a trailing semicolon or inline data
    kind: Kind
    tokens: list[Token]
    format: str | None  # the FORMAT clause's format name, if any
    insert_data_offset: int | None  # INSERT ... FORMAT X: where the data starts in the text

    @property
    def first_keyword(self) -> str:
        return self.tokens[0].upper if self.tokens else ""

    def touches_outside_world(self) -> str | None:
        """The name of a file/network feature the statement uses, if any."""
        for index, token in enumerate(self.tokens):
            following = self.tokens[index + 1] if index + 1 < len(self.tokens) else None
            if token.kind != "word" or following is None:
                continue
            if token.upper == "INTO" and following.upper == "OUTFILE":
                return "INTO OUTFILE"
            if token.text.lower() in EXTERNAL_TABLE_FUNCTIONS and following.text == "(":
                return f"table function {token.text.lower()}()"
            if token.upper == "FROM" and following.upper == "INFILE":
                return "FROM INFILE"
        return None

    def insert_target(self) -> tuple[str | None, str, str] | None:
        """``INSERT INTO [TABLE] [db.]table [(columns)]``: (database or None, table, the column
        list as SQL or ""); None when it inserts into a table function."""
        tokens = self.tokens
        index = 1
        for keyword in ("INTO", "TABLE"):
            if index < len(tokens) and tokens[index].upper == keyword:
                index += 1
        if index >= len(tokens) or tokens[index].upper == "FUNCTION":
            return None
        database, table = None, tokens[index].text.strip('`"')
        if index + 2 < len(tokens) and tokens[index + 1].text == ".":
            database, table = table, tokens[index + 2].text.strip('`"')
            index += 2
        columns = ""
        if index + 1 < len(tokens) and tokens[index + 1].text == "(":
            closing = next(
                (i for i in range(index + 2, len(tokens))
                 if tokens[i].text == ")" and tokens[i].depth == tokens[index + 1].depth),
                None,
            )  # fmt: skip
            if closing is not None:
                columns = " ".join(token.text for token in tokens[index + 1 : closing + 1])
        return database, table, columns

    def set_assignments(self) -> list[str]:
        """Setting names a SET statement assigns."""
        names = []
        expect_name = True
        for token in self.tokens[1:]:
            if token.depth == 0 and token.text == ",":
                expect_name = True
            elif expect_name and token.kind in ("word", "quoted"):
                names.append(token.text.strip('`"'))
                expect_name = False
        return names


def _kind_of(first: str) -> Kind:
    if first in _READ_KEYWORDS:
        return Kind.READ
    if first == "INSERT":
        return Kind.INSERT
    if first == "SET":
        return Kind.SET
    if first == "USE":
        return Kind.USE
    return Kind.DDL


def _format_clause(tokens: list[Token], known_formats: frozenset[str]) -> tuple[int, str] | None:
    """Index and name of the top-level ``FORMAT <name>`` clause, if any."""
    for index in range(len(tokens) - 2, -1, -1):
        token, name = tokens[index], tokens[index + 1]
        if (
            token.depth == 0
            and token.upper == "FORMAT"
            and name.kind in ("word", "quoted")
            and name.text.strip('`"').lower() in known_formats
        ):
            return index, name.text.strip('`"')
    return None


def parse(sql: str, known_formats: frozenset[str]) -> Statement:
    """Parse one request's SQL: exactly one statement (a trailing ``;`` is allowed)."""
    tokens_iter = iter_tokens(sql)
    first = next(tokens_iter, None)
    if first is None:
        raise WarehouseError(SYNTAX_ERROR, "Empty query")
    if first.upper == "INSERT":
        return _parse_insert(sql, first, tokens_iter, known_formats)
    tokens = [first, *tokens_iter]
    kind = _kind_of(first.upper)
    semicolons = [i for i, t in enumerate(tokens) if t.kind == "semicolon"]
    if semicolons:
        if semicolons[0] != len(tokens) - 1:
            raise WarehouseError(SYNTAX_ERROR, "Multi-statements are not allowed")
        tokens = tokens[:-1]
    text = sql[: tokens[-1].end] if tokens else ""
    clause = _format_clause(tokens, known_formats)
    return Statement(text, kind, tokens, clause[1] if clause else None, None)


def _parse_insert(
    sql: str, first: Token, rest: Iterator[Token], known_formats: frozenset[str]
) -> Statement:
    """INSERT: the data after ``FORMAT <name>`` is not SQL and must not be tokenized as such."""
    tokens = [first]
    for token in rest:
        tokens.append(token)
        previous = tokens[-2]
        if (
            previous.depth == 0
            and previous.upper == "FORMAT"
            and token.text.lower() in known_formats
        ):
            return Statement(
                sql[: previous.start].rstrip(),
                Kind.INSERT,
                tokens,
                token.text,
                _data_offset(sql, token.end),
            )
        if token.depth == 0 and token.upper in ("VALUES", "SELECT", "WITH"):
            tokens.extend(rest)
            break
    semicolons = [i for i, t in enumerate(tokens) if t.kind == "semicolon" and t.depth == 0]
    if semicolons and semicolons[0] != len(tokens) - 1:
        raise WarehouseError(SYNTAX_ERROR, "Multi-statements are not allowed")
    if semicolons:
        tokens = tokens[:-1]
    return Statement(sql[: tokens[-1].end], Kind.INSERT, tokens, None, None)


# A lone opening quote, backquote, ``$`` or ``/`` in a prefix's tokens: a string, quoted name,
# heredoc or block comment that the cut left open, inside which a FORMAT clause may seem to be.
_OPEN_AT_CUT = frozenset("'\"`$/")


def parse_insert_head(head: bytes, known_formats: frozenset[str], window: int = 4096) -> Statement:
    """Parse an INSERT at the start of a request body, reading only as much of it as needed.

    The data after ``FORMAT <name>`` can be megabytes: decoding and scanning all of it for
    every insert cost more than the rest of the request handling. So a prefix is parsed, four
    times longer each round, until it holds the FORMAT clause. A prefix tokenizes like the
    whole text up to the clause, except where a string, quoted name, heredoc or comment
    opened before the clause is still open at the cut: then a lone quote (or ``$``, ``/``)
    shows among the tokens, and a longer prefix is tried. The result equals
    ``parse(head.decode("latin-1"), known_formats)``.
    """
    while window < len(head):
        try:
            statement = parse(head[:window].decode("latin-1"), known_formats)
        except WarehouseError:
            statement = None  # perhaps only an artefact of the cut
        if (
            statement is not None
            and statement.format is not None
            # The format name and the line break after it lie before the cut.
            and statement.tokens[-1].end + 2 <= window
            and not any(t.kind == "other" and t.text in _OPEN_AT_CUT for t in statement.tokens)
        ):
            return statement
        window *= 4
    return parse(head.decode("latin-1"), known_formats)


def _data_offset(sql: str, after_format: int) -> int:
    """Inline data starts after the format name and one line break (or one blank)."""
    if sql.startswith("\r\n", after_format):
        return after_format + 2
    if after_format < len(sql) and sql[after_format] in " \t\n":
        return after_format + 1
    return after_format


INSERT_HEAD = re.compile(rb"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*INSERT\b", re.IGNORECASE | re.DOTALL)
