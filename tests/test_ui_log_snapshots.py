"""Snapshots of the Log view, an incident's timeline dialog and the shift handoff dialog.

Each at 80x24 and 160x48, with a frozen clock and a log a real engine wrote while living an
incident against the sandbox (tests/log_harness.py). Accepted only after the rendered images
were looked at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from log_harness import World, handoff_scene, live_incident
from textual.pilot import Pilot
from textual.widgets import Input
from ui_log_harness import SceneHost, until

from oncall_tui.ui.log_screens import DocumentScreen

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


async def _incident_then_handoff(w: World) -> None:
    await live_incident(w)
    await handoff_scene(w)


def _run(
    app: SceneHost, then: Callable[[SceneHost, Pilot[Any]], Awaitable[None]] | None = None
) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await app.setup()
        if then is not None:
            await then(app, pilot)
        for box in pilot.app.screen.query(Input):
            box.cursor_blink = False
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_log_view(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path, live_incident)

    async def second_row(app: SceneHost, pilot: Pilot[Any]) -> None:
        await pilot.press("j")

    assert snap_compare(app, terminal_size=size, run_before=_run(app, second_row))


@pytest.mark.parametrize("size", SIZES)
def test_timeline_dialog(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path, live_incident)

    async def timeline(app: SceneHost, pilot: Pilot[Any]) -> None:
        await pilot.press("p")
        await until(lambda: isinstance(app.screen, DocumentScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=_run(app, timeline))


@pytest.mark.parametrize("size", SIZES)
def test_handoff_dialog(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path, _incident_then_handoff)

    async def handoff(app: SceneHost, pilot: Pilot[Any]) -> None:
        # Behind the dialog: only rows without Alertmanager's random silence id.
        await pilot.press("slash", *"kind:incident.*", "enter")
        await until(lambda: app.view.table.row_count == 4)
        await pilot.press("h")
        await until(lambda: isinstance(app.screen, DocumentScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=_run(app, handoff))
