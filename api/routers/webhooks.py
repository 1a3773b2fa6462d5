"""The public key of JWT-signed webhooks: /api/v1/webhooks/public_key and json_public_key.

Receivers verify ``X-Lago-Signature`` with it, as lago-python-client's ``webhooks.public_key()``
fetches it: the base64 of the PEM public key, as Lago serves it.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from api.deps import authenticate
from api.errors import ApiError
from api.routers.invoices import AppSettings
from orchestration.webhooks import configured_rsa_private_key, public_key_pem
from warehouse.settings import Settings

# Behind the API key, as Lago serves it.
router = APIRouter(
    prefix="/api/v1/webhooks", tags=["webhooks"], dependencies=[Depends(authenticate)]
)


def encoded_public_key(settings: Settings) -> str:
    key = configured_rsa_private_key(settings)
    if key is None:  # webhooks to jwt endpoints go unsigned: nothing to verify them with
        raise ApiError(404, "webhook_public_key_not_configured")
    return base64.b64encode(public_key_pem(key)).decode()


@router.get("/public_key", response_class=PlainTextResponse)
def public_key(settings: AppSettings) -> str:
    return encoded_public_key(settings)


@router.get("/json_public_key")
def json_public_key(settings: AppSettings) -> dict[str, Any]:
    return {"webhook": {"public_key": encoded_public_key(settings)}}
