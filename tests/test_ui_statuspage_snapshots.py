"""Snapshots of the Status page view, the update and new-incident forms, and the confirmation.

Each at 80x24 and 160x48, with a frozen clock, a real engine and the fake Statuspage. Accepted
only after the rendered images were looked at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, TextArea
from ui_statuspage_harness import COMPONENTS, SceneHost, make_config

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
Then = Callable[[SceneHost, Pilot[Any]], Awaitable[None]]


async def _still(pilot: Pilot[Any]) -> None:
    """No blinking cursors: a snapshot must not depend on when it was taken."""
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    for area in pilot.app.screen.query(TextArea):
        area.cursor_blink = False
    await pilot.pause()


def _run(app: SceneHost, then: Then | None = None) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await app.setup()
        await pilot.pause()
        if then is not None:
            await then(app, pilot)
        await _still(pilot)

    return run_before


def _component(name: str) -> str:
    return f"#sp-component-{list(COMPONENTS).index(name)}"


async def _update_form(app: SceneHost, pilot: Pilot[Any]) -> None:
    await pilot.press("u")
    await pilot.pause()
    form = app.screen
    form.query_one("#sp-status", Select).value = "monitoring"
    form.query_one(_component("Payments"), Select).value = "degraded_performance"
    form.query_one(
        "#sp-body", TextArea
    ).text = "Traffic now goes to the second card processor; payments are recovering."
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_statuspage_view(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=_run(app))


@pytest.mark.parametrize("size", SIZES)
def test_update_form(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=_run(app, _update_form))


@pytest.mark.parametrize("size", SIZES)
def test_update_confirmation(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path)

    async def confirm(app: SceneHost, pilot: Pilot[Any]) -> None:
        await _update_form(app, pilot)
        await pilot.press("ctrl+s")

    assert snap_compare(app, terminal_size=size, run_before=_run(app, confirm))


@pytest.mark.parametrize("size", SIZES)
def test_new_incident_form(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path)

    async def new(app: SceneHost, pilot: Pilot[Any]) -> None:
        await pilot.press("N")
        await pilot.pause()
        form = app.screen
        form.query_one("#sp-name", Input).value = "Website unavailable"
        form.query_one(_component("Website"), Select).value = "major_outage"
        await pilot.pause()
        form.query_one("#sp-template", Select).value = "investigating"
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=_run(app, new))


@pytest.mark.parametrize("size", SIZES)
def test_component_form(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path)

    async def component(app: SceneHost, pilot: Pilot[Any]) -> None:
        app.view.components_table.focus()
        app.view.components_table.move_cursor(row=list(COMPONENTS).index("Payments"))
        await pilot.press("c")

    assert snap_compare(app, terminal_size=size, run_before=_run(app, component))


@pytest.mark.parametrize("size", SIZES)
def test_not_configured(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    config = make_config(statuspage=False, log={"path": str(tmp_path / "log.db")})
    app = SceneHost(tmp_path, config)
    assert snap_compare(app, terminal_size=size, run_before=_run(app))
