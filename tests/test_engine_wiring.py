"""The whole engine with PagerDuty configured: Alertmanager (stand-in) and the fake PagerDuty
behind spec-validating transports, the real webhook listener on a loopback port. What the
dashboard relies on: incidents and health in the snapshot, actions through the one door, signed
webhooks applied at once, an alert linked to the incident its group opened, read-only mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from spec_check import SpecValidator, ValidatingTransport

from oncall_tui.clock import FrozenClock
from oncall_tui.config import load_config_text
from oncall_tui.engine import ActionRequest, Engine
from oncall_tui.engine.correlation import group_dedup_key
from oncall_tui.models import ActionStatus
from oncall_tui.providers.pagerduty_events import PagerDutyEventsClient
from oncall_tui.sandbox.fake_pagerduty import FakePagerDuty
from oncall_tui.sandbox.standin import StandinAlertmanager

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
TOKEN = "pd-token-for-wiring-tests"
ROUTING_KEY = "W" * 32
SECRET = "pd-webhook-secret-wiring"
GROUP_KEY = '{}:{alertname="PaymentsDown", service="payment-service"}'


class ByHost(httpx.AsyncBaseTransport):
    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.routes[request.url.host].handle_async_request(request)


async def eventually(check: Callable[[], bool | Awaitable[bool]], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@dataclass
class Rig:
    engine: Engine
    fake: FakePagerDuty
    standin: StandinAlertmanager
    http: httpx.AsyncClient
    clock: FrozenClock


async def make_rig(
    tmp_path: Path, *, read_only: bool = False
) -> tuple[Rig, list[ValidatingTransport]]:
    clock = FrozenClock(T0)
    standin = StandinAlertmanager(clock=clock)
    fake = FakePagerDuty(
        clock=clock,
        api_token=TOKEN,
        routing_keys=[ROUTING_KEY],
        webhook_secrets=[SECRET],
    )
    validating = [
        ValidatingTransport(httpx.ASGITransport(app=fake.app), SpecValidator.load(name))
        for name in ("pagerduty-rest", "pagerduty-events")
    ]
    http = httpx.AsyncClient(
        transport=ByHost(
            {
                "am.test": httpx.ASGITransport(app=standin.app),
                "api.pagerduty.test": validating[0],
                "events.pagerduty.test": validating[1],
            }
        ),
        timeout=5.0,
    )
    text = f"""
operator: {{name: Test Operator, email: demo@example.com}}
alertmanagers: [{{name: am, url: "http://am.test"}}]
pagerduty: {{api_token: "{TOKEN}", routing_key: "{ROUTING_KEY}", webhook_secret: "{SECRET}",
             api_url: "http://api.pagerduty.test", events_url: "http://events.pagerduty.test"}}
webhooks: {{listen: "127.0.0.1:0"}}
poll: {{alerts: 60s, incidents: 60s, oncall: 60s}}
log: {{path: "{tmp_path / "log.db"}"}}
read_only: {str(read_only).lower()}
"""
    engine = Engine(load_config_text(text, "test.yaml", {}), clock=clock, http=http)
    await engine.start()
    # The fake posts its webhooks with its own client to the engine's real listener.
    fake.webhook_url = f"http://{engine.webhook_address}/webhooks/pagerduty"
    return Rig(engine, fake, standin, http, clock), validating


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made, validating = await make_rig(tmp_path)
    try:
        yield made
    finally:
        await made.engine.stop()
        await made.fake.stop()
        await made.http.aclose()
    for transport in validating:
        assert transport.violations == []


async def page(rig: Rig) -> str:
    events = PagerDutyEventsClient(
        "http://events.pagerduty.test", ROUTING_KEY, rig.http, clock=rig.clock
    )
    return await events.trigger(
        summary="Payments are failing",
        source="pay-1",
        severity="critical",
        dedup_key=group_dedup_key(GROUP_KEY),
    )


async def test_incidents_and_health_reach_the_snapshot(rig: Rig) -> None:
    await page(rig)
    rig.engine.refresh_now()
    await eventually(lambda: len(rig.engine.snapshot.incidents) == 1)
    incident = rig.engine.snapshot.incidents[0]
    assert incident.system == "pagerduty"
    assert incident.status == "triggered"
    assert incident.dedup_key == group_dedup_key(GROUP_KEY)
    health = rig.engine.snapshot.health_of("pagerduty")
    assert health is not None
    assert health.reachable is True
    assert rig.engine.pagerduty_configured


async def test_acknowledge_through_the_engine_reaches_pagerduty(rig: Rig) -> None:
    await page(rig)
    rig.engine.refresh_now()
    await eventually(lambda: len(rig.engine.snapshot.incidents) == 1)
    incident = rig.engine.snapshot.incidents[0]
    action = await rig.engine.act(ActionRequest("incident.acknowledge", incident.key))
    assert action.status == ActionStatus.DONE, action.result
    answer = await rig.http.get(
        f"http://api.pagerduty.test/incidents/{incident.id}",
        headers={
            "Authorization": f"Token token={TOKEN}",
            "Accept": "application/vnd.pagerduty+json;version=2",
        },
    )
    assert answer.json()["incident"]["status"] == "acknowledged"
    assert rig.engine.snapshot.incidents[0].status == "acknowledged"
    done = await rig.engine.log_entries(kinds=["action.done"])
    assert [e.data["action_id"] for e in done] == [action.id]


async def test_signed_webhook_is_applied_before_the_next_poll(rig: Rig) -> None:
    await page(rig)
    rig.engine.refresh_now()
    await eventually(lambda: len(rig.engine.snapshot.incidents) == 1)
    incident = rig.engine.snapshot.incidents[0]
    # Someone acknowledges in PagerDuty itself; polls are a minute apart.
    answer = await rig.http.put(
        f"http://api.pagerduty.test/incidents/{incident.id}",
        headers={
            "Authorization": f"Token token={TOKEN}",
            "Accept": "application/vnd.pagerduty+json;version=2",
            "From": "demo@example.com",
        },
        json={"incident": {"type": "incident_reference", "status": "acknowledged"}},
    )
    assert answer.status_code == 200
    await rig.fake.tick()  # the fake delivers its webhooks to our listener
    await eventually(lambda: rig.engine.snapshot.incidents[0].status == "acknowledged")
    hooks = await rig.engine.log_entries(sources=["pagerduty"], kinds=["webhook"])
    assert hooks


async def test_an_alert_links_to_the_incident_its_group_opened(rig: Rig) -> None:
    rig.standin.put_alerts(
        [{"labels": {"alertname": "PaymentsDown", "service": "payment-service"}}]
    )
    await page(rig)
    rig.engine.refresh_now()
    await eventually(
        lambda: len(rig.engine.snapshot.incidents) == 1 and len(rig.engine.snapshot.alerts) == 1
    )
    alert = rig.engine.snapshot.alerts[0]
    # Alertmanager's webhook carries the group key and the alert's fingerprint.
    notification = {
        "version": "4",
        "groupKey": GROUP_KEY,
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "critical",
        "groupLabels": {"alertname": "PaymentsDown", "service": "payment-service"},
        "commonLabels": dict(alert.labels),
        "commonAnnotations": {},
        "externalURL": "http://am.test",
        "alerts": [
            {
                "status": "firing",
                "labels": dict(alert.labels),
                "annotations": {},
                "startsAt": alert.starts_at.isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": alert.fingerprint,
            }
        ],
    }
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"http://{rig.engine.webhook_address}/webhooks/alertmanager", json=notification
        )
    assert answer.status_code == 200
    linked = rig.engine.incident_for_alert(alert)
    assert linked is not None
    assert linked.id == rig.engine.snapshot.incidents[0].id
    assert [a.fingerprint for a in rig.engine.alerts_for_incident(linked)] == [alert.fingerprint]


async def test_read_only_refuses_incident_actions(tmp_path: Path) -> None:
    made, _ = await make_rig(tmp_path, read_only=True)
    try:
        action = await made.engine.act(ActionRequest("incident.acknowledge", "pagerduty/P1"))
        assert action.status == ActionStatus.FAILED
        assert "read-only" in action.result
    finally:
        await made.engine.stop()
        await made.fake.stop()
        await made.http.aclose()
