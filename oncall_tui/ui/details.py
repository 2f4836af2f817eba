"""The alert details screen: every label and annotation, runbook, receivers, peers, links.

What it shows is the alert as it was when `enter` was pressed; the operator reads one alert at a
time and `escape` goes back to the live list. Every value is plain text, never markup.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine import Engine
from oncall_tui.models import Alert
from oncall_tui.ui.alert_table import severity_class
from oncall_tui.ui.footer import KeyFooter
from oncall_tui.ui.pipeline import PipelineScreen, pipeline_section
from oncall_tui.ui.timefmt import local, relative

_SEVERITY_STYLE = {
    "sev-critical": "bold red",
    "sev-error": "red",
    "sev-warning": "yellow",
    "sev-info": "cyan",
    "sev-none": "dim",
}


def linked_incident(config: Config, system: str) -> str:
    """What the details can say about a linked incident before correlation exists."""
    configured = {
        "PagerDuty": config.pagerduty is not None,
        "Opsgenie": config.opsgenie is not None,
        "Statuspage": config.statuspage is not None,
    }[system]
    if not configured:
        return "not configured"
    return "linking arrives with the correlation of alert groups and incidents"


def _pairs(title: str, items: list[tuple[str, str | Text]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, min_width=12)
    table.add_column(overflow="fold")
    table.title = title
    table.title_justify = "left"
    table.title_style = "bold underline"
    for name, value in items:
        table.add_row(Text(name), value if isinstance(value, Text) else Text(value))
    return table


def alert_sections(alert: Alert, config: Config, clock: Clock) -> list[Table]:
    now = clock.now()

    def when(moment: datetime | None) -> str:
        if moment is None:
            return "—"
        return f"{local(moment, now)} ({relative(moment, now)})"

    severity = Text(alert.severity, style=_SEVERITY_STYLE[severity_class(alert.severity)])
    state = alert.state.value
    if alert.silenced_by:
        state += " by silence " + ", ".join(alert.silenced_by)
    if alert.inhibited_by:
        state += " by " + ", ".join(alert.inhibited_by)
    overview: list[tuple[str, str | Text]] = [
        ("alert", alert.alertname or "—"),
        ("severity", severity),
        ("state", state),
        ("started", when(alert.starts_at)),
        ("updated", when(alert.updated_at)),
        ("ends", when(alert.ends_at)),
        ("runbook", alert.runbook_url or "none given"),
        ("source", alert.generator_url or "—"),
        ("receivers", ", ".join(alert.receivers) or "none"),
        ("cluster", alert.cluster or "—"),
        ("seen by", ", ".join(alert.seen_by) or "—"),
        ("fingerprint", alert.fingerprint),
    ]
    labels = sorted(alert.labels.items())
    annotations = sorted(alert.annotations.items())
    links: list[tuple[str, str | Text]] = [
        ("PagerDuty", linked_incident(config, "PagerDuty")),
        ("Opsgenie", linked_incident(config, "Opsgenie")),
        ("Statuspage", linked_incident(config, "Statuspage")),
    ]
    return [
        _pairs("Alert", overview),
        _pairs("Labels", list(labels) or [("—", "no labels")]),
        _pairs("Annotations", list(annotations) or [("—", "no annotations")]),
        _pairs("Linked incidents", links),
    ]


class AlertDetailsScreen(Screen[None]):
    """One alert in full; escape goes back to the list."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="details-back"),
        Binding("p", "pipeline", "Pipeline", id="details-pipeline"),
        Binding("j,down", "scroll_down", "Down", show=False, id="cursor-down"),
        Binding("k,up", "scroll_up", "Up", show=False, id="cursor-up"),
        Binding("g,home", "scroll_home", "Top", show=False, id="cursor-top"),
        Binding("G,end", "scroll_end", "Bottom", show=False, id="cursor-bottom"),
    ]

    def __init__(
        self, alert: Alert, config: Config, clock: Clock, *, engine: Engine | None = None
    ) -> None:
        super().__init__()
        self.alert = alert
        self.config = config
        self.clock = clock
        self.engine = engine

    def compose(self) -> ComposeResult:
        title = Text(f"{self.alert.alertname or 'alert'}", style="bold")
        if summary := self.alert.summary:
            title.append(" — ")
            title.append(summary)
        yield Static(title, id="details-title", markup=False)
        with VerticalScroll(id="details-body"):
            sections: list[RenderableType] = list(
                alert_sections(self.alert, self.config, self.clock)
            )
            if self.engine is not None:
                # The chain this alert's group set off, in place of the "not configured" lines.
                sections[-1] = pipeline_section(
                    self.alert,
                    self.engine.snapshot,
                    self.engine.correlator,
                    self.config,
                    self.clock.now(),
                )
            for index, section in enumerate(sections):
                yield Static(section, classes="details-section", id=f"details-section-{index}")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#details-body", VerticalScroll).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.engine is not None if action == "pipeline" else True

    def action_pipeline(self) -> None:
        if self.engine is not None:
            self.app.push_screen(
                PipelineScreen(
                    self.alert,
                    self.engine.snapshot,
                    self.engine.correlator,
                    self.config,
                    self.clock,
                )
            )

    def _body(self) -> VerticalScroll:
        return self.query_one("#details-body", VerticalScroll)

    def action_scroll_down(self) -> None:
        self._body().scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self._body().scroll_up(animate=False)

    def action_scroll_home(self) -> None:
        self._body().scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self._body().scroll_end(animate=False)
