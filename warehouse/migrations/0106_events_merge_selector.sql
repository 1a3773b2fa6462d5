-- Merges of events rewrite every row once per level of the merge tree, and under steady
-- batch ingestion they were two thirds of the warehouse's CPU (ingestion/README.md). With
-- merge_selector_base 20 (default 5) the engine waits for more parts of a similar size and
-- merges them at once: fewer levels, each row rewritten ~1.8 times instead of ~3-3.5 over 150
-- parts of 8,000 events, at the price of more (small) parts alive between merges.
ALTER TABLE {database}.events MODIFY SETTING merge_selector_base = 20;
