"""What the PagerDuty and Opsgenie parts of the engine share.

Each polls its incidents (PagerDuty incidents, Opsgenie alerts) and its on-calls on two loops
of their own, logs what changed and each flip of reachability once, tells the engine's
listeners about incidents raised loudly enough, and carries out actions, logging what they
changed at once. A part names its system and says how changes become log rows and which raised
incidents are loud; what it adds to the snapshot and its queries stay its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Protocol

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine.actions import ActionRequest, Outcome
from oncall_tui.engine.incident_changes import IncidentChange
from oncall_tui.engine.loop import PollLoop, cancel_all
from oncall_tui.events import EngineEvent, IncidentsRaised
from oncall_tui.models import Incident, OnCall, Shift, Snapshot, SourceHealth
from oncall_tui.store import Store

LogRow = tuple[str, str, str, Mapping[str, Any]]


class IncidentSource(Protocol):
    polled_once: bool

    @property
    def health(self) -> SourceHealth: ...
    @property
    def incidents(self) -> Sequence[Incident]: ...
    @property
    def oncalls(self) -> Sequence[OnCall]: ...
    @property
    def shifts(self) -> Sequence[Shift]: ...

    def restore(self, snapshot: Snapshot) -> None: ...
    async def poll_incidents(self) -> IncidentChange: ...
    async def poll_oncall(self) -> None: ...
    def edge(self, before: SourceHealth) -> bool | None: ...


class IncidentActions(Protocol):
    applied: IncidentChange

    def handles(self, request: ActionRequest) -> bool: ...
    async def run(self, action_id: str, request: ActionRequest) -> Outcome: ...


class IncidentPart:
    """The loops, logging and action plumbing of an incident system inside the engine."""

    system: ClassVar[str]  # the log's source name, e.g. "pagerduty"
    title: ClassVar[str]  # how the operator reads it, e.g. "PagerDuty"
    incidents_name: ClassVar[str]  # what the system calls its incidents, for the loop's name

    source: IncidentSource
    actions: IncidentActions

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        store: Store,
        emit: Callable[[EngineEvent], None],
        changed: Callable[[], None],
    ) -> None:
        self._config = config
        self._store = store
        self._emit = emit
        self._changed = changed
        self.incidents_loop = PollLoop(
            f"{self.system}:{self.incidents_name}",
            self._poll_incidents,
            config.poll.incidents,
            clock,
        )
        self.oncall_loop = PollLoop(
            f"{self.system}:oncall", self._poll_oncall, config.poll.oncall, clock
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._restored = False
        self._logged_up: bool | None = None

    def log_rows(self, change: IncidentChange) -> Sequence[LogRow]:
        raise NotImplementedError

    def loud(self, change: IncidentChange) -> tuple[Incident, ...]:
        """The incidents raised by `change` that are worth a notification."""
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------------------

    def restore(self, snapshot: Snapshot) -> None:
        """Show the last known incidents (stale) until the system answers; log only news."""
        self.source.restore(snapshot)
        self._restored = True

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.oncall_loop.run(), name=f"poll-{self.system}-oncall"),
            asyncio.create_task(
                self.incidents_loop.run(), name=f"poll-{self.system}-{self.incidents_name}"
            ),
        ]

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks.clear()

    def wake(self) -> None:
        """ctrl+r: refresh incidents and on-calls now."""
        self.incidents_loop.wake()
        self.oncall_loop.wake()

    @property
    def polled_once(self) -> bool:
        return self.source.polled_once

    # -- snapshot ----------------------------------------------------------------------------

    def publish_into(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot with this system's incidents, on-calls, shifts and health in it.

        Each system's items follow the others': the engine publishes PagerDuty, then Opsgenie.
        """
        system = self.system
        return replace(
            snapshot,
            incidents=(
                *(i for i in snapshot.incidents if i.system != system),
                *self.source.incidents,
            ),
            oncalls=(*(o for o in snapshot.oncalls if o.system != system), *self.source.oncalls),
            shifts=(*(s for s in snapshot.shifts if s.system != system), *self.source.shifts),
            health=(*(h for h in snapshot.health if h.name != system), self.source.health),
        )

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
        await self._store.append_many(self.log_rows(change))
        if not notify:
            return
        loud = self.loud(change)
        if loud:
            self._emit(IncidentsRaised(loud))

    async def _log_edge(self, before: SourceHealth) -> None:
        up = self.source.edge(before)
        # The incidents and on-call loops overlap, so both may see the same flip: log it once.
        if up is None or up == self._logged_up:
            return
        self._logged_up = up
        error = self.source.health.error
        summary = f"{self.title} reachable again" if up else f"{self.title} unreachable: {error}"
        await self._store.append(self.system, "source.up" if up else "source.down", summary)

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
