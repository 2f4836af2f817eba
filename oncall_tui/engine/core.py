"""The engine: owns the sources, the log, the webhook listener and the operator's actions.

The dashboard and the headless `serve` command run this same object. It never imports Textual:
listeners receive plain events (oncall_tui/events.py) and decide how to show them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine.ack_silences import AckSilences
from oncall_tui.engine.actions import (
    ActionRejected,
    ActionRequest,
    AlertmanagerActions,
    Outcome,
)
from oncall_tui.engine.alert_log import alert_change_rows
from oncall_tui.engine.alerts import AlertChange, AlertmanagerSource
from oncall_tui.engine.correlation import Correlator, learn_from_log, learn_routes
from oncall_tui.engine.intake import WebhookIntake
from oncall_tui.engine.loop import PollLoop, to_the_end
from oncall_tui.engine.outbox import Outbox
from oncall_tui.events import (
    AlertsRaised,
    EngineEvent,
    Listener,
    LogAppended,
    SnapshotChanged,
)
from oncall_tui.matchers import matches_all
from oncall_tui.models import (
    Action,
    Alert,
    AlertState,
    Incident,
    IncidentNote,
    LogEntry,
    Matcher,
    Snapshot,
    SourceHealth,
    meets_severity,
)
from oncall_tui.store import Store

if TYPE_CHECKING:
    import httpx

    from oncall_tui.engine.opsgenie_part import OpsgeniePart
    from oncall_tui.engine.pagerduty_part import PagerDutyPart
    from oncall_tui.engine.statuspage_part import StatuspagePart
    from oncall_tui.webhooks import WebhookServer

log = logging.getLogger(__name__)

SNAPSHOT_SAVE_INTERVAL = 30.0
STOP_TIMEOUT = 5.0
# At most this often (seconds) a poll of one cluster woken by webhooks or ctrl+r: a webhook
# still shows on screen within about a second, and a storm of hundreds per second costs four
# polls a second, not hundreds.
WAKE_GAP = 0.25
BULK_CHANGE = 500  # alerts fired or resolved in one poll above which the screen comes first
# How long a bulk change's log rows wait for the dashboard to draw it. Formatting and writing
# 10,000 rows at once shares the interpreter with the dashboard's first apply and paint of them,
# which then took 75 ms instead of 45 (measured at 10,000 alerts).
BULK_LOG_GRACE = 0.2


class ReadOnlyError(Exception):
    pass


class Part(Protocol):
    """What the engine asks of each system it wires in beside Alertmanager."""

    def restore(self, snapshot: Snapshot) -> None: ...
    async def stop(self) -> None: ...
    def wake(self) -> None: ...
    def publish_into(self, snapshot: Snapshot) -> Snapshot: ...
    def handles(self, request: ActionRequest) -> bool: ...
    async def run(self, action_id: str, request: ActionRequest) -> Outcome: ...


class Engine:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        store: Store | None = None,
        http: httpx.AsyncClient | None = None,
        listen_webhooks: bool = True,
        read_only: bool | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.read_only = config.read_only if read_only is None else read_only
        self._store = store
        self._owns_store = store is None
        self._http = http
        self._owns_http = http is None
        self._listen_webhooks = listen_webhooks and config.webhooks.enabled
        self._listeners: list[Listener] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._server: WebhookServer | None = None
        self._webhook_health = SourceHealth(name="webhooks", kind="webhooks")
        self._last_snapshot_save = float("-inf")
        self._outbox = Outbox(
            store=lambda: self._store,
            clock=clock,
            emit=self._emit,
            execute=self._execute,
            done=self._action_done,
        )
        self._started = False
        self._restore_done = False
        self._restored: Snapshot | None = None  # read by restore(), handed to the parts by start()
        self.snapshot = Snapshot(taken_at=clock.now())
        self._alerts: AlertmanagerSource | None = None
        self._alert_loops: list[PollLoop] = []
        self._restored_from_log = False
        self._am_actions: AlertmanagerActions | None = None
        self._pagerduty: PagerDutyPart | None = None
        self._opsgenie: OpsgeniePart | None = None
        self._statuspage: StatuspagePart | None = None
        self._ack: AckSilences | None = None
        self.correlator = Correlator()

    # -- listeners -----------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, event: EngineEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("listener failed on %s", type(event).__name__)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("engine not started")
        return self._store

    @property
    def webhook_address(self) -> str | None:
        return self._server.address if self._server is not None else None

    async def restore(self) -> None:
        """Open the log and hand listeners the last known snapshot, marked as restored.

        Nothing is contacted and the HTTP stack is not imported: the dashboard calls this
        before its first frame, and `start()` once that frame is on screen. `start()` alone
        does both.
        """
        if self._restore_done:
            return
        if self._store is None:
            self._store = await Store.open(
                self.config.log.file, clock=self.clock, secrets=self.config.secrets()
            )
        self._restore_done = True
        restored = await self.store.load_snapshot()
        if restored is not None:
            self._restored_from_log = True
            self._restored = restored
            self.snapshot = replace(restored, restored=True)
            self._emit(SnapshotChanged(self.snapshot))

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        # Imported here, not with the engine: the dashboard draws its first frame without them.
        from oncall_tui.providers.alertmanager import AlertmanagerClient
        from oncall_tui.providers.http import make_http_client

        # Building the SSL context takes 50-100 ms: not on the event loop the UI shares, and
        # while the log opens.
        http: asyncio.Task[httpx.AsyncClient] | None = None
        if self._http is None:
            http = asyncio.create_task(asyncio.to_thread(make_http_client))
        try:
            await self.restore()
        except BaseException:
            if http is not None:
                await (await http).aclose()
            raise
        if http is not None:
            self._http = await http
        assert self._http is not None
        peers = [
            AlertmanagerClient(
                am.name,
                am.url,
                self._http,
                clock=self.clock,
                cluster=am.cluster_name,
                auth=am.auth,
            )
            for am in self.config.alertmanagers
        ]
        self._alerts = AlertmanagerSource(peers, self.clock)
        self._am_actions = AlertmanagerActions(
            self._alerts.peer,
            lambda cluster: (
                [s for s in self._alerts.silences if s.cluster == cluster] if self._alerts else []
            ),
            self.clock,
            self.config.actor,
            lambda: self.clusters,
        )
        # The first save waits a full interval: right after start-up the dashboard is busy
        # showing the first poll, and the snapshot from the last run is still there.
        self._last_snapshot_save = self.clock.monotonic()
        wiring: dict[str, Any] = {
            "http": self._http,
            "clock": self.clock,
            "store": self.store,
            "emit": self._emit,
            "changed": self._publish,
        }
        # Each part is imported only when configured: fewer modules before the first frame.
        if self.config.pagerduty is not None:
            from oncall_tui.engine.pagerduty_part import PagerDutyPart, pagerduty_configured

            if pagerduty_configured(self.config):
                self._pagerduty = PagerDutyPart(self.config, **wiring)
        if self.config.opsgenie is not None:
            from oncall_tui.engine.opsgenie_part import OpsgeniePart, opsgenie_configured

            if opsgenie_configured(self.config):
                self._opsgenie = OpsgeniePart(self.config, **wiring)
        if self.config.statuspage is not None:
            from oncall_tui.engine.statuspage_part import StatuspagePart, statuspage_configured

            if statuspage_configured(self.config):
                self._statuspage = StatuspagePart(
                    self.config,
                    **wiring,
                    submit=lambda request: self.act(request, actor="automation"),
                    read_only=self.read_only,
                )
        self._outbox.ready.set()  # the clients that carry out actions exist now
        restored, self._restored = self._restored, None
        if restored is not None:
            for part in self._parts:
                part.restore(restored)
            self._alerts.restore(restored.alerts, restored.silences)
            self._alerts.restore_health(restored.health)
        if self._listen_webhooks:
            await self._start_listener()
        # One loop per cluster, so that a slow or hung cluster never delays the others.
        for name in self._alerts.clusters:
            loop = PollLoop(
                f"alertmanager:{name}",
                functools.partial(self._poll_cluster, name),
                self.config.poll.alerts,
                self.clock,
                min_gap=WAKE_GAP,
            )
            self._alert_loops.append(loop)
            self._spawn(loop.run(), f"poll-alertmanager-{name}")
        self._spawn(self._outbox.run(), "outbox")
        if self._pagerduty is not None:
            self._pagerduty.start()
        if self._opsgenie is not None:
            self._opsgenie.start()
        if self._statuspage is not None:
            await self._statuspage.start()
        if not self.read_only:
            self._ack = AckSilences(
                clock=self.clock,
                store=self.store,
                submit=lambda request: self.act(request, actor="automation"),
            )
            await self._ack.start()
        self._spawn(self._learn_correlation(), "learn-correlation")
        self._publish()

    async def _start_listener(self) -> None:
        # Imported here: the HTTP server stack is not needed until the listener starts, and
        # the dashboard shows its first frame sooner without it.
        from oncall_tui.webhooks import WebhookServer, make_webhook_app

        hooks = self.config.webhooks
        token = hooks.alertmanager_token.get_secret_value() if hooks.alertmanager_token else None
        pd_secrets: list[str] = []
        if self.config.pagerduty and self.config.pagerduty.webhook_secret:
            pd_secrets.append(self.config.pagerduty.webhook_secret.get_secret_value())
        intake = WebhookIntake(self.store, self.clock, self._on_webhook_entry)
        app = make_webhook_app(intake, alertmanager_token=token, pagerduty_secrets=pd_secrets)
        self._server = WebhookServer(app, hooks.host, hooks.port)
        try:
            await self._server.start()
        except OSError as exc:
            self._webhook_health = replace(
                self._webhook_health,
                reachable=False,
                error=f"cannot listen on {hooks.listen}: {exc.strerror or exc}",
                detail=hooks.listen,
            )
            await self.store.append(
                "webhooks",
                "listener.failed",
                self._webhook_health.error,
                data={"listen": hooks.listen},
            )
            self._server = None
            return
        self._webhook_health = replace(
            self._webhook_health,
            reachable=True,
            last_success=self.clock.now(),
            detail=self._server.address,
        )

    async def _learn_correlation(self) -> None:
        """Group keys from the last day's webhooks and the routing tree of a running peer."""
        since = self.clock.now() - timedelta(days=1)
        await learn_from_log(self.correlator, self.store, since=since)
        assert self._alerts is not None
        for cluster in self._alerts.clusters.values():
            for peer in cluster.peers:
                if await learn_routes(self.correlator, peer):
                    return

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def stop(self) -> None:
        if self._ack is not None:
            await self._ack.stop()
            self._ack = None
        for part in self._parts:
            await part.stop()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a task that ignores its cancellation must not keep the process alive.
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
            for task in stuck:
                log.error("task %s did not stop within %.0f s", task.get_name(), STOP_TIMEOUT)
        self._tasks.clear()
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._store is not None:
            with contextlib.suppress(Exception):
                await self._store.save_snapshot(replace(self.snapshot, restored=False))
            if self._owns_store:
                await self._store.close()
                self._store = None
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None
        self._started = False
        self._restore_done = False
        self._outbox.ready.clear()

    async def run(self) -> None:
        """Start, then keep running until cancelled; always stops cleanly."""
        try:
            await self.start()
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(self.stop())

    @property
    def _parts(self) -> list[Part]:
        """The configured systems beside Alertmanager, in the order they publish."""
        return [p for p in (self._pagerduty, self._opsgenie, self._statuspage) if p is not None]

    def _wake_alert_polls(self) -> None:
        for loop in self._alert_loops:
            loop.wake()

    def refresh_now(self) -> None:
        for loop in self._alert_loops:
            loop.wake()
        for part in self._parts:
            part.wake()

    # -- polling -------------------------------------------------------------------------------

    async def _poll_cluster(self, name: str) -> None:
        assert self._alerts is not None
        first = name not in self._alerts.polled
        health_before = dict(self._alerts.health)
        change = await self._alerts.poll_cluster(name)
        await to_the_end(self._record_poll(health_before, change))
        # On a first start everything already firing would look new: that is not news.
        if change and (not first or self._restored_from_log):
            self._raise_notifications(change)
        self._publish()
        if self._statuspage is not None:
            self._statuspage.on_alerts(self.snapshot)
        if self._ack is not None:
            self._ack.on_alerts(self.snapshot)
        await self._maybe_save_snapshot()

    async def _record_poll(
        self, health_before: Mapping[str, SourceHealth], change: AlertChange
    ) -> None:
        await self._log_edges(health_before)
        if len(change.fired) + len(change.resolved) > BULK_CHANGE:
            # A first load of thousands of alerts: show them before the seconds it takes to log
            # them all; the log still holds every one when this poll ends.
            self._publish()
            await asyncio.sleep(BULK_LOG_GRACE)
        if change:
            await self._log_alert_change(change)

    async def _log_edges(self, before: Mapping[str, SourceHealth]) -> None:
        assert self._alerts is not None
        for health, up in self._alerts.edges(before):
            if up:
                summary = f"{health.name} reachable again"
            else:
                summary = f"{health.name} unreachable: {health.error}"
            await self.store.append(
                "alertmanager",
                "source.up" if up else "source.down",
                summary,
                data={"peer": health.name},
            )

    async def _log_alert_change(self, change: AlertChange) -> None:
        size = len(change.fired) + len(change.resolved) + len(change.state_changed)
        # Thousands of lines (a first load) would hold up the event loop while formatted.
        rows = (
            alert_change_rows(change)
            if size < BULK_CHANGE
            else await asyncio.to_thread(alert_change_rows, change)
        )
        await self.store.append_many(rows)

    def _raise_notifications(self, change: AlertChange) -> None:
        minimum = self.config.notify.min_severity
        loud = tuple(
            a
            for a in change.fired
            if a.state == AlertState.ACTIVE and meets_severity(a.severity, minimum)
        )
        if loud:
            self._emit(AlertsRaised(loud))

    def _publish(self) -> None:
        assert self._alerts is not None
        health = (*self._alerts.health.values(), self._current_webhook_health())
        self.snapshot = replace(
            self.snapshot,
            taken_at=self.clock.now(),
            alerts=tuple(self._alerts.alerts),
            silences=tuple(self._alerts.silences),
            health=health,
            restored=self._restored_from_log and not self._alerts.polled_once,
        )
        for part in self._parts:
            self.snapshot = part.publish_into(self.snapshot)
        self._emit(SnapshotChanged(self.snapshot))

    def _current_webhook_health(self) -> SourceHealth:
        if not self._listen_webhooks:
            return replace(self._webhook_health, reachable=None, detail="off")
        return self._webhook_health

    async def _maybe_save_snapshot(self) -> None:
        now = self.clock.monotonic()
        if now - self._last_snapshot_save < SNAPSHOT_SAVE_INTERVAL:
            return
        self._last_snapshot_save = now
        try:
            await self.store.save_snapshot(self.snapshot)
        except Exception:
            log.exception("could not save the snapshot")

    async def _on_webhook_entry(self, entry: LogEntry) -> None:
        self._webhook_health = replace(self._webhook_health, last_success=entry.at)
        self._emit(LogAppended(entry))
        if self._pagerduty is not None and await self._pagerduty.on_log_entry(entry):
            return
        if entry.source == "alertmanager" and entry.kind == "webhook":
            self.correlator.record_log_entry(entry)
            # The push is a hint; the poll it triggers is what the screen shows.
            self._wake_alert_polls()

    # -- queries -------------------------------------------------------------------------------

    def alerts_matching(
        self, matchers: Sequence[Matcher], cluster: str | None = None
    ) -> list[Alert]:
        return [
            a
            for a in self.snapshot.alerts
            if (cluster is None or a.cluster == cluster) and matches_all(matchers, a.labels)
        ]

    async def log_entries(self, **filters: Any) -> list[LogEntry]:
        return await self.store.entries(**filters)

    @property
    def pagerduty_configured(self) -> bool:
        return self._pagerduty is not None

    @property
    def opsgenie_configured(self) -> bool:
        return self._opsgenie is not None

    async def escalation_targets(self, query: str = "") -> list[tuple[str, str]]:
        """Opsgenie escalations (id, name) an alert can be escalated to."""
        if self._opsgenie is None:
            return []
        return await self._opsgenie.escalation_targets(query)

    @property
    def statuspage_configured(self) -> bool:
        return self._statuspage is not None

    def status_templates(self) -> dict[str, str]:
        """Message templates for status updates: the configured ones over the defaults."""
        if self._statuspage is None:
            from oncall_tui.engine.statuspage_episode import DEFAULT_TEMPLATES

            return dict(DEFAULT_TEMPLATES)
        return self._statuspage.templates()

    async def incident_notes(self, incident: Incident) -> list[IncidentNote]:
        if self._opsgenie is not None and incident.system == "opsgenie":
            return await self._opsgenie.incident_notes(incident)
        if self._pagerduty is None or incident.system != "pagerduty":
            return []
        return await self._pagerduty.incident_notes(incident)

    async def reassign_targets(self, query: str = "") -> list[tuple[str, str, str]]:
        if self._pagerduty is None:
            return []
        return await self._pagerduty.reassign_targets(query)

    def alerts_for_incident(self, incident: Incident) -> list[Alert]:
        return self.correlator.alerts_for_incident(incident, self.snapshot.alerts)

    def incident_for_alert(self, alert: Alert) -> Incident | None:
        return self.correlator.incident_for_alert(alert, self.snapshot.incidents)

    def incidents_for_alert(self, alert: Alert) -> list[Incident]:
        return self.correlator.incidents_for_alert(alert, self.snapshot.incidents)

    @property
    def clusters(self) -> list[str]:
        seen: dict[str, None] = {}
        for am in self.config.alertmanagers:
            seen.setdefault(am.cluster_name, None)
        return list(seen)

    # -- actions -------------------------------------------------------------------------------

    async def act(self, request: ActionRequest, *, actor: str | None = None) -> Action:
        """Record the action as pending, carry it out, record the outcome; never raises.

        `actor` is the operator unless automation acts (`actor="automation"`). Every action
        changes something somewhere: read-only mode refuses them all.
        """
        return await self._outbox.submit(
            request,
            actor=actor or self.config.actor,
            refuse="refused: read-only mode" if self.read_only else "",
        )

    async def _execute(self, action_id: str, request: ActionRequest) -> Outcome:
        """Carry out one action with the system it belongs to (the outbox's `execute`)."""
        assert self._am_actions is not None
        # Opsgenie asks first: PagerDuty's part claims every incident.* request.
        owner = next(
            (
                part
                for part in (self._opsgenie, self._pagerduty, self._statuspage)
                if part is not None and part.handles(request)
            ),
            None,
        )
        if owner is not None:
            return await owner.run(action_id, request)
        if request.kind.startswith(("incident.", "statuspage.")) or request.params.get(
            "to"
        ) not in (None, "alertmanager"):
            raise ActionRejected(f"{request.kind}: that system is not configured")
        return await self._am_actions.run(action_id, request)

    def _action_done(self, action: Action) -> None:
        if action.kind.startswith(("silence.", "alert.")):
            self._wake_alert_polls()  # show what the silence or the test alert changed
