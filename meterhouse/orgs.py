"""Organizations (tenants) and their API keys, shared by the ingest API and the billing API.

A key is shown once, when it is created; the warehouse keeps only its sha256. Every request
authenticates with a key, so lookups go through a small in-process TTL cache: a revoked key
stops working within ``api_key_cache_ttl_s`` seconds.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from warehouse.settings import Settings

API_KEY_PREFIX = "mh_"
# Unknown keys are remembered briefly, so a flood of bad keys does not become a flood of queries,
# while a key created in another process starts working almost at once.
UNKNOWN_KEY_TTL_S = 2.0

ORGANIZATION_COLUMNS = (
    "organization_id",
    "name",
    "default_currency",
    "timezone",
    "invoice_grace_period",
    "net_payment_term",
    "document_numbering",
    "document_number_prefix",
    "email",
    "tax_codes",
    "webhook_url",
    "created_at",
    "updated_at",
)


def _now_ms() -> datetime:
    # The warehouse keeps milliseconds: an organization reads back equal to what was created.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Organization:
    organization_id: uuid.UUID
    name: str
    default_currency: str = "USD"
    timezone: str = "UTC"
    invoice_grace_period: int = 0
    net_payment_term: int = 0
    document_numbering: str = "per_customer"
    document_number_prefix: str = ""
    email: str | None = None
    tax_codes: tuple[str, ...] = ()
    webhook_url: str | None = None
    created_at: datetime = field(default_factory=_now_ms)
    updated_at: datetime = field(default_factory=_now_ms)


SETTABLE_FIELDS = frozenset(f.name for f in fields(Organization)) - {
    "organization_id",
    "name",
    "created_at",
    "updated_at",
}


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def _version() -> int:
    # Nanoseconds since the epoch: later writes always get a higher ReplacingMergeTree version.
    return time.time_ns()


def create_organization(
    client: Client, name: str, *, api_key: str | None = None, **org_settings: Any
) -> tuple[Organization, str]:
    """Create an organization and its first API key; return both (the key in plaintext)."""
    unknown = set(org_settings) - SETTABLE_FIELDS
    if unknown:
        raise ValueError(f"unknown organization settings: {sorted(unknown)}")
    if "tax_codes" in org_settings:
        org_settings["tax_codes"] = tuple(org_settings["tax_codes"])
    organization = Organization(organization_id=uuid.uuid4(), name=name, **org_settings)
    row = [getattr(organization, column) for column in ORGANIZATION_COLUMNS]
    row[ORGANIZATION_COLUMNS.index("tax_codes")] = list(organization.tax_codes)
    client.insert(
        "organizations",
        [[*row, _version(), 0]],
        column_names=[*ORGANIZATION_COLUMNS, "version", "is_deleted"],
    )
    plaintext = create_api_key(client, organization.organization_id, "default", api_key=api_key)
    return organization, plaintext


def create_api_key(
    client: Client, organization_id: uuid.UUID, name: str, *, api_key: str | None = None
) -> str:
    """Register a new key for the organization and return it; only its hash is stored."""
    plaintext = api_key or new_api_key()
    client.insert(
        "api_keys",
        [
            [
                organization_id,
                uuid.uuid4(),
                hash_api_key(plaintext),
                plaintext[: len(API_KEY_PREFIX) + 4],
                name,
                datetime.now(UTC),
                _version(),
                0,
            ]
        ],
        column_names=[
            "organization_id",
            "api_key_id",
            "key_hash",
            "key_prefix",
            "name",
            "created_at",
            "version",
            "is_deleted",
        ],
    )
    return plaintext


def _row_to_organization(row: dict[str, Any]) -> Organization:
    values = {column: row[column] for column in ORGANIZATION_COLUMNS}
    values["tax_codes"] = tuple(values["tax_codes"])
    for column in ("created_at", "updated_at"):
        if values[column].tzinfo is None:
            values[column] = values[column].replace(tzinfo=UTC)
    return Organization(**values)


def list_organizations(client: Client) -> list[Organization]:
    result = client.query(
        f"SELECT {', '.join(ORGANIZATION_COLUMNS)} FROM organizations FINAL "
        "WHERE is_deleted = 0 ORDER BY created_at"
    )
    return [_row_to_organization(row) for row in result.named_results()]


def lookup_organization_by_key_hash(client: Client, key_hash: str) -> Organization | None:
    """The organization owning the (live) key with this hash, read from the warehouse."""
    result = client.query(
        f"SELECT {', '.join(ORGANIZATION_COLUMNS)} FROM organizations FINAL "
        "WHERE is_deleted = 0 AND organization_id IN ("
        "  SELECT organization_id FROM api_keys FINAL"
        "  WHERE key_hash = {key_hash:String} AND is_deleted = 0"
        ") LIMIT 1",
        parameters={"key_hash": key_hash},
    )
    rows = list(result.named_results())
    return _row_to_organization(rows[0]) if rows else None


class ApiKeyCache:
    """Thread-safe TTL cache of key hash -> organization (or None for unknown keys)."""

    def __init__(self, ttl_s: float = 30.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Organization | None]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> tuple[bool, Organization | None]:
        """(found, organization): found is False when the entry is missing or expired."""
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, key_hash: str, organization: Organization | None) -> None:
        ttl = self.ttl_s if organization is not None else min(self.ttl_s, UNKNOWN_KEY_TTL_S)
        with self._lock:
            if len(self._entries) > 100_000:
                self._entries.clear()  # bounded memory under a flood of distinct bad keys
            self._entries[key_hash] = (time.monotonic() + ttl, organization)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


api_key_cache = ApiKeyCache()


def organization_for_api_key(
    client: Client, api_key: str, *, cache: ApiKeyCache = api_key_cache
) -> Organization | None:
    """The organization an API key belongs to, or None; cached for ``cache.ttl_s`` seconds."""
    key_hash = hash_api_key(api_key)
    found, organization = cache.get(key_hash)
    if found:
        return organization
    organization = lookup_organization_by_key_hash(client, key_hash)
    cache.put(key_hash, organization)
    return organization


def ensure_default_organization(client: Client, settings: Settings) -> Organization | None:
    """With MH_BOOTSTRAP_API_KEY set and no organization yet, create "default" with that key.

    Returns the organization created, or None when nothing had to be done.
    """
    if settings.bootstrap_api_key is None:
        return None
    if client.command("SELECT count() FROM organizations FINAL WHERE is_deleted = 0"):
        return None
    organization, _ = create_organization(
        client, "default", api_key=settings.bootstrap_api_key.get_secret_value()
    )
    return organization
