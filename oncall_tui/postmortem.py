"""An incident's timeline (oncall_tui/timeline.py) as a postmortem-ready Markdown document.

Key times, durations (time to acknowledge, time to resolve, detection to page and to the public
incident) and every linked event in order, with its offset from the first alert. Untrusted text
(titles, summaries) is flattened and escaped so it cannot break a table cell or inject HTML.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from oncall_tui.timeline import SYSTEM_NAMES, Timeline


def duration_text(delta: timedelta | None) -> str:
    """`7m 30s`, `1h 02m`, `2d 3h`; a dash when not known."""
    if delta is None:
        return "—"
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"


def md_cell(text: str) -> str:
    """Untrusted text made safe for one Markdown table cell (no pipes, no line breaks)."""
    flat = " ".join(text.split())
    return flat.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def _utc(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "—"


def timeline_markdown(timeline: Timeline) -> str:
    """A postmortem-ready Markdown document: key times, durations and every event in order."""
    t = timeline
    number = f" #{t.number}" if t.number is not None else ""
    system = SYSTEM_NAMES.get(t.system, t.system)
    lines = [
        f"# {system} incident{number}: {md_cell(t.title)}",
        "",
        f"- Incident: `{t.key}`" + (f" — {t.url}" if t.url else ""),
        f"- Service: {md_cell(t.service) or '—'}",
        f"- Status at export: {t.status or '—'}",
    ]
    if t.group_keys:
        lines.append(f"- Alertmanager group: `{md_cell(t.group_keys[0])}`")
    if t.related:
        lines.append(f"- Same alert group in: {', '.join(f'`{k}`' for k in t.related)}")
    if t.public_incidents:
        ids = ", ".join(f"`{md_cell(i)}`" for i in t.public_incidents)
        lines.append(f"- Statuspage incident: {ids}")
    origin = t.first_alert_at or t.triggered_at
    ack_by = f" by {md_cell(t.acknowledged_by)}" if t.acknowledged_by else ""
    lines += [
        "",
        "## Key times",
        "",
        "| Moment | When | Since first alert |",
        "|---|---|---|",
    ]
    for label, moment in (
        ("First alert", t.first_alert_at),
        ("Paged (incident triggered)", t.triggered_at),
        (f"Acknowledged{ack_by}", t.acknowledged_at),
        ("Resolved", t.resolved_at),
        *(
            (
                ("Public incident opened (Statuspage)", t.public_opened_at),
                ("Public incident resolved", t.public_resolved_at),
            )
            if t.public_incidents
            else ()
        ),
    ):
        since = duration_text(moment - origin) if moment and origin else "—"
        lines.append(f"| {label} | {_utc(moment)} | {since} |")
    lines += [
        "",
        "## Durations",
        "",
        f"- Detection to page: {duration_text(t.detection_to_page)}",
        f"- Time to acknowledge: {duration_text(t.time_to_acknowledge)}",
        f"- Time to resolve: {duration_text(t.time_to_resolve)}",
        f"- Escalations: {t.escalations}",
        *(
            [f"- Detection to public incident: {duration_text(t.detection_to_public)}"]
            if t.public_incidents
            else []
        ),
        "",
        "## Timeline",
        "",
        "| Time (UTC) | +Offset | System | Event | Who | What |",
        "|---|---|---|---|---|---|",
    ]
    for event in t.events:
        offset = duration_text(event.at - origin) if origin else "—"
        lines.append(
            f"| {event.at.strftime('%H:%M:%S')} | {offset} "
            f"| {SYSTEM_NAMES.get(event.system, md_cell(event.system))} | {md_cell(event.stage)} "
            f"| {md_cell(event.actor) or '—'} | {md_cell(event.summary)} |"
        )
    if t.resolved_at is None:
        lines += ["", f"_Still {t.status or 'open'} when exported._"]
    return "\n".join(lines) + "\n"
