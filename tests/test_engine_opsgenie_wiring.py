"""The whole engine with Opsgenie configured, the fake Opsgenie behind the spec-validating
transport: alerts and health in the snapshot, actions on "opsgenie/<id>" through the one door
(pending until Opsgenie processed them), test alerts fired at Opsgenie, notes for the details.

Runs once engine/core.py wires in `OpsgeniePart` (it skips until then)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from spec_check_swagger import SwaggerSpecValidator, ValidatingTransport

from oncall_tui.clock import FrozenClock
from oncall_tui.config import load_config_text
from oncall_tui.engine import ActionRequest, Engine
from oncall_tui.events import ActionChanged, EngineEvent
from oncall_tui.models import ActionStatus
from oncall_tui.sandbox.fake_opsgenie import FakeOpsgenie

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
KEY = "og-wiring-key-0001"
API = "http://api.opsgenie.test"


class OnlyOpsgenie(httpx.AsyncBaseTransport):
    """The fake Opsgenie answers; the (unused) Alertmanager address is unreachable."""

    def __init__(self, opsgenie: httpx.AsyncBaseTransport) -> None:
        self.opsgenie = opsgenie

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "api.opsgenie.test":
            raise httpx.ConnectError("connection refused", request=request)
        return await self.opsgenie.handle_async_request(request)


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


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Engine, list[EngineEvent]]]:
    if not hasattr(Engine, "opsgenie_configured"):
        pytest.skip("engine/core.py does not wire OpsgeniePart yet")
    clock = FrozenClock(T0)
    fake = FakeOpsgenie(clock=clock, api_key=KEY, seed=2, processing_seconds=None)
    validating = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SwaggerSpecValidator.load("opsgenie")
    )
    config = load_config_text(
        f"""
operator: {{name: Demo Operator, email: demo@example.com}}
alertmanagers: [{{name: am, url: "http://127.0.0.1:9"}}]
opsgenie: {{api_key: "{KEY}", api_url: "{API}"}}
poll: {{incidents: 0.05s, oncall: 60s}}
log: {{path: "{tmp_path / "log.db"}"}}
""",
        "test.yaml",
        {},
    )
    http = httpx.AsyncClient(transport=OnlyOpsgenie(validating), timeout=5.0)
    engine = Engine(config, clock=clock, http=http, listen_webhooks=False)
    events: list[EngineEvent] = []
    engine.subscribe(events.append)
    await engine.start()
    part = getattr(engine, "_opsgenie", None)
    if part is not None:
        part.client.poll_interval = 0.005
    try:
        yield engine, events
    finally:
        await engine.stop()
        await http.aclose()
    assert validating.violations == []


async def test_alerts_actions_and_test_alerts_through_the_engine(
    rig: tuple[Engine, list[EngineEvent]],
) -> None:
    engine, events = rig
    assert getattr(engine, "opsgenie_configured", False)
    fired = await engine.act(
        ActionRequest(
            "alert.fire",
            "",
            {"labels": {"alertname": "Probe", "severity": "warning"}, "to": "opsgenie"},
        )
    )
    assert fired.status == ActionStatus.DONE, fired.result
    await eventually(lambda: any(i.system == "opsgenie" for i in engine.snapshot.incidents))
    [alert] = [i for i in engine.snapshot.incidents if i.system == "opsgenie"]
    assert alert.priority == "P3"
    health = engine.snapshot.health_of("opsgenie")
    assert health is not None
    assert health.reachable is True
    events.clear()
    done = await engine.act(ActionRequest("incident.acknowledge", alert.key))
    assert done.status == ActionStatus.DONE, done.result
    # Shown pending first, done once Opsgenie had processed the request.
    states = [e.action.status for e in events if isinstance(e, ActionChanged)]
    assert states == [ActionStatus.PENDING, ActionStatus.DONE]
    [shown] = [i for i in engine.snapshot.incidents if i.key == alert.key]
    assert shown.status == "acknowledged"
    noted = await engine.act(ActionRequest("incident.note", alert.key, {"content": "on it"}))
    assert noted.status == ActionStatus.DONE, noted.result
    assert [n.content for n in await engine.incident_notes(shown)] == ["on it"]
    # A PagerDuty target is not Opsgenie's to take, and PagerDuty is not configured.
    other = await engine.act(ActionRequest("incident.acknowledge", "pagerduty/PX"))
    assert other.status == ActionStatus.FAILED
