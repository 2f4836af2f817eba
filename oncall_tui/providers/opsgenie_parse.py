"""Opsgenie JSON to domain objects: alerts, request statuses, schedules, on-calls, timelines.

Used by `opsgenie.py` (the client); kept apart so each module has one job. The field mapping is
described in the client's docstring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from oncall_tui.models import Incident, IncidentNote, OnCall, Shift

SOURCE = "opsgenie"


@dataclass(frozen=True, slots=True)
class RequestStatus:
    """How Opsgenie processed one asynchronous request (`GET /v2/alerts/requests/{id}`)."""

    request_id: str
    success: bool
    action: str
    status: str  # Opsgenie's words, e.g. "Alert does not exist" when success is False
    alert_id: str = ""
    alias: str = ""
    processed_at: datetime | None = None
    integration_id: str = ""


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    id: str
    name: str
    enabled: bool = True
    timezone: str = ""
    description: str = ""
    team: str = ""


@dataclass(frozen=True, slots=True)
class EscalationRuleInfo:
    delay_minutes: int
    condition: str  # "if-not-acked" | "if-not-closed"
    recipient_type: str  # "schedule" | "user" | "team" | ...
    recipient: str  # its name (or id when the answer gave no name)


@dataclass(frozen=True, slots=True)
class EscalationInfo:
    """An Opsgenie escalation: where `OpsgenieClient.escalate` can send an alert."""

    id: str
    name: str
    description: str = ""
    team: str = ""
    rules: tuple[EscalationRuleInfo, ...] = ()


def parse_time(value: Any) -> datetime | None:
    """Opsgenie's ISO-8601 timestamps ("2017-03-21T20:32:52.353Z") as aware UTC."""
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """As Opsgenie writes them: UTC with milliseconds and Z."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def date_param(value: datetime) -> str:
    # Opsgenie's `date` is yyyy-MM-dd'T'HH:mm:ssZ; in UTC with "Z" there is no "+" to escape.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def parse_alert(data: Mapping[str, Any]) -> Incident:
    """One Opsgenie alert (list item or full alert) as an Incident."""
    alert_id = data["id"]
    if not isinstance(alert_id, str) or not alert_id:
        raise ValueError("alert without id")
    created = parse_time(data.get("createdAt"))
    if created is None:
        raise ValueError(f"alert {alert_id} without createdAt")
    if data.get("status") == "closed":
        status = "closed"
    elif data.get("acknowledged") is True:
        status = "acknowledged"
    else:
        status = "open"
    tiny = _text(data, "tinyId")
    report = data.get("report")
    acked_by = _text(report, "acknowledgedBy") if isinstance(report, Mapping) else ""
    return Incident(
        id=alert_id,
        system=SOURCE,
        title=_text(data, "message"),
        status=status,
        urgency="",
        # Alerts carry no service; `entity` (full alert only) is where senders name the thing.
        service=_text(data, "entity"),
        assignee=_text(data, "owner"),
        escalation_level=None,
        created_at=created,
        # The escalation the alert was routed or escalated to, if any (list and full alert).
        escalation_policy_id=_escalation_of(data.get("responders")),
        dedup_key=_text(data, "alias"),
        number=int(tiny) if tiny.isdigit() else None,
        acknowledged_by=(acked_by,) if acked_by else (),
        last_change_at=parse_time(data.get("updatedAt")),
        priority=_text(data, "priority"),
    )


def _escalation_of(responders: Any) -> str:
    for responder in responders if isinstance(responders, list) else ():
        if isinstance(responder, Mapping) and responder.get("type") == "escalation":
            return _text(responder, "id")
    return ""


_MINUTES = {"days": 1440.0, "hours": 60.0, "minutes": 1.0, "seconds": 1 / 60}


def parse_escalation(data: Mapping[str, Any]) -> EscalationInfo:
    rules: list[EscalationRuleInfo] = []
    for rule in data.get("rules") or ():
        delay = rule.get("delay") if isinstance(rule.get("delay"), Mapping) else {}
        amount = delay.get("timeAmount", 0)
        unit = delay.get("timeUnit") or "minutes"
        recipient = rule.get("recipient") if isinstance(rule.get("recipient"), Mapping) else {}
        rules.append(
            EscalationRuleInfo(
                delay_minutes=int(float(amount) * _MINUTES.get(unit, 0.0)),
                condition=_text(rule, "condition"),
                recipient_type=_text(recipient, "type"),
                recipient=_text(recipient, "name")
                or _text(recipient, "username")
                or _text(recipient, "id"),
            )
        )
    team = data.get("ownerTeam")
    return EscalationInfo(
        id=data["id"],
        name=_text(data, "name") or data["id"],
        description=_text(data, "description"),
        team=_text(team, "name") if isinstance(team, Mapping) else "",
        rules=tuple(rules),
    )


def parse_status(request_id: str, data: Mapping[str, Any]) -> RequestStatus:
    return RequestStatus(
        request_id=request_id,
        success=data.get("isSuccess") is True,
        action=_text(data, "action"),
        status=_text(data, "status"),
        alert_id=_text(data, "alertId"),
        alias=_text(data, "alias"),
        processed_at=parse_time(data.get("processedAt")),
        integration_id=_text(data, "integrationId"),
    )


def parse_schedule(data: Mapping[str, Any]) -> ScheduleInfo:
    team = data.get("ownerTeam")
    return ScheduleInfo(
        id=data["id"],
        name=_text(data, "name") or data["id"],
        enabled=data.get("enabled") is not False,
        timezone=_text(data, "timezone"),
        description=_text(data, "description"),
        team=_text(team, "name") if isinstance(team, Mapping) else "",
    )


def _users(participants: Any) -> list[Mapping[str, Any]]:
    """User participants, looking inside escalations and teams that are on call."""
    found: list[Mapping[str, Any]] = []
    for item in participants if isinstance(participants, list) else ():
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "user":
            found.append(item)
        else:
            found.extend(_users(item.get("onCallParticipants")))
    return found


def parse_note(data: Mapping[str, Any]) -> IncidentNote:
    created = parse_time(data.get("createdAt"))
    if created is None:
        raise ValueError("note without createdAt")
    return IncidentNote(
        id=_text(data, "offset") or format_time(created),
        content=_text(data, "note"),
        user=_text(data, "owner"),
        created_at=created,
    )


def parse_oncalls(data: Mapping[str, Any], schedule: str, key: str) -> list[OnCall]:
    parent = data.get("_parent")
    parent = parent if isinstance(parent, Mapping) else {}
    name = _text(parent, "name") or schedule
    schedule_id = _text(parent, "id")
    result: list[OnCall] = []
    for user in _users(data.get(key)):
        username = _text(user, "name")
        result.append(
            OnCall(
                policy=name,
                level=1,
                user=username,
                start=None,
                end=None,
                system=SOURCE,
                policy_id=schedule_id,
                user_id=_text(user, "id"),
                # Opsgenie usernames are the users' email addresses.
                user_email=username if "@" in username else "",
                schedule=name,
            )
        )
    return result


def parse_shifts(data: Mapping[str, Any], schedule: str) -> list[Shift]:
    parent = data.get("_parent")
    parent = parent if isinstance(parent, Mapping) else {}
    name = _text(parent, "name") or schedule
    timeline = data.get("finalTimeline")
    rotations = timeline.get("rotations") if isinstance(timeline, Mapping) else None
    shifts: list[Shift] = []
    for rotation in rotations if isinstance(rotations, list) else ():
        for period in rotation.get("periods") or ():
            recipient = period.get("recipient")
            start = parse_time(period.get("startDate"))
            end = parse_time(period.get("endDate"))
            if not isinstance(recipient, Mapping) or start is None or end is None:
                continue
            shifts.append(
                Shift(
                    schedule=name,
                    user=_text(recipient, "name"),
                    start=start,
                    end=end,
                    system=SOURCE,
                    schedule_id=_text(parent, "id"),
                )
            )
    shifts.sort(key=lambda shift: (shift.start, shift.user))
    return shifts


def current_shift_end(now: datetime, shifts: Sequence[Shift], user: str) -> datetime | None:
    """When `user`'s shift that covers `now` ends, from `OpsgenieClient.shifts` (None: not found).

    Opsgenie's on-call answer has no end time; this is how an OnCall gets one."""
    for shift in shifts:
        if shift.user == user and shift.start <= now < shift.end:
            return shift.end
    return None
