"""JSON of the fake PagerDuty's incidents: the REST `Incident` and `IncidentNote`, and the
`data` of webhook v3 incident events (which uses `number` and `assignees`, unlike REST).

Only fields PagerDuty returns; references are expanded into full objects where `include[]` asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from oncall_tui.sandbox.pagerduty_directory import API_BASE, WEB_BASE, Directory, format_time

if TYPE_CHECKING:
    from oncall_tui.sandbox.pagerduty_incidents import Incident, Note


def webhook_data(directory: Directory, incident: Incident) -> dict[str, Any]:
    """`event.data` of incident webhooks: `number` and `assignees`, unlike the REST shape."""
    return {
        "id": incident.id,
        "type": "incident",
        "self": f"{API_BASE}/incidents/{incident.id}",
        "html_url": f"{WEB_BASE}/incidents/{incident.id}",
        "number": incident.number,
        "status": incident.status,
        "incident_key": incident.incident_key,
        "created_at": format_time(incident.created_at),
        "title": incident.title,
        "service": directory.reference("service", incident.service_id),
        "assignees": [directory.reference("user", user_id) for _, user_id in incident.assignments],
        "escalation_policy": directory.reference("escalation_policy", incident.policy_id),
        "teams": [],
        "priority": None,
        "urgency": incident.urgency,
        "conference_bridge": None,
        "resolve_reason": None,
        "incident_type": {"name": "incident_default"},
    }


def incident_json(
    directory: Directory, incident: Incident, include: Sequence[str] = ()
) -> dict[str, Any]:
    """The REST `Incident`, with references expanded as `include[]` asks."""
    d = directory

    def user(user_id: str, expand: bool) -> dict[str, Any]:
        return d.user_json(d.users[user_id]) if expand else d.reference("user", user_id)

    acknowledgements = []
    for at, kind, agent_id in incident.acknowledgements:
        if kind == "user":
            who = user(agent_id, "acknowledgers" in include or "users" in include)
        else:
            who = d.reference(kind, agent_id)
        acknowledgements.append({"at": format_time(at), "acknowledger": who})
    expand_assignees = "assignees" in include or "users" in include
    service = d.services[incident.service_id]
    policy = d.policies[incident.policy_id]
    pending = []
    if incident.next_escalation_at is not None and incident.status == "triggered":
        pending.append({"type": "escalate", "at": format_time(incident.next_escalation_at)})
    if incident.snoozed_until is not None:
        pending.append({"type": "unacknowledge", "at": format_time(incident.snoozed_until)})
    triggered = sum(1 for a in incident.alerts if a.status == "triggered")
    return {
        "id": incident.id,
        "type": "incident",
        "summary": f"[#{incident.number}] {incident.title}",
        "self": f"{API_BASE}/incidents/{incident.id}",
        "html_url": f"{WEB_BASE}/incidents/{incident.id}",
        "incident_number": incident.number,
        "title": incident.title,
        "created_at": format_time(incident.created_at),
        "updated_at": format_time(incident.updated_at or incident.created_at),
        "status": incident.status,
        "incident_key": incident.incident_key,
        "service": (
            d.service_json(service, incident.created_at)
            if "services" in include
            else d.reference("service", service.id)
        ),
        "assignments": [
            {"at": format_time(at), "assignee": user(user_id, expand_assignees)}
            for at, user_id in incident.assignments
        ],
        "assigned_via": incident.assigned_via,
        "last_status_change_at": format_time(incident.last_status_change_at or incident.created_at),
        "last_status_change_by": d.reference(*incident.last_status_change_by),
        "resolved_at": None if incident.resolved_at is None else format_time(incident.resolved_at),
        "alert_counts": {
            "all": len(incident.alerts),
            "triggered": triggered,
            "resolved": len(incident.alerts) - triggered,
        },
        "is_mergeable": True,
        "incident_type": {"name": "incident_default"},
        "escalation_policy": (
            d.policy_json(policy)
            if "escalation_policies" in include
            else d.reference("escalation_policy", policy.id)
        ),
        "teams": [],
        "pending_actions": pending,
        "acknowledgements": acknowledgements,
        "alert_grouping": None,
        "priority": None,
        "resolve_reason": None,
        "incidents_responders": [],
        "responder_requests": [],
        "urgency": incident.urgency,
    }


def note_json(directory: Directory, note: Note) -> dict[str, Any]:
    return {
        "id": note.id,
        "user": directory.reference("user", note.user_id),
        "channel": {"summary": "The PagerDuty website or APIs"},
        "content": note.content,
        "created_at": format_time(note.created_at),
        "updated_at": format_time(note.created_at),
    }
