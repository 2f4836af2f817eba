"""The Log view with Pilot, over the log a real engine wrote while living an incident.

What the view shows is compared with what the engine logged (read back from the store), and the
timeline and handoff dialogs with the documents `log export` and `handoff` produce.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from log_harness import World, handoff_scene, live_incident, world
from textual.widget import Widget
from textual.widgets import Input, Static
from ui_log_harness import LogHost, until

from oncall_tui.handoff import handoff_markdown, load_handoff
from oncall_tui.models import LogEntry
from oncall_tui.postmortem import timeline_markdown
from oncall_tui.timeline import load_timeline
from oncall_tui.ui.log_screens import DocumentScreen, EntryDetails
from oncall_tui.ui.log_view import LogView, parse_log_filter


async def newest_first(w: World) -> list[LogEntry]:
    return await w.store.entries(limit=0)


def shown(view: LogView) -> list[int | None]:
    return [e.id for e in view.entries]


async def filter_by(view: LogView, pilot: object, line: str) -> None:
    box = view.query_one("#log-filter", Input)
    box.value = line
    await box.action_submit()


async def test_everything_newest_first_following_the_log_with_the_cursor_kept(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await live_incident(w)
        app = LogHost()
        async with app.run_test(size=(160, 48)) as pilot:
            view = await app.show_view(w.engine, w.clock)
            # Switching views focuses a view's first focusable widget: the table, so that j/k
            # move rows rather than type into the filter line.
            first = next(n for n in view.walk_children() if isinstance(n, Widget) and n.focusable)
            assert first is view.table
            logged = await newest_first(w)
            await until(lambda: view.table.row_count == len(logged))
            assert shown(view) == [e.id for e in logged]
            assert view.entries[0].kind == "incident.resolved"
            await pilot.press("j", "j", "j")
            kept = view.current
            assert kept is not None

            await handoff_scene(w)  # new entries arrive while the operator reads
            logged = await newest_first(w)
            await until(lambda: view.table.row_count == len(logged))
            assert shown(view) == [e.id for e in logged]
            assert view.current == kept
            # (The silence's poll and the action's outcome are logged in either order.)
            assert {e.kind for e in view.entries[:4]} == {
                "alert.firing",
                "action.requested",
                "action.done",
                "silence.created",
            }
            status = str(view.query_one("#log-status", Static).render())
            assert f"{len(logged)} entries" in status


async def test_filters_by_source_kind_service_incident_and_text(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        incident = await live_incident(w)
        await handoff_scene(w)
        logged = await newest_first(w)
        timeline = await load_timeline(w.store, incident.id)
        app = LogHost()
        async with app.run_test(size=(160, 48)) as pilot:
            view = await app.show_view(w.engine, w.clock)
            await until(lambda: view.table.row_count == len(logged))

            await pilot.press("slash")
            assert app.focused is view.query_one("#log-filter", Input)
            await pilot.press(*"source:pagerduty kind:incident.*", "enter")
            wanted = [
                e.id for e in logged if e.source == "pagerduty" and e.kind.startswith("incident.")
            ]
            await until(lambda: shown(view) == wanted)
            assert view.table.has_focus
            assert [e.kind for e in reversed(view.entries)] == [
                "incident.triggered",
                "incident.escalated",
                "incident.acknowledged",
                "incident.resolved",
            ]

            await filter_by(view, pilot, "service:search")
            await until(lambda: {e.kind for e in view.entries} == {"alert.firing"})
            assert [e.summary for e in view.entries] == [
                "firing: HighLatency (search) [warning] p99 latency above 1s"
            ]

            # An incident's whole chain across systems, not only the rows naming it.
            await filter_by(view, pilot, f"incident:{incident.number}")
            await until(lambda: set(shown(view)) == timeline.entry_ids)
            assert {e.source for e in view.entries} == {"alertmanager", "pagerduty", "operator"}
            status = str(view.query_one("#log-status", Static).render())
            assert f"timeline of {incident.key}" in status

            # Free text matches summary, actor and data: the escalation names Carol, and so do
            # the later rows whose data still lists her as an assignee.
            await filter_by(view, pilot, "Carol")
            mentions = [
                e.id
                for e in logged
                if "carol" in f"{e.summary} {e.actor} {json.dumps(e.data)}".lower()
            ]
            await until(lambda: shown(view) == mentions)
            assert "incident.escalated" in {e.kind for e in view.entries}
            assert "alert.firing" not in {e.kind for e in view.entries}

            await filter_by(view, pilot, "incident:P404")
            await until(lambda: "no incident 'P404'" in str(view.query_one("#log-status").render()))
            assert view.entries == []

            await pilot.press("escape")
            await until(lambda: view.table.row_count == len(logged))


async def test_details_timeline_and_handoff_dialogs(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        incident = await live_incident(w)
        await handoff_scene(w)
        logged = await newest_first(w)
        expected_timeline = timeline_markdown(await load_timeline(w.store, incident.id))
        expected_handoff = handoff_markdown(
            await load_handoff(
                w.store, w.engine.snapshot, now=w.clock.now(), shift=timedelta(hours=12)
            )
        )
        app = LogHost()
        async with app.run_test(size=(160, 48)) as pilot:
            view = await app.show_view(w.engine, w.clock)
            await until(lambda: view.table.row_count == len(logged))
            # The first alert of the story: it belongs to the incident through its group.
            row = next(
                i
                for i, e in enumerate(view.entries)
                if e.kind == "alert.firing" and "ServiceDown" in e.summary
            )
            view.table.move_cursor(row=row)
            await pilot.press("enter")
            await until(lambda: isinstance(app.screen, EntryDetails))
            body = str(app.screen.query_one("#entry-details-body Static", Static).render())
            assert '"fingerprint":' in body
            assert '"service": "payment-service"' in body
            assert "p timeline of its incident" in str(
                app.screen.query(".dialog-hint").first().render()
            )
            await pilot.press("escape")
            await until(lambda: app.screen is not None and not isinstance(app.screen, EntryDetails))

            await pilot.press("p")
            await until(lambda: isinstance(app.screen, DocumentScreen))
            assert isinstance(app.screen, DocumentScreen)
            assert app.screen.markdown == expected_timeline
            await pilot.press("escape")
            await until(lambda: not isinstance(app.screen, DocumentScreen))

            await pilot.press("h")
            await until(lambda: isinstance(app.screen, DocumentScreen))
            assert isinstance(app.screen, DocumentScreen)
            assert app.screen.markdown == expected_handoff
            await pilot.press("escape")

            # An entry with no incident says so instead of opening anything.
            row = next(i for i, e in enumerate(view.entries) if e.kind == "silence.created")
            view.table.move_cursor(row=row)
            await pilot.press("p")
            await pilot.pause()
            assert not isinstance(app.screen, DocumentScreen)


async def test_a_hidden_view_reads_the_log_only_when_shown(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await live_incident(w)
        app = LogHost()
        async with app.run_test(size=(80, 24)) as pilot:
            view = await app.show_view(w.engine, w.clock)
            await until(lambda: view.loads >= 1)
            view.display = False
            await pilot.pause()
            loads = view.loads
            await handoff_scene(w)  # snapshots arrive; nobody is looking
            await pilot.pause()
            assert view.loads == loads
            view.display = True
            logged = await newest_first(w)
            await until(lambda: view.table.row_count == len(logged))
            assert view.loads == loads + 1


def test_filter_line() -> None:
    wanted = parse_log_filter(
        'source:pagerduty,opsgenie kind:incident.* kind:webhook "disk full" x'
    )
    assert wanted.sources == ("pagerduty", "opsgenie")
    assert wanted.kind_prefixes == ("incident.",)
    assert wanted.kinds == ("webhook",)
    assert wanted.text == "disk full x"
    assert parse_log_filter("incident:#12 service:Pay").incident == "#12"
    assert parse_log_filter("incident:#12 service:Pay").services == ("pay",)
    assert parse_log_filter('unbalanced "quote').text == 'unbalanced "quote'
    assert parse_log_filter("http://x source:").text == "http://x source:"
    assert not parse_log_filter("  ")
