"""The Dagster code location: rating (dbt), invoicing and wallets' ongoing balances, with their
schedules and sensors."""

from dagster import Definitions

from orchestration.dbt.assets import build_dbt_assets, dbt_resource
from orchestration.invoices.jobs import invoicing_definitions
from orchestration.invoices.refund_job import refund_definitions
from orchestration.wallets.ongoing_balances import wallet_definitions
from warehouse.settings import get_settings

_settings = get_settings()

defs = Definitions.merge(
    invoicing_definitions(),
    refund_definitions(),
    wallet_definitions(),
    Definitions(assets=[build_dbt_assets(_settings)], resources={"dbt": dbt_resource(_settings)}),
)
