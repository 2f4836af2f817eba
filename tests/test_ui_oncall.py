"""The On-call view over a real Engine polling the fake PagerDuty: levels now and next, the
week ahead of every schedule, "you", staleness, scrolling and the view's own wording."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from incidents_data import PagerDutyRig, pagerduty_engine
from test_ui_app import plain
from textual.pilot import Pilot
from ui_harness import START, eventually, running_engine

from oncall_tui.models import OnCall
from oncall_tui.ui.app import OncallApp, SnapshotArrived, make_app
from oncall_tui.ui.oncall import OnCallOperator, OncallView, schedule_table, when


@contextlib.asynccontextmanager
async def oncall_view(
    tmp_path: Path, size: tuple[int, int] = (160, 60), **config: Any
) -> AsyncIterator[tuple[OncallApp, Pilot[None], PagerDutyRig]]:
    async with pagerduty_engine(tmp_path, **config) as rig:
        app = make_app(rig.config, rig.engine, rig.clock)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await pilot.press("3")
            yield app, pilot, rig


def lines(app: OncallApp, part: str) -> list[str]:
    return [line.rstrip() for line in plain(app.query_one(part)).splitlines()]


def row(found: list[str], *words: str) -> str:
    matching = [line for line in found if all(w in line for w in words)]
    assert matching, (words, found)
    return matching[0]


async def test_each_level_says_who_now_until_when_and_who_next(tmp_path: Path) -> None:
    async with oncall_view(tmp_path) as (app, _pilot, _rig):
        policies = lines(app, "#oncall-policies")
        assert "Payments" in policies
        assert "Search" in policies
        # The fake's rotations at 02:00 UTC: the day shift changes at 09:00.
        first = row(policies, "L1", "Demo Operator")
        assert "you" in first
        assert "09:00 (in 7h)" in first
        assert "Alice Chen" in first
        second = row(policies, "L2", "Carol Diaz")
        assert "Tue 09:00" in second  # more than a day away: the weekday says it
        assert "Frank Moreau" in second
        assert "always" in row(policies, "L3", "Dana Ito")  # a user, not a schedule
        assert row(policies, "L2", "Erin Walsh")
        status = plain(app.query_one("#oncall-status"))
        assert "2 escalation policies · 3 schedules ahead" in status
        assert "you are on call now: Payments L1" in status


async def test_schedules_look_seven_days_ahead(tmp_path: Path) -> None:
    async with oncall_view(tmp_path) as (app, _pilot, rig):
        schedules = lines(app, "#oncall-schedules")
        assert "Payments primary" in schedules
        assert "Payments secondary" in schedules
        assert "Search primary" in schedules
        assert row(schedules, "now", "Demo Operator", "Mon 23 09:00")
        # One line per shift overlapping the next 7 days: a daily rotation shows 8.
        me = OnCallOperator(rig.config)
        horizon = START + timedelta(days=7)
        for name, expected in (("Payments primary", 8), ("Search primary", 15)):
            shifts = [x for x in rig.engine.snapshot.shifts if x.schedule == name]
            week = [x for x in shifts if x.end > START and x.start < horizon]
            assert len(week) == expected
            assert schedule_table(name, shifts, START, me, 20).row_count == expected
        assert row(schedules, "Sun 29 09:00", "Mon 30 02:00")  # the week ends there


async def test_policies_and_schedules_sit_side_by_side_when_wide(tmp_path: Path) -> None:
    async with oncall_view(tmp_path, size=(160, 48)) as (app, pilot, _rig):
        view = app.query_one(OncallView)
        assert view.has_class("-wide")
        left, right = app.query_one("#oncall-policies"), app.query_one("#oncall-schedules")
        assert left.region.y == right.region.y
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not view.has_class("-wide")
        assert right.region.y > left.region.y


async def test_j_and_k_scroll_the_view(tmp_path: Path) -> None:
    async with oncall_view(tmp_path, size=(80, 24)) as (app, pilot, _rig):
        body = app.query_one("#oncall-body")
        assert app.focused is body
        await pilot.press("j", "j", "j")
        assert body.scroll_y == 3
        await pilot.press("k")
        assert body.scroll_y == 2
        await pilot.press("G")
        assert body.scroll_y == body.max_scroll_y > 0
        await pilot.press("g")
        assert body.scroll_y == 0


async def test_a_down_pagerduty_is_stale_not_empty(tmp_path: Path) -> None:
    async with oncall_view(tmp_path) as (app, _pilot, rig):
        rig.transport.pd_down = True
        rig.engine.refresh_now()
        status = app.query_one("#oncall-status")
        await eventually(lambda: "stale: pagerduty since" in plain(status))
        assert row(lines(app, "#oncall-policies"), "L1", "Demo Operator")


async def test_nobody_on_call_at_a_level_is_said_in_red(tmp_path: Path) -> None:
    async with oncall_view(tmp_path) as (app, pilot, rig):
        future = OnCall(
            policy="Payments", level=4, user="Late Larry", start=START + timedelta(hours=3),
            end=START + timedelta(hours=9), policy_id="PEPPAY1",
        )  # fmt: skip
        snapshot = rig.engine.snapshot
        app.post_message(SnapshotArrived(replace(snapshot, oncalls=(*snapshot.oncalls, future))))
        await pilot.pause()
        line = row(lines(app, "#oncall-policies"), "L4")
        assert "nobody" in line
        assert "Late Larry" in line
        assert "05:00 (in 3h)" in line


async def test_not_configured_names_the_section_to_add(tmp_path: Path) -> None:
    async with running_engine(tmp_path) as rig:
        app = make_app(rig.config, rig.engine, rig.clock)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("3")
            text = plain(app.query_one("#oncall .placeholder-text"))
            assert "PagerDuty or Opsgenie is not configured" in text
            assert "`pagerduty:`" in text


def test_when_reads_as_time_today_and_weekday_later() -> None:
    assert when(None, START) == "always"
    assert when(START + timedelta(hours=7), START) == "09:00 (in 7h)"
    assert when(START + timedelta(hours=30), START) == "Tue 08:00"
    assert when(START - timedelta(minutes=5), START) == "01:55 (5m ago)"
