"""The standalone ingest service: the ingest routes and their lifespan, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ingestion.routes import router
from ingestion.state import ingest_state
from warehouse.settings import get_settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with ingest_state(get_settings()) as state:
        app.state.ingest = state
        yield


def create_app() -> FastAPI:
    app = FastAPI(title="Meterhouse ingest", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(router)
    return app
