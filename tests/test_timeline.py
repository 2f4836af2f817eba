"""Incident timelines, postmortem Markdown and the shift handoff, read from a log a real engine
wrote while living through an incident against the sandbox (tests/log_harness.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from log_harness import SEARCH, T0, World, handoff_scene, live_incident, world

from oncall_tui.engine.incident_changes import IncidentChange, change_log_rows
from oncall_tui.handoff import handoff_markdown, load_handoff
from oncall_tui.models import Incident
from oncall_tui.postmortem import duration_text, md_cell, timeline_markdown
from oncall_tui.timeline import TimelineError, incident_timeline, load_timeline

STAGES = [
    ("alertmanager", "alert.firing"),
    ("alertmanager", "webhook"),
    ("pagerduty", "incident.triggered"),
    ("pagerduty", "incident.escalated"),
    ("operator", "action.requested"),
    ("pagerduty", "incident.acknowledged"),
    ("operator", "action.done"),
    ("alertmanager", "alert.resolved"),
    ("alertmanager", "webhook"),
    ("pagerduty", "incident.resolved"),
]
SECOND = timedelta(seconds=1)


async def test_a_lived_incident_reads_back_in_order_with_its_durations(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        incident = await live_incident(w)
        await handoff_scene(w)  # unrelated entries afterwards must stay out of the timeline
        timeline = await load_timeline(w.store, incident.id)
        everything = await w.store.entries(limit=0)

    assert timeline.key == incident.key
    assert timeline.number == incident.number
    assert timeline.service == "payment-service"
    assert timeline.title == incident.title
    assert timeline.status == "resolved"
    assert [(e.system, e.stage) for e in timeline.events] == STAGES
    # Alertmanager's dedup key is sha256 of this group key: that is what linked the two.
    assert timeline.group_keys == ('{}:{alertname="ServiceDown", service="payment-service"}',)
    assert timeline.first_alert_at == T0
    assert timeline.triggered_at == T0 + SECOND
    assert timeline.acknowledged_at == T0 + timedelta(minutes=7) + SECOND
    assert timeline.acknowledged_by == "Demo Operator"
    assert timeline.resolved_at == T0 + timedelta(minutes=31) + SECOND
    assert timeline.detection_to_page == SECOND
    assert timeline.time_to_acknowledge == timedelta(minutes=7)
    assert timeline.time_to_resolve == timedelta(minutes=31)
    assert timeline.escalations == 1
    # The same incident by key, by number and by "#number"; the export is the same document.
    for ref in (incident.key, str(incident.number), f"#{incident.number}"):
        assert incident_timeline(everything, ref) == timeline

    text = timeline_markdown(timeline)
    assert text.startswith(f"# PagerDuty incident #{incident.number}: ")
    assert "- Time to acknowledge: 7m 00s" in text
    assert "- Time to resolve: 31m 00s" in text
    assert "- Detection to page: 1s" in text
    assert "| Acknowledged by Demo Operator | 2026-11-23 02:07:01 UTC | 7m 01s |" in text
    rows = [line for line in text.splitlines() if line.startswith("| 02:")]
    assert len(rows) == len(STAGES)
    assert rows[3].startswith("| 02:05:01 | 5m 01s | PagerDuty | incident.escalated |")
    assert rows[-1].startswith("| 02:31:01 | 31m 01s | PagerDuty | incident.resolved |")
    assert "HighLatency" not in text
    assert "DiskFull" not in text
    assert "Still" not in text


async def test_an_incident_still_open_has_no_resolve_time(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.post_alert(SEARCH | {"severity": "critical"}, summary="search is failing")
        await w.refresh()
        await w.standin.flush()  # notifies, and pages PagerDuty
        await w.pagerduty.tick()  # whose webhook says so
        await w.wait_logged("incident.triggered", source="pagerduty")
        w.clock.advance(90)
        timeline = await load_timeline(w.store, "1")
    assert timeline.status == "triggered"
    assert timeline.acknowledged_at is None
    assert timeline.time_to_acknowledge is None
    assert timeline.time_to_resolve is None
    text = timeline_markdown(timeline)
    assert "- Time to acknowledge: —" in text
    assert text.rstrip().endswith("_Still triggered when exported._")


async def test_the_public_incident_automation_opened_is_part_of_the_story(tmp_path: Path) -> None:
    async with world(tmp_path, statuspage=True) as w:
        incident = await live_incident(w)
        w.clock.advance(6 * 60)  # the quiet period passes: automation resolves the page
        await w.refresh()
        await w.wait_logged("automation.resolved")
        timeline = await load_timeline(w.store, incident.key)
        assert w.page is not None
        page_ids = tuple(w.page.incident_ids)
        status = w.page.incident(page_ids[0])["status"]
    assert len(page_ids) == 1
    assert status == "resolved"
    assert timeline.public_incidents == page_ids
    stages = [(e.system, e.stage) for e in timeline.events]
    for stage in (
        "automation.open",
        "automation.opened",
        "automation.quiet",
        "automation.resolved",
    ):
        assert ("automation", stage) in stages
    # The automation works on its own task: it opened the page within the first second.
    assert timeline.public_opened_at is not None
    assert T0 <= timeline.public_opened_at <= T0 + SECOND
    assert timeline.public_resolved_at == T0 + timedelta(minutes=37) + SECOND
    # Its own entries stay in order among the others.
    assert stages.index(("automation", "automation.quiet")) > stages.index(
        ("pagerduty", "incident.acknowledged")
    )
    text = timeline_markdown(timeline)
    assert f"- Statuspage incident: `{page_ids[0]}`" in text
    assert "| Public incident resolved | 2026-11-23 02:37:01 UTC | 37m 01s |" in text


async def _opsgenie_twin(w: World, incident: Incident) -> None:
    """The same alert group's Opsgenie alert, logged with the engine's own row writer."""
    twin = Incident(
        id="og-7c1e",
        system="opsgenie",
        title="ServiceDown payment-service",
        status="open",
        urgency="P1",
        service="payment-service",
        assignee="Alice Chen",
        escalation_level=None,
        created_at=w.clock.now(),
        dedup_key=incident.dedup_key,
        number=1,  # Opsgenie tinyIds count on their own: #1 exists in both systems
    )
    await w.store.append_many(change_log_rows(IncidentChange(triggered=(twin,))))


async def test_other_systems_and_unknown_or_ambiguous_references(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        incident = await live_incident(w)
        w.clock.advance(60)
        await _opsgenie_twin(w, incident)
        timeline = await load_timeline(w.store, incident.key)
        twin = await load_timeline(w.store, "opsgenie/og-7c1e")
        with pytest.raises(TimelineError, match="no incident 'P404'"):
            await load_timeline(w.store, "P404")
        with pytest.raises(TimelineError, match="name an incident"):
            await load_timeline(w.store, " ")
        with pytest.raises(TimelineError, match="'#1' names 2 incidents"):
            await load_timeline(w.store, "#1")
    assert timeline.related == ("opsgenie/og-7c1e",)
    assert ("opsgenie", "incident.triggered") in [(e.system, e.stage) for e in timeline.events]
    # From the Opsgenie side the alert group and the PagerDuty incident are found the same way.
    assert twin.related == (incident.key,)
    assert twin.first_alert_at == T0
    assert "Same alert group in: `pagerduty/" in timeline_markdown(twin)


async def test_handoff_of_the_shift(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await live_incident(w)
        await handoff_scene(w)
        now = w.clock.now()
        handoff = await load_handoff(w.store, w.engine.snapshot, now=now, shift=timedelta(hours=12))
        short = await load_handoff(w.store, w.engine.snapshot, now=now, shift=timedelta(minutes=5))
        unknown = await load_handoff(w.store, None, now=now, shift=timedelta(hours=12))

    fired = [f.what for f in handoff.fired]
    assert len(fired) == 3
    assert fired[0].startswith("firing: ServiceDown (payment-service)")
    assert fired[1].startswith("triggered [high]: #1")
    assert fired[2].startswith("firing: HighLatency (search)")
    assert [e.kind for e in handoff.handled] == [
        "incident.acknowledged",
        "incident.resolved",
        "silence.created",
    ]
    assert handoff.open_incidents == ()
    assert [a.alertname for a in handoff.open_alerts] == ["HighLatency"]
    assert [s.comment.split(" [")[0] for s in handoff.expiring] == ["disk cleanup OPS-7"]
    levels = {(n.policy, n.level): n for n in handoff.next_oncall}
    first = levels[("Payments", 1)]
    assert first.now == "Demo Operator"
    assert first.next
    assert first.next != first.now
    assert first.next_from is not None
    assert first.next_from > now

    text = handoff_markdown(handoff)
    assert "## What fired (3)" in text
    assert "- 02:07 acknowledged by Demo Operator: #1" in text
    assert "- [warning] HighLatency (search): p99 latency above 1s, since 02:40 UTC" in text
    assert '- 05:40 alertname="DiskFull" — demo@example.com: disk cleanup OPS-7\n' in text
    assert "oncall-tui:" not in text  # the engine's idempotency marker is not for readers
    assert f"- Payments, level 1: Demo Operator until {first.now_until:%H:%M} UTC" in text
    # A five-minute shift saw only the last alert; a silence ending in 3h is not in the next 5m.
    assert [f.what.split(":")[0] for f in short.fired] == ["firing"]
    assert short.expiring == ()
    assert "unknown: no snapshot in the log yet" in handoff_markdown(unknown)


def test_markdown_cells_and_durations() -> None:
    assert md_cell("a | b\nc <script>") == "a \\| b c &lt;script>"
    assert duration_text(None) == "—"
    assert duration_text(timedelta(seconds=42)) == "42s"
    assert duration_text(timedelta(minutes=7, seconds=5)) == "7m 05s"
    assert duration_text(timedelta(hours=1, minutes=2)) == "1h 02m"
    assert duration_text(timedelta(days=2, hours=3)) == "2d 3h"
