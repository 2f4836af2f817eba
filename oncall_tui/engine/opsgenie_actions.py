"""Operator actions on Opsgenie alerts, and test alerts fired at Opsgenie.

Opsgenie answers every write with 202 and a request id and does the work later, so each action
is followed with `wait_for_request` until Opsgenie says how it went; until then the action stays
pending in the outbox. The request id is remembered per action id (in the log's state table when
there is one), so a retry of an action whose outcome was not yet known asks about that request
instead of sending it again, across restarts too; before a first send, an acknowledge or close
already reached and a note of ours already present count as done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from oncall_tui.clock import Clock
from oncall_tui.engine.actions import ALERT_FIRE, ActionRejected, ActionRequest, Outcome
from oncall_tui.engine.incident_changes import IncidentChange, incident_data, incident_ref
from oncall_tui.engine.opsgenie import (
    ACK,
    ESCALATE,
    NOTE,
    NOTE_RETRY_WINDOW,
    REQUEST_STATE,
    REQUEST_WAIT,
    RESOLVE,
    SOURCE,
    OpsgenieApi,
    OpsgenieSource,
    alert_body,
)
from oncall_tui.models import Incident, IncidentNote
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.opsgenie import EscalationInfo, RequestStatus
from oncall_tui.store import Store


class OpsgenieActions:
    """Carries out incident actions on Opsgenie alerts, and test alerts fired at Opsgenie.

    Invalid requests and requests Opsgenie processed unsuccessfully are final (ActionRejected);
    a request not processed within `wait` seconds raises RequestPending, a retryable
    ProviderError, so the outbox asks about the same request again later.
    """

    KINDS: frozenset[str] = frozenset({ACK, RESOLVE, ESCALATE, NOTE})

    def __init__(
        self,
        client: OpsgenieApi,
        source: OpsgenieSource,
        clock: Clock,
        *,
        store: Store | None = None,
        wait: float = REQUEST_WAIT,
    ) -> None:
        self._client = client
        self._source = source
        self._clock = clock
        self._store = store
        self.wait = wait
        self._requests: dict[str, str] = {}
        self.applied = IncidentChange()
        """Changes our actions made, for the log; the part takes and clears it."""

    def handles(self, request: ActionRequest) -> bool:
        if request.kind == ALERT_FIRE:
            return request.params.get("to") == SOURCE
        return request.kind in self.KINDS and request.target.startswith(f"{SOURCE}/")

    # -- request ids, remembered per action ----------------------------------------------------

    async def _recall(self, action_id: str) -> str | None:
        known = self._requests.get(action_id)
        if known is None and self._store is not None:
            known = await self._store.get_state(REQUEST_STATE + action_id) or None
        return known

    async def _remember(self, action_id: str, request_id: str) -> None:
        self._requests[action_id] = request_id
        if self._store is not None:
            await self._store.set_state(REQUEST_STATE + action_id, request_id)

    async def _follow(self, request_id: str) -> RequestStatus:
        return await self._client.wait_for_request(request_id, timeout=self.wait)

    # -- running -----------------------------------------------------------------------------

    async def run(self, action_id: str, request: ActionRequest) -> Outcome:
        if request.kind == ALERT_FIRE:
            return await self.fire(action_id, request)
        if request.kind not in self.KINDS:
            raise ActionRejected(f"unknown action {request.kind!r}")
        alert_id = _alert_id(request.target)
        content = str(request.params.get("content") or "").strip()
        if request.kind == NOTE and not content:
            raise ActionRejected("a note needs some text")
        request_id = await self._recall(action_id)
        escalation: EscalationInfo | None = None
        if request.kind == ESCALATE:
            escalation = await self._escalation_for(alert_id, request.params)
        if request_id is None:
            # First try, or a retry whose send never got an answer: is it done already?
            already = await self._already(request.kind, alert_id, content)
            if already is not None:
                return already
            request_id = await self._send(request.kind, alert_id, content, escalation)
            await self._remember(action_id, request_id)
        status = await self._follow(request_id)
        if not status.success:
            raise ActionRejected(f"Opsgenie did not {_verb(request.kind)}: {status.status}")
        return await self._done(request.kind, alert_id, status, content, escalation)

    async def _fresh(self, alert_id: str) -> Incident:
        try:
            return await self._client.alert(alert_id)
        except ProviderError as exc:
            if exc.status == 404:
                raise ActionRejected(f"Opsgenie alert {alert_id} does not exist") from None
            raise

    def _apply(self, alert: Incident) -> Incident:
        change = self._source.apply_alert(alert)
        if change:
            self.applied = self.applied + change
        return self._source.incident(alert.id) or alert

    async def _already(self, kind: str, alert_id: str, content: str) -> Outcome | None:
        if kind in (ACK, RESOLVE):
            alert = self._apply(await self._fresh(alert_id))
            if alert.status == "closed":
                if kind == RESOLVE:
                    return Outcome(
                        f"{incident_ref(alert)} was already closed",
                        {**incident_data(alert), "already": "closed"},
                    )
                raise ActionRejected(f"{incident_ref(alert)} is closed: nothing to acknowledge")
            if kind == ACK and alert.status == "acknowledged":
                return Outcome(
                    f"{incident_ref(alert)} was already acknowledged",
                    {**incident_data(alert), "already": "acknowledged"},
                )
        if kind == NOTE:
            since = self._clock.now() - NOTE_RETRY_WINDOW
            try:
                notes = await self._client.notes(alert_id)
            except ProviderError as exc:
                if exc.status == 404:
                    raise ActionRejected(f"Opsgenie alert {alert_id} does not exist") from None
                raise
            for note in notes:
                if (
                    note.content.strip() == content
                    and note.created_at >= since
                    and (not self._client.user or note.user == self._client.user)
                ):
                    return Outcome(
                        f"note already on {alert_id}",
                        {"incident_id": alert_id, "note_id": note.id, "already": "noted"},
                    )
        return None

    async def _escalation_for(self, alert_id: str, params: Mapping[str, Any]) -> EscalationInfo:
        """The escalation named by `escalation_id` (or `escalation`, a name), else the one the
        alert was routed to. A `level` (PagerDuty's notion) is ignored: Opsgenie escalates to
        an escalation, not to a level."""
        wanted_id = str(params.get("escalation_id") or "")
        wanted_name = str(params.get("escalation") or "")
        if not wanted_id and not wanted_name:
            known = self._source.incident(alert_id) or await self._fresh(alert_id)
            wanted_id = known.escalation_policy_id
            if not wanted_id:
                raise ActionRejected(
                    f"{incident_ref(known)} was routed to no escalation: name one (escalation_id)"
                )
        if not self._source.escalations:
            self._source.escalations = {e.id: e for e in await self._client.escalations()}
        for escalation in self._source.escalations.values():
            if (wanted_id and escalation.id == wanted_id) or (
                not wanted_id and escalation.name == wanted_name
            ):
                return escalation
        if wanted_id:
            # Not listed (a key without configuration access): Opsgenie still knows it.
            return EscalationInfo(id=wanted_id, name=wanted_id)
        raise ActionRejected(f"no Opsgenie escalation named {wanted_name!r}")

    async def _send(
        self, kind: str, alert_id: str, content: str, escalation: EscalationInfo | None
    ) -> str:
        if kind == ACK:
            return await self._client.acknowledge(alert_id)
        if kind == RESOLVE:
            return await self._client.close(alert_id)
        if kind == NOTE:
            return await self._client.add_note(alert_id, content)
        assert escalation is not None
        return await self._client.escalate(alert_id, escalation.id)

    async def _done(
        self,
        kind: str,
        alert_id: str,
        status: RequestStatus,
        content: str,
        escalation: EscalationInfo | None,
    ) -> Outcome:
        alert: Incident | None
        try:
            alert = self._apply(await self._client.alert(alert_id))
        except ProviderError:
            # Done in Opsgenie; the next poll shows it.
            alert = self._source.incident(alert_id)
        name = incident_ref(alert) if alert is not None else alert_id
        data: dict[str, Any] = {
            **(incident_data(alert) if alert is not None else {"incident_id": alert_id}),
            "request_id": status.request_id,
        }
        if kind == NOTE:
            note = IncidentNote(
                id=status.request_id,
                content=content,
                user=self._client.user,
                created_at=status.processed_at or self._clock.now(),
            )
            if alert is not None:
                self.applied = self.applied + IncidentChange(noted=((alert, note),))
            return Outcome(f"added a note to {name}", data)
        if kind == ESCALATE:
            assert escalation is not None
            if alert is not None:
                shown = replace(alert, escalation_policy=escalation.name)
                self.applied = self.applied + IncidentChange(escalated=(shown,))
            return Outcome(
                f"escalated {name} to {escalation.name}", {**data, "escalation": escalation.name}
            )
        return Outcome(f"{'acknowledged' if kind == ACK else 'closed'} {name}", data)

    async def fire(self, action_id: str, request: ActionRequest) -> Outcome:
        """A test alert through the Alert API. Its alias comes from the action id, so a retry
        folds into the alert the first try created instead of opening a second one."""
        params = request.params
        labels = {str(k): str(v) for k, v in dict(params.get("labels", {})).items()}
        if not labels.get("alertname"):
            raise ActionRejected("a test alert needs an alertname label")
        annotations = {str(k): str(v) for k, v in dict(params.get("annotations", {})).items()}
        alias = f"oncall-tui-test-{action_id}"
        request_id = await self._recall(action_id)
        if request_id is None:
            request_id = await self._client.create_alert(**alert_body(labels, annotations, alias))
            await self._remember(action_id, request_id)
        status = await self._follow(request_id)
        if not status.success:
            raise ActionRejected(f"Opsgenie did not create the alert: {status.status}")
        return Outcome(
            f"fired test alert {labels['alertname']} to Opsgenie",
            {
                "labels": labels,
                "annotations": annotations,
                "alias": alias,
                "alert_id": status.alert_id,
                "request_id": request_id,
            },
        )


def _verb(kind: str) -> str:
    return {ACK: "acknowledge", RESOLVE: "close", ESCALATE: "escalate", NOTE: "add the note"}[kind]


def _alert_id(target: str) -> str:
    system, sep, alert_id = target.partition("/")
    if not sep or system != SOURCE or not alert_id:
        raise ActionRejected(f"not an Opsgenie alert: {target!r}")
    return alert_id
