"""What changed in PagerDuty (or Opsgenie) incidents, and how it is written to the log.

Pure functions over `Incident` values, shared by the source (polls and webhooks) and the actions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oncall_tui.models import Incident, IncidentNote


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """What one poll, webhook or action changed, for the log and for notifications."""

    triggered: tuple[Incident, ...] = ()  # new, re-opened or unacknowledged again
    acknowledged: tuple[Incident, ...] = ()
    resolved: tuple[Incident, ...] = ()
    escalated: tuple[Incident, ...] = ()
    reassigned: tuple[Incident, ...] = ()
    noted: tuple[tuple[Incident, IncidentNote], ...] = ()

    def __bool__(self) -> bool:
        return bool(
            self.triggered
            or self.acknowledged
            or self.resolved
            or self.escalated
            or self.reassigned
            or self.noted
        )

    def __add__(self, other: IncidentChange) -> IncidentChange:
        return IncidentChange(
            self.triggered + other.triggered,
            self.acknowledged + other.acknowledged,
            self.resolved + other.resolved,
            self.escalated + other.escalated,
            self.reassigned + other.reassigned,
            self.noted + other.noted,
        )

    @property
    def raised(self) -> tuple[Incident, ...]:
        """Incidents that now page someone: the operator should hear about these."""
        return tuple(i for i in self.triggered if i.status == "triggered")


def diff_incidents(old: Mapping[str, Incident], new: Sequence[Incident]) -> IncidentChange:
    """Changes between two views of the same incidents (by id). Vanished ids are not changes."""
    triggered: list[Incident] = []
    acknowledged: list[Incident] = []
    resolved: list[Incident] = []
    escalated: list[Incident] = []
    reassigned: list[Incident] = []
    by_status = {"triggered": triggered, "acknowledged": acknowledged, "resolved": resolved}
    for incident in new:
        before = old.get(incident.id)
        climbed = (
            before is not None
            and before.escalation_level is not None
            and incident.escalation_level is not None
            and incident.escalation_level > before.escalation_level
        )
        if before is None or (before.status != incident.status and not climbed):
            bucket = by_status.get(incident.status)
            if bucket is not None:
                bucket.append(incident)
            continue
        if climbed:
            # Escalating re-triggers an acknowledged incident; the climb is the news.
            escalated.append(incident)
        elif (
            before.assignee_ids != incident.assignee_ids
            or before.escalation_policy_id != incident.escalation_policy_id
        ):
            reassigned.append(incident)
    return IncidentChange(
        tuple(triggered), tuple(acknowledged), tuple(resolved), tuple(escalated), tuple(reassigned)
    )


def incident_ref(incident: Incident) -> str:
    number = f"#{incident.number} " if incident.number is not None else ""
    return f"{number}{incident.title}".strip()


def incident_data(incident: Incident) -> dict[str, Any]:
    return {
        "incident_id": incident.id,
        "key": incident.key,
        "number": incident.number,
        "status": incident.status,
        "urgency": incident.urgency,
        "service": incident.service,
        "assignee": incident.assignee,
        "escalation_level": incident.escalation_level,
        "escalation_policy": incident.escalation_policy,
        "dedup_key": incident.dedup_key,
        "url": incident.url,
    }


def change_log_rows(change: IncidentChange) -> list[tuple[str, str, str, Mapping[str, Any]]]:
    """Log rows for `Store.append_many`: (source, kind, summary, data)."""
    rows: list[tuple[str, str, str, Mapping[str, Any]]] = []

    def add(kind: str, summary: str, incident: Incident, **extra: Any) -> None:
        rows.append((incident.system, kind, summary, {**incident_data(incident), **extra}))

    for i in change.triggered:
        service = f" ({i.service})" if i.service else ""
        who = f" -> {i.assignee}" if i.assignee else ""
        add("incident.triggered", f"triggered [{i.urgency}]: {incident_ref(i)}{service}{who}", i)
    for i in change.acknowledged:
        by = f" by {i.acknowledged_by[-1]}" if i.acknowledged_by else ""
        add("incident.acknowledged", f"acknowledged{by}: {incident_ref(i)}", i)
    for i in change.resolved:
        add("incident.resolved", f"resolved: {incident_ref(i)}", i)
    for i in change.escalated:
        level = f" to level {i.escalation_level}" if i.escalation_level is not None else ""
        who = f" ({i.assignee})" if i.assignee else ""
        add("incident.escalated", f"escalated{level}{who}: {incident_ref(i)}", i)
    for i in change.reassigned:
        to = i.assignee or i.escalation_policy or "?"
        add("incident.reassigned", f"reassigned to {to}: {incident_ref(i)}", i)
    for i, note in change.noted:
        by = f" by {note.user}" if note.user else ""
        text = note.content if len(note.content) <= 200 else note.content[:199] + "…"
        add("incident.note", f"note{by} on {incident_ref(i)}: {text}", i, note_id=note.id)
    return rows
