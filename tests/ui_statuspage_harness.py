"""A real Engine, the Alertmanager stand-in and the fake Statuspage, and a host App for the view.

Shared by the Status page view's Pilot and snapshot tests. Nothing here is a mock: every exchange
with the fake Statuspage passes through a spec-validating transport, and what a test asserts about
an action is read back from the fake. Snapshots come from the engine's own Statuspage poll and
actions go through `Engine.act`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from spec_check import SpecValidator, ValidatingTransport
from textual import events, on
from textual.app import App, ComposeResult

from oncall_tui.clock import FrozenClock
from oncall_tui.config import Config, validate_config
from oncall_tui.engine import ActionRequest, Engine
from oncall_tui.events import ActionChanged, EngineEvent, SnapshotChanged
from oncall_tui.providers.statuspage import StatuspageClient
from oncall_tui.sandbox.fake_statuspage import FakeStatuspage
from oncall_tui.sandbox.standin import StandinAlertmanager
from oncall_tui.ui.messages import SubmitActions
from oncall_tui.ui.statuspage import StatuspageView

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
AM = "http://am.test"
SP = "http://sp.test"
API_KEY = "sp-test-key-not-secret"
PAGE_ID = "pg0001test"
COMPONENTS = {
    "API": "cmpapi000001",
    "Payments": "cmppay000002",
    "Checkout": "cmpchk000003",
    "Search": "cmpsrc000004",
    "Website": "cmpweb000005",
}
TEMPLATES = {
    "title": "Service disruption: {component}",
    "investigating": "We are investigating problems with {component}.",
    "resolved": "The problem affecting {component} has been resolved.",
    "custom": "Update for {ticket}: more soon.",
}


def make_config(
    *,
    statuspage: bool = True,
    read_only: bool = False,
    api_key: str = API_KEY,
    automation: bool = False,
    **extra: Any,
) -> Config:
    data: dict[str, Any] = {
        "operator": {"name": "Nina Patel", "email": "nina@example.com"},
        "alertmanagers": [{"name": "prod-a", "url": AM, "cluster": "prod"}],
        # Long enough that only refresh_now() polls: the tests decide when data arrives.
        "poll": {"alerts": "1h", "statuspage": "1h"},
        "webhooks": {"enabled": False},
        "read_only": read_only,
    }
    if statuspage:
        data["statuspage"] = {
            "api_key": api_key,
            "page_id": PAGE_ID,
            "api_url": f"{SP}/v1",
            "components": {"payments": COMPONENTS["Payments"]},
            "templates": TEMPLATES,
            "automation": {"enabled": automation},
        }
    data.update(extra)
    return validate_config(data, "test")


@dataclass
class Rig:
    engine: Engine
    fake: FakeStatuspage
    standin: StandinAlertmanager
    http: httpx.AsyncClient
    clock: FrozenClock
    transport: ValidatingTransport
    client: StatuspageClient = field(init=False)
    outcomes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = StatuspageClient(f"{SP}/v1", PAGE_ID, API_KEY, self.http, clock=self.clock)

    async def refresh(self) -> None:
        """Bring the engine's snapshot up to what the fake says now, through the engine."""
        truth = await self.client.components()
        unresolved = await self.client.unresolved_incidents()

        def current() -> bool:
            snapshot = self.engine.snapshot
            shown = {i.id: i for i in snapshot.status_incidents}
            return list(snapshot.components) == truth and all(
                i.id in shown and shown[i.id].updated_at == i.updated_at for i in unresolved
            )

        arrived = asyncio.Event()

        def listener(event: EngineEvent) -> None:
            if isinstance(event, SnapshotChanged) and current():
                arrived.set()

        unsubscribe = self.engine.subscribe(listener)
        try:
            self.engine.refresh_now()
            await asyncio.wait_for(arrived.wait(), timeout=5.0)
        finally:
            unsubscribe()

    async def act(self, request: ActionRequest) -> str:
        """Carry out one request as the app does; the outcome's summary (or the failure)."""
        action = await self.engine.act(request)
        result = f"{action.status.value}: {action.result}"
        self.outcomes.append(result)
        return result


async def scene(fake: FakeStatuspage, clock: FrozenClock) -> None:
    """One resolved incident from earlier tonight and one open, with two updates."""
    start = clock.now()
    clock.advance(-3 * 3600)
    search = await _raw(
        fake,
        "POST",
        "/incidents",
        {
            "name": "Search results delayed",
            "status": "investigating",
            "body": "Search results are slow to appear.",
            "components": {COMPONENTS["Search"]: "degraded_performance"},
        },
    )
    clock.advance(3600)
    await _raw(
        fake,
        "PATCH",
        f"/incidents/{search}",
        {
            "status": "resolved",
            "body": "Search is back to normal.",
            "components": {COMPONENTS["Search"]: "operational"},
        },
    )
    clock.advance(3600 + 1800)
    payments = await _raw(
        fake,
        "POST",
        "/incidents",
        {
            "name": "Elevated payment failures",
            "status": "investigating",
            "body": "Some card payments fail.",
            "components": {
                COMPONENTS["Payments"]: "partial_outage",
                COMPONENTS["Checkout"]: "degraded_performance",
            },
        },
    )
    clock.advance(20 * 60)
    await _raw(
        fake,
        "PATCH",
        f"/incidents/{payments}",
        {
            "status": "identified",
            "body": "A card processor is failing; we are moving traffic to the other one.",
        },
    )
    clock.advance((start - clock.now()).total_seconds())


async def _raw(fake: FakeStatuspage, method: str, path: str, incident: dict[str, Any]) -> str:
    """Set the scene straight on the fake's API, as another operator's browser would."""
    transport = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SpecValidator.load("statuspage")
    )
    async with httpx.AsyncClient(transport=transport, base_url=f"{SP}/v1") as http:
        response = await http.request(
            method,
            f"/pages/{PAGE_ID}{path}",
            json={"incident": incident},
            headers={"Authorization": f"OAuth {API_KEY}"},
        )
        response.raise_for_status()
        return str(response.json()["id"])


def build(tmp_path: Path, config: Config | None = None) -> Rig:
    clock = FrozenClock(T0)
    standin = StandinAlertmanager(clock=clock, resolve_timeout=86400.0)
    fake = FakeStatuspage(clock=clock, api_key=API_KEY, page_id=PAGE_ID, components=COMPONENTS)
    transport = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SpecValidator.load("statuspage")
    )
    http = httpx.AsyncClient(mounts={AM: httpx.ASGITransport(app=standin.app), SP: transport})
    settings = config or make_config(log={"path": str(tmp_path / "log.db")})
    engine = Engine(settings, clock=clock, http=http, listen_webhooks=False)
    return Rig(engine, fake, standin, http, clock, transport)


class Host(App[None]):
    """Hosts the view as the real app would: feeds snapshots, runs SubmitActions."""

    def __init__(self, rig: Rig) -> None:
        super().__init__()
        self.rig = rig
        self.engine = rig.engine
        self.clock = rig.clock
        self.submitted: list[SubmitActions] = []
        self._unsubscribe: Callable[[], None] | None = None
        self.animation_level = "none"

    def compose(self) -> ComposeResult:
        # Kept by reference: while a modal is on top, queries would search the modal.
        self.view = StatuspageView(self.engine, self.clock, id="statuspage")
        yield self.view

    def on_mount(self) -> None:
        self.view.update_snapshot(self.engine.snapshot)
        for table in self.view.query("#statuspage-incidents"):
            table.focus()
        self._unsubscribe = self.engine.subscribe(self._on_event)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _on_event(self, event: EngineEvent) -> None:
        if isinstance(event, SnapshotChanged):
            self.view.update_snapshot(event.snapshot)
        elif isinstance(event, ActionChanged):
            self.view.action_changed(event.action)

    def on_submit_actions(self, message: SubmitActions) -> None:
        self.submitted.append(message)
        self.run_worker(self._run(message.requests), group="actions")

    async def _run(self, requests: Sequence[ActionRequest]) -> None:
        for request in requests:
            await self.rig.act(request)
        await self.rig.refresh()


class SceneHost(Host):
    """A Host that builds its engine and scene inside the app's loop (for snap_compare)."""

    def __init__(self, tmp_path: Path, config: Config | None = None) -> None:
        super().__init__(build(tmp_path, config))

    async def setup(self) -> None:
        await scene(self.rig.fake, self.clock)
        await self.engine.start()
        if self.view.configured:
            await self.rig.refresh()

    @on(events.Unmount)
    async def _stop_engine(self) -> None:
        await self.engine.stop()
        await self.rig.http.aclose()


@asynccontextmanager
async def started(
    tmp_path: Path, config: Config | None = None, *, refresh: bool = True
) -> AsyncIterator[Rig]:
    """The scene on the fake, the engine started and (unless told not to) its snapshot current."""
    r = build(tmp_path, config)
    await scene(r.fake, r.clock)
    await r.engine.start()
    try:
        if refresh and r.engine.config.statuspage is not None:
            await r.refresh()
        yield r
    finally:
        await r.engine.stop()
        await r.http.aclose()


async def until(predicate: Callable[[], bool], *, within: float = 5.0) -> None:
    """Bounded polling for a condition the app reaches asynchronously."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
