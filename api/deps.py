"""Typed dependencies of the billing API routes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request

from api.errors import Unauthorized
from api.storage.catalog import CatalogStore
from meterhouse.orgs import Organization, hash_api_key, organization_for_api_key
from warehouse.client import get_client


def connect_store(app: FastAPI) -> CatalogStore:
    """The app's catalog store, connected on first use: the API starts, and answers 503
    warehouse_unavailable, while its warehouse is not up yet (creating a client queries it)."""
    store: CatalogStore | None = app.state.store
    if store is None:
        with app.state.store_lock:
            if app.state.store is None:
                # No session id: one client is shared by the worker threads, and ClickHouse
                # refuses concurrent queries within one session.
                client = get_client(app.state.settings, autogenerate_session_id=False)
                app.state.store = CatalogStore(client)
            store = app.state.store
    assert store is not None
    return store


def get_store(request: Request) -> CatalogStore:
    return connect_store(request.app)


Store = Annotated[CatalogStore, Depends(get_store)]


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: the organization every query is scoped to, and who wrote."""

    organization: Organization
    actor: str  # recorded as changed_by on every version written

    @property
    def organization_id(self) -> uuid.UUID:
        return self.organization.organization_id


def authenticate(store: Store, authorization: Annotated[str | None, Header()] = None) -> Caller:
    scheme, _, api_key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not api_key.strip():
        raise Unauthorized()
    organization = organization_for_api_key(store.client, api_key.strip())
    if organization is None:
        raise Unauthorized()
    # The key's hash prefix names the key in the change history without revealing it.
    return Caller(organization, f"api_key:{hash_api_key(api_key.strip())[:16]}")


CurrentCaller = Annotated[Caller, Depends(authenticate)]
