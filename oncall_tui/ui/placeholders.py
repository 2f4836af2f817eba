"""Calm stand-ins for the views later issues fill, and the "not configured" text of every view.

A view whose source is not configured says "not configured" and which section of the config
would change that, so an operator never wonders whether an empty screen means "all quiet".
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from oncall_tui.config import Config


@dataclass(frozen=True, slots=True)
class PlaceholderSpec:
    title: str
    sources: tuple[str, ...]  # config sections that feed the view
    coming: str


PLACEHOLDERS: dict[str, PlaceholderSpec] = {
    "incidents": PlaceholderSpec(
        "Incidents",
        ("pagerduty", "opsgenie"),
        "PagerDuty and Opsgenie incidents side by side: status, urgency or priority, title, "
        "service, assignee, escalation level and age, with acknowledge, resolve, escalate, "
        "note and reassign.",
    ),
    "oncall": PlaceholderSpec(
        "On-call",
        ("pagerduty", "opsgenie"),
        "Who is on call now at each escalation level, until when, and who is next; "
        "a 7-day look-ahead of every schedule.",
    ),
    "statuspage": PlaceholderSpec(
        "Status page",
        ("statuspage",),
        "Every component with its status, open incidents with their latest update, and "
        "posting updates after showing exactly what customers will read.",
    ),
    "silences": PlaceholderSpec(
        "Silences",
        (),
        "Every silence with what it matches, expiring soon flagged, expire and extend.",
    ),
    "log": PlaceholderSpec(
        "Log",
        (),
        "The night's log, searchable in the dashboard. It is already being written: "
        "`oncall-tui log --since 2h` reads it now.",
    ),
}


_SYSTEM_NAMES = {"pagerduty": "PagerDuty", "opsgenie": "Opsgenie", "statuspage": "Statuspage"}


def placeholder_text(view: str, config: Config) -> Text:
    spec = PLACEHOLDERS[view]
    configured = [name for name in spec.sources if getattr(config, name, None) is not None]
    text = Text()
    text.append(f"{spec.title}\n\n", style="bold")
    if spec.sources and not configured:
        names = " or ".join(f"`{name}:`" for name in spec.sources)
        text.append("not configured", style="bold")
        text.append(f"\n\nAdd a {names} section to the configuration to use this view.\n\n")
        text.append("Coming: ", style="dim bold")
        text.append(spec.coming, style="dim")
        return text
    if configured:
        text.append(f"Source: {', '.join(configured)} (configured)\n\n")
    text.append("Coming in a later release: ", style="bold")
    text.append(spec.coming)
    return text


def not_configured_text(view: str, config: Config) -> Text:
    """What a built view says when its source is not configured: the section that enables it."""
    spec = PLACEHOLDERS[view]
    names = " or ".join(f"`{name}:`" for name in spec.sources)
    systems = " or ".join(_SYSTEM_NAMES.get(name, name) for name in spec.sources)
    text = Text()
    text.append(f"{spec.title}\n\n", style="bold")
    text.append(f"{systems} is not configured", style="bold")
    text.append(f"\n\nAdd a {names} section to the configuration to see here:\n")
    text.append(spec.coming, style="dim")
    return text


class PlaceholderView(Widget):
    """A view that is not built yet: says what it will show and where its data comes from."""

    def __init__(self, view: str, config: Config, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view = view
        self.config = config

    def compose(self) -> ComposeResult:
        yield Static(placeholder_text(self.view, self.config), classes="placeholder-text")
