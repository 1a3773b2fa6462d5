{{ config(materialized='view') }}
-- fct_estimated_fees (same parameters, columns and rows) compiled with only the usage features,
-- charge models and rounding precisions of the pay-in-advance charges in the catalog when the
-- rating ran. Once the catalog has gained one of them, the query fails ("... added to the
-- catalog ...: rate again") and the billing API reads fct_estimated_fees instead, until the next
-- run compiles it in.
{{ estimated_fees(usage_in_use(1), pricing_in_use(1)) }}
