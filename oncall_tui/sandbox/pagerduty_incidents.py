"""The fake PagerDuty's incidents: Events API v2 semantics, escalation, and webhook events.

`IncidentBook` is the state, without HTTP: the Starlette app in `fake_pagerduty.py` translates
requests into calls here, and every change appends a webhook v3 event to `outbox` for the sender.

What it reproduces (API-NOTES.md section 2):
- a trigger opens an incident on the routing key's service, or joins the open incident whose
  `incident_key` equals its `dedup_key` (an alert of a group already paged: no new page);
  acknowledge/resolve by dedup_key act on that incident; an unknown key is dropped;
  a trigger after the incident resolved opens a new one;
- an unacknowledged incident escalates to the next level of its policy after the current rule's
  `escalation_delay_in_minutes`, and after the last level starts over from the first, `num_loops`
  times; acknowledging, resolving or assigning to a user directly stops that;
- delays run on a compressed clock: a delay of m minutes takes m * 60 / time_scale seconds.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from oncall_tui.sandbox.pagerduty_directory import API_BASE, WEB_BASE, Directory
from oncall_tui.sandbox.pagerduty_render import webhook_data


class IncidentError(Exception):
    """A request PagerDuty refuses: HTTP status, PagerDuty error code, message, details."""

    def __init__(self, status: int, code: int, message: str, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = list(errors)


@dataclass
class Alert:
    dedup_key: str
    summary: str
    severity: str
    created_at: datetime
    status: str = "triggered"
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Note:
    id: str
    user_id: str
    content: str
    created_at: datetime


@dataclass
class Page:
    """A notification sent to a user: what an on-call engineer's phone would get."""

    incident_id: str
    user_id: str
    level: int
    at: datetime


@dataclass
class Incident:
    id: str
    number: int
    title: str
    service_id: str
    policy_id: str
    incident_key: str
    created_at: datetime
    status: str = "triggered"
    urgency: str = "high"
    level: int = 1
    loops_done: int = 0
    assignments: list[tuple[datetime, str]] = field(default_factory=list)
    acknowledgements: list[tuple[datetime, str, str]] = field(default_factory=list)  # at,kind,id
    assigned_via: str = "escalation_policy"
    next_escalation_at: datetime | None = None
    snoozed_until: datetime | None = None
    updated_at: datetime | None = None
    last_status_change_at: datetime | None = None
    last_status_change_by: tuple[str, str] = ("service", "")
    resolved_at: datetime | None = None
    alerts: list[Alert] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    client: str | None = None

    @property
    def open(self) -> bool:
        return self.status != "resolved"


class IncidentBook:
    """All incidents of the fake account, driven by an explicit `now` on every call."""

    def __init__(self, directory: Directory, *, time_scale: float = 1.0, seed: int = 0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.directory = directory
        self.time_scale = time_scale
        self.incidents: list[Incident] = []
        self.pages: list[Page] = []
        self.outbox: list[dict[str, Any]] = []  # webhook v3 envelopes, oldest first
        self._random = random.Random(seed)

    # -- ids and lookups --------------------------------------------------------------------

    def new_id(self) -> str:
        alphabet = string.ascii_uppercase + string.digits
        return "Q" + "".join(self._random.choice(alphabet) for _ in range(13))

    def find(self, key: str) -> Incident:
        """By id or by incident number, as GET /incidents/{id} accepts both."""
        for incident in self.incidents:
            if incident.id == key or (key.isdigit() and incident.number == int(key)):
                return incident
        raise IncidentError(404, 2100, "Not Found")

    def open_by_key(self, service_id: str, dedup_key: str) -> Incident | None:
        for incident in self.incidents:
            if (
                incident.open
                and incident.service_id == service_id
                and incident.incident_key == dedup_key
            ):
                return incident
        return None

    def delay(self, minutes: int) -> timedelta:
        return timedelta(seconds=minutes * 60 / self.time_scale)

    # -- Events API v2 ----------------------------------------------------------------------

    def trigger(
        self,
        service_id: str,
        dedup_key: str,
        payload: Mapping[str, Any],
        now: datetime,
        *,
        client: str | None = None,
    ) -> Incident:
        incident = self.open_by_key(service_id, dedup_key)
        summary = str(payload["summary"])
        alert = Alert(
            dedup_key,
            summary,
            str(payload["severity"]),
            now,
            details=dict(payload.get("custom_details") or {}),
        )
        if incident is not None:
            # Same dedup_key: the alert is updated in the open incident, nobody is paged again.
            incident.alerts = [a for a in incident.alerts if a.dedup_key != dedup_key] + [alert]
            incident.updated_at = now
            return incident
        service = self.directory.services[service_id]
        incident = Incident(
            id=self.new_id(),
            number=len(self.incidents) + 1,
            title=summary,
            service_id=service_id,
            policy_id=service.policy_id,
            incident_key=dedup_key,
            created_at=now,
            updated_at=now,
            last_status_change_at=now,
            last_status_change_by=("service", service_id),
            alerts=[alert],
            client=client,
        )
        self.incidents.append(incident)
        self._assign_level(incident, 1, now)
        self._emit("incident.triggered", incident, now, agent=("service", service_id))
        return incident

    def acknowledge_by_key(self, service_id: str, dedup_key: str, now: datetime) -> bool:
        incident = self.open_by_key(service_id, dedup_key)
        if incident is None:
            return False  # dropped, as PagerDuty does
        if incident.status == "triggered":
            self._acknowledge(incident, ("service", service_id), now)
        return True

    def resolve_by_key(self, service_id: str, dedup_key: str, now: datetime) -> bool:
        incident = self.open_by_key(service_id, dedup_key)
        if incident is None:
            return False
        for alert in incident.alerts:
            alert.status = "resolved"
        self._resolve(incident, ("service", service_id), now)
        return True

    # -- REST writes ------------------------------------------------------------------------

    def update(
        self, incident: Incident, changes: Mapping[str, Any], user_id: str, now: datetime
    ) -> None:
        """PUT /incidents/{id}: status, escalation_level, assignments or escalation_policy."""
        agent = ("user", user_id)
        status = changes.get("status")
        if status is not None:
            self._set_status(incident, str(status), changes.get("resolution"), agent, now)
        if changes.get("escalation_level") is not None:
            self._escalate_to(incident, int(changes["escalation_level"]), agent, now)
        if changes.get("assignments") is not None:
            self._reassign(incident, changes["assignments"], agent, now)
        if changes.get("escalation_policy") is not None:
            self._delegate(incident, changes["escalation_policy"], agent, now)
        for key in ("title", "urgency"):
            if changes.get(key) is not None:
                setattr(incident, key, str(changes[key]))
                incident.updated_at = now

    def snooze(self, incident: Incident, seconds: int, user_id: str, now: datetime) -> None:
        if incident.status != "acknowledged":
            raise IncidentError(
                400, 2001, "Invalid Input Provided", ["Incident must be acknowledged to snooze."]
            )
        incident.snoozed_until = now + timedelta(seconds=seconds)
        incident.updated_at = now

    def add_note(self, incident: Incident, content: str, user_id: str, now: datetime) -> Note:
        if len(incident.notes) >= 2000:
            raise IncidentError(400, 2001, "Invalid Input Provided", ["Too many notes."])
        note = Note(self.new_id(), user_id, content, now)
        incident.notes.append(note)
        incident.updated_at = now
        self.outbox.append(
            self._envelope(
                "incident.annotated",
                now,
                ("user", user_id),
                {
                    "incident": {
                        "html_url": f"{WEB_BASE}/incidents/{incident.id}",
                        "id": incident.id,
                        "self": f"{API_BASE}/incidents/{incident.id}",
                        "summary": incident.title,
                        "type": "incident_reference",
                    },
                    "id": note.id,
                    "content": content,
                    "trimmed": False,
                    "type": "incident_note",
                },
            )
        )
        return note

    def _set_status(
        self,
        incident: Incident,
        status: str,
        resolution: Any,
        agent: tuple[str, str],
        now: datetime,
    ) -> None:
        if status == "acknowledged":
            if incident.status == "resolved":
                raise IncidentError(400, 1001, "Incident Already Resolved")
            if incident.status == "acknowledged":
                raise IncidentError(400, 1002, "Incident Already Acknowledged")
            self._acknowledge(incident, agent, now)
        elif status == "resolved":
            if incident.status == "resolved":
                raise IncidentError(400, 1001, "Incident Already Resolved")
            if resolution:
                self.add_note(incident, str(resolution), agent[1], now)
            self._resolve(incident, agent, now)
        elif status == "triggered":
            if incident.status == "triggered":
                return
            reopened = incident.status == "resolved"
            incident.status = "triggered"
            incident.resolved_at = None
            incident.acknowledgements.clear()
            incident.snoozed_until = None
            incident.loops_done = 0
            self._touch(incident, agent, now)
            self._assign_level(incident, incident.level, now)
            kind = "incident.reopened" if reopened else "incident.unacknowledged"
            self._emit(kind, incident, now, agent=agent)
        else:
            raise IncidentError(400, 1003, "Invalid Status")

    def _acknowledge(self, incident: Incident, agent: tuple[str, str], now: datetime) -> None:
        incident.status = "acknowledged"
        incident.acknowledgements.append((now, agent[0], agent[1]))
        incident.next_escalation_at = None
        self._touch(incident, agent, now)
        self._emit("incident.acknowledged", incident, now, agent=agent)

    def _resolve(self, incident: Incident, agent: tuple[str, str], now: datetime) -> None:
        incident.status = "resolved"
        incident.resolved_at = now
        incident.next_escalation_at = None
        incident.snoozed_until = None
        self._touch(incident, agent, now)
        self._emit("incident.resolved", incident, now, agent=agent)

    def _escalate_to(
        self, incident: Incident, level: int, agent: tuple[str, str], now: datetime
    ) -> None:
        rules = self.directory.policies[incident.policy_id].rules
        if incident.status == "resolved":
            raise IncidentError(400, 1001, "Incident Already Resolved")
        if not 1 <= level <= len(rules):
            raise IncidentError(
                400, 1006, "Cannot Escalate", [f"Escalation level must be 1 to {len(rules)}."]
            )
        # A manual escalation pages the level's targets and puts the incident back to triggered.
        incident.status = "triggered"
        incident.acknowledgements.clear()
        incident.snoozed_until = None
        incident.assigned_via = "escalation_policy"
        self._touch(incident, agent, now)
        self._assign_level(incident, level, now)
        self._emit("incident.escalated", incident, now, agent=agent)

    def _reassign(
        self, incident: Incident, assignments: Any, agent: tuple[str, str], now: datetime
    ) -> None:
        user_ids: list[str] = []
        for item in assignments:
            assignee = item.get("assignee") if isinstance(item, Mapping) else None
            user_id = assignee.get("id") if isinstance(assignee, Mapping) else None
            if user_id not in self.directory.users:
                raise IncidentError(400, 1007, "Assigned To User Not Found")
            user_ids.append(str(user_id))
        if not user_ids:
            raise IncidentError(400, 1011, "Cannot process reassign")
        if incident.status == "resolved":
            raise IncidentError(400, 1001, "Incident Already Resolved")
        # Reassigning puts the incident back to triggered and stops the policy's escalation.
        incident.status = "triggered"
        incident.acknowledgements.clear()
        incident.assigned_via = "direct_assignment"
        incident.next_escalation_at = None
        incident.assignments = [(now, user_id) for user_id in user_ids]
        self._page(incident, user_ids, now)
        self._touch(incident, agent, now)
        self._emit("incident.reassigned", incident, now, agent=agent)

    def _delegate(
        self, incident: Incident, policy: Any, agent: tuple[str, str], now: datetime
    ) -> None:
        policy_id = policy.get("id") if isinstance(policy, Mapping) else None
        if policy_id not in self.directory.policies:
            raise IncidentError(400, 1014, "Escalation Policy Not Found")
        if incident.status == "resolved":
            raise IncidentError(400, 1001, "Incident Already Resolved")
        incident.policy_id = str(policy_id)
        incident.status = "triggered"
        incident.acknowledgements.clear()
        incident.assigned_via = "escalation_policy"
        incident.loops_done = 0
        self._touch(incident, agent, now)
        self._assign_level(incident, 1, now)
        self._emit("incident.delegated", incident, now, agent=agent)

    # -- time -------------------------------------------------------------------------------

    def advance(self, now: datetime) -> None:
        """Run whatever is due by `now`: escalations (several if time jumped) and snooze ends."""
        for incident in self.incidents:
            if incident.snoozed_until is not None and incident.snoozed_until <= now:
                at = incident.snoozed_until
                incident.snoozed_until = None
                incident.status = "triggered"
                incident.acknowledgements.clear()
                self._touch(incident, ("service", incident.service_id), at)
                self._assign_level(incident, incident.level, at)
                self._emit("incident.unacknowledged", incident, at, agent=None)
            while (
                incident.status == "triggered"
                and incident.next_escalation_at is not None
                and incident.next_escalation_at <= now
            ):
                self._escalate_on_timer(incident)

    def _escalate_on_timer(self, incident: Incident) -> None:
        at = incident.next_escalation_at
        assert at is not None
        policy = self.directory.policies[incident.policy_id]
        if incident.level < len(policy.rules):
            level = incident.level + 1
        elif incident.loops_done < policy.num_loops:
            incident.loops_done += 1
            level = 1
        else:  # loops exhausted (only reached when the policy changed meanwhile)
            incident.next_escalation_at = None
            return
        incident.updated_at = at
        self._assign_level(incident, level, at)
        self._emit("incident.escalated", incident, at, agent=None)

    def _assign_level(self, incident: Incident, level: int, now: datetime) -> None:
        policy = self.directory.policies[incident.policy_id]
        incident.level = level
        users = self.directory.targets_at(policy, level, now)
        incident.assignments = [(now, user_id) for user_id in users]
        last = level == len(policy.rules) and incident.loops_done >= policy.num_loops
        # At the last level of the last loop nothing is pending: it stays there.
        incident.next_escalation_at = (
            None if last else now + self.delay(policy.rules[level - 1].delay_minutes)
        )
        self._page(incident, users, now)

    def _page(self, incident: Incident, user_ids: Sequence[str], now: datetime) -> None:
        self.pages.extend(Page(incident.id, user_id, incident.level, now) for user_id in user_ids)

    def _touch(self, incident: Incident, agent: tuple[str, str], now: datetime) -> None:
        incident.updated_at = now
        incident.last_status_change_at = now
        incident.last_status_change_by = agent

    # -- JSON -------------------------------------------------------------------------------

    def _agent_ref(self, agent: tuple[str, str]) -> dict[str, Any]:
        return self.directory.reference(agent[0], agent[1])

    def _emit(
        self,
        event_type: str,
        incident: Incident,
        now: datetime,
        *,
        agent: tuple[str, str] | None,
    ) -> None:
        self.outbox.append(
            self._envelope(event_type, now, agent, webhook_data(self.directory, incident))
        )

    def _envelope(
        self,
        event_type: str,
        now: datetime,
        agent: tuple[str, str] | None,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "event": {
                "id": "01"
                + "".join(
                    self._random.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(24)
                ),
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "agent": None if agent is None else self._agent_ref(agent),
                "client": None,
                "data": data,
            }
        }
