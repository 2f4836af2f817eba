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

from collections.abc import Callable, Sequence

import httpx

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine.incident_changes import IncidentChange
from oncall_tui.engine.incident_part import IncidentPart, LogRow
from oncall_tui.engine.opsgenie import (
    SOURCE,
    OpsgenieSource,
    change_log_rows,
    make_client,
    raised,
)
from oncall_tui.engine.opsgenie_actions import OpsgenieActions
from oncall_tui.events import EngineEvent
from oncall_tui.models import Incident, IncidentNote
from oncall_tui.store import Store


def opsgenie_configured(config: Config) -> bool:
    return config.opsgenie is not None and config.opsgenie.api_key is not None


class OpsgeniePart(IncidentPart):
    """Everything Opsgenie in one object, so the engine wires it in a handful of lines."""

    system = SOURCE
    title = "Opsgenie"
    incidents_name = "alerts"

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
        super().__init__(config, clock=clock, store=store, emit=emit, changed=changed)
        self.client = make_client(config, http, clock)  # ValueError without an api_key
        self.source: OpsgenieSource = OpsgenieSource(
            self.client, clock, schedules=config.opsgenie.schedules
        )
        self.actions: OpsgenieActions = OpsgenieActions(
            self.client, self.source, clock, store=store
        )

    def log_rows(self, change: IncidentChange) -> Sequence[LogRow]:
        return change_log_rows(change)

    def loud(self, change: IncidentChange) -> tuple[Incident, ...]:
        return raised(change, self._config.notify.min_severity)

    # -- queries -----------------------------------------------------------------------------

    async def incident_notes(self, incident: Incident) -> list[IncidentNote]:
        return await self.client.notes(incident.id)

    async def escalation_targets(self, query: str = "") -> list[tuple[str, str]]:
        """(id, name) of the escalations an alert can be escalated to, matching `query`."""
        escalations = await self.client.escalations()
        self.source.escalations = {e.id: e for e in escalations}
        wanted = query.strip().lower()
        return [(e.id, e.name) for e in escalations if not wanted or wanted in e.name.lower()]
