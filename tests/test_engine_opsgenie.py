"""Opsgenie in the engine, against the fake Opsgenie with every exchange checked against the
published Swagger spec, on a frozen clock: polls (alerts as incidents, closed between polls,
on-call now and next, shifts), log rows and notifications by priority, asynchronous actions
followed until processed and idempotent on retry (also across a restart), test alerts, staleness
and restore."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from spec_check_swagger import SwaggerSpecValidator, ValidatingTransport

from oncall_tui.clock import FrozenClock
from oncall_tui.config import Config, load_config_text
from oncall_tui.engine.actions import ActionRejected, ActionRequest
from oncall_tui.engine.correlation import group_dedup_key
from oncall_tui.engine.incident_changes import IncidentChange
from oncall_tui.engine.opsgenie import (
    OpsgenieSource,
    fire_to_opsgenie,
    priority_severity,
    raised,
    severity_priority,
)
from oncall_tui.engine.opsgenie_part import OpsgeniePart, opsgenie_configured
from oncall_tui.events import EngineEvent, IncidentsRaised
from oncall_tui.models import Incident, LogEntry, Snapshot
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.opsgenie import RequestPending
from oncall_tui.sandbox.fake_opsgenie import FakeOpsgenie
from oncall_tui.store import Store

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
KEY = "og-engine-key-for-tests-0001"
API = "http://api.opsgenie.test"
OPERATOR = "demo@example.com"
GROUP_KEY = '{}/{severity="warning"}:{alertname="HighLatency", service="checkout"}'


class Switch(httpx.AsyncBaseTransport):
    """Passes requests on, or fails them like a network that is down."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False
        self.refused_paths: set[str] = set()  # answered 403, as for a key without the scope

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path in self.refused_paths:
            return httpx.Response(403, json={"message": "forbidden", "took": 0.0, "requestId": "r"})
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


@dataclass
class World:
    clock: FrozenClock
    fake: FakeOpsgenie
    store: Store
    part: OpsgeniePart
    transport: Switch
    validating: ValidatingTransport
    http: httpx.AsyncClient
    config: Config
    events: list[EngineEvent] = field(default_factory=list)
    changes: list[int] = field(default_factory=list)

    @property
    def source(self) -> OpsgenieSource:
        return self.part.source

    async def create(
        self, alias: str, message: str, *, priority: str = "P3", escalation: str = ""
    ) -> None:
        """An alert as Alertmanager's opsgenie_configs sends it, processed at once."""
        body: dict[str, Any] = {
            "message": message,
            "alias": alias,
            "description": "from Alertmanager",
            "priority": priority,
            "tags": ["HighLatency"],
            "details": {"service": "checkout"},
        }
        if escalation:
            body["responders"] = [{"type": "escalation", "name": escalation}]
        answer = await self.http.post(
            f"{API}/v2/alerts", json=body, headers={"Authorization": f"GenieKey {KEY}"}
        )
        assert answer.status_code == 202
        self.fake.process_pending()

    async def log(self, kind: str) -> list[LogEntry]:
        return await self.store.entries(sources=["opsgenie"], kinds=[kind], newest_first=False)

    def posts(self, suffix: str) -> int:
        return sum(1 for method, path, _ in self.fake.received if path.endswith(suffix))

    def alert(self, title: str) -> Incident:
        return next(i for i in self.source.incidents if i.title == title)

    def make_part(self) -> OpsgeniePart:
        part = OpsgeniePart(
            self.config,
            http=self.http,
            clock=self.clock,
            store=self.store,
            emit=self.events.append,
            changed=lambda: self.changes.append(1),
        )
        part.client.poll_interval = 0.005  # the fake's 404s are polled through quickly
        return part


def config_for(tmp_path: Path, min_severity: str = "critical", schedules: str = "[]") -> Config:
    text = f"""
operator: {{name: Demo Operator, email: {OPERATOR}}}
alertmanagers: [{{name: am, url: "http://127.0.0.1:9"}}]
opsgenie: {{api_key: "{KEY}", api_url: "{API}", schedules: {schedules}}}
notify: {{min_severity: {min_severity}}}
log: {{path: "{tmp_path / "log.db"}"}}
"""
    return load_config_text(text, "test.yaml", {})


async def build(tmp_path: Path, **config: str) -> World:
    clock = FrozenClock(T0)
    store = await Store.open(tmp_path / "log.db", clock=clock)
    # processing_seconds=None: only status polls move the fake's queue, as the tests choose.
    fake = FakeOpsgenie(clock=clock, api_key=KEY, seed=5, processing_seconds=None)
    validating = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SwaggerSpecValidator.load("opsgenie")
    )
    transport = Switch(validating)
    http = httpx.AsyncClient(transport=transport, timeout=5.0)
    cfg = config_for(tmp_path, **config)
    world = World(clock, fake, store, None, transport, validating, http, cfg)  # type: ignore[arg-type]
    world.part = world.make_part()
    return world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await build(tmp_path)
    try:
        yield w
    finally:
        await w.part.stop()
        await w.http.aclose()
        await w.store.close()
    assert w.validating.violations == []


# --- polls ------------------------------------------------------------------------------------


async def test_a_poll_shows_alertmanagers_alert_as_an_incident(world: World) -> None:
    alias = group_dedup_key(GROUP_KEY)
    await world.create(alias, "[FIRING:1] HighLatency checkout", priority="P2")
    # The same group notifies again: Opsgenie folds it into the open alert.
    await world.create(alias, "[FIRING:2] HighLatency checkout", priority="P2")
    change = await world.source.poll_incidents()
    assert len(change.triggered) == 1
    [alert] = world.source.incidents
    assert alert.system == "opsgenie"
    assert alert.key == f"opsgenie/{alert.id}"
    assert (alert.status, alert.priority, alert.number) == ("open", "P2", 1)
    assert alert.dedup_key == alias  # what correlation links to the Alertmanager group
    assert world.source.health.reachable is True
    assert world.source.health.last_success == T0
    assert not await world.source.poll_incidents()


async def test_the_part_logs_changes_and_notifies_new_p1_p2_by_min_severity(
    world: World,
) -> None:
    await world.create("a-1", "Latency high", priority="P1")
    await world.part._poll_incidents()
    # The first poll of a fresh start: in the log, but no notification.
    [row] = await world.log("incident.triggered")
    assert row.summary == "opened [P1]: #1 Latency high"
    assert row.data["priority"] == "P1"
    assert row.data["dedup_key"] == "a-1"
    assert not any(isinstance(e, IncidentsRaised) for e in world.events)
    await world.create("a-2", "Disk filling", priority="P1")
    await world.create("a-3", "Queue backlog", priority="P2")  # P2 = high: below critical
    await world.part._poll_incidents()
    raised_events = [e for e in world.events if isinstance(e, IncidentsRaised)]
    assert [[i.title for i in e.incidents] for e in raised_events] == [["Disk filling"]]
    assert len(await world.log("incident.triggered")) == 3
    snapshot = world.part.publish_into(Snapshot(taken_at=T0))
    assert {i.title for i in snapshot.incidents} == {
        "Latency high",
        "Disk filling",
        "Queue backlog",
    }
    assert snapshot.health_of("opsgenie") is not None


def test_priorities_compare_with_min_severity_and_only_p1_p2_are_loud() -> None:
    def opened(priority: str) -> Incident:
        return Incident(
            id=priority,
            system="opsgenie",
            title=priority,
            status="open",
            urgency="",
            service="",
            assignee="",
            escalation_level=None,
            created_at=T0,
            priority=priority,
        )

    change = IncidentChange(triggered=tuple(opened(p) for p in ("P1", "P2", "P3", "P4", "P5")))
    assert [i.priority for i in raised(change, "critical")] == ["P1"]
    assert [i.priority for i in raised(change, "warning")] == ["P1", "P2"]
    assert [i.priority for i in raised(change, "info")] == ["P1", "P2"]
    assert priority_severity("P2") == "high"
    assert [severity_priority(s) for s in ("critical", "warning", "info", "odd")] == [
        "P1",
        "P3",
        "P4",
        "P3",
    ]


async def test_an_alert_closed_between_polls_is_seen_closed_then_dropped(world: World) -> None:
    await world.create("a-1", "Latency high")
    await world.source.poll_incidents()
    alert = world.alert("Latency high")
    # Someone closes it in Opsgenie; the open list no longer has it.
    await world.http.post(
        f"{API}/v2/alerts/{alert.id}/close",
        json={"user": "someone@example.com"},
        headers={"Authorization": f"GenieKey {KEY}"},
    )
    world.fake.process_pending()
    world.clock.advance(60)
    change = await world.source.poll_incidents()
    assert [i.status for i in change.resolved] == ["closed"]
    assert [i.status for i in world.source.incidents] == ["closed"]  # kept for context
    assert ("GET", f"/v2/alerts/{alert.id}", 200) in world.validating.exchanges
    world.clock.advance(3601)
    assert not await world.source.poll_incidents()
    assert world.source.incidents == []


async def test_oncall_now_until_when_next_and_seven_days_of_shifts(world: World) -> None:
    await world.source.poll_oncall()
    oncalls = world.source.oncalls
    assert {o.policy for o in oncalls} == {"platform_schedule", "search_schedule"}
    for schedule in ("platform_schedule", "search_schedule"):
        mine = [o for o in oncalls if o.policy == schedule]
        [now] = [o for o in mine if o.start is not None and o.start <= T0]
        [upcoming] = [o for o in mine if o.start is not None and o.start > T0]
        assert now.system == "opsgenie"
        assert now.level == 1
        assert now.user
        assert now.end is not None
        assert now.end > T0
        assert upcoming.start == now.end  # who is next takes over when the shift ends
        assert upcoming.user != now.user
        shifts = [s for s in world.source.shifts if s.schedule == schedule]
        assert shifts[0].start <= T0 < shifts[0].end
        assert max(s.end for s in shifts) >= T0 + timedelta(days=7)
    assert {e.name for e in world.source.escalations.values()} == {
        "platform_escalation",
        "search_escalation",
    }


async def test_oncall_shows_without_access_to_escalations(world: World) -> None:
    world.transport.refused_paths.add("/v2/escalations")
    await world.source.poll_oncall()
    assert {o.policy for o in world.source.oncalls} == {"platform_schedule", "search_schedule"}
    assert world.source.health.reachable is True
    assert world.source.escalations == {}


async def test_configured_schedules_limit_the_oncall_view(tmp_path: Path) -> None:
    w = await build(tmp_path, schedules="[search_schedule]")
    try:
        await w.source.poll_oncall()
        assert {o.policy for o in w.source.oncalls} == {"search_schedule"}
        assert {s.schedule for s in w.source.shifts} == {"search_schedule"}
    finally:
        await w.http.aclose()
        await w.store.close()


# --- staleness and restore ----------------------------------------------------------------------


async def test_a_down_opsgenie_is_stale_not_empty_and_logged_once(world: World) -> None:
    await world.create("a-1", "Latency high")
    await world.part._poll_incidents()
    await world.part._poll_oncall()
    world.transport.down = True
    world.clock.advance(30)
    await world.part._poll_incidents()
    await world.part._poll_oncall()
    health = world.source.health
    assert health.reachable is False
    assert health.stale_since == T0
    assert "connection refused" in health.error
    assert KEY not in health.error
    assert [i.title for i in world.source.incidents] == ["Latency high"]
    assert world.source.oncalls  # the last known on-calls stay too
    world.transport.down = False
    world.clock.advance(30)
    await world.part._poll_incidents()
    await world.part._poll_oncall()
    assert world.source.health.reachable is True
    assert world.source.health.stale_since is None
    assert [e.summary.split(":")[0] for e in await world.log("source.down")] == [
        "Opsgenie unreachable"
    ]
    assert len(await world.log("source.up")) == 1


async def test_a_flip_seen_by_both_overlapping_loops_is_logged_once(world: World) -> None:
    # The alerts and on-call loops run on their own timers and overlap (both wake on ctrl+r).
    await world.part._poll_incidents()
    world.transport.down = True
    world.clock.advance(30)
    await asyncio.gather(world.part._poll_incidents(), world.part._poll_oncall())
    assert world.source.health.reachable is False
    world.transport.down = False
    await asyncio.gather(world.part._poll_incidents(), world.part._poll_oncall())
    assert world.source.health.reachable is True
    assert len(await world.log("source.down")) == 1
    assert len(await world.log("source.up")) == 1


async def test_restore_shows_the_last_alerts_stale_and_logs_only_news(world: World) -> None:
    await world.create("a-1", "Latency high", priority="P1")
    await world.part._poll_incidents()
    snapshot = world.part.publish_into(Snapshot(taken_at=T0))
    world.clock.advance(120)
    later = world.make_part()
    later.restore(snapshot)
    assert [i.title for i in later.source.incidents] == ["Latency high"]
    assert later.source.health.stale_since == T0
    await world.create("a-2", "Disk filling", priority="P1")
    await later._poll_incidents()
    rows = await world.log("incident.triggered")
    assert [r.summary for r in rows] == [
        "opened [P1]: #1 Latency high",
        "opened [P1]: #2 Disk filling",
    ]
    # Restored: the first poll's news is news.
    [event] = [e for e in world.events if isinstance(e, IncidentsRaised)]
    assert [i.title for i in event.incidents] == ["Disk filling"]


# --- actions --------------------------------------------------------------------------------------


async def test_acknowledge_waits_until_opsgenie_processed_it(world: World) -> None:
    await world.create("a-1", "Latency high", priority="P2")
    await world.part._poll_incidents()
    alert = world.alert("Latency high")
    world.validating.exchanges.clear()
    outcome = await world.part.run("act1", ActionRequest("incident.acknowledge", alert.key))
    assert outcome.summary == "acknowledged #1 Latency high"
    # Followed through Opsgenie's "not processed yet" answers before it counted as done.
    statuses = [s for m, p, s in world.validating.exchanges if p.startswith("/v2/alerts/requests")]
    assert statuses[0] == 404
    assert statuses[-1] == 200
    assert world.alert("Latency high").status == "acknowledged"
    [row] = await world.log("incident.acknowledged")
    assert row.summary == f"acknowledged by {OPERATOR}: #1 Latency high"
    # The outbox repeats it (its answer was lost): asked, not sent again.
    again = await world.part.run("act1", ActionRequest("incident.acknowledge", alert.key))
    assert again.data["request_id"] == outcome.data["request_id"]
    assert world.posts("/acknowledge") == 1
    # Another acknowledge of the same alert: already done, nothing sent.
    other = await world.part.run("act2", ActionRequest("incident.acknowledge", alert.key))
    assert other.data["already"] == "acknowledged"
    assert world.posts("/acknowledge") == 1


async def test_an_unprocessed_request_is_retried_by_asking_even_after_a_restart(
    world: World,
) -> None:
    await world.create("a-1", "Latency high")
    await world.part._poll_incidents()
    alert = world.alert("Latency high")
    world.fake.processing_polls = 10_000  # Opsgenie is slow today
    world.part.actions.wait = 0.02
    with pytest.raises(RequestPending) as caught:
        await world.part.run("act1", ActionRequest("incident.resolve", alert.key))
    assert caught.value.retryable  # the outbox keeps it pending and tries again
    assert world.posts("/close") == 1
    world.fake.process_pending()
    # A new engine (restart) retries the same action from the outbox: the request id is in
    # the log's state, so it asks about that request instead of closing twice.
    restarted = world.make_part()
    outcome = await restarted.run("act1", ActionRequest("incident.resolve", alert.key))
    assert outcome.summary == "closed #1 Latency high"
    assert world.posts("/close") == 1
    assert [i.status for i in restarted.source.incidents] == ["closed"]
    [row] = await world.log("incident.resolved")
    assert row.summary == "closed: #1 Latency high"
    # Closing a closed alert is done already.
    again = await restarted.run("act2", ActionRequest("incident.resolve", alert.key))
    assert again.data["already"] == "closed"
    assert world.posts("/close") == 1


async def test_acknowledging_a_closed_or_missing_alert_is_refused(world: World) -> None:
    await world.create("a-1", "Latency high")
    await world.part._poll_incidents()
    alert = world.alert("Latency high")
    await world.part.run("c", ActionRequest("incident.resolve", alert.key))
    with pytest.raises(ActionRejected, match="is closed"):
        await world.part.run("a", ActionRequest("incident.acknowledge", alert.key))
    with pytest.raises(ActionRejected, match="does not exist"):
        await world.part.run("b", ActionRequest("incident.acknowledge", "opsgenie/nope"))
    with pytest.raises(ActionRejected, match="not an Opsgenie alert"):
        await world.part.run("d", ActionRequest("incident.acknowledge", "pagerduty/P1"))


async def test_escalate_to_the_alerts_escalation_or_a_named_one(world: World) -> None:
    await world.create("a-1", "Latency high", escalation="search_escalation")
    await world.create("a-2", "Unrouted")
    await world.part._poll_oncall()
    await world.part._poll_incidents()
    routed = world.alert("Latency high")
    assert routed.escalation_policy == "search_escalation"
    outcome = await world.part.run("e1", ActionRequest("incident.escalate", routed.key, {}))
    assert outcome.summary == "escalated #1 Latency high to search_escalation"
    [(_m, _p, body)] = [r for r in world.fake.received if r[1].endswith("/escalate")]
    by_name = {e.name: e.id for e in world.source.escalations.values()}
    assert body["escalation"] == {"type": "escalation", "id": by_name["search_escalation"]}
    [row] = await world.log("incident.escalated")
    assert row.summary == "escalated to search_escalation: #1 Latency high"
    unrouted = world.alert("Unrouted")
    with pytest.raises(ActionRejected, match="routed to no escalation"):
        await world.part.run("e2", ActionRequest("incident.escalate", unrouted.key, {"level": 2}))
    named = ActionRequest(
        "incident.escalate", unrouted.key, {"escalation_id": by_name["platform_escalation"]}
    )
    done = await world.part.run("e3", named)
    assert done.data["escalation"] == "platform_escalation"
    fresh = world.fake.find(unrouted.id)
    assert fresh is not None
    assert {"type": "escalation", "id": by_name["platform_escalation"]} in fresh.responders
    assert await world.part.escalation_targets("search") == [
        (by_name["search_escalation"], "search_escalation")
    ]


async def test_a_note_is_added_once_even_when_the_answer_was_lost(world: World) -> None:
    await world.create("a-1", "Latency high")
    await world.part._poll_incidents()
    alert = world.alert("Latency high")
    with pytest.raises(ActionRejected, match="needs some text"):
        await world.part.run("n0", ActionRequest("incident.note", alert.key, {"content": " "}))
    note = ActionRequest("incident.note", alert.key, {"content": "looking at the LB"})
    outcome = await world.part.run("n1", note)
    assert outcome.summary == "added a note to #1 Latency high"
    [row] = await world.log("incident.note")
    assert row.summary == f"note by {OPERATOR} on #1 Latency high: looking at the LB"
    # The same action again without its request id (the POST's answer never came): the note
    # is already there, by us, so nothing is sent.
    world.part.actions._requests.clear()
    await world.store.set_state("opsgenie.request.n1", "")
    again = await world.part.run("n1", note)
    assert again.data["already"] == "noted"
    assert world.posts("/notes") == 1
    notes = await world.part.incident_notes(alert)
    assert [(n.content, n.user) for n in notes] == [("looking at the LB", OPERATOR)]


async def test_a_test_alert_fired_at_opsgenie(world: World) -> None:
    labels = {"alertname": "OncallTuiTest", "severity": "critical", "service": "checkout"}
    request = ActionRequest(
        "alert.fire", "", {"labels": labels, "annotations": {"summary": "test"}, "to": "opsgenie"}
    )
    assert world.part.handles(request)
    assert not world.part.handles(ActionRequest("alert.fire", "", {"labels": labels}))
    outcome = await world.part.run("f1", request)
    assert outcome.data["alias"] == "oncall-tui-test-f1"
    created = world.fake.find("oncall-tui-test-f1", "alias")
    assert created is not None
    assert (created.message, created.priority, created.entity) == ("test", "P1", "checkout")
    assert created.details["alertname"] == "OncallTuiTest"
    # A retry asks about the same request: one alert, created once.
    await world.part.run("f1", request)
    assert world.posts("/v2/alerts") == 1
    assert created.count == 1
    with pytest.raises(ActionRejected, match="alertname"):
        await world.part.run("f2", ActionRequest("alert.fire", "", {"to": "opsgenie"}))


async def test_fire_to_opsgenie_for_the_cli(world: World) -> None:
    world.fake.processing_seconds = 0.0  # processed as soon as it is asked about
    labels: Mapping[str, str] = {"alertname": "HighLatency", "severity": "warning"}
    alias = await fire_to_opsgenie(
        world.config, labels, {"summary": "checkout slow"}, http=world.http, clock=world.clock
    )
    created = world.fake.find(alias, "alias")
    assert created is not None
    assert (created.message, created.priority) == ("checkout slow", "P3")
    assert alias.startswith("oncall-tui-test-")
    without = load_config_text(
        'alertmanagers: [{name: am, url: "http://127.0.0.1:9"}]\n', "t.yaml", {}
    )
    assert not opsgenie_configured(without)
    with pytest.raises(ProviderError, match=r"opsgenie\.api_key"):
        await fire_to_opsgenie(without, labels, {}, http=world.http, clock=world.clock)
