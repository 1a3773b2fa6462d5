"""Customers: ``{"customer": {...}}``."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field

from api.errors import FieldErrors
from api.reference import COUNTRIES, CURRENCIES, is_timezone
from api.schemas.common import Body, RequiredText, ShortText, dump_json, iso, load_json
from api.storage.catalog import Row

Days = Annotated[int, Field(ge=0, le=36_500)]
PaymentProvider = Literal["stripe", "gocardless", "adyen", "moneyhash", "cashfree", "flutterwave"]
EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")

ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "zipcode", "state", "country")
PLAIN_FIELDS = (
    "name",
    "firstname",
    "lastname",
    "customer_type",
    "legal_name",
    "legal_number",
    "tax_identification_number",
    "email",
    "phone",
    "url",
    "logo_url",
    *ADDRESS_FIELDS,
    "currency",
    "timezone",
    "net_payment_term",
    "finalize_zero_amount_invoice",
)


class BillingConfigurationInput(Body):
    invoice_grace_period: Days | None = None
    payment_provider: PaymentProvider | None = None
    payment_provider_code: ShortText | None = None
    provider_customer_id: ShortText | None = None
    sync: bool | None = None
    sync_with_provider: bool | None = None
    document_locale: ShortText | None = None
    provider_payment_methods: list[ShortText] | None = None


class AddressInput(Body):
    address_line1: ShortText | None = None
    address_line2: ShortText | None = None
    city: ShortText | None = None
    zipcode: ShortText | None = None
    state: ShortText | None = None
    country: ShortText | None = None


class MetadataInput(Body):
    key: RequiredText
    value: ShortText | None = None
    display_in_invoice: bool = False


class CustomerInput(Body):
    external_id: RequiredText
    name: ShortText | None = None
    firstname: ShortText | None = None
    lastname: ShortText | None = None
    customer_type: Literal["company", "individual"] | None = None
    legal_name: ShortText | None = None
    legal_number: ShortText | None = None
    tax_identification_number: ShortText | None = None
    email: ShortText | None = None
    phone: ShortText | None = None
    url: ShortText | None = None
    logo_url: ShortText | None = None
    address_line1: ShortText | None = None
    address_line2: ShortText | None = None
    city: ShortText | None = None
    state: ShortText | None = None
    zipcode: ShortText | None = None
    country: ShortText | None = None
    currency: ShortText | None = None
    timezone: ShortText | None = None
    net_payment_term: Days | None = None
    finalize_zero_amount_invoice: Literal["inherit", "finalize", "skip"] | None = None
    metadata: list[MetadataInput] | None = None
    billing_configuration: BillingConfigurationInput | None = None
    shipping_address: AddressInput | None = None
    tax_codes: list[RequiredText] | None = None

    def field_errors(self) -> FieldErrors:
        """Checks beyond types, named with Lago's error codes."""
        errors = FieldErrors()
        if self.currency is not None and self.currency not in CURRENCIES:
            errors.add("currency", "value_is_invalid")
        if self.timezone is not None and not is_timezone(self.timezone):
            errors.add("timezone", "invalid_timezone")
        if self.country is not None and self.country.upper() not in COUNTRIES:
            errors.add("country", "country_code_invalid")
        shipping_country = self.shipping_address.country if self.shipping_address else None
        if shipping_country is not None and shipping_country.upper() not in COUNTRIES:
            errors.add("shipping_address.country", "country_code_invalid")
        if self.email and not all(EMAIL.match(e.strip()) for e in self.email.split(",")):
            errors.add("email", "invalid_email_format")
        if self.metadata and len({item.key for item in self.metadata}) != len(self.metadata):
            errors.add("metadata", "duplicated_keys")
        return errors


class CustomerEnvelope(Body):
    customer: CustomerInput


def customer_columns(body: CustomerInput, current: Row | None) -> dict[str, Any]:
    """Storage columns for the fields the request sets (an upsert changes only those)."""
    sent = body.model_fields_set
    columns: dict[str, Any] = {f: getattr(body, f) for f in PLAIN_FIELDS if f in sent}
    if columns.get("country"):
        columns["country"] = columns["country"].upper()
    if (
        "finalize_zero_amount_invoice" in columns
        and columns["finalize_zero_amount_invoice"] is None
    ):
        columns["finalize_zero_amount_invoice"] = "inherit"
    if body.metadata is not None:
        columns["metadata"] = dump_json(
            [{"id": str(uuid.uuid4()), **item.model_dump()} for item in body.metadata]
        )
    if body.shipping_address is not None:
        columns["shipping_address"] = dump_json(body.shipping_address.model_dump())
    config = body.billing_configuration
    if config is not None:
        config_sent = config.model_fields_set
        mapping = {
            "invoice_grace_period": "invoice_grace_period",
            "payment_provider": "payment_provider",
            "payment_provider_code": "payment_provider_code",
            "provider_customer_id": "provider_customer_id",
            "document_locale": "document_locale",
        }
        for field, column in mapping.items():
            if field in config_sent:
                columns[column] = getattr(config, field)
        if config.sync_with_provider is not None or config.sync is not None:
            columns["provider_sync"] = int(bool(config.sync_with_provider or config.sync))
        if config.provider_payment_methods is not None:
            columns["provider_payment_methods"] = list(config.provider_payment_methods)
    if current is None:
        defaults: dict[str, Any] = dict.fromkeys(PLAIN_FIELDS)
        defaults.update(
            finalize_zero_amount_invoice="inherit",
            shipping_address="{}",
            metadata="[]",
            invoice_grace_period=None,
            payment_provider=None,
            payment_provider_code=None,
            provider_customer_id=None,
            provider_sync=0,
            provider_payment_methods=[],
            document_locale=None,
            tax_ids=[],
        )
        columns = {**defaults, **columns}
    return columns


def present_customer(
    row: Row, taxes: list[dict[str, Any]], organization_timezone: str
) -> dict[str, Any]:
    shipping = load_json(row["shipping_address"], {})
    return {
        "lago_id": str(row["id"]),
        "external_id": row["external_id"],
        **{field: row[field] for field in PLAIN_FIELDS},
        "applicable_timezone": row["timezone"] or organization_timezone,
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "billing_configuration": {
            "invoice_grace_period": row["invoice_grace_period"],
            "payment_provider": row["payment_provider"],
            "payment_provider_code": row["payment_provider_code"],
            "provider_customer_id": row["provider_customer_id"],
            "sync": bool(row["provider_sync"]),
            "sync_with_provider": bool(row["provider_sync"]),
            "document_locale": row["document_locale"],
            "provider_payment_methods": list(row["provider_payment_methods"]),
        },
        "shipping_address": {field: shipping.get(field) for field in ADDRESS_FIELDS},
        "metadata": [
            {
                "lago_id": item.get("id"),
                "key": item.get("key"),
                "value": item.get("value"),
                "display_in_invoice": bool(item.get("display_in_invoice")),
            }
            for item in load_json(row["metadata"], [])
        ],
        "taxes": taxes,
    }
