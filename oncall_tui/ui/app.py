"""The dashboard app: the frame (header, views, footer), global keys, engine events, actions.

`make_app` is the one way to build it (the CLI and the tests both call it). The app reads no
files or environment and does not start or stop the engine: the CLI runs the engine around
`app.run_async()`. On mount it subscribes to the engine's events (delivered in this same event
loop) and turns them into messages, so a slow paint only ever renders the newest snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import ContentSwitcher

from oncall_tui import runtime
from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine import ActionRequest, Engine
from oncall_tui.events import (
    ActionChanged,
    AlertsRaised,
    EngineEvent,
    IncidentsRaised,
    LogAppended,
    SnapshotChanged,
)
from oncall_tui.models import Action, ActionStatus, Alert, Incident, LogEntry, Snapshot
from oncall_tui.ui.alerts import AlertsView
from oncall_tui.ui.commands import OperatorCommands, catalogue, node_commands
from oncall_tui.ui.footer import KeyFooter
from oncall_tui.ui.header import SourceBar, ViewBar
from oncall_tui.ui.incident_details import UNACKNOWLEDGED, covers, incidents_raised
from oncall_tui.ui.incidents import IncidentsView
from oncall_tui.ui.log_view import LogView
from oncall_tui.ui.messages import SubmitActions
from oncall_tui.ui.notify import Notifier
from oncall_tui.ui.oncall import OnCallOperator, OncallView
from oncall_tui.ui.silences import SilencesView
from oncall_tui.ui.statuspage import StatuspageView

VIEWS: tuple[tuple[str, str], ...] = (
    ("alerts", "Alerts"),
    ("incidents", "Incidents"),
    ("oncall", "On-call"),
    ("statuspage", "Status page"),
    ("silences", "Silences"),
    ("log", "Log"),
)


class SnapshotArrived(Message):
    """The engine has a new snapshot; an unprocessed older one is dropped in its favour."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotArrived)


class AlertsArrived(Message):
    def __init__(self, alerts: Sequence[Alert]) -> None:
        super().__init__()
        self.alerts = tuple(alerts)


class IncidentsArrived(Message):
    def __init__(self, incidents: Sequence[Incident]) -> None:
        super().__init__()
        self.incidents = tuple(incidents)


class LogArrived(Message):
    def __init__(self, entry: LogEntry) -> None:
        super().__init__()
        self.entry = entry


class ActionUpdated(Message):
    def __init__(self, action: Action) -> None:
        super().__init__()
        self.action = action


class OncallApp(App[None]):
    """One terminal for the night: alerts, silences, and (later) incidents and status page."""

    TITLE = "oncall-tui"
    CSS_PATH: ClassVar[list[str | PurePath]] = [
        Path(__file__).with_name(name) for name in ("app.tcss", "incidents.tcss", "oncall.tcss")
    ]
    COMMANDS: ClassVar = App.COMMANDS | {OperatorCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(
                str(n),
                f"show_view('{view}')",
                title,
                show=False,
                id=f"view-{view}",
                tooltip=f"Show the {title} view",
            )
            for n, (view, title) in enumerate(VIEWS, 1)
        ),
        Binding(
            "t",
            "fire_test_alert",
            "Fire test",
            id="fire-test-alert",
            tooltip="Fire a test alert (a preset from test_alerts, or typed labels)",
        ),
        Binding(
            "T",
            "trace_test_alert",
            "Trace test",
            show=False,
            id="trace-test-alert",
            tooltip="Fire a test alert and follow it through the pipeline, stage by stage",
        ),
        Binding(
            "ctrl+r",
            "refresh",
            "Refresh",
            show=False,
            id="refresh",
            tooltip="Refresh every source now",
        ),
        Binding("question_mark", "help", "Help", id="help", tooltip="This list of keys"),
        Binding(
            "ctrl+p",
            "command_palette",
            "Palette",
            show=False,
            priority=True,
            id="command-palette",
            tooltip="Command palette: every action, searchable",
        ),
        Binding("q", "quit", "Quit", id="quit", tooltip="Quit the dashboard"),
    ]

    def __init__(
        self, config: Config, engine: Engine, clock: Clock, *, tune_runtime: bool = False
    ) -> None:
        super().__init__()
        self._tune_runtime = tune_runtime
        if tune_runtime:
            runtime.favour_the_event_loop()
        self.config = config
        self.engine = engine
        self.clock = clock
        self.notifier = Notifier(self, config.notify)
        self.finished_actions: list[Action] = []
        self._unsubscribe: list[object] = []
        self._loaded = False  # a first snapshot with alerts has been shown
        # Set once the first frame is on screen: the dashboard starts the engine after it.
        self.first_frame = asyncio.Event()

    # -- frame -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield SourceBar(self.config, self.clock, id="header")
        yield ViewBar(VIEWS, id="view-bar")
        with ContentSwitcher(initial="alerts", id="views"):
            yield AlertsView(self.engine, self.clock, id="alerts")
            yield IncidentsView(self.engine, self.clock, id="incidents")
            yield OncallView(self.engine, self.clock, id="oncall")
            yield StatuspageView(self.engine, self.clock, id="statuspage")
            yield SilencesView(self.engine, self.clock, id="silences")
            yield LogView(self.engine, self.clock, id="log")
        yield KeyFooter()

    def on_mount(self) -> None:
        if self.config.keys:
            self.set_keymap(dict(self.config.keys))
        header = self.query_one(SourceBar)
        header.read_only = self.engine.read_only
        self._unsubscribe.append(self.engine.subscribe(self._on_engine_event))
        self._apply_snapshot(self.engine.snapshot)
        self.set_interval(1.0, self._tick, name="clock-tick")
        self._focus_view("alerts")
        self._show_view_bar()
        if self._tune_runtime:
            self.call_after_refresh(runtime.settle)  # after the first frame is on screen
        self.call_after_refresh(self.first_frame.set)

    def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribe:
            if callable(unsubscribe):
                unsubscribe()
        self._unsubscribe.clear()

    @property
    def current_view(self) -> str:
        return self.query_one("#views", ContentSwitcher).current or "alerts"

    def view(self, name: str) -> Widget:
        return self.query_one(f"#views > #{name}", Widget)

    def views_for_catalogue(self) -> list[tuple[str, Widget]]:
        """(section title, view) with the current view first; the help and palette use it."""
        current = self.current_view
        titled = [(f"{title} (view {n})", name) for n, (name, title) in enumerate(VIEWS, 1)]
        titled.sort(key=lambda item: item[1] != current)
        return [(title, self.view(name)) for title, name in titled]

    def _tick(self) -> None:
        # Ages and "last refreshed" move on with the clock even when no data arrives.
        if not self._frame_up():
            return
        self.query_one(SourceBar).redraw()
        current = self.current_view
        if current == "alerts":
            self.query_one(AlertsView).table.refresh()
        elif current == "incidents":
            self.query_one(IncidentsView).tick()
        elif current == "oncall":
            self.query_one(OncallView).tick()
        elif current == "statuspage":
            self.query_one(StatuspageView).tick()

    def _show_view_bar(self) -> None:
        keys: dict[str, str] = {}
        for command in node_commands(self, self, ""):
            if command.binding_id.startswith("view-"):
                keys[command.binding_id.removeprefix("view-")] = command.keys[0]
        self.query_one(ViewBar).show(self.current_view, keys)

    # -- engine events -----------------------------------------------------------------------

    def _on_engine_event(self, event: EngineEvent) -> None:
        if isinstance(event, SnapshotChanged):
            self.post_message(SnapshotArrived(event.snapshot))
        elif isinstance(event, AlertsRaised):
            self.post_message(AlertsArrived(event.alerts))
        elif isinstance(event, IncidentsRaised):
            self.post_message(IncidentsArrived(event.incidents))
        elif isinstance(event, ActionChanged):
            self.post_message(ActionUpdated(event.action))
        elif isinstance(event, LogAppended):
            self.post_message(LogArrived(event.entry))

    def _frame_up(self) -> bool:
        """False while the app shuts down: its widgets go before the last queued messages."""
        return bool(self.query(SourceBar))

    @on(SnapshotArrived)
    def _snapshot_arrived(self, message: SnapshotArrived) -> None:
        if self._frame_up():
            self._apply_snapshot(message.snapshot)

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        if self._tune_runtime and not self._loaded and not snapshot.restored and snapshot.alerts:
            self._loaded = True
            self.call_after_refresh(runtime.settle)
        self.query_one(SourceBar).update_snapshot(snapshot)
        self.query_one(AlertsView).update_snapshot(snapshot)
        self.query_one(IncidentsView).update_snapshot(snapshot)
        self.query_one(OncallView).update_snapshot(snapshot)
        self.query_one(SilencesView).update_snapshot(snapshot)
        self.query_one(StatuspageView).update_snapshot(snapshot)
        self.query_one(LogView).update_snapshot(snapshot)
        # A screen over the views that shows live data (the pipeline) follows every snapshot.
        follow = getattr(self.screen, "update_snapshot", None)
        if callable(follow):
            follow(snapshot)
        triggered = sum(1 for i in snapshot.incidents if i.status in UNACKNOWLEDGED)
        bar = self.query_one(ViewBar)
        bar.show(self.current_view, badges={"incidents": str(triggered)} if triggered else {})

    @on(LogArrived)
    def _log_arrived(self, message: LogArrived) -> None:
        if self._frame_up():
            self.query_one(LogView).on_log_appended(message.entry)

    @on(AlertsArrived)
    def _alerts_arrived(self, message: AlertsArrived) -> None:
        self._current_notifier().alerts_raised(message.alerts)

    @on(IncidentsArrived)
    def _incidents_arrived(self, message: IncidentsArrived) -> None:
        incidents_raised(self._current_notifier(), message.incidents)

    def _current_notifier(self) -> Notifier:
        """`notify.only_when_on_call`: off call, news shows in the app without bell or desktop."""
        if not self.config.notify.only_when_on_call or self._on_call_now():
            return self.notifier
        quiet = self.config.notify.with_changes(bell=False, desktop=False)
        return Notifier(self, quiet, write=self.notifier.write)

    def _on_call_now(self) -> bool:
        oncalls = self.engine.snapshot.oncalls
        if not oncalls:
            return True  # no on-call data: better to wake the operator than to stay quiet
        me, now = OnCallOperator(self.config), self.clock.now()
        return any(covers(o, now) and me.is_me(o.user, o.user_email) for o in oncalls)

    @on(ViewBar.Chosen)
    def _view_chosen(self, message: ViewBar.Chosen) -> None:
        self.action_show_view(message.view)

    @on(ActionUpdated)
    def _action_updated(self, message: ActionUpdated) -> None:
        action = message.action
        if self._frame_up():
            self.query_one(IncidentsView).action_changed(action)
            self.query_one(StatuspageView).action_changed(action)
        # Outcomes of the operator's own requests are reported by `_run_actions`; this reports
        # what the outbox does on its own (retries of actions taken while a source was down).
        if action.status == ActionStatus.PENDING and action.result.startswith("will retry"):
            self.notify(
                f"{action.kind}: {action.result}",
                title="Action pending",
                severity="warning",
                markup=False,
            )

    # -- actions -----------------------------------------------------------------------------

    @on(SubmitActions)
    def _submit(self, message: SubmitActions) -> None:
        self.run_worker(
            self._run_actions(message.requests, message.description),
            group="actions",
            exit_on_error=False,
        )

    async def _run_actions(self, requests: Sequence[ActionRequest], description: str) -> None:
        self.notify(f"{description}: pending", title="Action", timeout=4, markup=False)
        results = [await self.engine.act(request) for request in requests]
        self.finished_actions.extend(results)
        failed = [a for a in results if a.status == ActionStatus.FAILED]
        waiting = [a for a in results if a.status == ActionStatus.PENDING]
        if failed:
            reasons = "; ".join(dict.fromkeys(a.result for a in failed))
            self.notify(
                f"{description}: {len(failed)} of {len(results)} failed: {reasons}",
                title="Action failed",
                severity="error",
                timeout=20,
                markup=False,
            )
        elif waiting:
            self.notify(
                f"{description}: not sent yet, will retry ({waiting[0].result})",
                title="Action pending",
                severity="warning",
                timeout=10,
                markup=False,
            )
        else:
            summary = "; ".join(a.result for a in results[:3])
            self.notify(f"{description}: done. {summary}", title="Action done", markup=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in ("fire_test_alert", "trace_test_alert") and self.engine.read_only)

    def action_show_view(self, name: str) -> None:
        self.query_one("#views", ContentSwitcher).current = name
        self.query_one(ViewBar).show(name)
        self._focus_view(name)
        self.refresh_bindings()

    def _focus_view(self, name: str) -> None:
        for node in self.view(name).walk_children(with_self=True):
            if isinstance(node, Widget) and node.focusable and node.display:
                node.focus()
                return
        self.screen.set_focus(None)

    def action_refresh(self) -> None:
        self.engine.refresh_now()
        self.notify("Refreshing now", timeout=2)

    # Screens opened by a key are imported when first opened: not on the first frame's path.

    def action_help(self) -> None:
        from oncall_tui.ui.help import HelpScreen

        self.push_screen(HelpScreen(catalogue(self, self.views_for_catalogue())))

    def action_fire_test_alert(self) -> None:
        if self.engine.read_only:
            return

        from oncall_tui.ui.fire_form import FireAlertForm

        def chosen(request: ActionRequest | None) -> None:
            if request is not None:
                name = dict(request.params.get("labels", {})).get("alertname", "test alert")
                self.post_message(SubmitActions([request], f"Fire test alert {name}"))

        self.push_screen(FireAlertForm(self.config), chosen)

    def action_trace_test_alert(self) -> None:
        """Fire a test alert and follow it through every stage of the pipeline, live."""
        if self.engine.read_only:
            return
        from oncall_tui.ui.fire_form import FireAlertForm
        from oncall_tui.ui.pipeline import TraceScreen

        def chosen(request: ActionRequest | None) -> None:
            if request is None:
                return
            self.push_screen(
                TraceScreen(
                    self.config,
                    self.clock,
                    log=self.engine.store,
                    labels=dict(request.params.get("labels", {})),
                    annotations=dict(request.params.get("annotations", {})),
                )
            )

        self.push_screen(FireAlertForm(self.config), chosen)


def make_app(
    config: Config, engine: Engine, clock: Clock, *, tune_runtime: bool = False
) -> OncallApp:
    """Build the dashboard; the caller starts the engine (or restores it before and starts it
    once `first_frame` is set) and stops it after running it.

    `tune_runtime` (the dashboard process, not tests that run many apps in one process): the
    process settings that keep the screen responsive, see `oncall_tui.runtime`.
    """
    return OncallApp(config, engine, clock, tune_runtime=tune_runtime)
