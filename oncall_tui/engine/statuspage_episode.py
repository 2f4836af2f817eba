"""What Statuspage automation remembers per component, and the words it publishes.

`Episode` is one component's stretch of trouble, from the first matching alert to the resolve;
it is kept as JSON in the log's state table (engine/statuspage_automation.py), so it survives
restarts.

Messages come from `statuspage.templates` when present, else from `DEFAULT_TEMPLATES`. Names:
`title` (the incident's name), `investigating`, `identified`, `monitoring`, `resolved`.
Placeholders: `{component}` the component's name on the page (else the label value), `{label}`
the label value, `{count}` the number of matching alerts, `{started}` when the first of them
started (`14:05 UTC`). Alert names and summaries are deliberately not offered: internal text
never reaches customers. An unknown `{name}` is left as written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

from oncall_tui.config import AutomationConfig, StatuspageConfig
from oncall_tui.engine.actions import ActionRequest
from oncall_tui.engine.statuspage import INCIDENT_CREATE, INCIDENT_UPDATE, time_text
from oncall_tui.models import Alert, StatusIncident
from oncall_tui.providers.statuspage import StatusIncidentDetail
from oncall_tui.store import format_time, parse_time

DEFAULT_TEMPLATES: Mapping[str, str] = {
    "title": "Service disruption: {component}",
    "investigating": (
        "We are investigating a problem affecting {component}. "
        "We will post an update as soon as we know more."
    ),
    "identified": (
        "We have identified the cause of the problem affecting {component} "
        "and are working on a fix."
    ),
    "monitoring": "A fix is in place for {component} and we are monitoring the results.",
    "resolved": "The problem affecting {component} has been resolved.",
}

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

OPENING = "opening"  # create requested, incident id not known yet
OPEN = "open"
RESOLVING = "resolving"  # resolve requested
HANDED_OVER = "handed_over"  # all resolved, but the operator decides
CLOSED_EARLY = "closed_early"  # resolved by someone else while alerts still fire
FAILED = "failed"  # the create was refused; waits for the alerts to clear


def render(template: str, values: Mapping[str, str]) -> str:
    """`template` with each known `{name}` replaced; anything else left as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def templates_of(config: StatuspageConfig) -> dict[str, str]:
    """The message templates in effect: the configured ones over the defaults."""
    return {**DEFAULT_TEMPLATES, **config.templates}


@dataclass(slots=True)
class Episode:
    """One component's stretch of trouble, from the first matching alert to the resolve."""

    component_id: str
    label: str
    phase: str
    key: str
    opened_at: datetime
    incident_id: str = ""
    owned: bool = True
    edited: str = ""  # why we think an operator edited it; "" = not edited
    name: str = ""
    posted: list[list[str]] = field(default_factory=list)  # [status, body] we sent
    alerts: list[str] = field(default_factory=list)  # alert keys that joined
    quiet_since: datetime | None = None
    resolve_key: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        data["opened_at"] = format_time(self.opened_at)
        data["quiet_since"] = format_time(self.quiet_since) if self.quiet_since else None
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Episode:
        data = json.loads(text)
        data["opened_at"] = parse_time(data["opened_at"])
        data["quiet_since"] = parse_time(data["quiet_since"]) if data["quiet_since"] else None
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Context:
    """What one evaluation sees: the time, the page, and whether every alert source answered."""

    now: datetime
    incidents: Mapping[str, StatusIncident]
    details: Mapping[str, StatusIncidentDetail]
    names: Mapping[str, str]  # component id -> its name on the page
    complete: bool


def matching_component(config: StatuspageConfig, alert: Alert) -> tuple[bool, str | None]:
    """(whether the alert matches `automation.match`, the component id its label names)."""
    rules = config.automation
    if any(alert.labels.get(k) != v for k, v in rules.match.items()):
        return False, None
    return True, config.components.get(alert.labels.get(rules.component_label, ""))


def message_values(
    label: str, members: Sequence[Alert], now: datetime, name: str | None
) -> dict[str, str]:
    """The placeholders' values for one component (see the module docstring)."""
    started = min((a.starts_at for a in members), default=now)
    return {
        "component": name or label,
        "label": label,
        "count": str(len(members)),
        "started": time_text(started),
    }


def create_request(rules: AutomationConfig, episode: Episode, body: str) -> ActionRequest:
    """Open the episode's incident, its component at `component_status`, keyed for retries."""
    return ActionRequest(
        INCIDENT_CREATE,
        "",
        {
            "name": episode.name,
            "status": "investigating",
            "body": body,
            "impact": rules.impact,
            "components": {episode.component_id: rules.component_status},
            "automation_key": episode.key,
        },
    )


def resolve_request(episode: Episode, body: str) -> ActionRequest:
    """Resolve the episode's incident and set its component back to operational."""
    return ActionRequest(
        INCIDENT_UPDATE,
        episode.incident_id,
        {
            "status": "resolved",
            "body": body,
            "components": {episode.component_id: "operational"},
            "automation_key": episode.resolve_key,
        },
    )
