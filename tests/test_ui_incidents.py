"""The Incidents view driven with Pilot: keys, confirmations, forms, details, notifications.

A real Engine polls the Alertmanager stand-in; the PagerDuty part of the snapshot is delivered
the way the engine's SnapshotChanged reaches the app (its SnapshotArrived message). Actions are
asserted on the SubmitActions messages the app really produced and on what the engine did with
them (pending/done/failed shown on the row).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from incidents_data import PAGERDUTY_CONFIG, at, incident, with_pagerduty
from test_ui_app import keys_on_screen, messages, plain
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Input
from ui_harness import Rig, eventually, running_engine

from oncall_tui.events import IncidentsRaised
from oncall_tui.models import Snapshot
from oncall_tui.ui.app import OncallApp, SnapshotArrived, make_app
from oncall_tui.ui.confirm import ConfirmScreen
from oncall_tui.ui.help import HelpScreen
from oncall_tui.ui.incident_details import IncidentDetailsScreen
from oncall_tui.ui.incident_forms import NoteForm, ReassignForm
from oncall_tui.ui.incidents import IncidentsView
from oncall_tui.ui.messages import SubmitActions


class Session:
    def __init__(self, app: OncallApp, pilot: Pilot[None], rig: Rig, log: list[Message]) -> None:
        self.app, self.pilot, self.rig, self.log = app, pilot, rig, log

    @property
    def view(self) -> IncidentsView:
        return self.app.query_one(IncidentsView)

    def submitted(self) -> list[SubmitActions]:
        # The hook sees a message once per node it bubbles through.
        unique = {id(m): m for m in self.log if isinstance(m, SubmitActions)}
        return list(unique.values())

    def requests(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(r.kind, r.target, dict(r.params)) for m in self.submitted() for r in m.requests]

    async def feed(self, snapshot: Snapshot) -> None:
        self.app.post_message(SnapshotArrived(snapshot))
        await self.pilot.pause()

    def cursor(self) -> str | None:
        return self.view.cursor_key


@contextlib.asynccontextmanager
async def incidents_view(tmp_path: Path, **config: Any) -> AsyncIterator[Session]:
    config.setdefault("pagerduty", PAGERDUTY_CONFIG)
    async with running_engine(tmp_path, **config) as rig:
        app = make_app(rig.config, rig.engine, rig.clock)
        log: list[Message] = []
        async with app.run_test(size=(160, 40), notifications=True, message_hook=log.append) as p:
            await p.pause()
            session = Session(app, p, rig, log)
            await session.feed(with_pagerduty(rig.engine.snapshot))
            await p.press("2")
            yield session


async def test_rows_sorted_by_urgency_of_need_and_shown_literally(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        assert s.view._order == [
            "pagerduty/Q01042",  # triggered, high
            "pagerduty/Q01043",  # triggered, low
            "pagerduty/Q01041",  # acknowledged, high
            "pagerduty/Q01039",  # acknowledged, low
            "pagerduty/Q01035",  # resolved lately
        ]
        assert s.cursor() == "pagerduty/Q01042"
        assert s.app.focused is s.view.table
        row = [str(c) for c in s.view.table.get_row("pagerduty/Q01041")]
        assert "acked" in row
        assert "L2" in row
        assert "Omar Haddad" in row
        assert any("[bold]not markup" in c for c in row)
        status = plain(s.view.query_one("#incidents-status"))
        assert "2 triggered · 2 acknowledged · 1 resolved lately" in status


async def test_a_acknowledges_at_once_and_the_row_shows_the_outcome(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("a")
        assert not isinstance(s.app.screen, ConfirmScreen)  # acknowledging ends nothing
        assert s.requests() == [("incident.acknowledge", "pagerduty/Q01042", {})]
        await eventually(lambda: "pagerduty/Q01042" in s.view.actions)
        await eventually(lambda: bool(s.app.finished_actions))
        final = s.app.finished_actions[0]
        await eventually(lambda: s.view.actions["pagerduty/Q01042"].status == final.status)
        line = plain(s.view.query_one("#incidents-action"))
        assert line.startswith(f"acknowledge: {final.status.value}")
        glyph = str(s.view.table.get_row("pagerduty/Q01042")[0])
        assert glyph.strip() in {"…", "✓", "✗"}


async def test_a_is_off_on_an_acknowledged_incident(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("j", "j")
        assert s.cursor() == "pagerduty/Q01041"
        assert s.view.check_action("acknowledge", ()) is None  # shown greyed out
        await s.pilot.press("a")
        assert s.requests() == []


async def test_marks_make_one_request_per_incident(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("space", "space")
        assert s.view.marked == {"pagerduty/Q01042", "pagerduty/Q01043"}
        assert "2 marked" in plain(s.view.query_one("#incidents-status"))
        await s.pilot.press("a")
        assert [r[1] for r in s.requests()] == ["pagerduty/Q01042", "pagerduty/Q01043"]
        assert s.view.marked == set()
        await s.pilot.press("space", "escape")
        assert s.view.marked == set()


async def test_r_resolves_only_after_confirming_with_cancel_first(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("r")
        confirm = s.app.screen
        assert isinstance(confirm, ConfirmScreen)
        body = plain(confirm.query_one("#confirm-body"))
        assert "#1042 [FIRING:2] ServiceDown payment-service" in body
        await s.pilot.press("enter")  # Cancel has the focus
        assert not isinstance(s.app.screen, ConfirmScreen)
        assert s.requests() == []
        await s.pilot.press("r")
        # A refresh that puts a new incident above must not change what is resolved.
        snapshot = s.app.engine.snapshot
        newer = incident(1050, "Brand new", "triggered", "high", created_at=at(0))
        fed = with_pagerduty(snapshot)
        await s.feed(replace(fed, incidents=(newer, *fed.incidents)))
        await s.pilot.press("y")
        assert s.requests() == [("incident.resolve", "pagerduty/Q01042", {})]


async def test_e_says_who_the_next_level_pages(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("j", "j", "e")  # #1041, at level 2 of 3
        body = plain(s.app.screen.query_one("#confirm-body"))
        assert "level 2 -> level 3: pages Priya Raman" in body
        await s.pilot.press("y")
        assert s.requests() == [("incident.escalate", "pagerduty/Q01041", {"level": 3})]


async def test_e_at_the_last_level_says_so_and_sends_nothing(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        fed = with_pagerduty(s.app.engine.snapshot)
        top = replace(fed.incidents[0], escalation_level=3)
        await s.feed(replace(fed, incidents=(top, *fed.incidents[1:])))
        await s.pilot.press("e")
        assert not isinstance(s.app.screen, ConfirmScreen)
        assert any("already at the last level (3)" in m for m in messages(s.app))
        assert s.requests() == []


async def test_n_adds_a_note_and_refuses_an_empty_one(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("n")
        form = s.app.screen
        assert isinstance(form, NoteForm)
        await s.pilot.press("enter")
        assert s.app.screen is form
        assert "needs some text" in plain(form.query_one("#note-message"))
        form.query_one("#note-content", Input).value = "rolled back deploy 4521"
        await s.pilot.press("enter")
        assert not isinstance(s.app.screen, NoteForm)
        assert s.requests() == [
            ("incident.note", "pagerduty/Q01042", {"content": "rolled back deploy 4521"})
        ]


async def test_shift_r_reassigns_to_a_user_or_a_policy(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("R")
        form = s.app.screen
        assert isinstance(form, ReassignForm)
        await eventually(lambda: len(form.choices) == 7)
        await s.pilot.press(*"sam")
        await eventually(lambda: [c[2] for c in form.choices] == ["Sam Okafor"])
        await s.pilot.press("enter")
        assert s.requests() == [
            ("incident.reassign", "pagerduty/Q01042", {"user_ids": ["PUS0004"]})
        ]
        await s.pilot.press("R")
        form = s.app.screen
        assert isinstance(form, ReassignForm)
        await s.pilot.press(*"search")
        await eventually(lambda: [c[0] for c in form.choices] == ["escalation_policy"])
        await s.pilot.press("enter")
        assert s.requests()[-1] == (
            "incident.reassign",
            "pagerduty/Q01042",
            {"escalation_policy_id": "PEP0002"},
        )


async def test_enter_shows_details_and_escape_goes_back(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("j", "j", "enter")
        screen = s.app.screen
        assert isinstance(screen, IncidentDetailsScreen)
        assert screen.incident.number == 1041
        overview = plain(screen.query_one("#incident-details-overview"))
        assert "on call now: Omar Haddad" in overview
        assert "[bold]not markup[/bold]" in plain(screen.query_one("#incident-details-title"))
        await eventually(lambda: screen.entries is not None)
        await s.pilot.press("escape")
        assert not isinstance(s.app.screen, IncidentDetailsScreen)
        assert s.cursor() == "pagerduty/Q01041"


async def test_refresh_keeps_the_cursor_on_the_same_incident(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("j", "j")
        fed = with_pagerduty(s.app.engine.snapshot)
        newer = incident(1050, "Brand new", "triggered", "high", created_at=at(0))
        await s.feed(replace(fed, incidents=(newer, *fed.incidents)))
        assert s.view._order[0] == "pagerduty/Q01050"
        assert s.cursor() == "pagerduty/Q01041"
        # The cursor's incident goes away: the cursor stays at the same height.
        others = tuple(i for i in fed.incidents if i.number != 1041)
        await s.feed(replace(fed, incidents=(newer, *others)))
        assert s.cursor() == "pagerduty/Q01039"


async def test_read_only_hides_every_incident_action(tmp_path: Path) -> None:
    async with incidents_view(tmp_path, read_only=True) as s:
        shown = keys_on_screen(s.app)
        assert "details" in shown
        changing = {f"incidents-{v}" for v in ("acknowledge", "resolve", "escalate", "note")}
        assert not shown & {*changing, "incidents-reassign"}
        await s.pilot.press("a", "r", "e", "n", "R")
        assert s.app.screen is s.app.screen_stack[0]
        assert s.requests() == []


async def test_help_lists_incident_keys_and_keymap_remaps_them(tmp_path: Path) -> None:
    async with incidents_view(tmp_path, keys={"incidents-acknowledge": "ctrl+k"}) as s:
        await s.pilot.press("a")
        assert s.requests() == []
        await s.pilot.press("ctrl+k")
        assert s.requests() == [("incident.acknowledge", "pagerduty/Q01042", {})]
        await s.pilot.press("question_mark")
        assert isinstance(s.app.screen, HelpScreen)
        ids = {c.binding_id: c for c in s.app.screen.commands}
        assert ids["incidents-acknowledge"].keys == ("^k",)
        for binding_id in ("incidents-resolve", "incidents-escalate", "incidents-note", "mark"):
            assert binding_id in ids


async def test_a_down_pagerduty_is_stale_not_empty(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.feed(with_pagerduty(s.app.engine.snapshot, reachable=False))
        status = plain(s.view.query_one("#incidents-status"))
        assert "stale: pagerduty (connect timeout)" in status
        assert len(s.view._order) == 5


async def test_new_incident_notifies_in_app_bell_and_desktop(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        written: list[str] = []
        s.app.notifier.write = written.append
        new = incident(1050, "Checkout down;\x1b]0;evil\a", "triggered", "high")
        s.app._on_engine_event(IncidentsRaised((new,)))  # what the engine's listener receives
        await eventually(lambda: any("1 new high-urgency incident" in m for m in messages(s.app)))
        assert "\a" in written
        osc777 = [w for w in written if w.startswith("\x1b]777;notify;")]
        assert osc777
        assert "#1050 Checkout down" in osc777[0]
        assert osc777[0].count(";") == 3


async def test_view_bar_highlights_the_view_and_counts_triggered(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        bar = plain(s.app.query_one("#view-bar"))
        assert "1 Alerts  2 Incidents (2)  3 On-call" in bar
        await s.pilot.click("#view-bar", offset=(30, 0))  # on "3 On-call"
        assert s.app.current_view == "oncall"
