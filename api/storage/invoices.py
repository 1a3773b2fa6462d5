"""Reading invoicing records for the API: invoices, their fees and taxes, credit notes.

Invoices are records written by the invoicing assets; the current state of one is its row with
the highest version (FINAL). Its lines are the ``invoice_fees`` rows of its ``fees_version``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from clickhouse_connect.driver.client import Client

from orchestration.invoices.voiding import UNCOUNTED_INVOICES

Row = dict[str, Any]
KEYS_PER_QUERY = 500


@dataclass(frozen=True)
class InvoiceFilters:
    external_customer_id: str | None = None
    status: str | None = None
    payment_status: str | None = None
    issuing_date_from: date | None = None
    issuing_date_to: date | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        conditions: list[str] = []
        parameters: dict[str, Any] = {}
        for column, value in (
            ("external_customer_id", self.external_customer_id),
            ("status", self.status),
            ("payment_status", self.payment_status),
        ):
            if value is not None:
                conditions.append(f"{column} = {{{column}:String}}")
                parameters[column] = value
        if self.issuing_date_from is not None:
            conditions.append("issuing_date >= {date_from:Date}")
            parameters["date_from"] = self.issuing_date_from
        if self.issuing_date_to is not None:
            conditions.append("issuing_date <= {date_to:Date}")
            parameters["date_to"] = self.issuing_date_to
        return " AND ".join(conditions) or "1", parameters


class InvoiceRecords:
    def __init__(self, client: Client) -> None:
        self.client = client

    def _rows(self, sql: str, parameters: dict[str, Any]) -> list[Row]:
        return list(self.client.query(sql, parameters=parameters).named_results())

    def invoices(
        self, organization_id: uuid.UUID, filters: InvoiceFilters, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        where, parameters = filters.where()
        parameters["org"] = organization_id
        base = f"FROM invoices FINAL WHERE organization_id = {{org:UUID}} AND {where}"
        rows = self._rows(
            f"SELECT * {base} ORDER BY issuing_date DESC, created_at DESC, id "
            f"LIMIT {int(limit)} OFFSET {int(offset)}",
            parameters,
        )
        total = self._rows(f"SELECT count() AS n {base}", parameters)[0]["n"]
        return self._with_thresholds(organization_id, rows), int(total)

    def invoice(self, organization_id: uuid.UUID, invoice_id: str) -> Row | None:
        try:
            parsed = uuid.UUID(invoice_id)
        except ValueError:
            return None
        rows = self._rows(
            "SELECT * FROM invoices FINAL WHERE organization_id = {org:UUID} AND id = {id:UUID}",
            {"org": organization_id, "id": parsed},
        )
        return self._with_thresholds(organization_id, rows)[0] if rows else None

    def _with_thresholds(self, organization_id: uuid.UUID, invoices: list[Row]) -> list[Row]:
        """Each invoice with the usage thresholds it was issued for (progressive billing)."""
        progressive = [str(i["id"]) for i in invoices if i["invoice_type"] == "progressive_billing"]
        applied: dict[Any, list[Row]] = defaultdict(list)
        if progressive:
            for row in self._rows(
                "SELECT * FROM applied_usage_thresholds FINAL WHERE organization_id = {org:UUID} "
                "AND toString(invoice_id) IN {ids:Array(String)} ORDER BY crossed_amount_cents",
                {"org": organization_id, "ids": progressive},
            ):
                applied[row["invoice_id"]].append(row)
        return [{**i, "applied_usage_thresholds": applied.get(i["id"], [])} for i in invoices]

    def fees_of(self, organization_id: uuid.UUID, invoices: Sequence[Row]) -> dict[Any, list[Row]]:
        return self._by_invoice(
            "invoice_fees", "ORDER BY invoice_id, fee_type DESC, id", organization_id, invoices
        )

    def taxes_of(self, organization_id: uuid.UUID, invoices: Sequence[Row]) -> dict[Any, list[Row]]:
        return self._by_invoice(
            "invoice_applied_taxes", "ORDER BY invoice_id, tax_code", organization_id, invoices
        )

    def _by_invoice(
        self, table: str, order: str, organization_id: uuid.UUID, invoices: Sequence[Row]
    ) -> dict[Any, list[Row]]:
        grouped: dict[Any, list[Row]] = defaultdict(list)
        if not invoices:
            return grouped
        keys = [(str(i["id"]), int(i["fees_version"])) for i in invoices]
        for start in range(0, len(keys), KEYS_PER_QUERY):  # bounded request size
            rows = self._rows(
                f"SELECT * FROM {table} FINAL WHERE organization_id = {{org:UUID}} AND "
                f"(toString(invoice_id), fees_version) IN {{keys:Array(Tuple(String, UInt64))}} "
                f"{order}",
                {"org": organization_id, "keys": keys[start : start + KEYS_PER_QUERY]},
            )
            for row in rows:
                grouped[row["invoice_id"]].append(row)
        return grouped

    def fees(
        self, organization_id: uuid.UUID, external_customer_id: str | None, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        """Fees frozen into invoices (their current version), newest first."""
        customer = "AND i.external_customer_id = {customer:String}" if external_customer_id else ""
        base = f"""
            FROM invoice_fees AS f FINAL
            INNER JOIN (SELECT * FROM invoices FINAL WHERE organization_id = {{org:UUID}}) AS i
                ON i.id = f.invoice_id AND i.fees_version = f.fees_version
            WHERE f.organization_id = {{org:UUID}} {customer}
        """
        parameters: dict[str, Any] = {
            "org": organization_id,
            "customer": external_customer_id or "",
        }
        rows = self._rows(
            f"SELECT f.*, i.external_customer_id AS external_customer_id, "
            f"i.status AS invoice_status, i.payment_status AS payment_status {base} "
            f"ORDER BY f.period_to DESC, f.id LIMIT {int(limit)} OFFSET {int(offset)}",
            parameters,
        )
        total = self._rows(f"SELECT count() AS n {base}", parameters)[0]["n"]
        return rows, int(total)

    def fee(self, organization_id: uuid.UUID, fee_id: str) -> Row | None:
        try:
            parsed = uuid.UUID(fee_id)
        except ValueError:
            return None
        rows = self._rows(
            """
            SELECT f.*, i.external_customer_id AS external_customer_id,
                   i.status AS invoice_status, i.payment_status AS payment_status
            FROM invoice_fees AS f FINAL
            INNER JOIN (SELECT * FROM invoices FINAL WHERE organization_id = {org:UUID}) AS i
                ON i.id = f.invoice_id AND i.fees_version = f.fees_version
            WHERE f.organization_id = {org:UUID} AND f.id = {id:UUID}
            ORDER BY i.version DESC LIMIT 1
            """,
            {"org": organization_id, "id": parsed},
        )
        return rows[0] if rows else None

    def provider_reference(
        self, organization_id: uuid.UUID, object_type: str, object_id: uuid.UUID
    ) -> Row | None:
        rows = self._rows(
            "SELECT * FROM provider_references FINAL WHERE organization_id = {org:UUID} "
            "AND object_type = {type:String} AND object_id = {id:UUID} "
            "ORDER BY updated_at DESC LIMIT 1",
            {"org": organization_id, "type": object_type, "id": object_id},
        )
        return rows[0] if rows else None

    def credit_notes(
        self, organization_id: uuid.UUID, where: str, parameters: dict[str, Any]
    ) -> list[Row]:
        return self._rows(
            "SELECT n.*, n.credit_amount_cents - ifNull(u.used, 0) AS balance_amount_cents, "
            "ifNull(r.refund_id, '') AS provider_refund_id, r.error AS refund_error "
            "FROM credit_notes AS n FINAL LEFT JOIN ("
            "  SELECT credit_note_id, sum(amount_cents) AS used FROM credit_note_consumptions "
            "  FINAL WHERE organization_id = {org:UUID} "
            f"  AND invoice_id NOT IN ({UNCOUNTED_INVOICES}) GROUP BY credit_note_id"
            ") AS u ON u.credit_note_id = n.id LEFT JOIN ("
            "  SELECT object_id, argMax(provider_object_id, updated_at) AS refund_id,"
            "         argMax(last_error, updated_at) AS error FROM provider_references FINAL"
            "  WHERE organization_id = {org:UUID} AND object_type = 'credit_note'"
            "  GROUP BY object_id"
            ") AS r ON r.object_id = n.id "
            f"WHERE n.organization_id = {{org:UUID}} AND {where} ORDER BY n.created_at DESC",
            {**parameters, "org": organization_id},
        )

    def credit_note_items(
        self, organization_id: uuid.UUID, note_ids: Sequence[Any]
    ) -> dict[Any, list[Row]]:
        grouped: dict[Any, list[Row]] = defaultdict(list)
        if not note_ids:
            return grouped
        rows = self._rows(
            "SELECT * FROM credit_note_items FINAL WHERE organization_id = {org:UUID} "
            "AND toString(credit_note_id) IN {ids:Array(String)} ORDER BY credit_note_id, id",
            {"org": organization_id, "ids": [str(i) for i in note_ids]},
        )
        for row in rows:
            grouped[row["credit_note_id"]].append(row)
        return grouped

    def credited_by_fee(self, organization_id: uuid.UUID, invoice_id: uuid.UUID) -> dict[Any, int]:
        """How much of each fee of the invoice earlier credit notes already took back."""
        rows = self._rows(
            "SELECT fee_id, sum(amount_cents) AS credited FROM credit_note_items FINAL "
            "WHERE organization_id = {org:UUID} AND credit_note_id IN ("
            "  SELECT id FROM credit_notes FINAL WHERE organization_id = {org:UUID} "
            "  AND invoice_id = {invoice:UUID}) GROUP BY fee_id",
            {"org": organization_id, "invoice": invoice_id},
        )
        return {row["fee_id"]: int(row["credited"]) for row in rows}

    def last_credit_note_sequence(self, organization_id: uuid.UUID, invoice_id: uuid.UUID) -> int:
        rows = self._rows(
            "SELECT max(sequential_id) AS last FROM credit_notes FINAL "
            "WHERE organization_id = {org:UUID} AND invoice_id = {invoice:UUID}",
            {"org": organization_id, "invoice": invoice_id},
        )
        return int(rows[0]["last"] or 0)
