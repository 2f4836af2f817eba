"""Pilot tests of the Silences view, the silence form and the test-alert form.

A real Engine polls the Alertmanager stand-in over HTTP; every assertion about an action's effect
reads the stand-in's own API, not what the UI returned.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import Button, DataTable, Input, Select, Static, TextArea
from ui_silences_harness import (
    AM,
    T0,
    Host,
    Rig,
    iso,
    make_config,
    rig,
    standard_scene,
    until,
)

from oncall_tui.engine import ActionRequest
from oncall_tui.matchers import matches_all, parse_matchers
from oncall_tui.models import Alert, AlertState, Silence, SilenceState
from oncall_tui.sandbox.standin import parse_time
from oncall_tui.ui.confirm import ConfirmScreen
from oncall_tui.ui.fire_form import FireAlertForm, parse_labels
from oncall_tui.ui.messages import SubmitActions
from oncall_tui.ui.silence_form import ALL_CLUSTERS, ExtendScreen, SilenceForm
from oncall_tui.ui.silence_rows import match_counts
from oncall_tui.ui.silences import SilencesView


def _plain(widget: Static) -> str:
    return str(widget.render())


def _view(app: Host) -> SilencesView:
    return app.query_one(SilencesView)


def _cell(view: SilencesView, key: str, column: str) -> str:
    value = view.table.get_cell(key, column)
    assert isinstance(value, Text)  # cells are Text: never parsed as markup
    return value.plain


def _active(silences: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    return [
        s
        for s in silences
        if s["status"]["state"] == "active" and any(text in m["value"] for m in s["matchers"])
    ]


def _submit_form_result(app: Host) -> Any:
    """What the real app does with a form's result: submit it through SubmitActions."""

    def done(result: list[ActionRequest] | ActionRequest | None) -> None:
        if result is None:
            return
        requests = result if isinstance(result, list) else [result]
        app.post_message(SubmitActions(requests, "from form"))

    return done


# -- the silence form ---------------------------------------------------------------------------


async def test_form_prefills_stable_labels_and_preview_follows_edits(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await standard_scene(r)
        payments = [a for a in r.engine.snapshot.alerts if a.labels["service"] == "payments"]
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(100, 30)) as pilot:
            form = SilenceForm(r.engine, r.clock, alerts=payments)
            app.push_screen(form)
            await pilot.pause()
            matchers = form.query_one("#silence-matchers", TextArea)
            # severity is not a stable label; alertname and service are, instance is absent.
            assert matchers.text == 'alertname="HighLatency", service="payments"'
            preview = form.query_one("#silence-preview", DataTable)
            count = form.query_one("#silence-preview-count", Static)
            assert preview.row_count == 1
            assert "1 alert would be silenced" in _plain(count)

            matchers.text = 'alertname="HighLatency"'
            await pilot.pause()
            assert preview.row_count == 2
            assert "2 alerts would be silenced (1 already silenced)" in _plain(count)

            # Typed by hand, key by key: the preview follows every keystroke.
            matchers.text = ""
            matchers.focus()
            await pilot.press(*'severity="warning"')
            await pilot.pause()
            assert preview.row_count == 2
            await pilot.press("backspace", "backspace", "backspace")
            await pilot.pause()
            assert "fix the matchers" in _plain(count)
            await pilot.press("x", '"')
            await pilot.pause()
            assert "matches no alert right now" in _plain(count)
            assert preview.row_count == 0


async def test_form_names_a_bad_matcher_and_refuses_to_submit(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await standard_scene(r)
        results: list[Any] = []
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(100, 30)) as pilot:
            form = SilenceForm(r.engine, r.clock, alerts=r.engine.snapshot.alerts[:1])
            app.push_screen(form, results.append)
            await pilot.pause()
            matchers = form.query_one("#silence-matchers", TextArea)
            message = form.query_one("#silence-matchers-message", Static)

            matchers.text = 'service=~"(pay"'
            await pilot.pause()
            assert message.display
            assert "bad regular expression '(pay'" in _plain(message)

            matchers.text = 'service="a" oops'
            await pilot.pause()
            assert "expected ','" in _plain(message)

            matchers.text = 'service=~".*"'
            await pilot.pause()
            assert "must not match the empty string" in _plain(message)

            matchers.text = 'alertname="A"\nnot a matcher'
            await pilot.pause()
            assert _plain(message).startswith("line 2: cannot read a matcher")

            form.query_one("#silence-comment", Input).value = "why"
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert app.screen is form
            assert results == []
            assert app.focused is matchers  # sent back to the problem


async def test_form_submit_creates_the_silence_in_alertmanager(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await standard_scene(r)
        payments = [a for a in r.engine.snapshot.alerts if a.labels["service"] == "payments"]
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(100, 30)) as pilot:
            form = SilenceForm(r.engine, r.clock, alerts=payments)
            app.push_screen(form, _submit_form_result(app))
            await pilot.pause()
            # The comment is required: ctrl+s without one keeps the form open and says so.
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert app.screen is form
            assert "a comment is required" in _plain(
                form.query_one("#silence-comment-message", Static)
            )
            assert app.focused is form.query_one("#silence-comment", Input)
            await pilot.press(*"deploy rollback")
            duration = form.query_one("#silence-duration", Input)
            duration.value = "45m"
            await pilot.pause()
            assert "in 45m" in _plain(form.query_one("#silence-ends", Static))
            await pilot.press("enter")  # enter in the comment submits the form
            await until(lambda: bool(app.outcomes))
            assert app.outcomes[0].status.value == "done", app.outcomes[0].result

        created = _active(await r.standin_silences(), "payments")
        assert len(created) == 1
        silence = created[0]
        assert {(m["name"], m["value"], m["isRegex"]) for m in silence["matchers"]} == {
            ("alertname", "HighLatency", False),
            ("service", "payments", False),
        }
        assert silence["createdBy"] == "nina@example.com"
        assert silence["comment"].startswith("deploy rollback")
        ends = parse_time(silence["endsAt"]) - parse_time(silence["startsAt"])
        assert ends == timedelta(minutes=45)


async def test_form_for_marked_alerts_makes_one_silence_per_matcher_set(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await standard_scene(r)
        await r.post_alert({"alertname": "DiskFull", "service": "db", "instance": "db-1", "x": "1"})
        await r.refresh()
        alerts = r.engine.snapshot.alerts
        assert len(alerts) == 4
        requests: list[list[ActionRequest] | None] = []
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(100, 30)) as pilot:
            form = SilenceForm(r.engine, r.clock, alerts=alerts)
            app.push_screen(form, requests.append)
            await pilot.pause()
            # Two DiskFull alerts share their stable labels: 3 matcher sets for 4 alerts.
            assert len(form.query_one("#silence-matchers", TextArea).text.splitlines()) == 3
            assert "3 silences will be created" in _plain(
                form.query_one("#silence-matchers-message", Static)
            )
            assert "4 alerts would be silenced" in _plain(
                form.query_one("#silence-preview-count", Static)
            )
            await pilot.press(*"night noise", "enter")
            await pilot.pause()
        assert requests
        assert requests[0] is not None
        assert len(requests[0]) == 3
        assert {r.kind for r in requests[0]} == {"silence.create"}
        assert all(r.params["cluster"] == "prod" for r in requests[0])
        assert all(r.params["duration_seconds"] == 7200 for r in requests[0])


# -- the Silences view --------------------------------------------------------------------------


async def _open_view(r: Rig, pilot: Any, app: Host) -> SilencesView:
    return await _open_view_rows(pilot, app, 3)


async def _open_view_rows(pilot: Any, app: Host, rows: int) -> SilencesView:
    await pilot.pause()
    view = _view(app)
    await until(lambda: view.table.row_count == rows)
    return view


async def test_view_flags_expiring_soon_and_matching_nothing(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await standard_scene(r)
        search = r.silence_with("search").key
        gone = r.silence_with("gone").key
        disk = r.silence_with("DiskFull").key
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(160, 30)) as pilot:
            view = await _open_view(r, pilot, app)
            assert _cell(view, search, "flags") == "EXPIRING"
            assert _cell(view, gone, "flags") == "NO MATCH"
            assert _cell(view, disk, "flags") == ""
            assert _cell(view, gone, "alerts") == "0"
            assert _cell(view, disk, "alerts") == "1"
            # Soonest to end first.
            assert view.table.get_row_index(search) == 0
            status = _plain(view.query_one("#silences-status", Static))
            assert "1 expiring within 1h" in status
            assert "1 matching no alert" in status
            # Comments are shown as typed, never as markup (and without the engine's marker).
            assert _cell(view, disk, "comment") == "ticket OPS-12 [red]x[/]"

            # The alert that the silence matched resolves: the silence now matches nothing.
            await r.http.post(
                f"{AM}/api/v2/alerts",
                json=[
                    {
                        "labels": {
                            "alertname": "DiskFull",
                            "service": "db",
                            "instance": "db-1",
                            "severity": "warning",
                        },
                        "endsAt": iso(T0),
                    }
                ],
            )
            r.clock.advance(1)
            await r.refresh()
            await pilot.pause()
            assert _cell(view, disk, "flags") == "NO MATCH"
            # Time passes: three hours on, DiskFull's silence ends within the hour too.
            r.clock.advance(3 * 3600 + 60)
            await r.refresh()
            await pilot.pause()
            assert _cell(view, disk, "flags") == "EXPIRING NO MATCH"


async def test_expire_starts_on_cancel_then_confirm_expires_it(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await standard_scene(r)
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(120, 30)) as pilot:
            view = await _open_view(r, pilot, app)
            assert view.cursor_key == r.silence_with("search").key
            await pilot.press("x")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            assert app.focused is app.screen.query_one("#cancel", Button)
            body = _plain(app.screen.query_one("#confirm-body", Static))
            assert 'service="search"' in body
            assert "stop muting 1 alert" in body
            await pilot.press("enter")  # the reflex: must cancel
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)
            assert app.submitted == []
            assert len(_active(await r.standin_silences(), "search")) == 1

            await pilot.press("x")
            await pilot.pause()
            assert _plain(app.screen.query_one("#confirm-title", Static)) == "Expire 1 silence?"
            await pilot.press("y")
            await until(lambda: bool(app.outcomes))
            assert app.outcomes[0].status.value == "done", app.outcomes[0].result
            assert app.submitted[0].description == "Expire 1 silence"

        silences = await r.standin_silences()
        assert _active(silences, "search") == []
        states = [s["status"]["state"] for s in silences if s["matchers"][0]["value"] == "search"]
        assert states == ["expired"]
        assert len(_active(silences, "gone")) == 1  # only the one asked for


async def test_extend_asks_how_long_then_confirms(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await standard_scene(r)
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(120, 30)) as pilot:
            await _open_view(r, pilot, app)
            await pilot.press("e")
            await pilot.pause()
            assert isinstance(app.screen, ExtendScreen)
            duration = app.screen.query_one("#extend-duration", Input)
            assert duration.value == "2h"
            duration.value = "soon"
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, ExtendScreen)  # refused, with the reason shown
            assert "expected a duration" in _plain(app.screen.query_one("#extend-message", Static))
            duration.value = "1h"
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            assert app.focused is app.screen.query_one("#cancel", Button)
            body = _plain(app.screen.query_one("#confirm-body", Static))
            assert "02:30:00 -> 03:30:00" in body
            await pilot.press("right", "enter")  # move to the Confirm button and press it
            await until(lambda: bool(app.outcomes))
            assert app.outcomes[0].status.value == "done", app.outcomes[0].result

        extended = _active(await r.standin_silences(), "search")
        assert len(extended) == 1
        assert parse_time(extended[0]["endsAt"]) == T0 + timedelta(hours=1, minutes=30)


async def test_marks_survive_refresh_and_bulk_expire_says_how_many(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await standard_scene(r)
        search, gone = r.silence_with("search").key, r.silence_with("gone").key
        disk = r.silence_with("DiskFull").key
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(120, 30)) as pilot:
            view = await _open_view(r, pilot, app)
            await pilot.press("space", "escape")  # escape clears the marks
            await pilot.pause()
            assert view.marked == set()
            await pilot.press("k")  # back to the top
            await pilot.press("space", "space")  # marks search and gone, cursor moves down
            await pilot.pause()
            assert view.marked == {search, gone}
            assert view.cursor_key == disk
            assert _cell(view, search, "mark") == "●"
            assert "2 marked" in _plain(view.query_one("#silences-status", Static))

            # A new silence arrives and sorts first: cursor and marks stay on their silences.
            await r.create_silence(['service="cache"'], hours=0.25, comment="cache flush")
            await r.refresh()
            await pilot.pause()
            assert view.table.row_count == 4
            assert view.cursor_key == disk
            assert view.marked == {search, gone}

            await pilot.press("x")
            await pilot.pause()
            assert _plain(app.screen.query_one("#confirm-title", Static)) == "Expire 2 silences?"
            await pilot.press("y")
            await until(lambda: len(app.outcomes) == 2)
            assert all(o.status.value == "done" for o in app.outcomes)
            assert view.marked == set()

        silences = await r.standin_silences()
        assert _active(silences, "search") == []
        assert _active(silences, "gone") == []
        assert len(_active(silences, "DiskFull")) == 1  # the cursor row was not included
        assert len(_active(silences, "cache")) == 1


async def test_expired_silences_hidden_until_toggled(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await standard_scene(r)
        search = r.silence_with("search").key
        await r.engine.act(ActionRequest("silence.expire", target=search))
        await r.refresh()
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            view = _view(app)
            assert view.table.row_count == 2
            assert "1 expired hidden" in _plain(view.query_one("#silences-status", Static))
            await pilot.press("i")
            await pilot.pause()
            assert view.table.row_count == 3
            assert _cell(view, search, "state") == "expired"
            assert _cell(view, search, "flags") == ""  # nothing to flag on what has ended
            view.table.move_cursor(row=view.table.get_row_index(search))
            await pilot.pause()
            # Nothing to expire or extend on an expired silence: the keys are greyed out.
            assert view.check_action("expire", ()) is None
            await pilot.press("x")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)


async def test_details_show_everything_as_plain_text(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await standard_scene(r)
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(120, 30)) as pilot:
            view = await _open_view(r, pilot, app)
            view.table.move_cursor(row=view.table.get_row_index(r.silence_with("DiskFull").key))
            await pilot.press("enter")
            await pilot.pause()
            text = "\n".join(_plain(s) for s in app.screen.query(Static))
            assert "ticket OPS-12 [red]x[/]" in text
            assert "matches     1 alert now" in text
            assert "DiskFull" in text
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen.query(SilencesView)


async def test_read_only_hides_and_refuses_changes(tmp_path: Path) -> None:
    async with rig(tmp_path, make_config(read_only=True)) as r:
        # Read-only refuses the engine's changes too, so the scene is made in the stand-in.
        r.standin.set_silence(
            {
                "matchers": [{"name": "service", "value": "x", "isRegex": False}],
                "startsAt": iso(T0),
                "endsAt": iso(T0 + timedelta(hours=2)),
                "createdBy": "someone",
                "comment": "c",
            }
        )
        await r.refresh()
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            view = _view(app)
            assert view.table.row_count == 1
            assert view.check_action("expire", ()) is False
            assert view.check_action("extend", ()) is False
            shown = {b.binding.action for b in app.screen.active_bindings.values()}
            assert "expire" not in shown
            assert "extend" not in shown
            await pilot.press("x", "e")
            await pilot.pause()
            assert app.screen.query(SilencesView)  # no dialog opened
            view.action_expire()  # even when called directly (palette), it refuses
            await pilot.pause()
            assert app.submitted == []


# -- the test-alert form ------------------------------------------------------------------------

PRESETS = [
    {
        "name": "payment-service down",
        "labels": {"alertname": "ServiceDown", "severity": "critical", "service": "payments"},
        "annotations": {"summary": "payment-service is down", "description": "pipeline test"},
    },
    {"name": "disk", "labels": {"alertname": "DiskFull", "severity": "warning"}},
]


async def test_fire_form_preset_reaches_alertmanager(tmp_path: Path) -> None:
    config = make_config(test_alerts=PRESETS)
    async with rig(tmp_path, config) as r:
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(100, 30)) as pilot:
            form = FireAlertForm(config)
            app.push_screen(form, _submit_form_result(app))
            await pilot.pause()
            assert form.query_one("#fire-labels", Input).value == (
                "alertname=ServiceDown, severity=critical, service=payments"
            )
            summary = form.query_one("#fire-summary", Input)
            summary.value = "checking the pager"
            await pilot.press("ctrl+s")
            await until(lambda: bool(app.outcomes))
            assert app.outcomes[0].status.value == "done", app.outcomes[0].result

        response = await r.http.get(f"{AM}/api/v2/alerts")
        alerts = response.json()
        assert len(alerts) == 1
        assert alerts[0]["labels"] == {
            "alertname": "ServiceDown",
            "severity": "critical",
            "service": "payments",
        }
        assert alerts[0]["annotations"] == {
            "summary": "checking the pager",
            "description": "pipeline test",
        }


async def test_fire_form_without_presets_offers_defaults_and_checks_labels(
    tmp_path: Path,
) -> None:
    config = make_config()
    async with rig(tmp_path, config) as r:
        results: list[ActionRequest | None] = []
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(100, 30)) as pilot:
            form = FireAlertForm(config)
            app.push_screen(form, results.append)
            await pilot.pause()
            labels = form.query_one("#fire-labels", Input)
            assert labels.value == "alertname=TestAlert, severity=warning"
            assert not form.query("#fire-preset")
            labels.value = "severity=critical"
            await pilot.press("ctrl+s")
            await pilot.pause()
            message = form.query_one("#fire-labels-message", Static)
            assert "an alertname label is required" in _plain(message)
            assert results == []
            labels.value = 'alertname=Probe, team="sre team"'
            await pilot.press("ctrl+s")
            await pilot.pause()
        assert results
        assert results[0] is not None
        assert results[0].kind == "alert.fire"
        assert results[0].params["labels"] == {"alertname": "Probe", "team": "sre team"}
        assert results[0].params["to"] == "alertmanager"
        assert results[0].params["annotations"] == {"summary": "Test alert from oncall-tui"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("alertname", "expected name=value"),
        ("alertname=A, 9x=1", "'9x' is not a valid label name"),
        ("alertname=A, team=", "label team has no value"),
    ],
)
def test_parse_labels_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_labels(text)


async def test_form_offers_a_cluster_picker_when_there_are_several(tmp_path: Path) -> None:
    config = make_config(
        alertmanagers=[
            {"name": "prod-a", "url": AM, "cluster": "prod"},
            # The same stand-in seen as a second cluster: enough to exercise the picker.
            {"name": "stage-a", "url": AM + ":9093", "cluster": "stage"},
        ]
    )
    async with rig(tmp_path, config) as r:
        await r.post_alert({"alertname": "Probe", "service": "api"})
        await r.refresh()
        prod = [a for a in r.engine.snapshot.alerts if a.cluster == "prod"]
        assert len(prod) == 1
        requests: list[list[ActionRequest] | None] = []
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(100, 30)) as pilot:
            form = SilenceForm(r.engine, r.clock, alerts=prod)
            app.push_screen(form, requests.append)
            await pilot.pause()
            picker = form.query_one("#silence-cluster", Select)
            assert picker.value == "prod"
            assert "1 alert would be silenced" in _plain(
                form.query_one("#silence-preview-count", Static)
            )
            picker.value = ALL_CLUSTERS
            await pilot.pause()
            assert "2 silences will be created" in _plain(
                form.query_one("#silence-matchers-message", Static)
            )
            assert "2 alerts would be silenced" in _plain(
                form.query_one("#silence-preview-count", Static)
            )
            await pilot.press(*"probe", "enter")
            await pilot.pause()
        assert requests
        assert requests[0] is not None
        assert sorted(req.params["cluster"] for req in requests[0]) == ["prod", "stage"]


async def test_pending_silence_counts_what_it_will_match(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await standard_scene(r)
        # Made elsewhere (amtool, the web UI): starts in an hour, for the latency alerts.
        r.standin.set_silence(
            {
                "matchers": [{"name": "alertname", "value": "HighLatency", "isRegex": False}],
                "startsAt": iso(T0 + timedelta(hours=1)),
                "endsAt": iso(T0 + timedelta(hours=3)),
                "createdBy": "amtool",
                "comment": "planned failover",
            }
        )
        await r.refresh()
        pending = r.silence_with("HighLatency")
        assert pending.state.value == "pending"
        app = Host(r.engine, r.clock)
        async with app.run_test(size=(160, 30)) as pilot:
            view = await _open_view_rows(pilot, app, 4)
            assert _cell(view, pending.key, "state") == "pending"
            assert _cell(view, pending.key, "alerts") == "2"  # mutes nothing yet, will mute 2
            assert _cell(view, pending.key, "flags") == ""
            assert "starts in 1h" in _cell(view, pending.key, "ends")
            assert "1 pending" in _plain(view.query_one("#silences-status", Static))


def test_match_counts_agree_with_matching_every_alert() -> None:
    clusters = ("prod", "stage")
    alerts = [
        Alert(
            fingerprint=f"{i:04x}",
            labels={
                "alertname": f"A{i % 3}",
                "service": f"s{i % 5}",
                **({"x": "1"} if i % 2 else {}),
            },
            annotations={},
            starts_at=T0,
            updated_at=T0,
            ends_at=None,
            state=AlertState.ACTIVE,
            cluster=clusters[i % 2],
        )
        for i in range(60)
    ]
    silences = [
        Silence(
            id=str(n),
            matchers=parse_matchers(text),
            starts_at=T0,
            ends_at=T0 + timedelta(hours=1),
            created_by="",
            comment="",
            state=SilenceState.PENDING,
            cluster=cluster,
        )
        for n, (text, cluster) in enumerate(
            [
                ('alertname="A1"', "prod"),
                ('alertname="A1", service!="s2"', "stage"),
                ('service=~"s[12]"', "prod"),
                ('alertname="A0", x=""', "prod"),
                ('alertname!="A0", x!~"1"', "prod"),
                ('alertname="nope"', "prod"),
            ]
        )
    ]
    expected = {
        s.key: sum(
            1 for a in alerts if a.cluster == s.cluster and matches_all(s.matchers, a.labels)
        )
        for s in silences
    }
    assert match_counts(silences, alerts) == expected
    assert expected[silences[-1].key] == 0
    assert all(expected[s.key] > 0 for s in silences[:-1])
