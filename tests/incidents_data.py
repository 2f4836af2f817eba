"""A real Engine over the Alertmanager stand-in and the fake PagerDuty, for the UI tests.

The fake is seeded (its directory: seven users, two escalation policies with three and two
levels, three rotating schedules) and given a deterministic night at 02:00 UTC on the harness's
frozen clock: incidents in every state, one opened by the Alertmanager group of the stand-in's
two ServiceDown alerts, one with a markup-looking title and a note. Every exchange with the fake
is checked against PagerDuty's published specs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from spec_check import SpecValidator, ValidatingTransport
from ui_harness import START, demo_alerts, eventually, make_config

from oncall_tui.clock import FrozenClock
from oncall_tui.config import Config
from oncall_tui.engine import Engine
from oncall_tui.engine.correlation import group_dedup_key
from oncall_tui.models import Incident
from oncall_tui.sandbox.fake_pagerduty import FakePagerDuty
from oncall_tui.sandbox.standin import StandinAlertmanager, group_key

TOKEN = "pd-token-for-ui-tests"
ROUTING_KEY = "U" * 32
PD_API = "http://api.pagerduty.test"
PD_EVENTS = "http://events.pagerduty.test"
PAY, SRC = "PSVCPAY", "PSVCSRC"  # the fake's seeded services


class Routes(httpx.AsyncBaseTransport):
    """Each host to its in-process server; PagerDuty refuses connections while `pd_down`."""

    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes
        self.pd_down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.pd_down and request.url.host.endswith("pagerduty.test"):
            raise httpx.ConnectError("connection refused", request=request)
        return await self.routes[request.url.host].handle_async_request(request)


@dataclass
class PagerDutyRig:
    config: Config
    clock: FrozenClock
    standin: StandinAlertmanager
    fake: FakePagerDuty
    engine: Engine
    transport: Routes
    http: httpx.AsyncClient
    validating: list[ValidatingTransport]

    def incident(self, number: int) -> Incident:
        return next(i for i in self.engine.snapshot.incidents if i.number == number)


def seed_incidents(fake: FakePagerDuty) -> None:
    """A night in the fake: incidents in every state, opened before the frozen 02:00."""
    book = fake.book

    def trigger(service: str, key: str, summary: str, minutes_ago: float, severity: str) -> Any:
        payload = {"summary": summary, "source": "alertmanager", "severity": severity}
        return book.trigger(service, key, payload, START - timedelta(minutes=minutes_ago))

    # Opened by the Alertmanager group of the two ServiceDown alerts (DESIGN.md section 6).
    trigger(PAY, SERVICE_DOWN_KEY, "[FIRING:2] ServiceDown payment-service", 7, "critical")
    latency = trigger(
        PAY, "latency", "p99 latency above 2s on checkout [bold]not markup[/bold]", 42, "warning"
    )
    book.update(latency, {"escalation_level": 2}, "PALICE2", START - timedelta(minutes=40))
    book.update(latency, {"status": "acknowledged"}, "PCAROL4", START - timedelta(minutes=35))
    book.add_note(
        latency, "rolled back deploy 4521, watching p99", "PALICE2", START - timedelta(minutes=30)
    )
    disk = trigger(SRC, "disk", "Disk filling on db-1: /var/lib/postgres full in 6h", 186, "error")
    book.update(disk, {"status": "acknowledged"}, "PFRANK5", START - timedelta(minutes=180))
    lag = trigger(SRC, "lag", "Search index lag", 55, "warning")
    book.update(lag, {"status": "resolved"}, "PFRANK5", START - timedelta(minutes=20))
    cert = trigger(SRC, "cert", "Certificate for search expires in 7 days", 1, "info")
    cert.urgency = "low"


SERVICE_DOWN_KEY = group_dedup_key(
    group_key({"alertname": "ServiceDown", "service": "payment-service"})
)


def build_rig(tmp_path: Path, **config: Any) -> PagerDutyRig:
    """Everything built, nothing started: the engine starts in the loop that will use it."""
    clock = FrozenClock(START)
    standin = StandinAlertmanager(clock=clock)
    standin.put_alerts(demo_alerts())
    fake = FakePagerDuty(
        clock=clock, api_token=TOKEN, routing_keys=[ROUTING_KEY], operator_email="nina@example.com"
    )
    seed_incidents(fake)
    validating = [
        ValidatingTransport(httpx.ASGITransport(app=fake.app), SpecValidator.load(name))
        for name in ("pagerduty-rest", "pagerduty-events")
    ]
    transport = Routes(
        {
            "prod-a.invalid": httpx.ASGITransport(app=standin.app),
            "api.pagerduty.test": validating[0],
            "events.pagerduty.test": validating[1],
        }
    )
    pagerduty = {"api_token": TOKEN, "routing_key": ROUTING_KEY, "api_url": PD_API,
                 "events_url": PD_EVENTS}  # fmt: skip
    config.setdefault("poll", {"alerts": "1h", "incidents": "1h", "oncall": "1h"})
    cfg = make_config(tmp_path, pagerduty=pagerduty, **config)
    http = httpx.AsyncClient(transport=transport, timeout=5.0)
    engine = Engine(cfg, clock=clock, http=http, listen_webhooks=False)
    return PagerDutyRig(cfg, clock, standin, fake, engine, transport, http, validating)


async def start_rig(rig: PagerDutyRig) -> None:
    """Start the engine and wait for its first complete picture of both systems."""
    await rig.engine.start()
    await eventually(lambda: _ready(rig.engine))


async def stop_rig(rig: PagerDutyRig) -> None:
    await rig.engine.stop()
    await rig.http.aclose()
    for checked in rig.validating:
        assert checked.violations == []


@contextlib.asynccontextmanager
async def pagerduty_engine(tmp_path: Path, **config: Any) -> AsyncIterator[PagerDutyRig]:
    """An engine that polled the stand-in and the fake PagerDuty once, every exchange with the
    fake checked against PagerDuty's published specs."""
    rig = build_rig(tmp_path, **config)
    try:
        await start_rig(rig)
        yield rig
    finally:
        await stop_rig(rig)


def _ready(engine: Engine) -> bool:
    snapshot = engine.snapshot
    pd = snapshot.health_of("pagerduty")
    return (
        pd is not None
        and pd.last_success is not None
        and len(snapshot.incidents) == 5
        and bool(snapshot.oncalls)
        and bool(snapshot.shifts)
        and bool(snapshot.alerts)
        and engine.alerts_for_incident(next(i for i in snapshot.incidents if i.number == 1)) != []
    )
