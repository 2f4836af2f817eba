"""The Alerts view: grouped alerts, the filter, marks, details, silence and acknowledge.

The view owns the keys that act on alerts; the table under it owns the cursor. Actions apply to
the marked alerts, or to the alert under the cursor when none is marked, and are captured by
alert key at key press, so a refresh that moves the cursor cannot redirect them. `a` acknowledges
everywhere the alerts reached: their linked incidents and, per `acknowledge.silence_alerts`, a
silence on their stable labels, after one confirmation that lists both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import Input, Static

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine import ActionRequest, Engine
from oncall_tui.matchers import AlertFilter, stable_matchers
from oncall_tui.models import Alert, AlertState, Incident, Matcher, Snapshot
from oncall_tui.ui.alert_table import AlertTable
from oncall_tui.ui.confirm import ConfirmScreen
from oncall_tui.ui.incident_details import UNACKNOWLEDGED, describe_incident
from oncall_tui.ui.messages import SubmitActions

# An acknowledged alert is silenced "until it resolves"; Alertmanager silences need an end, so
# the silence lasts a shift and says why (`until_resolved` lets the engine expire it earlier).
ACK_SILENCE_SECONDS = 12 * 3600
_SYSTEM = {"pagerduty": "PagerDuty", "opsgenie": "Opsgenie"}
# Alerts whose filter text is prepared per turn of the event loop (about 2 ms at 1,000).
SEARCH_SLICE = 1000
NOTHING_TO_ACKNOWLEDGE = (
    "Nothing to acknowledge: no open incident links to these alerts, and "
    "acknowledge.silence_alerts is off (press s to silence them)."
)


@dataclass(frozen=True, slots=True)
class AcknowledgePlan:
    """What `a` on alerts will do: incidents to acknowledge, silences to create."""

    alerts: tuple[Alert, ...]
    incidents: tuple[Incident, ...]  # open and not yet acknowledged
    already: tuple[Incident, ...]  # linked, but already acknowledged
    silences: tuple[tuple[str, tuple[Matcher, ...]], ...]  # (cluster, matchers)
    requests: tuple[ActionRequest, ...]

    @property
    def title(self) -> str:
        count = len(self.alerts)
        return f"Acknowledge {count} alert{'s' if count != 1 else ''}?"

    @property
    def description(self) -> str:
        parts = []
        if self.incidents:
            parts.append(f"acknowledge {len(self.incidents)} incident(s)")
        if self.silences:
            parts.append(f"create {len(self.silences)} silence(s)")
        return ("; ".join(parts) or "nothing").capitalize()

    def body(self, now: datetime) -> str:
        lines: list[str] = []
        if self.incidents:
            systems = " and ".join(
                sorted({_SYSTEM.get(i.system, i.system) for i in self.incidents})
            )
            lines.append(f"Acknowledge in {systems} ({len(self.incidents)}):")
            lines.extend(f"  {describe_incident(i, now)}" for i in self.incidents)
        else:
            lines.append("No open incident to acknowledge is linked to these alerts.")
        for incident in self.already:
            number = f"#{incident.number} " if incident.number is not None else ""
            who = ", ".join(incident.acknowledged_by) or "someone"
            lines.append(f"  ({number}already acknowledged by {who})")
        if self.silences:
            hours = ACK_SILENCE_SECONDS // 3600
            lines.append("")
            lines.append(
                f"Silence in Alertmanager ({len(self.silences)}), until the alert resolves "
                f"(at most {hours}h):"
            )
            lines.extend(
                f"  [{cluster}] {', '.join(str(m) for m in matchers)}"
                for cluster, matchers in self.silences
            )
        return "\n".join(lines)


def acknowledge_plan(
    alerts: Sequence[Alert], linked: Sequence[Incident], config: Config
) -> AcknowledgePlan:
    """Acknowledge the incidents the alerts reached and, per config, silence the alerts."""
    incidents = {i.key: i for i in linked if i.is_open}
    fresh = tuple(i for i in incidents.values() if i.status in UNACKNOWLEDGED)
    already = tuple(i for i in incidents.values() if i.status not in UNACKNOWLEDGED)
    requests = [ActionRequest("incident.acknowledge", i.key) for i in fresh]
    silences: dict[tuple[str, tuple[Matcher, ...]], None] = {}
    if config.acknowledge.silence_alerts:
        for alert in alerts:
            if alert.state == AlertState.ACTIVE:
                matchers = stable_matchers(alert, config.acknowledge.stable_labels)
                silences.setdefault((alert.cluster, matchers), None)
    refs = " ".join(f"#{i.number}" for i in incidents.values() if i.number is not None)
    comment = f"acknowledged by {config.actor}" + (f" (incident {refs})" if refs else "")
    for cluster, matchers in silences:
        params = {
            "cluster": cluster,
            "matchers": [str(m) for m in matchers],
            "duration_seconds": ACK_SILENCE_SECONDS,
            "comment": comment,
            "until_resolved": True,
        }
        requests.append(ActionRequest("silence.create", cluster, params))
    return AcknowledgePlan(tuple(alerts), fresh, already, tuple(silences), tuple(requests))


class FilterInput(Input):
    """The filter box; `ctrl+a` is left to tmux (its default prefix), so `home` goes to start."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bindings.key_to_bindings.pop("ctrl+a", None)


class AlertsView(Widget):
    """View 1: every alert of every Alertmanager cluster, grouped by alertname and service."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "details",
            "Details",
            id="details",
            tooltip="Every label and annotation, runbook, receivers, linked incidents",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            id="alerts-filter",
            tooltip='Filter by matchers (service=~"pay.*") or by text',
        ),
        Binding("space", "mark", "Mark", id="mark", tooltip="Mark or unmark the alert"),
        Binding(
            "s",
            "silence",
            "Silence",
            id="alerts-silence",
            tooltip="Silence the marked alerts (or this one), with a preview of what it matches",
        ),
        Binding(
            "a",
            "acknowledge",
            "Ack",
            id="alerts-acknowledge",
            tooltip="Acknowledge the linked incidents and silence the alerts, after confirming",
        ),
        Binding(
            "i",
            "toggle_suppressed",
            # Alertmanager's word for silenced or inhibited; short enough for an 80-column footer.
            "Muted",
            id="alerts-toggle-suppressed",
            tooltip="Show or hide silenced and inhibited (muted) alerts",
        ),
        Binding(
            "escape",
            "clear",
            "Clear",
            id="alerts-clear",
            tooltip="Clear the marks, then the filter",
        ),
    ]

    def __init__(self, engine: Engine, clock: Clock, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.engine = engine
        self.clock = clock
        self._polled = False
        self._stale: list[str] = []
        self._status_shown: Text | None = None

    def compose(self) -> ComposeResult:
        yield FilterInput(
            placeholder='matchers (severity="critical",service=~"pay.*") or text',
            id="alerts-filter",
        )
        yield AlertTable(self.clock, id="alerts-table")
        yield Static(id="alerts-status", markup=False)

    @property
    def table(self) -> AlertTable:
        return self.query_one("#alerts-table", AlertTable)

    @property
    def filter_input(self) -> FilterInput:
        return self.query_one("#alerts-filter", FilterInput)

    def on_mount(self) -> None:
        self._show_status()

    # -- data --------------------------------------------------------------------------------

    def update_snapshot(self, snapshot: Snapshot) -> None:
        self._polled = (
            self._polled
            or snapshot.restored
            or any(h.last_success is not None for h in snapshot.health if h.kind == "alertmanager")
        )
        # A down source leaves its last alerts on screen; say so where the alerts are.
        self._stale = [
            h.name for h in snapshot.health if h.kind == "alertmanager" and h.reachable is False
        ]
        if snapshot.restored:
            self._stale.insert(0, "restored snapshot")
        self.table.set_alerts(snapshot.alerts)
        self._show_status()

    def _show_status(self) -> None:
        table, model = self.table, self.table.model
        parts = [f"{model.shown} of {model.total} alerts"]
        if table.marks:
            parts.append(f"{len(table.marks)} marked")
        if model.hidden_suppressed and not model.show_suppressed:
            parts.append(f"{model.hidden_suppressed} silenced/inhibited hidden (i shows them)")
        elif model.show_suppressed:
            parts.append("showing silenced/inhibited (i hides them)")
        status = Text(" · ".join(parts))
        if self._stale:
            status.append(f" · stale: {', '.join(self._stale)}", style="bold yellow")
        if model.filter.error:
            status.append(f" · filter: {model.filter.error}", style="bold red")
        elif model.filter.active:
            kind = "matchers" if model.filter.matchers else "text"
            status.append(f" · filter ({kind}): ", style="bold")
            status.append(model.filter.text)
        if status != self._status_shown:
            self._status_shown = status
            # The status line is one line high: no re-layout of the screen for new text.
            self.query_one("#alerts-status", Static).update(status, layout=False)
        table.empty_message = self._empty_message()
        self.refresh_bindings()

    def _empty_message(self) -> str:
        model = self.table.model
        if not self._polled:
            return "Waiting for the first refresh…"
        if model.total == 0:
            return "No alerts. All quiet."
        if model.filter.text:
            return "No alert matches the filter (escape clears it)"
        return "No active alerts; silenced/inhibited are hidden (i shows them)"

    # -- keys --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        changes = action in {"silence", "acknowledge"}
        if changes and self.engine.read_only:
            return False
        if action in {"details", "mark"}:
            return True if self.table.cursor_alert is not None else None
        if changes:
            return True if self._targets() else None
        if action == "clear":
            return bool(self.table.marks or self.table.model.filter.text or self._filtering())
        return True

    def _filtering(self) -> bool:
        return self.filter_input.has_focus

    def _targets(self) -> list[Alert]:
        marked = self.table.marked_alerts()
        if marked:
            return marked
        cursor = self.table.cursor_alert
        return [cursor] if cursor is not None else []

    @on(AlertTable.CursorMoved)
    def _cursor_moved(self) -> None:
        self.refresh_bindings()

    def action_details(self) -> None:
        # Screens opened by a key are imported when first opened: not on the first frame's path.
        from oncall_tui.ui.details import AlertDetailsScreen

        alert = self.table.cursor_alert
        if alert is not None:
            self.app.push_screen(
                AlertDetailsScreen(alert, self.engine.config, self.clock, engine=self.engine)
            )

    def action_mark(self) -> None:
        self.table.toggle_mark()
        self.table.action_cursor_down()
        self._show_status()

    def action_toggle_suppressed(self) -> None:
        model = self.table.model
        model.show_suppressed = not model.show_suppressed
        self.table.refilter()
        self._show_status()

    def action_filter(self) -> None:
        box = self.filter_input
        box.add_class("-open")
        box.focus()
        # After the box is drawn, while the operator starts to type, in slices that keep
        # the screen responsive (a first keystroke would build what is left at once).
        self.call_after_refresh(self._prepare_text_search)

    def _prepare_text_search(self) -> None:
        if not self.table.model.prepare_text_search(budget=SEARCH_SLICE):
            self.set_timer(0.001, self._prepare_text_search)

    def action_clear(self) -> None:
        if self._filtering() or not self.table.marks:
            self._set_filter("")
            self.filter_input.remove_class("-open")
            self.table.focus()
        else:
            self.table.clear_marks()
        self._show_status()

    def _set_filter(self, text: str) -> None:
        box = self.filter_input
        if box.value != text:
            with box.prevent(Input.Changed):
                box.value = text
        model = self.table.model
        parsed = AlertFilter.parse(text)
        if parsed == model.filter:
            return
        model.filter = parsed
        self.table.refilter()

    @on(Input.Changed, "#alerts-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._set_filter(event.value)
        self._show_status()

    @on(Input.Submitted, "#alerts-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.filter_input.remove_class("-open")
        self.table.focus()
        self._show_status()

    def action_acknowledge(self) -> None:
        targets = self._targets()
        if not targets or self.engine.read_only:
            return
        plan = acknowledge_plan(
            targets,
            [i for alert in targets for i in self.engine.incidents_for_alert(alert)],
            self.engine.config,
        )
        if not plan.requests:
            self.app.notify(NOTHING_TO_ACKNOWLEDGE, title="Acknowledge", timeout=8)
            return
        keys = {a.key for a in targets}

        def done(confirmed: bool | None) -> None:
            if not confirmed:
                return
            self.post_message(SubmitActions(plan.requests, plan.description))
            self.table.marks.difference_update(keys)
            self.table.refresh()
            self._show_status()

        self.app.push_screen(
            ConfirmScreen(plan.title, plan.body(self.clock.now()), confirm_label="Acknowledge"),
            done,
        )

    def action_silence(self) -> None:
        targets = self._targets()
        if not targets or self.engine.read_only:
            return
        keys = {a.key for a in targets}

        def submitted(requests: list[ActionRequest] | None) -> None:
            if not requests:
                return
            count = len(requests)
            what = f"{count} silence{'s' if count != 1 else ''}"
            self.post_message(SubmitActions(requests, f"Create {what} for {len(keys)} alert(s)"))
            self.table.marks.difference_update(keys)
            self.table.refresh()
            self._show_status()

        from oncall_tui.ui.silence_form import SilenceForm

        self.app.push_screen(SilenceForm(self.engine, self.clock, alerts=targets), submitted)
