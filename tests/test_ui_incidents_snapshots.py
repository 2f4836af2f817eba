"""Snapshots of the Incidents view, incident details, the incident forms and the On-call view.

Each at 80x24 and 160x48 with a frozen clock. A real Engine runs inside the app's event loop
over the Alertmanager stand-in and the fake PagerDuty (seeded, so names and ids never change);
it starts before the keys are pressed and stops when the app exits. Accepted only after the
rendered images were looked at.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from incidents_data import PagerDutyRig, build_rig, start_rig, stop_rig
from test_ui_snapshots import SIZES, polled_engine
from textual.pilot import Pilot
from textual.widgets import Input
from ui_harness import eventually

from oncall_tui.ui.app import OncallApp, make_app
from oncall_tui.ui.incident_details import IncidentDetailsScreen
from oncall_tui.ui.incident_forms import ReassignForm
from oncall_tui.ui.incidents import IncidentsView


class LiveDashboard(OncallApp):
    """The dashboard with its engine started in the app's loop and stopped when it exits."""

    rig: PagerDutyRig

    async def on_unmount(self) -> None:
        await stop_rig(self.rig)


def dashboard(tmp_path: Path, **config: Any) -> LiveDashboard:
    rig = build_rig(tmp_path, **config)
    app = LiveDashboard(rig.config, rig.engine, rig.clock)
    app.rig = rig
    return app


def settled(app: OncallApp) -> bool:
    """Whatever the screen loads in the background has arrived."""
    screen = app.screen
    if isinstance(screen, IncidentDetailsScreen):
        return screen.notes is not None and screen.entries is not None
    if isinstance(screen, ReassignForm):
        return bool(screen.choices)
    return True


def keys(*pressed: str, before: Callable[[PagerDutyRig], None] | None = None) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, LiveDashboard)
        await start_rig(app.rig)
        if before is not None:
            before(app.rig)
        await pilot.pause()
        for key in pressed:
            await pilot.press(key)
            await pilot.pause()
        await eventually(lambda: settled(app))
        for box in app.query(Input):
            box.cursor_blink = False
            if box._blink_timer is not None:
                box._blink_timer.stop()
        # A blink already queued when the timer stopped is handled here; then no cursor is
        # drawn, whatever the blink phase was (the focus is asserted by the Pilot tests).
        await pilot.pause()
        for box in app.query(Input):
            box._cursor_visible = False
        await pilot.pause()

    return run_before


def snap(snap_compare: Any, app: OncallApp, size: tuple[int, int], run_before: Any) -> bool:
    return bool(snap_compare(app, terminal_size=size, run_before=run_before))


@pytest.mark.parametrize("size", SIZES)
def test_incidents_view(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    # The first incident marked, the cursor on the second.
    assert snap(snap_compare, dashboard(tmp_path), size, keys("2", "space"))


@pytest.mark.parametrize("size", SIZES)
def test_incident_details(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    # The incident whose title looks like markup (it must show literally), with a note.
    assert snap(snap_compare, dashboard(tmp_path), size, keys("2", "j", "j", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_incident_details_with_alerts(
    snap_compare: Any, tmp_path: Path, size: tuple[int, int]
) -> None:
    # Opened by the Alertmanager group of the two ServiceDown alerts.
    assert snap(snap_compare, dashboard(tmp_path), size, keys("2", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_escalate_confirmation(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap(snap_compare, dashboard(tmp_path), size, keys("2", "e"))


@pytest.mark.parametrize("size", SIZES)
def test_note_form(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap(snap_compare, dashboard(tmp_path), size, keys("2", "n"))


@pytest.mark.parametrize("size", SIZES)
def test_reassign_form(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap(snap_compare, dashboard(tmp_path), size, keys("2", "R"))


@pytest.mark.parametrize("size", SIZES)
def test_oncall_view(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap(snap_compare, dashboard(tmp_path), size, keys("3"))


@pytest.mark.parametrize("size", SIZES)
def test_incidents_stale(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = dashboard(tmp_path)

    async def pagerduty_down(pilot: Pilot[Any]) -> None:
        await keys("2")(pilot)
        app.rig.transport.pd_down = True
        app.rig.engine.refresh_now()

        def both_polls_failed() -> bool:
            health = app.rig.engine.snapshot.health_of("pagerduty")
            error = health.error if health is not None else ""
            return "on-call" in error and "incidents" in error

        await eventually(both_polls_failed)
        view = app.query_one(IncidentsView)
        await eventually(lambda: "stale" in str(view.query_one("#incidents-status").render()))
        await pilot.pause()

    assert snap(snap_compare, app, size, pagerduty_down)


@pytest.mark.parametrize("size", SIZES)
def test_oncall_not_configured(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    engine = polled_engine(tmp_path)
    app = make_app(engine.config, engine, engine.clock)

    async def press_3(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await pilot.press("3")
        await pilot.pause()

    assert snap(snap_compare, app, size, press_3)
