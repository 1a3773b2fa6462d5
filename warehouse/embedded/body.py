"""Request bodies read as a stream: chunked or sized, optionally compressed frame after frame."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from email.policy import HTTP
from io import BufferedIOBase
from typing import Protocol

import lz4.frame
import zstandard

from warehouse.embedded.errors import (
    BAD_ARGUMENTS,
    CANNOT_DECOMPRESS,
    NOT_IMPLEMENTED,
    WarehouseError,
)

READ_SIZE = 1 << 20


def raw_chunks(rfile: BufferedIOBase, headers: dict[str, str]) -> Iterator[bytes]:
    """The body as sent on the wire (still compressed), without holding it whole."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = rfile.readline(1024)
            if not size_line:
                raise WarehouseError(CANNOT_DECOMPRESS, "Unexpected end of chunked body")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            remaining = size
            while remaining:
                piece = rfile.read(min(remaining, READ_SIZE))
                if not piece:
                    raise WarehouseError(CANNOT_DECOMPRESS, "Unexpected end of chunked body")
                remaining -= len(piece)
                yield piece
            rfile.readline(1024)  # CRLF after the chunk
    else:
        remaining = int(headers.get("content-length") or 0)
        while remaining > 0:
            piece = rfile.read(min(remaining, READ_SIZE))
            if not piece:
                raise WarehouseError(CANNOT_DECOMPRESS, "Unexpected end of body")
            remaining -= len(piece)
            yield piece


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, /) -> bytes: ...


def _frames(chunks: Iterator[bytes], new: Callable[[], _Decompressor]) -> Iterator[bytes]:
    # Clients send one compressed frame per block: restart the decompressor at each frame end.
    decompressor = new()
    for chunk in chunks:
        data = chunk
        while data:
            yield decompressor.decompress(data)
            if decompressor.eof:
                data = decompressor.unused_data
                decompressor = new()
            else:
                data = b""


_DECOMPRESSORS: dict[str, Callable[[], _Decompressor]] = {
    "lz4": lz4.frame.LZ4FrameDecompressor,
    "zstd": lambda: zstandard.ZstdDecompressor().decompressobj(),
    "gzip": lambda: zlib.decompressobj(31),
    "x-gzip": lambda: zlib.decompressobj(31),
    "deflate": lambda: zlib.decompressobj(15),
}


def decoded_chunks(chunks: Iterator[bytes], content_encoding: str) -> Iterator[bytes]:
    """The decompressed body, never yielding an empty chunk (an empty one means the end)."""
    return (chunk for chunk in _decoded(chunks, content_encoding) if chunk)


def _decoded(chunks: Iterator[bytes], content_encoding: str) -> Iterator[bytes]:
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        yield from chunks
        return
    if encoding not in _DECOMPRESSORS:
        raise WarehouseError(NOT_IMPLEMENTED, f"Unsupported Content-Encoding {encoding!r}")
    try:
        yield from _frames(chunks, _DECOMPRESSORS[encoding])
    except (RuntimeError, zlib.error, zstandard.ZstdError) as exc:
        raise WarehouseError(CANNOT_DECOMPRESS, f"Cannot decompress body: {exc}") from None


def is_form(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "multipart/form-data"


def form_fields(chunks: Iterator[bytes], content_type: str, max_bytes: int) -> dict[str, str]:
    """The fields of a multipart/form-data body, which ClickHouse reads as URL parameters:
    clients send the query and its ``param_*`` values so once the values outgrow a URL
    (clickhouse-connect beyond 4 KiB of them). Files in the form are external data tables."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise WarehouseError(BAD_ARGUMENTS, f"Form body is too large (max {max_bytes} bytes)")
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + bytes(body))
    if not message.is_multipart():
        raise WarehouseError(BAD_ARGUMENTS, "Cannot parse multipart/form-data body")
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            raise WarehouseError(
                NOT_IMPLEMENTED, f"External data ({name!r}) is not supported by this warehouse"
            )
        if not isinstance(name, str):
            raise WarehouseError(BAD_ARGUMENTS, "A form field has no name")
        payload = part.get_payload(decode=True)
        fields[name] = payload.decode() if isinstance(payload, bytes) else ""
    return fields


def compress_response(body: bytes, accept_encoding: str) -> tuple[bytes, str | None]:
    """Compress with the first encoding the client accepts that we support."""
    for candidate in (part.split(";")[0].strip().lower() for part in accept_encoding.split(",")):
        if candidate == "lz4":
            return lz4.frame.compress(body), "lz4"
        if candidate == "zstd":
            return zstandard.ZstdCompressor(level=1).compress(body), "zstd"
        if candidate == "gzip":
            return zlib.compress(body, 1, wbits=31), "gzip"
        if candidate == "deflate":
            return zlib.compress(body, 1), "deflate"
    return body, None
