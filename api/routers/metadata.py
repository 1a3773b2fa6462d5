"""Metadata sub-routes (``/{id}/metadata``) of plans and wallets: replace, merge, delete.

Both keep metadata as a JSON object of string values in their ``metadata`` column.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from api.deps import Caller, CurrentCaller, Store
from api.schemas.common import Body, RequiredText, ShortText, dump_json, load_json
from api.storage.catalog import CatalogStore, Row

Finder = Callable[[CatalogStore, Caller, str], Row]


class MetadataEnvelope(Body):
    metadata: dict[RequiredText, ShortText | None]


def metadata_router(table: str, find: Finder) -> APIRouter:
    """Routes to include in the resource's own router (paths relative to its prefix)."""
    router = APIRouter(tags=[table])

    def save(
        store: CatalogStore, caller: Caller, row: Row, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        store.write(table, [{**row, "metadata": dump_json(metadata)}], changed_by=caller.actor)
        return {"metadata": metadata}

    @router.post("/{key}/metadata")
    def replace_metadata(
        key: str, envelope: MetadataEnvelope, store: Store, caller: CurrentCaller
    ) -> dict[str, Any]:
        with store.locks.hold(caller.organization_id, table):
            return save(store, caller, find(store, caller, key), envelope.metadata)

    @router.patch("/{key}/metadata")
    def merge_metadata(
        key: str, envelope: MetadataEnvelope, store: Store, caller: CurrentCaller
    ) -> dict[str, Any]:
        with store.locks.hold(caller.organization_id, table):
            row = find(store, caller, key)
            return save(store, caller, row, {**load_json(row["metadata"], {}), **envelope.metadata})

    @router.delete("/{key}/metadata")
    def delete_all_metadata(key: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
        with store.locks.hold(caller.organization_id, table):
            return save(store, caller, find(store, caller, key), {})

    @router.delete("/{key}/metadata/{name}")
    def delete_metadata_key(
        key: str, name: str, store: Store, caller: CurrentCaller
    ) -> dict[str, Any]:
        with store.locks.hold(caller.organization_id, table):
            row = find(store, caller, key)
            metadata = {k: v for k, v in load_json(row["metadata"], {}).items() if k != name}
            return save(store, caller, row, metadata)

    return router
