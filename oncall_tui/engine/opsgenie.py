"""Opsgenie as a source of incidents and on-calls, and as a target of operator actions.

`OpsgenieSource` polls open alerts (shown as `Incident(system="opsgenie")`, closed ones kept
for an hour of context), who is on call per schedule now and next, and seven days of shifts.
Opsgenie sends us no webhooks, so polling is the only source; an action's outcome is applied at
once from a fresh read of the alert. A failing Opsgenie keeps its last known alerts, marked
stale, rather than an empty list.

`OpsgenieActions` (engine/opsgenie_actions.py) carries out actions on Opsgenie alerts; this
module also has what the CLI needs to fire a test alert (`fire_to_opsgenie`), the log rows for
alert changes, and the client with `create_alert`.

Priorities and severities: an alert's priority is compared with `notify.min_severity` through
`PRIORITY_SEVERITY` (P1 critical, P2 high, P3 warning, P4 info, P5 low), and only new P1/P2
alerts raise a notification at all. A test alert fired at Opsgenie gets its priority from its
`severity` label through `SEVERITY_PRIORITY` (critical P1, high/error P2, warning P3, info P4,
low/none P5, anything else P3, Opsgenie's default).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine.incident_changes import IncidentChange, incident_data, incident_ref
from oncall_tui.engine.polled_health import PolledHealth
from oncall_tui.models import (
    Incident,
    OnCall,
    Shift,
    Snapshot,
    SourceHealth,
    meets_severity,
)
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.opsgenie import (
    ACTION_SOURCE,
    EscalationInfo,
    OpsgenieClient,
)

SOURCE = "opsgenie"
RESOLVED_CONTEXT = timedelta(hours=1)
"""Closed alerts stay in the list this long after they were seen closed, for context."""
LOOKAHEAD_DAYS = 7
MAX_ALERTS = 500
MAX_VANISHED_LOOKUPS = 20
"""Open alerts missing from a poll are looked up one by one, at most this many per poll."""
MAX_SCHEDULES = 50
NOTE_RETRY_WINDOW = timedelta(hours=24)
REQUEST_WAIT = 15.0
"""Seconds an action waits for Opsgenie to process its request before it is retried later."""
REQUEST_STATE = "opsgenie.request."
"""Store state key prefix: action id -> the Opsgenie request id it sent."""

ACK = "incident.acknowledge"
RESOLVE = "incident.resolve"
ESCALATE = "incident.escalate"
NOTE = "incident.note"

PRIORITY_SEVERITY = {"P1": "critical", "P2": "high", "P3": "warning", "P4": "info", "P5": "low"}
LOUD_PRIORITIES = frozenset({"P1", "P2"})
SEVERITY_PRIORITY = {
    "critical": "P1",
    "high": "P2",
    "error": "P2",
    "warning": "P3",
    "info": "P4",
    "low": "P5",
    "none": "P5",
}
MESSAGE_MAX = 130
"""Opsgenie cuts alert messages at 130 characters."""


def priority_severity(priority: str) -> str:
    """The severity an Opsgenie priority counts as for `notify.min_severity`."""
    return PRIORITY_SEVERITY.get(priority.upper(), "warning")


def severity_priority(severity: str) -> str:
    """The Opsgenie priority for a `severity` label (P3, Opsgenie's default, when unknown)."""
    return SEVERITY_PRIORITY.get(severity.lower(), "P3")


# --- the client, plus creating alerts ---------------------------------------------------------


class OpsgenieApi(OpsgenieClient):
    """The provider's client plus `create_alert`, which test alerts need and it lacks."""

    async def create_alert(
        self,
        *,
        message: str,
        alias: str,
        description: str = "",
        details: Mapping[str, str] | None = None,
        tags: Sequence[str] = (),
        priority: str = "P3",
        entity: str = "",
    ) -> str:
        """POST /v2/alerts; returns the request id to follow. Sent again freely: Opsgenie folds
        an alert whose alias is open into that alert."""
        body: dict[str, Any] = {
            "message": message[:MESSAGE_MAX] or alias,
            "alias": alias,
            "priority": priority,
            "source": ACTION_SOURCE,
        }
        if description:
            body["description"] = description
        if details:
            body["details"] = dict(details)
        if tags:
            body["tags"] = list(tags)
        if entity:
            body["entity"] = entity
        if self.user:
            body["user"] = self.user
        answer = await self._request("POST", "/v2/alerts", json=body, idempotent=True)
        request_id = answer.get("requestId") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError(SOURCE, "no requestId in the answer to create alert")
        return request_id


def alert_body(
    labels: Mapping[str, str], annotations: Mapping[str, str], alias: str
) -> dict[str, Any]:
    """`create_alert` arguments for a test alert given as Alertmanager labels/annotations."""
    summary = annotations.get("summary") or annotations.get("description") or labels["alertname"]
    return {
        "message": summary,
        "alias": alias,
        "description": annotations.get("description", ""),
        "details": dict(labels),
        "tags": [labels[k] for k in ("alertname", "severity") if labels.get(k)],
        "priority": severity_priority(labels.get("severity", "")),
        "entity": labels.get("service") or labels.get("instance") or "",
    }


def make_client(config: Config, http: httpx.AsyncClient, clock: Clock) -> OpsgenieApi:
    og = config.opsgenie
    if og is None or og.api_key is None:
        raise ValueError("Opsgenie is not configured (opsgenie.api_key)")
    return OpsgenieApi(
        og.api_url, og.api_key.get_secret_value(), http, clock=clock, user=config.actor
    )


async def fire_to_opsgenie(
    config: Config,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    *,
    http: httpx.AsyncClient,
    clock: Clock,
) -> str:
    """Create a test alert in Opsgenie and wait until Opsgenie has processed it.

    Returns the alert's alias (`oncall-tui-test-<random>`). Raises ProviderError when Opsgenie
    is not configured, refuses the alert, or has not processed it in time (RequestPending).
    """
    if not labels.get("alertname"):
        raise ProviderError(SOURCE, "a test alert needs an alertname label")
    try:
        client = make_client(config, http, clock)
    except ValueError as exc:
        raise ProviderError(SOURCE, str(exc)) from None
    alias = f"oncall-tui-test-{secrets.token_hex(6)}"
    request_id = await client.create_alert(**alert_body(labels, annotations, alias))
    status = await client.wait_for_request(request_id, timeout=REQUEST_WAIT)
    if not status.success:
        raise ProviderError(SOURCE, f"alert not created: {status.status or 'refused'}")
    return alias


# --- what changed, for the log -----------------------------------------------------------------


def diff_alerts(old: Mapping[str, Incident], new: Sequence[Incident]) -> IncidentChange:
    """Changes between two views of the same alerts (by id). Vanished ids are not changes.

    Opened (or re-opened) alerts count as triggered, closed ones as resolved; a new owner of an
    alert whose status did not change as reassigned."""
    triggered: list[Incident] = []
    acknowledged: list[Incident] = []
    resolved: list[Incident] = []
    reassigned: list[Incident] = []
    by_status = {"open": triggered, "acknowledged": acknowledged, "closed": resolved}
    for alert in new:
        before = old.get(alert.id)
        if before is None or before.status != alert.status:
            bucket = by_status.get(alert.status)
            if bucket is not None:
                bucket.append(alert)
        elif before.assignee != alert.assignee and alert.assignee:
            reassigned.append(alert)
    return IncidentChange(
        triggered=tuple(triggered),
        acknowledged=tuple(acknowledged),
        resolved=tuple(resolved),
        reassigned=tuple(reassigned),
    )


def change_log_rows(change: IncidentChange) -> list[tuple[str, str, str, Mapping[str, Any]]]:
    """Log rows for `Store.append_many`, in the kinds PagerDuty's rows use (so the timeline and
    the handoff read both alike) but in Opsgenie's words: opened, closed, priority."""
    rows: list[tuple[str, str, str, Mapping[str, Any]]] = []

    def add(kind: str, summary: str, alert: Incident, **extra: Any) -> None:
        data = {**incident_data(alert), "priority": alert.priority, **extra}
        rows.append((SOURCE, kind, summary, data))

    for a in change.triggered:
        entity = f" ({a.service})" if a.service else ""
        who = f" -> {a.assignee}" if a.assignee else ""
        add("incident.triggered", f"opened [{a.priority}]: {incident_ref(a)}{entity}{who}", a)
    for a in change.acknowledged:
        by = f" by {a.acknowledged_by[-1]}" if a.acknowledged_by else ""
        add("incident.acknowledged", f"acknowledged{by}: {incident_ref(a)}", a)
    for a in change.resolved:
        add("incident.resolved", f"closed: {incident_ref(a)}", a)
    for a in change.escalated:
        to = f" to {a.escalation_policy}" if a.escalation_policy else ""
        add("incident.escalated", f"escalated{to}: {incident_ref(a)}", a)
    for a in change.reassigned:
        add("incident.reassigned", f"owner now {a.assignee}: {incident_ref(a)}", a)
    for a, note in change.noted:
        by = f" by {note.user}" if note.user else ""
        text = note.content if len(note.content) <= 200 else note.content[:199] + "…"
        add("incident.note", f"note{by} on {incident_ref(a)}: {text}", a, note_id=note.id)
    return rows


def raised(change: IncidentChange, min_severity: str) -> tuple[Incident, ...]:
    """Newly opened P1/P2 alerts at or above `min_severity` (see `PRIORITY_SEVERITY`)."""
    return tuple(
        a
        for a in change.triggered
        if a.status == "open"
        and a.priority in LOUD_PRIORITIES
        and meets_severity(priority_severity(a.priority), min_severity)
    )


# --- the source --------------------------------------------------------------------------------


class OpsgenieSource:
    """Open alerts, on-calls and shifts of one Opsgenie account, kept current by polling."""

    def __init__(
        self, client: OpsgenieClient, clock: Clock, *, schedules: Sequence[str] = ()
    ) -> None:
        self._client = client
        self._clock = clock
        self._schedules = tuple(schedules)
        self._alerts: dict[str, Incident] = {}
        self.oncalls: list[OnCall] = []
        self.shifts: list[Shift] = []
        self.escalations: dict[str, EscalationInfo] = {}
        self._health = PolledHealth(SOURCE, client.api_url, clock)
        self.polled_once = False
        self._applies = 0  # action outcomes applied so far
        self._applied_at: dict[str, int] = {}  # alert id -> apply count when last applied
        self._closed_seen: dict[str, datetime] = {}

    @property
    def health(self) -> SourceHealth:
        return self._health.current

    @property
    def incidents(self) -> list[Incident]:
        """Open alerts first (unacknowledged, then acknowledged), newest first within each."""
        order = {"open": 0, "acknowledged": 1}
        return sorted(
            self._alerts.values(),
            key=lambda a: (order.get(a.status, 2), -a.created_at.timestamp()),
        )

    def incident(self, alert_id: str) -> Incident | None:
        return self._alerts.get(alert_id)

    def restore(self, snapshot: Snapshot) -> None:
        """Seed with the last known snapshot so the first poll logs only real changes."""
        self._alerts = {i.id: i for i in snapshot.incidents if i.system == SOURCE}
        self.oncalls = [o for o in snapshot.oncalls if o.system == SOURCE]
        self.shifts = [s for s in snapshot.shifts if s.system == SOURCE]
        self._health.restore(snapshot)

    def _named(self, alert: Incident) -> Incident:
        """With the name of its escalation, when the escalations are known."""
        escalation = self.escalations.get(alert.escalation_policy_id)
        if escalation is None or alert.escalation_policy == escalation.name:
            return alert
        return replace(alert, escalation_policy=escalation.name)

    # -- polling -----------------------------------------------------------------------------

    async def poll_incidents(self) -> IncidentChange:
        """Open alerts, plus those closed within the last hour; returns what changed."""
        applies_before = self._applies
        now = self._clock.now()
        try:
            fetched = {a.id: a for a in await self._client.alerts(limit=MAX_ALERTS)}
            vanished = [a for a in self._alerts.values() if a.is_open and a.id not in fetched]
            for alert in vanished[:MAX_VANISHED_LOOKUPS]:
                # Closed since the last poll (or deleted): ask for it, to know which.
                try:
                    fetched[alert.id] = await self._client.alert(alert.id)
                except ProviderError as exc:
                    if exc.status != 404:
                        raise
            for alert in vanished[MAX_VANISHED_LOOKUPS:]:
                fetched[alert.id] = alert  # as it was: looked up by a later poll
        except ProviderError as exc:
            self._health.mark("alerts", str(exc))
            return IncidentChange()
        finally:
            self.polled_once = True
        self._health.mark("alerts", "")
        merged: dict[str, Incident] = {}
        for alert in fetched.values():
            before = self._alerts.get(alert.id)
            if before is not None and self._applied_at.get(alert.id, -1) >= applies_before:
                # An action's outcome applied while this poll was in flight is newer.
                merged[alert.id] = before
                continue
            merged[alert.id] = self._named(_keep_known(alert, before))
        for alert in self._alerts.values():
            if not alert.is_open and alert.id not in merged:
                merged[alert.id] = alert  # closed ones are not listed again: keep for context
        change = diff_alerts(self._alerts, list(merged.values()))
        self._alerts = self._prune(merged, now)
        self._applied_at = {k: v for k, v in self._applied_at.items() if k in self._alerts}
        return change

    def _prune(self, alerts: dict[str, Incident], now: datetime) -> dict[str, Incident]:
        kept: dict[str, Incident] = {}
        for alert in alerts.values():
            if alert.is_open:
                self._closed_seen.pop(alert.id, None)
                kept[alert.id] = alert
                continue
            seen = self._closed_seen.setdefault(alert.id, alert.last_change_at or now)
            if now - seen <= RESOLVED_CONTEXT:
                kept[alert.id] = alert
            else:
                self._closed_seen.pop(alert.id, None)
        return kept

    def apply_alert(self, alert: Incident) -> IncidentChange:
        """Take a newer view of one alert (read right after an action); returns what changed."""
        before = self._alerts.get(alert.id)
        alert = self._named(_keep_known(alert, before))
        self._alerts[alert.id] = alert
        self._applies += 1
        self._applied_at[alert.id] = self._applies
        if not alert.is_open:
            self._closed_seen.setdefault(alert.id, self._clock.now())
        return diff_alerts({before.id: before} if before else {}, [alert])

    async def poll_oncall(self) -> None:
        """Per schedule: who is on call now (until when), who is next, 7 days of shifts."""
        now = self._clock.now()
        oncalls: list[OnCall] = []
        shifts: list[Shift] = []
        try:
            schedules = await self._client.schedules()
            wanted = set(self._schedules)
            chosen = [
                s
                for s in schedules
                if s.enabled and (not wanted or s.id in wanted or s.name in wanted)
            ][:MAX_SCHEDULES]
            for schedule in chosen:
                ahead = await self._client.shifts(schedule.id, days=LOOKAHEAD_DAYS)
                current = await self._client.oncalls(schedule.id)
                upcoming = await self._client.next_oncalls(schedule.id)
                oncalls.extend(_with_times(now, schedule.id, current, upcoming, ahead))
                shifts.extend(ahead)
        except ProviderError as exc:
            self._health.mark("on-call", str(exc))
            return
        self._health.mark("on-call", "")
        # Escalations only give names; a key without configuration access lacks them.
        with contextlib.suppress(ProviderError):
            self.escalations = {e.id: e for e in await self._client.escalations()}
        self.oncalls = sorted(oncalls, key=lambda o: (o.policy, o.start or now, o.user))
        self.shifts = sorted(shifts, key=lambda s: (s.schedule, s.start, s.end))
        self._alerts = {k: self._named(a) for k, a in self._alerts.items()}

    def edge(self, before: SourceHealth) -> bool | None:
        return self._health.edge(before)


def _with_times(
    now: datetime,
    schedule_id: str,
    current: Sequence[OnCall],
    upcoming: Sequence[OnCall],
    shifts: Sequence[Shift],
) -> list[OnCall]:
    """On-calls with the start and end of their shift (Opsgenie's on-call answer has neither).

    Who is next starts where the current shift ends; without a known shift the entry is left
    out rather than shown as on call now."""
    result: list[OnCall] = []
    ends: list[datetime] = []
    for oncall in current:
        shift = next((s for s in shifts if s.user == oncall.user and s.start <= now < s.end), None)
        if shift is not None:
            ends.append(shift.end)
        result.append(
            replace(
                oncall,
                policy_id=oncall.policy_id or schedule_id,
                start=shift.start if shift else None,
                end=shift.end if shift else None,
            )
        )
    handover = min(ends) if ends else now
    for oncall in upcoming:
        shift = next((s for s in shifts if s.user == oncall.user and s.start >= handover), None)
        if shift is None or shift.start <= now:
            continue
        result.append(
            replace(
                oncall,
                policy_id=oncall.policy_id or schedule_id,
                start=shift.start,
                end=shift.end,
            )
        )
    return result


def _keep_known(alert: Incident, before: Incident | None) -> Incident:
    """A newer view of an alert, with what that view cannot tell taken from the older one
    (list items carry no entity; a closed alert still names who acknowledged it)."""
    if before is None:
        return alert
    changes: dict[str, Any] = {}
    if not alert.acknowledged_by and before.acknowledged_by and alert.status != "open":
        changes["acknowledged_by"] = before.acknowledged_by
    for name in ("service", "number", "escalation_policy", "url"):
        if not getattr(alert, name) and getattr(before, name):
            changes[name] = getattr(before, name)
    return replace(alert, **changes) if changes else alert
