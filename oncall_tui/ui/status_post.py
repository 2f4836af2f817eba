"""What a post to the public status page says, as words: the one source of preview and request.

No Textual here. The Statuspage forms build a `StatusPost` from what the operator chose; its
`request()` is what the engine sends and `preview_lines()` is what the operator is shown, so the
two cannot drift. The words are the public page's own ("Identified", "Major outage").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from oncall_tui.engine import ActionRequest
from oncall_tui.models import Component

INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = (
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
)
IMPACTS = ("none", "minor", "major", "critical")
NOT_AFFECTED = "-"
MAX_NAME = 255  # the vendor's limits (API-NOTES §3); longer is refused with 422
MAX_BODY = 25000

# The words the public page uses, so the preview reads as customers will read it.
STATUS_WORD = {
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
}
COMPONENT_WORD = {
    "operational": "Operational",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
    "under_maintenance": "Under maintenance",
    "": "Unknown",
}
COMPONENT_STYLE = {
    "operational": "green",
    "degraded_performance": "yellow",
    "partial_outage": "bold dark_orange",
    "major_outage": "bold red",
    "under_maintenance": "blue",
}
STATUS_STYLE = {
    "investigating": "bold red",
    "identified": "bold dark_orange",
    "monitoring": "yellow",
    "resolved": "green",
}
IMPACT_STYLE = {"none": "", "minor": "yellow", "major": "dark_orange", "critical": "bold red"}
# How Statuspage derives an incident's impact from the component statuses it sets.
_IMPACT_OF = {
    "operational": "none",
    "under_maintenance": "none",
    "degraded_performance": "minor",
    "partial_outage": "major",
    "major_outage": "critical",
}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def component_word(status: str) -> str:
    return COMPONENT_WORD.get(status, status)


def status_word(status: str) -> str:
    return STATUS_WORD.get(status, status)


def component_text(status: str) -> Text:
    """A component status as the public page's word and a colour, never colour alone."""
    return Text(component_word(status), style=COMPONENT_STYLE.get(status, ""))


def derived_impact(statuses: Sequence[str]) -> str:
    """The impact Statuspage derives from the component statuses an incident sets."""
    impacts = [_IMPACT_OF.get(status, "none") for status in statuses]
    return max(impacts, key=IMPACTS.index, default="none")


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill the known `{name}`s; unknown placeholders stay, for `unfilled` to catch."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def unfilled(text: str) -> list[str]:
    """Placeholders still in a message: customers would read them literally."""
    return list(dict.fromkeys(m.group(0) for m in _PLACEHOLDER.finditer(text)))


def join_names(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


@dataclass(frozen=True, slots=True)
class StatusPost:
    """One post to the public page: the preview and the request both come from this."""

    incident_id: str | None  # None: a new incident
    name: str
    status: str
    body: str
    components: tuple[tuple[str, str], ...]  # (component id, status to set), in page order
    impact: str | None = None  # new incidents only
    # Components the incident already affects that the form cannot show (not in the page's
    # list, e.g. deleted since): they stay on the incident, so customers still see them.
    kept: tuple[str, ...] = ()

    def request(self) -> ActionRequest:
        params: dict[str, Any] = {
            "status": self.status,
            "body": self.body,
            "components": dict(self.components),
        }
        if self.incident_id is None:
            params["name"] = self.name
            params["impact"] = self.impact or derived_impact([s for _, s in self.components])
            return ActionRequest("statuspage.incident.create", target="", params=params)
        return ActionRequest("statuspage.incident.update", target=self.incident_id, params=params)


def preview_lines(post: StatusPost, components: Mapping[str, Component]) -> list[str]:
    """What customers will read, line by line: name, status word and message, components."""
    lines = [post.name, f"{status_word(post.status)} - {post.body}", ""]
    if post.components or post.kept:
        lines.append("Affected components:")
        names = [_name(cid, components) for cid, _ in post.components] + list(post.kept)
        width = max(len(name) for name in names)
        for cid, status in post.components:
            old = components[cid].status if cid in components else ""
            change = (
                f"{component_word(status)} (unchanged)"
                if old == status
                else f"{component_word(status)} (now {component_word(old)})"
            )
            lines.append(f"  {_name(cid, components):<{width}}  {change}")
        lines.extend(f"  {cid:<{width}}  status unchanged" for cid in post.kept)
    else:
        lines.append("Affected components: none")
    if post.incident_id is None:
        impact = post.impact or derived_impact([s for _, s in post.components])
        lines.append(f"Impact: {impact}")
    return lines


def _name(component_id: str, components: Mapping[str, Component]) -> str:
    component = components.get(component_id)
    return component.name if component is not None else component_id


def preview_text(post: StatusPost, components: Mapping[str, Component]) -> Text:
    """The preview lines with the public page's colours; the words are the same."""
    lines = preview_lines(post, components)
    text = Text()
    text.append(lines[0] + "\n", style="bold")
    word = status_word(post.status)
    text.append(word, style=STATUS_STYLE.get(post.status, "bold"))
    text.append(lines[1][len(word) :] + "\n")
    for line in lines[2:]:
        text.append(line + "\n")
    text.rstrip()
    return text
