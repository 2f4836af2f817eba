"""Statuspage as a source (components, incidents) and as a target of actions.

`StatuspageSource` polls the page: its components, its unresolved incidents with their history
(which automation reads to tell whether an operator has edited an incident), and the incidents
resolved in the last 24 hours for context. A failing Statuspage keeps what was last seen, marked
stale, never an empty page. `poll()` returns log rows for what changed since the previous poll.

`StatuspageActions` carries out the three Statuspage action kinds. Each is safe to repeat, since
the outbox repeats an action whose answer was lost:

* `statuspage.incident.create` carries a key in the incident's metadata (`automation_key` or
  the action id) and first looks for an unresolved incident with that key;
* `statuspage.incident.update` is done without a call when the incident already says exactly
  that (same status, latest update with the same text, components and name as asked): the vendor
  appends an update per call, so a blind resend would post the same words twice;
* `statuspage.component.status` sets a status, which is idempotent by nature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from oncall_tui.clock import Clock
from oncall_tui.engine.actions import ActionRejected, ActionRequest, Outcome
from oncall_tui.models import Component, Snapshot, SourceHealth, StatusIncident
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.statuspage import (
    COMPONENT_STATUSES,
    IMPACTS,
    INCIDENT_STATUSES,
    StatusIncidentDetail,
    StatuspageClient,
)

SOURCE = "statuspage"
INCIDENT_CREATE = "statuspage.incident.create"
INCIDENT_UPDATE = "statuspage.incident.update"
COMPONENT_STATUS = "statuspage.component.status"
KINDS = frozenset({INCIDENT_CREATE, INCIDENT_UPDATE, COMPONENT_STATUS})
"""Every Statuspage action kind; all of them change the public page (refused when read-only)."""

METADATA_KEY = "oncall_tui"
"""Top-level metadata object on incidents we create: {"key": ..., "opened_by": ...}."""
RESOLVED_CONTEXT = timedelta(hours=24)
"""Resolved incidents stay in the list this long after their last update, for context."""
RECENT_LIMIT = 25

Row = tuple[str, str, str, Mapping[str, Any]]


def incident_key(detail: StatusIncidentDetail) -> str:
    """The idempotency key we put in an incident's metadata, or "" if it has none."""
    ours = detail.metadata.get(METADATA_KEY)
    if isinstance(ours, Mapping):
        return str(ours.get("key") or "")
    return ""


# --- the source ------------------------------------------------------------------------------


class StatuspageSource:
    """The page as last seen: components, incidents, history of the unresolved ones, health."""

    def __init__(self, client: StatuspageClient, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        self.components: list[Component] = []
        self.incidents: list[StatusIncident] = []
        self.details: dict[str, StatusIncidentDetail] = {}
        """Unresolved incidents by id, with history and metadata."""
        self.health = SourceHealth(name=SOURCE, kind=SOURCE)
        self.polled_once = False
        self.polls = 0
        """Successful polls so far in this process."""

    def restore(self, snapshot: Snapshot) -> None:
        """Show the last known page (stale) until Statuspage answers."""
        self.components = list(snapshot.components)
        self.incidents = list(snapshot.status_incidents)
        saved = snapshot.health_of(SOURCE)
        if saved is not None:
            self.health = replace(
                self.health,
                last_success=saved.last_success,
                stale_since=saved.stale_since or saved.last_success,
            )

    def component(self, component_id: str) -> Component | None:
        return next((c for c in self.components if c.id == component_id), None)

    def incident(self, incident_id: str) -> StatusIncident | None:
        return next((i for i in self.incidents if i.id == incident_id), None)

    async def poll(self) -> list[Row]:
        """Read the page; log rows for what changed (nothing on failure but the health edge)."""
        before = self.health
        try:
            components = await self._client.components()
            unresolved = await self._client.unresolved_incident_details()
            recent = await self._client.incidents(limit=RECENT_LIMIT)
        except ProviderError as exc:
            now = self._clock.now()
            self.health = replace(
                self.health,
                reachable=False,
                stale_since=self.health.stale_since or self.health.last_success or now,
                error=str(exc),
            )
            return self._edge_rows(before)
        now = self._clock.now()
        open_ids = {d.id for d in unresolved}
        context = [
            i
            for i in recent
            if i.id not in open_ids
            and i.status == "resolved"
            and now - i.updated_at <= RESOLVED_CONTEXT
        ]
        incidents = [d.incident for d in unresolved] + context
        self.health = replace(
            self.health, reachable=True, last_success=now, stale_since=None, error=""
        )
        rows = self._edge_rows(before)
        if self.polled_once:
            rows += _component_rows(self.components, components)
            rows += _incident_rows(self.incidents, incidents)
        else:
            rows.append(
                (
                    SOURCE,
                    "poll.first",
                    f"Statuspage: {len(components)} components, "
                    f"{len(unresolved)} unresolved incidents",
                    {
                        "components": {c.id: c.status for c in components},
                        "unresolved": sorted(open_ids),
                    },
                )
            )
        self.components = components
        self.incidents = incidents
        self.details = {d.id: d for d in unresolved}
        self.polled_once = True
        self.polls += 1
        return rows

    def _edge_rows(self, before: SourceHealth) -> list[Row]:
        now_up = self.health.reachable
        if now_up is None or now_up == before.reachable:
            return []
        if now_up:
            if before.reachable is None:
                return []  # the first success is not news
            return [(SOURCE, "source.up", "Statuspage reachable again", {})]
        return [
            (SOURCE, "source.down", f"Statuspage unreachable: {self.health.error}", {}),
        ]

    # -- what actions changed, shown before the next poll ---------------------------------------

    def apply_incident(self, incident: StatusIncident) -> None:
        others = [i for i in self.incidents if i.id != incident.id]
        self.incidents = [incident, *others]
        if incident.status == "resolved":
            self.details.pop(incident.id, None)

    def apply_component(self, component: Component) -> None:
        self.components = [component if c.id == component.id else c for c in self.components]

    def apply_components(self, statuses: Mapping[str, str]) -> None:
        self.components = [
            replace(c, status=statuses[c.id]) if c.id in statuses else c for c in self.components
        ]


def _component_rows(old: Sequence[Component], new: Sequence[Component]) -> list[Row]:
    before = {c.id: c for c in old}
    rows: list[Row] = []
    for component in new:
        previous = before.get(component.id)
        if previous is None:
            rows.append(
                (
                    SOURCE,
                    "component.added",
                    f"component {component.name} added ({component.status})",
                    {"component_id": component.id, "status": component.status},
                )
            )
        elif previous.status != component.status:
            rows.append(
                (
                    SOURCE,
                    "component.status",
                    f"component {component.name}: {previous.status} -> {component.status}",
                    {
                        "component_id": component.id,
                        "status": component.status,
                        "previous": previous.status,
                    },
                )
            )
    return rows


def _incident_rows(old: Sequence[StatusIncident], new: Sequence[StatusIncident]) -> list[Row]:
    before = {i.id: i for i in old}
    rows: list[Row] = []
    for incident in new:
        previous = before.get(incident.id)
        data = {
            "incident_id": incident.id,
            "status": incident.status,
            "impact": incident.impact,
            "component_ids": list(incident.component_ids),
        }
        if previous is None:
            if incident.status == "resolved":
                continue  # an old incident entering the 24 h window is not news
            rows.append(
                (SOURCE, "incident.new", f"incident {incident.name!r}: {incident.status}", data)
            )
        elif previous.status != incident.status:
            kind = "incident.resolved" if incident.status == "resolved" else "incident.status"
            rows.append(
                (
                    SOURCE,
                    kind,
                    f"incident {incident.name!r}: {previous.status} -> {incident.status}",
                    {**data, "previous": previous.status},
                )
            )
        elif (
            previous.latest_update != incident.latest_update
            or previous.name != incident.name
            or previous.updated_at != incident.updated_at
        ):
            rows.append(
                (
                    SOURCE,
                    "incident.updated",
                    f"incident {incident.name!r} updated: {incident.latest_update[:120]}",
                    data,
                )
            )
    return rows


# --- actions ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Applied:
    """What the last action changed on the page, for the part to show at once."""

    incidents: list[StatusIncident] = field(default_factory=list)
    components: dict[str, str] = field(default_factory=dict)


class StatuspageActions:
    """Carries out the Status page view's (and automation's) actions, each safe to repeat."""

    KINDS = KINDS

    def __init__(self, client: StatuspageClient, source: StatuspageSource, clock: Clock) -> None:
        self._client = client
        self._source = source
        self._clock = clock
        self.applied = Applied()

    def handles(self, request: ActionRequest) -> bool:
        return request.kind in KINDS

    async def run(self, action_id: str, request: ActionRequest) -> Outcome:
        if request.kind == INCIDENT_CREATE:
            return await self._create(action_id, request.params)
        if request.kind == INCIDENT_UPDATE:
            return await self._update(request.target, request.params)
        if request.kind == COMPONENT_STATUS:
            return await self._component(request.target, request.params)
        raise ActionRejected(f"unknown action {request.kind!r}")

    async def _create(self, action_id: str, params: Mapping[str, Any]) -> Outcome:
        name = str(params.get("name") or "").strip()
        if not name:
            raise ActionRejected("an incident needs a name")
        status = _choice(params.get("status") or "investigating", INCIDENT_STATUSES, "status")
        if status == "resolved":
            raise ActionRejected("a new incident cannot start resolved")
        body = str(params.get("body") or "")
        impact_raw = params.get("impact")
        impact = _choice(impact_raw, IMPACTS, "impact") if impact_raw else None
        components = _components(params.get("components"))
        key = str(params.get("automation_key") or action_id)
        # A retry after a lost answer (or a restart) finds what the first try created.
        for detail in await self._client.unresolved_incident_details():
            if incident_key(detail) == key:
                self.applied.incidents.append(detail.incident)
                return Outcome(
                    f"incident {detail.incident.name!r} was already open",
                    {**_incident_data(detail.incident), "key": key, "already": "open"},
                )
        opened_by = "automation" if params.get("automation_key") else "operator"
        incident = await self._client.create_incident(
            name=name,
            status=status,
            body=body,
            impact=impact,
            components=components,
            metadata={METADATA_KEY: {"key": key, "opened_by": opened_by}},
        )
        self.applied.incidents.append(incident)
        self.applied.components.update(components)
        return Outcome(
            f"opened incident {incident.name!r} ({incident.status})",
            {**_incident_data(incident), "key": key},
        )

    async def _update(self, incident_id: str, params: Mapping[str, Any]) -> Outcome:
        if not incident_id:
            raise ActionRejected("an update needs the incident's id")
        status = params.get("status") or None
        if status is not None:
            status = _choice(status, INCIDENT_STATUSES, "status")
        body = params.get("body")
        body = str(body) if body else None
        name = params.get("name")
        name = str(name).strip() if name is not None else None
        if name == "":
            raise ActionRejected("an incident needs a name")
        components = _components(params.get("components"))
        if status is None and body is None and name is None and not components:
            raise ActionRejected("nothing to update")
        try:
            current = await self._client.incident(incident_id)
        except ProviderError as exc:
            if exc.status == 404:
                raise ActionRejected(f"no incident {incident_id} on the page") from None
            raise
        if _already_says(current, status=status, body=body, name=name, components=components):
            return Outcome(
                f"incident {current.incident.name!r} already says that",
                {**_incident_data(current.incident), "already": "updated"},
            )
        incident = await self._client.update_incident(
            incident_id, status=status, body=body, components=components or None, name=name
        )
        self.applied.incidents.append(incident)
        self.applied.components.update(components)
        what = f"{incident.status}" + (f": {body[:80]}" if body else "")
        return Outcome(f"updated incident {incident.name!r} ({what})", _incident_data(incident))

    async def _component(self, component_id: str, params: Mapping[str, Any]) -> Outcome:
        if not component_id:
            raise ActionRejected("a component status change needs the component's id")
        status = _choice(params.get("status"), COMPONENT_STATUSES, "component status")
        try:
            component = await self._client.update_component(component_id, status)
        except ProviderError as exc:
            if exc.status == 404:
                raise ActionRejected(f"no component {component_id} on the page") from None
            raise
        self.applied.components[component.id] = component.status
        return Outcome(
            f"component {component.name} is now {component.status}",
            {"component_id": component.id, "status": component.status},
        )


def _already_says(
    current: StatusIncidentDetail,
    *,
    status: str | None,
    body: str | None,
    name: str | None,
    components: Mapping[str, str],
) -> bool:
    incident = current.incident
    if status is not None and incident.status != status:
        return False
    if name is not None and incident.name != name:
        return False
    statuses = {c.id: c.status for c in current.components}
    if any(statuses.get(cid) != wanted for cid, wanted in components.items()):
        return False
    if body is not None:
        latest = current.updates[0] if current.updates else None
        if latest is None or latest.body.strip() != body.strip():
            return False
        if latest.status != (status or incident.status):
            return False
    return True


def _choice(value: Any, allowed: Sequence[str], what: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ActionRejected(f"unknown {what} {value!r} (one of {', '.join(allowed)})")
    return value


def _components(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ActionRejected("components must map component ids to statuses")
    return {
        str(cid): _choice(status, COMPONENT_STATUSES, "component status")
        for cid, status in raw.items()
    }


def _incident_data(incident: StatusIncident) -> dict[str, Any]:
    return {
        "incident_id": incident.id,
        "name": incident.name,
        "status": incident.status,
        "impact": incident.impact,
        "component_ids": list(incident.component_ids),
    }


def time_text(moment: datetime) -> str:
    """How automation messages write a time: `14:05 UTC`."""
    return moment.strftime("%H:%M UTC")
