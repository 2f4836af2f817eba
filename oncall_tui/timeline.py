"""One incident's story across systems, read back from the log, and its postmortem Markdown.

After an incident the question is "what happened, in order?". Everything needed is already in
the log, written by the engine as it happened; this module only reads it back and links it:

- the incident's own rows (`incident.*` from PagerDuty or Opsgenie, with `key` and `dedup_key`),
- the Alertmanager notifications of its alert group: Alertmanager's PagerDuty and Opsgenie
  notifiers use sha256(group key) as dedup key / alias (DESIGN.md section 6), so a `webhook`
  entry whose hashed `group_key` equals the incident's `dedup_key` belongs to it, and names the
  fingerprints of the group's alerts,
- those alerts' `alert.*` rows from polling, and the operator's test alert that matches them,
- the same group's incident in the other paging system (same `dedup_key`),
- the operator's actions on the incident (`action.*` whose data names its key),
- the Statuspage incident that automation opened for those alerts (`automation.open` lists the
  alert keys, `automation.opened` names the page's incident) and that incident's own rows.

Durations are measured between logged moments: time to acknowledge and time to resolve from the
first page, and detection to page from the first alert. The postmortem Markdown is written by
oncall_tui/postmortem.py. Nothing here imports Textual.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from oncall_tui.models import LogEntry

PAGING_SOURCES = ("pagerduty", "opsgenie")
SYSTEM_NAMES = {
    "alertmanager": "Alertmanager",
    "pagerduty": "PagerDuty",
    "opsgenie": "Opsgenie",
    "statuspage": "Statuspage",
    "automation": "Automation",
    "operator": "Operator",
    "webhooks": "Webhooks",
}
WINDOW = timedelta(hours=24)
"""How far around the incident's own rows related entries (alerts, pages) are looked for."""

_ACK_BY = re.compile(r"^acknowledged by (?P<who>.+?): ")


class TimelineError(LookupError):
    """The incident is not in the log (or the reference names more than one)."""


class LogReader(Protocol):
    """What the timeline needs from the log (Store satisfies it)."""

    async def entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        sources: Sequence[str] = (),
        kinds: Sequence[str] = (),
        text: str = "",
        limit: int = 1000,
        newest_first: bool = True,
    ) -> list[LogEntry]: ...


def group_hash(group_key: str) -> str:
    """Alertmanager's dedup key / alias for an alert group: sha256 hex of its group key."""
    return hashlib.sha256(group_key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    at: datetime
    system: str  # the log source: alertmanager, pagerduty, opsgenie, statuspage, ...
    stage: str  # the log kind: alert.firing, webhook, incident.acknowledged, ...
    summary: str
    actor: str = ""
    entry_id: int | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    """One incident and everything linked to it, oldest first."""

    key: str  # "pagerduty/<id>"
    system: str
    incident_id: str
    title: str
    number: int | None
    service: str
    url: str
    dedup_key: str
    status: str  # the last status the log saw
    events: tuple[TimelineEvent, ...]
    first_alert_at: datetime | None = None
    triggered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str = ""
    resolved_at: datetime | None = None
    group_keys: tuple[str, ...] = ()
    escalations: int = 0
    related: tuple[str, ...] = field(default=())  # other incidents' keys of the same group
    public_incidents: tuple[str, ...] = ()  # Statuspage incident ids automation opened for it
    public_opened_at: datetime | None = None
    public_resolved_at: datetime | None = None

    @property
    def entry_ids(self) -> frozenset[int]:
        return frozenset(e.entry_id for e in self.events if e.entry_id is not None)

    @property
    def time_to_acknowledge(self) -> timedelta | None:
        if self.triggered_at is None or self.acknowledged_at is None:
            return None
        return self.acknowledged_at - self.triggered_at

    @property
    def time_to_resolve(self) -> timedelta | None:
        if self.triggered_at is None or self.resolved_at is None:
            return None
        return self.resolved_at - self.triggered_at

    @property
    def detection_to_page(self) -> timedelta | None:
        if self.first_alert_at is None or self.triggered_at is None:
            return None
        return self.triggered_at - self.first_alert_at

    @property
    def detection_to_public(self) -> timedelta | None:
        if self.first_alert_at is None or self.public_opened_at is None:
            return None
        return self.public_opened_at - self.first_alert_at

    @property
    def started_at(self) -> datetime | None:
        return self.events[0].at if self.events else None


# -- finding the incident ---------------------------------------------------------------------


def _incident_rows(entries: Iterable[LogEntry]) -> list[LogEntry]:
    return [e for e in entries if e.source in PAGING_SOURCES and e.kind.startswith("incident.")]


def matches_ref(entry: LogEntry, ref: str) -> bool:
    """Whether an incident row is about the incident an operator named: id, key or number."""
    wanted = ref.strip().removeprefix("#")
    data = entry.data
    if wanted in (str(data.get("incident_id", "")), str(data.get("key", ""))):
        return True
    number = data.get("number")
    return number is not None and wanted == str(number)


def _resolve(rows: Sequence[LogEntry], ref: str) -> str:
    keys = list(dict.fromkeys(str(e.data.get("key", "")) for e in rows if matches_ref(e, ref)))
    keys = [k for k in keys if k]
    if not keys:
        raise TimelineError(f"no incident {ref!r} in the log")
    if len(keys) > 1:
        # A number can exist in PagerDuty and Opsgenie alike: ask for the id.
        raise TimelineError(f"{ref!r} names {len(keys)} incidents ({', '.join(keys)}); use the id")
    return keys[0]


# -- linking ----------------------------------------------------------------------------------


def _alerts_of(webhook: LogEntry) -> list[Mapping[str, Any]]:
    alerts = webhook.data.get("alerts")
    return [a for a in alerts if isinstance(a, Mapping)] if isinstance(alerts, list) else []


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def incident_timeline(entries: Sequence[LogEntry], ref: str) -> Timeline:
    """The timeline of the incident `ref` (id, key or number) from log entries, in any order."""
    ordered = sorted(entries, key=lambda e: (e.at, e.id or 0))
    key = _resolve(_incident_rows(ordered), ref)
    own = [e for e in _incident_rows(ordered) if e.data.get("key") == key]
    latest = own[-1].data
    dedup = str(latest.get("dedup_key") or "")
    picked: dict[int, LogEntry] = {id(e): e for e in own}

    # The alert group: Alertmanager notifications hashed to the incident's dedup key.
    group_keys: list[str] = []
    fingerprints: set[str] = set()
    first_alert: datetime | None = None
    alert_labels: list[dict[str, str]] = []
    if dedup:
        for entry in ordered:
            if entry.source != "alertmanager" or entry.kind != "webhook":
                continue
            group_key = str(entry.data.get("group_key", ""))
            if not group_key or group_hash(group_key) != dedup:
                continue
            picked[id(entry)] = entry
            if group_key not in group_keys:
                group_keys.append(group_key)
            for alert in _alerts_of(entry):
                fingerprints.add(str(alert.get("fingerprint", "")))
                labels = alert.get("labels")
                if isinstance(labels, Mapping) and dict(labels) not in alert_labels:
                    alert_labels.append({str(k): str(v) for k, v in labels.items()})
                started = _parse_time(alert.get("starts_at"))
                if started is not None and alert.get("status") == "firing":
                    first_alert = started if first_alert is None else min(first_alert, started)
    alert_keys: set[str] = set()
    related: list[str] = []
    for entry in ordered:
        data = entry.data
        if entry.source == "alertmanager" and entry.kind.startswith("alert."):
            if data.get("fingerprint") in fingerprints:
                picked[id(entry)] = entry
                alert_keys.add(f"{data.get('cluster', '')}/{data.get('fingerprint')}")
                if entry.kind == "alert.firing":
                    first_alert = entry.at if first_alert is None else min(first_alert, entry.at)
        elif entry.source == "operator" and entry.kind == "alert.fired":
            if data.get("labels") in alert_labels or (dedup and data.get("dedup_key") == dedup):
                picked[id(entry)] = entry
        elif entry.source == "operator" and entry.kind.startswith("action."):
            if data.get("key") == key or f" {key}" in f" {entry.summary}":
                picked[id(entry)] = entry
        elif entry.source in PAGING_SOURCES and entry.kind.startswith("incident."):
            other = str(data.get("key", ""))
            if dedup and other != key and data.get("dedup_key") == dedup:
                picked[id(entry)] = entry
                if other not in related:
                    related.append(other)
    page_ids = _link_statuspage(ordered, alert_keys, picked)

    events = tuple(
        TimelineEvent(e.at, e.source, e.kind, e.summary, e.actor, e.id)
        for e in sorted(picked.values(), key=lambda e: (e.at, e.id or 0))
    )
    public_opened, public_resolved = _public_times(events)
    triggered = next((e.at for e in own if e.kind == "incident.triggered"), None)
    triggered = triggered or own[0].at
    ack = next((e for e in own if e.kind == "incident.acknowledged"), None)
    resolved = [e.at for e in own if e.kind == "incident.resolved"]
    final_status = str(latest.get("status", ""))
    number = latest.get("number")
    return Timeline(
        key=key,
        system=own[0].source,
        incident_id=str(latest.get("incident_id", "")),
        title=_title(own),
        number=number if isinstance(number, int) else None,
        service=str(latest.get("service", "")),
        url=str(latest.get("url", "")),
        dedup_key=dedup,
        status=final_status,
        events=events,
        first_alert_at=first_alert if first_alert is None or first_alert <= triggered else None,
        triggered_at=triggered,
        acknowledged_at=ack.at if ack is not None else None,
        acknowledged_by=_acknowledger(ack, ordered),
        resolved_at=resolved[-1] if resolved and final_status in ("resolved", "closed") else None,
        group_keys=tuple(group_keys),
        escalations=sum(1 for e in own if e.kind == "incident.escalated"),
        related=tuple(related),
        public_incidents=tuple(sorted(page_ids)),
        public_opened_at=public_opened,
        public_resolved_at=public_resolved,
    )


def _title(own: Sequence[LogEntry]) -> str:
    """The incident's title from its rows' summaries, `<verb>: #N title[ (service)][ -> who]`.

    The rows carry no title field (engine/incident_changes.py writes it into the summary), so
    the suffixes a triggered row adds are removed using the row's own data.
    """
    for entry in sorted(own, key=lambda e: e.kind != "incident.resolved"):
        if entry.kind == "incident.note":
            continue  # "note by X on #N title: text" — the title is not at the end
        data = entry.data
        number = data.get("number")
        marker = f": #{number} " if number is not None else ": "
        _, sep, rest = entry.summary.partition(marker)
        if not sep:
            continue
        if entry.kind == "incident.triggered":
            rest = rest.removesuffix(f" -> {data.get('assignee', '')}")
            rest = rest.removesuffix(f" ({data.get('service', '')})")
        return rest.strip()
    return str(own[-1].data.get("incident_id", ""))


def _acknowledger(ack: LogEntry | None, ordered: Sequence[LogEntry]) -> str:
    if ack is None:
        return ""
    found = _ACK_BY.match(ack.summary)
    if found:
        return found.group("who")
    return ack.actor


def _link_statuspage(
    ordered: Sequence[LogEntry], alert_keys: set[str], picked: dict[int, LogEntry]
) -> set[str]:
    """The public incident automation opened for these alerts, and what happened to it."""
    if not alert_keys:
        return set()
    episode_keys: set[str] = set()
    page_ids: set[str] = set()
    for entry in ordered:
        if entry.source != "automation":
            continue
        alerts = entry.data.get("alerts")
        if isinstance(alerts, list) and alert_keys.intersection(str(a) for a in alerts):
            picked[id(entry)] = entry
            if entry.data.get("key"):
                episode_keys.add(str(entry.data["key"]))
            if entry.data.get("incident_id"):
                page_ids.add(str(entry.data["incident_id"]))
    for entry in ordered:
        data = entry.data
        if entry.source == "automation" and data.get("key") in episode_keys:
            picked[id(entry)] = entry
            if data.get("incident_id"):
                page_ids.add(str(data["incident_id"]))
        elif (
            entry.source == "operator"
            and entry.kind.startswith("action.")
            and entry.summary.startswith("statuspage.")
            and data.get("key") in episode_keys
            and data.get("incident_id")
        ):
            page_ids.add(str(data["incident_id"]))
    for entry in ordered:
        data = entry.data
        if str(data.get("incident_id", "")) not in page_ids:
            continue
        if (
            (entry.source == "statuspage" and entry.kind.startswith("incident."))
            or entry.source == "automation"
            or (entry.source == "operator" and entry.summary.startswith("statuspage."))
        ):
            picked[id(entry)] = entry
    return page_ids


def _public_times(events: Sequence[TimelineEvent]) -> tuple[datetime | None, datetime | None]:
    """When the public incident was first seen open, and when it was resolved."""
    public = [e for e in events if e.system in ("statuspage", "automation")]
    opened = next((e.at for e in public if e.stage in ("automation.opened", "incident.new")), None)
    resolved = [
        e.at
        for e in public
        if e.stage in ("automation.resolved", "automation.closed")
        or (e.system == "statuspage" and e.stage == "incident.resolved")
    ]
    return opened, (resolved[0] if resolved else None)


async def load_timeline(log: LogReader, ref: str) -> Timeline:
    """Find the incident in the log, then read the entries around it and link them."""
    wanted = ref.strip().removeprefix("#")
    if not wanted:
        raise TimelineError("name an incident: its id, key (pagerduty/ID) or number")
    candidates = await log.entries(sources=PAGING_SOURCES, text=wanted, limit=0, newest_first=False)
    rows = [e for e in _incident_rows(candidates) if matches_ref(e, wanted)]
    key = _resolve(rows, ref.strip())
    own = [e for e in rows if e.data.get("key") == key]
    since = own[0].at - WINDOW
    until = own[-1].at + WINDOW
    entries = await log.entries(since=since, until=until, limit=0, newest_first=False)
    return incident_timeline(entries, key)


async def incident_for_entry(log: LogReader, entry: LogEntry) -> str:
    """The key of the incident a log entry belongs to, found through the log; "" if none.

    An incident's rows and the actions on it name its key; an Alertmanager notification names
    its group key, whose hash is the incident's dedup key; an alert's rows name its fingerprint,
    which the notifications of its group list.
    """
    data = entry.data
    key = str(data.get("key", ""))
    if key.partition("/")[0] in PAGING_SOURCES:
        return key
    group_keys: list[str] = []
    if isinstance(data.get("group_key"), str):
        group_keys.append(data["group_key"])
    fingerprint = data.get("fingerprint")
    if not group_keys and isinstance(fingerprint, str) and fingerprint:
        since = entry.at - WINDOW
        notifications = await log.entries(
            since=since, sources=("alertmanager",), kinds=("webhook",), text=fingerprint, limit=50
        )
        for webhook in notifications:
            fingerprints = {str(a.get("fingerprint", "")) for a in _alerts_of(webhook)}
            group_key = webhook.data.get("group_key")
            if fingerprint in fingerprints and isinstance(group_key, str):
                group_keys.append(group_key)
    for group_key in dict.fromkeys(group_keys):
        dedup = group_hash(group_key)
        rows = await log.entries(sources=PAGING_SOURCES, text=dedup, limit=20)
        for row in _incident_rows(rows):
            if row.data.get("dedup_key") == dedup and row.data.get("key"):
                return str(row.data["key"])
    return ""
