"""Typed dependencies of the billing API routes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from api.errors import Unauthorized
from api.storage.catalog import CatalogStore
from meterhouse.orgs import Organization, hash_api_key, organization_for_api_key


def get_store(request: Request) -> CatalogStore:
    store: CatalogStore = request.app.state.store
    return store


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
