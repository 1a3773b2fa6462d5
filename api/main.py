"""The billing API application: assembles the routers, nothing else.

Each part adds its router here with one ``include_router`` line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from clickhouse_connect.driver.exceptions import OperationalError
from fastapi import FastAPI

from api.deps import connect_store
from api.errors import install_error_handlers
from api.routers import (
    add_ons,
    analytics,
    billable_metrics,
    coupons,
    credit_notes,
    customers,
    events,
    fees,
    health,
    invoices,
    organizations,
    payment_webhooks,
    plans,
    subscriptions,
    taxes,
    usage,
    wallets,
    webhook_endpoints,
    webhooks,
)
from ingestion.routes import router as ingestion_router
from ingestion.state import ingest_state
from warehouse.settings import Settings, get_settings

logger = logging.getLogger(__name__)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.store = None
    app.state.store_lock = threading.Lock()
    try:
        connect_store(app)
    except OperationalError as error:
        logger.warning("warehouse not reachable yet, answering 503 until it is: %s", error)
    try:
        # The event routes of the ingest service are served here too (Lago clients send
        # events to the same base URL as the rest of the API).
        async with ingest_state(settings) as ingest:
            app.state.ingest = ingest
            yield
    finally:
        if app.state.store is not None:
            app.state.store.client.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Meterhouse billing API",
        description="Lago-compatible billing catalog: customers, metrics, plans, subscriptions.",
        version="1",
        lifespan=_lifespan,
    )
    app.state.settings = settings or get_settings()
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(organizations.router)
    app.include_router(customers.router)
    app.include_router(billable_metrics.router)
    app.include_router(plans.router)
    app.include_router(subscriptions.router)
    app.include_router(taxes.router)
    app.include_router(add_ons.router)
    app.include_router(coupons.router)
    app.include_router(wallets.router)
    app.include_router(webhook_endpoints.router)
    app.include_router(webhooks.router)
    app.include_router(analytics.router)
    app.include_router(usage.router)
    app.include_router(invoices.router)
    app.include_router(fees.router)
    app.include_router(events.router)
    app.include_router(credit_notes.router)
    app.include_router(payment_webhooks.router)
    app.include_router(ingestion_router)
    return app
