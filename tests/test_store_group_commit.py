"""Concurrent appends share commits, each answered only once its own entry is committed; and
JSON encoded in pieces (so as not to hold the GIL) is byte for byte what json.dumps writes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from oncall_tui.clock import FrozenClock
from oncall_tui.store import Store, dumps_in_pieces

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def committed(path: Path, entry_id: int) -> tuple[str, str] | None:
    # A separate connection sees only committed rows.
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT summary, data FROM entries WHERE id = ?", (entry_id,)).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


async def test_concurrent_appends_get_their_own_committed_rows(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    store = await Store.open(path, clock=FrozenClock(NOW))
    seen_on_return: dict[int, tuple[str, str] | None] = {}

    async def one(n: int) -> int:
        entry = await store.append("alertmanager", "webhook", f"entry {n}", data={"n": n})
        seen_on_return[entry.id] = committed(path, entry.id)
        assert entry.summary == f"entry {n}"
        return entry.id

    try:
        ids = await asyncio.gather(*(one(n) for n in range(300)))
        later = await store.append("operator", "note", "after the storm")
    finally:
        await store.close()
    assert len(set(ids)) == 300
    for n, entry_id in enumerate(ids):
        assert seen_on_return[entry_id] == (f"entry {n}", f'{{"n":{n}}}')
    assert later.id == max(ids) + 1
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 301


async def test_entries_queued_when_closing_are_still_committed(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    store = await Store.open(path, clock=FrozenClock(NOW))
    pending = [asyncio.create_task(store.append("webhooks", "x", f"late {n}")) for n in range(20)]
    await asyncio.sleep(0)
    await store.close()
    entries = await asyncio.gather(*pending)
    for entry in entries:
        assert committed(path, entry.id) == (entry.summary, "{}")


@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_dumps_in_pieces_is_exactly_json_dumps(value: Any) -> None:
    compact = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert dumps_in_pieces(value) == compact
