"""The Incidents and On-call views with PagerDuty and Opsgenie both configured.

A real Engine polls the Alertmanager stand-in, the fake PagerDuty and the fake Opsgenie, every
exchange with the fakes checked against their published specs, on the frozen 02:00 clock. Pilot
tests assert what the views show and that `a` acknowledges in whichever fake owns the row;
snapshots at 80x24 and 160x48 were accepted only after the rendered images were looked at.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from incidents_data import PagerDutyRig, build_rig, stop_rig
from spec_check_swagger import SwaggerSpecValidator
from spec_check_swagger import ValidatingTransport as SwaggerValidatingTransport
from test_ui_app import plain
from test_ui_snapshots import SIZES
from textual.pilot import Pilot
from ui_harness import START, eventually

from oncall_tui.models import ActionStatus, Incident
from oncall_tui.sandbox.fake_opsgenie import FakeOpsgenie
from oncall_tui.ui.app import OncallApp, make_app
from oncall_tui.ui.confirm import ConfirmScreen
from oncall_tui.ui.incidents import IncidentsView
from oncall_tui.ui.oncall import OncallView

OG_KEY = "og-key-for-mixed-ui-tests"
OG_API = "http://api.opsgenie.test"
PARTS = ("status", "policies", "schedules")
OG_ALERTS = (  # (message, priority, minutes ago), as Alertmanager's opsgenie_configs sends them
    ("[FIRING:1] HighLatency checkout (warning)", "P3", 12),
    ("Search replica lagging behind primary", "P2", 25),
)


class MixedRig:
    """The PagerDuty rig of incidents_data.py with the fake Opsgenie routed in beside it."""

    def __init__(self, tmp_path: Path) -> None:
        opsgenie = {"api_key": OG_KEY, "api_url": OG_API}
        self.pd: PagerDutyRig = build_rig(tmp_path, opsgenie=opsgenie)
        # processing_seconds=None: the frozen clock never moves, status polls process requests.
        self.og = FakeOpsgenie(clock=self.pd.clock, api_key=OG_KEY, seed=3, processing_seconds=None)
        self.og_validating = SwaggerValidatingTransport(
            httpx.ASGITransport(app=self.og.app), SwaggerSpecValidator.load("opsgenie")
        )
        self.pd.transport.routes["api.opsgenie.test"] = self.og_validating

    async def seed_opsgenie(self) -> None:
        """Alerts created through the fake's own API (not checked: we are not the sender)."""
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.og.app)) as client:
            for message, priority, _ in OG_ALERTS:
                answer = await client.post(
                    f"{OG_API}/v2/alerts",
                    json={"message": message, "priority": priority, "tags": ["warning"]},
                    headers={"Authorization": f"GenieKey {OG_KEY}"},
                )
                assert answer.status_code == 202
        self.og.process_pending()
        for alert, (_, _, minutes) in zip(self.og.alerts, OG_ALERTS, strict=True):
            alert.created_at = alert.updated_at = START - timedelta(minutes=minutes)
            alert.last_occurred_at = alert.created_at
        self.og.received.clear()

    async def start(self) -> None:
        await self.seed_opsgenie()
        await self.pd.engine.start()
        await eventually(self.ready)

    async def stop(self) -> None:
        await stop_rig(self.pd)
        assert self.og_validating.violations == []

    def ready(self) -> bool:
        snapshot = self.pd.engine.snapshot
        systems = [i.system for i in snapshot.incidents]
        og = snapshot.health_of("opsgenie")
        return (
            systems.count("pagerduty") == 5
            and systems.count("opsgenie") == len(OG_ALERTS)
            and og is not None
            and og.last_success is not None
            and {o.system for o in snapshot.oncalls} >= {"pagerduty", "opsgenie"}
            and {s.system for s in snapshot.shifts} >= {"pagerduty", "opsgenie"}
            and bool(snapshot.alerts)
        )

    def incident(self, system: str, title: str) -> Incident:
        return next(
            i
            for i in self.pd.engine.snapshot.incidents
            if i.system == system and i.title.startswith(title)
        )


@contextlib.asynccontextmanager
async def mixed_view(tmp_path: Path) -> AsyncIterator[tuple[MixedRig, OncallApp, Pilot[None]]]:
    rig = MixedRig(tmp_path)
    try:
        await rig.start()
        app = make_app(rig.pd.config, rig.pd.engine, rig.pd.clock)
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.pause()
            yield rig, app, pilot
    finally:
        await rig.stop()


def row_text(view: IncidentsView, key: str) -> list[str]:
    return [plain_cell(c) for c in view.table.get_row(key)]


def plain_cell(cell: Any) -> str:
    return str(getattr(cell, "plain", cell))


async def move_to(pilot: Pilot[None], view: IncidentsView, key: str) -> None:
    above = view._order.index(key) < view._order.index(view.cursor_key or key)
    for _ in range(len(view._order)):
        if view.cursor_key == key:
            return
        await pilot.press("k" if above else "j")
    assert view.cursor_key == key


async def test_incidents_lists_both_systems_and_a_acknowledges_in_the_owner(
    tmp_path: Path,
) -> None:
    async with mixed_view(tmp_path) as (rig, app, pilot):
        await pilot.press("2")
        view = app.query_one(IncidentsView)
        latency = rig.incident("opsgenie", "[FIRING:1] HighLatency")
        outage = rig.incident("pagerduty", "[FIRING:2] ServiceDown")
        assert {latency.key, outage.key} <= set(view._order)
        assert len(view._order) == 5 + len(OG_ALERTS)
        og_row = row_text(view, latency.key)
        assert "P3" in og_row  # Opsgenie's priority where PagerDuty's urgency goes
        assert any("HighLatency checkout" in c for c in og_row)
        assert "P2" in row_text(view, rig.incident("opsgenie", "Search replica").key)
        pd_row = row_text(view, outage.key)
        assert any("ServiceDown payment-service" in c for c in pd_row)
        assert not {"P1", "P2", "P3", "P4", "P5"} & set(pd_row)

        # `a` on the Opsgenie row: acknowledged in the fake Opsgenie, PagerDuty untouched.
        await move_to(pilot, view, latency.key)
        await pilot.press("a")
        og_alert = next(a for a in rig.og.alerts if a.message == OG_ALERTS[0][0])
        await eventually(lambda: og_alert.acknowledged)
        assert og_alert.acknowledged_by == rig.pd.config.actor  # the operator, not "API"
        assert [path for _, path, _ in rig.og.received] == [f"/v2/alerts/{og_alert.id}/acknowledge"]
        pd_outage = next(i for i in rig.pd.fake.incidents if i.number == outage.number)
        assert pd_outage.status == "triggered"
        await eventually(lambda: view.actions.get(latency.key) is not None)
        await eventually(lambda: view.actions[latency.key].status == ActionStatus.DONE)
        await pilot.pause()
        assert rig.incident("opsgenie", "[FIRING:1] HighLatency").status == "acknowledged"
        assert plain(view.query_one("#incidents-action")).startswith("acknowledge: done")

        # `a` on the PagerDuty row: acknowledged in the fake PagerDuty, Opsgenie untouched.
        await move_to(pilot, view, outage.key)
        await pilot.press("a")
        await eventually(lambda: pd_outage.status == "acknowledged")
        other = next(a for a in rig.og.alerts if a.message == OG_ALERTS[1][0])
        assert not other.acknowledged
        assert len(rig.og.received) == 1
        await eventually(lambda: view.actions.get(outage.key) is not None)
        await eventually(lambda: view.actions[outage.key].status == ActionStatus.DONE)

        # `r` on the Opsgenie row names Opsgenie as what closes it; cancelled, nothing sent.
        await move_to(pilot, view, latency.key)
        await pilot.press("r")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        body = plain(confirm.query_one("#confirm-body"))
        assert "Opsgenie closes them and stops paging" in body
        assert "PagerDuty" not in body
        await pilot.press("escape")
        assert len(rig.og.received) == 1


async def test_oncall_shows_policies_and_opsgenie_schedules(tmp_path: Path) -> None:
    async with mixed_view(tmp_path) as (rig, app, pilot):
        await pilot.press("3")
        await pilot.pause()
        view = app.query_one(OncallView)
        shown = "\n".join(plain(view.query_one(f"#oncall-{part}")) for part in PARTS)
        snapshot = rig.pd.engine.snapshot
        for policy in {o.policy for o in snapshot.oncalls if o.system == "pagerduty"}:
            assert policy in shown
        og_schedules = {s.schedule for s in snapshot.shifts if s.system == "opsgenie"}
        assert og_schedules
        for schedule in og_schedules:
            assert schedule in shown
        for schedule in {s.schedule for s in snapshot.shifts if s.system == "pagerduty"}:
            assert schedule in shown
        # Who is on call now: PagerDuty's policies and Opsgenie's schedules each under their
        # own heading, counted apart in the status line.
        now_part = plain(view.query_one("#oncall-policies"))
        pd_part, og_part = now_part.split("Schedules (Opsgenie)")
        assert "Escalation policies (PagerDuty)" in pd_part
        og_now = {o.policy for o in snapshot.oncalls if o.system == "opsgenie"}
        assert og_now
        assert all(name in og_part and name not in pd_part for name in og_now)
        pd_now = {o.policy for o in snapshot.oncalls if o.system == "pagerduty"}
        status = plain(view.query_one("#oncall-status"))
        assert f"{len(pd_now)} escalation policies · {len(og_now)} Opsgenie schedules" in status


# -- snapshots -------------------------------------------------------------------------------


class LiveMixedDashboard(OncallApp):
    """The dashboard with its engine started in the app's loop and stopped when it exits."""

    rig: MixedRig

    async def on_unmount(self) -> None:
        await self.rig.stop()


def dashboard(tmp_path: Path) -> LiveMixedDashboard:
    rig = MixedRig(tmp_path)
    app = LiveMixedDashboard(rig.pd.config, rig.pd.engine, rig.pd.clock)
    app.rig = rig
    return app


def keys(*pressed: str) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, LiveMixedDashboard)
        await app.rig.start()
        await pilot.pause()
        for key in pressed:
            await pilot.press(key)
            await pilot.pause()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_mixed_incidents_view(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(dashboard(tmp_path), terminal_size=size, run_before=keys("2"))


@pytest.mark.parametrize("size", SIZES)
def test_mixed_oncall_view(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(dashboard(tmp_path), terminal_size=size, run_before=keys("3"))
