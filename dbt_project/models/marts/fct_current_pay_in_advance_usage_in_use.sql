{{ config(materialized='view') }}
-- fct_current_pay_in_advance_usage (same parameters, columns and rows) compiled with only the
-- usage features, charge models and rounding precisions of the pay-in-advance charges in the
-- catalog when the rating ran (and, for the renewals, of the recurring ones alone). Once the
-- catalog has gained one of them, the query fails ("... added to the catalog ...: rate again")
-- and the billing API reads fct_current_pay_in_advance_usage instead, until the next run
-- compiles it in.
{{ current_pay_in_advance_usage(usage_in_use(1), pricing_in_use(1),
                                usage_in_use(1, recurring_only=true), pricing_in_use(1, recurring_only=true)) }}
