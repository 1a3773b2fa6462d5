"""Dagster resources: the warehouse and the payment providers, configured from the settings."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client
from dagster import ConfigurableResource
from pydantic import SecretStr

from orchestration.stripe.provider import PaymentProvider
from orchestration.stripe.registry import configured_providers
from warehouse.client import get_client
from warehouse.settings import Settings, get_settings


class WarehouseResource(ConfigurableResource):
    """The warehouse of the settings; each field, when set, overrides the setting."""

    url: str | None = None
    user: str | None = None
    password: str | None = None
    database: str | None = None

    def settings(self) -> Settings:
        overrides = {
            "warehouse_url": self.url,
            "warehouse_user": self.user,
            "warehouse_password": SecretStr(self.password) if self.password is not None else None,
            "warehouse_database": self.database,
        }
        return get_settings().model_copy(
            update={key: value for key, value in overrides.items() if value is not None}
        )

    def client(self) -> Client:
        # No session: one run's queries are sequential, and sessions would pin a connection.
        return get_client(self.settings(), autogenerate_session_id=False)


class PaymentProvidersResource(ConfigurableResource):
    """Stripe when a key is configured (here or in the settings); the manual provider always."""

    stripe_api_key: str | None = None
    stripe_api_base: str | None = None
    stripe_webhook_secret: str | None = None
    max_attempts: int | None = None

    def providers(self) -> list[PaymentProvider]:
        return list(
            configured_providers(
                get_settings(),
                stripe_api_key=self.stripe_api_key,
                stripe_api_base=self.stripe_api_base,
                stripe_webhook_secret=self.stripe_webhook_secret,
                max_attempts=self.max_attempts,
            ).values()
        )
