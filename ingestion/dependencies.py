"""Typed dependencies of the ingest routes: the process state and the caller's organization."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from ingestion import responses
from ingestion.state import IngestState
from meterhouse.orgs import Organization, api_key_cache, hash_api_key, organization_for_api_key


class IngestError(Exception):
    """Raised anywhere in a request to answer with ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class IngestRoute(APIRoute):
    """Turns IngestError into its response, so the routes work in any app that mounts them."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except IngestError as exc:
                return exc.response

        return handle


async def get_state(request: Request) -> IngestState:
    # async: FastAPI would run a plain function in its thread pool, once per request.
    state: IngestState = request.app.state.ingest
    return state


State = Annotated[IngestState, Depends(get_state)]


def unavailable(state: IngestState, reason: str) -> IngestError:
    state.metrics.unavailable += 1
    return IngestError(
        responses.error(
            503,
            "Service Unavailable",
            "warehouse_unavailable",
            message=reason,
            retry_after=state.settings.ingest_retry_after_s,
        )
    )


async def authenticate(request: Request, state: State) -> Organization:
    return await organization_for(request.headers.get("authorization", ""), state)


async def organization_for(authorization: str, state: IngestState) -> Organization:
    """The organization of an ``Authorization: Bearer <api key>`` header, or IngestError(401)."""
    scheme, _, api_key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not api_key.strip():
        raise IngestError(responses.error(401, "Unauthorized", "missing_api_key"))
    api_key = api_key.strip()
    found, organization = api_key_cache.get(hash_api_key(api_key))
    if not found:
        try:
            organization = await asyncio.to_thread(
                organization_for_api_key, state.writer.client(), api_key
            )
        except Exception as exc:
            raise unavailable(state, f"cannot check the API key: {exc}") from exc
    if organization is None:
        raise IngestError(responses.error(401, "Unauthorized", "invalid_api_key"))
    return organization


CurrentOrganization = Annotated[Organization, Depends(authenticate)]
