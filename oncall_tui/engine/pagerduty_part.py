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

from collections.abc import Callable, Mapping, Sequence

import httpx

from oncall_tui.clock import Clock
from oncall_tui.config import Config
from oncall_tui.engine.incident_changes import IncidentChange, change_log_rows
from oncall_tui.engine.incident_part import IncidentPart, LogRow
from oncall_tui.engine.pagerduty import SOURCE, PagerDutyActions, PagerDutySource
from oncall_tui.events import EngineEvent
from oncall_tui.models import Incident, IncidentNote, LogEntry, meets_severity
from oncall_tui.providers.pagerduty import PagerDutyClient
from oncall_tui.providers.pagerduty_events import PagerDutyEventsClient
from oncall_tui.store import Store

URGENCY_SEVERITY = {"high": "critical", "low": "warning"}
"""How an incident's urgency compares with `notify.min_severity`."""


def pagerduty_configured(config: Config) -> bool:
    return config.pagerduty is not None and config.pagerduty.api_token is not None


class PagerDutyPart(IncidentPart):
    """Everything PagerDuty in one object, so the engine wires it in a handful of lines."""

    system = SOURCE
    title = "PagerDuty"
    incidents_name = "incidents"

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
        super().__init__(config, clock=clock, store=store, emit=emit, changed=changed)
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
        self.source: PagerDutySource = PagerDutySource(
            self.client,
            clock,
            service_ids=pd.service_ids,
            escalation_policy_ids=pd.escalation_policy_ids,
        )
        self.actions: PagerDutyActions = PagerDutyActions(
            self.client, self.events, self.source, clock
        )

    def log_rows(self, change: IncidentChange) -> Sequence[LogRow]:
        return change_log_rows(change)

    def loud(self, change: IncidentChange) -> tuple[Incident, ...]:
        minimum = self._config.notify.min_severity
        return tuple(
            i
            for i in change.raised
            if meets_severity(URGENCY_SEVERITY.get(i.urgency, "critical"), minimum)
        )

    # -- pushes ------------------------------------------------------------------------------

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
