"""Incident details, and how incidents are worded everywhere in the dashboard.

The details screen shows one incident as it was when `enter` was pressed, then fills in what
needs a round trip: its notes (from PagerDuty), its log entries (from the local log), and the
Alertmanager group it came from (the alerts whose group key hashes to its dedup key). Every
value from the vendor or from alert labels is plain text, never markup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol

from rich.console import RenderableType
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
from oncall_tui.models import (
    ActionStatus,
    Alert,
    Incident,
    IncidentNote,
    LogEntry,
    OnCall,
    Snapshot,
)
from oncall_tui.ui.footer import KeyFooter
from oncall_tui.ui.notify import BELL, Notifier, osc9, osc777
from oncall_tui.ui.timefmt import local, relative

UNACKNOWLEDGED = frozenset({"triggered", "open"})  # PagerDuty, Opsgenie
STATUS_STYLE = {
    "triggered": "bold red",
    "open": "bold red",
    "closed": "green",
    "acknowledged": "yellow",
    "resolved": "green",
}
URGENCY_STYLE = {"high": "bold", "low": "dim"}
ACTION_GLYPH = {ActionStatus.PENDING: "…", ActionStatus.DONE: "✓", ActionStatus.FAILED: "✗"}
ACTION_STYLE = {
    ActionStatus.PENDING: "bold yellow",
    ActionStatus.DONE: "bold green",
    ActionStatus.FAILED: "bold red",
}
_STATUS_WORD = {"acknowledged": "acked"}
_STATUS_RANK = {"triggered": 0, "open": 0, "acknowledged": 1, "resolved": 3, "closed": 3}
LOG_LIMIT = 50


class IncidentsEngine(Protocol):
    """What the incident views need from the engine (the real Engine satisfies it)."""

    config: Config
    read_only: bool

    def alerts_for_incident(self, incident: Incident) -> list[Alert]: ...

    async def incident_notes(self, incident: Incident) -> list[IncidentNote]: ...

    async def reassign_targets(self, query: str = "") -> list[tuple[str, str, str]]: ...

    async def log_entries(self, **filters: Any) -> list[LogEntry]: ...


def pagerduty_on(config: Config) -> bool:
    """The engine polls PagerDuty only with an API token; without one the views say so."""
    return config.pagerduty is not None and config.pagerduty.api_token is not None


def incidents_on(config: Config) -> bool:
    """PagerDuty or Opsgenie (with its API key): the Incidents view shows both side by side."""
    return pagerduty_on(config) or (
        config.opsgenie is not None and config.opsgenie.api_key is not None
    )


def urgency_text(incident: Incident) -> str:
    """PagerDuty's urgency, or Opsgenie's priority (P1-P5) where there is no urgency."""
    return incident.urgency or incident.priority or "—"


def incident_ref(incident: Incident) -> str:
    """`#12` for PagerDuty, `OG#12` for Opsgenie: the number each system's own UI shows."""
    if incident.number is None:
        return ""
    return f"{'OG' if incident.system == 'opsgenie' else ''}#{incident.number}"


# -- wording ---------------------------------------------------------------------------------


def status_word(status: str) -> str:
    """Fits the status column at 80 columns; the full word is in the details."""
    return _STATUS_WORD.get(status, status)


def level_text(level: int | None) -> str:
    return "—" if level is None else f"L{level}"


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _pressing(incident: Incident) -> int:
    """0 for what must be seen first: PagerDuty's high urgency and Opsgenie's P1, then P2,
    then everything else (PagerDuty's low urgency ranks with Opsgenie's P3)."""
    if incident.urgency == "high" or incident.priority == "P1":
        return 0
    if incident.priority == "P2":
        return 1
    return 2


def sort_incidents(incidents: Iterable[Incident]) -> list[Incident]:
    """Triggered first, then acknowledged, then recently resolved; most pressing (urgency or
    priority), then newest first."""
    return sorted(
        incidents,
        key=lambda i: (
            _STATUS_RANK.get(i.status, 2),
            _pressing(i),
            -i.created_at.timestamp(),
            i.key,
        ),
    )


def describe_incident(incident: Incident, now: datetime) -> str:
    """One line naming the incident as a confirmation lists it."""
    number = f"{incident_ref(incident)} " if incident.number is not None else ""
    service = f" ({incident.service})" if incident.service else ""
    who = incident.assignee or "nobody"
    level = level_text(incident.escalation_level)
    opened = relative(incident.created_at, now)
    return (
        f"{number}{incident.title}{service} — {incident.status}, {urgency_text(incident)} urgency, "
        f"{who}, {level}, opened {opened}"
    )


def covers(oncall: OnCall, now: datetime) -> bool:
    return (oncall.start is None or oncall.start <= now) and (
        oncall.end is None or now < oncall.end
    )


def on_call_at(oncalls: Sequence[OnCall], policy_id: str, level: int, now: datetime) -> list[str]:
    """Who is on call now at one level of one escalation policy."""
    return list(
        dict.fromkeys(
            o.user
            for o in oncalls
            if o.policy_id == policy_id and o.level == level and covers(o, now)
        )
    )


def incidents_raised(notifier: Notifier, incidents: Sequence[Incident]) -> None:
    """In-app notification, bell and desktop notification for new incidents, per `notify:`."""
    if not incidents:
        return
    count = len(incidents)
    high = [i for i in incidents if i.urgency == "high"]
    title = f"{count} new {'high-urgency ' if high else ''}incident{'s' if count != 1 else ''}"
    lines = []
    for incident in incidents[:3]:
        number = f"#{incident.number} " if incident.number is not None else ""
        service = f" ({incident.service})" if incident.service else ""
        who = f", paging {incident.assignee}" if incident.assignee else ""
        lines.append(f"{number}{incident.title}{service}{who}")
    if count > 3:
        lines.append(f"and {count - 3} more")
    body = "\n".join(lines)
    notifier.app.notify(
        body, title=title, severity="error" if high else "warning", timeout=15, markup=False
    )
    if notifier.config.bell:
        notifier.write(BELL)
    if notifier.config.desktop:
        notifier.write(osc9(f"{title}: {lines[0]}"))
        notifier.write(osc777(title, body.replace("\n", " · ")))


# -- the screen ------------------------------------------------------------------------------


def _pairs(title: str, items: Sequence[tuple[str, str | Text]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, min_width=16)
    table.add_column(overflow="fold")
    table.title = title
    table.title_justify = "left"
    table.title_style = "bold underline"
    for name, value in items:
        table.add_row(Text(name), value if isinstance(value, Text) else Text(value))
    return table


def overview_section(incident: Incident, snapshot: Snapshot, now: datetime) -> Table:
    def when(moment: datetime | None) -> str:
        return "—" if moment is None else f"{local(moment, now)} ({relative(moment, now)})"

    level = incident.escalation_level
    on_call = on_call_at(snapshot.oncalls, incident.escalation_policy_id, level or 0, now)
    level_line = level_text(level)
    if on_call:
        level_line += f" (on call now: {', '.join(on_call)})"
    return _pairs(
        "Incident",
        [
            ("status", Text(incident.status, style=STATUS_STYLE.get(incident.status, ""))),
            ("urgency", incident.urgency + (f", {incident.priority}" if incident.priority else "")),
            ("service", incident.service or "—"),
            ("assigned to", incident.assignee or "nobody"),
            ("acknowledged by", ", ".join(incident.acknowledged_by) or "nobody yet"),
            ("escalation", incident.escalation_policy or "—"),
            ("level", level_line),
            ("opened", when(incident.created_at)),
            ("last change", when(incident.last_change_at)),
            ("system", f"{incident.system} {incident.id}"),
            ("link", incident.url or "—"),
        ],
    )


def alerts_section(incident: Incident, alerts: Sequence[Alert], now: datetime) -> Table:
    rows: list[tuple[str, str | Text]] = [("dedup key", incident.dedup_key or "—")]
    if alerts:
        common = dict(alerts[0].labels)
        for alert in alerts[1:]:
            common = {k: v for k, v in common.items() if alert.labels.get(k) == v}
        group = ", ".join(f"{k}={v}" for k, v in sorted(common.items()))
        rows.append(("group", group or "—"))
        rows.append(("cluster", ", ".join(sorted({a.cluster for a in alerts}))))
        for alert in alerts:
            where = alert.labels.get("instance") or alert.labels.get("service", "")
            line = Text(f"{alert.state.value:<9} ")
            line.append(f"{alert.alertname} {where}".strip(), style="bold")
            line.append(f" since {relative(alert.starts_at, now)}  {alert.summary}")
            rows.append(("alert", line))
    else:
        rows.append(("alerts", "no Alertmanager alert links to this incident now"))
    return _pairs(f"Alertmanager group ({len(alerts)} alerts)", rows)


def notes_section(notes: Sequence[IncidentNote] | None, error: str, now: datetime) -> Table:
    if error:
        return _pairs("Notes", [("—", Text(f"could not load: {error}", style="red"))])
    if notes is None:
        return _pairs("Notes", [("—", Text("loading…", style="dim"))])
    rows: list[tuple[str, str | Text]] = [
        (local(n.created_at, now), Text(f"{n.user}: {n.content}")) for n in notes
    ]
    return _pairs(f"Notes ({len(rows)})", rows or [("—", "no notes")])


def log_section(entries: Sequence[LogEntry] | None, error: str, now: datetime) -> Table:
    if error:
        return _pairs("Log", [("—", Text(f"could not read the log: {error}", style="red"))])
    if entries is None:
        return _pairs("Log", [("—", Text("loading…", style="dim"))])
    rows: list[tuple[str, str | Text]] = []
    for entry in entries:
        actor = f" ({entry.actor})" if entry.actor else ""
        rows.append((local(entry.at, now), Text(f"{entry.kind}: {entry.summary}{actor}")))
    return _pairs(f"Log ({len(rows)}, oldest first)", rows or [("—", "nothing logged")])


class IncidentDetailsScreen(Screen[None]):
    """One incident in full; escape goes back to the list."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="details-back"),
        # The view's keys and ids, so a remap applies here too; each goes back to the list,
        # where the row shows the action's progress.
        Binding("a", "act('acknowledge')", "Ack", id="incidents-acknowledge"),
        Binding("r", "act('resolve')", "Resolve", id="incidents-resolve"),
        Binding("e", "act('escalate')", "Escalate", id="incidents-escalate"),
        Binding("n", "act('note')", "Note", id="incidents-note"),
        Binding("R", "act('reassign')", "Reassign", id="incidents-reassign"),
        Binding("j,down", "scroll_down", "Down", show=False, id="cursor-down"),
        Binding("k,up", "scroll_up", "Up", show=False, id="cursor-up"),
        Binding("g,home", "scroll_home", "Top", show=False, id="cursor-top"),
        Binding("G,end", "scroll_end", "Bottom", show=False, id="cursor-bottom"),
    ]

    def __init__(
        self,
        incident: Incident,
        engine: IncidentsEngine,
        clock: Clock,
        snapshot: Snapshot,
        *,
        act: Callable[[str, Incident], None] | None = None,
    ) -> None:
        super().__init__()
        self._act = act
        self.incident = incident
        self._engine = engine
        self._clock = clock
        self._snapshot = snapshot
        self.notes: list[IncidentNote] | None = None
        self.entries: list[LogEntry] | None = None

    def compose(self) -> ComposeResult:
        incident, now = self.incident, self._clock.now()
        title = Text(f"#{incident.number} " if incident.number is not None else "", style="bold")
        title.append(incident.title, style="bold")
        yield Static(title, id="incident-details-title", markup=False)
        with VerticalScroll(id="incident-details-body"):
            yield self._section("overview", overview_section(incident, self._snapshot, now))
            alerts = self._engine.alerts_for_incident(incident)
            yield self._section("alerts", alerts_section(incident, alerts, now))
            yield self._section("notes", notes_section(None, "", now))
            yield self._section("log", log_section(None, "", now))
        yield KeyFooter()

    @staticmethod
    def _section(name: str, body: RenderableType) -> Static:
        return Static(body, classes="details-section", id=f"incident-details-{name}")

    def on_mount(self) -> None:
        self._body().focus()
        self._load_notes()
        self._load_log()

    @work(group="incident-details-notes", exclusive=True, exit_on_error=False)
    async def _load_notes(self) -> None:
        error = ""
        try:
            self.notes = await self._engine.incident_notes(self.incident)
        except Exception as exc:  # shown where the notes would be; never raised into the UI
            error = str(exc) or type(exc).__name__
        section = notes_section(self.notes, error, self._clock.now())
        self.query_one("#incident-details-notes", Static).update(section)

    @work(group="incident-details-log", exclusive=True, exit_on_error=False)
    async def _load_log(self) -> None:
        error = ""
        try:
            # The newest entries, shown in the order they happened.
            found = await self._engine.log_entries(text=self.incident.id, limit=LOG_LIMIT)
            self.entries = list(reversed(found))
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        section = log_section(self.entries, error, self._clock.now())
        self.query_one("#incident-details-log", Static).update(section)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "act":
            return True
        if self._act is None or self._engine.read_only:
            return False
        incident = self.incident
        if not incident.is_open:
            return None
        if parameters == ("acknowledge",) and incident.status not in UNACKNOWLEDGED:
            return None
        if parameters == ("reassign",) and incident.system != "pagerduty":
            return None
        return True

    def action_act(self, verb: str) -> None:
        if self._act is None or self.check_action("act", (verb,)) is not True:
            return
        self.app.pop_screen()
        self._act(verb, self.incident)

    def _body(self) -> VerticalScroll:
        return self.query_one("#incident-details-body", VerticalScroll)

    def action_scroll_down(self) -> None:
        self._body().scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self._body().scroll_up(animate=False)

    def action_scroll_home(self) -> None:
        self._body().scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self._body().scroll_end(animate=False)
