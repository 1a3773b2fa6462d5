{{ config(materialized='view') }}
-- fct_current_usage (same parameters, columns and rows) compiled with only the usage features
-- (aggregations, filters, groups, expressions, proration, recurring metrics, ordered events),
-- charge models and rounding precisions of the arrears charges in the catalog when the rating ran:
-- about half of the analysis each request pays. Once the catalog has gained one of them, the
-- query fails ("... added to the catalog ...: rate again") and the billing API reads
-- fct_current_usage instead, until the next run compiles it in.
{{ current_usage(usage_in_use(0), pricing_in_use(0)) }}
