"""The caller's organization: GET/PUT /api/v1/organizations.

The organizations table belongs to the organizations module (meterhouse/orgs.py); a settings
change is a new version of its row, with a version above the one it replaces.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from api.deps import Caller, CurrentCaller, Store
from api.errors import NotFound
from api.schemas.organizations import OrganizationEnvelope, present_organization
from api.schemas.taxes import present_tax
from api.storage.catalog import CatalogStore, Row, utc_now

router = APIRouter(prefix="/api/v1/organizations", tags=["organizations"])


def current_row(store: CatalogStore, caller: Caller) -> Row:
    # Read afresh: the organization cached with the API key may predate the last change.
    rows = store.client.query(
        "SELECT * FROM organizations FINAL WHERE organization_id = {org:UUID} AND is_deleted = 0",
        parameters={"org": caller.organization_id},
    )
    found = list(rows.named_results())
    if not found:
        raise NotFound("organization")
    return found[0]


def present(store: CatalogStore, caller: Caller, row: Row) -> dict[str, Any]:
    taxes = store.select("taxes", caller.organization_id, "applied_to_organization = 1")
    return present_organization(row, [present_tax(tax) for tax in taxes])


@router.get("")
def get_organization(store: Store, caller: CurrentCaller) -> dict[str, Any]:
    return {"organization": present(store, caller, current_row(store, caller))}


@router.put("")
def update_organization(
    envelope: OrganizationEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    body = envelope.organization
    body.field_errors().raise_if_any()
    with store.locks.hold(caller.organization_id, "organizations"):
        row = current_row(store, caller)
        row.update(body.columns())
        row["updated_at"] = utc_now()
        row["version"] = max(time.time_ns(), int(row["version"]) + 1)
        columns = list(row)
        store.client.insert("organizations", [[row[c] for c in columns]], column_names=columns)
    return {"organization": present(store, caller, row)}
