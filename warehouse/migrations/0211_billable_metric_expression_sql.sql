-- A metric's expression translated once into ClickHouse SQL by the billing API (validated there),
-- so rating evaluates it in the warehouse. History twin first, then the table (the view selects *).
ALTER TABLE {database}.billable_metrics_history
    ADD COLUMN IF NOT EXISTS expression_sql Nullable(String) AFTER expression;

ALTER TABLE {database}.billable_metrics
    ADD COLUMN IF NOT EXISTS expression_sql Nullable(String)
    COMMENT 'expression as one ClickHouse expression over __PROPERTIES__, __TIMESTAMP__ and __CODE__ (api/services/metric_expressions.py); NULL without expression'
    AFTER expression;
