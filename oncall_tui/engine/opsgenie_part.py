"""Opsgenie inside the engine: client, source, actions, poll loops, log rows and queries.

The engine creates one `OpsgeniePart` when `opsgenie:` has an API key and delegates to it, as it
does to `PagerDutyPart`: `start()`/`stop()` run the `poll.incidents` and `poll.oncall` loops,
`wake()` serves ctrl+r, `handles()`/`run()` carry out actions on "opsgenie/<id>" targets and
`alert.fire` with `to: opsgenie` from the outbox, `publish_into()` puts alerts, on-calls, shifts
and health into the snapshot, and `restore()` seeds all of that from the last snapshot.
Opsgenie sends no webhooks, so there is no `on_log_entry`. `changed` is called whenever
something shown changed; `emit` receives IncidentsRaised (new P1/P2 alerts at or above
`notify.min_severity`, see `engine/opsgenie.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace

import httpx

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine.actions import ActionRequest, Outcome
from oncall_tui.engine.incident_changes import IncidentChange
from oncall_tui.engine.loop import PollLoop
from oncall_tui.engine.opsgenie import (
    SOURCE,
    OpsgenieSource,
    change_log_rows,
    make_client,
    raised,
)
from oncall_tui.engine.opsgenie_actions import OpsgenieActions
from oncall_tui.events import EngineEvent, IncidentsRaised
from oncall_tui.models import Incident, IncidentNote, Snapshot, SourceHealth
from oncall_tui.store import Store


def opsgenie_configured(config: Config) -> bool:
    return config.opsgenie is not None and config.opsgenie.api_key is not None


class OpsgeniePart:
    """Everything Opsgenie in one object, so the engine wires it in a handful of lines."""

    def __init__(
        self,
        config: Config,
        *,
        http: httpx.AsyncClient,
        clock: Clock,
        store: Store,
        emit: Callable[[EngineEvent], None],
        changed: Callable[[], None],
    ) -> None:
        if config.opsgenie is None:
            raise ValueError("Opsgenie is not configured (opsgenie.api_key)")
        self._config = config
        self._clock = clock
        self._store = store
        self._emit = emit
        self._changed = changed
        self.client = make_client(config, http, clock)  # ValueError without an api_key
        self.source = OpsgenieSource(self.client, clock, schedules=config.opsgenie.schedules)
        self.actions = OpsgenieActions(self.client, self.source, clock, store=store)
        self.incidents_loop = PollLoop(
            "opsgenie:alerts", self._poll_incidents, config.poll.incidents, clock
        )
        self.oncall_loop = PollLoop("opsgenie:oncall", self._poll_oncall, config.poll.oncall, clock)
        self._tasks: list[asyncio.Task[None]] = []
        self._restored = False

    # -- lifecycle ---------------------------------------------------------------------------

    def restore(self, snapshot: Snapshot) -> None:
        """Show the last known alerts (stale) until Opsgenie answers; log only real news."""
        self.source.restore(snapshot)
        self._restored = True

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.oncall_loop.run(), name="poll-opsgenie-oncall"),
            asyncio.create_task(self.incidents_loop.run(), name="poll-opsgenie-alerts"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def wake(self) -> None:
        """ctrl+r: refresh alerts and on-calls now."""
        self.incidents_loop.wake()
        self.oncall_loop.wake()

    # -- snapshot ----------------------------------------------------------------------------

    def publish_into(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot with Opsgenie's alerts, on-calls, shifts and health in it."""
        return replace(
            snapshot,
            incidents=(
                *(i for i in snapshot.incidents if i.system != SOURCE),
                *self.source.incidents,
            ),
            oncalls=(
                *(o for o in snapshot.oncalls if o.system != SOURCE),
                *self.source.oncalls,
            ),
            shifts=(*(s for s in snapshot.shifts if s.system != SOURCE), *self.source.shifts),
            health=(*(h for h in snapshot.health if h.name != SOURCE), self.source.health),
        )

    @property
    def polled_once(self) -> bool:
        return self.source.polled_once

    # -- polls -------------------------------------------------------------------------------

    async def _poll_incidents(self) -> None:
        before = self.source.health
        first = not self.source.polled_once
        change = await self.source.poll_incidents()
        await self._log_edge(before)
        # On a first start everything open would look new: that is not news.
        await self._record(change, notify=not first or self._restored)
        self._changed()

    async def _poll_oncall(self) -> None:
        before = self.source.health
        await self.source.poll_oncall()
        await self._log_edge(before)
        self._changed()

    async def _record(self, change: IncidentChange, *, notify: bool) -> None:
        if not change:
            return
        await self._store.append_many(change_log_rows(change))
        if not notify:
            return
        loud = raised(change, self._config.notify.min_severity)
        if loud:
            self._emit(IncidentsRaised(loud))

    async def _log_edge(self, before: SourceHealth) -> None:
        up = self.source.edge(before)
        if up is None:
            return
        health = self.source.health
        summary = "Opsgenie reachable again" if up else f"Opsgenie unreachable: {health.error}"
        await self._store.append(SOURCE, "source.up" if up else "source.down", summary)

    # -- actions -----------------------------------------------------------------------------

    def handles(self, request: ActionRequest) -> bool:
        return self.actions.handles(request)

    async def run(self, action_id: str, request: ActionRequest) -> Outcome:
        """Carry out one action; what it changed is logged and shown at once."""
        try:
            return await self.actions.run(action_id, request)
        finally:
            applied, self.actions.applied = self.actions.applied, IncidentChange()
            if applied:
                await self._record(applied, notify=False)
                self._changed()

    # -- queries -----------------------------------------------------------------------------

    async def incident_notes(self, incident: Incident) -> list[IncidentNote]:
        return await self.client.notes(incident.id)

    async def escalation_targets(self, query: str = "") -> list[tuple[str, str]]:
        """(id, name) of the escalations an alert can be escalated to, matching `query`."""
        escalations = await self.client.escalations()
        self.source.escalations = {e.id: e for e in escalations}
        wanted = query.strip().lower()
        return [(e.id, e.name) for e in escalations if not wanted or wanted in e.name.lower()]
