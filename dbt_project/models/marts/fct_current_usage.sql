{{ config(materialized='view') }}
-- Current usage of some customers' subscriptions, fresh to the last ingested event without a
-- dbt run: the open charge period (the one containing now) rated with the same macros as
-- fct_fees, one row per arrears charge x filter x group (zero rows included). A parameterized
-- view, for one subscription or for every subscription of the customers (subscription ''):
--   SELECT * FROM fct_current_usage(organization_ids = [...], customers = [(organization id,
--                                   external customer id), ...], external_subscription_id = ...)
-- Most of a request's time is the analysis of the inlined macros, so many customers in one
-- request cost about what one does (wallets' ongoing balances read a page of customers, and the
-- hourly refresh of every organization's wallets reads all their customers at once). This view
-- compiles in every usage feature and charge model; the billing API reads
-- fct_current_usage_in_use, its copy for the catalog of the last rating run, and this one only
-- when the catalog has gained a feature since.
-- Events timestamped later in the open period count too, as in Lago, and recurring metrics carry
-- every earlier event of the subscription. Each row carries the tax codes its fee would be
-- invoiced with (the charge's, else the plan's, else the customer's, else the organization's).
{{ current_usage() }}
