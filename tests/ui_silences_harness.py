"""A real Engine against the in-process Alertmanager stand-in, and a small host App for the views.

Shared by the Silences view's Pilot and snapshot tests. Nothing here is a mock: the engine polls
the stand-in over HTTP (through httpx.ASGITransport) and actions really change its state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from textual import events, on
from textual.app import App, ComposeResult

from oncall_tui.clock import FrozenClock
from oncall_tui.config import Config, validate_config
from oncall_tui.engine import ActionRequest, Engine
from oncall_tui.events import EngineEvent, SnapshotChanged
from oncall_tui.models import Action, Silence, Snapshot
from oncall_tui.sandbox.standin import StandinAlertmanager, format_time
from oncall_tui.store import Store
from oncall_tui.ui.messages import SubmitActions
from oncall_tui.ui.silences import SilencesView

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
AM = "http://am.test"


def make_config(**extra: Any) -> Config:
    data: dict[str, Any] = {
        "operator": {"name": "Nina Patel", "email": "nina@example.com"},
        "alertmanagers": [{"name": "prod-a", "url": AM, "cluster": "prod"}],
        # Long enough that only refresh_now() polls: the tests decide when data arrives.
        "poll": {"alerts": "1h"},
        "webhooks": {"enabled": False},
    }
    data.update(extra)
    return validate_config(data, "test")


@dataclass
class Rig:
    engine: Engine
    standin: StandinAlertmanager
    http: httpx.AsyncClient
    clock: FrozenClock

    async def post_alert(
        self, labels: Mapping[str, str], annotations: Mapping[str, str] | None = None
    ) -> None:
        response = await self.http.post(
            f"{AM}/api/v2/alerts",
            json=[{"labels": dict(labels), "annotations": dict(annotations or {})}],
        )
        response.raise_for_status()

    async def create_silence(
        self, matchers: Sequence[str], *, hours: float = 2.0, comment: str = "maintenance"
    ) -> Action:
        action = await self.engine.act(
            ActionRequest(
                "silence.create",
                target="",
                params={
                    "cluster": "prod",
                    "matchers": list(matchers),
                    "duration_seconds": hours * 3600,
                    "comment": comment,
                },
            )
        )
        assert action.status.value == "done", action.result
        return action

    async def standin_silences(self) -> list[dict[str, Any]]:
        """The stand-in's own state, read over its API: what really happened."""
        response = await self.http.get(f"{AM}/api/v2/silences")
        response.raise_for_status()
        silences: list[dict[str, Any]] = response.json()
        return silences

    async def refresh(self) -> Snapshot:
        """Poll now and wait for the snapshot of a poll that started after this call.

        Twice: the first snapshot may come from a poll already in flight, which began before
        what the test just changed; the second poll starts only after that one ended.
        """
        for _ in range(2):
            arrived = asyncio.Event()

            def listener(event: EngineEvent, arrived: asyncio.Event = arrived) -> None:
                if isinstance(event, SnapshotChanged):
                    arrived.set()

            unsubscribe = self.engine.subscribe(listener)
            try:
                self.engine.refresh_now()
                await asyncio.wait_for(arrived.wait(), timeout=10.0)
            finally:
                unsubscribe()
        return self.engine.snapshot

    def silence_with(self, text: str) -> Silence:
        for silence in self.engine.snapshot.silences:
            if any(text in str(m) for m in silence.matchers):
                return silence
        raise AssertionError(f"no silence matching {text!r} in the snapshot")


@asynccontextmanager
async def rig(tmp_path: Path, config: Config | None = None) -> AsyncIterator[Rig]:
    clock = FrozenClock(T0)
    standin = StandinAlertmanager(clock=clock, resolve_timeout=86400.0)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=standin.app))
    store = await Store.open(tmp_path / "log.db", clock=clock)
    engine = Engine(
        config or make_config(), clock=clock, store=store, http=http, listen_webhooks=False
    )
    await engine.start()
    try:
        yield Rig(engine, standin, http, clock)
    finally:
        await engine.stop()
        await store.close()
        await http.aclose()


async def standard_scene(r: Rig) -> None:
    """Three services' alerts and three silences: one ending soon, one matching nothing."""
    await r.post_alert(
        {"alertname": "HighLatency", "service": "payments", "severity": "critical"},
        {"summary": "p99 latency above 2s"},
    )
    await r.post_alert(
        {"alertname": "HighLatency", "service": "search", "severity": "warning"},
        {"summary": "p99 latency above 1s"},
    )
    await r.post_alert(
        {"alertname": "DiskFull", "service": "db", "instance": "db-1", "severity": "warning"},
        {"summary": "[bold]/var[/bold] at 95%"},
    )
    await r.create_silence(['service="search"'], hours=0.5, comment="search reindex")
    await r.create_silence(['alertname="DiskFull"'], hours=4, comment="ticket OPS-12 [red]x[/]")
    await r.create_silence(['service="gone"'], hours=3, comment="old migration")
    await r.refresh()


class Host(App[None]):
    """Hosts one view as the real app would: feeds snapshots, runs SubmitActions through act()."""

    def __init__(self, engine: Engine, clock: FrozenClock) -> None:
        super().__init__()
        self.engine = engine
        self.clock = clock
        self.submitted: list[SubmitActions] = []
        self.outcomes: list[Action] = []
        self._unsubscribe: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        # Kept by reference: while a modal is on top, queries would search the modal.
        self.view = SilencesView(self.engine, self.clock, id="silences")
        yield self.view

    def on_mount(self) -> None:
        self.view.update_snapshot(self.engine.snapshot)
        self.view.table.focus()
        self._unsubscribe = self.engine.subscribe(self._on_event)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _on_event(self, event: EngineEvent) -> None:
        if isinstance(event, SnapshotChanged):
            self.view.update_snapshot(event.snapshot)

    def on_submit_actions(self, message: SubmitActions) -> None:
        self.submitted.append(message)
        self.run_worker(self._run(message.requests), group="actions")

    async def _run(self, requests: Sequence[ActionRequest]) -> None:
        for request in requests:
            self.outcomes.append(await self.engine.act(request))


class SceneHost(Host):
    """A Host that builds its own engine and scene inside the app's event loop.

    snap_compare runs the app in a loop of its own, so nothing async can happen before it: the
    engine starts in `setup()` (called from run_before) and stops when the app unmounts.
    """

    def __init__(self, tmp_path: Path, **config: Any) -> None:
        clock = FrozenClock(T0)
        ids = iter(range(1, 1000))
        standin = StandinAlertmanager(
            clock=clock,
            resolve_timeout=86400.0,
            # Stable silence ids keep the snapshots stable.
            new_id=lambda: f"00000000-0000-4000-8000-{next(ids):012d}",
        )
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=standin.app))
        settings = make_config(log={"path": str(tmp_path / "log.db")}, **config)
        engine = Engine(settings, clock=clock, http=http, listen_webhooks=False)
        super().__init__(engine, clock)
        self.rig = Rig(engine, standin, http, clock)
        self.animation_level = "none"

    async def setup(self) -> None:
        await self.engine.start()
        await standard_scene(self.rig)
        await until(lambda: self.view.table.row_count == 3)

    @on(events.Unmount)
    async def _stop_engine(self) -> None:
        await self.engine.stop()
        await self.rig.http.aclose()


async def until(predicate: Callable[[], bool], *, within: float = 5.0) -> None:
    """Bounded polling for a condition the app reaches asynchronously."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def iso(moment: datetime) -> str:
    return format_time(moment)


HOUR = timedelta(hours=1)
