"""PagerDuty's JSON as domain objects: REST incidents, notes, on-calls, policies, schedules,
users, and Webhooks v3 incident events.

Pure functions, shared by the REST client (`pagerduty.py`) and the webhook intake. Each takes
either a reference (`{"id", "type", "summary"}`) or the full object that `include[]` returns
where PagerDuty allows both, and raises KeyError/TypeError/ValueError on a shape it cannot use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from oncall_tui.models import Incident, IncidentNote, OnCall, Shift

SOURCE = "pagerduty"


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: str
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class EscalationRuleInfo:
    delay_minutes: int
    targets: tuple[str, ...]  # names of the users and schedules paged at this level


@dataclass(frozen=True, slots=True)
class EscalationPolicyInfo:
    id: str
    name: str
    num_loops: int
    rules: tuple[EscalationRuleInfo, ...]


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    id: str
    name: str
    time_zone: str


def parse_time(text: Any) -> datetime:
    """An ISO 8601 time from PagerDuty (with `Z` or an offset) as aware UTC."""
    if not isinstance(text, str):
        raise TypeError(f"expected a time string, got {type(text).__name__}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return moment.astimezone(UTC)


def parse_optional_time(text: Any) -> datetime | None:
    return None if text is None or text == "" else parse_time(text)


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("PagerDuty times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _name(ref: Any) -> str:
    """The display name of a reference or a full object (`name`, else `summary`)."""
    if not isinstance(ref, Mapping):
        return ""
    return str(ref.get("name") or ref.get("summary") or "")


def _id(ref: Any) -> str:
    return str(ref.get("id") or "") if isinstance(ref, Mapping) else ""


def _level_in_policy(policy: Any, user_ids: Iterable[str]) -> int | None:
    """The first level of a full policy that targets one of these users directly."""
    rules = policy.get("escalation_rules") if isinstance(policy, Mapping) else None
    if not isinstance(rules, list):
        return None
    wanted = set(user_ids)
    for level, rule in enumerate(rules, start=1):
        targets = rule.get("targets") or () if isinstance(rule, Mapping) else ()
        for target in targets:
            if not isinstance(target, Mapping):
                continue
            if _id(target) in wanted and str(target.get("type", "")).startswith("user"):
                return level
    return None


def parse_incident(item: Mapping[str, Any]) -> Incident:
    """One REST `Incident` (references or included full objects alike)."""
    assignees = [a["assignee"] for a in item.get("assignments") or ()]
    acks = sorted(item.get("acknowledgements") or (), key=lambda a: str(a.get("at", "")))
    policy = item.get("escalation_policy")
    assignee_ids = tuple(_id(a) for a in assignees)
    number = item.get("incident_number")
    return Incident(
        id=str(item["id"]),
        system=SOURCE,
        title=str(item.get("title") or item.get("summary") or ""),
        status=str(item["status"]),
        urgency=str(item.get("urgency") or ""),
        service=_name(item.get("service")),
        assignee=", ".join(_name(a) for a in assignees),
        escalation_level=_level_in_policy(policy, assignee_ids),
        created_at=parse_time(item["created_at"]),
        url=str(item.get("html_url") or ""),
        dedup_key=str(item.get("incident_key") or ""),
        number=int(number) if isinstance(number, int) else None,
        service_id=_id(item.get("service")),
        escalation_policy=_name(policy),
        escalation_policy_id=_id(policy),
        assignee_ids=assignee_ids,
        acknowledged_by=tuple(_name(a.get("acknowledger")) for a in acks),
        last_change_at=parse_optional_time(item.get("last_status_change_at")),
        priority=_name(item.get("priority")),
    )


def parse_note(item: Mapping[str, Any]) -> IncidentNote:
    return IncidentNote(
        id=str(item.get("id") or ""),
        content=str(item["content"]),
        user=_name(item.get("user")),
        created_at=parse_time(item["created_at"]),
    )


def parse_oncall(item: Mapping[str, Any]) -> OnCall:
    user = item["user"]
    policy = item["escalation_policy"]
    return OnCall(
        policy=_name(policy),
        level=int(item["escalation_level"]),
        user=_name(user),
        start=parse_optional_time(item.get("start")),
        end=parse_optional_time(item.get("end")),
        system=SOURCE,
        policy_id=_id(policy),
        user_id=_id(user),
        user_email=str(user.get("email") or ""),
        schedule=_name(item.get("schedule")),
    )


def parse_policy(item: Mapping[str, Any]) -> EscalationPolicyInfo:
    rules = tuple(
        EscalationRuleInfo(
            delay_minutes=int(rule.get("escalation_delay_in_minutes") or 0),
            targets=tuple(_name(target) for target in rule.get("targets") or ()),
        )
        for rule in item.get("escalation_rules") or ()
    )
    return EscalationPolicyInfo(
        id=str(item["id"]),
        name=_name(item),
        num_loops=int(item.get("num_loops") or 0),
        rules=rules,
    )


def parse_schedule(item: Mapping[str, Any]) -> ScheduleInfo:
    return ScheduleInfo(id=str(item["id"]), name=_name(item), time_zone=str(item["time_zone"]))


def parse_shifts(item: Mapping[str, Any]) -> list[Shift]:
    """The rendered entries of a schedule's `final_schedule` (overrides applied)."""
    final = item.get("final_schedule") or {}
    return [
        Shift(
            schedule=_name(item),
            user=_name(entry.get("user")),
            start=parse_time(entry["start"]),
            end=parse_time(entry["end"]),
            system=SOURCE,
            schedule_id=str(item["id"]),
        )
        for entry in final.get("rendered_schedule_entries") or ()
    ]


def parse_user(item: Mapping[str, Any]) -> UserInfo:
    return UserInfo(id=str(item["id"]), name=_name(item), email=str(item.get("email") or ""))


def with_escalation_levels(
    incidents: Sequence[Incident], oncalls: Sequence[OnCall]
) -> list[Incident]:
    """Fill unknown escalation levels from who is on call where.

    An incident's level is the lowest level of its policy at which one of its assignees is on
    call: right for the usual case of schedules as targets, which the incident itself cannot
    tell. Levels already known are kept.
    """
    levels: dict[tuple[str, str], int] = {}
    for oncall in oncalls:
        key = (oncall.policy_id, oncall.user_id)
        if key not in levels or oncall.level < levels[key]:
            levels[key] = oncall.level
    out: list[Incident] = []
    for incident in incidents:
        found = [
            levels[(incident.escalation_policy_id, user_id)]
            for user_id in incident.assignee_ids
            if (incident.escalation_policy_id, user_id) in levels
        ]
        if incident.escalation_level is None and found:
            incident = replace(incident, escalation_level=min(found))
        out.append(incident)
    return out


def incident_from_webhook(event: Mapping[str, Any]) -> Incident | None:
    """The incident a Webhooks v3 delivery describes, or None when it describes something else.

    Takes the envelope `{"event": {...}}` (or the event itself). `data` of an incident event
    uses `number` and `assignees[]`, unlike the REST shape; for incident.acknowledged the
    agent is who acknowledged. Raises ValueError when an incident event lacks what it must have.
    """
    inner = event.get("event", event)
    if not isinstance(inner, Mapping):
        return None
    data = inner.get("data")
    if not isinstance(data, Mapping) or data.get("type") != "incident":
        return None
    try:
        assignees = list(data.get("assignees") or ())
        number = data.get("number")
        acknowledged_by: tuple[str, ...] = ()
        if inner.get("event_type") == "incident.acknowledged" and _name(inner.get("agent")):
            acknowledged_by = (_name(inner.get("agent")),)
        return Incident(
            id=str(data["id"]),
            system=SOURCE,
            title=str(data.get("title") or ""),
            status=str(data["status"]),
            urgency=str(data.get("urgency") or ""),
            service=_name(data.get("service")),
            assignee=", ".join(_name(a) for a in assignees),
            escalation_level=None,
            created_at=parse_time(data["created_at"]),
            url=str(data.get("html_url") or ""),
            dedup_key=str(data.get("incident_key") or ""),
            number=int(number) if isinstance(number, int) else None,
            service_id=_id(data.get("service")),
            escalation_policy=_name(data.get("escalation_policy")),
            escalation_policy_id=_id(data.get("escalation_policy")),
            assignee_ids=tuple(_id(a) for a in assignees),
            acknowledged_by=acknowledged_by,
            last_change_at=parse_optional_time(inner.get("occurred_at")),
            priority=_name(data.get("priority")),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"incident webhook without {exc}") from None
