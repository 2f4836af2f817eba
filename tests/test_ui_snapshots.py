"""Snapshots of the dashboard: the Alerts view, the help and the alert details.

Each at 80x24 and 160x48 with a frozen clock. The data comes from a real Engine that polled the
Alertmanager stand-in once (in its own event loop, then stopped): the app shows that engine's
last snapshot. Accepted only after the rendered images were looked at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from ui_harness import running_engine

from oncall_tui.engine import Engine
from oncall_tui.ui.app import OncallApp, make_app

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


def polled_engine(tmp_path: Path, **config: Any) -> Engine:
    """A real engine after its first poll of the stand-in, stopped: its snapshot stays."""

    async def build() -> Engine:
        async with running_engine(tmp_path, **config) as rig:
            return rig.engine

    return asyncio.run(build())


def dashboard(tmp_path: Path, **config: Any) -> OncallApp:
    engine = polled_engine(tmp_path, **config)
    return make_app(engine.config, engine, engine.clock)


def keys(*pressed: str, then: Callable[[Pilot[Any]], Any] | None = None) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        for key in pressed:
            await pilot.press(key)
        for box in pilot.app.query(Input):
            box.cursor_blink = False
        if then is not None:
            await then(pilot)
        await pilot.pause()

    return run_before


def snap(snap_compare: Any, app: OncallApp, size: tuple[int, int], pressed: Sequence[str]) -> bool:
    return bool(snap_compare(app, terminal_size=size, run_before=keys(*pressed)))


@pytest.mark.parametrize("size", SIZES)
def test_alerts_view(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    # Cursor on the second alert, the first one marked.
    assert snap(snap_compare, dashboard(tmp_path), size, ["space"])


@pytest.mark.parametrize("size", SIZES)
def test_alerts_view_filtered(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = dashboard(tmp_path)

    async def type_filter(pilot: Pilot[Any]) -> None:
        pilot.app.query_one("#alerts-filter", Input).value = 'severity="warning"'
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=keys("slash", then=type_filter))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap(snap_compare, dashboard(tmp_path), size, ["question_mark"])


@pytest.mark.parametrize("size", SIZES)
def test_details(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    # The alert whose summary looks like markup: it must show literally.
    assert snap(snap_compare, dashboard(tmp_path), size, ["j", "j", "j", "enter"])


@pytest.mark.parametrize("size", SIZES)
def test_read_only_incidents_placeholder(
    snap_compare: Any, tmp_path: Path, size: tuple[int, int]
) -> None:
    assert snap(snap_compare, dashboard(tmp_path, read_only=True), size, ["2"])
