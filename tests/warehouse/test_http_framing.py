"""HTTP/1.x framing of the embedded server on the wire: keep-alive, pipelining, 100-continue.

The server reads request lines and header fields itself (not with http.server's email parser),
so these pin down, byte for byte, what clients rely on.
"""

from __future__ import annotations

import base64
import json
import socket
import uuid
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import quote, urlsplit

import pytest

from tests.conftest import Warehouse

pytestmark = pytest.mark.embedded


@pytest.fixture()
def sock(warehouse: Warehouse) -> Iterator[socket.socket]:
    url = urlsplit(warehouse.url)
    assert url.hostname and url.port
    with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
        yield connection


def request_head(
    warehouse: Warehouse, length: int, *, version: str = "HTTP/1.1", extra: str = ""
) -> bytes:
    auth = base64.b64encode(f"{warehouse.user}:{warehouse.password}".encode()).decode()
    return (
        f"POST /?database={quote(warehouse.database)} {version}\r\nHost: warehouse\r\n"
        f"Authorization: Basic {auth}\r\nContent-Length: {length}\r\n{extra}\r\n"
    ).encode()


def read_response(stream: BinaryIO) -> tuple[int, dict[str, str], bytes]:
    status = int(stream.readline().split()[1])
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    return status, headers, stream.read(int(headers.get("content-length", 0)))


def test_pipelined_requests_share_one_connection(warehouse: Warehouse, sock: socket.socket) -> None:
    table = f"framing_{uuid.uuid4().hex[:8]}"
    warehouse.client().command(f"CREATE TABLE {table} (n UInt8) ENGINE = Memory")
    insert = f"INSERT INTO {table} FORMAT CSV\n1\n2\n".encode()
    select = f"SELECT count() FROM {table}".encode()
    # A folded (continued) header line and a repeated field do not upset the framing.
    extra = "X-Note: first\r\n  continued\r\nX-Note: last\r\n"
    sock.sendall(
        request_head(warehouse, len(insert), extra=extra) + insert
        + request_head(warehouse, len(select)) + select
    )  # fmt: skip
    stream = sock.makefile("rb")
    status, headers, _ = read_response(stream)
    assert status == 200
    assert json.loads(headers["x-clickhouse-summary"])["written_rows"] == "2"
    assert read_response(stream)[::2] == (200, b"2\n")


def test_expect_100_continue(warehouse: Warehouse, sock: socket.socket) -> None:
    body = b"SELECT 41 + 1"
    sock.sendall(request_head(warehouse, len(body), extra="Expect: 100-continue\r\n"))
    stream = sock.makefile("rb")
    assert stream.readline() == b"HTTP/1.1 100 Continue\r\n"
    assert stream.readline() == b"\r\n"
    sock.sendall(body)
    assert read_response(stream)[::2] == (200, b"42\n")


def test_http_1_0_closes_unless_kept_alive(warehouse: Warehouse, sock: socket.socket) -> None:
    body = b"SELECT 1"
    sock.sendall(request_head(warehouse, len(body), version="HTTP/1.0") + body)
    stream = sock.makefile("rb")
    assert read_response(stream)[::2] == (200, b"1\n")
    assert stream.read() == b""  # closed by the server


@pytest.mark.parametrize(
    ("head", "reply"),
    [
        (b"POST / HTTP/2.0\r\n\r\n", b"HTTP/1.1 505 "),
        (b"POST / HTTP/1.1\r\nno colon here\r\n\r\n", b"HTTP/1.1 400 "),
        (b"POST / HTTP/1.1\r\nX: " + b"y" * 70_000 + b"\r\n\r\n", b"HTTP/1.1 431 "),
        (b"POST /\r\n\r\n", b"<!DOCTYPE HTML>"),  # HTTP/0.9 syntax: a bare error page
    ],
)
def test_malformed_requests_are_refused(sock: socket.socket, head: bytes, reply: bytes) -> None:
    sock.sendall(head)
    response = sock.makefile("rb").read()  # until the server closes the connection
    assert response.startswith(reply)
