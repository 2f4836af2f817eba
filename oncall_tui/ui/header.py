"""The header: is every source reachable, how fresh is what I see, how bad is it right now.

Two lines: the counts that matter at a glance (firing critical and warning alerts, unacknowledged
incidents) and then one entry per source with its last successful refresh, or "stale since" when
it stopped answering. A restored snapshot says so until the first poll replaces it.
Under it, the view bar: every view with the key that shows it, the current one highlighted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import Static

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.models import AlertState, Snapshot, SourceHealth
from oncall_tui.ui.timefmt import local, relative

OK, DOWN, WAIT = "●", "✖", "○"
MAX_ERROR = 40


def alert_counts(snapshot: Snapshot) -> tuple[int, int]:
    """Firing (active, not silenced or inhibited) critical and warning alerts."""
    critical = warning = 0
    active = AlertState.ACTIVE
    for alert in snapshot.alerts:
        if alert.state is active:
            # Called on every snapshot with up to 10k alerts: plain lookups, no properties.
            severity = alert.labels.get("severity", "")
            if severity == "critical":
                critical += 1
            elif severity == "warning":
                warning += 1
    return critical, warning


def source_text(health: SourceHealth, clock: Clock) -> Text:
    now = clock.now()
    text = Text()
    if health.kind == "webhooks":
        text.append("webhooks ", style="bold")
        if health.reachable is None:
            text.append(f"{WAIT} off" if health.detail == "off" else f"{WAIT} starting", "dim")
        elif health.reachable:
            text.append(f"{OK} {health.detail}", style="green")
            if health.last_success is not None:
                text.append(f" last {relative(health.last_success, now)}", style="dim")
        else:
            text.append(f"{DOWN} {health.error or 'not listening'}", style="bold red")
        return text
    text.append(f"{health.name} ", style="bold")
    if health.reachable is None:
        text.append(f"{WAIT} connecting", style="dim")
    elif health.reachable:
        text.append(f"{OK} ok", style="green")
        if health.last_success is not None:
            text.append(f" {relative(health.last_success, now)}", style="dim")
    else:
        since = health.stale_since or health.last_success
        text.append(f"{DOWN} stale", style="bold red")
        if since is not None:
            text.append(f" since {local(since, now)}", style="red")
        if health.error:
            # Whole errors are in the log and the view; the header must stay two lines.
            error = (
                health.error if len(health.error) <= MAX_ERROR else health.error[:MAX_ERROR] + "…"
            )
            text.append(f" ({error})", style="red")
    return text


class SourceBar(Static):
    """Counts and per-source health, re-rendered on every snapshot and every second."""

    def __init__(self, config: Config, clock: Clock, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self.config = config
        self.clock = clock
        self.snapshot: Snapshot | None = None
        self.read_only = False
        self._shown: Text | None = None
        self._lines = 0

    def on_resize(self) -> None:
        self._shown = None  # the same text may wrap to another height now
        self.redraw()

    def update_snapshot(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.redraw()

    def redraw(self) -> None:
        text = self.build()
        if text == self._shown:
            return  # nothing moved: no repaint at all
        # A re-layout of the whole screen only when the header may change height.
        lines = len(text.wrap(self.app.console, max(self.size.width, 1)))
        same_height = self._shown is not None and lines == self._lines
        self._lines = lines
        self._shown = text
        self.update(text, layout=not same_height)

    def build(self) -> Text:
        snapshot = self.snapshot
        text = Text(no_wrap=False)
        text.append(" oncall-tui ", style="bold reverse")
        # At 80 columns the counts matter more than the operator's own name.
        if self.config.operator.name and self.size.width >= 100:
            text.append(f" {self.config.operator.name}", style="dim")
        if self.read_only:
            text.append("  ")
            text.append(" read-only ", style="bold black on cyan")
        text.append("   ")
        if snapshot is None:
            text.append("starting…", style="dim")
            return text
        critical, warning = alert_counts(snapshot)
        text.append(f"{critical} critical", style="bold red" if critical else "dim")
        text.append("  ")
        text.append(f"{warning} warning", style="bold yellow" if warning else "dim")
        text.append("  ")
        if self.config.pagerduty is None and self.config.opsgenie is None:
            text.append("incidents: not configured", style="dim")
        else:
            # PagerDuty's triggered and Opsgenie's open: nobody has acknowledged them yet.
            open_incidents = sum(1 for i in snapshot.incidents if i.status in ("triggered", "open"))
            text.append(
                f"{open_incidents} unacknowledged",
                style="bold magenta" if open_incidents else "dim",
            )
        if snapshot.restored:
            text.append("   ")
            text.append(" restored snapshot, stale ", style="bold black on yellow")
        text.append("\n")
        for index, health in enumerate(snapshot.health):
            if index:
                text.append("  ·  ", style="dim")
            text.append_text(source_text(health, self.clock))
        if not snapshot.health:
            text.append("no source has reported yet", style="dim")
        return text


class ViewBar(Static):
    """`1 Alerts  2 Incidents  3 On-call …`: where am I, and how do I get elsewhere."""

    class Chosen(Message):
        """A view's name was clicked."""

        def __init__(self, view: str) -> None:
            super().__init__()
            self.view = view

    def __init__(self, views: Sequence[tuple[str, str]], *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self.views = list(views)
        self.current = views[0][0] if views else ""
        self.keys: dict[str, str] = {}
        self.badges: dict[str, str] = {}
        self._spans: list[tuple[int, int, str]] = []
        self._shown: Text | None = None

    def show(
        self,
        current: str,
        keys: Mapping[str, str] | None = None,
        badges: Mapping[str, str] | None = None,
    ) -> None:
        """Highlight `current`; `keys` and `badges` (view name -> text) replace the old ones."""
        self.current = current
        if keys is not None:
            self.keys = dict(keys)
        if badges is not None:
            self.badges = dict(badges)
        text = self.build()
        if text == self._shown:
            return
        self._shown = text
        self.update(text, layout=False)  # one line, always: never re-lay the screen out

    def build(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        self._spans = []
        for name, title in self.views:
            start = len(text)
            key = self.keys.get(name, "")
            if key:
                text.append(f" {key}", style="bold")
            text.append(f" {title} ", style="" if name == self.current else "dim")
            if name == self.current:
                text.stylize("bold reverse", start, len(text))
            if badge := self.badges.get(name):
                text.append(f"({badge}) ", style="bold magenta")
            self._spans.append((start, len(text), name))
        return text

    def on_click(self, event: events.Click) -> None:
        for start, end, name in self._spans:
            if start <= event.x < end:
                self.post_message(self.Chosen(name))
                return
