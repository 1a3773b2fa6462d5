{{ config(materialized='view') }}
-- The fees one event would produce on the pay-in-advance charges of a subscription if it were
-- ingested now, without storing it (Lago's POST /events/estimate_fees). A parameterized view:
--   SELECT * FROM fct_estimated_fees(organization_id = ..., external_subscription_id = ...,
--       code = ..., transaction_id = ..., property_keys = [...], property_values = [...],
--       precise_total_amount_cents = '')
-- The event joins the stored events of the open charge period as the latest one (timestamp and
-- ingestion time now) and is priced by the same macro as int_rating_pay_in_advance_fees:
-- cost(after) - cost(running peak before), never negative. One row per pay-in-advance charge of
-- the metric, in the filter and group the event falls in. Properties come as two arrays (values
-- as the ingest stores them); `precise_total_amount_cents` is text ('' when absent).
-- The billing API reads fct_estimated_fees_in_use, its copy compiled for the catalog of the last
-- rating run, and this view only once the catalog has gained a feature since.
{{ estimated_fees() }}
