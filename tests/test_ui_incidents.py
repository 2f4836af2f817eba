"""The Incidents view driven with Pilot: keys, confirmations, forms, details, notifications.

A real Engine polls the Alertmanager stand-in and the fake PagerDuty (every exchange checked
against PagerDuty's specs). Actions are asserted on the SubmitActions messages the app produced
and on what reached the fake PagerDuty, and the row shows pending/done/failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from incidents_data import PagerDutyRig, pagerduty_engine
from test_ui_app import keys_on_screen, messages, plain
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Input
from ui_harness import START, eventually

from oncall_tui.models import ActionStatus, Snapshot
from oncall_tui.ui.app import OncallApp, SnapshotArrived, make_app
from oncall_tui.ui.confirm import ConfirmScreen
from oncall_tui.ui.help import HelpScreen
from oncall_tui.ui.incident_details import IncidentDetailsScreen
from oncall_tui.ui.incident_forms import NoteForm, ReassignForm
from oncall_tui.ui.incidents import IncidentsView
from oncall_tui.ui.messages import SubmitActions


class Session:
    def __init__(
        self, app: OncallApp, pilot: Pilot[None], rig: PagerDutyRig, log: list[Message]
    ) -> None:
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

    def key(self, number: int) -> str:
        return self.rig.incident(number).key

    def fake(self, number: int) -> Any:
        return next(i for i in self.rig.fake.incidents if i.number == number)

    async def refreshed(self, check: Any) -> None:
        """Ask the engine to poll now and wait until the view shows the result."""
        self.rig.engine.refresh_now()
        await eventually(check)
        await self.pilot.pause()

    def cursor(self) -> str | None:
        return self.view.cursor_key


@contextlib.asynccontextmanager
async def incidents_view(tmp_path: Path, **config: Any) -> AsyncIterator[Session]:
    async with pagerduty_engine(tmp_path, **config) as rig:
        app = make_app(rig.config, rig.engine, rig.clock)
        log: list[Message] = []
        async with app.run_test(size=(160, 40), notifications=True, message_hook=log.append) as p:
            await p.pause()
            session = Session(app, p, rig, log)
            await p.press("2")
            yield session


def trigger(s: Session, key: str, summary: str) -> None:
    """A new alert reaches the fake PagerDuty (as Alertmanager's Events API call would)."""
    payload = {"summary": summary, "source": "alertmanager", "severity": "critical"}
    s.rig.fake.book.trigger("PSVCPAY", key, payload, START)


async def test_rows_sorted_by_urgency_of_need_and_shown_literally(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        # Triggered first (high urgency first), then acknowledged, then lately resolved.
        assert s.view._order == [s.key(n) for n in (1, 5, 2, 3, 4)]
        assert s.cursor() == s.key(1)
        assert s.app.focused is s.view.table
        row = [str(c) for c in s.view.table.get_row(s.key(2))]
        assert "acked" in row
        assert "L2" in row
        assert "Carol Diaz" in row
        assert "Payments" in row
        assert any("[bold]not markup" in c for c in row)
        status = plain(s.view.query_one("#incidents-status"))
        assert "2 unacknowledged · 2 acknowledged · 1 resolved lately" in status


async def test_a_acknowledges_at_once_and_the_row_shows_it_done(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("a")
        assert not isinstance(s.app.screen, ConfirmScreen)  # acknowledging ends nothing
        assert s.requests() == [("incident.acknowledge", s.key(1), {})]
        await eventually(lambda: s.fake(1).status == "acknowledged")
        await eventually(lambda: s.rig.incident(1).status == "acknowledged")
        await eventually(lambda: s.key(1) in s.view.actions)
        await eventually(lambda: s.view.actions[s.key(1)].status == ActionStatus.DONE)
        await s.pilot.pause()
        assert plain(s.view.query_one("#incidents-action")).startswith("acknowledge: done")
        assert str(s.view.table.get_row(s.key(1))[0]).strip() == "✓"
        assert str(s.view.table.get_row(s.key(1))[1]) == "acked"


async def test_a_failure_is_shown_on_the_row(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        s.fake(1).status = "resolved"  # resolved elsewhere since the last poll
        await s.pilot.press("a")
        await eventually(lambda: s.key(1) in s.view.actions)
        await eventually(lambda: s.view.actions[s.key(1)].status != ActionStatus.PENDING)
        await s.pilot.pause()
        action = s.view.actions[s.key(1)]
        glyph = str(s.view.table.get_row(s.key(1))[0]).strip()
        assert glyph == ("✗" if action.status == ActionStatus.FAILED else "✓")
        line = plain(s.view.query_one("#incidents-action"))
        assert line.startswith(f"acknowledge: {action.status.value}")


async def test_a_is_off_on_an_acknowledged_incident(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("j", "j")
        assert s.cursor() == s.key(2)
        assert s.view.check_action("acknowledge", ()) is None  # shown greyed out
        await s.pilot.press("a")
        assert s.requests() == []


async def test_marks_make_one_request_per_incident(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("space", "space")
        assert s.view.marked == {s.key(1), s.key(5)}
        assert "2 marked" in plain(s.view.query_one("#incidents-status"))
        await s.pilot.press("a")
        assert [r[1] for r in s.requests()] == [s.key(1), s.key(5)]
        assert s.view.marked == set()
        await eventually(lambda: {s.fake(1).status, s.fake(5).status} == {"acknowledged"})
        await s.pilot.press("space", "escape")
        assert s.view.marked == set()


async def test_r_resolves_only_after_confirming_with_cancel_first(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("r")
        confirm = s.app.screen
        assert isinstance(confirm, ConfirmScreen)
        body = plain(confirm.query_one("#confirm-body"))
        assert "#1 [FIRING:2] ServiceDown payment-service" in body
        assert "PagerDuty closes them and stops paging" in body
        await s.pilot.press("enter")  # Cancel has the focus
        assert not isinstance(s.app.screen, ConfirmScreen)
        assert s.requests() == []
        await s.pilot.press("r")
        # A refresh that puts a new incident above must not change what is resolved.
        trigger(s, "new", "Brand new outage")
        await s.refreshed(lambda: len(s.view._order) == 6)
        await s.pilot.press("y")
        assert s.requests() == [("incident.resolve", s.key(1), {})]
        await eventually(lambda: s.fake(1).status == "resolved")
        assert s.fake(6).status == "triggered"


async def test_e_says_who_the_next_level_pages(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("j", "j", "e")  # #2, at level 2 of 3
        body = plain(s.app.screen.query_one("#confirm-body"))
        assert "level 2 -> level 3: pages Dana Ito" in body
        await s.pilot.press("y")
        assert s.requests() == [("incident.escalate", s.key(2), {"level": 3})]
        await eventually(lambda: s.fake(2).level == 3)


async def test_e_at_the_last_level_says_so_and_sends_nothing(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        s.rig.fake.book.update(s.fake(1), {"escalation_level": 3}, "PDANAI6", START)
        await s.refreshed(lambda: s.rig.incident(1).escalation_level == 3)
        await s.pilot.press("e")
        assert not isinstance(s.app.screen, ConfirmScreen)
        assert any("already at the last level (3)" in m for m in messages(s.app))
        assert s.requests() == []


async def test_n_adds_a_note_and_refuses_an_empty_one(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("n")
        form = s.app.screen
        assert isinstance(form, NoteForm)
        assert s.app.focused is form.query_one("#note-content", Input)
        await s.pilot.press("enter")
        assert s.app.screen is form
        assert "needs some text" in plain(form.query_one("#note-message"))
        note = "restarted pay-2, watching"
        form.query_one("#note-content", Input).value = note
        await s.pilot.press("enter")
        assert not isinstance(s.app.screen, NoteForm)
        assert s.requests() == [
            ("incident.note", s.key(1), {"content": "restarted pay-2, watching"})
        ]
        await eventually(
            lambda: [n.content for n in s.fake(1).notes] == ["restarted pay-2, watching"]
        )


async def test_shift_r_reassigns_to_a_user_or_a_policy(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("R")
        form = s.app.screen
        assert isinstance(form, ReassignForm)
        await eventually(lambda: len(form.choices) == 9)  # 7 users, 2 escalation policies
        await s.pilot.press(*"bob")
        await eventually(lambda: [c[2] for c in form.choices] == ["Bob Okafor"])
        await s.pilot.press("enter")
        assert s.requests() == [("incident.reassign", s.key(1), {"user_ids": ["PBOBOK3"]})]
        await s.refreshed(lambda: s.rig.incident(1).assignee == "Bob Okafor")
        await s.pilot.press("R")
        form = s.app.screen
        assert isinstance(form, ReassignForm)
        await s.pilot.press(*"search")
        await eventually(lambda: [c[0] for c in form.choices] == ["escalation_policy"])
        await s.pilot.press("enter")
        assert s.requests()[-1] == (
            "incident.reassign",
            s.key(1),
            {"escalation_policy_id": "PEPSRC2"},
        )


async def test_enter_shows_details_and_escape_goes_back(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("j", "j", "enter")
        screen = s.app.screen
        assert isinstance(screen, IncidentDetailsScreen)
        assert screen.incident.number == 2
        overview = plain(screen.query_one("#incident-details-overview"))
        assert "on call now: Carol Diaz" in overview
        assert "[bold]not markup[/bold]" in plain(screen.query_one("#incident-details-title"))
        await eventually(lambda: screen.notes is not None and screen.entries is not None)
        await s.pilot.pause()
        notes = plain(screen.query_one("#incident-details-notes"))
        assert "Alice Chen: rolled back deploy 4521, watching p99" in notes
        log = plain(screen.query_one("#incident-details-log"))
        assert "incident.acknowledged: acknowledged by Carol Diaz" in log
        await s.pilot.press("escape")
        assert not isinstance(s.app.screen, IncidentDetailsScreen)
        assert s.cursor() == s.key(2)


async def test_details_show_the_alerts_of_the_group_that_opened_it(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("enter")
        screen = s.app.screen
        assert isinstance(screen, IncidentDetailsScreen)
        group = plain(screen.query_one("#incident-details-alerts"))
        assert "Alertmanager group (2 alerts)" in group
        assert "alertname=ServiceDown, service=payment-service" in group
        assert "pay-1:8080" in group
        assert "pay-2:8080" in group


async def test_refresh_keeps_the_cursor_on_the_same_incident(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("j", "j")
        trigger(s, "new", "Brand new outage")
        await s.refreshed(lambda: len(s.view._order) == 6)
        assert s.view._order[0] == s.key(6)  # newest high-urgency triggered on top
        assert s.cursor() == s.key(2)
        # The cursor's incident goes away: the cursor stays at the same height.
        fed = s.app.engine.snapshot
        await s.feed(replace(fed, incidents=tuple(i for i in fed.incidents if i.number != 2)))
        assert s.cursor() == s.key(3)


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
        assert s.requests() == [("incident.acknowledge", s.key(1), {})]
        await s.pilot.press("question_mark")
        assert isinstance(s.app.screen, HelpScreen)
        ids = {c.binding_id: c for c in s.app.screen.commands}
        assert ids["incidents-acknowledge"].keys == ("^k",)
        for binding_id in ("incidents-resolve", "incidents-escalate", "incidents-note", "mark"):
            assert binding_id in ids


async def test_a_down_pagerduty_is_stale_not_empty(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        s.rig.transport.pd_down = True
        await s.refreshed(
            lambda: "stale: pagerduty" in plain(s.view.query_one("#incidents-status"))
        )
        assert len(s.view._order) == 5


async def test_new_incident_notifies_in_app_bell_and_desktop(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        written: list[str] = []
        s.app.notifier.write = written.append
        trigger(s, "new", "Checkout down;\x1b]0;evil\a")
        s.rig.engine.refresh_now()
        await eventually(lambda: any("1 new high-urgency incident" in m for m in messages(s.app)))
        assert "\a" in written
        osc777 = [w for w in written if w.startswith("\x1b]777;notify;")]
        assert osc777
        assert "#6 Checkout down" in osc777[0]
        assert osc777[0].count(";") == 3


async def test_view_bar_highlights_the_view_and_counts_triggered(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        bar = plain(s.app.query_one("#view-bar"))
        assert "1 Alerts  2 Incidents (2)  3 On-call" in bar
        await s.pilot.click("#view-bar", offset=(30, 0))  # on "3 On-call"
        assert s.app.current_view == "oncall"


async def test_a_on_an_alert_acknowledges_its_incident_and_silences_it(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("1", "a")  # cursor on ServiceDown pay-2, whose group opened #1
        confirm = s.app.screen
        assert isinstance(confirm, ConfirmScreen)
        body = plain(confirm.query_one("#confirm-body"))
        assert "Acknowledge in PagerDuty (1):" in body
        assert "#1 [FIRING:2] ServiceDown payment-service" in body
        assert 'instance="pay-2:8080"' in body
        await s.pilot.press("y")
        kinds = [kind for kind, _target, _params in s.requests()]
        assert kinds == ["incident.acknowledge", "silence.create"]
        await eventually(lambda: s.fake(1).status == "acknowledged")
        await eventually(
            lambda: any(
                a.labels.get("instance") == "pay-2:8080" and a.state.value == "silenced"
                for a in s.rig.engine.snapshot.alerts
            )
        )
        comment = s.requests()[1][2]["comment"]
        assert comment == "acknowledged by nina@example.com (incident #1)"


async def test_a_on_an_alert_of_an_acknowledged_incident_only_silences(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        s.rig.fake.book.update(s.fake(1), {"status": "acknowledged"}, "PALICE2", START)
        await s.refreshed(lambda: s.rig.incident(1).status == "acknowledged")
        await s.pilot.press("1", "a")
        body = plain(s.app.screen.query_one("#confirm-body"))
        assert "already acknowledged by Alice Chen" in body
        await s.pilot.press("y")
        assert [kind for kind, _t, _p in s.requests()] == ["silence.create"]


async def test_details_keys_act_on_the_incident_shown(tmp_path: Path) -> None:
    async with incidents_view(tmp_path) as s:
        await s.pilot.press("j", "j", "enter")  # #2, acknowledged: no `a` here
        screen = s.app.screen
        assert isinstance(screen, IncidentDetailsScreen)
        assert screen.check_action("act", ("acknowledge",)) is None
        await s.pilot.press("a")
        assert s.app.screen is screen
        await s.pilot.press("e")  # back to the list, with the escalation to confirm
        confirm = s.app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert "level 2 -> level 3" in plain(confirm.query_one("#confirm-body"))
        await s.pilot.press("y")
        assert s.requests() == [("incident.escalate", s.key(2), {"level": 3})]
        assert isinstance(s.app.screen.query_one(IncidentsView), IncidentsView)


async def test_only_when_on_call_keeps_bell_and_desktop_quiet_off_call(tmp_path: Path) -> None:
    notify = {"only_when_on_call": True, "bell": True, "desktop": True}
    operator = {"name": "Zoe Off", "email": "zoe@example.com"}  # on no schedule
    async with incidents_view(tmp_path, notify=notify, operator=operator) as s:
        written: list[str] = []
        s.app.notifier.write = written.append
        trigger(s, "new", "Checkout down")
        s.rig.engine.refresh_now()
        await eventually(lambda: any("1 new high-urgency incident" in m for m in messages(s.app)))
        assert written == []


async def test_only_when_on_call_rings_for_the_operator_on_call(tmp_path: Path) -> None:
    notify = {"only_when_on_call": True, "bell": True, "desktop": False}
    async with incidents_view(tmp_path, notify=notify) as s:  # Nina is on call at L1
        written: list[str] = []
        s.app.notifier.write = written.append
        trigger(s, "new", "Checkout down")
        s.rig.engine.refresh_now()
        await eventually(lambda: "\a" in written)
