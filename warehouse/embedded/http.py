"""The ClickHouse HTTP interface over the embedded engine.

Threads, not asyncio: chDB releases the GIL while a query runs, so one thread per client
connection gives real parallelism, and each request simply blocks on its chDB connection.
"""

from __future__ import annotations

import base64
import itertools
import logging
import socket
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from warehouse.embedded.body import (
    compress_response,
    decoded_chunks,
    form_fields,
    is_form,
    raw_chunks,
)
from warehouse.embedded.engine import Engine, EngineConnection, Outcome
from warehouse.embedded.errors import (
    ACCESS_DENIED,
    AUTHENTICATION_FAILED,
    BAD_ARGUMENTS,
    NOT_IMPLEMENTED,
    READONLY,
    SYNTAX_ERROR,
    UNKNOWN_FORMAT,
    WarehouseError,
)
from warehouse.embedded.sql import INSERT_HEAD, Kind, Statement, parse, parse_insert_head
from warehouse.embedded.users import Role, User, UserStore

log = logging.getLogger("meterhouse.warehouse")

# URL parameters that steer the HTTP exchange; every other parameter is a setting.
TRANSPORT_PARAMS = {
    "query", "database", "default_format", "session_id", "session_timeout", "session_check",
    "query_id", "compress", "decompress", "wait_end_of_query", "client_protocol_version",
    "user", "password", "quota_key", "role", "buffer_size",
}  # fmt: skip
# Settings that only shape the HTTP response; the engine has nothing to do with them.
HTTP_ONLY_SETTINGS = {
    "enable_http_compression", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "cancel_http_readonly_queries_on_client_close",
    "http_zlib_compression_level", "http_response_buffer_size", "add_http_cors_header",
}  # fmt: skip
MAX_QUERY_BYTES = 256 << 20
MAX_HEADER_LINE = 65536
MAX_HEADER_FIELDS = 100
INSERT_HEAD_BYTES = 1 << 20

_CONTENT_TYPES = {
    "tabseparated": "text/tab-separated-values; charset=UTF-8",
    "csv": "text/csv; charset=UTF-8; header=absent",
    "csvwithnames": "text/csv; charset=UTF-8; header=present",
}


def content_type(fmt: str) -> str:
    lower = fmt.lower()
    if lower in _CONTENT_TYPES:
        return _CONTENT_TYPES[lower]
    if lower.startswith("tabseparated") or lower.startswith("tsv"):
        return _CONTENT_TYPES["tabseparated"]
    if lower.startswith("json"):
        return "application/json; charset=UTF-8"
    if lower.startswith(("pretty", "vertical", "markdown", "values", "template", "xml")):
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


class Request:
    """One parsed request: who, what SQL, which settings, and the data stream if any."""

    def __init__(self, handler: WarehouseHandler) -> None:
        self.handler = handler
        url = urlsplit(handler.path)
        self.path = url.path
        self.params = dict(parse_qsl(url.query, keep_blank_values=True))
        self.headers = handler.fields
        self.query_id = self.params.get("query_id") or str(uuid.uuid4())
        self.body: Iterator[bytes] = iter(())

    def credentials(self) -> tuple[str, str]:
        user = self.headers.get("x-clickhouse-user") or self.params.get("user")
        password = self.headers.get("x-clickhouse-key") or self.params.get("password")
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            decoded = base64.b64decode(auth[6:]).decode(errors="replace")
            basic_user, _, basic_password = decoded.partition(":")
            user, password = user or basic_user, password or basic_password
        return user or "default", password or ""

    def settings(self) -> dict[str, str]:
        return {
            name: value
            for name, value in self.params.items()
            if name not in TRANSPORT_PARAMS
            and not name.startswith("param_")
            and name not in HTTP_ONLY_SETTINGS
        }

    def query_params(self) -> dict[str, str]:
        return {k[6:]: v for k, v in self.params.items() if k.startswith("param_")}


class WarehouseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "meterhouse-warehouse"
    server: WarehouseServer
    fields: dict[str, str]  # the request's header fields, names in lower case
    raw_requestline: bytes  # set by handle_one_request

    def setup(self) -> None:
        super().setup()
        # Without this every response waits for the peer's delayed ACK (~40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def parse_request(self) -> bool:
        """The request line and header fields, read without the standard library's email parser.

        ``http.server`` builds an ``email.message.Message`` for every request: ~0.15 ms, one of
        the largest parts of the server's own work for an insert (this takes ~0.05 ms). Clients
        of the HTTP interface speak HTTP/1.0 or 1.1; anything else gets the standard errors.
        """
        self.command = ""
        self.request_version = "HTTP/0.9"
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if not words:
            return False
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({self.requestline!r})")
            return False
        command, path, version = words
        self.request_version = version  # replies, errors too, get a status line from here on
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid version {version}")
            return False
        if path.startswith("//"):  # as http.server does: no scheme-relative paths
            path = "/" + path.lstrip("/")
        self.command, self.path = command, path
        fields = self._read_fields()
        if fields is None:
            return False
        self.fields = fields
        connection = fields.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            version == "HTTP/1.0" and connection != "keep-alive"
        )
        if fields.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _read_fields(self) -> dict[str, str] | None:
        """Header fields up to the blank line; a repeated field keeps its last value."""
        fields: dict[str, str] = {}
        name = ""
        for _ in range(MAX_HEADER_FIELDS):
            line = self.rfile.readline(MAX_HEADER_LINE + 1)
            if len(line) > MAX_HEADER_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return None
            if line in (b"\r\n", b"\n", b""):
                return fields
            text = line.decode("iso-8859-1")
            if text[0] in " \t" and name:  # an obsolete folded continuation line
                fields[name] += " " + text.strip()
                continue
            name, colon, value = text.partition(":")
            name = name.strip().lower()
            if not colon or not name:
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad header line {text.strip()!r}")
                return None
            fields[name] = value.strip()
        self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
        return None

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if log.isEnabledFor(logging.DEBUG):
            super().log_request(code, size)

    def do_GET(self) -> None:
        self._handle(read_only=True)

    def do_POST(self) -> None:
        self._handle(read_only=False)

    def _handle(self, *, read_only: bool) -> None:
        request = Request(self)
        request.body = decoded_chunks(
            raw_chunks(self.rfile, request.headers), request.headers.get("content-encoding", "")
        )
        try:
            if request.path in ("/ping", "/replicas_status") or (
                request.path == "/" and read_only and "query" not in request.params
            ):
                self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                return
            if request.path != "/":
                self._send(404, b"There is no handle " + request.path.encode() + b"\n", {})
                return
            self._run(request, read_only=read_only)
        except WarehouseError as error:
            self._drain(request)
            self._send_error(error, request)
        except Exception as exc:  # the engine or a bug: still a ClickHouse-style answer
            log.exception("query %s failed", request.query_id)
            self._drain(request)
            self._send_error(WarehouseError.from_engine(exc), request)

    def _drain(self, request: Request) -> None:
        # Read what the client still sends, or its keep-alive connection breaks.
        try:
            for _ in request.body:
                pass
        except WarehouseError:
            self.close_connection = True

    def _authenticate(self, request: Request) -> User:
        name, password = request.credentials()
        user = self.server.users.authenticate(name, password)
        if user is None:
            raise WarehouseError(
                AUTHENTICATION_FAILED,
                f"{name}: Authentication failed: password is incorrect, or there is no user "
                f"with such name",
            )
        return user

    def _run(self, request: Request, *, read_only: bool) -> None:
        user = self._authenticate(request)
        content_type = request.headers.get("content-type", "")
        if is_form(content_type):  # the query and its parameters as form fields
            request.params.update(form_fields(request.body, content_type, MAX_QUERY_BYTES))
            request.body = iter(())
        engine = self.server.engine
        if request.params.get("decompress") == "1" or request.params.get("compress") == "1":
            raise WarehouseError(
                NOT_IMPLEMENTED,
                "ClickHouse-native block compression is not supported: use HTTP "
                "Content-Encoding/Accept-Encoding (lz4, zstd, gzip, deflate)",
            )
        statement, data = self._statement(request, engine)
        settings = request.settings()
        wants_readonly = settings.pop("readonly", "0") not in ("", "0")
        engine.check_settings(settings)
        self._authorize(user, statement, read_only=read_only or wants_readonly)
        output_format = statement.format or request.params.get("default_format") or "TabSeparated"
        if statement.kind is Kind.READ and output_format.lower() not in engine.output_formats:
            raise WarehouseError(UNKNOWN_FORMAT, f"Unknown format {output_format}")
        if "session_id" not in request.params and _is_temporary(statement):
            raise WarehouseError(BAD_ARGUMENTS, "Temporary tables need a session_id")
        readonly_connection = user.role is Role.ANALYST or wants_readonly
        database = request.params.get("database")
        session_id = request.params.get("session_id")
        if session_id:
            with engine.session(
                user.name,
                session_id,
                readonly=user.role is Role.ANALYST,
                timeout_s=float(request.params.get("session_timeout") or 60),
                check=request.params.get("session_check") == "1",
            ) as connection:
                outcome = self._execute(connection, statement, request, database, settings, data)
        else:
            if statement.kind in (Kind.SET, Kind.USE):
                # Outside a session these last one request: check them, change nothing.
                if statement.kind is Kind.SET:
                    engine.check_settings(dict.fromkeys(statement.set_assignments(), ""))
                outcome = Outcome()
            else:
                with engine.pooled(readonly=readonly_connection) as connection:
                    outcome = self._execute(
                        connection, statement, request, database, settings, data
                    )
        self._respond(request, statement, output_format, outcome)

    @staticmethod
    def _execute(
        connection: EngineConnection,
        statement: Statement,
        request: Request,
        database: str | None,
        settings: dict[str, str],
        data: Iterator[bytes] | None,
    ) -> Outcome:
        connection.prepare(database, settings)
        output_format = statement.format or request.params.get("default_format") or "TabSeparated"
        return connection.execute(statement, output_format, request.query_params(), data)

    def _statement(
        self, request: Request, engine: Engine
    ) -> tuple[Statement, Iterator[bytes] | None]:
        """The statement, and for ``INSERT ... FORMAT X`` the rest of the body as its data."""
        query_param = request.params.get("query", "").encode()
        body = request.body
        first = next(body, b"")
        # As ClickHouse does: the query parameter, a line feed, then the body.
        head = query_param + b"\n" + first if query_param and first else query_param or first
        if INSERT_HEAD.match(head):
            statement = parse_insert_head(head, engine.input_formats)
            while statement.format is None and first and len(head) < INSERT_HEAD_BYTES:
                first = next(body, b"")  # the statement goes on in the next chunk
                head += first
                statement = parse_insert_head(head, engine.input_formats)
            if statement.format is not None:
                offset = statement.insert_data_offset
                assert offset is not None
                text = head[: len(statement.sql.encode("latin-1"))].decode()
                statement = Statement(text, Kind.INSERT, statement.tokens, statement.format, None)
                return statement, itertools.chain((head[offset:],), body)
        head = bytearray(head)
        for chunk in body:
            head += chunk
            if len(head) > MAX_QUERY_BYTES:
                raise WarehouseError(BAD_ARGUMENTS, "Query is too large (max 256 MiB)")
        try:
            text = head.decode()
        except UnicodeDecodeError:
            raise WarehouseError(SYNTAX_ERROR, "Query is not valid UTF-8") from None
        return parse(text, engine.output_formats), None

    @staticmethod
    def _authorize(user: User, statement: Statement, *, read_only: bool) -> None:
        if user.role is not Role.ADMIN:
            outside = statement.touches_outside_world()
            if outside:
                raise WarehouseError(
                    ACCESS_DENIED, f"{user.name}: Not enough privileges to use {outside}"
                )
        writes = statement.kind in (Kind.INSERT, Kind.DDL)
        if writes and (read_only or user.role is Role.ANALYST):
            raise WarehouseError(READONLY, f"{user.name}: Cannot execute query in readonly mode")
        if statement.kind is Kind.DDL and user.role is Role.WRITER:
            raise WarehouseError(
                ACCESS_DENIED,
                f"{user.name}: Not enough privileges for {statement.first_keyword} "
                f"(role writer may only INSERT and SELECT)",
            )
        if statement.kind is Kind.SET and "readonly" in statement.set_assignments():
            raise WarehouseError(READONLY, "Cannot modify 'readonly' setting in this server")

    def _respond(
        self, request: Request, statement: Statement, output_format: str, outcome: Outcome
    ) -> None:
        headers = {
            "X-ClickHouse-Query-Id": request.query_id,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Server-Display-Name": "meterhouse",
            "X-ClickHouse-Summary": outcome.summary(),
        }
        body = outcome.body
        if statement.kind is Kind.READ:
            headers["X-ClickHouse-Format"] = output_format
            headers["Content-Type"] = content_type(output_format)
        else:
            headers["Content-Type"] = "text/plain; charset=UTF-8"
        if body and request.params.get("enable_http_compression") == "1":
            body, encoding = compress_response(body, request.headers.get("accept-encoding", ""))
            if encoding:
                headers["Content-Encoding"] = encoding
        self._send(200, body, headers)

    def _send_error(self, error: WarehouseError, request: Request) -> None:
        self._send(
            error.http_status,
            error.body(),
            {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Exception-Code": str(error.code),
                "X-ClickHouse-Query-Id": request.query_id,
            },
        )

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close" if self.close_connection else "Keep-Alive: timeout=30")
        # Headers and body in one write: no extra round trip for the client.
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        self.log_request(status, len(body))


def _is_temporary(statement: Statement) -> bool:
    tokens = statement.tokens
    return len(tokens) > 1 and tokens[0].upper == "CREATE" and tokens[1].upper == "TEMPORARY"


class WarehouseServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], engine: Engine, users: UserStore) -> None:
        self.engine = engine
        self.users = users
        super().__init__(address, WarehouseHandler)
