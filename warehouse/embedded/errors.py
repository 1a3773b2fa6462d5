"""ClickHouse-style errors: a numeric code, a name, and the HTTP status ClickHouse answers with."""

from __future__ import annotations

import re

ENGINE_VERSION = "26.9.2.1"

# Codes used by the server itself (same numbers and names as ClickHouse).
SYNTAX_ERROR = 62
UNKNOWN_SETTING = 115
NOT_IMPLEMENTED = 48
READONLY = 164
UNKNOWN_DATABASE = 81
SESSION_NOT_FOUND = 372
SESSION_IS_LOCKED = 373
TOO_MANY_ROWS_OR_BYTES = 396
ACCESS_DENIED = 497
AUTHENTICATION_FAILED = 516
UNKNOWN_FORMAT = 73
CANNOT_DECOMPRESS = 271
BAD_ARGUMENTS = 36
TIMEOUT_EXCEEDED = 159

_NAMES = {
    SYNTAX_ERROR: "SYNTAX_ERROR",
    UNKNOWN_SETTING: "UNKNOWN_SETTING",
    NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    READONLY: "READONLY",
    UNKNOWN_DATABASE: "UNKNOWN_DATABASE",
    SESSION_NOT_FOUND: "SESSION_NOT_FOUND",
    SESSION_IS_LOCKED: "SESSION_IS_LOCKED",
    TOO_MANY_ROWS_OR_BYTES: "TOO_MANY_ROWS_OR_BYTES",
    ACCESS_DENIED: "ACCESS_DENIED",
    AUTHENTICATION_FAILED: "AUTHENTICATION_FAILED",
    UNKNOWN_FORMAT: "UNKNOWN_FORMAT",
    CANNOT_DECOMPRESS: "CANNOT_DECOMPRESS",
    BAD_ARGUMENTS: "BAD_ARGUMENTS",
    TIMEOUT_EXCEEDED: "TIMEOUT_EXCEEDED",
}

# HTTP statuses as ClickHouse's HTTP handler maps them. Never 429/503/504: clients retry those.
_HTTP_STATUS = {
    AUTHENTICATION_FAILED: 401,
    194: 401,  # REQUIRED_PASSWORD
    ACCESS_DENIED: 403,
    READONLY: 403,
    SYNTAX_ERROR: 400,
    UNKNOWN_SETTING: 400,
    UNKNOWN_FORMAT: 400,
    BAD_ARGUMENTS: 400,
    CANNOT_DECOMPRESS: 400,
    27: 400,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    47: 400,  # UNKNOWN_IDENTIFIER
    46: 400,  # UNKNOWN_FUNCTION
    60: 404,  # UNKNOWN_TABLE
    UNKNOWN_DATABASE: 404,
    SESSION_NOT_FOUND: 404,
    NOT_IMPLEMENTED: 501,
}

_ENGINE_MESSAGE = re.compile(r"Code: (\d+)\. (?:DB::Exception: )?(.*)", re.DOTALL)
_TRAILING_NAME = re.compile(r"\s*\(([A-Z_0-9]+)\)\s*$")


class WarehouseError(Exception):
    """An error answered to the client in ClickHouse's format."""

    def __init__(self, code: int, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.name = name or _NAMES.get(code, "UNKNOWN_EXCEPTION")

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS.get(self.code, 500)

    def body(self) -> bytes:
        text = f"Code: {self.code}. DB::Exception: {self.message}. ({self.name}) "
        return f"{text}(version {ENGINE_VERSION})\n".encode()

    @classmethod
    def from_engine(cls, exc: BaseException) -> WarehouseError:
        """Turn a chDB exception text (``Code: N. DB::Exception: ... (NAME)``) into an error."""
        text = str(exc).strip()
        match = _ENGINE_MESSAGE.search(text)
        if not match:
            return cls(1001, text or exc.__class__.__name__, "STD_EXCEPTION")
        code, message = int(match.group(1)), match.group(2).strip()
        name = None
        trailing = _TRAILING_NAME.search(message)
        if trailing:
            name = trailing.group(1)
            message = message[: trailing.start()]
        return cls(code, message.rstrip(". "), name)
