"""A host App for the Log view over a real engine whose log was written by living an incident.

The engine runs against the sandbox (tests/log_harness.py). The host feeds the view as the real
app does: snapshots on SnapshotChanged and log entries on LogAppended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

from log_harness import World, world
from textual import events, on
from textual.app import App, ComposeResult
from textual.containers import Vertical

from oncall_tui.clock import Clock
from oncall_tui.engine import Engine
from oncall_tui.events import EngineEvent, LogAppended, SnapshotChanged
from oncall_tui.ui.log_view import LogView


class LogHost(App[None]):
    """Hosts a LogView, mounted once the engine it shows is running."""

    def __init__(self) -> None:
        super().__init__()
        self.animation_level = "none"
        self._unsubscribe: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        yield Vertical(id="frame")

    async def show_view(self, engine: Engine, clock: Clock) -> LogView:
        # Kept by reference: while a dialog is on top, queries would search the dialog.
        self.view = LogView(engine, clock, id="log")
        await self.query_one("#frame", Vertical).mount(self.view)
        self.view.update_snapshot(engine.snapshot)
        self.view.table.focus()
        self._unsubscribe = engine.subscribe(self._on_event)
        return self.view

    def _on_event(self, event: EngineEvent) -> None:
        if isinstance(event, SnapshotChanged):
            self.view.update_snapshot(event.snapshot)
        elif isinstance(event, LogAppended):
            self.view.on_log_appended(event.entry)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()


class SceneHost(LogHost):
    """Builds the sandbox, the engine and the story inside the app's own loop (snap_compare)."""

    def __init__(self, tmp_path: Path, scene: Callable[[World], Awaitable[object]]) -> None:
        super().__init__()
        self._tmp_path = tmp_path
        self._scene = scene
        self._stack = AsyncExitStack()

    async def setup(self) -> World:
        w = await self._stack.enter_async_context(world(self._tmp_path))
        await self._scene(w)
        self.world = w
        view = await self.show_view(w.engine, w.clock)
        total = len(await w.store.entries(limit=0))
        await until(lambda: view.table.row_count == total)
        return w

    @on(events.Unmount)
    async def _stop(self) -> None:
        await self._stack.aclose()


async def until(predicate: Callable[[], object], *, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
