"""An HA pair of real Alertmanagers on loopback, and how we merge what the peers report.

What the real binary does (0.25), and these tests pin down: peers gossip silences (and the
notification log) but not alerts. Prometheus sends every alert to every peer, and so do we
(engine/actions.py fires test alerts at each peer). So "both peers report an alert" means it
was posted to both; an alert posted to one peer only stays on that peer.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import yaml
from am_harness import FastClock, am_binary, running_cluster, soon, wait_for

from oncall_tui.clock import SystemClock
from oncall_tui.engine.alerts import AlertmanagerSource
from oncall_tui.engine.cluster_merge import merge_cluster_alerts, merge_cluster_silences
from oncall_tui.models import Alert, AlertState, Matcher, Silence, SilenceState
from oncall_tui.providers.alertmanager import (
    AlertmanagerClient,
    PostableAlert,
    format_time,
    parse_alert,
    parse_optional_time,
    parse_time,
)
from oncall_tui.providers.errors import ProviderError
from oncall_tui.sandbox.alertmanager_process import AlertmanagerProcess, alertmanager_config_yaml

__all__ = ["am_binary"]  # a fixture, imported so that pytest sees it here

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def _alert(fingerprint: str, peer: str, *, updated: int = 0, **changes: object) -> Alert:
    base = Alert(
        fingerprint=fingerprint,
        labels={"alertname": f"A{fingerprint}"},
        annotations={},
        starts_at=T0,
        updated_at=T0 + timedelta(seconds=updated),
        ends_at=T0 + timedelta(minutes=5),
        state=AlertState.ACTIVE,
        cluster="prod",
        seen_by=(peer,),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _silence(silence_id: str, *, updated: int | None, comment: str = "") -> Silence:
    return Silence(
        id=silence_id,
        matchers=(Matcher("alertname", "X"),),
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1),
        created_by="nina",
        comment=comment,
        state=SilenceState.ACTIVE,
        updated_at=None if updated is None else T0 + timedelta(seconds=updated),
        cluster="prod",
    )


# -- merging and parsing, without a server ---------------------------------------------------


def test_merge_alerts_dedupes_by_fingerprint_and_lists_every_peer() -> None:
    merged = merge_cluster_alerts(
        [
            ("a", [_alert("1", "a"), _alert("2", "a")]),
            ("b", [_alert("2", "b"), _alert("3", "b")]),
        ]
    )
    assert [(a.fingerprint, a.seen_by) for a in merged] == [
        ("1", ("a",)),
        ("2", ("a", "b")),
        ("3", ("b",)),
    ]


def test_merge_alerts_prefers_the_most_recently_updated_copy() -> None:
    stale = _alert("1", "a", updated=0)
    fresh = _alert("1", "b", updated=30, state=AlertState.SILENCED, silenced_by=("s1",))
    for order in ([("a", [stale]), ("b", [fresh])], [("b", [fresh]), ("a", [stale])]):
        (merged,) = merge_cluster_alerts(order)
        assert merged.state == AlertState.SILENCED
        assert merged.silenced_by == ("s1",)
        assert set(merged.seen_by) == {"a", "b"}
    # On a tie the first peer's copy is kept, so the result does not flicker between polls.
    tie = _alert("1", "b", updated=0, state=AlertState.INHIBITED)
    (merged,) = merge_cluster_alerts([("a", [stale]), ("b", [tie])])
    assert merged.state == AlertState.ACTIVE


def test_merge_with_a_peer_down_uses_what_the_others_report() -> None:
    merged = merge_cluster_alerts([("a", []), ("b", [_alert("1", "b")])])
    assert [(a.fingerprint, a.seen_by) for a in merged] == [("1", ("b",))]
    assert merge_cluster_alerts([]) == []


def test_merge_silences_dedupes_by_id_preferring_the_newest() -> None:
    merged = merge_cluster_silences(
        [
            ("a", [_silence("s1", updated=0, comment="old"), _silence("s2", updated=None)]),
            ("b", [_silence("s1", updated=10, comment="new"), _silence("s2", updated=5)]),
            ("c", [_silence("s1", updated=3, comment="middle")]),
        ]
    )
    by_id = {s.id: s for s in merged}
    assert sorted(by_id) == ["s1", "s2"]
    assert by_id["s1"].comment == "new"
    assert by_id["s2"].updated_at == T0 + timedelta(seconds=5)


def test_times_from_go_are_read_as_aware_utc() -> None:
    nanos = parse_time("2026-03-01T03:00:00.123456789+01:00")
    assert nanos == datetime(2026, 3, 1, 2, 0, 0, 123456, tzinfo=UTC)
    assert nanos.tzinfo == UTC
    assert parse_optional_time("0001-01-01T00:00:00Z") is None  # Go's zero time: no end
    assert parse_optional_time(None) is None
    assert format_time(nanos) == "2026-03-01T02:00:00.123Z"
    with pytest.raises(ValueError, match="zone"):
        parse_time("2026-03-01T02:00:00")


def test_suppressed_alerts_are_named_by_what_suppresses_them() -> None:
    def state(silenced: list[str], inhibited: list[str], raw: str = "suppressed") -> AlertState:
        item = {
            "fingerprint": "f",
            "labels": {"alertname": "X"},
            "annotations": {},
            "receivers": [{"name": "r"}],
            "startsAt": "2026-03-01T02:00:00Z",
            "updatedAt": "2026-03-01T02:00:00Z",
            "endsAt": "2026-03-01T02:05:00Z",
            "status": {"state": raw, "silencedBy": silenced, "inhibitedBy": inhibited},
        }
        return parse_alert(item, cluster="prod", peer="am-a").state

    assert state([], [], "active") == AlertState.ACTIVE
    assert state([], [], "unprocessed") == AlertState.UNPROCESSED
    assert state(["s"], []) == AlertState.SILENCED
    assert state([], ["f2"]) == AlertState.INHIBITED
    assert state(["s"], ["f2"]) == AlertState.SILENCED


def test_sandbox_default_routing_key_has_the_length_pagerduty_demands() -> None:
    config = yaml.safe_load(
        alertmanager_config_yaml(webhook_url=None, pagerduty_events_url="http://pd")
    )
    (critical,) = [r for r in config["receivers"] if r["name"] == "critical"]
    (pagerduty,) = critical["pagerduty_configs"]
    assert len(pagerduty["routing_key"]) == 32
    assert pagerduty["url"] == "http://pd/v2/enqueue"
    assert "webhook_configs" not in critical  # no listener given, none configured


# -- a real pair ----------------------------------------------------------------------------------


class Pair:
    def __init__(self, peers: list[AlertmanagerProcess], http: httpx.AsyncClient) -> None:
        self.processes = peers
        self.clock = FastClock()
        self.a, self.b = (
            AlertmanagerClient(name, p.url, http, clock=self.clock, cluster="prod")
            for name, p in zip(("am-a", "am-b"), peers, strict=True)
        )


@pytest_asyncio.fixture
async def pair(am_binary: str, tmp_path: Path) -> AsyncIterator[Pair]:
    async with (
        running_cluster(am_binary, tmp_path, size=2) as peers,
        httpx.AsyncClient(timeout=2.0) as http,
    ):
        yield Pair(peers, http)


def _test_alert(run: str) -> PostableAlert:
    return PostableAlert(
        labels={"alertname": "PaymentsDown", "severity": "critical", "run": run},
        annotations={"summary": "payments are down"},
        starts_at=soon(-1),
    )


@pytest.mark.alertmanager
async def test_peers_see_each_other_in_status(pair: Pair) -> None:
    status_a, status_b = await pair.a.status(), await pair.b.status()
    addresses = {p.address for p in status_a.peers}
    assert addresses == {p.address for p in status_b.peers}
    assert addresses == {proc.cluster_address for proc in pair.processes}
    assert status_a.cluster_status in ("ready", "settling")


@pytest.mark.alertmanager
async def test_an_alert_sent_to_both_is_merged_into_one_seen_by_both(pair: Pair) -> None:
    run = uuid.uuid4().hex[:12]
    for peer in (pair.a, pair.b):
        await peer.post_alerts([_test_alert(run)])
    mine = [Matcher("run", run)]
    from_a, from_b = await pair.a.alerts(filters=mine), await pair.b.alerts(filters=mine)
    assert len(from_a) == len(from_b) == 1
    assert from_a[0].fingerprint == from_b[0].fingerprint  # same labels, same fingerprint

    (merged,) = merge_cluster_alerts([("am-a", from_a), ("am-b", from_b)])
    assert merged.seen_by == ("am-a", "am-b")
    assert merged.alertname == "PaymentsDown"
    assert merged.cluster == "prod"


@pytest.mark.alertmanager
async def test_silences_gossip_but_alerts_do_not(pair: Pair) -> None:
    run = uuid.uuid4().hex[:12]
    mine = [Matcher("run", run)]
    await pair.a.post_alerts([_test_alert(run)])
    silence_id = await pair.a.create_silence(
        mine, starts_at=soon(), ends_at=soon(30), created_by="nina", comment="gossip"
    )

    async def on_b() -> list[Silence]:
        return [s for s in await pair.b.silences() if s.id == silence_id]

    (copy,) = await wait_for(on_b, what="the silence to reach the other peer")
    assert copy.state == SilenceState.ACTIVE
    assert copy.comment == "gossip"
    # The silence travelled; the alert, posted to am-a only, did not.
    assert await pair.b.alerts(filters=mine) == []
    (on_a,) = await pair.a.alerts(filters=mine)
    assert on_a.state == AlertState.SILENCED

    merged = merge_cluster_silences(
        [
            ("am-a", await pair.a.silences(filters=mine)),
            ("am-b", await pair.b.silences(filters=mine)),
        ]
    )
    assert [s.id for s in merged] == [silence_id]

    # Expiring on am-b reaches am-a too.
    await pair.b.expire_silence(silence_id)

    async def expired_on_a() -> bool:
        return (await pair.a.silence(silence_id)).state == SilenceState.EXPIRED

    await wait_for(expired_on_a, what="the expiry to reach the first peer")


@pytest.mark.alertmanager
async def test_when_a_peer_stops_the_cluster_is_served_by_the_other(pair: Pair) -> None:
    run = uuid.uuid4().hex[:12]
    for peer in (pair.a, pair.b):
        await peer.post_alerts([_test_alert(run)])
    source = AlertmanagerSource([pair.a, pair.b], SystemClock())
    await source.poll()
    mine = [a for a in source.alerts if a.labels.get("run") == run]
    assert [a.seen_by for a in mine] == [("am-a", "am-b")]

    await pair.processes[0].stop()
    assert not pair.processes[0].running
    with pytest.raises(ProviderError) as caught:
        await pair.a.alerts()
    assert caught.value.retryable
    assert caught.value.message == "connection refused"

    change = await source.poll()
    assert change.resolved == ()  # nothing vanished because one peer did
    mine = [a for a in source.alerts if a.labels.get("run") == run]
    assert [a.seen_by for a in mine] == [("am-b",)]
    assert source.health["am-a"].reachable is False
    assert "connection refused" in source.health["am-a"].error
    assert source.health["am-b"].reachable is True
