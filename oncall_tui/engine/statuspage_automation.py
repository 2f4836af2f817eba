"""Statuspage automation: public incidents opened and resolved from Alertmanager alerts.

The rules (issue 4), per Statuspage component:

* an alert matches when every `automation.match` label equals its value and its
  `automation.component_label` value is a key of `statuspage.components`; that value names the
  component. Only an *active* matching alert (not silenced, not inhibited) opens an incident:
  what an operator silenced does not go public. Any matching alert, whatever its state, keeps
  the component affected;
* one public incident per affected component. A component that already has an unresolved
  incident on the page (opened by an operator) is not given a second one: automation adopts it,
  but never resolves it. Further matching alerts join the component's incident (logged only:
  customers are not told about each alert);
* the incident is resolved only when no matching alert of the component has been seen for
  `resolve_after`, judged on complete Alertmanager answers only; an alert firing again before
  that keeps the incident open (no open/close/open flapping);
* it opens with the component at `component_status` and resolves with it back to `operational`;
* it auto-resolves only incidents it opened that no operator has edited since, whether the edit
  came through oncall-tui or Statuspage's own pages (an update it did not post, a new name).
  Otherwise it logs `automation.handover`, telling the operator every alert is resolved, and
  leaves the decision to them.

State lives in the log's state table, one JSON document per component under
`statuspage.automation/<component id>`, written before any request leaves, so a restart or a
duplicate webhook never opens a second incident: the create carries a key in the incident's
metadata and looks for it first (engine/statuspage.py). Every decision and outcome is a log
entry (source "automation", actor "automation").

Messages and their placeholders: engine/statuspage_episode.py.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from oncall_tui.clock import Clock
from oncall_tui.config import StatuspageConfig
from oncall_tui.engine.actions import ActionRequest, Outcome
from oncall_tui.engine.statuspage import (
    INCIDENT_CREATE,
    INCIDENT_UPDATE,
    incident_key,
)
from oncall_tui.engine.statuspage_episode import (
    CLOSED_EARLY,
    FAILED,
    HANDED_OVER,
    OPEN,
    OPENING,
    RESOLVING,
    Context,
    Episode,
    create_request,
    matching_component,
    message_values,
    render,
    resolve_request,
    templates_of,
)
from oncall_tui.models import Alert, AlertState, Component, LogEntry, StatusIncident
from oncall_tui.providers.statuspage import StatusIncidentDetail
from oncall_tui.store import Store

LOG_SOURCE = "automation"
ACTOR = "automation"
STATE_PREFIX = "statuspage.automation/"


class StatuspageAutomation:
    """Decides, from alerts and the page, which Statuspage actions to request."""

    def __init__(
        self,
        config: StatuspageConfig,
        store: Store,
        clock: Clock,
        *,
        on_entry: Callable[[LogEntry], None] | None = None,
    ) -> None:
        self.config = config
        self.rules = config.automation
        self._store = store
        self._clock = clock
        self._on_entry = on_entry
        self._episodes: dict[str, Episode | None] = {}
        self._lock = asyncio.Lock()
        self._unmapped_logged: set[str] = set()

    # -- matching --------------------------------------------------------------------------

    def component_of(self, alert: Alert) -> str | None:
        """The component id a matching alert affects, or None if it does not match."""
        return matching_component(self.config, alert)[1]

    def _unmapped(self, alerts: Iterable[Alert]) -> list[str]:
        """Label values of matching alerts with no component, each reported once."""
        found: list[str] = []
        for alert in alerts:
            matches, component_id = matching_component(self.config, alert)
            value = alert.labels.get(self.rules.component_label, "")
            if matches and component_id is None and value not in self._unmapped_logged:
                self._unmapped_logged.add(value)
                found.append(value)
        return found

    # -- state -----------------------------------------------------------------------------

    async def episode(self, component_id: str) -> Episode | None:
        """The component's current episode, from the log's state table."""
        if component_id not in self._episodes:
            text = await self._store.get_state(STATE_PREFIX + component_id)
            episode: Episode | None = None
            if text:
                try:
                    episode = Episode.from_json(text)
                except (ValueError, KeyError, TypeError) as exc:
                    # Starting afresh is safe: an incident still open for the component is
                    # adopted (and left to the operator), never doubled.
                    await self._log(
                        "state_unreadable",
                        f"automation state of component {component_id} unreadable "
                        f"({type(exc).__name__}); starting afresh",
                        {"component_id": component_id},
                    )
            self._episodes[component_id] = episode
        return self._episodes[component_id]

    async def _save(self, component_id: str, episode: Episode | None) -> None:
        self._episodes[component_id] = episode
        text = episode.to_json() if episode is not None else ""
        await self._store.set_state(STATE_PREFIX + component_id, text)

    async def _log(self, kind: str, summary: str, data: Mapping[str, Any]) -> None:
        entry = await self._store.append(
            LOG_SOURCE, f"automation.{kind}", summary, actor=ACTOR, data=data
        )
        if self._on_entry is not None:
            self._on_entry(entry)

    def _new_key(self, component_id: str) -> str:
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%S")
        return f"auto-{component_id}-{stamp}-{secrets.token_hex(3)}"

    # -- the rules -------------------------------------------------------------------------

    async def evaluate(
        self,
        alerts: Sequence[Alert],
        incidents: Sequence[StatusIncident],
        *,
        details: Sequence[StatusIncidentDetail] = (),
        components: Sequence[Component] = (),
        complete: bool = True,
    ) -> list[ActionRequest]:
        """Apply the rules once; returns the actions to submit (state is already saved).

        `incidents` is what the page shows (unresolved and recently resolved), `details` the
        unresolved ones with history and metadata. `complete` is False when some Alertmanager
        answer is missing or stale: no alert is then taken as resolved.
        """
        async with self._lock:
            if not self.rules.enabled:
                return []
            for value in self._unmapped(alerts):
                await self._log(
                    "unmapped",
                    f"matching alerts with {self.rules.component_label}={value!r} have no "
                    "Statuspage component (statuspage.components): no public incident",
                    {"label": value},
                )
            members: dict[str, list[Alert]] = {}
            for alert in alerts:
                component_id = self.component_of(alert)
                if component_id is not None:
                    members.setdefault(component_id, []).append(alert)
            names = {c.id: c.name for c in components}
            labels = {cid: label for label, cid in self.config.components.items()}
            context = Context(
                now=self._clock.now(),
                incidents={i.id: i for i in incidents},
                details={d.id: d for d in details},
                names=names,
                complete=complete,
            )
            requests: list[ActionRequest] = []
            for component_id in dict.fromkeys(self.config.components.values()):
                request = await self._evaluate_component(
                    component_id, labels[component_id], members.get(component_id, []), context
                )
                if request is not None:
                    requests.append(request)
            return requests

    async def _evaluate_component(
        self, component_id: str, label: str, members: list[Alert], ctx: Context
    ) -> ActionRequest | None:
        episode = await self.episode(component_id)
        active = [a for a in members if a.state == AlertState.ACTIVE]
        values = message_values(label, members, ctx.now, ctx.names.get(component_id))
        if episode is None:
            if not active:
                return None
            return await self._open(component_id, label, active, values, ctx)
        before = episode.to_json()
        request = await self._advance(episode, members, values, ctx)
        current = self._episodes.get(component_id)
        if current is episode and episode.to_json() != before:
            await self._save(component_id, episode)
        return request

    async def _open(
        self,
        component_id: str,
        label: str,
        active: list[Alert],
        values: Mapping[str, str],
        ctx: Context,
    ) -> ActionRequest | None:
        keys = [a.key for a in active]
        existing = [
            i
            for i in ctx.incidents.values()
            if i.status != "resolved" and component_id in i.component_ids
        ]
        if existing:
            # One public incident per component: never a second beside the operator's.
            incident = existing[0]
            episode = Episode(
                component_id=component_id,
                label=label,
                phase=OPEN,
                key="",
                opened_at=ctx.now,
                incident_id=incident.id,
                owned=False,
                name=incident.name,
                alerts=keys,
            )
            await self._save(component_id, episode)
            await self._log(
                "adopted",
                f"{values['component']}: {len(keys)} matching alert(s); incident "
                f"{incident.name!r} is already open for it, so no new one (it stays the "
                "operator's to resolve)",
                {"component_id": component_id, "incident_id": incident.id, "alerts": keys},
            )
            return None
        templates = templates_of(self.config)
        name = render(templates["title"], values)
        body = render(templates["investigating"], values)
        episode = Episode(
            component_id=component_id,
            label=label,
            phase=OPENING,
            key=self._new_key(component_id),
            opened_at=ctx.now,
            name=name,
            posted=[["investigating", body.strip()]],
            alerts=keys,
        )
        # Saved before the request leaves: a crash after this point finds the key, not nothing.
        await self._save(component_id, episode)
        await self._log(
            "open",
            f"{values['component']}: {len(keys)} matching alert(s) firing; opening a public "
            f"incident ({self.rules.impact}, component {self.rules.component_status})",
            {"component_id": component_id, "key": episode.key, "alerts": keys},
        )
        return create_request(self.rules, episode, body)

    async def _advance(
        self,
        episode: Episode,
        members: list[Alert],
        values: Mapping[str, str],
        ctx: Context,
    ) -> ActionRequest | None:
        cid = episode.component_id
        what = values["component"]
        if episode.phase == OPENING and not episode.incident_id:
            for detail in ctx.details.values():
                if incident_key(detail) == episode.key:
                    episode.incident_id = detail.id
                    episode.phase = OPEN
                    await self._log(
                        "opened",
                        f"{what}: incident {detail.incident.name!r} found on the page",
                        {"component_id": cid, "incident_id": detail.id, "key": episode.key},
                    )
        joined = [a.key for a in members if a.key not in episode.alerts]
        episode.alerts.extend(joined)
        if joined and episode.phase not in (CLOSED_EARLY, FAILED):
            await self._log(
                "joined",
                f"{what}: {len(joined)} more matching alert(s) joined the open incident",
                {"component_id": cid, "incident_id": episode.incident_id, "alerts": joined},
            )
        await self._notice_edits(episode, ctx, what)
        incident = ctx.incidents.get(episode.incident_id) if episode.incident_id else None
        if (
            incident is not None
            and incident.status == "resolved"
            and episode.phase in (OPEN, HANDED_OVER, OPENING)
        ):
            # Without a complete answer from Alertmanager, "no alert" is not "cleared": keep
            # the guard, or the next complete poll would open a second incident at once.
            if members or not ctx.complete:
                episode.phase = CLOSED_EARLY
                firing = (
                    f"{len(members)} alert(s) still fire"
                    if members
                    else "Alertmanager cannot say whether its alerts still fire"
                )
                await self._log(
                    "closed_early",
                    f"{what}: incident {incident.name!r} was resolved on the page while "
                    f"{firing}; no new incident until they clear",
                    {"component_id": cid, "incident_id": incident.id},
                )
                return None
            await self._end(episode, "closed", f"{what}: incident {incident.name!r} resolved")
            return None
        if episode.phase in (CLOSED_EARLY, FAILED):
            if not members and ctx.complete:
                await self._end(episode, "cleared", f"{what}: no matching alerts any more")
            return None
        if episode.phase == RESOLVING:
            return await self._resume_resolve(episode, values)
        if members:
            if episode.quiet_since is not None:
                quiet = (ctx.now - episode.quiet_since).total_seconds()
                episode.quiet_since = None
                await self._log(
                    "refired",
                    f"{what}: a matching alert fired again after {quiet:.0f}s quiet "
                    f"(< {self.rules.resolve_after:.0f}s); the incident stays open",
                    {"component_id": cid, "incident_id": episode.incident_id},
                )
            if episode.phase == HANDED_OVER:
                episode.phase = OPEN
            if episode.phase == OPENING and not episode.incident_id:
                return await self._resume_create(episode, values)
            return None
        if not ctx.complete:
            return None  # an Alertmanager did not answer: absence proves nothing
        if episode.quiet_since is None:
            episode.quiet_since = ctx.now
            await self._log(
                "quiet",
                f"{what}: every matching alert has resolved; resolving in "
                f"{self.rules.resolve_after:.0f}s unless one fires again",
                {"component_id": cid, "incident_id": episode.incident_id},
            )
            return None
        if episode.phase == OPENING and not episode.incident_id:
            return await self._resume_create(episode, values)
        waited = (ctx.now - episode.quiet_since).total_seconds()
        if waited < self.rules.resolve_after or episode.phase != OPEN:
            return None
        if not episode.owned or episode.edited:
            episode.phase = HANDED_OVER
            why = "an operator opened it" if not episode.owned else episode.edited
            await self._log(
                "handover",
                f"{what}: all alerts resolved {waited:.0f}s ago, but {why}: the incident is "
                "left open for the operator to resolve",
                {"component_id": cid, "incident_id": episode.incident_id, "reason": why},
            )
            return None
        body = render(templates_of(self.config)["resolved"], values)
        episode.phase = RESOLVING
        episode.resolve_key = f"{episode.key}-resolve"
        episode.posted.append(["resolved", body.strip()])
        await self._log(
            "resolve",
            f"{what}: all alerts resolved for {waited:.0f}s; resolving the incident and "
            "setting the component operational",
            {"component_id": cid, "incident_id": episode.incident_id},
        )
        return resolve_request(episode, body)

    async def _pending(self, key: str) -> bool:
        return any(
            a.params.get("automation_key") == key for a in await self._store.pending_actions()
        )

    async def _resume_create(
        self, episode: Episode, values: Mapping[str, str]
    ) -> ActionRequest | None:
        """The create is not in the outbox and not on the page (a crash before it was sent)."""
        if await self._pending(episode.key):
            return None
        await self._log(
            "retry",
            f"{values['component']}: the incident is not open yet and no request is pending; "
            "asking again (it carries the same key, so never twice)",
            {"component_id": episode.component_id, "key": episode.key},
        )
        return create_request(self.rules, episode, episode.posted[0][1])

    async def _resume_resolve(
        self, episode: Episode, values: Mapping[str, str]
    ) -> ActionRequest | None:
        if await self._pending(episode.resolve_key):
            return None
        await self._log(
            "retry",
            f"{values['component']}: the resolve is not pending any more; asking again "
            "(done at once if the page already says it)",
            {"component_id": episode.component_id, "incident_id": episode.incident_id},
        )
        return resolve_request(episode, episode.posted[-1][1])

    async def _notice_edits(self, episode: Episode, ctx: Context, what: str) -> None:
        detail = ctx.details.get(episode.incident_id) if episode.incident_id else None
        if detail is None or not episode.owned or episode.edited:
            return
        ours = {(status, body) for status, body in episode.posted}
        reason = ""
        if detail.incident.name != episode.name:
            reason = f"its name was changed to {detail.incident.name!r}"
        else:
            for update in detail.updates:
                if (update.status, update.body.strip()) not in ours:
                    reason = f"an operator posted an update ({update.status})"
                    break
        if reason:
            await self.mark_edited(episode, reason, what)

    async def mark_edited(self, episode: Episode, reason: str, what: str = "") -> None:
        episode.edited = reason
        await self._log(
            "edited",
            f"{what or episode.label}: {reason}; automation will not resolve this incident",
            {"component_id": episode.component_id, "incident_id": episode.incident_id},
        )

    async def _end(self, episode: Episode, kind: str, summary: str) -> None:
        await self._save(episode.component_id, None)
        await self._log(
            kind,
            summary,
            {"component_id": episode.component_id, "incident_id": episode.incident_id},
        )

    # -- outcomes of the actions it asked for (and of the operator's) ------------------------

    async def _find(self, match: Callable[[Episode], bool]) -> Episode | None:
        for component_id in dict.fromkeys(self.config.components.values()):
            episode = await self.episode(component_id)
            if episode is not None and match(episode):
                return episode
        return None

    async def on_outcome(self, request: ActionRequest, outcome: Outcome) -> None:
        """A Statuspage action succeeded; moves the episode it belongs to along."""
        async with self._lock:
            key = str(request.params.get("automation_key") or "")
            if request.kind == INCIDENT_CREATE and key:
                episode = await self._find(lambda e: e.key == key)
                if episode is None or episode.incident_id:
                    return
                episode.incident_id = str(outcome.data.get("incident_id", ""))
                if episode.phase == OPENING:
                    episode.phase = OPEN
                await self._save(episode.component_id, episode)
                await self._log(
                    "opened",
                    f"{episode.label}: {outcome.summary}",
                    {"component_id": episode.component_id, "incident_id": episode.incident_id},
                )
            elif request.kind == INCIDENT_UPDATE and key:
                episode = await self._find(lambda e: e.resolve_key == key)
                if episode is not None:
                    await self._end(episode, "resolved", f"{episode.label}: {outcome.summary}")
            elif request.kind == INCIDENT_UPDATE:
                # The operator changed an incident through oncall-tui.
                episode = await self._find(lambda e: e.incident_id == request.target)
                if episode is not None and episode.owned and not episode.edited:
                    await self.mark_edited(episode, "an operator updated it through oncall-tui")
                    await self._save(episode.component_id, episode)

    async def on_failure(self, request: ActionRequest, error: str) -> None:
        """A Statuspage action this automation asked for was refused for good."""
        async with self._lock:
            key = str(request.params.get("automation_key") or "")
            if not key:
                return
            episode = await self._find(lambda e: key in (e.key, e.resolve_key))
            if episode is None:
                return
            if request.kind == INCIDENT_CREATE:
                episode.phase = FAILED
                summary = f"{episode.label}: could not open the incident: {error}"
            else:
                episode.phase = HANDED_OVER
                summary = (
                    f"{episode.label}: could not resolve the incident ({error}); "
                    "it is left for the operator"
                )
            await self._save(episode.component_id, episode)
            await self._log(
                "failed",
                summary,
                {"component_id": episode.component_id, "incident_id": episode.incident_id},
            )
