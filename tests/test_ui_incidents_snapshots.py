"""Snapshots of the Incidents view, incident details, the incident forms and the On-call view.

Each at 80x24 and 160x48 with a frozen clock. A real Engine polled the Alertmanager stand-in
once; the PagerDuty part of the snapshot is fed through the app's own message path (the message
the engine's SnapshotChanged becomes). Accepted only after the rendered images were looked at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from incidents_data import PAGERDUTY_CONFIG, with_pagerduty
from test_ui_snapshots import SIZES, polled_engine
from textual.pilot import Pilot
from textual.widgets import Input

from oncall_tui.ui.app import OncallApp, SnapshotArrived, make_app


def dashboard(tmp_path: Path, **config: Any) -> OncallApp:
    engine = polled_engine(tmp_path, pagerduty=PAGERDUTY_CONFIG, **config)
    return make_app(engine.config, engine, engine.clock)


def keys(*pressed: str, reachable: bool = True) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, OncallApp)
        await pilot.pause()
        app.post_message(SnapshotArrived(with_pagerduty(app.engine.snapshot, reachable=reachable)))
        await pilot.pause()
        for key in pressed:
            await pilot.press(key)
            await pilot.pause()
        for box in app.query(Input):
            box.cursor_blink = False
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_incidents_view(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    # The first incident marked, the cursor on the second.
    assert snap_compare(dashboard(tmp_path), terminal_size=size, run_before=keys("2", "space"))


@pytest.mark.parametrize("size", SIZES)
def test_incident_details(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    # The incident whose title looks like markup: it must show literally.
    app = dashboard(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=keys("2", "j", "j", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_escalate_confirmation(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(dashboard(tmp_path), terminal_size=size, run_before=keys("2", "e"))


@pytest.mark.parametrize("size", SIZES)
def test_note_form(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(dashboard(tmp_path), terminal_size=size, run_before=keys("2", "n"))


@pytest.mark.parametrize("size", SIZES)
def test_reassign_form(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(dashboard(tmp_path), terminal_size=size, run_before=keys("2", "R"))


@pytest.mark.parametrize("size", SIZES)
def test_oncall_view(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(dashboard(tmp_path), terminal_size=size, run_before=keys("3"))


@pytest.mark.parametrize("size", SIZES)
def test_incidents_stale(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = dashboard(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=keys("2", reachable=False))


@pytest.mark.parametrize("size", SIZES)
def test_oncall_not_configured(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    engine = polled_engine(tmp_path)
    app = make_app(engine.config, engine, engine.clock)
    assert snap_compare(app, terminal_size=size, run_before=keys("3"))
