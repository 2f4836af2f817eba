"""Statuspage in the engine: source, idempotent actions and the automation rules of issue 4.

Everything runs against the fake Statuspage with every exchange checked against the published
spec, on a frozen clock advanced by hand. Actions go through a real Engine's `act` and outbox;
automation is fed the snapshots the engine would give it after an Alertmanager poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from spec_check import SpecValidator, ValidatingTransport

from oncall_tui.clock import Clock, FrozenClock
from oncall_tui.config import Config, load_config_text
from oncall_tui.engine.actions import ActionRequest
from oncall_tui.engine.core import Engine
from oncall_tui.engine.statuspage import (
    COMPONENT_STATUS,
    INCIDENT_CREATE,
    INCIDENT_UPDATE,
)
from oncall_tui.engine.statuspage_episode import DEFAULT_TEMPLATES, Episode, render
from oncall_tui.engine.statuspage_part import StatuspagePart
from oncall_tui.events import EngineEvent, LogAppended
from oncall_tui.models import (
    Action,
    ActionStatus,
    Alert,
    AlertState,
    LogEntry,
    Snapshot,
    SourceHealth,
)
from oncall_tui.providers.statuspage import StatuspageClient
from oncall_tui.sandbox.fake_statuspage import FakeStatuspage
from oncall_tui.store import Store

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
KEY = "sp-key-for-tests-0001"
PAGE = "page0000test"
PAY = "cpay00000001"
SEARCH = "csearch00001"
API = "http://statuspage.test/v1"
RESOLVE_AFTER = 300.0


# --- the engine ----------------------------------------------------------------------------


class WiredEngine(Engine):
    """A real Engine, with its Statuspage part at hand as `sp` once started."""

    @property
    def sp(self) -> StatuspagePart | None:
        return self._statuspage


# --- the world -------------------------------------------------------------------------------


class Network(httpx.AsyncBaseTransport):
    """The fake behind a spec-checking transport; can go down, or lose the next answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False
        self.lose_next: str | None = None  # "METHOD /path-suffix": sent, answer lost

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Alertmanager is not running here: the snapshots automation sees are given by hand.
        if self.down or request.url.host != "statuspage.test":
            raise httpx.ConnectError("connection refused", request=request)
        response = await self.inner.handle_async_request(request)
        wanted = self.lose_next
        if wanted is not None and f"{request.method} {request.url.path}".endswith(wanted):
            self.lose_next = None
            raise httpx.ReadError("connection reset", request=request)
        return response


def config_for(
    tmp_path: Path, *, extra: str = "", read_only: bool = False, ghost: bool = False
) -> Config:
    # "ghost" maps a label value to a component the page does not have: creates are refused.
    more = ", billing: cghost000001" if ghost else ""
    text = f"""
operator: {{name: Demo Operator, email: demo@example.com}}
alertmanagers: [{{name: am, url: "http://127.0.0.1:9"}}]
statuspage:
  api_key: "{KEY}"
  page_id: "{PAGE}"
  api_url: "{API}"
  components: {{payment-service: {PAY}, search: {SEARCH}{more}}}
  automation:
    enabled: true
    match: {{severity: critical}}
    component_label: service
    impact: major
    component_status: major_outage
    resolve_after: {RESOLVE_AFTER:.0f}s
{extra}
poll: {{alerts: 1h, statuspage: 1h}}
webhooks: {{enabled: false}}
read_only: {"true" if read_only else "false"}
log: {{path: "{tmp_path / "log.db"}"}}
"""
    return load_config_text(text, "test.yaml", {})


@dataclass
class World:
    tmp_path: Path
    clock: FrozenClock
    fake: FakeStatuspage
    network: Network
    validating: ValidatingTransport
    http: httpx.AsyncClient
    store: Store
    engine: WiredEngine
    events: list[EngineEvent]
    config: Config

    @property
    def part(self) -> StatuspagePart:
        assert self.engine.sp is not None
        return self.engine.sp

    async def automate(self, *alerts: Alert, complete: bool = True) -> list[Action]:
        """What the engine does after an Alertmanager poll that returned `alerts`."""
        health = SourceHealth(name="am", kind="alertmanager", reachable=complete)
        snapshot = Snapshot(taken_at=self.clock.now(), alerts=tuple(alerts), health=(health,))
        return await self.part.automate(snapshot)

    async def log(self, *kinds: str, source: str = "automation") -> list[LogEntry]:
        return await self.store.entries(sources=[source], kinds=list(kinds), newest_first=False)

    async def restart(self) -> None:
        await self.engine.stop()
        self.engine = await start_engine(self.config, self.clock, self.store, self.http)

    async def automation_episode(self, component_id: str) -> Episode:
        assert self.part.automation is not None
        episode = await self.part.automation.episode(component_id)
        assert episode is not None
        return episode

    def incidents(self) -> list[dict[str, Any]]:
        return [self.fake.incident(i) for i in self.fake.incident_ids]

    def open_incidents(self) -> list[dict[str, Any]]:
        return [i for i in self.incidents() if i["status"] != "resolved"]


async def start_engine(
    config: Config, clock: Clock, store: Store, http: httpx.AsyncClient
) -> WiredEngine:
    engine = WiredEngine(config, clock=clock, store=store, http=http, listen_webhooks=False)
    await engine.start()
    assert engine.sp is not None
    await wait_until(lambda: _reachable(engine.snapshot.health_of("statuspage")))
    return engine


def _reachable(health: SourceHealth | None) -> bool:
    return health is not None and health.reachable is True


async def wait_until(probe: Any, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not probe():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = FrozenClock(T0)
    fake = FakeStatuspage(
        clock=clock, api_key=KEY, page_id=PAGE, components={"Payments": PAY, "Search": SEARCH}
    )
    validating = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SpecValidator.load("statuspage")
    )
    network = Network(validating)
    http = httpx.AsyncClient(transport=network)
    store = await Store.open(tmp_path / "log.db", clock=clock)
    config = config_for(tmp_path)
    events: list[EngineEvent] = []
    engine = await start_engine(config, clock, store, http)
    world = World(tmp_path, clock, fake, network, validating, http, store, engine, events, config)
    engine.subscribe(events.append)
    try:
        yield world
    finally:
        await world.engine.stop()
        await store.close()
        await http.aclose()
    assert validating.violations == []


def alert(
    service: str,
    name: str = "ServiceDown",
    *,
    severity: str = "critical",
    state: AlertState = AlertState.ACTIVE,
) -> Alert:
    return Alert(
        fingerprint=f"{name}-{service}-{severity}",
        labels={"alertname": name, "service": service, "severity": severity},
        annotations={"summary": f"internal detail about {service}"},
        starts_at=T0,
        updated_at=T0,
        ends_at=None,
        state=state,
        cluster="am",
    )


# --- automation ------------------------------------------------------------------------------


async def test_one_public_incident_per_component_and_only_for_matching_alerts(
    world: World,
) -> None:
    pay, search = alert("payment-service"), alert("search")
    noise = [alert("search", "Slow", severity="warning"), alert("billing")]
    silenced = alert("payment-service", "Errors", state=AlertState.SILENCED)
    done = await world.automate(pay, search, *noise, silenced)

    assert [a.status for a in done] == [ActionStatus.DONE, ActionStatus.DONE]
    assert {a.actor for a in done} == {"automation"}
    incidents = world.incidents()
    assert len(incidents) == 2
    by_component = {i["components"][0]["id"]: i for i in incidents}
    assert set(by_component) == {PAY, SEARCH}
    payments = by_component[PAY]
    assert payments["name"] == "Service disruption: Payments"
    assert payments["impact"] == "major"
    assert payments["status"] == "investigating"
    body = payments["incident_updates"][0]["body"]
    assert "Payments" in body
    assert "internal detail" not in body
    assert world.fake.component_status(PAY) == "major_outage"
    assert world.fake.component_status(SEARCH) == "major_outage"
    # The page is shown at once, before the next Statuspage poll.
    shown = {c.id: c.status for c in world.engine.snapshot.components}
    assert shown[PAY] == "major_outage"
    assert len(world.engine.snapshot.status_incidents) == 2

    # The same alerts again (another poll, a duplicate webhook's refresh): nothing new.
    assert await world.automate(pay, search, *noise, silenced) == []
    assert len(world.incidents()) == 2
    assert len(await world.log("automation.open")) == 2
    assert len(await world.log("automation.opened")) == 2
    unmapped = await world.log("automation.unmapped")
    assert [e.data["label"] for e in unmapped] == ["billing"]
    logged = [e for e in world.events if isinstance(e, LogAppended)]
    assert any(e.entry.kind == "automation.open" for e in logged)


async def test_a_silenced_alert_alone_opens_nothing(world: World) -> None:
    assert await world.automate(alert("payment-service", state=AlertState.SILENCED)) == []
    assert world.incidents() == []


async def test_further_alerts_join_without_telling_customers(world: World) -> None:
    first = alert("payment-service")
    await world.automate(first)
    await world.automate(first, alert("payment-service", "HighErrorRate"))

    [incident] = world.incidents()
    assert len(incident["incident_updates"]) == 1
    [joined] = await world.log("automation.joined")
    assert joined.data["alerts"] == ["am/HighErrorRate-payment-service-critical"]
    assert joined.actor == "automation"


async def test_resolved_only_after_resolve_after_then_a_new_episode(world: World) -> None:
    await world.automate(alert("payment-service"))
    await world.automate()  # every alert resolved
    assert len(await world.log("automation.quiet")) == 1

    world.clock.advance(RESOLVE_AFTER - 1)
    assert await world.automate() == []
    assert world.open_incidents() != []

    world.clock.advance(1)
    [resolve] = await world.automate()
    assert resolve.status == ActionStatus.DONE
    assert resolve.actor == "automation"
    [incident] = world.incidents()
    assert incident["status"] == "resolved"
    latest = incident["incident_updates"][0]
    assert latest["body"] == render(DEFAULT_TEMPLATES["resolved"], {"component": "Payments"})
    assert world.fake.component_status(PAY) == "operational"
    assert len(await world.log("automation.resolved")) == 1

    # Later trouble is a new episode: a new incident, not a reopened one.
    world.clock.advance(3600)
    await world.automate(alert("payment-service"))
    assert len(world.incidents()) == 2
    assert len(world.open_incidents()) == 1


async def test_a_flapping_alert_neither_reopens_nor_resolves_early(world: World) -> None:
    flappy = alert("payment-service")
    await world.automate(flappy)
    for _ in range(3):
        await world.automate()
        world.clock.advance(RESOLVE_AFTER * 0.6)
        assert await world.automate(flappy) == []
    assert len(await world.log("automation.refired")) == 3
    await world.automate()
    world.clock.advance(RESOLVE_AFTER * 0.6)
    assert await world.automate() == []
    world.clock.advance(RESOLVE_AFTER * 0.4)
    await world.automate()

    [incident] = world.incidents()
    assert incident["status"] == "resolved"
    assert [u["status"] for u in incident["incident_updates"]] == ["resolved", "investigating"]


async def test_missing_alertmanager_answers_never_resolve(world: World) -> None:
    await world.automate(alert("payment-service"))
    await world.automate(complete=False)
    world.clock.advance(RESOLVE_AFTER * 3)
    assert await world.automate(complete=False) == []
    assert world.open_incidents() != []
    assert await world.log("automation.quiet") == []


async def test_an_incident_the_operator_updated_here_is_handed_over(world: World) -> None:
    await world.automate(alert("payment-service"))
    [incident] = world.incidents()
    update = await world.engine.act(
        ActionRequest(
            INCIDENT_UPDATE,
            incident["id"],
            {"status": "identified", "body": "A bad deploy; rolling back."},
        )
    )
    assert update.status == ActionStatus.DONE
    assert update.actor == "demo@example.com"
    assert len(await world.log("automation.edited")) == 1

    await world.automate()
    world.clock.advance(RESOLVE_AFTER)
    assert await world.automate() == []
    world.clock.advance(RESOLVE_AFTER)
    assert await world.automate() == []
    assert world.open_incidents()[0]["status"] == "identified"
    assert world.fake.component_status(PAY) == "major_outage"
    [handover] = await world.log("automation.handover")
    assert "left open for the operator" in handover.summary
    assert any(
        isinstance(e, LogAppended) and e.entry.kind == "automation.handover" for e in world.events
    )

    # The operator resolves it: the episode is over.
    await world.engine.act(ActionRequest(INCIDENT_UPDATE, incident["id"], {"status": "resolved"}))
    await world.part.poll()
    await world.automate()
    assert len(await world.log("automation.closed")) == 1
    assert len(world.incidents()) == 1


async def test_an_edit_made_on_statuspage_itself_is_noticed(world: World) -> None:
    await world.automate(alert("payment-service"))
    [incident] = world.incidents()
    # Someone posts from Statuspage's own pages: we only see it when we read the page.
    web = StatuspageClient(API, PAGE, KEY, world.http, clock=world.clock)
    await web.update_incident(incident["id"], body="Engineers are on it.")
    await world.part.poll()
    await world.automate()
    [edited] = await world.log("automation.edited")
    assert "posted an update" in edited.summary

    world.clock.advance(RESOLVE_AFTER)
    await world.automate()
    world.clock.advance(RESOLVE_AFTER)
    await world.automate()
    assert world.open_incidents() != []
    assert len(await world.log("automation.handover")) == 1


async def test_an_incident_an_operator_opened_first_is_adopted_not_doubled(world: World) -> None:
    opened = await world.engine.act(
        ActionRequest(
            INCIDENT_CREATE,
            "",
            {
                "name": "Payments are slow",
                "status": "identified",
                "body": "We are on it.",
                "components": {PAY: "partial_outage"},
            },
        )
    )
    assert opened.status == ActionStatus.DONE
    await world.automate(alert("payment-service"))
    assert len(world.incidents()) == 1
    assert world.fake.component_status(PAY) == "partial_outage"
    assert len(await world.log("automation.adopted")) == 1

    await world.automate()
    world.clock.advance(RESOLVE_AFTER)
    await world.automate()
    assert world.open_incidents() != []
    assert len(await world.log("automation.handover")) == 1


async def test_resolved_by_someone_else_while_firing_is_not_reopened(world: World) -> None:
    firing = alert("payment-service")
    await world.automate(firing)
    [incident] = world.incidents()
    web = StatuspageClient(API, PAGE, KEY, world.http, clock=world.clock)
    await web.update_incident(incident["id"], status="resolved", body="Fixed.")
    await world.part.poll()
    assert await world.automate(firing) == []
    world.clock.advance(60)
    assert await world.automate(firing) == []
    assert len(world.incidents()) == 1
    assert len(await world.log("automation.closed_early")) == 1

    await world.automate()  # cleared: the next trouble may open a new incident
    await world.automate(firing)
    assert len(world.incidents()) == 2


async def test_a_restart_continues_the_episode_without_a_second_incident(world: World) -> None:
    await world.automate(alert("payment-service"))
    await world.restart()
    assert await world.automate(alert("payment-service")) == []
    assert len(world.incidents()) == 1

    await world.automate()
    world.clock.advance(RESOLVE_AFTER / 2)
    await world.restart()
    world.clock.advance(RESOLVE_AFTER / 2)
    [resolve] = await world.automate()
    assert resolve.status == ActionStatus.DONE
    assert world.open_incidents() == []


async def test_unreadable_state_adopts_the_open_incident_instead_of_doubling(
    world: World,
) -> None:
    await world.automate(alert("payment-service"))
    await world.store.set_state(f"statuspage.automation/{PAY}", "{not json")
    await world.restart()
    assert await world.automate(alert("payment-service")) == []
    assert len(world.incidents()) == 1
    assert len(await world.log("automation.state_unreadable")) == 1
    assert len(await world.log("automation.adopted")) == 1


async def test_a_crash_before_the_create_was_sent_is_recovered_once(world: World) -> None:
    # The decision is saved, the process dies before the request reaches the outbox.
    automation = world.part.automation
    assert automation is not None
    requests = await automation.evaluate(
        [alert("payment-service")], [], components=world.part.source.components
    )
    assert [r.kind for r in requests] == [INCIDENT_CREATE]
    await world.restart()

    await world.automate(alert("payment-service"))
    await world.automate(alert("payment-service"))
    assert len(world.incidents()) == 1
    assert len(await world.log("automation.retry")) == 1
    assert (
        world.incidents()[0]["metadata"]["oncall_tui"]["key"]
        == requests[0].params["automation_key"]
    )


async def test_a_create_whose_answer_was_lost_is_not_sent_twice(world: World) -> None:
    world.network.lose_next = f"POST /v1/pages/{PAGE}/incidents"
    [action] = await world.automate(alert("payment-service"))
    assert action.status == ActionStatus.PENDING  # in the outbox, retried with backoff
    assert len(world.incidents()) == 1  # it did reach Statuspage

    async def done() -> bool:
        stored = await world.store.get_action(action.id)
        return stored is not None and stored.status == ActionStatus.DONE

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not await done():
        assert loop.time() < deadline, "the outbox never retried"
        await asyncio.sleep(0.05)
    assert len(world.incidents()) == 1
    stored = await world.store.get_action(action.id)
    assert stored is not None
    assert "already open" in stored.result
    assert (await world.automation_episode(PAY)).incident_id == world.incidents()[0]["id"]


async def test_rate_limited_writes_wait_in_the_outbox(world: World) -> None:
    world.fake.fail_next(3, status=420)
    [action] = await world.automate(alert("payment-service"))
    assert action.status == ActionStatus.PENDING
    assert "rate limited" in action.result
    assert world.incidents() == []
    await wait_until(lambda: len(world.incidents()) == 1, within=10)
    await world.automate(alert("payment-service"))
    assert len(world.incidents()) == 1


# --- operator actions ------------------------------------------------------------------------


async def test_component_status_and_updates_are_safe_to_repeat(world: World) -> None:
    for _ in range(2):
        done = await world.engine.act(
            ActionRequest(COMPONENT_STATUS, SEARCH, {"status": "degraded_performance"})
        )
        assert done.status == ActionStatus.DONE
    assert world.fake.component_status(SEARCH) == "degraded_performance"
    assert world.engine.snapshot.components[1].status == "degraded_performance"

    created = await world.engine.act(
        ActionRequest(INCIDENT_CREATE, "", {"name": "Search is slow", "body": "Looking into it."})
    )
    incident_id = world.fake.incident_ids[0]
    assert created.status == ActionStatus.DONE
    update = ActionRequest(
        INCIDENT_UPDATE, incident_id, {"status": "monitoring", "body": "Fix deployed."}
    )
    first = await world.engine.act(update)
    again = await world.engine.act(update)
    assert first.status == again.status == ActionStatus.DONE
    assert "already says that" in again.result
    assert len(world.fake.incident(incident_id)["incident_updates"]) == 2


async def test_a_create_retried_by_the_outbox_finds_its_incident(world: World) -> None:
    request = ActionRequest(INCIDENT_CREATE, "", {"name": "Search is down", "body": "On it."})
    first = await world.part.run("action-1", request)
    again = await world.part.run("action-1", request)
    assert first.data["incident_id"] == again.data["incident_id"]
    assert again.data["already"] == "open"
    assert len(world.incidents()) == 1


async def test_bad_requests_are_refused_without_a_call(world: World) -> None:
    bad = [
        ActionRequest(INCIDENT_CREATE, "", {"body": "no name"}),
        ActionRequest(INCIDENT_CREATE, "", {"name": "x", "status": "resolved"}),
        ActionRequest(COMPONENT_STATUS, PAY, {"status": "on_fire"}),
        ActionRequest(INCIDENT_UPDATE, "", {"status": "resolved"}),
        ActionRequest(INCIDENT_UPDATE, "someincident", {}),
        ActionRequest(COMPONENT_STATUS, "nosuchcomponent", {"status": "operational"}),
    ]
    for request in bad:
        action = await world.engine.act(request)
        assert action.status == ActionStatus.FAILED, request
    assert world.incidents() == []
    assert world.fake.component_status(PAY) == "operational"


# --- the source ------------------------------------------------------------------------------


async def test_changes_seen_by_polling_are_logged(world: World) -> None:
    web = StatuspageClient(API, PAGE, KEY, world.http, clock=world.clock)
    await web.update_component(SEARCH, "partial_outage")
    created = await web.create_incident(
        name="Search degraded", status="investigating", body="Looking."
    )
    await world.part.poll()
    await web.update_incident(created.id, status="resolved", body="Done.")
    await world.part.poll()
    kinds = [e.kind for e in await world.log(source="statuspage")]
    assert kinds[0] == "poll.first"
    assert kinds[1:] == ["component.status", "incident.new", "incident.resolved"]
    # Resolved incidents stay listed for context.
    assert [i.status for i in world.engine.snapshot.status_incidents] == ["resolved"]


async def test_statuspage_down_keeps_the_page_marked_stale(world: World) -> None:
    before = world.engine.snapshot.components
    world.network.down = True
    world.clock.advance(30)
    await world.part.poll()
    health = world.engine.snapshot.health_of("statuspage")
    assert health is not None
    assert health.reachable is False
    assert health.stale_since == T0
    assert world.engine.snapshot.components == before
    world.network.down = False
    await world.part.poll()
    health = world.engine.snapshot.health_of("statuspage")
    assert health is not None
    assert health.reachable is True
    assert health.stale_since is None
    kinds = [e.kind for e in await world.log(source="statuspage")]
    assert kinds[-2:] == ["source.down", "source.up"]


async def test_restore_shows_the_last_page_until_it_answers(world: World) -> None:
    await world.automate(alert("payment-service"))
    saved = world.engine.snapshot
    world.network.down = True
    await world.engine.stop()
    await world.store.save_snapshot(saved)
    world.engine = WiredEngine(
        world.config, clock=world.clock, store=world.store, http=world.http, listen_webhooks=False
    )
    await world.engine.start()
    await wait_until(
        lambda: (
            (h := world.engine.snapshot.health_of("statuspage")) is not None
            and h.reachable is False
        )
    )
    assert [i.id for i in world.engine.snapshot.status_incidents] == world.fake.incident_ids
    # Nothing is decided while the page cannot be read.
    assert await world.automate() == []
    world.network.down = False


# --- configuration and queries ---------------------------------------------------------------


def test_templates_render_known_placeholders_only() -> None:
    values = {"component": "Payments", "count": "2"}
    assert render("{component} ({count}) {unknown} {", values) == "Payments (2) {unknown} {"


async def test_configured_templates_are_used(tmp_path: Path, world: World) -> None:
    extra = (
        "  templates:\n"
        "    title: '{component} outage'\n"
        "    investigating: 'Trouble with {component} since {started}.'\n"
    )
    config = config_for(tmp_path, extra=extra)
    await world.engine.stop()
    world.config = config
    world.engine = await start_engine(config, world.clock, world.store, world.http)
    assert world.part.templates()["title"] == "{component} outage"
    assert world.part.templates()["resolved"] == DEFAULT_TEMPLATES["resolved"]
    await world.automate(alert("payment-service"))
    [incident] = world.incidents()
    assert incident["name"] == "Payments outage"
    assert incident["incident_updates"][0]["body"] == "Trouble with Payments since 02:00 UTC."


async def test_a_create_refused_for_good_is_not_repeated(tmp_path: Path, world: World) -> None:
    await world.engine.stop()
    world.config = config_for(tmp_path, ghost=True)
    world.engine = await start_engine(world.config, world.clock, world.store, world.http)
    [refused] = await world.automate(alert("billing"))
    assert refused.status == ActionStatus.FAILED
    assert "not found" in refused.result
    [failed] = await world.log("automation.failed")
    assert "could not open the incident" in failed.summary
    assert await world.automate(alert("billing")) == []
    assert world.incidents() == []

    await world.automate()  # the alerts cleared: the next trouble is tried afresh
    assert len(await world.log("automation.cleared")) == 1
    [again] = await world.automate(alert("billing"))
    assert again.status == ActionStatus.FAILED


async def test_read_only_runs_no_automation(tmp_path: Path, world: World) -> None:
    await world.engine.stop()
    world.config = config_for(tmp_path, read_only=True)
    world.engine = await start_engine(world.config, world.clock, world.store, world.http)
    assert world.part.automation is None
    assert await world.automate(alert("payment-service")) == []
    assert world.incidents() == []
    assert len(await world.log("automation.off")) == 1
