"""Pilot tests of the Status page view and its forms.

A real Engine and the fake Statuspage (every exchange checked against the published spec); what
an action did is read back from the fake, and compared with what the preview promised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.widgets import Button, Input, Select, Static, TextArea
from ui_statuspage_harness import COMPONENTS, T0, Host, make_config, started, until

from oncall_tui.clock import FrozenClock
from oncall_tui.models import Component
from oncall_tui.store import Store
from oncall_tui.ui.confirm import ConfirmScreen
from oncall_tui.ui.status_forms import ComponentStatusForm, StatusPostForm
from oncall_tui.ui.status_post import StatusPost, component_word, preview_lines, status_word
from oncall_tui.ui.statuspage import StatuspageView

PAYMENTS, CHECKOUT, SEARCH, WEBSITE = (
    COMPONENTS["Payments"],
    COMPONENTS["Checkout"],
    COMPONENTS["Search"],
    COMPONENTS["Website"],
)


def _plain(widget: Static) -> str:
    return str(widget.render())


def _cell(view: StatuspageView, table: str, key: str, column: str) -> str:
    source = view.components_table if table == "components" else view.incidents_table
    value = source.get_cell(key, column)
    assert isinstance(value, Text)  # cells are Text: names are never parsed as markup
    return value.plain


def _open_incident(fake: Any) -> dict[str, Any]:
    (found,) = [
        fake.incident(i) for i in fake.incident_ids if fake.incident(i)["status"] != "resolved"
    ]
    return found


def _select(screen: Any, selector: str, value: str) -> None:
    screen.query_one(selector, Select).value = value


def _component_index(name: str) -> int:
    return list(COMPONENTS).index(name)


async def test_view_shows_components_and_incidents_with_latest_update(tmp_path: Path) -> None:
    async with started(tmp_path) as r:
        app = Host(r)
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            view = app.view
            assert _cell(view, "components", PAYMENTS, "status") == "Partial outage"
            assert _cell(view, "components", CHECKOUT, "status") == "Degraded performance"
            assert _cell(view, "components", WEBSITE, "status") == "Operational"
            assert _cell(view, "components", PAYMENTS, "incident") == "Elevated payment failures"
            # The open incident first, then the one resolved tonight, dimmed.
            open_id = _open_incident(r.fake)["id"]
            assert view.cursor_incident is not None
            assert view.cursor_incident.id == open_id
            assert _cell(view, "incidents", open_id, "status") == "Identified"
            assert view.incidents_table.row_count == 2
            latest = _plain(view.query_one("#statuspage-latest", Static))
            assert "A card processor is failing; we are moving traffic" in latest
            assert "affects Payments and Checkout" in latest
            status = _plain(view.query_one("#statuspage-status", Static))
            assert "5 components · 2 not operational · 1 open incident" in status
            assert "1 resolved in 24h" in status


async def test_update_preview_is_what_reaches_the_page(tmp_path: Path) -> None:
    async with started(tmp_path) as r:
        app = Host(r)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("u")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, StatusPostForm)
            body = form.query_one("#sp-body", TextArea)
            assert body.has_focus
            await pilot.press(*"Traffic")
            body.insert(" moved; payments recover.")
            _select(form, "#sp-status", "monitoring")
            _select(form, f"#sp-component-{_component_index('Payments')}", "degraded_performance")
            _select(form, f"#sp-component-{_component_index('Checkout')}", "operational")
            await pilot.pause()
            preview = _plain(form.query_one("#sp-preview", Static))
            assert preview.splitlines() == [
                "Elevated payment failures",
                "Monitoring - Traffic moved; payments recover.",
                "",
                "Affected components:",
                "  Payments  Degraded performance (now Partial outage)",
                "  Checkout  Operational (now Degraded performance)",
            ]
            await pilot.press("ctrl+s")
            await pilot.pause()
            confirm = app.screen
            assert isinstance(confirm, ConfirmScreen)
            assert confirm.query_one("#cancel", Button).has_focus
            confirm_body = _plain(confirm.query_one("#confirm-body", Static))
            assert confirm_body.startswith(preview)
            assert "automation" not in confirm_body  # automation is off in this config
            # enter by reflex presses Cancel: back to the form, nothing sent.
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is form
            assert app.submitted == []
            await pilot.press("ctrl+s")
            await pilot.pause()
            await pilot.press("y")
            await until(lambda: len(r.outcomes) == 1)
            assert r.outcomes[0].startswith("done"), r.outcomes
            # What customers now read, from the fake itself.
            incident = _open_incident(r.fake)
            latest = incident["incident_updates"][0]
            assert incident["name"] == preview.splitlines()[0]
            assert status_word(incident["status"]) == "Monitoring"
            assert latest["status"] == "monitoring"
            assert latest["body"] == "Traffic moved; payments recover."
            assert r.fake.component_status(PAYMENTS) == "degraded_performance"
            assert r.fake.component_status(CHECKOUT) == "operational"
            assert r.fake.component_status(SEARCH) == "operational"
            assert r.transport.violations == []
            # The view says how it went, and the refresh the action triggers reaches it.
            action_line = app.view.query_one("#statuspage-action", Static)
            await until(lambda: _plain(action_line).startswith("✓ done"))
            assert "Monitoring update to 'Elevated payment failures'" in _plain(action_line)
            await until(
                lambda: (
                    _cell(app.view, "components", PAYMENTS, "status")
                    == component_word("degraded_performance")
                )
            )


async def test_template_fills_message_and_unfilled_placeholder_stops_the_post(
    tmp_path: Path,
) -> None:
    async with started(tmp_path) as r:
        app = Host(r)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("u")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, StatusPostForm)
            _select(form, "#sp-template", "investigating")
            await pilot.pause()
            body = form.query_one("#sp-body", TextArea)
            assert body.text == "We are investigating problems with Payments and Checkout."
            preview = _plain(form.query_one("#sp-preview", Static)).splitlines()
            assert preview[1] == (
                "Identified - We are investigating problems with Payments and Checkout."
            )
            _select(form, "#sp-template", "custom")
            await pilot.pause()
            assert body.text == "Update for {ticket}: more soon."
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert app.screen is form  # refused: no confirmation
            message = _plain(form.query_one("#sp-body-message", Static))
            assert "fill in {ticket}" in message
            before = len(_open_incident(r.fake)["incident_updates"])
            body.text = "Update for OPS-7: more soon."
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await until(lambda: len(r.outcomes) == 1)
            incident = _open_incident(r.fake)
            assert len(incident["incident_updates"]) == before + 1
            assert incident["incident_updates"][0]["body"] == "Update for OPS-7: more soon."


async def test_resolving_puts_components_back_and_says_so(tmp_path: Path) -> None:
    async with started(tmp_path) as r:
        app = Host(r)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("u")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, StatusPostForm)
            # By keys, as at 2 AM: back from the message past the template to the status.
            await pilot.press("shift+tab", "shift+tab")
            assert form.query_one("#sp-status", Select).has_focus
            await pilot.press("enter", "down", "down", "enter")
            await pilot.pause()
            pay = form.query_one(f"#sp-component-{_component_index('Payments')}", Select)
            assert pay.value == "operational"
            # An affected component cannot be dropped: Statuspage would keep it on the incident.
            assert "-" not in [value for _label, value in pay._options]
            _select(form, f"#sp-component-{_component_index('Checkout')}", "partial_outage")
            await pilot.pause()
            warning = _plain(form.query_one("#sp-components-message", Static))
            assert "still shown as not operational after resolving: Checkout" in warning
            _select(form, f"#sp-component-{_component_index('Checkout')}", "operational")
            form.query_one("#sp-body", TextArea).text = "  Payments work again.  "
            await pilot.press("ctrl+s")
            await pilot.pause()
            await pilot.press("y")
            await until(lambda: len(r.outcomes) == 1)
            (incident,) = [
                r.fake.incident(i)
                for i in r.fake.incident_ids
                if r.fake.incident(i)["name"] == "Elevated payment failures"
            ]
            assert incident["status"] == "resolved"
            # Sent stripped, as the preview showed it.
            assert incident["incident_updates"][0]["body"] == "Payments work again."
            assert r.fake.component_status(PAYMENTS) == "operational"
            assert r.fake.component_status(CHECKOUT) == "operational"
            await until(lambda: app.view.check_action("update", ()) is None)


async def test_new_incident_with_component_and_derived_impact(tmp_path: Path) -> None:
    async with started(tmp_path) as r:
        app = Host(r)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("N")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, StatusPostForm)
            assert form.query_one("#sp-name", Input).has_focus
            statuses = [v for _l, v in form.query_one("#sp-status", Select)._options]
            assert "resolved" not in statuses  # Statuspage cannot open a resolved incident
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert app.screen is form
            assert "needs a name" in _plain(form.query_one("#sp-name-message", Static))
            form.query_one("#sp-name", Input).value = "Website unavailable"
            await pilot.press("enter")  # on to the message
            assert form.query_one("#sp-body", TextArea).has_focus
            await pilot.press(*"Down.")
            form.query_one("#sp-body", TextArea).text = "The website does not load."
            _select(form, f"#sp-component-{_component_index('Website')}", "major_outage")
            await pilot.pause()
            assert form.query_one("#sp-impact", Select).value == "critical"
            preview = _plain(form.query_one("#sp-preview", Static)).splitlines()
            assert preview == [
                "Website unavailable",
                "Investigating - The website does not load.",
                "",
                "Affected components:",
                "  Website  Major outage (now Operational)",
                "Impact: critical",
            ]
            before = set(r.fake.incident_ids)
            await pilot.press("ctrl+s")
            await pilot.pause()
            await pilot.press("y")
            await until(lambda: len(r.outcomes) == 1)
            (new_id,) = set(r.fake.incident_ids) - before
            incident = r.fake.incident(new_id)
            assert incident["name"] == "Website unavailable"
            assert incident["status"] == "investigating"
            assert incident["impact"] == "critical"
            assert incident["incident_updates"][0]["body"] == "The website does not load."
            assert [c["id"] for c in incident["components"]] == [WEBSITE]
            assert r.fake.component_status(WEBSITE) == "major_outage"
            assert incident["metadata"]["oncall_tui"]["opened_by"] == "operator"
            await until(lambda: app.view.incidents_table.row_count == 3)


async def test_component_status_change_confirmed_and_cancelled(tmp_path: Path) -> None:
    async with started(tmp_path) as r:
        app = Host(r)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            view = app.view
            view.components_table.focus()
            view.components_table.move_cursor(row=_component_index("Website"))
            await pilot.pause()
            await pilot.press("c")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, ComponentStatusForm)
            _select(form, "#sp-component-status", "partial_outage")
            await pilot.pause()
            text = _plain(form.query_one("#sp-component-preview", Static))
            assert "Customers will see Website as Partial outage (now Operational)" in text
            await pilot.press("ctrl+s", "n")  # cancel the confirmation
            await pilot.pause()
            assert app.screen is form
            await pilot.press("escape")
            await pilot.pause()
            assert app.submitted == []
            assert r.fake.component_status(WEBSITE) == "operational"
            # Now for real, on the component that is part of the open incident.
            view.components_table.move_cursor(row=_component_index("Payments"))
            await pilot.press("c")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, ComponentStatusForm)
            assert form.query_one("#sp-component-status", Select).value == "operational"
            text = _plain(form.query_one("#sp-component-preview", Static))
            assert 'affected by the open incident "Elevated payment failures"' in text
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await until(lambda: len(r.outcomes) == 1)
            assert r.fake.component_status(PAYMENTS) == "operational"
            assert r.fake.component_status(WEBSITE) == "operational"
            await until(lambda: _cell(view, "components", PAYMENTS, "status") == "Operational")


async def test_refresh_keeps_the_cursor_on_its_incident(tmp_path: Path) -> None:
    async with started(tmp_path) as r:
        app = Host(r)
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            view = app.view
            view.incidents_table.move_cursor(row=1)
            await pilot.pause()
            assert view.cursor_incident is not None
            kept = view.cursor_incident.id
            r.clock.advance(60)
            await r.client.create_incident(
                name="API errors", status="investigating", body="Some API calls fail."
            )
            await r.refresh()
            await pilot.pause()
            assert view.incidents_table.row_count == 3
            assert view.cursor_incident is not None
            assert view.cursor_incident.id == kept


async def test_read_only_hides_every_changing_key(tmp_path: Path) -> None:
    config = make_config(read_only=True, log={"path": str(tmp_path / "log.db")})
    async with started(tmp_path, config) as r:
        app = Host(r)
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            for action in ("update", "component", "new"):
                assert app.view.check_action(action, ()) is False
            await pilot.press("u", "N", "c")
            await pilot.pause()
            assert app.screen is app.screen_stack[0]
            assert app.submitted == []


async def test_not_configured_says_so(tmp_path: Path) -> None:
    config = make_config(statuspage=False, log={"path": str(tmp_path / "log.db")})
    async with started(tmp_path, config) as r:
        app = Host(r)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            text = _plain(app.view.query_one(".placeholder-text", Static))
            assert "Statuspage is not configured" in text
            assert "`statuspage:`" in text
            assert app.view.check_action("new", ()) is False
            await pilot.press("N")
            assert app.screen is app.screen_stack[0]


async def test_restored_page_is_marked_stale_while_statuspage_refuses(tmp_path: Path) -> None:
    """After a restart with a key Statuspage refuses, the last known page shows, marked stale."""
    log = tmp_path / "log.db"
    async with started(tmp_path, make_config(log={"path": str(log)})) as r:
        seen = r.engine.snapshot.health_of("statuspage")
        assert seen is not None
        assert seen.last_success is not None
        last = r.engine.snapshot
    # Saved again here, not left to Engine.stop: a write cancelled at stop can lose that save.
    store = await Store.open(log, clock=FrozenClock(T0))
    await store.save_snapshot(last)
    await store.close()
    config = make_config(log={"path": str(log)}, api_key="revoked-key")
    async with started(tmp_path, config, refresh=False) as r:
        app = Host(r)
        async with app.run_test(size=(120, 30)):
            await until(lambda: r.fake.requests != [] and app.view.components_table.row_count == 5)
            status = app.view.query_one("#statuspage-status", Static)
            await until(lambda: "stale since 02:00:00" in _plain(status))
            assert _cell(app.view, "components", PAYMENTS, "status") == "Partial outage"


def test_preview_names_components_the_form_cannot_show() -> None:
    """A component the incident keeps but the page no longer lists is still in the preview."""
    page = {"a1": Component("a1", "API", "partial_outage")}
    post = StatusPost(
        incident_id="inc1",
        name="API errors",
        status="monitoring",
        body="A fix is out.",
        components=(("a1", "degraded_performance"),),
        kept=("gone000001",),
    )
    assert preview_lines(post, page) == [
        "API errors",
        "Monitoring - A fix is out.",
        "",
        "Affected components:",
        "  API         Degraded performance (now Partial outage)",
        "  gone000001  status unchanged",
    ]
    request = post.request()
    assert (request.kind, request.target) == ("statuspage.incident.update", "inc1")
    assert request.params == {
        "status": "monitoring",
        "body": "A fix is out.",
        "components": {"a1": "degraded_performance"},
    }


async def test_update_confirmation_says_automation_hands_over(tmp_path: Path) -> None:
    config = make_config(log={"path": str(tmp_path / "log.db")}, automation=True)
    async with started(tmp_path, config) as r:
        app = Host(r)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("u")
            await pilot.pause()
            app.screen.query_one("#sp-body", TextArea).text = "Still on it."
            await pilot.press("ctrl+s")
            await pilot.pause()
            confirm = app.screen
            assert isinstance(confirm, ConfirmScreen)
            body = _plain(confirm.query_one("#confirm-body", Static))
            assert "If automation opened this incident, resolving it is yours from now on." in body
            await pilot.press("n", "escape")
            assert app.submitted == []
