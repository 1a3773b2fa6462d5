"""The standalone ingest service: the ingest routes and their lifespan, nothing else.

Its outermost ASGI app (``create_server``) answers Lago's two hot routes
(``POST /api/v1/events`` and ``POST /api/v1/events/batch``) itself, ahead of FastAPI.
FastAPI's per-request machinery (routing, dependency resolution, Request objects) costs a few
hundred microseconds of Python; at thousands of single events per second that was most of the
process's CPU. These routes need none of it: the body is read whole, the caller is its API key,
and the handlers are the ones the FastAPI routes call (``ingestion.routes``), so both answer
the same. Every other request goes on to FastAPI; the billing API, which mounts the FastAPI
routes, serves the same behaviour at its own pace.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import FastAPI, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ingestion import responses
from ingestion.dependencies import IngestError, organization_for
from ingestion.routes import health_router, ingest_batch, ingest_event, max_json_bytes, router
from ingestion.state import IngestState, ingest_state
from warehouse.settings import get_settings

EVENTS_PATH = "/api/v1/events"
BATCH_PATH = "/api/v1/events/batch"
HOT_PATHS = frozenset({EVENTS_PATH, BATCH_PATH})
# A 1,000-event batch allocates thousands of dicts (orjson's parse, Lago's answer), nearly all
# freed by reference counting once the request is answered. At Python's default threshold (700
# net allocations) the cyclic collector ran several times per batch and rescanned the app's
# long-lived objects; frozen and at 20,000 it cost ~1 us less per event (one process, 4.6 ->
# 3.2-3.7 us from parse to answer). With 32 producers, 32 batches wait for their flush at once,
# and at 20,000 the collector still took 10% of the process's CPU (perf), scanning dicts that
# were all alive; at 100,000 it no longer shows. Cyclic garbage stays bounded by the threshold.
GC_THRESHOLDS = (100_000, 50, 100)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with ingest_state(get_settings()) as state:
        app.state.ingest = state
        with collector_tuned_for_requests():
            yield


@contextmanager
def collector_tuned_for_requests() -> Iterator[None]:
    """Freeze what startup built out of the collector's scans and collect less often."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


class ClientGone(Exception):
    """The client disconnected before sending its whole body."""


class HotRoutes:
    """The outermost ASGI app: the hot Lago routes answered directly, the rest (and the
    lifespan) passed on to FastAPI. Outside FastAPI rather than one of its middlewares, so a
    hot request skips Starlette's entry and error handler too (uvicorn answers 500 on a bug)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or scope["method"] != "POST" or path not in HOT_PATHS:
            await self.app(scope, receive, send)
            return
        state: IngestState = self.app.state.ingest
        try:
            response = await self.answer(scope, receive, state, path == BATCH_PATH)
        except IngestError as exc:
            response = exc.response
        except ClientGone:
            return
        await response(scope, receive, send)

    async def answer(
        self, scope: Scope, receive: Receive, state: IngestState, batch: bool
    ) -> Response:
        authorization = content_type = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
        # Until its body is in, the request will join the group that is gathering; from then on
        # the handler runs without yielding until the buffer holds its events.
        with state.buffer.receiving():
            organization = await organization_for(authorization, state)
            body = await read_body(receive, max_json_bytes(state))
        if batch:
            return await ingest_batch(body, state, organization)
        return await ingest_event(body, content_type, state, organization)


async def read_body(receive: Receive, max_bytes: int) -> bytes:
    """The whole body; 413 as soon as it outgrows what any valid request can be."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise IngestError(responses.error(413, "Payload Too Large", "body_too_large"))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def create_app() -> FastAPI:
    """The ingest routes as a FastAPI app (every route, its OpenAPI schema, the lifespan)."""
    app = FastAPI(title="Meterhouse ingest", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(health_router)
    app.include_router(router)
    return app


def create_server() -> ASGIApp:
    """What ``meterhouse ingest serve`` runs: the hot routes in front of ``create_app()``."""
    return HotRoutes(create_app())
