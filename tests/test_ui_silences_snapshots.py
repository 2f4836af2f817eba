"""Snapshots of the Silences view, the silence form, the test-alert form and the expire dialog.

Each at 80x24 and 160x48, with a frozen clock, a real engine and the Alertmanager stand-in.
Accepted only after the rendered images were looked at.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea
from ui_silences_harness import SceneHost

from oncall_tui.ui.fire_form import FireAlertForm
from oncall_tui.ui.silence_form import SilenceForm

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]

PRESETS = [
    {
        "name": "payment-service down",
        "labels": {"alertname": "ServiceDown", "severity": "critical", "service": "payments"},
        "annotations": {"summary": "payment-service is down"},
    },
]


async def _still(pilot: Pilot[Any]) -> None:
    """No blinking cursors: a snapshot must not depend on when it was taken."""
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    for area in pilot.app.screen.query(TextArea):
        area.cursor_blink = False
    await pilot.pause()


def _run(app: SceneHost, then: Callable[[SceneHost, Pilot[Any]], Any] | None = None) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await app.setup()
        if then is not None:
            await then(app, pilot)
        await _still(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_silences_view(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path)

    async def mark_first(app: SceneHost, pilot: Pilot[Any]) -> None:
        await pilot.press("space")

    assert snap_compare(app, terminal_size=size, run_before=_run(app, mark_first))


@pytest.mark.parametrize("size", SIZES)
def test_silence_form(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path)

    async def open_form(app: SceneHost, pilot: Pilot[Any]) -> None:
        alerts = [a for a in app.engine.snapshot.alerts if a.alertname == "HighLatency"]
        app.push_screen(SilenceForm(app.engine, app.clock, alerts=alerts))
        await pilot.pause()
        await pilot.press(*"latency work")

    assert snap_compare(app, terminal_size=size, run_before=_run(app, open_form))


@pytest.mark.parametrize("size", SIZES)
def test_silence_form_error(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path)

    async def bad_matcher(app: SceneHost, pilot: Pilot[Any]) -> None:
        alerts = app.engine.snapshot.alerts[:1]
        form = SilenceForm(app.engine, app.clock, alerts=alerts)
        app.push_screen(form)
        await pilot.pause()
        form.query_one("#silence-matchers", TextArea).text = 'service=~"(pay"'
        await pilot.press("ctrl+s")

    assert snap_compare(app, terminal_size=size, run_before=_run(app, bad_matcher))


@pytest.mark.parametrize("size", SIZES)
def test_fire_form(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path, test_alerts=PRESETS)

    async def open_form(app: SceneHost, pilot: Pilot[Any]) -> None:
        app.push_screen(FireAlertForm(app.engine.config))

    assert snap_compare(app, terminal_size=size, run_before=_run(app, open_form))


@pytest.mark.parametrize("size", SIZES)
def test_expire_confirmation(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = SceneHost(tmp_path)

    async def expire_two(app: SceneHost, pilot: Pilot[Any]) -> None:
        await pilot.press("space", "space", "x")

    assert snap_compare(app, terminal_size=size, run_before=_run(app, expire_two))
