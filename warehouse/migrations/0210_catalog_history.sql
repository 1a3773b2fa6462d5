-- Change history of the billing catalog: every version ever written, never collapsed.
-- Each catalog table T has a twin T_history (plain MergeTree, same columns) filled by the
-- materialized view T_history_mv on every insert. "Which price applied when" is answered by
-- ordering a record's versions: version i is valid from its updated_at until the next one's.
-- who = changed_by, when = updated_at, what = the full row (is_deleted = 1 on deletion).
-- Adding a column to T later: add it to T_history in the same migration (the view selects *).

CREATE TABLE IF NOT EXISTS {database}.customers_history AS {database}.customers
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of customers: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.customers_history_mv TO {database}.customers_history
AS SELECT * FROM {database}.customers;

CREATE TABLE IF NOT EXISTS {database}.taxes_history AS {database}.taxes
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of taxes: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.taxes_history_mv TO {database}.taxes_history
AS SELECT * FROM {database}.taxes;

CREATE TABLE IF NOT EXISTS {database}.billable_metrics_history AS {database}.billable_metrics
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of billable_metrics: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.billable_metrics_history_mv TO {database}.billable_metrics_history
AS SELECT * FROM {database}.billable_metrics;

CREATE TABLE IF NOT EXISTS {database}.plans_history AS {database}.plans
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of plans: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.plans_history_mv TO {database}.plans_history
AS SELECT * FROM {database}.plans;

CREATE TABLE IF NOT EXISTS {database}.charges_history AS {database}.charges
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of charges: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.charges_history_mv TO {database}.charges_history
AS SELECT * FROM {database}.charges;

CREATE TABLE IF NOT EXISTS {database}.charge_filters_history AS {database}.charge_filters
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of charge_filters: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.charge_filters_history_mv TO {database}.charge_filters_history
AS SELECT * FROM {database}.charge_filters;

CREATE TABLE IF NOT EXISTS {database}.usage_thresholds_history AS {database}.usage_thresholds
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of usage_thresholds: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_thresholds_history_mv TO {database}.usage_thresholds_history
AS SELECT * FROM {database}.usage_thresholds;

CREATE TABLE IF NOT EXISTS {database}.subscriptions_history AS {database}.subscriptions
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of subscriptions: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.subscriptions_history_mv TO {database}.subscriptions_history
AS SELECT * FROM {database}.subscriptions;

CREATE TABLE IF NOT EXISTS {database}.coupons_history AS {database}.coupons
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of coupons: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.coupons_history_mv TO {database}.coupons_history
AS SELECT * FROM {database}.coupons;

CREATE TABLE IF NOT EXISTS {database}.applied_coupons_history AS {database}.applied_coupons
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of applied_coupons: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.applied_coupons_history_mv TO {database}.applied_coupons_history
AS SELECT * FROM {database}.applied_coupons;

CREATE TABLE IF NOT EXISTS {database}.add_ons_history AS {database}.add_ons
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of add_ons: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.add_ons_history_mv TO {database}.add_ons_history
AS SELECT * FROM {database}.add_ons;

CREATE TABLE IF NOT EXISTS {database}.wallets_history AS {database}.wallets
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of wallets: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.wallets_history_mv TO {database}.wallets_history
AS SELECT * FROM {database}.wallets;

CREATE TABLE IF NOT EXISTS {database}.wallet_transactions_history AS {database}.wallet_transactions
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of wallet_transactions: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.wallet_transactions_history_mv TO {database}.wallet_transactions_history
AS SELECT * FROM {database}.wallet_transactions;

CREATE TABLE IF NOT EXISTS {database}.webhook_endpoints_history AS {database}.webhook_endpoints
ENGINE = MergeTree
ORDER BY (organization_id, id, version)
COMMENT 'Every version of webhook_endpoints: change history, never collapsed';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.webhook_endpoints_history_mv TO {database}.webhook_endpoints_history
AS SELECT * FROM {database}.webhook_endpoints;
