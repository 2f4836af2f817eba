"""The Log view (`6`): everything that happened, newest first, filtered, with details.

The log is what the engine wrote: webhooks received, changes seen by polling, the operator's
actions and their outcomes, automation. The filter line takes free text plus `source:`, `kind:`
(`kind:incident.*` for a family), `service:` and `incident:` terms; `incident:P123` shows that
incident's whole timeline across systems (oncall_tui/timeline.py), not just rows naming it.
`enter` shows an entry in full, `p` the postmortem timeline of the entry's incident (the
Markdown `oncall-tui log export` writes), `h` the shift handoff (as `oncall-tui handoff`).

Entries are read from the log, not kept in memory: the view reloads the newest `LIMIT` matching
entries when a snapshot or a log entry arrives (polls log before they publish), one load at a
time, and only while it is shown. The cursor stays on the same entry across reloads.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from oncall_tui.clock import Clock
from oncall_tui.handoff import handoff_markdown, load_handoff
from oncall_tui.models import LogEntry, Snapshot
from oncall_tui.postmortem import timeline_markdown
from oncall_tui.timeline import TimelineError, incident_for_entry, load_timeline
from oncall_tui.ui.alerts import FilterInput
from oncall_tui.ui.log_screens import DocumentScreen, EntryDetails
from oncall_tui.ui.timefmt import local

LIMIT = 500
SUMMARY_WIDTH = 200
HANDOFF_SHIFT = timedelta(hours=12)
_SOURCE_STYLE = {
    "alertmanager": "bold #e6522c",
    "pagerduty": "bold #06ac38",
    "opsgenie": "bold #2684ff",
    "statuspage": "bold #8f7ee7",
    "operator": "bold cyan",
    "automation": "bold magenta",
    "webhooks": "bold",
}
_BAD = ("failed", "down", "rejected", "unusable")
_GOOD = ("resolved", "done", "up", "acknowledged", "closed", "ended")
_NEWS = ("triggered", "firing", "escalated", "open")


class LogEngine(Protocol):
    """What the view needs from the engine (the real Engine satisfies it)."""

    snapshot: Snapshot

    async def log_entries(self, **filters: Any) -> list[LogEntry]: ...


@dataclass(frozen=True, slots=True)
class LogFilter:
    """The filter line, split into what the log can select and what the view checks."""

    text: str = ""
    sources: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    kind_prefixes: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    incident: str = ""

    def __bool__(self) -> bool:
        return bool(
            self.text
            or self.sources
            or self.kinds
            or self.kind_prefixes
            or self.services
            or self.incident
        )

    def matches(self, entry: LogEntry) -> bool:
        """The terms the log cannot select by itself."""
        if self.kind_prefixes and not any(entry.kind.startswith(p) for p in self.kind_prefixes):
            return False
        if self.services:
            names = [s.lower() for s in entry_services(entry)]
            return any(wanted in name for wanted in self.services for name in names)
        return True


def parse_log_filter(line: str) -> LogFilter:
    """`source:pagerduty kind:incident.* service:pay incident:P12 disk full` -> a LogFilter."""
    try:
        words = shlex.split(line)
    except ValueError:  # an unbalanced quote: take the words as typed
        words = line.split()
    text: list[str] = []
    sources: list[str] = []
    kinds: list[str] = []
    prefixes: list[str] = []
    services: list[str] = []
    incident = ""
    for word in words:
        name, sep, value = word.partition(":")
        name = name.lower()
        values = [v for v in value.split(",") if v] if sep else []
        if name == "source" and values:
            sources += [v.lower() for v in values]
        elif name == "kind" and values:
            for v in values:
                if v.endswith("*"):
                    prefixes.append(v.rstrip("*"))
                else:
                    kinds.append(v)
        elif name == "service" and values:
            services += [v.lower() for v in values]
        elif name == "incident" and value:
            incident = value
        else:
            text.append(word)
    return LogFilter(
        " ".join(text), tuple(sources), tuple(kinds), tuple(prefixes), tuple(services), incident
    )


def entry_services(entry: LogEntry) -> list[str]:
    """The services an entry is about, from whatever its data names."""
    data = entry.data
    found: list[str] = []

    def add(labels: object) -> None:
        if isinstance(labels, Mapping) and labels.get("service"):
            found.append(str(labels["service"]))

    if data.get("service"):
        found.append(str(data["service"]))
    add(data.get("labels"))
    add(data.get("group_labels"))
    alerts = data.get("alerts")
    if isinstance(alerts, list):
        for alert in alerts:
            if isinstance(alert, Mapping):
                add(alert.get("labels"))
    params = data.get("params")
    if isinstance(params, Mapping):
        add(params.get("labels"))
    return found


class _EngineLog:
    """The engine's log queries in the shape timeline.py and handoff.py read."""

    def __init__(self, engine: LogEngine) -> None:
        self._engine = engine

    async def entries(self, **filters: Any) -> list[LogEntry]:
        return await self._engine.log_entries(**filters)


class LogTable(DataTable[Text], inherit_bindings=False):
    """The table, without DataTable's own `enter`, so the view's remappable `details` gets it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor_down", "Down", show=False, id="cursor-down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="cursor-up"),
        Binding("g,home", "scroll_top", "Top", show=False, id="cursor-top"),
        Binding("G,end", "scroll_bottom", "Bottom", show=False, id="cursor-bottom"),
        Binding("pagedown", "page_down", "Page down", show=False, id="page-down"),
        Binding("pageup", "page_up", "Page up", show=False, id="page-up"),
    ]


class LogView(Widget):
    """The log, newest first, with a filter line, details, timelines and the handoff."""

    # The table comes first in the DOM (so that switching to the view focuses it, not the
    # filter line); the filter line and the status are docked above it.
    DEFAULT_CSS = """
    LogView { height: 1fr; width: 100%; layout: vertical; }
    LogView > #log-head { dock: top; height: 2; width: 100%; }
    LogView #log-filter { height: 1; border: none; padding: 0 1; margin: 0; }
    LogView #log-filter:focus { background: $boost; }
    LogView #log-status {
        height: 1; width: 100%; padding: 0 1; color: $text-muted; background: $panel;
    }
    LogView > LogTable { height: 1fr; width: 100%; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "details", "Details", id="details", tooltip="The entry in full"),
        Binding(
            "p",
            "timeline",
            "Timeline",
            id="log-timeline",
            tooltip="The postmortem timeline of the entry's incident, across systems",
        ),
        Binding(
            "h",
            "handoff",
            "Handoff",
            id="log-handoff",
            tooltip="The shift handoff: what fired, who handled it, what is open, who is next",
        ),
        Binding("/", "filter", "Filter", id="log-filter", tooltip="Filter the log"),
        Binding("escape", "clear", "Clear", id="log-clear", tooltip="Clear the filter"),
    ]

    def __init__(self, engine: LogEngine, clock: Clock, *, id: str = "log") -> None:
        super().__init__(id=id)
        self._engine = engine
        self._clock = clock
        self._log = _EngineLog(engine)
        self._snapshot: Snapshot | None = None
        self._filter = LogFilter()
        self._entries: dict[int, LogEntry] = {}
        self._order: list[int] = []
        self._loading = False
        self._again = False
        self._stale = True
        self._note = ""
        self.loads = 0

    def compose(self) -> ComposeResult:
        table = LogTable(id="log-table", cursor_type="row", zebra_stripes=False)
        table.add_column("Time", key="time", width=8)
        table.add_column("Source", key="source", width=12)
        table.add_column("Kind", key="kind", width=21)
        # Who did it follows what was done (as `oncall-tui log` prints it): a column of its own
        # would leave the summary a dozen characters at 80 columns, and most rows have no actor.
        table.add_column("What (who)", key="summary")
        yield table
        with Vertical(id="log-head"):
            yield FilterInput(
                placeholder=(
                    "/ filter: text  source:pagerduty  kind:incident.*  service:x  incident:ID"
                ),
                id="log-filter",
            )
            yield Static(id="log-status")

    @property
    def table(self) -> LogTable:
        return self.query_one(LogTable)

    @property
    def entries(self) -> list[LogEntry]:
        """The entries shown, newest first."""
        return [self._entries[i] for i in self._order]

    def on_mount(self) -> None:
        self._show_status()
        self.reload()

    # -- data in -----------------------------------------------------------------------------

    def update_snapshot(self, snapshot: Snapshot) -> None:
        """A poll published: it logged what it saw first, so the log may have grown."""
        self._snapshot = snapshot
        self.reload()

    def on_log_appended(self, entry: LogEntry) -> None:
        self.reload()

    def reload(self) -> None:
        """Read the log again: at once when shown, when next shown otherwise."""
        if not self.is_mounted:
            return
        if not self.display or not self.parent_display:
            self._stale = True
            return
        if self._loading:
            self._again = True
            return
        self._loading = True
        self.run_worker(self._load(), group="log-load", exit_on_error=False)

    @property
    def parent_display(self) -> bool:
        parent = self.parent
        return not isinstance(parent, Widget) or parent.display

    @on(events.Show)
    def _shown(self) -> None:
        if self._stale:
            self._stale = False
            self.reload()

    async def _load(self) -> None:
        try:
            while True:
                self._again = False
                entries, note = await self._query(self._filter)
                self._note = note
                self._apply(entries)
                self.loads += 1
                if not self._again:
                    return
        finally:
            self._loading = False

    async def _query(self, wanted: LogFilter) -> tuple[list[LogEntry], str]:
        if wanted.incident:
            try:
                timeline = await load_timeline(self._log, wanted.incident)
            except TimelineError as exc:
                return [], str(exc.args[0])
            ids = timeline.entry_ids
            first, last = timeline.events[0].at, timeline.events[-1].at
            around = await self._engine.log_entries(
                since=first, until=last + timedelta(seconds=1), limit=0
            )
            found = [e for e in around if e.id in ids and self._plain_match(wanted, e)]
            return found, f"timeline of {timeline.key}"
        entries = await self._engine.log_entries(
            sources=wanted.sources, kinds=wanted.kinds, text=wanted.text, limit=LIMIT
        )
        return [e for e in entries if wanted.matches(e)], ""

    @staticmethod
    def _plain_match(wanted: LogFilter, entry: LogEntry) -> bool:
        if wanted.sources and entry.source not in wanted.sources:
            return False
        if wanted.kinds and entry.kind not in wanted.kinds:
            return False
        text = wanted.text.lower()
        if text and text not in f"{entry.summary} {entry.actor}".lower():
            return False
        return wanted.matches(entry)

    def _apply(self, entries: Sequence[LogEntry]) -> None:
        ordered = sorted(
            (e for e in entries if e.id is not None),
            key=lambda e: (e.at, e.id or 0),
            reverse=True,
        )
        order = [e.id for e in ordered if e.id is not None]
        if order != self._order:
            table = self.table
            keep = self._cursor_id()
            self._entries = {e.id: e for e in ordered if e.id is not None}
            self._order = order
            now = self._clock.now()
            with self.app.batch_update():
                table.clear()
                for entry in ordered:
                    table.add_row(*self._cells(entry, now), key=str(entry.id))
                if keep is not None and keep in self._entries:
                    table.move_cursor(row=table.get_row_index(str(keep)), animate=False)
        self._show_status()

    def _cells(self, entry: LogEntry, now: datetime) -> tuple[Text, ...]:
        kind = entry.kind
        kind_style = ""
        if kind.endswith(_BAD):
            kind_style = "bold red"
        elif kind.endswith(_GOOD):
            kind_style = "green"
        elif any(word in kind for word in _NEWS):
            kind_style = "yellow"
        summary = " ".join(entry.summary.split())
        if len(summary) > SUMMARY_WIDTH:
            summary = summary[: SUMMARY_WIDTH - 1] + "…"
        what = Text(summary)
        if entry.actor:
            what.append(f" ({entry.actor})", style="dim")
        return (
            Text(local(entry.at, now)),
            Text(entry.source, style=_SOURCE_STYLE.get(entry.source, "")),
            Text(entry.kind, style=kind_style),
            what,
        )

    def _show_status(self) -> None:
        shown = len(self._order)
        parts = [f"{shown} entr{'y' if shown == 1 else 'ies'}"]
        if shown >= LIMIT and not self._filter.incident:
            parts[0] = f"newest {LIMIT} entries"
        if self._filter:
            parts[0] += " match"  # the filter itself is on the line above
        if self._note:
            parts.append(self._note)
        parts.append("enter details · p timeline · h handoff · / filter")
        self.query_one("#log-status", Static).update(Text("  ·  ".join(parts)))

    # -- the cursor --------------------------------------------------------------------------

    def _cursor_id(self) -> int | None:
        table = self.table
        if table.row_count == 0:
            return None
        row = table.cursor_row
        if 0 <= row < len(self._order):
            return self._order[row]
        return None

    @property
    def current(self) -> LogEntry | None:
        entry_id = self._cursor_id()
        return self._entries.get(entry_id) if entry_id is not None else None

    # -- actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("details", "timeline") and self.current is None:
            return None
        if action == "clear" and not self._filter:
            return None
        return True

    def action_details(self) -> None:
        entry = self.current
        if entry is not None:
            self.run_worker(self._show_details(entry), group="log-document", exit_on_error=False)

    async def _show_details(self, entry: LogEntry) -> None:
        has_incident = bool(await incident_for_entry(self._log, entry))

        def closed(_: None) -> None:
            self.table.focus()

        await self.app.push_screen(
            EntryDetails(entry, self._clock.now(), has_incident=has_incident), closed
        )

    def action_timeline(self) -> None:
        entry = self.current
        if entry is not None:
            self.run_worker(self._show_timeline(entry), group="log-document", exit_on_error=False)

    async def _show_timeline(self, entry: LogEntry) -> None:
        ref = await incident_for_entry(self._log, entry)
        if not ref:
            self.notify("No incident is linked to this entry.", severity="warning")
            return
        try:
            timeline = await load_timeline(self._log, ref)
        except TimelineError as exc:
            self.notify(str(exc.args[0]), severity="warning")
            return
        number = f" #{timeline.number}" if timeline.number is not None else ""
        await self.app.push_screen(
            DocumentScreen(
                f"Timeline of {timeline.key}{number}",
                timeline_markdown(timeline),
                hint=f"oncall-tui log export {timeline.incident_id or timeline.key}",
            )
        )

    def action_handoff(self) -> None:
        self.run_worker(self._show_handoff(), group="log-document", exit_on_error=False)

    async def _show_handoff(self) -> None:
        snapshot = self._snapshot or self._engine.snapshot
        handoff = await load_handoff(
            self._log, snapshot, now=self._clock.now(), shift=HANDOFF_SHIFT
        )
        await self.app.push_screen(
            DocumentScreen("Shift handoff", handoff_markdown(handoff), hint="oncall-tui handoff")
        )

    def action_filter(self) -> None:
        self.query_one("#log-filter", Input).focus()

    def action_clear(self) -> None:
        box = self.query_one("#log-filter", Input)
        box.value = ""
        self._set_filter("")
        self.table.focus()

    @on(Input.Submitted, "#log-filter")
    def _filter_submitted(self, message: Input.Submitted) -> None:
        self._set_filter(message.value)
        self.table.focus()

    def _set_filter(self, line: str) -> None:
        wanted = parse_log_filter(line)
        if wanted == self._filter:
            return
        self._filter = wanted
        self._note = ""
        self.refresh_bindings()
        self.reload()
