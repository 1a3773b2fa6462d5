"""The caller's organization settings: ``{"organization": {...}}``."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import Field

from api.errors import FieldErrors
from api.reference import CURRENCIES, is_timezone
from api.schemas.common import Body, ShortText, iso
from api.schemas.customers import EMAIL
from api.storage.catalog import Row

Days = Annotated[int, Field(ge=0, le=36_500)]


class OrganizationBillingConfigurationInput(Body):
    invoice_grace_period: Days | None = None
    invoice_footer: ShortText | None = None
    document_locale: ShortText | None = None


class OrganizationInput(Body):
    default_currency: ShortText | None = None
    timezone: ShortText | None = None
    net_payment_term: Days | None = None
    document_numbering: Literal["per_customer", "per_organization"] | None = None
    document_number_prefix: Annotated[str, Field(max_length=10)] | None = None
    email: ShortText | None = None
    webhook_url: Annotated[str, Field(max_length=1024)] | None = None
    billing_configuration: OrganizationBillingConfigurationInput | None = None

    def field_errors(self) -> FieldErrors:
        errors = FieldErrors()
        if self.default_currency is not None and self.default_currency not in CURRENCIES:
            errors.add("default_currency", "value_is_invalid")
        if self.timezone is not None and not is_timezone(self.timezone):
            errors.add("timezone", "invalid_timezone")
        if self.email is not None and not EMAIL.match(self.email):
            errors.add("email", "invalid_email_format")
        if self.webhook_url is not None and not is_http_url(self.webhook_url):
            errors.add("webhook_url", "url_is_invalid")
        return errors

    def columns(self) -> dict[str, Any]:
        """Storage columns for the fields the request sets."""
        direct = ("default_currency", "timezone", "net_payment_term", "document_numbering")
        columns = {f: getattr(self, f) for f in direct if getattr(self, f) is not None}
        for nullable in ("email", "webhook_url"):
            if nullable in self.model_fields_set:
                columns[nullable] = getattr(self, nullable)
        if self.document_number_prefix is not None:
            columns["document_number_prefix"] = self.document_number_prefix
        grace = (
            self.billing_configuration.invoice_grace_period if self.billing_configuration else None
        )
        if grace is not None:
            columns["invoice_grace_period"] = grace
        return columns


class OrganizationEnvelope(Body):
    organization: OrganizationInput


def is_http_url(text: str) -> bool:
    parsed = urlparse(text)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def present_organization(row: Row, taxes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "lago_id": str(row["organization_id"]),
        "name": row["name"],
        "created_at": iso(row["created_at"]),
        "default_currency": row["default_currency"],
        "timezone": row["timezone"],
        "net_payment_term": int(row["net_payment_term"]),
        "document_numbering": row["document_numbering"],
        "document_number_prefix": row["document_number_prefix"],
        "email": row["email"],
        "webhook_url": row["webhook_url"],
        "webhook_urls": [row["webhook_url"]] if row["webhook_url"] else [],
        "billing_configuration": {
            "invoice_grace_period": int(row["invoice_grace_period"]),
            "invoice_footer": None,
            "document_locale": "en",
        },
        "taxes": taxes,
    }
