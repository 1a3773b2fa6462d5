"""The one settings object every Meterhouse process reads.

Values come from the environment (prefix ``MH_``, plus the documented ``WAREHOUSE_URL``), then
from ``.meterhouse/local.env``, which ``meterhouse up`` writes on first run for local use.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_ENV_FILE = Path(".meterhouse/local.env")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MH_", env_file=LOCAL_ENV_FILE, extra="ignore", populate_by_name=True
    )

    # --- warehouse -----------------------------------------------------------------------------
    warehouse_url: str = Field(
        "http://127.0.0.1:8123",
        validation_alias=AliasChoices("WAREHOUSE_URL", "MH_WAREHOUSE_URL", "warehouse_url"),
        description="ClickHouse HTTP interface: the embedded server or a real ClickHouse.",
    )
    warehouse_user: str = "admin"
    warehouse_password: SecretStr | None = Field(
        None, description="Password of warehouse_user; defaults to the admin password."
    )
    warehouse_database: str = "meterhouse"
    warehouse_data_dir: Path = Path(".meterhouse/data")
    warehouse_admin_password: SecretStr | None = None
    warehouse_analyst_password: SecretStr | None = None
    warehouse_users_file: Path | None = Field(
        None, description="Users file of the embedded server; defaults to <data dir>/users.yaml."
    )
    warehouse_pool_size: int = Field(8, ge=1, le=256)
    warehouse_max_result_bytes: int = Field(4 << 30, ge=1024)
    warehouse_session_timeout_s: int = Field(60, ge=1)

    # --- ingestion and organizations (ingestion/, meterhouse/orgs.py) --------------------------
    bootstrap_api_key: SecretStr | None = Field(
        None, description="API key of the default organization created when none exists."
    )
    api_key_cache_ttl_s: float = Field(30.0, ge=0, description="How long a key lookup is cached.")
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(8300, ge=1, le=65535)
    ingest_workers: int = Field(1, ge=1, le=64)
    ingest_flush_interval_ms: float = Field(
        4.0, ge=0, description="Longest wait for more events before a group-commit flush."
    )
    ingest_flush_max_events: int = Field(
        20_000, ge=1, description="Flush as soon as this many wait."
    )
    ingest_flush_concurrency: int = Field(
        2, ge=1, le=16, description="Group-commit INSERTs in flight at once, per worker."
    )
    ingest_buffer_max_events: int = Field(
        200_000, ge=1, description="Events waiting for a flush beyond which requests get 503."
    )
    ingest_batch_max_events: int = Field(10_000, ge=1)
    ingest_event_max_bytes: int = Field(65_536, ge=256)
    ingest_bulk_max_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    ingest_max_future_s: int = Field(
        86_400, ge=0, description="Events timestamped further in the future are rejected."
    )
    ingest_retry_after_s: int = Field(1, ge=1)
    ingest_insert_timeout_s: float = Field(30.0, gt=0)

    # --- first run (meterhouse up, meterhouse/supervisor.py, meterhouse/demo/) ------------------
    billing_api_port: int = Field(3000, ge=1, le=65535, description="Port of the billing API.")
    dagster_port: int = Field(3100, ge=1, le=65535, description="Port of the Dagster UI.")
    docs_port: int = Field(8580, ge=1, le=65535, description="Port of the dbt docs site.")
    localstripe_port: int = Field(8420, ge=1, le=65535, description="Port of localstripe.")
    # Dagster's first start alone took over 120 s on 2 busy cores: a hung service is still named.
    up_startup_timeout_s: float = Field(300.0, gt=0, description="Wait for each service's health.")
    demo_customers: int = Field(200, ge=1, description="Customers of the demo organization.")
    demo_days: int = Field(90, ge=1, description="Days of usage history in the demo.")
    demo_events_per_day: int = Field(35_000, ge=0, description="Demo events per day, overall.")
    demo_seed: int = Field(42, description="Seed of the demo generator.")

    # --- invoicing (orchestration/: Dagster, payment providers) ---------------------------------
    invoicing_fees_table: str = Field(
        "fct_fees", description="The rating mart invoices are frozen from."
    )
    stripe_api_key: SecretStr | None = Field(
        None, description="Stripe secret key; without it invoices use the manual provider."
    )
    stripe_api_base: str | None = Field(
        None, description="Stripe API base URL override (localstripe in development)."
    )
    stripe_webhook_secret: SecretStr | None = Field(
        None, description="Signing secret of the Stripe webhook endpoint (whsec_...)."
    )
    provider_max_attempts: int = Field(4, ge=1, le=20, description="Tries per provider call.")
    webhook_signing_secret: SecretStr | None = Field(
        None,
        description="Key of the HMAC signatures of outgoing webhooks to `hmac` endpoints "
        "(per-organization keys derive from it); without it they are sent unsigned.",
    )
    webhook_rsa_private_key: SecretStr | None = Field(
        None,
        description="RSA private key (PEM, or its base64 as Lago's LAGO_RSA_PRIVATE_KEY) of the "
        "JWT signatures of outgoing webhooks to `jwt` endpoints, Lago's default; its public key "
        "is served at /api/v1/webhooks/json_public_key. Without it they are sent unsigned.",
    )
    webhook_jwt_issuer: str = Field(
        "meterhouse", description="`iss` of the webhooks' JWTs (Lago puts its API's URL there)."
    )
    webhook_max_attempts: int = Field(3, ge=1, le=20, description="Tries per outgoing webhook.")

    # --- revenue analytics (dashboards/) --------------------------------------------------------
    dashboards_host: str = "127.0.0.1"
    dashboards_port: int = Field(8501, ge=1, le=65535)
    dashboards_invoice_pdf_url: str = Field(
        "http://127.0.0.1:3000/api/v1/invoices/{invoice_id}/download",
        description="Link to an invoice's PDF shown by the dashboards; {invoice_id} is replaced.",
    )

    # --- state of the local processes (Dagster home, generated secrets) -------------------------
    home: Path = Path(".meterhouse")

    @property
    def warehouse_port(self) -> int:
        parsed = urlparse(self.warehouse_url)
        return parsed.port or (443 if parsed.scheme == "https" else 8123)

    @property
    def warehouse_host(self) -> str:
        return urlparse(self.warehouse_url).hostname or "127.0.0.1"

    @property
    def warehouse_secure(self) -> bool:
        return urlparse(self.warehouse_url).scheme == "https"

    def effective_warehouse_password(self) -> str:
        secret = self.warehouse_password or (
            self.warehouse_admin_password if self.warehouse_user == "admin" else None
        )
        return secret.get_secret_value() if secret else ""


@lru_cache
def get_settings() -> Settings:
    return Settings()
