from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import Tax

from tests.api.conftest import Tenant
from tests.conftest import Warehouse
from tests.support.processes import ServiceProcess, free_port, meterhouse_command
from warehouse.migrate import migrate


def test_tax_lifecycle(tenant: Tenant) -> None:
    created = tenant.lago.taxes.create(Tax(name="VAT", code="vat_fr", rate=20.0))
    assert created is not None
    assert (created.code, created.rate, created.applied_to_organization) == ("vat_fr", 20.0, False)

    updated = tenant.lago.taxes.update(Tax(rate=5.5, applied_to_organization=True), "vat_fr")
    assert updated.rate == 5.5 and updated.applied_to_organization is True
    assert tenant.lago.taxes.find("vat_fr").lago_id == created.lago_id

    tenant.lago.taxes.create(Tax(name="GST", code="gst", rate=10.0))
    listed = tenant.lago.taxes.find_all({"per_page": 1})
    assert [t.code for t in listed["taxes"]] == ["vat_fr"]
    assert listed["meta"]["total_count"] == 2 and listed["meta"]["next_page"] == 2

    deleted = tenant.lago.taxes.destroy("vat_fr")
    assert deleted.code == "vat_fr"
    with pytest.raises(LagoApiError) as missing:
        tenant.lago.taxes.find("vat_fr")
    assert missing.value.status_code == 404


def test_tax_validation_names_fields(tenant: Tenant) -> None:
    with pytest.raises(LagoApiError) as invalid:
        tenant.lago.taxes.create(Tax(code="x"))
    assert invalid.value.status_code == 422
    body = invalid.value.response
    assert body["code"] == "validation_errors"
    assert body["error_details"] == {"name": ["value_is_mandatory"], "rate": ["value_is_mandatory"]}

    tenant.lago.taxes.create(Tax(name="VAT", code="dup", rate=1.0))
    with pytest.raises(LagoApiError) as duplicate:
        tenant.lago.taxes.create(Tax(name="VAT", code="dup", rate=1.0))
    assert duplicate.value.response["error_details"] == {"code": ["value_already_exist"]}


def test_tax_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.lago.taxes.create(Tax(name="VAT", code="mine", rate=20.0))
    for call in (
        lambda: other_tenant.lago.taxes.find("mine"),
        lambda: other_tenant.lago.taxes.update(Tax(rate=1.0), "mine"),
        lambda: other_tenant.lago.taxes.destroy("mine"),
    ):
        with pytest.raises(LagoApiError) as hidden:
            call()
        assert hidden.value.status_code == 404
    assert other_tenant.lago.taxes.find_all()["taxes"] == []
    assert tenant.lago.taxes.find("mine").rate == 20.0


def test_unauthenticated_requests_are_refused(api_url: str) -> None:
    for headers in ({}, {"Authorization": "Bearer mh_not_a_key"}, {"Authorization": "Basic x"}):
        response = httpx.get(f"{api_url}/api/v1/taxes", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"status": 401, "error": "Unauthorized"}


def test_openapi_docs_are_served(api_url: str) -> None:
    assert httpx.get(f"{api_url}/docs").status_code == 200
    paths = httpx.get(f"{api_url}/openapi.json").json()["paths"]
    for path in (
        "/api/v1/customers",
        "/api/v1/plans/{code}",
        "/api/v1/subscriptions/{external_id}",
    ):
        assert path in paths


def test_bootstrap_key_opens_the_default_organization(warehouse: Warehouse, tmp_path: Path) -> None:
    database = f"bootstrap_{secrets.token_hex(4)}"
    migrate(warehouse.client(database=""), database)
    key = f"mh_{secrets.token_hex(16)}"
    port = free_port()
    env = {**warehouse.env, "MH_WAREHOUSE_DATABASE": database, "MH_BOOTSTRAP_API_KEY": key}
    with ServiceProcess(
        meterhouse_command("api", "serve", "--port", str(port)),
        f"http://127.0.0.1:{port}/health",
        env=env,
        log_path=tmp_path / "api.log",
    ):
        response = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/organizations",
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 200
    assert response.json()["organization"]["name"] == "default"
