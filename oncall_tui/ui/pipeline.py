"""The pipeline seen as one chain: a test alert's waterfall, and one alert group's chain.

* `TraceScreen` fires a test alert and follows it stage by stage (engine/trace.py), drawing a
  waterfall: one row per stage with a bar from the previous stage to this one, its latency, and
  what was seen or why it broke. It can also show a finished trace.
* `PipelineScreen` shows one alert group's chain (DESIGN.md section 6): the Alertmanager group
  (every alert in it) -> the PagerDuty incident (and every alert PagerDuty folded into it,
  paged or not) -> the Opsgenie alert -> the Statuspage incident, each with its time, its delay
  after the group started, and its state. `pipeline_section` is the same chain for a details
  screen.

Every value from alerts or vendors is plain text, never markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine.correlation import Correlator
from oncall_tui.engine.trace_result import (
    BROKEN,
    OK,
    SKIPPED,
    Trace,
    trace_data,
    trace_summary,
)
from oncall_tui.models import Alert, Incident, LogEntry, Snapshot, StatusIncident
from oncall_tui.timeline import LogReader
from oncall_tui.ui.footer import KeyFooter
from oncall_tui.ui.timefmt import local, span

TRACE_TIMEOUT = 60.0
GLYPH = {OK: "✓", BROKEN: "✗", SKIPPED: "-"}
STYLE = {OK: "green", BROKEN: "bold red", SKIPPED: "dim"}
_CLOSED = {"resolved", "closed", "postmortem", "completed"}


class TraceLog(LogReader, Protocol):
    """The log a trace reads notifications from and writes its result to (the Store)."""

    async def append(
        self,
        source: str,
        kind: str,
        summary: str,
        *,
        actor: str = "",
        data: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> LogEntry: ...


# -- the waterfall ------------------------------------------------------------------------------


def _bar(start: float, end: float, scale: float, width: int, status: str) -> Text:
    # A dotted track rather than blanks: the row reads across, and no cell is whitespace only.
    if status != OK or scale <= 0:
        return Text("·" * width, style="dim")
    left = min(width - 1, int(start / scale * width))
    right = max(left + 1, min(width, round(end / scale * width)))
    bar = Text("·" * left, style="dim")
    bar.append("█" * (right - left), style="cyan")
    bar.append("·" * (width - right), style="dim")
    return bar


def waterfall_table(trace: Trace, *, bar_width: int = 24, now: datetime | None = None) -> Table:
    """One row per stage: glyph, stage, bar (previous stage -> this one), latency, detail."""
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(no_wrap=True, width=1)
    table.add_column(no_wrap=True, width=24)
    table.add_column(no_wrap=True, width=bar_width)
    table.add_column(no_wrap=True, justify="right", min_width=7)
    table.add_column(overflow="fold", ratio=1)
    done = [s.latency for s in trace.stages if s.status == OK and s.latency is not None]
    scale = max(done, default=0.0)
    previous = 0.0
    for stage in trace.stages:
        status = stage.status
        glyph = Text(GLYPH.get(status, "…"), style=STYLE.get(status, "yellow"))
        latency = stage.latency or 0.0
        bar = _bar(previous, latency, scale, bar_width, status)
        if status == OK:
            previous = latency
        shown = f"{stage.latency:.2f}s" if stage.latency is not None else "—"
        text = stage.cause if status == BROKEN else stage.detail
        if status not in (OK, BROKEN, SKIPPED):
            text = "waiting…"
        table.add_row(
            glyph,
            Text(stage.title, style="bold" if status == OK else STYLE.get(status, "")),
            bar,
            Text(shown),
            Text(text, style="red" if status == BROKEN else ""),
        )
    return table


def trace_heading(trace: Trace | None, labels: Mapping[str, str]) -> Text:
    shown = ", ".join(f"{k}={v}" for k, v in labels.items())
    heading = Text(f"Test alert {{{shown}}}", style="bold")
    if trace is None:
        heading.append("\nfiring…", style="yellow")
    elif not trace.finished:
        heading.append(f"\nfired {local(trace.fired_at, trace.fired_at)}, following it…")
    else:
        style = "bold green" if trace.ok else "bold red"
        heading.append("\n")
        heading.append(trace_summary(trace), style=style)
    return heading


class Waterfall(Static):
    """A trace as a waterfall; `show(trace)` redraws it."""

    DEFAULT_CSS = "Waterfall { height: auto; }"

    def __init__(self, trace: Trace | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trace = trace

    def show(self, trace: Trace) -> None:
        self.trace = trace
        self.refresh(layout=True)

    def render(self) -> Table | Text:
        if self.trace is None:
            return Text("")
        width = self.size.width or 80
        return waterfall_table(self.trace, bar_width=max(8, min(40, (width - 50) // 2)))


class _Scrolling(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="details-back"),
        Binding("j,down", "scroll('down')", "Down", show=False, id="cursor-down"),
        Binding("k,up", "scroll('up')", "Up", show=False, id="cursor-up"),
    ]

    def action_scroll(self, where: str) -> None:
        body = self.query_one(VerticalScroll)
        if where == "down":
            body.scroll_down(animate=False)
        else:
            body.scroll_up(animate=False)


class TraceScreen(_Scrolling):
    """Fires `labels` and follows them (a live waterfall), or shows a finished `trace`."""

    def __init__(
        self,
        config: Config,
        clock: Clock,
        *,
        log: TraceLog | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        trace: Trace | None = None,
        timeout: float = TRACE_TIMEOUT,
    ) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        self._log = log
        self.labels = dict(trace.labels if trace is not None else labels or {})
        self.annotations = dict(annotations or {})
        self.trace = trace
        self.timeout = timeout

    def compose(self) -> ComposeResult:
        yield Static(trace_heading(self.trace, self.labels), id="trace-heading", markup=False)
        with VerticalScroll(id="trace-body"):
            yield Waterfall(self.trace, id="trace-waterfall")
        yield KeyFooter()

    def on_mount(self) -> None:
        if self.trace is None and self.labels:
            self._follow()

    def _show(self, trace: Trace) -> None:
        self.trace = trace
        self.query_one("#trace-heading", Static).update(trace_heading(trace, self.labels))
        self.query_one(Waterfall).show(trace)

    @work(group="trace", exclusive=True, exit_on_error=False)
    async def _follow(self) -> None:
        # Imported when a trace starts: it brings the HTTP stack, which the first frame does
        # without.
        from oncall_tui.engine.trace import trace_test_alert

        trace = await trace_test_alert(
            self.config,
            self.labels,
            self.annotations,
            clock=self.clock,
            log=self._log,
            within=self.timeout,
            on_update=self._show,
        )
        self._show(trace)
        if self._log is not None:
            await self._log.append(
                "operator",
                "trace.passed" if trace.ok else "trace.broken",
                trace_summary(trace),
                actor=self.config.actor,
                data=trace_data(trace),
            )


# -- one alert group's chain --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Link:
    """One stage of a group's chain as it stands now."""

    system: str  # "Alertmanager" | "PagerDuty" | "Opsgenie" | "Statuspage"
    state: str  # "" when the stage has not happened (or is not configured)
    at: datetime | None
    detail: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Chain:
    group_key: str
    links: tuple[Link, ...]


def _alert_line(alert: Alert) -> str:
    where = alert.labels.get("instance") or alert.labels.get("service") or ""
    return f"{alert.alertname} {where} [{alert.state.value}]".replace("  ", " ")


def _incident_link(system: str, incident: Incident | None, folded: Sequence[Alert]) -> Link:
    if incident is None:
        return Link(system, "", None, "no incident linked to this group")
    number = f"#{incident.number}" if incident.number is not None else incident.id
    parts = [f"{number} {incident.title}"]
    if incident.assignee:
        parts.append(f"assigned {incident.assignee}")
    if incident.acknowledged_by:
        parts.append(f"acknowledged by {', '.join(incident.acknowledged_by)}")
    if incident.escalation_level:
        parts.append(f"level {incident.escalation_level}")
    members = tuple(_alert_line(a) for a in folded)
    return Link(system, incident.status, incident.created_at, "; ".join(parts), members)


def _status_incident(alert: Alert, config: Config, snapshot: Snapshot) -> StatusIncident | None:
    sp = config.statuspage
    if sp is None:
        return None
    component = sp.components.get(alert.labels.get(sp.automation.component_label, ""))
    if component is None:
        return None
    found = [i for i in snapshot.status_incidents if component in i.component_ids]
    found.sort(key=lambda i: (i.status in _CLOSED, -i.updated_at.timestamp()))
    return found[0] if found else None


def alert_chain(alert: Alert, snapshot: Snapshot, correlator: Correlator, config: Config) -> Chain:
    """The chain of the alert's group, from what the engine knows now (no network)."""
    keys = correlator.group_keys_of(alert)
    group_key = keys[0] if keys else ""
    members = [a for a in snapshot.alerts if group_key and group_key in correlator.group_keys_of(a)]
    if not members:
        members = [alert]
    started = min(a.starts_at for a in members)
    firing = sum(1 for a in members if a.state.value == "active")
    detail = f"{len(members)} alert(s), {firing} active; receivers {', '.join(alert.receivers)}"
    links = [
        Link(
            "Alertmanager",
            "firing" if firing else alert.state.value,
            started,
            detail,
            tuple(_alert_line(a) for a in members),
        )
    ]
    linked = correlator.incidents_for_alert(alert, snapshot.incidents)
    for system, name, configured in (
        ("pagerduty", "PagerDuty", config.pagerduty is not None),
        ("opsgenie", "Opsgenie", config.opsgenie is not None),
    ):
        incident = next((i for i in linked if i.system == system), None)
        if incident is None and not configured:
            links.append(Link(name, "", None, "not configured"))
            continue
        folded = correlator.alerts_for_incident(incident, snapshot.alerts) if incident else []
        links.append(_incident_link(name, incident, folded))
    public = _status_incident(alert, config, snapshot)
    if public is not None:
        detail = f"{public.name} ({public.impact})"
        if public.latest_update:
            detail += f": {public.latest_update}"
        links.append(Link("Statuspage", public.status, public.updated_at, detail))
    elif config.statuspage is None:
        links.append(Link("Statuspage", "", None, "not configured"))
    else:
        links.append(Link("Statuspage", "", None, "no public incident for this component"))
    return Chain(group_key, tuple(links))


def chain_table(chain: Chain, now: datetime) -> Table:
    """The chain, one block per stage: system, state, time (+ delay after the group started),
    then what it is and the alerts in it, indented so that narrow terminals wrap cleanly."""
    table = Table.grid(expand=True)
    table.add_column(ratio=1)
    origin = chain.links[0].at if chain.links else None
    for index, link in enumerate(chain.links):
        head = Table.grid(padding=(0, 1))
        for width in (1, 12, 13, 8, 6):
            head.add_column(no_wrap=True, width=width)
        when = local(link.at, now) if link.at is not None else "—"
        delay = ""
        if link.at is not None and origin is not None and index:
            delay = f"+{span(link.at - origin)}"
        head.add_row(
            Text("→" if index else " "),
            Text(link.system, style="bold"),
            Text(link.state or "—", style=_state_style(link.state)),
            Text(when),
            Text(delay, style="cyan"),
        )
        table.add_row(head)
        table.add_row(Padding(Text(link.detail, style="" if link.state else "dim"), (0, 0, 0, 4)))
        for member in link.members:
            table.add_row(Padding(Text(f"· {member}", style="dim"), (0, 0, 0, 4)))
    return table


def _state_style(state: str) -> str:
    if not state:
        return "dim"
    if state in ("triggered", "firing", "open", "investigating", "major_outage"):
        return "bold red"
    if state in _CLOSED:
        return "green"
    return "yellow"


def pipeline_section(
    alert: Alert, snapshot: Snapshot, correlator: Correlator, config: Config, now: datetime
) -> Table:
    """The chain as a titled section for the alert and incident details screens."""
    table = chain_table(alert_chain(alert, snapshot, correlator, config), now)
    table.title = "Pipeline"
    table.title_justify = "left"
    table.title_style = "bold underline"
    return table


def incident_pipeline_section(
    incident: Incident, snapshot: Snapshot, correlator: Correlator, config: Config, now: datetime
) -> Table | None:
    """The chain of the alert group behind an incident (None when no alert of it is known)."""
    alerts = correlator.alerts_for_incident(incident, snapshot.alerts)
    if not alerts:
        return None
    first = min(alerts, key=lambda a: a.starts_at)
    return pipeline_section(first, snapshot, correlator, config, now)


class PipelineScreen(_Scrolling):
    """One alert group's chain; `update_snapshot` keeps it current while it is open."""

    def __init__(
        self, alert: Alert, snapshot: Snapshot, correlator: Correlator, config: Config, clock: Clock
    ) -> None:
        super().__init__()
        self.alert = alert
        self.snapshot = snapshot
        self.correlator = correlator
        self.config = config
        self.clock = clock

    def compose(self) -> ComposeResult:
        title = Text(f"Pipeline of {self.alert.alertname}", style="bold")
        if self.alert.summary:
            title.append(f" — {self.alert.summary}")
        yield Static(title, id="pipeline-title", markup=False)
        with VerticalScroll(id="pipeline-body"):
            yield Static(self._render_chain(), id="pipeline-chain")
        yield KeyFooter()

    def _render_chain(self) -> Table:
        chain = alert_chain(self.alert, self.snapshot, self.correlator, self.config)
        table = chain_table(chain, self.clock.now())
        table.caption = f"group {chain.group_key}" if chain.group_key else "group key not known yet"
        table.caption_justify = "left"
        return table

    def update_snapshot(self, snapshot: Snapshot) -> None:
        current = next((a for a in snapshot.alerts if a.key == self.alert.key), None)
        self.alert = current or self.alert
        self.snapshot = snapshot
        self.query_one("#pipeline-chain", Static).update(self._render_chain())
