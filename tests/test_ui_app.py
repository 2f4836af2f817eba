"""The dashboard driven with Pilot over a real Engine polling the Alertmanager stand-in.

Every key of DESIGN.md section 5 that this slice owns is pressed here and its effect asserted on
the app's state (views, cursor, marks, screens, engine actions, notifications, terminal bytes).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Input, Static
from textual.widgets._footer import FooterKey
from ui_harness import START, Rig, eventually, raw_alert, running_engine

from oncall_tui import runtime
from oncall_tui.engine import ActionRequest
from oncall_tui.models import ActionStatus, AlertState
from oncall_tui.sandbox.standin import format_time
from oncall_tui.ui.alert_table import AlertTable
from oncall_tui.ui.alerts import NOTHING_TO_ACKNOWLEDGE, AlertsView
from oncall_tui.ui.app import OncallApp, make_app
from oncall_tui.ui.confirm import ConfirmScreen
from oncall_tui.ui.details import AlertDetailsScreen
from oncall_tui.ui.fire_form import FireAlertForm
from oncall_tui.ui.footer import KeyFooter
from oncall_tui.ui.header import SourceBar
from oncall_tui.ui.help import HelpScreen
from oncall_tui.ui.log_view import LogView
from oncall_tui.ui.silence_form import SilenceForm


@contextlib.asynccontextmanager
async def dashboard(
    tmp_path: Path, size: tuple[int, int] = (120, 40), **config: Any
) -> AsyncIterator[tuple[OncallApp, Pilot[None], Rig]]:
    async with running_engine(tmp_path, **config) as rig:
        app = make_app(rig.config, rig.engine, rig.clock)
        async with app.run_test(size=size, notifications=True) as pilot:
            await pilot.pause()
            yield app, pilot, rig


def table(app: OncallApp) -> AlertTable:
    return app.query_one(AlertTable)


def cursor(app: OncallApp) -> str:
    alert = table(app).cursor_alert
    assert alert is not None
    return f"{alert.alertname}/{alert.labels.get('instance', '')}"


def plain(widget: Widget) -> str:
    """What a Static shows, as plain text."""
    assert isinstance(widget, Static)
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


def palette_texts(app: OncallApp) -> list[str]:
    commands = app.screen.query_one(CommandList)
    return [str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)]


def messages(app: OncallApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


def keys_on_screen(app: OncallApp) -> set[str]:
    return {b.binding.id or "" for b in app.screen.active_bindings.values()}


async def test_number_keys_switch_views_and_unconfigured_views_say_so(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as (app, pilot, _rig):
        switcher = app.query_one(ContentSwitcher)
        assert switcher.current == "alerts"
        for key, view in [("2", "incidents"), ("3", "oncall"), ("4", "statuspage")]:
            await pilot.press(key)
            assert switcher.current == view
            text = plain(app.query_one(f"#{view} .placeholder-text"))
            assert "not configured" in text
        await pilot.press("5")
        assert switcher.current == "silences"
        await pilot.press("6")
        assert switcher.current == "log"
        assert isinstance(app.query_one("#log"), LogView)
        assert app.focused is not None
        assert app.query_one("#log") in app.focused.ancestors_with_self
        await pilot.press("1")
        assert switcher.current == "alerts"
        assert app.focused is table(app)


async def test_cursor_keys_move_over_alerts_in_group_order(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, _rig):
        # Criticals first (newest first inside a group), then warnings, then the rest.
        assert cursor(app) == "ServiceDown/pay-2:8080"
        await pilot.press("j")
        assert cursor(app) == "ServiceDown/pay-1:8080"
        await pilot.press("down")
        assert cursor(app) == "DiskFilling/db-1:9100"  # group headers are skipped
        await pilot.press("k")
        assert cursor(app) == "ServiceDown/pay-1:8080"
        await pilot.press("G")
        assert cursor(app) == "Watchdog/"
        await pilot.press("up")
        assert cursor(app) == "HighLatency/checkout-1:8080"
        await pilot.press("g")
        assert cursor(app) == "ServiceDown/pay-2:8080"
        await pilot.press("k")  # already at the top: stays
        assert cursor(app) == "ServiceDown/pay-2:8080"
        await pilot.press("pagedown")
        assert cursor(app) == "Watchdog/"
        await pilot.press("pageup")
        assert cursor(app) == "ServiceDown/pay-2:8080"
        # A click picks the row under the mouse (line 0 is the column header).
        await pilot.click(AlertTable, offset=(5, 5))
        assert cursor(app) == "DiskFilling/db-1:9100"


async def test_enter_shows_details_and_escape_goes_back(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, _rig):
        await pilot.press("j", "j", "j")
        assert cursor(app) == "HighLatency/checkout-1:8080"
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, AlertDetailsScreen)
        assert screen.alert.alertname == "HighLatency"
        body = " ".join(plain(s) for s in screen.query(".details-section"))
        for expected in ("checkout-1:8080", "service", "severity", "prod-a", "not configured"):
            assert expected in body
        assert "[bold]not markup[/bold]" in plain(screen.query_one("#details-title"))
        await pilot.press("escape")
        assert not isinstance(app.screen, AlertDetailsScreen)
        assert cursor(app) == "HighLatency/checkout-1:8080"


async def test_filter_takes_matchers_or_text_and_escape_clears_it(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, _rig):
        view = app.query_one(AlertsView)
        await pilot.press("slash")
        box = app.query_one("#alerts-filter", Input)
        assert app.focused is box
        await pilot.press("s")  # keys typed in the box are text, not actions
        assert not isinstance(app.screen, SilenceForm)
        box.value = 'severity="warning"'
        await pilot.pause()
        assert table(app).model.shown == 2
        await pilot.press("enter")
        assert app.focused is table(app)
        assert {a.alertname for a in table(app).model.shown_alerts()} == {
            "DiskFilling",
            "HighLatency",
        }
        await pilot.press("escape")
        assert table(app).model.shown == 5
        assert box.value == ""

        await pilot.press("slash")
        box.value = "postgres"
        await pilot.press("enter")
        assert [a.alertname for a in table(app).model.shown_alerts()] == ["DiskFilling"]
        await pilot.press("escape")

        await pilot.press("slash")
        box.value = 'severity=~"("'
        await pilot.pause()
        status = plain(view.query_one("#alerts-status"))
        assert "filter:" in status
        assert "regular expression" in status
        assert table(app).model.shown == 5  # a broken filter hides nothing
        await pilot.press("escape")
        assert app.focused is table(app)


async def test_space_marks_and_s_silences_the_marked_alerts(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, rig):
        await pilot.press("space", "space")  # marks both payment-service alerts
        assert len(table(app).marks) == 2
        await pilot.press("s")
        form = app.screen
        assert isinstance(form, SilenceForm)
        assert {a.labels["instance"] for a in form._alerts} == {"pay-1:8080", "pay-2:8080"}
        await pilot.press("escape")
        assert not isinstance(app.screen, SilenceForm)
        assert len(table(app).marks) == 2  # cancelled: marks kept

        await pilot.press("s")
        request = ActionRequest(
            "silence.create",
            "prod-a",
            {
                "cluster": "prod-a",
                "matchers": ['alertname="ServiceDown"', 'service="payment-service"'],
                "duration_seconds": 3600,
                "comment": "deploy in progress",
            },
        )
        app.screen.dismiss([request])
        await eventually(lambda: any(a.status == ActionStatus.DONE for a in app.finished_actions))
        assert not table(app).marks
        await eventually(lambda: any("Action done" in m for m in messages(app)))
        # The silence reached Alertmanager and the next poll shows the alerts silenced.
        await eventually(
            lambda: (
                {a.state for a in rig.engine.snapshot.alerts if a.alertname == "ServiceDown"}
                == {AlertState.SILENCED}
            )
        )
        await eventually(lambda: table(app).model.hidden_suppressed == 2)


async def test_s_without_marks_silences_the_cursor_alert(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, _rig):
        await pilot.press("G", "s")
        form = app.screen
        assert isinstance(form, SilenceForm)
        assert [a.alertname for a in form._alerts] == ["Watchdog"]


async def test_i_shows_and_hides_silenced_alerts(tmp_path: Path) -> None:
    silence = {
        "matchers": [{"name": "alertname", "value": "Watchdog", "isRegex": False}],
        "startsAt": format_time(START),
        "endsAt": "2026-11-23T05:00:00.000Z",
        "createdBy": "ops",
        "comment": "always firing",
    }
    async with running_engine(tmp_path, silences=[silence]) as rig:
        app = make_app(rig.config, rig.engine, rig.clock)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            assert table(app).model.shown == 4
            status = plain(app.query_one("#alerts-status"))
            assert "1 silenced/inhibited hidden" in status
            await pilot.press("i")
            shown = {a.alertname: a for a in table(app).model.shown_alerts()}
            assert shown["Watchdog"].state == AlertState.SILENCED
            await pilot.press("i")
            assert table(app).model.shown == 4


async def test_t_fires_a_test_alert_through_the_engine(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, rig):
        await pilot.press("t")
        assert isinstance(app.screen, FireAlertForm)
        request = ActionRequest(
            "alert.fire",
            "prod-a",
            {
                "cluster": "prod-a",
                "labels": {"alertname": "PipelineTest", "severity": "info"},
                "annotations": {"summary": "test"},
                "to": "alertmanager",
            },
        )
        app.screen.dismiss(request)
        await eventually(
            lambda: any(a.alertname == "PipelineTest" for a in table(app).model.shown_alerts())
        )
        # The outcome is reported once the engine's act() returns, which may be after the poll.
        await eventually(
            lambda: any("Fire test alert PipelineTest: done" in m for m in messages(app))
        )
        assert rig.engine.snapshot.alerts


async def test_ctrl_r_refreshes_now_and_keeps_cursor_and_marks(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, rig):
        await pilot.press("j", "j", "j")  # HighLatency
        await pilot.press("space")  # marks it, cursor moves on to Watchdog
        assert cursor(app) == "Watchdog/"
        rig.standin.put_alerts(
            [raw_alert("NewCritical", "critical", minutes_ago=0, service="api", instance="a-1")]
        )
        await pilot.press("ctrl+r")
        await eventually(
            lambda: any(a.alertname == "NewCritical" for a in table(app).model.shown_alerts())
        )
        # The new group sorts above; the cursor and the mark stay on their alerts.
        assert cursor(app) == "Watchdog/"
        marked = table(app).marked_alerts()
        assert [a.alertname for a in marked] == ["HighLatency"]


async def test_the_footer_is_rebuilt_only_when_its_keys_change(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, rig):
        await eventually(lambda: table(app).cursor_alert is not None)
        await pilot.pause()  # the first alerts enabled the keys that need a cursor
        footer = app.query_one(KeyFooter)
        rebuilt: list[int] = []
        recompose = footer.recompose

        async def counting_recompose() -> None:
            rebuilt.append(1)
            await recompose()

        footer.recompose = counting_recompose  # type: ignore[method-assign]
        rig.standin.put_alerts([raw_alert("Another", "warning", minutes_ago=1, service="x")])
        await pilot.press("ctrl+r")
        await eventually(
            lambda: any(a.alertname == "Another" for a in table(app).model.shown_alerts())
        )
        await pilot.press("j", "j")
        await pilot.pause()
        assert not rebuilt, "new alerts and cursor moves change no key"

        await pilot.press("space")  # a mark makes escape mean "clear marks": the key appears
        await pilot.pause()
        assert rebuilt
        assert "Clear" in [key.description for key in footer.query(FooterKey)]


def footer_keys(app: OncallApp) -> list[str]:
    return [key.description for key in app.query_one(KeyFooter).query(FooterKey)]


async def test_the_footer_keeps_help_and_quit_when_the_terminal_is_narrow(tmp_path: Path) -> None:
    async with dashboard(tmp_path, size=(160, 40)) as (app, pilot, _rig):
        await eventually(lambda: table(app).cursor_alert is not None)
        await pilot.press("space")  # a mark adds "esc Clear": too many keys for 80 columns
        await pilot.pause()
        wide = footer_keys(app)
        assert wide[-3:] == ["Fire test", "Help", "Quit"]
        assert "Clear" in wide

        await pilot.resize_terminal(80, 24)
        await eventually(lambda: footer_keys(app) != wide)
        narrow = footer_keys(app)
        assert narrow[-2:] == ["Help", "Quit"], "the rightmost other keys make room"
        assert narrow == [key for key in wide if key != "Fire test"]
        used = sum(key.region.width + 1 for key in app.query_one(KeyFooter).query(FooterKey))
        assert used <= 80

        await pilot.resize_terminal(160, 40)
        await eventually(lambda: footer_keys(app) == wide)


async def test_the_dashboard_process_tunes_its_runtime_at_start_and_after_the_first_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settled: list[str] = []
    # Recorded, not done: gc.freeze() in the test process would keep every later test's garbage.
    monkeypatch.setattr(runtime, "settle", lambda: settled.append("settle"))
    monkeypatch.setattr(runtime, "favour_the_event_loop", lambda: settled.append("switch"))
    async with running_engine(tmp_path) as rig:
        app = make_app(rig.config, rig.engine, rig.clock, tune_runtime=True)
        async with app.run_test(size=(120, 40)) as pilot:
            await eventually(lambda: table(app).model.total > 0)
            rig.engine.refresh_now()
            await pilot.pause()
            await eventually(lambda: len(settled) == 3)
            assert sorted(settled) == ["settle", "settle", "switch"], "start-up and first load"
        plain_app = make_app(rig.config, rig.engine, rig.clock)
        async with plain_app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
        assert len(settled) == 3, "only when asked"


async def test_question_mark_shows_help_from_live_bindings(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, _rig):
        await pilot.press("question_mark")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        ids = {c.binding_id: c for c in help_screen.commands}
        for binding_id in ("view-alerts", "refresh", "alerts-silence", "alerts-filter", "quit"):
            assert binding_id in ids
        assert ids["alerts-silence"].keys == ("s",)
        assert set(ids["cursor-down"].keys) == {"j", "↓"}
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_keys_from_config_remap_bindings_everywhere(tmp_path: Path) -> None:
    keys = {"alerts-silence": "x", "view-silences": "f5", "cursor-down": "n"}
    async with dashboard(tmp_path, keys=keys) as (app, pilot, _rig):
        await pilot.press("n")
        assert cursor(app) == "ServiceDown/pay-1:8080"
        await pilot.press("j")  # j is no longer bound
        assert cursor(app) == "ServiceDown/pay-1:8080"
        await pilot.press("s")
        assert not isinstance(app.screen, SilenceForm)
        await pilot.press("x")
        assert isinstance(app.screen, SilenceForm)
        await pilot.press("escape")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        ids = {c.binding_id: c for c in app.screen.commands}
        assert ids["alerts-silence"].keys == ("x",)
        assert ids["view-silences"].keys == ("f5",)
        await pilot.press("escape")
        await pilot.press("f5")
        assert app.query_one(ContentSwitcher).current == "silences"


async def test_ctrl_p_palette_lists_and_runs_actions(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, _rig):
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"silenced")
        await eventually(lambda: any("Show or hide silenced" in t for t in palette_texts(app)))
        await pilot.press("enter")
        await eventually(lambda: table(app).model.show_suppressed)


async def test_read_only_hides_and_refuses_changing_actions(tmp_path: Path) -> None:
    async with dashboard(tmp_path, read_only=True) as (app, pilot, rig):
        shown = keys_on_screen(app)
        assert "details" in shown
        assert not shown & {"alerts-silence", "alerts-acknowledge", "fire-test-alert"}
        await pilot.press("s")
        assert not isinstance(app.screen, SilenceForm)
        await pilot.press("t")
        assert not isinstance(app.screen, FireAlertForm)
        assert "read-only" in plain(app.query_one(SourceBar))
        from oncall_tui.ui.commands import catalogue

        ids = {c.binding_id for c in catalogue(app, app.views_for_catalogue())}
        assert "alerts-silence" not in ids
        assert "fire-test-alert" not in ids
        # A request that still reaches the app is refused by the engine and reported.
        from oncall_tui.ui.messages import SubmitActions

        app.post_message(
            SubmitActions([ActionRequest("silence.expire", "prod-a/x")], "Expire 1 silence")
        )
        await eventually(lambda: any("read-only" in m for m in messages(app)))
        assert rig.engine.read_only


async def test_a_on_an_alert_without_incident_silences_it_after_confirming(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as (app, pilot, rig):
        await pilot.press("a")  # cursor on ServiceDown pay-2
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        body = plain(confirm.query_one("#confirm-body"))
        assert "No open incident" in body
        assert 'instance="pay-2:8080"' in body
        assert "until the alert resolves" in body
        await pilot.press("y")
        await eventually(lambda: any(a.status == ActionStatus.DONE for a in app.finished_actions))
        done = app.finished_actions[0]
        assert done.kind == "silence.create"
        assert done.params["until_resolved"] is True
        await eventually(
            lambda: any(
                a.state == AlertState.SILENCED and a.labels.get("instance") == "pay-2:8080"
                for a in rig.engine.snapshot.alerts
            )
        )


async def test_a_with_silencing_off_and_no_incident_says_there_is_nothing_to_do(
    tmp_path: Path,
) -> None:
    acknowledge = {"silence_alerts": False}
    async with dashboard(tmp_path, acknowledge=acknowledge) as (app, pilot, _rig):
        await pilot.press("a")
        assert not isinstance(app.screen, ConfirmScreen)
        assert any(NOTHING_TO_ACKNOWLEDGE in m for m in messages(app))


async def test_escape_clears_marks_then_filter(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, _rig):
        await pilot.press("slash")
        app.query_one("#alerts-filter", Input).value = "service"
        await pilot.press("enter", "space")
        assert table(app).marks
        assert table(app).model.filter.text == "service"
        await pilot.press("escape")
        assert not table(app).marks
        assert table(app).model.filter.text == "service"
        await pilot.press("escape")
        assert table(app).model.filter.text == ""


async def test_new_critical_alert_notifies_in_app_bell_and_desktop(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, rig):
        written: list[str] = []
        app.notifier.write = written.append
        rig.standin.put_alerts(
            [
                raw_alert(
                    "DatabaseDown",
                    "critical",
                    minutes_ago=0,
                    service="db",
                    summary="primary down;\x1b]0;evil\a",
                )
            ]
        )
        await pilot.press("ctrl+r")
        await eventually(lambda: any("new critical alert" in m for m in messages(app)))
        assert "\a" in written
        osc9 = [w for w in written if w.startswith("\x1b]9;")]
        osc777 = [w for w in written if w.startswith("\x1b]777;notify;")]
        assert osc9
        assert osc777
        assert "DatabaseDown" in osc9[0]
        # Text from the alert cannot end the sequence early or add fields.
        assert osc777[0].count(";") == 3
        assert "\x1b" not in osc777[0][1:]


async def test_notify_config_turns_bell_and_desktop_off(tmp_path: Path) -> None:
    notify = {"min_severity": "warning", "bell": False, "desktop": False}
    async with dashboard(tmp_path, notify=notify) as (app, pilot, rig):
        written: list[str] = []
        app.notifier.write = written.append
        rig.standin.put_alerts([raw_alert("QueueSlow", "warning", minutes_ago=0)])
        await pilot.press("ctrl+r")
        await eventually(lambda: any("new warning alert" in m for m in messages(app)))
        assert written == []


async def test_alert_text_is_never_markup(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, _pilot, _rig):
        lines = [table(app).render_line(y).text for y in range(10)]
        assert any("[bold]not markup" in line for line in lines)


async def test_header_counts_and_unsubscribes_on_exit(tmp_path: Path) -> None:
    async with running_engine(tmp_path) as rig:
        before = len(rig.engine._listeners)
        app = make_app(rig.config, rig.engine, rig.clock)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            assert len(rig.engine._listeners) == before + 1
            header = plain(app.query_one(SourceBar))
            assert "2 critical" in header
            assert "2 warning" in header
            assert "prod-a" in header
            assert "incidents: not configured" in header
            await pilot.press("q")
            await pilot.pause()
        assert len(rig.engine._listeners) == before
        assert app.return_code == 0


async def test_nothing_binds_the_tmux_prefixes(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, _rig):
        await pilot.press("slash")  # the filter box is now in the binding chain
        assert isinstance(app.focused, Input)
        for node in [app, *app.screen.walk_children(with_self=True)]:
            keys = {key for key, _binding in node._bindings}
            assert not keys & {"ctrl+a", "ctrl+b"}, node
        assert not set(app.screen.active_bindings) & {"ctrl+a", "ctrl+b"}


async def test_a_down_source_is_stale_not_empty(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, pilot, rig):
        rig.transport.down = True
        rig.clock.advance(90)
        await pilot.press("ctrl+r")
        await eventually(lambda: "stale since" in plain(app.query_one(SourceBar)))
        header = plain(app.query_one(SourceBar))
        assert "prod-a ✖ stale since 02:00:00" in header  # the last data it gave
        await eventually(lambda: "stale: prod-a" in plain(app.query_one("#alerts-status")))
        assert table(app).model.shown == 5  # the last known alerts stay on screen
