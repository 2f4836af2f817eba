"""The SQLite log: schema and migrations, file safety, entries, outbox, snapshot, state."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from oncall_tui import store as store_module
from oncall_tui.clock import FrozenClock
from oncall_tui.models import (
    Action,
    ActionStatus,
    Alert,
    AlertState,
    Component,
    Incident,
    LogEntry,
    Matcher,
    OnCall,
    Silence,
    SilenceState,
    Snapshot,
    SourceHealth,
    StatusIncident,
)
from oncall_tui.store import MIGRATIONS, SCHEMA_VERSION, Store, StoreError

T0 = datetime(2024, 5, 1, 2, 0, 0, tzinfo=UTC)
SECRET = "hunter2-very-secret"
TOKEN = "tok_ABCDEF123456"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def umask_022() -> Iterator[None]:
    # The common default: without care SQLite would create the log (and its WAL) 0644.
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
async def store(tmp_log: Path, clock: FrozenClock) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_log, clock=clock, secrets=[SECRET, TOKEN])
    try:
        yield opened
    finally:
        await opened.close()


def _pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _chmod(path: Path, mode: int) -> None:
    path.chmod(mode)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


# --- file, schema, migrations ------------------------------------------------------------------


@pytest.mark.usefixtures("umask_022")
async def test_open_creates_private_file_in_wal_mode(tmp_path: Path, clock: FrozenClock) -> None:
    path = tmp_path / "state" / "oncall" / "log.db"
    store = await Store.open(path, clock=clock)
    try:
        await store.append("test", "probe", "hello")
        assert _mode(path) == 0o600
        sidecars = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
        assert any(p.exists() for p in sidecars), "WAL mode keeps a -wal/-shm beside the file"
        for sidecar in sidecars:
            if sidecar.exists():
                assert _mode(sidecar) == 0o600, sidecar.name
        assert _pragma(path, "journal_mode") == "wal"
        assert _pragma(path, "user_version") == SCHEMA_VERSION
    finally:
        await store.close()


async def test_open_tightens_a_loosened_file(tmp_log: Path, clock: FrozenClock) -> None:
    store = await Store.open(tmp_log, clock=clock)
    await store.close()
    _chmod(tmp_log, 0o644)
    store = await Store.open(tmp_log, clock=clock)
    await store.close()
    assert _mode(tmp_log) == 0o600


async def test_version_zero_file_is_migrated(tmp_log: Path, clock: FrozenClock) -> None:
    # An empty SQLite file (user_version 0), e.g. created by hand or by a crashed first start.
    with sqlite3.connect(tmp_log) as db:
        db.execute("CREATE TABLE unrelated (x)")
    assert _pragma(tmp_log, "user_version") == 0
    store = await Store.open(tmp_log, clock=clock)
    try:
        await store.append("test", "probe", "after migration")
        assert [e.summary for e in await store.entries()] == ["after migration"]
    finally:
        await store.close()
    assert _pragma(tmp_log, "user_version") == SCHEMA_VERSION


async def test_older_schema_is_migrated_keeping_its_entries(
    tmp_log: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = await Store.open(tmp_log, clock=clock)
    await old.append("alertmanager", "alert.firing", "written by the older version")
    await old.close()
    # A later release that adds a migration opens the file the older release wrote.
    newer = (
        *MIGRATIONS,
        (
            "ALTER TABLE entries ADD COLUMN incident TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX entries_incident ON entries (incident)",
        ),
    )
    monkeypatch.setattr(store_module, "MIGRATIONS", newer)
    store = await Store.open(tmp_log, clock=clock)
    try:
        entries = await store.entries()
        assert [e.summary for e in entries] == ["written by the older version"]
    finally:
        await store.close()
    assert _pragma(tmp_log, "user_version") == len(newer)
    with sqlite3.connect(tmp_log) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(entries)")]
    assert "incident" in columns


async def test_failed_migration_is_rolled_back(
    tmp_log: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await (await Store.open(tmp_log, clock=clock)).close()
    broken = (*MIGRATIONS, ("CREATE TABLE half_done (x)", "THIS IS NOT SQL"))
    monkeypatch.setattr(store_module, "MIGRATIONS", broken)
    with pytest.raises(StoreError):
        await Store.open(tmp_log, clock=clock)
    assert _pragma(tmp_log, "user_version") == SCHEMA_VERSION
    with sqlite3.connect(tmp_log) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in tables


async def test_newer_schema_is_refused(tmp_log: Path, clock: FrozenClock) -> None:
    await (await Store.open(tmp_log, clock=clock)).close()
    with sqlite3.connect(tmp_log) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(StoreError, match="newer"):
        await Store.open(tmp_log, clock=clock)


async def test_a_file_that_is_not_a_database_is_refused(tmp_log: Path, clock: FrozenClock) -> None:
    _write(tmp_log, b"this is not an SQLite file, it is a shopping list\n" * 100)
    with pytest.raises(StoreError, match="not a usable"):
        await Store.open(tmp_log, clock=clock)


# --- entries -----------------------------------------------------------------------------------


async def test_append_returns_the_committed_entry(
    tmp_log: Path, store: Store, clock: FrozenClock
) -> None:
    entry = await store.append("operator", "action.done", "silenced", actor="nina", data={"n": 1})
    assert entry.id is not None
    assert (entry.at, entry.source, entry.kind, entry.actor) == (
        T0,
        "operator",
        "action.done",
        "nina",
    )
    assert entry.data == {"n": 1}
    # Committed: another connection sees it while the store is still open.
    with sqlite3.connect(tmp_log) as db:
        rows = db.execute("SELECT summary FROM entries").fetchall()
    assert rows == [("silenced",)]


async def test_entries_filters(store: Store, clock: FrozenClock) -> None:
    def at(minutes: int) -> datetime:
        return T0 + timedelta(minutes=minutes)

    await store.append("alertmanager", "alert.firing", "ServiceDown payment", at=at(0))
    await store.append("alertmanager", "alert.resolved", "ServiceDown payment", at=at(10))
    await store.append(
        "pagerduty", "webhook", "incident.triggered", data={"id": "P100%"}, at=at(20)
    )
    await store.append("operator", "action.done", "silence 50_50", actor="Nina Patel", at=at(30))
    await store.append("webhooks", "webhook.rejected", "401", at=at(40))

    def summaries(entries: list[LogEntry]) -> list[str]:
        return [e.summary for e in entries]

    newest = await store.entries()
    assert [e.at for e in newest] == [at(40), at(30), at(20), at(10), at(0)]
    oldest = await store.entries(newest_first=False)
    assert [e.at for e in oldest] == [at(0), at(10), at(20), at(30), at(40)]
    # since is inclusive, until exclusive.
    window = await store.entries(since=at(10), until=at(30), newest_first=False)
    assert [e.at for e in window] == [at(10), at(20)]
    assert {e.source for e in await store.entries(sources=["alertmanager", "webhooks"])} == {
        "alertmanager",
        "webhooks",
    }
    assert summaries(await store.entries(kinds=["alert.resolved"])) == ["ServiceDown payment"]
    both = await store.entries(sources=["alertmanager"], kinds=["alert.firing"])
    assert [e.at for e in both] == [at(0)]
    # Text matches summary, actor and data, case-insensitively; % and _ are literal.
    assert len(await store.entries(text="servicedown")) == 2
    assert summaries(await store.entries(text="nina")) == ["silence 50_50"]
    assert summaries(await store.entries(text="P100%")) == ["incident.triggered"]
    assert await store.entries(text="P1000") == []
    assert summaries(await store.entries(text="0_5")) == ["silence 50_50"]
    assert await store.entries(text="e_p") == []  # "_" is not a wildcard
    # limit keeps the first N in the requested order; 0 means no limit.
    assert [e.at for e in await store.entries(limit=2)] == [at(40), at(30)]
    assert [e.at for e in await store.entries(limit=2, newest_first=False)] == [at(0), at(10)]
    assert len(await store.entries(limit=0)) == 5


async def test_same_instant_keeps_insertion_order(store: Store) -> None:
    for n in range(5):
        await store.append("test", "n", str(n))
    assert [e.summary for e in await store.entries(newest_first=False)] == list("01234")
    assert [e.summary for e in await store.entries()] == list("43210")


async def test_append_many_is_one_batch(store: Store, clock: FrozenClock) -> None:
    assert await store.append_many([]) == 0
    rows = [("alertmanager", "alert.firing", f"alert {n}", {"n": n}) for n in range(50)]
    assert await store.append_many(rows) == 50
    entries = await store.entries(newest_first=False, limit=0)
    assert [e.data["n"] for e in entries] == list(range(50))
    assert {e.at for e in entries} == {T0}


async def test_concurrent_appends_are_all_kept(store: Store) -> None:
    written = await asyncio.gather(*(store.append("test", "n", str(n)) for n in range(100)))
    assert len({e.id for e in written}) == 100
    assert len(await store.entries(limit=0)) == 100


async def test_naive_time_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.append("test", "naive", "x", at=datetime(2024, 5, 1))  # noqa: DTZ001


async def test_data_keeps_json_types_and_times(store: Store) -> None:
    moment = datetime(2024, 5, 1, 4, 0, tzinfo=timezone(timedelta(hours=2)))
    entry = await store.append(
        "test",
        "types",
        "x",
        data={
            "when": moment,
            "state": AlertState.SILENCED,
            "tags": ("a", "b"),
            "nan": float("nan"),
        },
    )
    stored = (await store.entries())[0]
    assert stored.data == entry.data
    assert stored.data == {
        "when": "2024-05-01T02:00:00.000000Z",
        "state": "silenced",
        "tags": ["a", "b"],
        "nan": None,
    }


async def test_text_that_utf8_cannot_encode_is_stored_replaced(store: Store) -> None:
    await store.append("test", "odd", "lone \ud800 surrogate", data={"k\udfff": ["\ud800"]})
    (entry,) = await store.entries()
    assert entry.summary == "lone ? surrogate"
    assert entry.data == {"k?": ["?"]}


# --- secrets -----------------------------------------------------------------------------------


async def test_secrets_never_reach_the_file(tmp_log: Path, clock: FrozenClock) -> None:
    store = await Store.open(tmp_log, clock=clock, secrets=[SECRET, TOKEN, ""])
    entry = await store.append(
        "config",
        "loaded",
        f"token={TOKEN} and {SECRET}",
        actor=f"user:{SECRET}",
        data={
            "auth": {"headers": [{"Authorization": f"Bearer {TOKEN}"}]},
            SECRET: "as a key",
            "deep": [[[{"x": f"..{SECRET}.."}]]],
        },
    )
    await store.append_many([("config", "batch", f"{TOKEN}", {"k": [SECRET]})])
    await store.put_action(
        Action(
            id="a1",
            kind="silence.create",
            target="prod",
            params={"comment": f"key {TOKEN}"},
            actor="nina",
            created_at=T0,
        )
    )
    await store.set_state("automation", f"{{'secret': '{SECRET}'}}")
    alert = _alert(annotations={"summary": f"leaked {TOKEN}"})
    await store.save_snapshot(Snapshot(taken_at=T0, alerts=(alert,)))

    assert SECRET not in repr(entry)
    assert TOKEN not in repr(entry)
    assert entry.summary == "token=*** and ***"
    assert entry.data["auth"] == {"headers": [{"Authorization": "Bearer ***"}]}
    assert entry.data["***"] == "as a key"
    assert entry.data["deep"] == [[[{"x": "..***.."}]]]
    everything = [
        await store.entries(limit=0),
        await store.get_action("a1"),
        await store.get_state("automation"),
        await store.load_snapshot(),
    ]
    assert SECRET not in repr(everything)
    assert TOKEN not in repr(everything)
    await store.close()
    raw = b"".join(
        p.read_bytes() for p in tmp_log.parent.iterdir() if p.name.startswith(tmp_log.name)
    )
    assert SECRET.encode() not in raw
    assert TOKEN.encode() not in raw
    assert b"Bearer ***" in raw  # the entries are there, only the secrets are gone


# --- outbox ------------------------------------------------------------------------------------


def _action(action_id: str, minutes: int, **changes: object) -> Action:
    action = Action(
        id=action_id,
        kind="silence.create",
        target="prod",
        params={"matchers": ['alertname="ServiceDown"'], "duration_seconds": 3600},
        actor="Nina Patel",
        created_at=T0 + timedelta(minutes=minutes),
    )
    return replace(action, **changes)  # type: ignore[arg-type]


async def test_outbox_upsert_pending_and_get_survive_reopen(
    tmp_log: Path, clock: FrozenClock
) -> None:
    store = await Store.open(tmp_log, clock=clock)
    await store.put_action(_action("later", 5))
    await store.put_action(_action("first", 1))
    await store.put_action(_action("done", 0, status=ActionStatus.DONE, finished_at=T0))
    # An upsert: a retry bumps attempts and result, the row stays one row.
    await store.put_action(_action("later", 5, attempts=2, result="will retry: 503"))
    await store.close()

    store = await Store.open(tmp_log, clock=clock)
    try:
        pending = await store.pending_actions()
        assert [a.id for a in pending] == ["first", "later"]
        assert pending[1] == _action("later", 5, attempts=2, result="will retry: 503")
        assert await store.get_action("done") == _action(
            "done", 0, status=ActionStatus.DONE, finished_at=T0
        )
        assert await store.get_action("missing") is None
        await store.put_action(
            _action("first", 1, status=ActionStatus.FAILED, result="400", finished_at=T0)
        )
        assert [a.id for a in await store.pending_actions()] == ["later"]
        failed = await store.get_action("first")
        assert failed is not None
        assert (failed.status, failed.result, failed.created_at) == (
            ActionStatus.FAILED,
            "400",
            T0 + timedelta(minutes=1),
        )
    finally:
        await store.close()


# --- snapshot ----------------------------------------------------------------------------------


def _alert(**changes: object) -> Alert:
    alert = Alert(
        fingerprint="eb64a503a7a34dd1",
        labels={"alertname": "ServiceDown", "severity": "critical", "service": "payment"},
        annotations={"summary": "payment-service is down"},
        starts_at=T0 - timedelta(minutes=7),
        updated_at=T0 - timedelta(seconds=3),
        ends_at=None,
        state=AlertState.ACTIVE,
        receivers=("pagerduty", "webhook"),
        generator_url="http://prometheus:9090/graph",
        cluster="prod",
        seen_by=("prod-a", "prod-b"),
    )
    return replace(alert, **changes)  # type: ignore[arg-type]


def _full_snapshot() -> Snapshot:
    plus2 = timezone(timedelta(hours=2))
    return Snapshot(
        taken_at=T0,
        alerts=(
            _alert(),
            _alert(
                fingerprint="ca30bb0a4a44adc4",
                state=AlertState.SILENCED,
                silenced_by=("8d1c",),
                inhibited_by=("x", "y"),
                ends_at=datetime(2024, 5, 1, 6, 0, tzinfo=plus2),
                annotations={},
            ),
        ),
        silences=(
            Silence(
                id="8d1c",
                matchers=(
                    Matcher("alertname", "ServiceDown"),
                    Matcher("instance", "pay-.*", is_regex=True, is_equal=False),
                ),
                starts_at=T0,
                ends_at=T0 + timedelta(hours=2),
                created_by="nina@example.com",
                comment="maintenance",
                state=SilenceState.ACTIVE,
                updated_at=T0,
                cluster="prod",
            ),
            Silence(
                id="old",
                matchers=(Matcher("a", "b"),),
                starts_at=T0 - timedelta(days=1),
                ends_at=T0 - timedelta(hours=1),
                created_by="x",
                comment="",
                state=SilenceState.EXPIRED,
            ),
        ),
        health=(
            SourceHealth("prod-a", "alertmanager", reachable=True, last_success=T0),
            SourceHealth(
                "prod-b",
                "alertmanager",
                reachable=False,
                last_success=T0 - timedelta(minutes=3),
                stale_since=T0 - timedelta(minutes=2),
                error="connection refused",
            ),
            SourceHealth("webhooks", "webhooks", detail="127.0.0.1:9099"),
        ),
        incidents=(
            Incident(
                id="PABC",
                system="pagerduty",
                title="payment down",
                status="triggered",
                urgency="high",
                service="payment",
                assignee="Nina",
                escalation_level=2,
                created_at=T0,
                url="https://pd.example/PABC",
                dedup_key="abc",
            ),
            Incident("og-1", "opsgenie", "disk", "open", "P3", "db", "", None, T0),
        ),
        oncalls=(
            OnCall("Platform", 1, "Nina", T0, T0 + timedelta(hours=12)),
            OnCall("Platform", 2, "Omar", None, None, system="opsgenie"),
        ),
        components=(Component("comp-1", "Payments", "major_outage"),),
        status_incidents=(
            StatusIncident(
                "si-1", "Payments down", "investigating", "major", T0, "We are on it", ("comp-1",)
            ),
        ),
    )


async def test_snapshot_round_trip_is_marked_restored(tmp_log: Path, clock: FrozenClock) -> None:
    store = await Store.open(tmp_log, clock=clock)
    assert await store.load_snapshot() is None
    snapshot = _full_snapshot()
    await store.save_snapshot(replace(snapshot, restored=True))  # not a stored property
    await store.close()

    store = await Store.open(tmp_log, clock=clock)
    try:
        loaded = await store.load_snapshot()
    finally:
        await store.close()
    assert loaded == replace(snapshot, restored=True)
    assert loaded is not None
    assert loaded.alerts[1].state is AlertState.SILENCED
    assert loaded.silences[1].state is SilenceState.EXPIRED
    assert loaded.health[2].reachable is None
    assert all(a.starts_at.tzinfo is not None for a in loaded.alerts)


async def test_save_snapshot_replaces_the_previous_one(store: Store) -> None:
    await store.save_snapshot(_full_snapshot())
    await store.save_snapshot(Snapshot(taken_at=T0 + timedelta(minutes=1)))
    assert await store.load_snapshot() == Snapshot(
        taken_at=T0 + timedelta(minutes=1), restored=True
    )


async def test_unreadable_snapshot_is_dropped_not_fatal(tmp_log: Path, store: Store) -> None:
    await store.save_snapshot(_full_snapshot())
    with sqlite3.connect(tmp_log) as db:
        db.execute("""UPDATE snapshot SET json = '{"format": 999, "snapshot": {}}'""")
    assert await store.load_snapshot() is None
    with sqlite3.connect(tmp_log) as db:
        db.execute("""UPDATE snapshot SET json = '{"format": 1, "snapshot": {"alerts": 3}}'""")
    assert await store.load_snapshot() is None


async def test_snapshot_of_another_version_loads_what_it_can(tmp_log: Path, store: Store) -> None:
    """An older snapshot lacks fields that have defaults now, a newer one has fields unknown
    here: both restore; a state this version does not know drops the snapshot."""
    await store.save_snapshot(_full_snapshot())
    with sqlite3.connect(tmp_log) as db:
        (text,) = db.execute("SELECT json FROM snapshot").fetchone()
    document = json.loads(text)
    first = document["snapshot"]["alerts"][0]

    def saved(alert: dict[str, object]) -> str:
        changed = {**document, "snapshot": {**document["snapshot"], "alerts": [alert]}}
        return json.dumps(changed)

    older = {k: v for k, v in first.items() if k not in ("generator_url", "seen_by")}
    newer = {**first, "owner_team": "payments"}
    expected = _full_snapshot().alerts[0]
    for variant, wanted in (
        (older, replace(expected, generator_url="", seen_by=())),
        (newer, expected),
    ):
        with sqlite3.connect(tmp_log) as db:
            db.execute("UPDATE snapshot SET json = ?", (saved(variant),))
        loaded = await store.load_snapshot()
        assert loaded is not None
        assert loaded.alerts == (wanted,)

    with sqlite3.connect(tmp_log) as db:
        db.execute("UPDATE snapshot SET json = ?", (saved({**first, "state": "snoozed"}),))
    assert await store.load_snapshot() is None


# --- state and deliveries ----------------------------------------------------------------------


async def test_state_get_set_persists(tmp_log: Path, clock: FrozenClock) -> None:
    store = await Store.open(tmp_log, clock=clock)
    assert await store.get_state("statuspage:payment") is None
    await store.set_state("statuspage:payment", "inc-1")
    await store.set_state("statuspage:payment", "inc-2")
    await store.close()
    store = await Store.open(tmp_log, clock=clock)
    try:
        assert await store.get_state("statuspage:payment") == "inc-2"
    finally:
        await store.close()


async def test_seen_delivery_dedupes_across_restarts(tmp_log: Path, clock: FrozenClock) -> None:
    store = await Store.open(tmp_log, clock=clock)
    assert await store.seen_delivery("d-1") is False
    assert await store.seen_delivery("d-1") is True
    assert await store.seen_delivery("d-2") is False
    await store.close()
    store = await Store.open(tmp_log, clock=clock)
    assert await store.seen_delivery("d-1") is True
    await store.close()
    # Ids are forgotten long after PagerDuty's 48 h retry window.
    clock.advance(timedelta(days=8).total_seconds())
    store = await Store.open(tmp_log, clock=clock)
    try:
        assert await store.seen_delivery("d-1") is False
    finally:
        await store.close()


async def test_append_delivery_logs_each_delivery_once(tmp_log: Path, store: Store) -> None:
    first = await store.append_delivery("wh-1", "pagerduty", "webhook", "incident.triggered")
    assert first is not None
    assert first.summary == "incident.triggered"
    assert await store.append_delivery("wh-1", "pagerduty", "webhook", "again") is None
    assert await store.seen_delivery("wh-1") is True
    assert [e.summary for e in await store.entries()] == ["incident.triggered"]


async def test_a_delivery_whose_entry_failed_is_not_remembered(tmp_log: Path, store: Store) -> None:
    # Another process makes the next insert fail, as a full disk or I/O error would.
    with sqlite3.connect(tmp_log) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON entries "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    with pytest.raises(sqlite3.IntegrityError):
        await store.append_delivery("wh-7", "pagerduty", "webhook", "incident.triggered")
    with sqlite3.connect(tmp_log) as db:
        db.execute("DROP TRIGGER refuse")
    # The sender retries with the same id: this time it is logged.
    retried = await store.append_delivery("wh-7", "pagerduty", "webhook", "incident.triggered")
    assert retried is not None
    assert len(await store.entries()) == 1


async def test_entries_are_append_only(tmp_log: Path, store: Store) -> None:
    await store.append("test", "x", "evidence")
    with sqlite3.connect(tmp_log) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("DELETE FROM entries")


async def test_snapshot_with_a_lone_surrogate_is_stored(store: Store) -> None:
    """A webhook's JSON may hold an unpaired surrogate escape: the snapshot is still kept."""
    odd = _alert(annotations={"summary": "broken \ud800 text"})
    await store.save_snapshot(Snapshot(taken_at=T0, alerts=(odd,)))
    loaded = await store.load_snapshot()
    assert loaded is not None
    assert loaded.alerts[0].summary == "broken ? text"
    assert loaded.alerts[0].key == odd.key


async def test_secrets_in_a_snapshot_are_redacted_inside_their_strings(
    tmp_log: Path, clock: FrozenClock
) -> None:
    quoted = 'pa"ss\\word'
    store = await Store.open(tmp_log, clock=clock, secrets=[quoted])
    alert = _alert(annotations={"summary": f"uses {quoted} here", "description": quoted})
    await store.save_snapshot(Snapshot(taken_at=T0, alerts=(alert,)))
    loaded = await store.load_snapshot()
    await store.close()
    assert loaded is not None
    assert loaded.alerts[0].annotations == {"summary": "uses *** here", "description": "***"}
