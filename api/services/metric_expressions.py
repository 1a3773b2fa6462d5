"""Lago billable metric expressions, translated once into a ClickHouse SQL expression.

An expression computes an event's value from the event (Lago stores the result under the
metric's ``field_name``, which the aggregation then reads)::

    round((event.properties.ended_at - event.properties.started_at) / 3600, 2)

The grammar is Lago's (getlago/lago-expression): decimal literals, ``'strings'``,
``event.properties.<name>``, ``event.timestamp`` (Unix seconds), ``event.code``, ``+ - * /``,
unary minus, parentheses, and the functions ``round``, ``ceil``, ``floor`` (value and an
optional number of decimals), ``concat``, ``min`` and ``max``. The metric is validated by
translating it when it is created or updated; rating evaluates the stored SQL in ClickHouse,
never event by event in Python.

The SQL is one ``Nullable(String)`` expression over three placeholders that rating replaces by
its column names: ``__PROPERTIES__`` (``Map(String, String)``), ``__TIMESTAMP__``
(``DateTime64``) and ``__CODE__``. Numbers are ``Decimal(38, 12)`` computed exactly (products and
quotients in ``Decimal256``), and a number result is written without trailing zeros. Where Lago
fails the event (a missing property, text in arithmetic, a division by zero) the result is NULL:
the event then has no value for the metric.

Choices where Lago is looser: the decimals of round/ceil/floor must be an integer literal in
-12..12 (ClickHouse takes the scale as a constant), and literals must fit Decimal(38, 12).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

PROPERTIES = "__PROPERTIES__"
TIMESTAMP = "__TIMESTAMP__"
CODE = "__CODE__"

MAX_SCALE = 12
ROUNDING = {"round": "round", "ceil": "ceil", "floor": "floor"}
VARIADIC = {"concat", "min", "max"}

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|'(?P<string>[^']*)'"
    r"|(?P<variable>event\.(?:timestamp|code|properties\.[A-Za-z][A-Za-z0-9_]*))(?![A-Za-z0-9_.])"
    r"|(?P<name>[A-Za-z]+)|(?P<symbol>[-+*/(),]))"
)


class InvalidExpression(ValueError):
    """The text is not a Lago expression this engine can evaluate."""


@dataclass(frozen=True)
class Value:
    """A translated sub-expression: SQL of a Decimal (number) or of a String (text)."""

    sql: str
    is_number: bool
    # The raw text of a property or timestamp, which concat() uses unchanged.
    text_sql: str | None = None
    # The value of a (possibly negated) integer literal: a number of decimals must be one.
    integer: int | None = None

    def number(self) -> str:
        return self.sql if self.is_number else f"toDecimal128OrNull(trim({self.sql}), 12)"

    def text(self) -> str:
        if self.text_sql is not None:
            return self.text_sql
        if not self.is_number:
            return self.sql
        # Without trailing zeros (output_format_decimal_trailing_zeros is off): 12.5, 100.
        return f"toString({self.sql})"


def _exact(sql: str) -> str:
    return f"toDecimal256({sql}, 12)"


def _decimal(sql: str) -> str:
    return f"toDecimal128({sql}, 12)"


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.position = 0

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens, position = [], 0
        stripped = text.rstrip()
        while position < len(stripped):
            match = _TOKEN.match(stripped, position)
            if not match or match.end() == position:
                raise InvalidExpression(f"unexpected text at {position}: {stripped[position:]!r}")
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            position = match.end()
        return tokens

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, symbol: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (symbol is not None and token != ("symbol", symbol)):
            raise InvalidExpression(f"expected {symbol or 'a value'} at token {self.position}")
        self.position += 1
        return token

    def parse(self) -> Value:
        if not self.tokens:
            raise InvalidExpression("empty expression")
        value = self.expression()
        if self.peek() is not None:
            raise InvalidExpression(f"unexpected {self.peek()!r}")
        return value

    def expression(self) -> Value:
        value = self.term()
        while self.peek() in (("symbol", "+"), ("symbol", "-")):
            operator = self.take()[1]
            right = self.term()
            value = Value(
                _decimal(f"{_exact(value.number())} {operator} {_exact(right.number())}"), True
            )
        return value

    def term(self) -> Value:
        value = self.atom()
        while self.peek() in (("symbol", "*"), ("symbol", "/")):
            operator = self.take()[1]
            right = self.atom().number()
            left = value.number()
            if operator == "*":
                sql = _decimal(f"{_exact(left)} * {_exact(right)}")
            else:
                # Lago fails the event on a division by zero: no value (and no exception here).
                sql = (
                    f"if({right} = 0, NULL, toDecimal128(toDecimal256({left}, 24)"
                    f" / toDecimal256(if({right} = 0, 1, {right}), 12), 12))"
                )
            value = Value(sql, True)
        return value

    def atom(self) -> Value:
        if self.peek() == ("symbol", "-"):
            self.take()
            value = self.primary()
            negated = None if value.integer is None else -value.integer
            return Value(f"(-{value.number()})", True, integer=negated)
        return self.primary()

    def primary(self) -> Value:
        kind, text = self.take()
        if kind == "number":
            integer = int(text) if text.isdigit() else None
            return Value(_decimal(f"'{_checked_literal(text)}'"), True, integer=integer)
        if kind == "string":
            return Value(f"unhex('{text.encode().hex()}')", False)
        if kind == "variable":
            return _variable(text)
        if kind == "name":
            return self.function(text)
        if (kind, text) == ("symbol", "("):
            value = self.expression()
            self.take(")")
            return value
        raise InvalidExpression(f"unexpected {text!r}")

    def function(self, name: str) -> Value:
        function = name.lower()
        if name not in (function, function.upper(), function.capitalize()) or (
            function not in ROUNDING and function not in VARIADIC
        ):
            raise InvalidExpression(f"unknown function {name!r}")
        self.take("(")
        arguments = [self.expression()]
        while self.peek() == ("symbol", ","):
            self.take()
            arguments.append(self.expression())
        self.take(")")
        if function == "concat":
            parts = [argument.text() for argument in arguments] + (["''"] * (len(arguments) == 1))
            return Value(f"concat({', '.join(parts)})", False)
        if function in ("min", "max"):
            numbers = ", ".join(argument.number() for argument in arguments)
            return Value(f"{'least' if function == 'min' else 'greatest'}({numbers})", True)
        if len(arguments) > 2:
            raise InvalidExpression(f"{function} takes a value and at most a number of decimals")
        scale = _scale(arguments[1]) if len(arguments) == 2 else 0
        return Value(_decimal(f"{ROUNDING[function]}({arguments[0].number()}, {scale})"), True)


def _checked_literal(text: str) -> str:
    whole, _, fraction = text.partition(".")
    if len(whole.lstrip("0")) > 38 - MAX_SCALE or len(fraction) > MAX_SCALE:
        raise InvalidExpression(f"{text} does not fit Decimal(38, {MAX_SCALE})")
    return text


def _scale(argument: Value) -> int:
    scale = argument.integer
    if scale is None:
        raise InvalidExpression("the number of decimals must be an integer literal")
    if not -MAX_SCALE <= scale <= MAX_SCALE:
        raise InvalidExpression(f"the number of decimals must be within -{MAX_SCALE}..{MAX_SCALE}")
    return scale


def _variable(name: str) -> Value:
    if name == "event.timestamp":
        seconds = f"toUnixTimestamp({TIMESTAMP})"
        return Value(_decimal(seconds), True, f"toString({seconds})")
    if name == "event.code":
        return Value(CODE, False)
    key = name.removeprefix("event.properties.")
    return Value(f"if(mapContains({PROPERTIES}, '{key}'), {PROPERTIES}['{key}'], NULL)", False)


def translate(expression: str) -> str:
    """The ClickHouse SQL (``Nullable(String)``) of a Lago expression; InvalidExpression if the
    text is not one."""
    value = _Parser(expression).parse()
    return f"CAST({value.text()} AS Nullable(String))"


def evaluate(
    client: Client,
    expression: str,
    *,
    code: str,
    timestamp_ms: int,
    properties: Mapping[str, str],
) -> str | None:
    """The value rating would give one event under this expression, computed by the warehouse
    from the same SQL; None where the event has no value (InvalidExpression if the text is not
    an expression). ``properties`` are the event's stored texts."""
    sql = (
        translate(expression)
        .replace(PROPERTIES, "mapFromArrays({keys:Array(String)}, {values:Array(String)})")
        .replace(TIMESTAMP, "fromUnixTimestamp64Milli({timestamp_ms:Int64}, 'UTC')")
        .replace(CODE, "{code:String}")
    )
    parameters = {
        "keys": list(properties),
        "values": list(properties.values()),
        "timestamp_ms": timestamp_ms,
        "code": code,
    }
    value = client.query(f"SELECT {sql}", parameters=parameters).result_rows[0][0]
    return None if value is None else str(value)
