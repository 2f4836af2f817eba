"""Plain, typed domain objects shared by providers, engine, log and UI.

Providers turn vendor JSON into these; nothing above the providers sees raw API payloads.
All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Labels = Mapping[str, str]

SEVERITY_ORDER: dict[str, int] = {
    "critical": 0,
    "error": 1,
    "high": 1,
    "warning": 2,
    "info": 3,
    "low": 3,
    "none": 4,
}


def severity_rank(severity: str) -> int:
    """Lower is more severe; unknown severities sort after the known ones."""
    return SEVERITY_ORDER.get(severity.lower(), 5)


def meets_severity(severity: str, minimum: str) -> bool:
    return severity_rank(severity) <= severity_rank(minimum)


class AlertState(enum.StrEnum):
    ACTIVE = "active"
    SILENCED = "silenced"
    INHIBITED = "inhibited"
    UNPROCESSED = "unprocessed"


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as Alertmanager reports it, deduplicated across the peers of one cluster."""

    fingerprint: str
    labels: Labels
    annotations: Labels
    starts_at: datetime
    updated_at: datetime
    ends_at: datetime | None
    state: AlertState
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()
    receivers: tuple[str, ...] = ()
    generator_url: str = ""
    cluster: str = ""
    seen_by: tuple[str, ...] = ()
    # Identity across refreshes: the fingerprint within its cluster. Stored, not a property:
    # the dashboard looks it up for every alert of every snapshot. Always derived in
    # __post_init__; an argument (which the snapshot decoder passes) is overwritten.
    key: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.cluster}/{self.fingerprint}")

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "none")

    @property
    def summary(self) -> str:
        return (
            self.annotations.get("summary")
            or self.annotations.get("description")
            or self.annotations.get("message")
            or ""
        )

    @property
    def runbook_url(self) -> str:
        for name in ("runbook_url", "runbook", "runbook_link"):
            if value := self.annotations.get(name):
                return value
        return ""


@dataclass(frozen=True, slots=True)
class AlertGroup:
    """One aggregation group as Alertmanager routes it: group labels, receiver and alerts."""

    labels: Labels
    receiver: str
    alerts: tuple[Alert, ...]
    cluster: str = ""


@dataclass(frozen=True, slots=True)
class Matcher:
    """An Alertmanager label matcher: `=`, `!=`, `=~` or `!~`."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    @property
    def operator(self) -> str:
        if self.is_regex:
            return "=~" if self.is_equal else "!~"
        return "=" if self.is_equal else "!="

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.operator}"{escaped}"'


class SilenceState(enum.StrEnum):
    ACTIVE = "active"
    PENDING = "pending"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    state: SilenceState
    updated_at: datetime | None = None
    cluster: str = ""

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.id}"


@dataclass(frozen=True, slots=True)
class ClusterPeer:
    name: str
    address: str


@dataclass(frozen=True, slots=True)
class AlertmanagerStatus:
    version: str
    cluster_status: str
    peers: tuple[ClusterPeer, ...]
    uptime: datetime | None
    config_yaml: str = ""


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """Whether one configured source answers, for the header and for staleness."""

    name: str
    kind: str
    reachable: bool | None = None  # None: not tried yet
    last_success: datetime | None = None
    stale_since: datetime | None = None
    error: str = ""
    detail: str = ""


# Kinds of the later-issue objects; kept small until their issues give them behaviour.


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    system: str  # "pagerduty" | "opsgenie"
    title: str
    status: str
    urgency: str
    service: str
    assignee: str
    escalation_level: int | None
    created_at: datetime
    url: str = ""
    dedup_key: str = ""  # PagerDuty incident_key / Opsgenie alias: links to an Alertmanager group
    number: int | None = None  # PagerDuty incident_number / Opsgenie tinyId
    service_id: str = ""
    escalation_policy: str = ""
    escalation_policy_id: str = ""
    assignee_ids: tuple[str, ...] = ()
    acknowledged_by: tuple[str, ...] = ()  # names, latest last
    last_change_at: datetime | None = None
    priority: str = ""  # Opsgenie P1-P5, PagerDuty priority name when set

    @property
    def key(self) -> str:
        return f"{self.system}/{self.id}"

    @property
    def is_open(self) -> bool:
        return self.status != "resolved" and self.status != "closed"


@dataclass(frozen=True, slots=True)
class IncidentNote:
    id: str
    content: str
    user: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OnCall:
    """Who is on call at one level of an escalation policy (or an Opsgenie schedule)."""

    policy: str
    level: int
    user: str
    start: datetime | None  # None: permanently on call
    end: datetime | None
    system: str = "pagerduty"
    policy_id: str = ""
    user_id: str = ""
    user_email: str = ""
    schedule: str = ""  # the schedule that puts the user there, if any


@dataclass(frozen=True, slots=True)
class Shift:
    """One entry of a schedule's rendered look-ahead: who is on call from when to when."""

    schedule: str
    user: str
    start: datetime
    end: datetime
    system: str = "pagerduty"
    schedule_id: str = ""


@dataclass(frozen=True, slots=True)
class Component:
    id: str
    name: str
    status: str


@dataclass(frozen=True, slots=True)
class StatusIncident:
    id: str
    name: str
    status: str
    impact: str
    updated_at: datetime
    latest_update: str = ""
    component_ids: tuple[str, ...] = ()


class ActionStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Action:
    """An operator (or automation) request to change something, written to the outbox first."""

    id: str
    kind: str
    target: str
    params: Mapping[str, Any]
    actor: str
    created_at: datetime
    status: ActionStatus = ActionStatus.PENDING
    attempts: int = 0
    result: str = ""
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int | None
    at: datetime
    source: str
    kind: str
    summary: str
    actor: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the dashboard shows, replaced as a whole on every change."""

    taken_at: datetime
    alerts: tuple[Alert, ...] = ()
    silences: tuple[Silence, ...] = ()
    health: tuple[SourceHealth, ...] = ()
    incidents: tuple[Incident, ...] = ()
    oncalls: tuple[OnCall, ...] = ()
    shifts: tuple[Shift, ...] = ()  # the next days of every shown schedule
    components: tuple[Component, ...] = ()
    status_incidents: tuple[StatusIncident, ...] = ()
    restored: bool = False  # True while showing the last known snapshot from the log

    def health_of(self, name: str) -> SourceHealth | None:
        for item in self.health:
            if item.name == name:
                return item
        return None
