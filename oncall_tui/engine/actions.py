"""Operator actions: what can be asked, and how each one is carried out against Alertmanager.

Every action is written to the outbox as pending before anything is sent, so an action taken while
a system is down is retried and survives a restart. Each executor is idempotent on retry: a
silence carries its action id in the comment so that a retry after a lost response finds the
silence it already created instead of making a second one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from oncall_tui.clock import Clock
from oncall_tui.matchers import MatcherSyntaxError, parse_matchers
from oncall_tui.models import Silence, SilenceState
from oncall_tui.providers.errors import ProviderError

if TYPE_CHECKING:
    from oncall_tui.providers.alertmanager import AlertmanagerClient

SILENCE_CREATE = "silence.create"
SILENCE_EXPIRE = "silence.expire"
SILENCE_EXTEND = "silence.extend"
ALERT_FIRE = "alert.fire"

KINDS_THAT_CHANGE = frozenset({SILENCE_CREATE, SILENCE_EXPIRE, SILENCE_EXTEND, ALERT_FIRE})

_MARKER_RE = re.compile(r"\[oncall-tui:([0-9a-f]+)\]")


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """What the operator asked for, captured at key press (ids, not cursor positions)."""

    kind: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)


class ActionRejected(Exception):
    """The request itself is wrong (bad matcher, unknown silence); retrying cannot help."""


@dataclass(frozen=True, slots=True)
class Outcome:
    summary: str
    data: Mapping[str, Any] = field(default_factory=dict)


def marker(action_id: str) -> str:
    return f"[oncall-tui:{action_id}]"


def split_key(key: str) -> tuple[str, str]:
    cluster, sep, item = key.rpartition("/")
    if not sep:
        raise ActionRejected(f"not a silence key: {key!r}")
    return cluster, item


class AlertmanagerActions:
    """Carries out Alertmanager actions on the first peer of a cluster that answers."""

    def __init__(
        self,
        peers_of: Callable[[str], list[AlertmanagerClient]],  # raises KeyError
        silences_of: Callable[[str], list[Silence]],
        clock: Clock,
        actor: str,
        clusters: Callable[[], list[str]] = list,
    ) -> None:
        self._peers_of = peers_of
        self._clusters = clusters
        self._silences_of = silences_of
        self._clock = clock
        self._actor = actor

    def _peers(self, cluster: str) -> list[AlertmanagerClient]:
        try:
            peers: list[AlertmanagerClient] = self._peers_of(cluster)
        except KeyError:
            raise ActionRejected(f"no alertmanager cluster named {cluster!r}") from None
        return peers

    async def _on_any_peer(self, cluster: str, call: Any) -> Any:
        last: ProviderError | None = None
        for peer in self._peers(cluster):
            try:
                return await call(peer)
            except ProviderError as exc:
                if not exc.retryable:
                    raise
                last = exc
        assert last is not None
        raise last

    async def run(self, action_id: str, request: ActionRequest) -> Outcome:
        if request.kind == SILENCE_CREATE:
            return await self._create_silence(action_id, request)
        if request.kind == SILENCE_EXPIRE:
            return await self._expire_silence(request)
        if request.kind == SILENCE_EXTEND:
            return await self._extend_silence(request)
        if request.kind == ALERT_FIRE:
            return await self._fire(request)
        raise ActionRejected(f"unknown action {request.kind!r}")

    async def _create_silence(self, action_id: str, request: ActionRequest) -> Outcome:
        params = request.params
        cluster = str(params.get("cluster") or request.target)
        try:
            matchers = parse_matchers(",".join(str(m) for m in params.get("matchers", [])))
        except MatcherSyntaxError as exc:
            raise ActionRejected(f"bad matchers: {exc}") from None
        duration = float(params.get("duration_seconds", 0))
        if duration <= 0:
            raise ActionRejected("a silence needs a duration greater than zero")
        comment = str(params.get("comment", "")).strip()
        if not comment:
            raise ActionRejected("a silence needs a comment")
        tagged = f"{comment} {marker(action_id)}"

        async def create(peer: AlertmanagerClient) -> str:
            # A retry after a lost response must not create a second silence.
            for existing in await peer.silences():
                if existing.state != SilenceState.EXPIRED and marker(action_id) in existing.comment:
                    return existing.id
            now = self._clock.now()
            return await peer.create_silence(
                matchers,
                starts_at=now,
                ends_at=now + timedelta(seconds=duration),
                created_by=self._actor,
                comment=tagged,
            )

        silence_id = await self._on_any_peer(cluster, create)
        text = ", ".join(str(m) for m in matchers)
        return Outcome(
            f"silenced {text} for {_human(duration)}",
            {"cluster": cluster, "silence_id": silence_id, "matchers": [str(m) for m in matchers]},
        )

    def _known_silence(self, cluster: str, silence_id: str) -> Silence | None:
        for silence in self._silences_of(cluster):
            if silence.id == silence_id:
                return silence
        return None

    async def _expire_silence(self, request: ActionRequest) -> Outcome:
        cluster, silence_id = split_key(request.target)

        async def expire(peer: AlertmanagerClient) -> None:
            current = await peer.silence(silence_id)
            if current.state == SilenceState.EXPIRED:
                return  # already reached: a retry after a lost response is done, not failed
            await peer.expire_silence(silence_id)

        await self._on_any_peer(cluster, expire)
        return Outcome(
            f"expired silence {silence_id}", {"cluster": cluster, "silence_id": silence_id}
        )

    async def _extend_silence(self, request: ActionRequest) -> Outcome:
        cluster, silence_id = split_key(request.target)
        duration = float(request.params.get("duration_seconds", 0))
        if duration <= 0:
            raise ActionRejected("extend needs a duration greater than zero")

        async def extend(peer: AlertmanagerClient) -> tuple[str, str]:
            current = await peer.silence(silence_id)
            if current.state == SilenceState.EXPIRED:
                raise ActionRejected(f"silence {silence_id} has already expired")
            base = max(current.ends_at, self._clock.now())
            new_end = base + timedelta(seconds=duration)
            new_id = await peer.update_silence(current, ends_at=new_end)
            return new_id, new_end.isoformat()

        new_id, new_end = await self._on_any_peer(cluster, extend)
        summary = f"extended silence {silence_id} by {_human(duration)}"
        if new_id != silence_id:
            # Alertmanager may replace a silence on update; the log keeps the two linked.
            summary += f" (now {new_id})"
        return Outcome(
            summary,
            {
                "cluster": cluster,
                "silence_id": silence_id,
                "new_silence_id": new_id,
                "ends_at": new_end,
            },
        )

    async def _fire(self, request: ActionRequest) -> Outcome:
        params = request.params
        labels = {str(k): str(v) for k, v in dict(params.get("labels", {})).items()}
        if not labels.get("alertname"):
            raise ActionRejected("a test alert needs an alertname label")
        annotations = {str(k): str(v) for k, v in dict(params.get("annotations", {})).items()}
        cluster = str(params.get("cluster") or request.target)
        # Imported here: the HTTP stack loads after the dashboard's first frame (engine/core.py).
        from oncall_tui.providers.alertmanager import PostableAlert

        alert = PostableAlert(labels=labels, annotations=annotations, starts_at=self._clock.now())
        sent: list[str] = []
        errors: list[str] = []
        # Sent to every peer of every cluster (or of the one asked for), as Prometheus does;
        # posting the same alert twice is harmless, so a retry may resend to all of them.
        for name in [cluster] if cluster else self._clusters():
            reached = False
            for peer in self._peers(name):
                try:
                    await peer.post_alerts([alert])
                    sent.append(peer.name)
                    reached = True
                except ProviderError as exc:
                    if not exc.retryable:
                        raise
                    errors.append(str(exc))
            if not reached:
                # The cluster got nothing: retry later. When only some peers got it, the action
                # is done and the outcome names them: Alertmanager does not gossip alerts, so a
                # peer that was down will not know this one-off alert.
                raise ProviderError(
                    source=name, message="; ".join(errors), status=None, retryable=True
                )
        missed = f" (not reached: {'; '.join(errors)})" if errors else ""
        return Outcome(
            f"fired test alert {labels['alertname']} to {', '.join(sent)}{missed}",
            {"labels": labels, "annotations": annotations, "peers": sent},
        )


def _human(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{int(seconds)}s"


def action_ids_in(silences: Sequence[Silence]) -> set[str]:
    return {m.group(1) for s in silences for m in _MARKER_RE.finditer(s.comment)}
