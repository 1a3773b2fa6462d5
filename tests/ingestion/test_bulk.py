"""Bulk NDJSON: plain, gzip and zstd; all or nothing; size limit."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import orjson
import pytest
import zstandard
from clickhouse_connect.driver.client import Client

from tests.ingestion.conftest import IngestService, stored_events, unique_subscription


def ndjson(sub: str, count: int) -> bytes:
    return b"".join(
        orjson.dumps(
            {"transaction_id": f"b-{i}", "external_subscription_id": sub, "code": "bulk",
             "timestamp": 1700000000 + i, "properties": {"value": i, "note": "tab\tand \\ slash"}}
        ) + b"\n"
        for i in range(count)
    )  # fmt: skip


@pytest.mark.parametrize("encoding", ["identity", "gzip", "zstd"])
def test_bulk_ndjson_is_stored(ingest: IngestService, admin_client: Client, encoding: str) -> None:
    sub = unique_subscription()
    body = ndjson(sub, 2_000)
    # Blank lines and a last line without a newline are fine.
    body = body.replace(b"\n", b"\n\n\n", 1).replace(b"\n", b"\n\n", 7).rstrip(b"\n")
    compressors: dict[str, Callable[[bytes], bytes]] = {
        "identity": lambda b: b,
        "gzip": gzip.compress,
        "zstd": zstandard.ZstdCompressor().compress,
    }
    compressed = compressors[encoding](body)
    with ingest.client() as http:
        response = http.post(
            "/api/v1/events/bulk",
            content=compressed,
            headers={"content-type": "application/x-ndjson", "content-encoding": encoding},
        )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2_000
    rows = stored_events(admin_client, ingest.organization.organization_id, sub)
    assert len(rows) == 2_000
    assert rows[0]["properties"]["note"] == "tab\tand \\ slash"
    assert sum(int(r["properties"]["value"]) for r in rows) == sum(range(2_000))


def test_bulk_with_bad_lines_stores_nothing_and_names_them(
    ingest: IngestService, admin_client: Client
) -> None:
    sub = unique_subscription()
    lines = ndjson(sub, 3_000).splitlines()
    lines[10] = b'{"transaction_id": "x", "external_subscription_id": "%s"}' % sub.encode()
    lines[2_500] = b"{not json"
    with ingest.client() as http:
        response = http.post("/api/v1/events/bulk", content=b"\n".join(lines))
    assert response.status_code == 422
    body = response.json()
    assert body["accepted"] == 0
    assert {(e["index"], e["field"], e["reason"]) for e in body["errors"]} == {
        (10, "code", "value_is_mandatory"),
        (2_500, "event", "invalid_json"),
    }
    assert stored_events(admin_client, ingest.organization.organization_id, sub) == []


def test_bulk_rejects_unknown_encoding(ingest: IngestService) -> None:
    with ingest.client() as http:
        response = http.post(
            "/api/v1/events/bulk", content=b"abc", headers={"content-encoding": "br"}
        )
        corrupt = http.post(
            "/api/v1/events/bulk", content=b"not gzip", headers={"content-encoding": "gzip"}
        )
    assert response.status_code == 415
    assert corrupt.status_code == 400


def test_bulk_reads_concatenated_gzip_members(ingest: IngestService, admin_client: Client) -> None:
    sub = unique_subscription()
    lines = ndjson(sub, 100).splitlines(keepends=True)
    body = gzip.compress(b"".join(lines[:50])) + gzip.compress(b"".join(lines[50:]))
    with ingest.client() as http:
        response = http.post(
            "/api/v1/events/bulk", content=body, headers={"content-encoding": "gzip"}
        )
    assert response.status_code == 200, response.text
    assert len(stored_events(admin_client, ingest.organization.organization_id, sub)) == 100
