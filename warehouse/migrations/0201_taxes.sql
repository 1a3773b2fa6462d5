-- Billing catalog: taxes. Other records reference taxes by id (tax_ids arrays), never by code,
-- so renaming a tax code does not break them.
CREATE TABLE IF NOT EXISTS {database}.taxes (
    organization_id UUID,
    id UUID,
    code String COMMENT 'Unique per organization among live taxes',
    name String,
    description Nullable(String),
    rate Decimal(38, 12) COMMENT 'Percentage: 20 means 20 %',
    applied_to_organization UInt8 DEFAULT 0 COMMENT 'Default tax of the organization (applies when customer, plan and charge have none)',
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: taxes (Lago taxes)';
