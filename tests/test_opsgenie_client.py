"""OpsgenieClient against the fake Opsgenie; every request and answer is checked against the spec.

The fake's own rules are tested in test_fake_opsgenie.py; here: the client's mapping of alerts to
Incidents, paging, following asynchronous requests through their 404s, schedules and on-calls,
errors (auth, missing alert, rate limit retried) without the key in any message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from spec_check_swagger import SwaggerSpecValidator, ValidatingTransport

from oncall_tui.clock import FrozenClock
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.opsgenie import (
    EU_API_URL,
    OpsgenieClient,
    RequestPending,
    current_shift_end,
    parse_alert,
)
from oncall_tui.sandbox.fake_opsgenie import FakeOpsgenie

KEY = "og-client-key-4242"
START = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)


class StillClock(FrozenClock):
    """Frozen wall time whose sleeps return at once and are recorded (backoff is asserted on,
    not waited for)."""

    def __init__(self, at: datetime) -> None:
        super().__init__(at)
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


@dataclass
class Setup:
    fake: FakeOpsgenie
    client: OpsgenieClient
    transport: ValidatingTransport
    http: httpx.AsyncClient


class _Hosts(httpx.AsyncBaseTransport):
    """Records which host each request went to, then passes it on."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.hosts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def og() -> AsyncIterator[Setup]:
    clock = StillClock(START)
    fake = FakeOpsgenie(clock=clock, api_key=KEY, seed=3, processing_polls=2)
    transport = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SwaggerSpecValidator.load("opsgenie")
    )
    async with httpx.AsyncClient(transport=transport) as http:
        client = OpsgenieClient(
            "https://api.opsgenie.com/",
            KEY,
            http,
            clock=clock,
            user="nina@example.com",
        )
        yield Setup(fake, client, transport, http)
    assert transport.violations == []


async def seed(setup: Setup, count: int, **fields: str) -> None:
    """Alerts created through the API, as an integration would, then processed."""
    for index in range(count):
        body = {"message": f"alert {index}", "alias": f"alias-{index}", **fields}
        response = await setup.http.post(
            "https://api.opsgenie.com/v2/alerts",
            json=body,
            headers={"Authorization": f"GenieKey {KEY}"},
        )
        assert response.status_code == 202
    setup.fake.process_pending()


async def test_open_alerts_become_incidents(og: Setup) -> None:
    await seed(og, 2, priority="P2")
    incidents = await og.client.alerts()
    assert [i.title for i in incidents] == ["alert 1", "alert 0"]
    first = incidents[1]
    assert first.system == "opsgenie"
    assert first.key == f"opsgenie/{first.id}"
    assert first.status == "open"
    assert first.priority == "P2"
    assert first.urgency == ""
    assert first.dedup_key == "alias-0"
    assert first.number == 1
    assert first.created_at == START
    assert first.last_change_at == START
    assert first.is_open


async def test_paging_stops_at_the_limit_and_at_a_short_page(og: Setup) -> None:
    await seed(og, 130)
    og.transport.exchanges.clear()
    assert len(await og.client.alerts(limit=110)) == 110
    everything = await og.client.alerts(limit=500)
    assert len(everything) == 130
    assert len({i.id for i in everything}) == 130
    assert [path for _m, path, _s in og.transport.exchanges] == ["/v2/alerts"] * 4


async def test_acknowledge_is_followed_through_its_404s(og: Setup) -> None:
    await seed(og, 1)
    (alert,) = await og.client.alerts()
    og.transport.exchanges.clear()
    request_id = await og.client.acknowledge(alert.id, note="on it")
    status = await og.client.wait_for_request(request_id)
    assert status.success
    assert status.action == "Acknowledge"
    assert status.alert_id == alert.id
    assert status.processed_at == START
    polls = [code for _m, path, code in og.transport.exchanges if "/requests/" in path]
    assert polls == [404, 404, 200]
    after = await og.client.alert(alert.id)
    assert after.status == "acknowledged"
    assert after.assignee == "nina@example.com"
    assert after.acknowledged_by == ("nina@example.com",)
    notes = await og.client.notes(alert.id)
    assert [(n.content, n.user) for n in notes] == [("on it", "nina@example.com")]


async def test_close_note_and_escalate_by_alias_and_name(og: Setup) -> None:
    await seed(og, 1)
    note = await og.client.add_note("alias-0", "rolled back", identifier_type="alias")
    escalate = await og.client.escalate(
        "alias-0", "platform_escalation", by="name", identifier_type="alias"
    )
    close = await og.client.close("alias-0", identifier_type="alias")
    for request_id in (note, escalate, close):
        assert (await og.client.wait_for_request(request_id)).success
    alert = await og.client.alert("1", "tiny")
    assert alert.status == "closed"
    assert not alert.is_open
    assert await og.client.alerts() == []
    assert [a.id for a in await og.client.alerts(query="status=closed")] == [alert.id]
    # The sent bodies name who acted and from where.
    bodies = [body for method, path, body in og.fake.received if "/alias-0/" in path]
    assert all(b["user"] == "nina@example.com" and b["source"] == "oncall-tui" for b in bodies)
    assert bodies[1]["escalation"] == {"type": "escalation", "name": "platform_escalation"}


async def test_escalate_by_id_and_a_failed_request(og: Setup) -> None:
    await seed(og, 1)
    (alert,) = await og.client.alerts()
    assert alert.escalation_policy_id == ""
    escalations = await og.client.escalations()
    assert [(e.name, e.team) for e in escalations] == [
        ("platform_escalation", "Platform"),
        ("search_escalation", "Search"),
    ]
    assert [(r.delay_minutes, r.recipient_type, r.recipient) for r in escalations[0].rules] == [
        (0, "schedule", "platform_schedule"),
        (10, "schedule", "search_schedule"),
    ]
    search = escalations[1]
    done = await og.client.wait_for_request(await og.client.escalate(alert.id, search.id))
    assert done.success
    # The alert now names the escalation it went to.
    assert (await og.client.alert(alert.id)).escalation_policy_id == search.id
    assert (await og.client.alerts())[0].escalation_policy_id == search.id
    failed = await og.client.wait_for_request(await og.client.acknowledge("no-such-alert"))
    assert not failed.success
    assert failed.status == "Alert does not exist"


async def test_a_request_still_unprocessed_raises_request_pending() -> None:
    clock = StillClock(START)
    fake = FakeOpsgenie(clock=clock, api_key=KEY, processing_polls=1000)
    transport = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SwaggerSpecValidator.load("opsgenie")
    )
    async with httpx.AsyncClient(transport=transport) as http:
        client = OpsgenieClient("https://api.opsgenie.com", KEY, http, clock=clock)
        request_id = await client.acknowledge("whatever")
        assert await client.request_status(request_id) is None
        with pytest.raises(RequestPending) as caught:
            await client.wait_for_request(request_id, timeout=5.0)
    assert caught.value.request_id == request_id
    assert caught.value.retryable
    # Backoff grows, is capped, and the sleeps add up to the budget exactly.
    assert clock.sleeps[0] == pytest.approx(0.25)
    assert max(clock.sleeps) <= 2.0
    assert sum(clock.sleeps) == pytest.approx(5.0)
    assert transport.violations == []


async def test_errors_name_the_problem_and_never_the_key(og: Setup) -> None:
    wrong = OpsgenieClient(
        "https://api.opsgenie.com", "wrong-key-999", og.http, clock=StillClock(START)
    )
    with pytest.raises(ProviderError) as caught:
        await wrong.alerts()
    assert caught.value.status == 401
    assert "Could not authenticate" in str(caught.value)
    assert "wrong-key-999" not in str(caught.value) + repr(caught.value) + repr(wrong)
    with pytest.raises(ProviderError) as missing:
        await og.client.alert("nope")
    assert missing.value.status == 404
    assert str(missing.value) == "opsgenie: HTTP 404: Alert does not exist"
    with pytest.raises(ProviderError, match="note cannot be empty"):
        await og.client.add_note("x", "  ")


async def test_rate_limited_reads_are_retried(og: Setup) -> None:
    await seed(og, 1)
    og.fake.throttle(1)
    og.transport.exchanges.clear()
    assert len(await og.client.alerts()) == 1
    assert [code for _m, _p, code in og.transport.exchanges] == [429, 200]


async def test_eu_and_custom_urls_are_used_as_given() -> None:
    fake = FakeOpsgenie(clock=FrozenClock(START), api_key=KEY)
    hosts = _Hosts(
        ValidatingTransport(
            httpx.ASGITransport(app=fake.app), SwaggerSpecValidator.load("opsgenie")
        )
    )
    async with httpx.AsyncClient(transport=hosts) as http:
        for url in (EU_API_URL, "https://opsgenie.internal.example:8443/"):
            await OpsgenieClient(url, KEY, http, clock=StillClock(START)).schedules()
    assert hosts.hosts == ["api.eu.opsgenie.com", "opsgenie.internal.example"]


async def test_schedules_oncalls_next_and_shifts(og: Setup) -> None:
    schedules = await og.client.schedules()
    assert [(s.name, s.team) for s in schedules] == [
        ("platform_schedule", "Platform"),
        ("search_schedule", "Search"),
    ]
    search = schedules[1]
    (now,) = await og.client.oncalls(search.id)
    (following,) = await og.client.next_oncalls(search.name, by="name")
    assert (now.system, now.policy, now.level, now.policy_id) == (
        "opsgenie",
        "search_schedule",
        1,
        search.id,
    )
    assert now.user.endswith("@example.com")
    assert now.user_email == now.user
    assert following.user != now.user
    shifts = await og.client.shifts(search.id, days=7)
    assert shifts[0].user == now.user
    assert shifts[1].user == following.user
    assert all(s.system == "opsgenie" and s.schedule == "search_schedule" for s in shifts)
    assert shifts[-1].end == START + timedelta(days=7)
    # The current shift ends at the next 09:00 UTC handover.
    assert current_shift_end(START, shifts, now.user) == datetime(2026, 3, 5, 9, tzinfo=UTC)
    (tomorrow,) = await og.client.oncalls(search.id, at=START + timedelta(days=1))
    assert tomorrow.user == following.user


def test_documented_alert_example_parses() -> None:
    """Opsgenie's Get Alert example (docs.opsgenie.com alert-api), trimmed to what we read."""
    incident = parse_alert(
        {
            "id": "70413a06-38d6-4c85-92b8-5ebc900d42e2",
            "tinyId": "1791",
            "alias": "event_573",
            "message": "Our servers are in danger",
            "status": "open",
            "acknowledged": True,
            "createdAt": "2017-05-24T19:38:33.472Z",
            "updatedAt": "2017-05-24T19:38:48.143Z",
            "owner": "",
            "priority": "P3",
            "report": {"ackTime": 15702, "acknowledgedBy": "Alert API"},
            "entity": "EC2",
        }
    )
    assert incident.status == "acknowledged"
    assert incident.number == 1791
    assert incident.service == "EC2"
    assert incident.created_at == datetime(2017, 5, 24, 19, 38, 33, 472000, tzinfo=UTC)
    assert incident.acknowledged_by == ("Alert API",)
