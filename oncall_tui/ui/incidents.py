"""The Incidents view: every open PagerDuty incident, who has it, how far it has escalated.

Rows are keyed by `Incident.key` and updated in place, so the cursor and the marks stay on the
same incidents across refreshes and webhook pushes. Keys act on the marked incidents, or on the
cursor's incident when none is marked, and capture their keys at key press: `a` acknowledges at
once, `r` resolves and `e` escalates after a confirmation that says exactly what happens, `n`
adds a note and `R` reassigns through small forms. Each row shows the state of the last action
taken on it (pending, done, failed), so the operator sees their key press land.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable, Static

from oncall_tui.clock import Clock
from oncall_tui.engine import ActionRequest
from oncall_tui.models import Action, Incident, Snapshot
from oncall_tui.ui.confirm import ConfirmScreen
from oncall_tui.ui.incident_details import (
    ACTION_GLYPH,
    ACTION_STYLE,
    STATUS_STYLE,
    UNACKNOWLEDGED,
    URGENCY_STYLE,
    IncidentDetailsScreen,
    IncidentsEngine,
    clip,
    describe_incident,
    incident_ref,
    incidents_on,
    level_text,
    on_call_at,
    sort_incidents,
    status_word,
    urgency_text,
)
from oncall_tui.ui.incident_forms import NoteForm, ReassignForm
from oncall_tui.ui.messages import SubmitActions
from oncall_tui.ui.placeholders import not_configured_text
from oncall_tui.ui.silences import SilenceTable
from oncall_tui.ui.timefmt import local, span

# Fixed columns: marks/action glyphs, status, urgency, level, age (DataTable adds 2 per column).
_FIXED = (2, 9, 4, 3, 5)
WIDE = 120  # from here on the escalation policy gets its own column


class IncidentTable(SilenceTable):
    """A keyed row table with the shared cursor keys and no own `enter` (the view's `details`)."""


class IncidentsView(Widget):
    """View 2: incidents from PagerDuty, with acknowledge, resolve, escalate, note, reassign."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "a",
            "acknowledge",
            "Ack",
            id="incidents-acknowledge",
            tooltip="Acknowledge the marked incidents (or this one): stops the escalation",
        ),
        Binding(
            "r",
            "resolve",
            "Resolve",
            id="incidents-resolve",
            tooltip="Resolve the marked incidents (or this one), after confirming",
        ),
        Binding(
            "e",
            "escalate",
            "Escalate",
            id="incidents-escalate",
            tooltip="Escalate to the next level, after saying who will be paged",
        ),
        Binding("n", "note", "Note", id="incidents-note", tooltip="Add a note to the incident(s)"),
        Binding(
            "R",
            "reassign",
            "Reassign",
            id="incidents-reassign",
            tooltip="Reassign to a user or an escalation policy",
        ),
        Binding("space", "mark", "Mark", id="mark", tooltip="Mark or unmark the incident"),
        Binding(
            "enter",
            "details",
            "Details",
            id="details",
            tooltip="Alerts of the incident, notes, log entries, linked Alertmanager group",
        ),
        Binding("escape", "clear", "Clear", id="incidents-clear", tooltip="Clear the marks"),
    ]

    def __init__(self, engine: IncidentsEngine, clock: Clock, *, id: str = "incidents") -> None:
        super().__init__(id=id, classes="" if incidents_on(engine.config) else "-unconfigured")
        self._engine = engine
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._incidents: dict[str, Incident] = {}
        self._order: list[str] = []
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._width = 0
        self.marked: set[str] = set()
        self.actions: dict[str, Action] = {}  # incident key -> the last action taken on it

    @property
    def configured(self) -> bool:
        return incidents_on(self._engine.config)

    def compose(self) -> ComposeResult:
        if not self.configured:
            text = not_configured_text("incidents", self._engine.config)
            yield Static(text, classes="placeholder-text")
            return
        yield Static("", id="incidents-status")
        yield IncidentTable(id="incidents-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="incidents-action")

    def on_mount(self) -> None:
        if self.configured:
            self._render_rows()

    def on_resize(self) -> None:
        if self.configured and self.size.width != self._width:
            self._render_rows()

    @property
    def table(self) -> IncidentTable:
        return self.query_one("#incidents-table", IncidentTable)

    # -- data ----------------------------------------------------------------------------------

    def update_snapshot(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        if self.is_mounted and self.configured:
            self._render_rows()

    def action_changed(self, action: Action) -> None:
        """An action on an incident moved to pending, done or failed: show it on its row."""
        if not action.kind.startswith("incident.") or action.target not in self._incidents:
            return
        self.actions[action.target] = action
        if self.is_mounted and self.configured:
            self._render_rows()

    def tick(self) -> None:
        """Ages move on with the clock."""
        if self.configured and self._snapshot is not None:
            self._render_rows()

    def _columns(self, width: int) -> list[tuple[str, str, int]]:
        wide = width >= WIDE
        flexible = 3 + (1 if wide else 0)
        used = sum(_FIXED) + 2 * (len(_FIXED) + flexible) + 2  # + the scrollbar
        rest = max(width - used, 30)
        # The title says what is wrong; names rarely need more than 20 columns.
        service = assignee = min(max(rest // 5, 8), 20)
        policy = min(max(rest // 6, 10), 22) if wide else 0
        title = rest - service - assignee - policy
        columns = [
            ("", "glyph", _FIXED[0]),
            ("status", "status", _FIXED[1]),
            ("urg", "urgency", _FIXED[2]),
            ("lvl", "level", _FIXED[3]),
            ("age", "age", _FIXED[4]),
            ("incident", "title", title),
            ("service", "service", service),
            ("assignee", "assignee", assignee),
        ]
        if wide:
            columns.append(("escalation policy", "policy", policy))
        return columns

    def _cells_of(self, incident: Incident, now: datetime, widths: dict[str, int]) -> list[Text]:
        dim = "" if incident.is_open else "dim"
        glyph = Text("●" if incident.key in self.marked else " ", style="bold")
        last = self.actions.get(incident.key)
        if last is not None:
            glyph.append(ACTION_GLYPH[last.status], style=ACTION_STYLE[last.status])
        title = f"{incident_ref(incident)} " if incident.number is not None else ""
        cells = [
            glyph,
            Text(status_word(incident.status), style=STATUS_STYLE.get(incident.status, "")),
            Text(urgency_text(incident), style=dim or URGENCY_STYLE.get(incident.urgency, "")),
            Text(level_text(incident.escalation_level), style=dim),
            Text(span(now - incident.created_at), style=dim),
            Text(clip(title + incident.title, widths["title"]), style=dim),
            Text(clip(incident.service, widths["service"]), style=dim),
            Text(clip(incident.assignee or "nobody", widths["assignee"]), style=dim),
        ]
        if "policy" in widths:
            cells.append(Text(clip(incident.escalation_policy, widths["policy"]), style=dim))
        return cells

    def _render_rows(self) -> None:
        table = self.table
        now = self._clock.now()
        incidents = sort_incidents(self._snapshot.incidents if self._snapshot else ())
        columns = self._columns(self.size.width or 80)
        widths = {key: width for _label, key, width in columns}
        relayout = self.size.width != self._width or len(table.columns) != len(columns)
        cursor_key = self.cursor_key
        new_order = [i.key for i in incidents]
        self._incidents = {i.key: i for i in incidents}
        new_cells = {i.key: tuple(self._cells_of(i, now, widths)) for i in incidents}
        self.marked &= set(new_order)
        self.actions = {k: a for k, a in self.actions.items() if k in self._incidents}
        with self.app.batch_update():
            if relayout:
                self._width = self.size.width
                table.clear(columns=True)
                for label, key, width in columns:
                    table.add_column(label, width=width, key=key)
                self._order = []
            if new_order != self._order:
                old_index = table.cursor_row
                table.clear()
                for key in new_order:
                    table.add_row(*new_cells[key], key=key)
                if cursor_key in self._incidents:
                    table.move_cursor(row=table.get_row_index(cursor_key), animate=False)
                elif new_order:
                    table.move_cursor(row=min(old_index, len(new_order) - 1), animate=False)
            else:
                keys = [key for _label, key, _width in columns]
                for key in new_order:
                    old = self._cells.get(key)
                    for index, cell in enumerate(new_cells[key]):
                        if old is None or old[index].markup != cell.markup:
                            table.update_cell(key, keys[index], cell)
        self._order = new_order
        self._cells = new_cells
        self._update_status()
        self.refresh_bindings()

    def _update_status(self) -> None:
        snapshot = self._snapshot
        health = snapshot.health_of("pagerduty") if snapshot else None
        incidents = list(self._incidents.values())
        counts = Counter(i.status for i in incidents)
        status = Text()
        # Staleness first: at 80 columns the end of the line may be cut.
        if snapshot is not None and snapshot.restored:
            status.append("stale: restored snapshot", style="bold yellow")
        elif health is not None and health.reachable is False:
            # The header carries the error; here, how old what is shown is.
            since = health.stale_since or health.last_success
            when = f" since {local(since, self._clock.now())}" if since else ""
            status.append(f"stale: pagerduty{when}", style="bold yellow")
        if status:
            status.append(" · ")
        never_polled = health is None or (health.last_success is None and health.reachable is None)
        if never_polled and not (snapshot and snapshot.restored):
            status.append("Waiting for the first refresh from PagerDuty…")
            parts = []
        elif not incidents:
            parts = ["No open incidents. All quiet."]
        else:
            waiting = counts["triggered"] + counts["open"]
            parts = [f"{waiting} unacknowledged", f"{counts['acknowledged']} acknowledged"]
            if ended := counts["resolved"] + counts["closed"]:
                parts.append(f"{ended} resolved lately")
            if self.marked:
                parts.append(f"{len(self.marked)} marked")
        status.append(" · ".join(parts))
        self.query_one("#incidents-status", Static).update(status)
        self._show_cursor_action()

    def _show_cursor_action(self) -> None:
        line = Text()
        key = self.cursor_key
        action = self.actions.get(key) if key else None
        if action is not None:
            verb = action.kind.removeprefix("incident.")
            line.append(f"{verb}: {action.status.value}", style=ACTION_STYLE[action.status])
            if action.result:
                line.append(f" — {action.result}")
        self.query_one("#incidents-action", Static).update(line)

    # -- cursor and targets --------------------------------------------------------------------

    @property
    def cursor_key(self) -> str | None:
        if not self.configured or not self._order:
            return None
        row = self.table.cursor_row
        return self._order[row] if 0 <= row < len(self._order) else None

    def targets(self) -> list[Incident]:
        """The marked incidents, or the cursor's incident when none is marked, in row order."""
        keys = [k for k in self._order if k in self.marked]
        if not keys and (cursor := self.cursor_key) is not None:
            keys = [cursor]
        return [self._incidents[k] for k in keys]

    def _open_targets(self) -> list[Incident]:
        return [i for i in self.targets() if i.is_open]

    @on(DataTable.RowHighlighted)
    def _cursor_moved(self) -> None:
        if self.configured:
            self._show_cursor_action()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in {"acknowledge", "resolve", "escalate", "note", "reassign"}:
            if self._engine.read_only or not self.configured:
                return False
            targets = self._open_targets()
            if action == "acknowledge":
                targets = [i for i in targets if i.status in UNACKNOWLEDGED]
            elif action == "reassign":
                targets = [i for i in targets if i.system == "pagerduty"]
            return True if targets else None
        if action in {"mark", "details"}:
            return True if self.cursor_key is not None else None
        if action == "clear":
            return True if self.marked else None
        return True

    # -- actions -------------------------------------------------------------------------------

    def _submit(self, requests: Sequence[ActionRequest], description: str) -> None:
        self.marked.difference_update(r.target for r in requests)
        self.post_message(SubmitActions(requests, description))
        if self._snapshot is not None:
            self._render_rows()

    def action_mark(self) -> None:
        key = self.cursor_key
        if key is None:
            return
        self.marked.symmetric_difference_update({key})
        self.table.action_cursor_down()
        self._render_rows()

    def action_clear(self) -> None:
        if self.marked:
            self.marked.clear()
            self._render_rows()

    def action_details(self) -> None:
        key = self.cursor_key
        if key is None:
            return
        snapshot = self._snapshot or Snapshot(taken_at=self._clock.now())
        self.app.push_screen(
            IncidentDetailsScreen(
                self._incidents[key], self._engine, self._clock, snapshot, act=self.act_on
            )
        )

    def act_on(self, verb: str, incident: Incident) -> None:
        """Run one of the incident actions on `incident` (the details screen's keys)."""
        method = {
            "acknowledge": self.acknowledge,
            "resolve": self.resolve,
            "escalate": self.escalate,
            "note": self.note,
            "reassign": self.reassign,
        }[verb]
        method([incident])

    def action_acknowledge(self) -> None:
        self.acknowledge(self._open_targets())

    def action_resolve(self) -> None:
        self.resolve(self._open_targets())

    def action_escalate(self) -> None:
        self.escalate(self._open_targets())

    def action_note(self) -> None:
        self.note(self._open_targets())

    def action_reassign(self) -> None:
        self.reassign(self._open_targets())

    def acknowledge(self, incidents: Sequence[Incident]) -> None:
        targets = [i for i in incidents if i.status in UNACKNOWLEDGED]
        if not targets or self._engine.read_only:
            return
        requests = [ActionRequest("incident.acknowledge", i.key) for i in targets]
        self._submit(requests, f"Acknowledge {_count(targets)}")

    def resolve(self, incidents: Sequence[Incident]) -> None:
        targets = [i for i in incidents if i.is_open]
        if not targets or self._engine.read_only:
            return
        now = self._clock.now()
        body = "\n".join(f"{n}. {describe_incident(i, now)}" for n, i in enumerate(targets, 1))
        owners = sorted({"Opsgenie" if i.system == "opsgenie" else "PagerDuty" for i in targets})
        verb = "close them and stop" if len(owners) > 1 else "closes them and stops"
        body += (
            f"\n\n{' and '.join(owners)} {verb} paging; alerts that still fire will "
            "open a new incident."
        )
        requests = [ActionRequest("incident.resolve", i.key) for i in targets]

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self._submit(requests, f"Resolve {_count(targets)}")

        title = f"Resolve {_count(targets)}?"
        label = f"Resolve {len(targets)}"
        self.app.push_screen(ConfirmScreen(title, body, confirm_label=label, danger=True), done)

    def escalate(self, incidents: Sequence[Incident]) -> None:
        targets = [i for i in incidents if i.is_open]
        if not targets or self._engine.read_only:
            return
        now = self._clock.now()
        oncalls = self._snapshot.oncalls if self._snapshot else ()
        requests: list[ActionRequest] = []
        lines: list[str] = []
        for number, incident in enumerate(targets, 1):
            current = incident.escalation_level or 1
            levels = {o.level for o in oncalls if o.policy_id == incident.escalation_policy_id}
            lines.append(f"{number}. {describe_incident(incident, now)}")
            if incident.system == "opsgenie":
                # Opsgenie escalates to an escalation, not to a level.
                where = incident.escalation_policy or "the escalation it was routed to"
                lines.append(f"   escalate to {where}: Opsgenie notifies its next responders")
                requests.append(ActionRequest("incident.escalate", incident.key))
                continue
            if levels and current >= max(levels):
                lines.append(f"   already at the last level ({current}): not escalated")
                continue
            people = on_call_at(oncalls, incident.escalation_policy_id, current + 1, now)
            who = ", ".join(people) if people else "whoever is on call there"
            lines.append(f"   level {current} -> level {current + 1}: pages {who}")
            requests.append(
                ActionRequest("incident.escalate", incident.key, {"level": current + 1})
            )
        if not requests:
            self.app.notify(
                "\n".join(lines), title="Nothing to escalate", severity="warning", markup=False
            )
            return

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self._submit(requests, f"Escalate {_count(requests)}")

        title = f"Escalate {_count(requests)} to the next level?"
        label = f"Escalate {len(requests)}"
        self.app.push_screen(ConfirmScreen(title, "\n".join(lines), confirm_label=label), done)

    def note(self, incidents: Sequence[Incident]) -> None:
        targets = [i for i in incidents if i.is_open]
        if not targets or self._engine.read_only:
            return
        keys = [i.key for i in targets]

        def done(content: str | None) -> None:
            if content:
                requests = [ActionRequest("incident.note", k, {"content": content}) for k in keys]
                self._submit(requests, f"Add a note to {_count(keys)}")

        self.app.push_screen(NoteForm(targets, self._clock), done)

    def reassign(self, incidents: Sequence[Incident]) -> None:
        targets = [i for i in incidents if i.is_open and i.system == "pagerduty"]
        if not targets or self._engine.read_only:
            return
        keys = [i.key for i in targets]

        def done(choice: tuple[str, str, str] | None) -> None:
            if choice is None:
                return
            kind, target_id, name = choice
            params: dict[str, object]
            if kind == "user":
                params = {"user_ids": [target_id]}
            else:
                params = {"escalation_policy_id": target_id}
            requests = [ActionRequest("incident.reassign", k, params) for k in keys]
            self._submit(requests, f"Reassign {_count(keys)} to {name}")

        self.app.push_screen(ReassignForm(targets, self._engine.reassign_targets), done)


def _count(items: Sequence[object]) -> str:
    return f"{len(items)} incident{'s' if len(items) != 1 else ''}"
