"""The duplicates metric's memory of recent keys: repeats within a request and across requests
are counted, and the memory stays bounded by dropping its oldest generation."""

from __future__ import annotations

import uuid

from ingestion.state import RecentKeys

ORG = uuid.UUID(int=1)
OTHER_ORG = uuid.UUID(int=2)


def test_repeats_within_and_across_requests_are_counted() -> None:
    keys = RecentKeys(capacity=100)
    # tx-1 twice in one request: one duplicate.
    assert keys.count_seen(ORG, ["sub", "sub", "sub"], ["tx-1", "tx-2", "tx-1"]) == 1
    # tx-2 again: seen; tx-3 new; the same transaction of another subscription or org is new.
    assert keys.count_seen(ORG, ["sub", "sub", "other"], ["tx-2", "tx-3", "tx-1"]) == 1
    assert keys.count_seen(OTHER_ORG, ["sub"], ["tx-1"]) == 0


def test_memory_keeps_two_generations_then_forgets_the_oldest() -> None:
    keys = RecentKeys(capacity=4)  # generations of 2 keys
    assert keys.count_seen(ORG, ["s", "s"], ["a", "b"]) == 0  # current {a, b} -> previous
    assert keys.count_seen(ORG, ["s", "s"], ["c", "a"]) == 1  # a from the previous generation
    # {c} was current; adding d fills it: previous {c, d}, {a, b} forgotten.
    assert keys.count_seen(ORG, ["s"], ["d"]) == 0
    assert keys.count_seen(ORG, ["s", "s"], ["c", "a"]) == 1  # c remembered, a forgotten
