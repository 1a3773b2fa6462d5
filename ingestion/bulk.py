"""Bulk NDJSON: a whole file of events in one request, parsed by the warehouse, not by Python.

The body (optionally gzip or zstd, per Content-Encoding) is decompressed into a spool file,
then streamed to the warehouse as TabSeparated rows (byte operations on whole chunks, see
``writer.tsv_rows_from_chunks``). All or nothing: if the engine diverts any line to
events_rejected, the request's stored rows are deleted and the file is re-read with the Python
validators to name each bad line (0-based line index, field, reason).
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import IO, Protocol

import zstandard

from ingestion.validation import EventError, Limits, validate_line
from ingestion.writer import EventWriter, RequestStamp, tsv_rows_from_chunks

CHUNK_BYTES = 1 << 20
SPOOL_IN_MEMORY_BYTES = 8 << 20
MAX_REPORTED_ERRORS = 1000
DECOMPRESSION_ERRORS = (zlib.error, zstandard.ZstdError)
BLANK_LINE = re.compile(rb"(?=\n\n)")


class Decompressor(Protocol):
    def decompress(self, data: bytes) -> bytes: ...


class GzipDecompressor:
    """gzip that also reads concatenated members (``cat a.gz b.gz``), as gunzip does."""

    def __init__(self) -> None:
        self._member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    def decompress(self, data: bytes) -> bytes:
        out = [self._member.decompress(data)]
        while self._member.eof and self._member.unused_data:
            rest = self._member.unused_data
            self._member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out.append(self._member.decompress(rest))
        return b"".join(out)


class BodyTooLarge(Exception):
    pass


class UnsupportedEncoding(Exception):
    pass


def decompressor(content_encoding: str) -> Decompressor | None:
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return GzipDecompressor()
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
    raise UnsupportedEncoding(encoding)


async def spool_body(
    stream: AsyncIterator[bytes], content_encoding: str, max_bytes: int
) -> tuple[IO[bytes], int]:
    """Decompress the request body into a spool file; return it (rewound) and its line count."""
    decoder = decompressor(content_encoding)
    # Closed by the caller (or below on failure): the file outlives this function.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
    size = lines = 0
    last_byte = b"\n"
    try:
        async for chunk in stream:
            data = decoder.decompress(chunk) if decoder is not None else chunk
            if not data:
                continue
            size += len(data)
            if size > max_bytes:
                raise BodyTooLarge(f"body larger than {max_bytes} bytes once decompressed")
            lines += count_filled_lines(data, after_newline=last_byte == b"\n")
            last_byte = data[-1:]
            spool.write(data)
    except BaseException:
        spool.close()
        raise
    if last_byte != b"\n":
        lines += 1
    spool.seek(0)
    return spool, lines


def count_filled_lines(data: bytes, *, after_newline: bool) -> int:
    """Newlines that end a non-empty line (blank lines carry no event)."""
    empty = data.count(b"\n\n")
    if b"\n\n\n" in data:  # runs of blank lines overlap: count them exactly (rare)
        empty = len(BLANK_LINE.findall(data))
    return data.count(b"\n") - empty - (after_newline and data[:1] == b"\n")


def read_chunks(spool: IO[bytes]) -> Iterator[bytes]:
    spool.seek(0)
    while chunk := spool.read(CHUNK_BYTES):
        yield chunk


def diagnose(spool: IO[bytes], stamp: RequestStamp, limits: Limits) -> list[EventError]:
    """Name the bad lines of a rejected file (only runs when the engine refused something)."""
    errors: list[EventError] = []
    spool.seek(0)
    for index, line in enumerate(spool):
        if not line.strip():
            continue
        errors.extend(
            validate_line(line.rstrip(b"\r\n"), index, now_ms=stamp.now_ms, limits=limits)
        )
        if len(errors) >= MAX_REPORTED_ERRORS:
            break
    return errors


async def commit_bulk(
    writer: EventWriter, spool: IO[bytes], stamp: RequestStamp, limits: Limits
) -> list[EventError] | list[str]:
    """Insert the spooled file; empty when committed, else what was wrong (nothing is kept)."""
    return await asyncio.to_thread(_commit_bulk, writer, spool, stamp, limits)


def _commit_bulk(
    writer: EventWriter, spool: IO[bytes], stamp: RequestStamp, limits: Limits
) -> list[EventError] | list[str]:
    writer.insert(tsv_rows_from_chunks(stamp, read_chunks(spool)))
    if not writer.rejected_counts([stamp.request_id]):
        return []
    writer.delete_request(stamp)
    errors = diagnose(spool, stamp, limits)
    return errors or writer.rejected_lines(stamp.request_id, limit=MAX_REPORTED_ERRORS)
