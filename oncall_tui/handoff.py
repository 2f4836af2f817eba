"""The shift handoff: what the next operator needs to know, from the log and the last snapshot.

What fired during the shift (alerts and incidents, first time and how often), who acknowledged
or silenced what (as the log recorded it, names included), what is still open now, silences that
expire during the next shift (the noise comes back then), and who is on call next per escalation
level or schedule. `oncall-tui handoff` and the Log view show the same text. No Textual here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from oncall_tui.models import (
    Alert,
    AlertState,
    Incident,
    LogEntry,
    OnCall,
    Silence,
    SilenceState,
    Snapshot,
    severity_rank,
)
from oncall_tui.postmortem import duration_text
from oncall_tui.timeline import LogReader

FIRED_KINDS = ("alert.firing", "incident.triggered")
HANDLED_KINDS = ("incident.acknowledged", "incident.resolved", "silence.created", "silence.ended")
_MARKER = re.compile(r"\s*\[oncall-tui:[0-9a-f]+\]")
MAX_LINES = 50
"""Per section: a handoff is read in a minute, the log has the rest."""


@dataclass(frozen=True, slots=True)
class Fired:
    what: str  # the first entry's summary
    first_at: datetime
    times: int


@dataclass(frozen=True, slots=True)
class NextOnCall:
    policy: str
    level: int
    now: str  # "" when nobody is on call at this level now
    now_until: datetime | None
    next: str
    next_from: datetime | None


@dataclass(frozen=True, slots=True)
class Handoff:
    since: datetime
    now: datetime
    next_shift_end: datetime
    fired: tuple[Fired, ...]
    handled: tuple[LogEntry, ...]
    open_incidents: tuple[Incident, ...]
    open_alerts: tuple[Alert, ...]
    expiring: tuple[Silence, ...]
    next_oncall: tuple[NextOnCall, ...]
    snapshot_at: datetime | None  # None: no snapshot known, "still open" is unknown
    snapshot_stale: bool = False


def _fired_key(entry: LogEntry) -> str:
    data = entry.data
    if entry.kind == "incident.triggered":
        return f"incident:{data.get('key', entry.summary)}"
    return f"alert:{data.get('cluster', '')}/{data.get('fingerprint', entry.summary)}"


def _fired(entries: Sequence[LogEntry]) -> tuple[Fired, ...]:
    found: dict[str, Fired] = {}
    for entry in sorted(entries, key=lambda e: (e.at, e.id or 0)):
        if entry.kind not in FIRED_KINDS:
            continue
        key = _fired_key(entry)
        seen = found.get(key)
        found[key] = (
            Fired(entry.summary, entry.at, 1)
            if seen is None
            else Fired(seen.what, seen.first_at, seen.times + 1)
        )
    return tuple(found.values())


def _next_oncall(oncalls: Sequence[OnCall], now: datetime) -> tuple[NextOnCall, ...]:
    levels: dict[tuple[str, int], list[OnCall]] = {}
    for oncall in oncalls:
        levels.setdefault((oncall.policy, oncall.level), []).append(oncall)
    out: list[NextOnCall] = []
    for (policy, level), items in sorted(levels.items()):
        current = [
            o
            for o in items
            if (o.start is None or o.start <= now) and (o.end is None or o.end > now)
        ]
        upcoming = sorted(
            (o for o in items if o.start is not None and o.start > now),
            key=lambda o: o.start or now,
        )
        first_now = current[0] if current else None
        # "Next" is the first shift of someone else; the same person again is no handover.
        after = [o for o in upcoming if first_now is None or o.user != first_now.user]
        nxt = after[0] if after else None
        out.append(
            NextOnCall(
                policy,
                level,
                first_now.user if first_now else "",
                first_now.end if first_now else None,
                nxt.user if nxt else "",
                nxt.start if nxt else None,
            )
        )
    return tuple(out)


def build_handoff(
    entries: Sequence[LogEntry],
    snapshot: Snapshot | None,
    *,
    now: datetime,
    shift: timedelta,
) -> Handoff:
    """The handoff of the shift that ends `now` and lasted `shift`; the next one as long."""
    since = now - shift
    in_shift = [e for e in entries if since <= e.at <= now]
    handled = tuple(
        sorted((e for e in in_shift if e.kind in HANDLED_KINDS), key=lambda e: (e.at, e.id or 0))
    )
    end = now + shift
    if snapshot is None:
        return Handoff(since, now, end, _fired(in_shift), handled, (), (), (), (), None)
    incidents = tuple(i for i in snapshot.incidents if i.is_open)
    alerts = tuple(
        sorted(
            (a for a in snapshot.alerts if a.state == AlertState.ACTIVE),
            key=lambda a: (severity_rank(a.severity), a.starts_at),
        )
    )
    expiring = tuple(
        sorted(
            (
                s
                for s in snapshot.silences
                if s.state == SilenceState.ACTIVE and now < s.ends_at <= end
            ),
            key=lambda s: s.ends_at,
        )
    )
    return Handoff(
        since,
        now,
        end,
        _fired(in_shift),
        handled,
        incidents,
        alerts,
        expiring,
        _next_oncall(snapshot.oncalls, now),
        snapshot.taken_at,
        snapshot.restored,
    )


async def load_handoff(
    log: LogReader, snapshot: Snapshot | None, *, now: datetime, shift: timedelta
) -> Handoff:
    since = now - shift
    entries = await log.entries(
        since=since, kinds=(*FIRED_KINDS, *HANDLED_KINDS), limit=0, newest_first=False
    )
    return build_handoff(entries, snapshot, now=now, shift=shift)


# -- text -------------------------------------------------------------------------------------


def _hm(moment: datetime | None) -> str:
    return moment.strftime("%H:%M UTC") if moment is not None else "—"


def _clip(items: Sequence[str]) -> list[str]:
    if len(items) <= MAX_LINES:
        return list(items)
    return [*items[:MAX_LINES], f"- … and {len(items) - MAX_LINES} more (see `oncall-tui log`)"]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _comment(text: str) -> str:
    # The engine tags its silences with an action marker for idempotency; readers need not see it.
    return _one_line(_MARKER.sub("", text))


def handoff_markdown(handoff: Handoff) -> str:
    """The handoff as Markdown: readable as plain text in a terminal, pasteable into a ticket."""
    h = handoff
    length = duration_text(h.now - h.since)
    lines = [
        f"# Shift handoff — {h.since:%Y-%m-%d %H:%M} to {h.now:%H:%M} UTC ({length})",
        "",
        f"## What fired ({len(h.fired)})",
        "",
    ]
    fired = [
        f"- {f.first_at:%H:%M} {_one_line(f.what)}" + (f" ({f.times} times)" if f.times > 1 else "")
        for f in h.fired
    ]
    lines += _clip(fired) or ["- nothing"]
    lines += ["", f"## Acknowledged, resolved or silenced ({len(h.handled)})", ""]
    handled = [
        f"- {e.at:%H:%M} {_one_line(e.summary)}"
        + (f" — {_comment(str(e.data['comment']))}" if e.data.get("comment") else "")
        + (f" ({e.actor})" if e.actor else "")
        for e in h.handled
    ]
    lines += _clip(handled) or ["- nothing"]
    lines += ["", "## Still open", ""]
    if h.snapshot_at is None:
        lines.append("- unknown: no snapshot in the log yet (run the dashboard or `serve`)")
    else:
        if h.snapshot_stale or h.now - h.snapshot_at > timedelta(minutes=5):
            lines.append(f"_As last seen at {h.snapshot_at:%Y-%m-%d %H:%M} UTC._")
            lines.append("")
        opened = [
            f"- {i.status} {('#' + str(i.number) + ' ') if i.number is not None else ''}"
            f"{_one_line(i.title)}"
            + (f" ({_one_line(i.service)})" if i.service else "")
            + (f" — {_one_line(i.assignee)}" if i.assignee else "")
            + f", since {_hm(i.created_at)}"
            for i in h.open_incidents
        ]
        alerts = [
            f"- [{a.severity}] {_one_line(a.alertname)}"
            + (f" ({_one_line(a.labels['service'])})" if a.labels.get("service") else "")
            + (f": {_one_line(a.summary)}" if a.summary else "")
            + f", since {_hm(a.starts_at)}"
            for a in h.open_alerts
        ]
        lines += [f"**Incidents ({len(opened)})**", ""]
        lines += _clip(opened) or ["- none"]
        lines += ["", f"**Firing alerts ({len(alerts)})**", ""]
        lines += _clip(alerts) or ["- none"]
    lines += ["", f"## Silences expiring before {h.next_shift_end:%Y-%m-%d %H:%M} UTC", ""]
    if h.snapshot_at is None:
        lines.append("- unknown: no snapshot in the log yet")
    else:
        expiring = [
            f"- {s.ends_at:%H:%M} {', '.join(str(m) for m in s.matchers)}"
            f" — {_one_line(s.created_by)}: {_comment(s.comment)}"
            for s in h.expiring
        ]
        lines += _clip(expiring) or ["- none"]
    lines += ["", "## On call next", ""]
    if not h.next_oncall:
        lines.append("- unknown: no on-call data (PagerDuty or Opsgenie not configured or polled)")
    for item in h.next_oncall:
        now_text = (
            f"{item.now} until {_hm(item.now_until) if item.now_until else 'further notice'}"
            if item.now
            else "nobody now"
        )
        next_text = f"then {item.next} from {_hm(item.next_from)}" if item.next else "no change"
        lines.append(f"- {item.policy}, level {item.level}: {now_text}; {next_text}")
    return "\n".join(lines) + "\n"
