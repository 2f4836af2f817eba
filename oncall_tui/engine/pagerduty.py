"""PagerDuty as a source and as a target of operator actions.

`PagerDutySource` polls incidents and on-calls, applies Webhooks v3 events the moment they
arrive, and reports what changed (for the log and for notifications). Polling is the source of
truth and reconciles; a webhook newer than the poll in flight wins over that poll's answer, and
an event older than what is known is ignored, so deliveries that race or arrive out of order
never move an incident backwards. A failing PagerDuty keeps its last known incidents, marked
stale, rather than an empty list.

`PagerDutyActions` carries out the Incidents view's actions; every one is idempotent on retry
(the outbox may repeat an action whose answer was lost). `PagerDutyPart` bundles both with
their poll loops, log rows and queries, so that the engine wires PagerDuty in a few lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from oncall_tui.clock import Clock
from oncall_tui.engine.actions import ALERT_FIRE, ActionRejected, ActionRequest, Outcome
from oncall_tui.engine.incident_changes import (
    IncidentChange,
    change_log_rows,
    diff_incidents,
    incident_data,
    incident_ref,
)
from oncall_tui.engine.polled_health import PolledHealth
from oncall_tui.models import (
    Incident,
    IncidentNote,
    OnCall,
    Shift,
    Snapshot,
    SourceHealth,
)
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.pagerduty import (
    ALREADY_ACKNOWLEDGED,
    ALREADY_RESOLVED,
    PagerDutyClient,
    incident_from_webhook,
    pagerduty_error_code,
    with_escalation_levels,
)
from oncall_tui.providers.pagerduty_events import PagerDutyEventsClient, event_severity

__all__ = [
    "IncidentChange",
    "PagerDutyActions",
    "PagerDutySource",
    "change_log_rows",
    "diff_incidents",
]


SOURCE = "pagerduty"
RESOLVED_CONTEXT = timedelta(hours=1)
"""Resolved incidents stay in the list this long after they were resolved, for context."""
LOOKAHEAD = timedelta(days=7)
MAX_VANISHED_LOOKUPS = 20
"""Open incidents missing from a poll are looked up one by one, at most this many per poll."""
MAX_SCHEDULES = 50
NOTE_RETRY_WINDOW = timedelta(hours=24)
"""A note with the same text by us within this window counts as the one a retry already sent."""

ACK = "incident.acknowledge"
RESOLVE = "incident.resolve"
ESCALATE = "incident.escalate"
REASSIGN = "incident.reassign"
SNOOZE = "incident.snooze"
NOTE = "incident.note"


# --- the source ------------------------------------------------------------------------------


class PagerDutySource:
    """Incidents, on-calls and schedule shifts of one PagerDuty account, kept current."""

    def __init__(
        self,
        client: PagerDutyClient,
        clock: Clock,
        *,
        service_ids: Sequence[str] = (),
        escalation_policy_ids: Sequence[str] = (),
    ) -> None:
        self._client = client
        self._clock = clock
        self._service_ids = tuple(service_ids)
        self._policy_ids = tuple(escalation_policy_ids)
        self._incidents: dict[str, Incident] = {}
        self.oncalls: list[OnCall] = []
        self.shifts: list[Shift] = []
        self._health = PolledHealth(SOURCE, client.api_url, clock)
        self.polled_once = False
        self._pushes = 0  # webhook events applied so far
        self._pushed_at: dict[str, int] = {}  # incident id -> push count when last pushed
        self._resolved_seen: dict[str, datetime] = {}  # incident id -> when we saw it resolved
        self._note_ids: dict[str, None] = {}  # notes already logged (ours, or pushed before)

    @property
    def health(self) -> SourceHealth:
        return self._health.current

    @property
    def incidents(self) -> list[Incident]:
        """Open incidents first (triggered, then acknowledged), newest first within each."""
        order = {"triggered": 0, "acknowledged": 1}
        return sorted(
            self._incidents.values(),
            key=lambda i: (order.get(i.status, 2), -i.created_at.timestamp()),
        )

    def incident(self, incident_id: str) -> Incident | None:
        return self._incidents.get(incident_id)

    def restore(self, snapshot: Snapshot) -> None:
        """Seed with the last known snapshot so the first poll logs only real changes."""
        self._incidents = {i.id: i for i in snapshot.incidents if i.system == SOURCE}
        self.oncalls = [o for o in snapshot.oncalls if o.system == SOURCE]
        self.shifts = [s for s in snapshot.shifts if s.system == SOURCE]
        self._health.restore(snapshot)

    # -- polling -----------------------------------------------------------------------------

    async def poll_incidents(self) -> IncidentChange:
        """Open incidents, plus those resolved in the last hour; returns what changed."""
        pushes_before = self._pushes
        now = self._clock.now()
        try:
            open_now = await self._client.incidents(service_ids=self._service_ids)
            resolved = await self._client.incidents(
                statuses=("resolved",), service_ids=self._service_ids, since=now - RESOLVED_CONTEXT
            )
            fetched = {i.id: i for i in (*resolved, *open_now)}
            vanished = [i for i in self._incidents.values() if i.is_open and i.id not in fetched]
            for incident in vanished[:MAX_VANISHED_LOOKUPS]:
                # Resolved (or moved out of our services) since the last poll, but opened
                # before the resolved window: ask for it, to know which.
                try:
                    found = await self._client.incident(incident.id)
                except ProviderError as exc:
                    if exc.status != 404:
                        raise
                    continue
                if not self._service_ids or found.service_id in self._service_ids:
                    fetched[found.id] = found
            for incident in vanished[MAX_VANISHED_LOOKUPS:]:
                fetched[incident.id] = incident  # as it was: looked up by a later poll
        except ProviderError as exc:
            self._health.mark("incidents", str(exc))
            return IncidentChange()
        finally:
            self.polled_once = True
        self._health.mark("incidents", "")
        polled = with_escalation_levels(list(fetched.values()), self._current_oncalls(now))
        merged: dict[str, Incident] = {}
        for incident in polled:
            before = self._incidents.get(incident.id)
            if before is not None and self._pushed_at.get(incident.id, -1) > pushes_before:
                # A webhook applied while this poll was in flight is newer than its answer.
                merged[incident.id] = before
                continue
            merged[incident.id] = _keep_known(incident, before)
        change = diff_incidents(self._incidents, list(merged.values()))
        self._incidents = self._prune(merged, now)
        self._pushed_at = {k: v for k, v in self._pushed_at.items() if k in self._incidents}
        return change

    def _prune(self, incidents: dict[str, Incident], now: datetime) -> dict[str, Incident]:
        kept: dict[str, Incident] = {}
        for incident in incidents.values():
            if incident.is_open:
                self._resolved_seen.pop(incident.id, None)
                kept[incident.id] = incident
                continue
            seen = self._resolved_seen.setdefault(incident.id, incident.last_change_at or now)
            if now - seen <= RESOLVED_CONTEXT:
                kept[incident.id] = incident
            else:
                self._resolved_seen.pop(incident.id, None)
        return kept

    def _current_oncalls(self, now: datetime) -> list[OnCall]:
        return [o for o in self.oncalls if o.start is None or o.start <= now]

    def with_levels(self, incidents: Sequence[Incident]) -> list[Incident]:
        """Unknown escalation levels filled from who is on call now (not from later shifts)."""
        return with_escalation_levels(incidents, self._current_oncalls(self._clock.now()))

    async def poll_oncall(self) -> None:
        """Who is on call now at each level, who is next, and 7 days of shifts per schedule."""
        now = self._clock.now()
        try:
            current = await self._client.oncalls(escalation_policy_ids=self._policy_ids)
            upcoming = await self._client.oncalls(
                escalation_policy_ids=self._policy_ids,
                since=now,
                until=now + LOOKAHEAD,
                earliest=True,
            )
            names: dict[str, None] = dict.fromkeys(o.schedule for o in current if o.schedule)
            wanted = set(list(names)[:MAX_SCHEDULES])
            shifts: list[Shift] = []
            if wanted:
                for schedule in await self._client.schedules():
                    if schedule.name in wanted:
                        shifts.extend(await self._client.shifts(schedule.id, now, now + LOOKAHEAD))
        except ProviderError as exc:
            self._health.mark("on-call", str(exc))
            return
        self._health.mark("on-call", "")
        seen: set[tuple[str, int, str, datetime | None]] = set()
        oncalls: list[OnCall] = []
        for oncall in [*current, *(o for o in upcoming if o.start is not None and o.start > now)]:
            key = (oncall.policy_id, oncall.level, oncall.user_id, oncall.start)
            if key not in seen:
                seen.add(key)
                oncalls.append(oncall)
        self.oncalls = sorted(oncalls, key=lambda o: (o.policy, o.level, o.start or now, o.user))
        self.shifts = sorted(shifts, key=lambda s: (s.schedule, s.start, s.end))
        # Levels depend on who is on call where; fill those that were unknown.
        self._incidents = {i.id: i for i in self.with_levels(list(self._incidents.values()))}

    # -- pushes ------------------------------------------------------------------------------

    def apply_webhook(self, event: Mapping[str, Any]) -> IncidentChange:
        """Apply one Webhooks v3 event at once; an event older than what is known changes
        nothing. Raises ValueError for an incident event without the fields it must have."""
        inner = event.get("event", event)
        if not isinstance(inner, Mapping):
            return IncidentChange()
        event_type = str(inner.get("event_type") or "")
        if event_type == "incident.annotated":
            return self._apply_note(inner)
        pushed = incident_from_webhook(event)
        if pushed is None:
            return IncidentChange()
        if self._service_ids and pushed.service_id not in self._service_ids:
            return IncidentChange()  # a service this dashboard does not watch
        before = self._incidents.get(pushed.id)
        if (
            before is not None
            and before.last_change_at is not None
            and pushed.last_change_at is not None
            and pushed.last_change_at < before.last_change_at
        ):
            return IncidentChange()  # delivered late: what we know is newer
        incident = self.apply_incident(pushed)
        return self._change_for(event_type, before, incident)

    def apply_incident(self, incident: Incident) -> Incident:
        """Take a newer view of one incident (from a webhook or an action's answer)."""
        before = self._incidents.get(incident.id)
        if incident.escalation_level is None:
            incident = self.with_levels([incident])[0]
        incident = _keep_known(incident, before)
        self._incidents[incident.id] = incident
        self._pushes += 1
        self._pushed_at[incident.id] = self._pushes
        if not incident.is_open:
            self._resolved_seen.setdefault(incident.id, self._clock.now())
        return incident

    def _change_for(
        self, event_type: str, before: Incident | None, incident: Incident
    ) -> IncidentChange:
        if event_type in ("incident.escalated", "incident.reassigned", "incident.delegated"):
            if before is not None and (
                before.assignee_ids == incident.assignee_ids
                and before.escalation_policy_id == incident.escalation_policy_id
            ):
                return IncidentChange()  # already seen by a poll or our own action
            if event_type == "incident.escalated":
                return IncidentChange(escalated=(incident,))
            return IncidentChange(reassigned=(incident,))
        if before is None:
            return diff_incidents({}, [incident])
        if before.status != incident.status:
            return diff_incidents({before.id: before}, [incident])
        return IncidentChange()

    def _apply_note(self, inner: Mapping[str, Any]) -> IncidentChange:
        data = inner.get("data")
        if not isinstance(data, Mapping):
            return IncidentChange()
        ref = data.get("incident")
        incident = self._incidents.get(str(ref.get("id"))) if isinstance(ref, Mapping) else None
        agent = inner.get("agent")
        author = ""
        if isinstance(agent, Mapping):
            author = str(agent.get("summary") or agent.get("name") or "")
        occurred = inner.get("occurred_at")
        try:
            at = datetime.fromisoformat(str(occurred)) if occurred else self._clock.now()
        except ValueError:
            at = self._clock.now()
        if incident is None:
            return IncidentChange()  # not one of ours (filtered service, or long resolved)
        if not self.note_seen(str(data.get("id") or "")):
            return IncidentChange()  # our own note, logged when we added it
        note = IncidentNote(
            id=str(data.get("id") or ""),
            content=str(data.get("content") or ""),
            user=author,
            created_at=at,
        )
        return IncidentChange(noted=((incident, note),))

    def note_seen(self, note_id: str) -> bool:
        """Remember a note; False if it was already known (so it is logged once)."""
        if not note_id:
            return True
        if note_id in self._note_ids:
            return False
        self._note_ids[note_id] = None
        if len(self._note_ids) > 10_000:
            self._note_ids.pop(next(iter(self._note_ids)))
        return True

    def edge(self, before: SourceHealth) -> bool | None:
        return self._health.edge(before)


# --- actions ---------------------------------------------------------------------------------


class PagerDutyActions:
    """Carries out incident actions; each is idempotent on retry.

    Acknowledging or resolving what already is (PagerDuty errors 1002/1001) is done, not failed.
    An escalation without a level goes one above the level known when the action first ran,
    remembered per action id, so a retry after a lost answer does not climb twice. A note whose
    text we already posted in the last 24 hours is the one a retry sent. Invalid requests are
    final (ActionRejected); ProviderErrors keep their `retryable` for the outbox.
    """

    KINDS: frozenset[str] = frozenset({ACK, RESOLVE, ESCALATE, REASSIGN, SNOOZE, NOTE})

    def __init__(
        self,
        client: PagerDutyClient,
        events: PagerDutyEventsClient | None,
        source: PagerDutySource,
        clock: Clock,
    ) -> None:
        self._client = client
        self._events = events
        self._source = source
        self._clock = clock
        self._planned_level: dict[str, int] = {}
        self._own_name: str | None = None
        self.applied = IncidentChange()
        """Changes our actions made, for the log; the part takes and clears it."""

    def handles(self, request: ActionRequest) -> bool:
        return request.kind in self.KINDS or (
            request.kind == ALERT_FIRE and request.params.get("to") == "pagerduty"
        )

    async def run(self, action_id: str, request: ActionRequest) -> Outcome:
        if request.kind == ALERT_FIRE:
            return await self.fire(action_id, request)
        if request.kind not in self.KINDS:
            raise ActionRejected(f"unknown action {request.kind!r}")
        incident_id = _incident_id(request.target)
        if request.kind == ACK:
            return await self._status(incident_id, "acknowledged")
        if request.kind == RESOLVE:
            return await self._status(
                incident_id, "resolved", str(request.params.get("resolution") or "")
            )
        if request.kind == ESCALATE:
            return await self._escalate(action_id, incident_id, request.params)
        if request.kind == REASSIGN:
            return await self._reassign(incident_id, request.params)
        if request.kind == SNOOZE:
            return await self._snooze(incident_id, request.params)
        return await self._note(incident_id, request.params)

    def _known(self, incident_id: str) -> Incident | None:
        return self._source.incident(incident_id)

    def _apply(self, incident: Incident) -> Incident:
        before = self._source.incident(incident.id)
        applied = self._source.apply_incident(incident)
        if before is None or before.status != applied.status:
            self.applied = self.applied + diff_incidents(
                {before.id: before} if before else {}, [applied]
            )
        elif before.assignee_ids != applied.assignee_ids or (
            before.escalation_policy_id != applied.escalation_policy_id
        ):
            self.applied = self.applied + diff_incidents({before.id: before}, [applied])
        return applied

    async def _status(self, incident_id: str, status: str, resolution: str = "") -> Outcome:
        try:
            if status == "acknowledged":
                incident = await self._client.acknowledge(incident_id)
            else:
                incident = await self._client.resolve(incident_id, resolution)
        except ProviderError as exc:
            code = pagerduty_error_code(exc)
            if code not in (ALREADY_ACKNOWLEDGED, ALREADY_RESOLVED):
                raise
            # Reached already (by someone else, or by our first try whose answer was lost).
            known = self._known(incident_id)
            name = incident_ref(known) if known else incident_id
            what = "acknowledged" if code == ALREADY_ACKNOWLEDGED else "resolved"
            return Outcome(
                f"{name} was already {what}",
                {"incident_id": incident_id, "already": what},
            )
        incident = self._apply(incident)
        verb = "acknowledged" if status == "acknowledged" else "resolved"
        return Outcome(f"{verb} {incident_ref(incident)}", incident_data(incident))

    async def _escalate(
        self, action_id: str, incident_id: str, params: Mapping[str, Any]
    ) -> Outcome:
        known = self._known(incident_id)
        if known is None or action_id in self._planned_level:
            # Unknown here, or a retry: what PagerDuty says now, not what we saw before.
            fresh = await self._client.incident(incident_id)
            known = self._source.with_levels([fresh])[0]
            if known.escalation_level is None and action_id in self._planned_level:
                known = self._known(incident_id) or known
        if not known.is_open:
            raise ActionRejected(f"{incident_ref(known)} is resolved: nothing to escalate")
        current = known.escalation_level
        if "level" in params and params["level"] is not None:
            target = _int_param(params, "level")
        else:
            target = self._planned_level.setdefault(action_id, (current or 1) + 1)
        if target < 1:
            raise ActionRejected("escalation levels start at 1")
        levels: int | None = None
        if known.escalation_policy_id:
            policies = await self._client.escalation_policies([known.escalation_policy_id])
            levels = len(policies[0].rules) if policies else None
        if levels is not None and target > levels:
            raise ActionRejected(
                f"{incident_ref(known)} is at the last level ({levels}) of "
                f"{known.escalation_policy or 'its escalation policy'}"
            )
        if current == target:
            return Outcome(
                f"{incident_ref(known)} is already at level {target}",
                {**incident_data(known), "already": "escalated"},
            )
        incident = await self._client.escalate(incident_id, target)
        incident = self._apply(replace(incident, escalation_level=target))
        who = f" ({incident.assignee})" if incident.assignee else ""
        return Outcome(
            f"escalated {incident_ref(incident)} to level {target}{who}", incident_data(incident)
        )

    async def _reassign(self, incident_id: str, params: Mapping[str, Any]) -> Outcome:
        raw_users = params.get("user_ids") or []
        if isinstance(raw_users, str) or not isinstance(raw_users, Sequence):
            raise ActionRejected("user_ids must be a list of PagerDuty user ids")
        user_ids = [str(u) for u in raw_users if str(u)]
        policy_id = str(params.get("escalation_policy_id") or "") or None
        if bool(user_ids) == (policy_id is not None):
            raise ActionRejected("reassign to users or to an escalation policy, exactly one")
        # Setting the same assignees again changes nothing: a retry is harmless.
        incident = await self._client.reassign(
            incident_id, user_ids=user_ids, escalation_policy_id=policy_id
        )
        incident = self._apply(incident)
        to = incident.assignee or incident.escalation_policy or ", ".join(user_ids)
        return Outcome(f"reassigned {incident_ref(incident)} to {to}", incident_data(incident))

    async def _snooze(self, incident_id: str, params: Mapping[str, Any]) -> Outcome:
        seconds = _int_param(params, "duration_seconds")
        if seconds <= 0:
            raise ActionRejected("a snooze needs a duration greater than zero")
        # Snoozing again restarts the same timer: a retry is harmless.
        incident = self._apply(await self._client.snooze(incident_id, seconds))
        return Outcome(
            f"snoozed {incident_ref(incident)} for {seconds // 60}m"
            if seconds % 60 == 0
            else f"snoozed {incident_ref(incident)} for {seconds}s",
            {**incident_data(incident), "duration_seconds": seconds},
        )

    async def _note(self, incident_id: str, params: Mapping[str, Any]) -> Outcome:
        content = str(params.get("content") or "").strip()
        if not content:
            raise ActionRejected("a note needs some text")
        me = await self._own()
        since = self._clock.now() - NOTE_RETRY_WINDOW
        for existing in await self._client.notes(incident_id):
            if (
                existing.content.strip() == content
                and existing.created_at >= since
                and (me is None or existing.user == me)
            ):
                return Outcome(
                    f"note already on {incident_id}",
                    {"incident_id": incident_id, "note_id": existing.id, "already": "noted"},
                )
        note = await self._client.add_note(incident_id, content)
        known = self._known(incident_id)
        if known is not None and self._source.note_seen(note.id):
            self.applied = self.applied + IncidentChange(noted=((known, note),))
        name = incident_ref(known) if known else incident_id
        return Outcome(f"added a note to {name}", {"incident_id": incident_id, "note_id": note.id})

    async def _own(self) -> str | None:
        """Our PagerDuty user's name (the `From` email's user), or None when it cannot be told."""
        if self._own_name is None:
            email = self._client.from_email.lower()
            try:
                users = await self._client.users(email) if email else []
            except ProviderError:
                return None
            match = [u.name for u in users if u.email.lower() == email]
            self._own_name = match[0] if match else ""
        return self._own_name or None

    async def fire(self, action_id: str, request: ActionRequest) -> Outcome:
        """A test alert through the Events API; its dedup key comes from the action id, so a
        retry joins the alert the first try opened instead of paging twice."""
        if self._events is None:
            raise ActionRejected("PagerDuty Events API is not configured (pagerduty.routing_key)")
        params = request.params
        labels = {str(k): str(v) for k, v in dict(params.get("labels", {})).items()}
        if not labels.get("alertname"):
            raise ActionRejected("a test alert needs an alertname label")
        annotations = {str(k): str(v) for k, v in dict(params.get("annotations", {})).items()}
        summary = (
            annotations.get("summary") or annotations.get("description") or labels["alertname"]
        )
        dedup_key = await self._events.trigger(
            summary=summary,
            source=labels.get("instance") or labels.get("service") or "oncall-tui",
            severity=event_severity(labels.get("severity", "")),
            dedup_key=f"oncall-tui-test-{action_id}",
            custom_details={"labels": labels, "annotations": annotations},
            component=labels.get("service", ""),
            class_=labels["alertname"],
        )
        return Outcome(
            f"fired test alert {labels['alertname']} to PagerDuty",
            {"labels": labels, "annotations": annotations, "dedup_key": dedup_key},
        )


def _incident_id(target: str) -> str:
    system, sep, incident_id = target.partition("/")
    if not sep or system != SOURCE or not incident_id:
        raise ActionRejected(f"not a PagerDuty incident: {target!r}")
    return incident_id


def _int_param(params: Mapping[str, Any], name: str) -> int:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ActionRejected(f"{name} must be a number")
    try:
        return int(float(value))
    except ValueError:
        raise ActionRejected(f"{name} must be a number") from None


def _keep_known(incident: Incident, before: Incident | None) -> Incident:
    """A newer view of an incident, with what that view cannot tell taken from the older one.

    Webhook payloads carry neither the escalation level nor who acknowledged earlier; REST lists
    carry no level for schedule targets.
    """
    if before is None:
        return incident
    changes: dict[str, Any] = {}
    if incident.escalation_level is None and before.escalation_level is not None:
        changes["escalation_level"] = before.escalation_level
    if incident.status != "triggered" and before.acknowledged_by:
        extra = tuple(n for n in incident.acknowledged_by if n not in before.acknowledged_by)
        changes["acknowledged_by"] = before.acknowledged_by + extra
    for name in ("url", "number", "priority", "service", "escalation_policy"):
        if not getattr(incident, name) and getattr(before, name):
            changes[name] = getattr(before, name)
    return replace(incident, **changes) if changes else incident
