"""The payment providers a process can use, from the settings."""

from __future__ import annotations

from orchestration.stripe.provider import ManualProvider, PaymentProvider
from orchestration.stripe.stripe_provider import StripeProvider
from warehouse.settings import Settings


def configured_providers(
    settings: Settings,
    *,
    stripe_api_key: str | None = None,
    stripe_api_base: str | None = None,
    stripe_webhook_secret: str | None = None,
    max_attempts: int | None = None,
) -> dict[str, PaymentProvider]:
    """Stripe when a key is configured (argument or setting); the manual provider always."""
    providers: dict[str, PaymentProvider] = {"manual": ManualProvider()}
    api_key = stripe_api_key or _secret(settings.stripe_api_key)
    if api_key:
        providers["stripe"] = StripeProvider(
            api_key,
            webhook_secret=stripe_webhook_secret or _secret(settings.stripe_webhook_secret),
            api_base=stripe_api_base or settings.stripe_api_base,
            attempts=max_attempts or settings.provider_max_attempts,
        )
    return providers


def _secret(value: object) -> str | None:
    get = getattr(value, "get_secret_value", None)
    return str(get()) if get else None
