"""PagerDuty in the engine, against the fake PagerDuty with every exchange checked against the
published specs: polls, webhooks applied at once (through the real listener app, signature and
log), escalation on a frozen clock, idempotent actions, staleness and restore."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from spec_check import SpecValidator, ValidatingTransport

from oncall_tui.clock import FrozenClock
from oncall_tui.config import Config, load_config_text
from oncall_tui.engine.actions import ActionRejected, ActionRequest
from oncall_tui.engine.correlation import group_dedup_key
from oncall_tui.engine.intake import WebhookIntake
from oncall_tui.engine.pagerduty import (
    IncidentChange,
    PagerDutySource,
    change_log_rows,
    diff_incidents,
)
from oncall_tui.engine.pagerduty_part import PagerDutyPart
from oncall_tui.events import EngineEvent, IncidentsRaised
from oncall_tui.models import Incident, LogEntry, Snapshot
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.pagerduty import PagerDutyClient
from oncall_tui.providers.pagerduty_events import PagerDutyEventsClient
from oncall_tui.sandbox.fake_pagerduty import FakePagerDuty
from oncall_tui.store import Store
from oncall_tui.webhooks import make_webhook_app

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
TOKEN = "pd-token-for-tests-0001"
ROUTING_KEY = "R" * 32
SECRET = "pd-webhook-secret-for-tests"
OPERATOR = "demo@example.com"
API = "http://api.pagerduty.test"
EVENTS = "http://events.pagerduty.test"
LISTENER = "http://listener.test"
GROUP_KEY = '{}/{severity="critical"}:{alertname="PaymentsDown", service="payment-service"}'


class ByHost(httpx.AsyncBaseTransport):
    """REST and Events answered by the same fake, each checked against its own spec."""

    def __init__(self, routes: Mapping[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = dict(routes)
        self.down = False  # a network failure, for staleness
        self.unreachable_paths: set[str] = set()
        # A slow network: the next incident list is answered, then held back until released.
        self.release: asyncio.Event | None = None
        self.holding = asyncio.Event()
        self.lose_answers_to: set[tuple[str, str]] = set()  # (method, path suffix)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down or request.url.path in self.unreachable_paths:
            raise httpx.ConnectError("connection refused", request=request)
        response = await self.routes[request.url.host].handle_async_request(request)
        if any(
            request.method == method and request.url.path.endswith(suffix)
            for method, suffix in self.lose_answers_to
        ):
            # Applied by PagerDuty, but the answer never arrives.
            raise httpx.ReadError("connection reset", request=request)
        release = self.release
        if release is not None and request.method == "GET" and request.url.path == "/incidents":
            self.release = None
            self.holding.set()
            await release.wait()
        return response


@dataclass
class World:
    clock: FrozenClock
    fake: FakePagerDuty
    store: Store
    part: PagerDutyPart
    events: list[EngineEvent]
    transport: ByHost
    validating: list[ValidatingTransport]
    http: httpx.AsyncClient
    changes: list[int]

    @property
    def source(self) -> PagerDutySource:
        return self.part.source

    async def trigger(self, dedup_key: str = "", summary: str = "Payments are failing") -> str:
        client = PagerDutyEventsClient(EVENTS, ROUTING_KEY, self.http, clock=self.clock)
        return await client.trigger(
            summary=summary,
            source="payments-1",
            severity="critical",
            dedup_key=dedup_key or group_dedup_key(GROUP_KEY),
        )

    async def deliver(self) -> None:
        """Let the fake send what it has queued (webhooks to the listener app)."""
        await self.fake.tick()

    async def log(self, kind: str) -> list[LogEntry]:
        return await self.store.entries(sources=["pagerduty"], kinds=[kind], newest_first=False)

    def incident(self, number: int) -> Incident:
        return next(i for i in self.source.incidents if i.number == number)


def config_for(tmp_path: Path, **pd: str) -> Config:
    extra = "".join(f", {key}: {value}" for key, value in pd.items())
    text = f"""
operator: {{name: Demo Operator, email: {OPERATOR}}}
alertmanagers: [{{name: am, url: "http://127.0.0.1:9"}}]
pagerduty: {{api_token: "{TOKEN}", routing_key: "{ROUTING_KEY}", webhook_secret: "{SECRET}",
             api_url: "{API}", events_url: "{EVENTS}"{extra}}}
notify: {{min_severity: critical}}
log: {{path: "{tmp_path / "log.db"}"}}
"""
    return load_config_text(text, "test.yaml", {})


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = FrozenClock(T0)
    store = await Store.open(tmp_path / "log.db", clock=clock)
    events: list[EngineEvent] = []
    changes: list[int] = []
    holder: dict[str, PagerDutyPart] = {}

    async def on_entry(entry: LogEntry) -> None:
        await holder["part"].on_log_entry(entry)

    intake = WebhookIntake(store, clock, on_entry)
    listener = make_webhook_app(intake, alertmanager_token=None, pagerduty_secrets=[SECRET])
    hooks = httpx.AsyncClient(transport=httpx.ASGITransport(app=listener), base_url=LISTENER)
    fake = FakePagerDuty(
        clock=clock,
        api_token=TOKEN,
        routing_keys=[ROUTING_KEY],
        webhook_url=f"{LISTENER}/webhooks/pagerduty",
        webhook_secrets=[SECRET],
        http=hooks,
    )
    rest = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SpecValidator.load("pagerduty-rest")
    )
    ev = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SpecValidator.load("pagerduty-events")
    )
    transport = ByHost({"api.pagerduty.test": rest, "events.pagerduty.test": ev})
    http = httpx.AsyncClient(transport=transport, timeout=5.0)
    part = PagerDutyPart(
        config_for(tmp_path),
        http=http,
        clock=clock,
        store=store,
        emit=events.append,
        changed=lambda: changes.append(1),
    )
    holder["part"] = part
    try:
        yield World(clock, fake, store, part, events, transport, [rest, ev], http, changes)
    finally:
        await part.stop()
        await http.aclose()
        await hooks.aclose()
        await store.close()
    for validating in (rest, ev):
        assert validating.violations == []


# --- polls ------------------------------------------------------------------------------------


async def test_a_poll_shows_the_incident_an_alert_opened_and_logs_it(world: World) -> None:
    await world.trigger()
    # A second alert of the same group joins the open incident: no new page.
    await world.trigger(summary="Payments are failing (again)")
    change = await world.source.poll_incidents()
    assert len(change.triggered) == 1
    [incident] = world.source.incidents
    assert incident.status == "triggered"
    assert incident.dedup_key == group_dedup_key(GROUP_KEY)
    assert incident.service == "payment-service"
    assert incident.assignee  # someone of level 1 was paged
    assert world.source.health.reachable is True
    assert world.source.health.last_success == T0
    # Nothing moved: the next poll reports nothing.
    assert not await world.source.poll_incidents()


async def test_an_old_incident_resolved_between_polls_is_seen_resolved(world: World) -> None:
    await world.trigger()
    await world.source.poll_incidents()
    world.clock.advance(3 * 3600)  # opened long before the window of recently resolved ones
    client = PagerDutyEventsClient(EVENTS, ROUTING_KEY, world.http, clock=world.clock)
    await client.resolve(group_dedup_key(GROUP_KEY))
    incident_id = world.incident(1).id
    change = await world.source.poll_incidents()
    assert [i.status for i in change.resolved] == ["resolved"]
    # Neither list had it any more: it was looked up by id.
    assert ("GET", f"/incidents/{incident_id}", 200) in world.validating[0].exchanges
    assert [i.status for i in world.source.incidents] == ["resolved"]  # kept for context
    world.clock.advance(3601)
    assert not await world.source.poll_incidents()
    assert world.source.incidents == []


async def test_the_part_logs_changes_and_notifies_only_news(world: World) -> None:
    await world.trigger()
    await world.part._poll_incidents()
    # The first poll of a fresh start: in the log, but no notification.
    assert [e.kind for e in await world.log("incident.triggered")] == ["incident.triggered"]
    assert not any(isinstance(e, IncidentsRaised) for e in world.events)
    await world.trigger(dedup_key="another-group", summary="Card refunds stuck")
    await world.part._poll_incidents()
    raised = [e for e in world.events if isinstance(e, IncidentsRaised)]
    assert [[i.title for i in e.incidents] for e in raised] == [["Card refunds stuck"]]
    snapshot = world.part.publish_into(Snapshot(taken_at=T0))
    assert {i.title for i in snapshot.incidents} == {"Payments are failing", "Card refunds stuck"}
    assert snapshot.health_of("pagerduty") is not None


async def test_oncall_now_next_and_seven_days_of_shifts(world: World) -> None:
    await world.source.poll_oncall()
    oncalls = world.source.oncalls
    payments = [o for o in oncalls if o.policy == "Payments"]
    assert {o.level for o in payments if o.start is None or o.start <= T0} == {1, 2, 3}
    # Who is next at level 1: a later shift of the daily rotation.
    assert any(o.level == 1 and o.start is not None and o.start > T0 for o in payments)
    shifts = world.source.shifts
    assert {s.schedule for s in shifts} >= {"Payments primary", "Payments secondary"}
    primary = [s for s in shifts if s.schedule == "Payments primary"]
    assert primary[0].start <= T0 < primary[0].end
    assert max(s.end for s in primary) >= T0 + timedelta(days=7)


# --- webhooks ---------------------------------------------------------------------------------


async def test_a_webhook_is_applied_at_once_with_who_acknowledged(world: World) -> None:
    await world.trigger()
    await world.source.poll_incidents()
    await world.deliver()  # incident.triggered: already known, nothing new
    assert await world.log("incident.acknowledged") == []
    # Someone acknowledges in PagerDuty (Events API, as the monitoring side would).
    client = PagerDutyEventsClient(EVENTS, ROUTING_KEY, world.http, clock=world.clock)
    await client.acknowledge(group_dedup_key(GROUP_KEY))
    await world.deliver()
    [incident] = world.source.incidents
    assert incident.status == "acknowledged"
    [entry] = await world.log("incident.acknowledged")
    assert entry.data["incident_id"] == incident.id
    # The raw delivery is in the log too, logged by the intake before it was applied.
    assert [e.summary for e in await world.log("webhook")][-1] == "incident.acknowledged"


async def test_a_late_webhook_never_moves_an_incident_backwards(world: World) -> None:
    await world.trigger()
    await world.deliver()
    [triggered] = await world.log("webhook")
    world.clock.advance(60)
    client = PagerDutyEventsClient(EVENTS, ROUTING_KEY, world.http, clock=world.clock)
    await client.acknowledge(group_dedup_key(GROUP_KEY))
    await world.deliver()
    assert world.source.incidents[0].status == "acknowledged"
    # The triggered event again (a retried delivery, as PagerDuty's at-least-once allows).
    change = world.source.apply_webhook(triggered.data["event"])
    assert not change
    assert world.source.incidents[0].status == "acknowledged"


async def test_a_webhook_during_a_poll_wins_over_the_polls_older_answer(world: World) -> None:
    await world.trigger()
    await world.source.poll_incidents()
    release = asyncio.Event()
    world.transport.release = release
    poll = asyncio.create_task(world.source.poll_incidents())
    await asyncio.wait_for(world.transport.holding.wait(), timeout=5)
    # While the answer ("triggered") is on its way, the acknowledgement is pushed.
    client = PagerDutyEventsClient(EVENTS, ROUTING_KEY, world.http, clock=world.clock)
    await client.acknowledge(group_dedup_key(GROUP_KEY))
    await world.deliver()
    assert world.source.incidents[0].status == "acknowledged"
    release.set()
    change = await asyncio.wait_for(poll, timeout=5)
    assert not change
    assert world.source.incidents[0].status == "acknowledged"
    # The next poll sees PagerDuty agree.
    assert not await world.source.poll_incidents()
    assert world.source.incidents[0].status == "acknowledged"


async def test_the_part_polls_on_its_loops_until_stopped(world: World) -> None:
    await world.trigger()
    world.part.start()
    for _ in range(200):
        if world.source.incidents and world.source.oncalls:
            break
        await asyncio.sleep(0.01)
    await world.part.stop()
    assert world.source.incidents
    assert world.source.oncalls
    assert world.changes  # the engine was told to publish
    # Stopped means stopped: nothing polls any more.
    calls = len(world.validating[0].exchanges)
    await asyncio.sleep(0.05)
    assert len(world.validating[0].exchanges) == calls


async def test_escalation_on_the_frozen_clock_reaches_the_screen(world: World) -> None:
    await world.source.poll_oncall()
    await world.trigger()
    await world.source.poll_incidents()
    assert world.source.incidents[0].escalation_level == 1
    world.clock.advance(5 * 60 + 1)  # level 1's delay in the seeded Payments policy
    await world.deliver()
    escalated = await world.log("incident.escalated")
    assert len(escalated) == 1
    assert world.source.incidents[0].escalation_level == 2
    assert not await world.source.poll_incidents()  # the poll agrees with the webhook


# --- actions ----------------------------------------------------------------------------------


async def act(world: World, kind: str, number: int, action_id: str, **params: Any) -> str:
    incident = world.incident(number)
    outcome = await world.part.run(action_id, ActionRequest(kind, incident.key, params))
    return outcome.summary


async def test_acknowledge_and_resolve_are_done_when_already_done(world: World) -> None:
    await world.trigger()
    await world.source.poll_incidents()
    assert "acknowledged" in await act(world, "incident.acknowledge", 1, "a1")
    assert world.incident(1).status == "acknowledged"  # shown at once, before any poll
    assert "already acknowledged" in await act(world, "incident.acknowledge", 1, "a1")
    assert "resolved" in await act(world, "incident.resolve", 1, "r1", resolution="fixed")
    assert "already resolved" in await act(world, "incident.resolve", 1, "r1")
    kinds = [e.kind for e in await world.store.entries(sources=["pagerduty"], newest_first=False)]
    assert kinds.count("incident.acknowledged") == 1
    assert kinds.count("incident.resolved") == 1


async def test_escalate_climbs_once_per_action_and_stops_at_the_last_level(world: World) -> None:
    await world.source.poll_oncall()
    await world.trigger()
    await world.source.poll_incidents()
    assert "to level 2" in await act(world, "incident.escalate", 1, "e1")
    # The same action again (the outbox retrying after a lost answer): no second climb.
    assert "already at level 2" in await act(world, "incident.escalate", 1, "e1")
    assert "to level 3" in await act(world, "incident.escalate", 1, "e2")
    with pytest.raises(ActionRejected, match="last level"):
        await act(world, "incident.escalate", 1, "e3")
    assert world.incident(1).escalation_level == 3


async def test_retries_after_lost_answers_do_nothing_twice(world: World) -> None:
    await world.source.poll_oncall()
    await world.trigger()
    await world.source.poll_incidents()
    incident_id = world.incident(1).id
    world.transport.lose_answers_to = {("PUT", incident_id), ("POST", "/notes")}
    with pytest.raises(ProviderError) as lost:
        await act(world, "incident.escalate", 1, "e1")
    assert lost.value.retryable
    with pytest.raises(ProviderError):
        await act(world, "incident.note", 1, "n1", content="Rolling back the deploy")
    world.transport.lose_answers_to = set()
    # The outbox retries both actions with the same ids.
    assert "already at level 2" in await act(world, "incident.escalate", 1, "e1")
    assert "already" in await act(
        world, "incident.note", 1, "n1", content="Rolling back the deploy"
    )
    notes = await world.part.incident_notes(world.incident(1))
    assert [n.content for n in notes] == ["Rolling back the deploy"]
    await world.source.poll_incidents()
    assert world.incident(1).escalation_level == 2


async def test_a_note_is_added_once_even_when_retried(world: World) -> None:
    await world.trigger()
    await world.source.poll_incidents()
    await act(world, "incident.note", 1, "n1", content="Looking into the card processor")
    assert "already" in await act(
        world, "incident.note", 1, "n1", content="Looking into the card processor"
    )
    notes = await world.part.incident_notes(world.incident(1))
    assert [n.content for n in notes] == ["Looking into the card processor"]
    assert notes[0].user == "Demo Operator"
    # PagerDuty's incident.annotated for our own note adds no second log line.
    await world.deliver()
    [logged] = await world.log("incident.note")
    assert logged.summary.endswith(": Looking into the card processor")
    # A colleague's note, pushed by PagerDuty, is logged with its author.
    alice = PagerDutyClient(
        API, TOKEN, world.http, clock=world.clock, from_email="alice.chen@example.com"
    )
    await alice.add_note(world.incident(1).id, "Card processor confirms an outage")
    await world.deliver()
    _ours, theirs = await world.log("incident.note")
    assert theirs.summary.startswith("note by Alice Chen on #1 ")


async def test_reassign_and_snooze(world: World) -> None:
    await world.trigger()
    await world.source.poll_incidents()
    targets = await world.part.reassign_targets("dana")
    assert ("user", "PDANAI6", "Dana Ito") in targets
    assert "Dana Ito" in await act(world, "incident.reassign", 1, "x1", user_ids=["PDANAI6"])
    assert world.incident(1).assignee_ids == ("PDANAI6",)
    await act(world, "incident.acknowledge", 1, "x2")
    assert "snoozed" in await act(world, "incident.snooze", 1, "x3", duration_seconds=3600)
    with pytest.raises(ActionRejected):
        await act(world, "incident.reassign", 1, "x4")
    with pytest.raises(ActionRejected):
        await world.part.run("x5", ActionRequest("incident.acknowledge", "opsgenie/abc"))
    with pytest.raises(ProviderError) as failed:
        await world.part.run("x6", ActionRequest("incident.acknowledge", "pagerduty/QNOSUCH"))
    assert not failed.value.retryable


async def test_a_test_alert_fired_twice_by_one_action_pages_once(world: World) -> None:
    request = ActionRequest(
        "alert.fire",
        "",
        {
            "to": "pagerduty",
            "labels": {
                "alertname": "TestAlert",
                "severity": "critical",
                "service": "payment-service",
            },
        },
    )
    assert world.part.handles(request)
    await world.part.run("f1", request)
    await world.part.run("f1", request)
    await world.source.poll_incidents()
    assert [i.title for i in world.source.incidents] == ["TestAlert"]


# --- staleness and restore --------------------------------------------------------------------


async def test_pagerduty_down_keeps_incidents_marked_stale(world: World) -> None:
    await world.trigger()
    await world.part._poll_incidents()
    world.transport.down = True
    world.clock.advance(30)
    await world.part._poll_incidents()
    health = world.source.health
    assert health.reachable is False
    assert health.stale_since == T0
    assert "connection refused" in health.error
    assert len(world.source.incidents) == 1
    world.transport.down = False
    await world.part._poll_incidents()
    assert world.source.health.stale_since is None
    kinds = [e.kind for e in await world.store.entries(sources=["pagerduty"], newest_first=False)]
    assert kinds[-2:] == ["source.down", "source.up"]


async def test_one_failing_endpoint_is_one_lasting_problem_not_a_flapping_one(
    world: World,
) -> None:
    world.transport.unreachable_paths = {"/oncalls"}
    for _ in range(2):
        await world.part._poll_oncall()
        await world.part._poll_incidents()
        assert world.source.health.reachable is False
        assert world.source.health.error.startswith("on-call: ")
    kinds = [e.kind for e in await world.store.entries(sources=["pagerduty"], newest_first=False)]
    assert [k for k in kinds if k.startswith("source.")] == ["source.down"]
    world.transport.unreachable_paths = set()
    await world.part._poll_oncall()
    assert world.source.health.reachable is True
    assert world.source.health.stale_since is None


async def test_restore_shows_the_last_incidents_and_logs_only_what_changed(
    world: World,
) -> None:
    await world.trigger()
    await world.source.poll_incidents()
    saved = world.part.publish_into(Snapshot(taken_at=T0))
    client = PagerDutyEventsClient(EVENTS, ROUTING_KEY, world.http, clock=world.clock)
    await client.resolve(group_dedup_key(GROUP_KEY))  # while we were not running

    world.clock.advance(120)
    fresh = PagerDutyPart(
        world.part._config,
        http=world.http,
        clock=world.clock,
        store=world.store,
        emit=world.events.append,
        changed=lambda: None,
    )
    # Through the log file, as the engine keeps it between runs.
    await world.store.save_snapshot(saved)
    loaded = await world.store.load_snapshot()
    assert loaded is not None
    fresh.restore(loaded)
    assert [i.status for i in fresh.source.incidents] == ["triggered"]
    assert fresh.source.health.stale_since == T0
    assert fresh.source.health.reachable is None
    before = len(await world.log("incident.triggered"))
    await fresh._poll_incidents()
    assert [i.status for i in fresh.source.incidents] == ["resolved"]
    assert len(await world.log("incident.triggered")) == before
    assert len(await world.log("incident.resolved")) == 1


# --- pure parts -------------------------------------------------------------------------------


def test_change_rows_name_what_happened() -> None:
    base = Incident(
        id="Q1",
        system="pagerduty",
        title="Payments are failing",
        status="triggered",
        urgency="high",
        service="payment-service",
        assignee="Alice Chen",
        escalation_level=1,
        created_at=T0,
        number=7,
        assignee_ids=("PALICE2",),
    )
    acked = replace(base, status="acknowledged", acknowledged_by=("Alice Chen",))
    climbed = replace(base, escalation_level=2, assignee="Bob Okafor", assignee_ids=("PBOBOK3",))
    assert diff_incidents({}, [base]).triggered == (base,)
    assert diff_incidents({"Q1": base}, [acked]).acknowledged == (acked,)
    assert diff_incidents({"Q1": acked}, [climbed]).escalated == (climbed,)
    assert not diff_incidents({"Q1": base}, [base])
    rows = change_log_rows(IncidentChange(acknowledged=(acked,), escalated=(climbed,)))
    assert [(r[1], r[2]) for r in rows] == [
        ("incident.acknowledged", "acknowledged by Alice Chen: #7 Payments are failing"),
        ("incident.escalated", "escalated to level 2 (Bob Okafor): #7 Payments are failing"),
    ]
