-- Billing catalog: subscriptions.
-- An upgrade or downgrade creates a NEW subscription row with the same external_id and
-- previous_subscription_id pointing at the old one; the old one gets next_subscription_id.
-- Upgrade: old terminated now, new active now. Downgrade: new stays pending until the old
-- period ends (Lago semantics).
CREATE TABLE IF NOT EXISTS {database}.subscriptions (
    organization_id UUID,
    id UUID,
    external_id String COMMENT 'Unique per organization among active and pending subscriptions; shared along an upgrade/downgrade chain',
    customer_id UUID,
    plan_id UUID COMMENT 'The plan billed; an override plan when created with plan_overrides',
    name Nullable(String),
    billing_time LowCardinality(String) COMMENT 'calendar | anniversary',
    status LowCardinality(String) COMMENT 'pending | active | terminated | canceled',
    subscription_at DateTime64(3, 'UTC') COMMENT 'Requested start (past or future); anchors anniversary periods',
    started_at Nullable(DateTime64(3, 'UTC')) COMMENT 'When it became active',
    ending_at Nullable(DateTime64(3, 'UTC')) COMMENT 'Planned automatic termination',
    terminated_at Nullable(DateTime64(3, 'UTC')),
    canceled_at Nullable(DateTime64(3, 'UTC')) COMMENT 'Pending subscription canceled before it started',
    trial_ended_at Nullable(DateTime64(3, 'UTC')) COMMENT 'started_at + plan trial_period days (NULL without trial)',
    previous_subscription_id Nullable(UUID) COMMENT 'Subscription this one upgraded/downgraded from',
    next_subscription_id Nullable(UUID) COMMENT 'Subscription replacing this one (pending downgrade or done upgrade)',
    on_termination_credit_note LowCardinality(Nullable(String)) COMMENT 'credit | refund | skip (pay-in-advance plans)',
    on_termination_invoice LowCardinality(String) DEFAULT 'generate' COMMENT 'generate | skip',
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: subscriptions (Lago subscriptions)';
