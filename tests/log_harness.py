"""A real incident, lived through by a real Engine against the sandbox, to read back from the log.

The sandbox (Alertmanager stand-in + fake PagerDuty, served on loopback) and the engine share one
FrozenClock, so every logged moment is exact. Nothing is written to the log by the test: the
stand-in notifies the engine's webhook listener and pages the fake PagerDuty as Alertmanager would
(dedup_key = sha256 of the group key); the fake escalates on the clock and pushes signed webhooks
back; the engine polls, applies, and acknowledges through the outbox. The log is whatever the
engine wrote while that happened.

The story (offsets from T0): 0 payment-service's ServiceDown fires; +1s Alertmanager notifies
and pages PagerDuty; +5m01s PagerDuty escalates (nobody acknowledged); +7m01s the operator
acknowledges from oncall-tui; +31m the alert resolves and +31m01s Alertmanager resolves the
incident. A second, warning alert fires at +40m and stays open, and a silence ending three hours
later is created, for the handoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from oncall_tui.clock import FrozenClock
from oncall_tui.config import Config, validate_config
from oncall_tui.engine import ActionRequest, Engine
from oncall_tui.events import EngineEvent, SnapshotChanged
from oncall_tui.models import Incident, LogEntry
from oncall_tui.sandbox.fake_pagerduty import FakePagerDuty
from oncall_tui.sandbox.fake_statuspage import FakeStatuspage
from oncall_tui.sandbox.runner import Sandbox
from oncall_tui.sandbox.standin import StandinAlertmanager, format_time
from oncall_tui.store import Store

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
PAYMENTS = {"alertname": "ServiceDown", "severity": "critical", "service": "payment-service"}
SEARCH = {"alertname": "HighLatency", "severity": "warning", "service": "search"}


async def until(predicate: Callable[[], Any], *, within: float = 10.0) -> None:
    """Bounded polling for a condition reached asynchronously (sync or async predicate)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@dataclass
class World:
    clock: FrozenClock
    sandbox: Sandbox
    engine: Engine
    store: Store
    config: Config
    http: httpx.AsyncClient
    page: FakeStatuspage | None = None

    @property
    def pagerduty(self) -> FakePagerDuty:
        assert self.sandbox.pagerduty is not None
        return self.sandbox.pagerduty

    @property
    def standin(self) -> StandinAlertmanager:
        # No public accessor on Sandbox yet; the harness needs the stand-in to flush it by hand.
        return self.sandbox._standins[0]

    @property
    def am_url(self) -> str:
        return self.sandbox.alertmanager_urls[0]

    async def post_alert(
        self, labels: dict[str, str], *, summary: str, ends_at: datetime | None = None
    ) -> None:
        now = self.clock.now()
        body = {
            "labels": labels,
            "annotations": {"summary": summary},
            "startsAt": format_time(now if ends_at is None else now - timedelta(hours=1)),
            # Far ahead while firing: a frozen clock must not let the alert time out.
            "endsAt": format_time(ends_at or now + timedelta(days=1)),
        }
        if ends_at is not None:
            del body["startsAt"]  # keep the original start; Alertmanager merges by fingerprint
        response = await self.http.post(f"{self.am_url}/api/v2/alerts", json=[body])
        response.raise_for_status()

    async def refresh(self) -> None:
        """Poll everything now; wait for the Alertmanager snapshot and the PagerDuty poll.

        Waiting for both keeps a poll from finding, later, what the next step causes.
        """
        arrived = asyncio.Event()

        def listener(event: EngineEvent) -> None:
            if isinstance(event, SnapshotChanged):
                arrived.set()

        polls = self.pagerduty_polls()
        unsubscribe = self.engine.subscribe(listener)
        try:
            self.engine.refresh_now()
            await asyncio.wait_for(arrived.wait(), timeout=10.0)
        finally:
            unsubscribe()
        await until(lambda: self.pagerduty_polls() > polls)

    async def logged(self, kind: str, source: str = "") -> list[LogEntry]:
        return await self.store.entries(
            kinds=[kind], sources=[source] if source else [], newest_first=False, limit=0
        )

    async def wait_logged(self, kind: str, count: int = 1, source: str = "") -> list[LogEntry]:
        async def enough() -> bool:
            return len(await self.logged(kind, source)) >= count

        await until(enough)
        return await self.logged(kind, source)

    def pagerduty_polls(self) -> int:
        """Incident polls done so far (no public counter on Engine; read for ordering only)."""
        part = self.engine._pagerduty
        assert part is not None
        return part.incidents_loop.polls

    def incident(self) -> Incident:
        return next(i for i in self.engine.snapshot.incidents if i.service == "payment-service")


def _silence_ids() -> Callable[[], str]:
    ids = iter(range(1, 1000))
    return lambda: f"00000000-0000-4000-8000-{next(ids):012d}"


def _config(sandbox: Sandbox, log_path: Path) -> Config:
    data = sandbox.config_data(log_path=log_path)
    # Only the test decides when the engine polls; webhooks arrive as they are sent.
    data["poll"] = {"alerts": "1h", "incidents": "1h", "oncall": "1h", "statuspage": "1h"}
    return validate_config(data, "<log-harness>")


@asynccontextmanager
async def world(tmp_path: Path, *, statuspage: bool = False) -> AsyncIterator[World]:
    """The sandbox and a started engine; with `statuspage`, also the sandbox's fake Statuspage
    and the engine's automation opening public incidents (resolved after 5 quiet minutes)."""
    clock = FrozenClock(T0)
    sandbox = Sandbox(
        clock=clock,
        workdir=tmp_path / "sandbox",
        backend="standin",
        scenario=False,
        pagerduty_time_scale=1.0,  # escalation delays in real minutes of the frozen clock
        opsgenie=False,  # Opsgenie rows are written with the engine's own row writer instead
        statuspage=statuspage,
        statuspage_resolve_after="5m",
    )
    await sandbox.start()
    assert sandbox.pagerduty is not None
    # The story drives both by hand, so that the log's order is repeatable.
    await sandbox.pagerduty.stop()
    for standin in sandbox._standins:
        await standin.stop()
        # Repeatable silence ids for the snapshots (the Sandbox does not pass `new_id` on).
        standin._new_id = _silence_ids()
    store: Store | None = None
    engine: Engine | None = None
    http = httpx.AsyncClient(timeout=5.0)
    try:
        config = _config(sandbox, tmp_path / "log.db")
        store = await Store.open(config.log.file, clock=clock, secrets=config.secrets())
        engine = Engine(config, clock=clock, store=store)
        await engine.start()
        await until(lambda: engine is not None and engine.snapshot.oncalls)
        yield World(clock, sandbox, engine, store, config, http, sandbox.statuspage)
    finally:
        if engine is not None:
            await engine.stop()
        if store is not None:
            await store.close()
        await http.aclose()
        await sandbox.stop()


async def live_incident(w: World) -> Incident:
    """Fire, page, escalate, acknowledge, resolve: the story in the module docstring.

    Alertmanager's notifier and PagerDuty's webhooks are driven by hand (`flush`, `tick`) and each
    step waits for what it causes to be logged, so the log's order is the same on every run: a
    notification wakes every poll at once, and two polls finding news at the same moment would
    log it in either order.
    """
    fake, notifier = w.pagerduty, w.standin
    await w.post_alert(PAYMENTS, summary="payment-service is down")
    await w.refresh()  # the poll sees it first
    await w.wait_logged("alert.firing")

    w.clock.advance(1)
    await notifier.flush()  # notifies the listener; the relay pages PagerDuty first
    await w.wait_logged("webhook", source="alertmanager")
    await fake.tick()  # PagerDuty's webhook says it paged
    await w.wait_logged("incident.triggered", source="pagerduty")
    await until(lambda: any(i.service == "payment-service" for i in w.engine.snapshot.incidents))

    w.clock.advance(5 * 60)  # level 1's delay passes unacknowledged: PagerDuty escalates
    polls = w.pagerduty_polls()
    await fake.tick()
    await w.wait_logged("incident.escalated", source="pagerduty")
    await until(lambda: w.pagerduty_polls() > polls)  # the escalation webhook wakes a poll

    w.clock.advance(2 * 60)
    incident = w.incident()
    action = await w.engine.act(ActionRequest("incident.acknowledge", incident.key))
    assert action.status.value == "done", action.result
    await fake.tick()  # its webhook comes back; the acknowledgement is not logged twice
    await w.wait_logged("webhook", 3, source="pagerduty")

    w.clock.advance(24 * 60 - 1)
    await w.post_alert(PAYMENTS, summary="payment-service is down", ends_at=w.clock.now())
    await w.refresh()
    await w.wait_logged("alert.resolved")
    w.clock.advance(1)
    await notifier.flush()  # resolved notification: the relay resolves the PagerDuty incident
    await w.wait_logged("webhook", 2, source="alertmanager")
    await fake.tick()
    await w.wait_logged("incident.resolved", source="pagerduty")
    await w.wait_logged("webhook", 4, source="pagerduty")
    return incident


async def handoff_scene(w: World) -> None:
    """After the incident: a warning still firing and a silence that ends in three hours."""
    w.clock.advance(9 * 60 - 1)
    await w.post_alert(SEARCH, summary="p99 latency above 1s")
    await w.refresh()
    await w.wait_logged("alert.firing", 2)
    action = await w.engine.act(
        ActionRequest(
            "silence.create",
            target="",
            params={
                "cluster": "sandbox",
                "matchers": ['alertname="DiskFull"'],
                "duration_seconds": 3 * 3600,
                "comment": "disk cleanup OPS-7",
            },
        )
    )
    assert action.status.value == "done", action.result
    await w.refresh()
    await w.wait_logged("silence.created")
