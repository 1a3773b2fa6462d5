"""Lookups shared by the routers: by code or external id, uniqueness, tax references."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from api.errors import NotFound
from api.storage.catalog import CatalogStore, Row, with_utc


def find_by(
    store: CatalogStore,
    table: str,
    organization_id: uuid.UUID,
    column: str,
    value: Any,
    *,
    resource: str,
    where: str = "",
) -> Row:
    """The live row whose ``column`` equals ``value``, or a 404 ``<resource>_not_found``."""
    condition = f"{column} = {{value:String}}" + (f" AND ({where})" if where else "")
    row = store.first(table, organization_id, condition, {"value": str(value)})
    if row is None:
        raise NotFound(resource)
    return row


def find_by_id(
    store: CatalogStore, table: str, organization_id: uuid.UUID, row_id: str, *, resource: str
) -> Row:
    try:
        parsed = uuid.UUID(row_id)
    except ValueError:
        raise NotFound(resource) from None
    row = store.first(table, organization_id, "id = {id:UUID}", {"id": parsed})
    if row is None:
        raise NotFound(resource)
    return row


def is_taken(
    store: CatalogStore,
    table: str,
    organization_id: uuid.UUID,
    column: str,
    value: str,
    *,
    except_id: uuid.UUID | None = None,
    where: str = "",
) -> bool:
    """Whether another live row already uses ``value`` in ``column``."""
    condition = f"{column} = {{value:String}}"
    parameters: dict[str, Any] = {"value": value}
    if except_id is not None:
        condition += " AND id != {except_id:UUID}"
        parameters["except_id"] = except_id
    if where:
        condition += f" AND ({where})"
    return store.count(table, organization_id, condition, parameters) > 0


def rows_by_ids(
    store: CatalogStore, table: str, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Row]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    rows = store.select(table, organization_id, "id IN {ids:Array(UUID)}", {"ids": wanted})
    return {row["id"]: row for row in rows}


def latest_by_ids(
    store: CatalogStore, table: str, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Row]:
    """The last version of each row, deleted ones included: what a record refers to keeps
    showing (a terminated wallet of a deleted customer still names its customer)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    result = store.client.query(
        f"SELECT * FROM {table}_history WHERE organization_id = {{org:UUID}}"
        " AND id IN {ids:Array(UUID)} ORDER BY version DESC LIMIT 1 BY id",
        parameters={"org": organization_id, "ids": wanted},
    )
    return {row["id"]: with_utc(row) for row in result.named_results()}


def rows_by_codes(
    store: CatalogStore, table: str, organization_id: uuid.UUID, codes: Iterable[str]
) -> dict[str, Row]:
    wanted = list(dict.fromkeys(codes))
    if not wanted:
        return {}
    rows = store.select(table, organization_id, "code IN {codes:Array(String)}", {"codes": wanted})
    return {row["code"]: row for row in rows}


def tax_ids_for_codes(
    store: CatalogStore, organization_id: uuid.UUID, codes: Sequence[str] | None
) -> list[uuid.UUID]:
    """Tax ids for the given codes, in order; an unknown code is a 404 tax_not_found."""
    if not codes:
        return []
    taxes = rows_by_codes(store, "taxes", organization_id, codes)
    if any(code not in taxes for code in codes):
        raise NotFound("tax")
    return [taxes[code]["id"] for code in dict.fromkeys(codes)]


def taxes_by_id(
    store: CatalogStore, organization_id: uuid.UUID, rows: Iterable[Row], column: str = "tax_ids"
) -> dict[uuid.UUID, Row]:
    """Every live tax referenced by ``column`` of these rows, fetched in one query."""
    ids = [tax_id for row in rows for tax_id in row[column]]
    return rows_by_ids(store, "taxes", organization_id, ids)
