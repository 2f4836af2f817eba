"""providers/pagerduty_events.py: Events API v2 requests, answers, errors and retries.

The server is a small stateful Events endpoint (Starlette) that answers as PagerDuty documents
(202 with the dedup_key, 400 for a bad event, 429 when over the limit); every exchange passes
tests/spec_check.py's ValidatingTransport for the Events spec.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from spec_check import SpecValidator, ValidatingTransport
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oncall_tui.clock import FrozenClock
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.pagerduty_events import (
    PagerDutyEventsClient,
    enqueue_url,
    event_severity,
)

ROUTING_KEY = "R0123456789abcdef0123456789abcde"  # 32 characters, as PagerDuty's are
EVENTS = "http://events.test"


class RecordingClock(FrozenClock):
    def __init__(self) -> None:
        super().__init__(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


class EventsServer:
    """Accepts events for one routing key; `limited` first requests get 429."""

    def __init__(self, *, limited: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.limited = limited
        self.app = Starlette(routes=[Route("/v2/enqueue", self.enqueue, methods=["POST"])])

    async def enqueue(self, request: Request) -> Response:
        event = json.loads(await request.body())
        self.events.append(event)
        if len(self.events) <= self.limited:
            body: dict[str, Any] = {
                "status": "throttle event",
                "message": "Requests for this service are arriving too quickly.",
            }
            return JSONResponse(body, 429)
        if event.get("routing_key") != ROUTING_KEY:
            body = {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": [f"Invalid routing key {event.get('routing_key')}"],
            }
            return JSONResponse(body, 400)
        key = event.get("dedup_key") or "generated-by-pagerduty"
        return JSONResponse(
            {"status": "success", "message": "Event processed", "dedup_key": key}, 202
        )


@pytest.fixture
def server() -> EventsServer:
    return EventsServer()


@pytest.fixture
async def http(server: EventsServer) -> AsyncIterator[httpx.AsyncClient]:
    transport = ValidatingTransport(
        httpx.ASGITransport(app=server.app), SpecValidator.load("pagerduty-events")
    )
    async with httpx.AsyncClient(transport=transport) as client:
        yield client
    assert transport.violations == []


async def test_trigger_sends_a_complete_event_and_returns_its_key(
    http: httpx.AsyncClient, server: EventsServer
) -> None:
    client = PagerDutyEventsClient(EVENTS, ROUTING_KEY, http, clock=RecordingClock())
    key = await client.trigger(
        summary="payment-service is down",
        source="pay-1",
        severity="critical",
        custom_details={"labels": {"alertname": "ServiceDown"}},
        component="payment-service",
        group="platform",
        class_="ServiceDown",
    )
    [event] = server.events
    assert event == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": "payment-service is down",
            "source": "pay-1",
            "severity": "critical",
            "timestamp": "2026-03-01T02:00:00Z",
            "component": "payment-service",
            "group": "platform",
            "class": "ServiceDown",
            "custom_details": {"labels": {"alertname": "ServiceDown"}},
        },
    }
    # A key made here, so that sending the event again cannot open a second incident.
    assert len(key) == 32


async def test_given_dedup_key_is_used_for_trigger_ack_and_resolve(
    http: httpx.AsyncClient, server: EventsServer
) -> None:
    client = PagerDutyEventsClient(EVENTS, ROUTING_KEY, http, clock=RecordingClock())
    key = await client.trigger(summary="s", source="src", severity="info", dedup_key="grp-1")
    await client.acknowledge("grp-1")
    await client.resolve("grp-1")
    assert key == "grp-1"
    assert [(e["event_action"], e["dedup_key"]) for e in server.events] == [
        ("trigger", "grp-1"),
        ("acknowledge", "grp-1"),
        ("resolve", "grp-1"),
    ]
    assert "payload" not in server.events[1]
    assert "payload" not in server.events[2]


async def test_a_long_summary_is_cut_to_what_pagerduty_accepts(
    http: httpx.AsyncClient, server: EventsServer
) -> None:
    client = PagerDutyEventsClient(EVENTS, ROUTING_KEY, http, clock=RecordingClock())
    await client.trigger(summary="x" * 5000, source="src", severity="warning")
    assert len(server.events[0]["payload"]["summary"]) == 1024


@pytest.mark.parametrize(
    "kwargs",
    [
        {"summary": "s", "source": "src", "severity": "page"},
        {"summary": " ", "source": "src", "severity": "info"},
        {"summary": "s", "source": "src", "severity": "info", "dedup_key": "k" * 256},
    ],
)
async def test_events_pagerduty_would_refuse_are_not_sent(
    http: httpx.AsyncClient, server: EventsServer, kwargs: dict[str, Any]
) -> None:
    client = PagerDutyEventsClient(EVENTS, ROUTING_KEY, http, clock=RecordingClock())
    with pytest.raises(ProviderError) as caught:
        await client.trigger(**kwargs)
    assert not caught.value.retryable
    assert server.events == []


async def test_a_refused_event_is_final_and_never_shows_the_routing_key(
    http: httpx.AsyncClient, server: EventsServer
) -> None:
    wrong = "Wwrongwrongwrongwrongwrongwrong1"
    client = PagerDutyEventsClient(EVENTS, wrong, http, clock=RecordingClock())
    with pytest.raises(ProviderError) as caught:
        await client.resolve("grp-1")
    assert len(server.events) == 1
    error = caught.value
    assert (error.status, error.retryable) == (400, False)
    assert "Event object is invalid" in error.message
    assert wrong not in str(error) + repr(error) + repr(client)


async def test_429_is_retried_then_accepted() -> None:
    server = EventsServer(limited=2)
    clock = RecordingClock()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app)) as http:
        client = PagerDutyEventsClient(EVENTS, ROUTING_KEY, http, clock=clock, attempts=3)
        assert await client.trigger(summary="s", source="x", severity="error", dedup_key="k") == "k"
    assert len(server.events) == 3
    assert len(clock.sleeps) == 2


def test_enqueue_url_from_the_configured_events_url() -> None:
    assert enqueue_url("https://events.pagerduty.com") == "https://events.pagerduty.com/v2/enqueue"
    assert enqueue_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/v2/enqueue"
    assert (
        enqueue_url("https://events.eu.pagerduty.com/v2")
        == "https://events.eu.pagerduty.com/v2/enqueue"
    )
    assert enqueue_url("http://x/v2/enqueue") == "http://x/v2/enqueue"


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ("critical", "critical"),
        ("Page", "critical"),
        ("error", "error"),
        ("high", "error"),
        ("warning", "warning"),
        ("info", "info"),
        ("none", "info"),
        ("", "info"),
    ],
)
def test_alert_severity_labels_map_to_event_severities(label: str, severity: str) -> None:
    assert event_severity(label) == severity
