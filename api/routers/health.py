"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Store

router = APIRouter(tags=["health"])


@router.get("/health")
def health(store: Store) -> dict[str, str]:
    store.client.command("SELECT 1")
    return {"status": "ok"}
