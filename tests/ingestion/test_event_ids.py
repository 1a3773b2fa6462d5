"""Lago ids (lago_id) computed in bulk are exactly uuid.uuid5 of the dedup key."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.responses import EVENT_ID_NAMESPACE, EventIds

keys = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=20)


@settings(max_examples=300, deadline=None)
@given(organization=st.uuids(), keys=keys)
def test_ids_are_uuid5_of_the_key(organization: uuid.UUID, keys: list[tuple[str, str]]) -> None:
    expected = [str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{organization}/{s}/{t}")) for s, t in keys]
    ids = EventIds(organization)
    assert ids.many([s for s, _ in keys], [t for _, t in keys]) == expected
    assert [ids(s, t) for s, t in keys] == expected
