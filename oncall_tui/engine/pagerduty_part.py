"""PagerDuty inside the engine: clients, source, actions, poll loops, log rows and queries.

The engine creates one `PagerDutyPart` when `pagerduty:` has an API token and delegates to it:
`start()`/`stop()` run the `poll.incidents` and `poll.oncall` loops, `wake()` serves ctrl+r,
`on_log_entry()` applies a PagerDuty webhook once the intake has logged it (before the listener
answers 2xx), `handles()`/`run()` carry out incident actions and `alert.fire` to PagerDuty from
the outbox, `publish_into()` puts incidents, on-calls, shifts and health into the snapshot, and
`restore()` seeds all of that from the last snapshot. `changed` is called whenever something
shown changed; `emit` receives IncidentsRaised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import replace

import httpx

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine.actions import ActionRequest, Outcome
from oncall_tui.engine.incident_changes import IncidentChange, change_log_rows
from oncall_tui.engine.loop import PollLoop
from oncall_tui.engine.pagerduty import SOURCE, PagerDutyActions, PagerDutySource
from oncall_tui.events import EngineEvent, IncidentsRaised
from oncall_tui.models import (
    Incident,
    IncidentNote,
    LogEntry,
    Snapshot,
    SourceHealth,
    meets_severity,
)
from oncall_tui.providers.pagerduty import PagerDutyClient
from oncall_tui.providers.pagerduty_events import PagerDutyEventsClient
from oncall_tui.store import Store

URGENCY_SEVERITY = {"high": "critical", "low": "warning"}
"""How an incident's urgency compares with `notify.min_severity`."""


def pagerduty_configured(config: Config) -> bool:
    return config.pagerduty is not None and config.pagerduty.api_token is not None


class PagerDutyPart:
    """Everything PagerDuty in one object, so the engine wires it in a handful of lines."""

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
        pd = config.pagerduty
        if pd is None or pd.api_token is None:
            raise ValueError("PagerDuty is not configured (pagerduty.api_token)")
        self._config = config
        self._clock = clock
        self._store = store
        self._emit = emit
        self._changed = changed
        self.client = PagerDutyClient(
            pd.api_url,
            pd.api_token.get_secret_value(),
            http,
            clock=clock,
            from_email=config.operator.email,
        )
        self.events = (
            PagerDutyEventsClient(
                pd.events_url, pd.routing_key.get_secret_value(), http, clock=clock
            )
            if pd.routing_key is not None
            else None
        )
        self.source = PagerDutySource(
            self.client,
            clock,
            service_ids=pd.service_ids,
            escalation_policy_ids=pd.escalation_policy_ids,
        )
        self.actions = PagerDutyActions(self.client, self.events, self.source, clock)
        self.incidents_loop = PollLoop(
            "pagerduty:incidents", self._poll_incidents, config.poll.incidents, clock
        )
        self.oncall_loop = PollLoop(
            "pagerduty:oncall", self._poll_oncall, config.poll.oncall, clock
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._restored = False
        self._logged_up: bool | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def restore(self, snapshot: Snapshot) -> None:
        """Show the last known incidents (stale) until PagerDuty answers; log only real news."""
        self.source.restore(snapshot)
        self._restored = True

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.oncall_loop.run(), name="poll-pagerduty-oncall"),
            asyncio.create_task(self.incidents_loop.run(), name="poll-pagerduty-incidents"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def wake(self) -> None:
        """ctrl+r: refresh incidents and on-calls now."""
        self.incidents_loop.wake()
        self.oncall_loop.wake()

    # -- snapshot ----------------------------------------------------------------------------

    def publish_into(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot with PagerDuty's incidents, on-calls, shifts and health in it."""
        others = tuple(i for i in snapshot.incidents if i.system != SOURCE)
        return replace(
            snapshot,
            incidents=(*self.source.incidents, *others),
            oncalls=(
                *self.source.oncalls,
                *(o for o in snapshot.oncalls if o.system != SOURCE),
            ),
            shifts=(*self.source.shifts, *(s for s in snapshot.shifts if s.system != SOURCE)),
            health=(*(h for h in snapshot.health if h.name != SOURCE), self.source.health),
        )

    @property
    def polled_once(self) -> bool:
        return self.source.polled_once

    # -- polls and pushes --------------------------------------------------------------------

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

    async def on_log_entry(self, entry: LogEntry) -> bool:
        """Apply a PagerDuty webhook the intake has logged; False if the entry is not one."""
        if entry.source != SOURCE or entry.kind != "webhook":
            return False
        event = entry.data.get("event")
        if not isinstance(event, Mapping):
            return False
        try:
            change = self.source.apply_webhook(event)
        except ValueError as exc:
            await self._store.append(
                SOURCE, "webhook.unusable", f"webhook not applied: {exc}", data={"entry": entry.id}
            )
            return True
        await self._record(change, notify=True)
        inner = event.get("event", event)
        if isinstance(inner, Mapping) and inner.get("event_type") == "incident.escalated":
            # The payload names the new assignees, not the level: the poll tells it.
            self.incidents_loop.wake()
        self._changed()
        return True

    async def _record(self, change: IncidentChange, *, notify: bool) -> None:
        if not change:
            return
        await self._store.append_many(change_log_rows(change))
        if not notify:
            return
        minimum = self._config.notify.min_severity
        loud = tuple(
            i
            for i in change.raised
            if meets_severity(URGENCY_SEVERITY.get(i.urgency, "critical"), minimum)
        )
        if loud:
            self._emit(IncidentsRaised(loud))

    async def _log_edge(self, before: SourceHealth) -> None:
        up = self.source.edge(before)
        # The incidents and on-call loops overlap, so both may see the same flip: log it once.
        if up is None or up == self._logged_up:
            return
        self._logged_up = up
        health = self.source.health
        summary = "PagerDuty reachable again" if up else f"PagerDuty unreachable: {health.error}"
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

    async def reassign_targets(self, query: str = "") -> list[tuple[str, str, str]]:
        """(kind "user" | "escalation_policy", id, name) matching `query`, users first."""
        users = await self.client.users(query)
        policies = await self.client.escalation_policies()
        wanted = query.strip().lower()
        return [
            *(("user", u.id, u.name) for u in users),
            *(
                ("escalation_policy", p.id, p.name)
                for p in policies
                if not wanted or wanted in p.name.lower()
            ),
        ]
