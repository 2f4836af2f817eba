"""Acknowledged alerts stay silenced until they resolve (issue 6, `acknowledge.silence_alerts`).

The Alerts view's `a` creates a silence of the alert's `acknowledge.stable_labels` with
`until_resolved: true` in the action's parameters. Alertmanager silences need an end, so this
part keeps such a silence honest:

* while an alert it matches still fires (any state: a silenced alert is still firing), the
  silence is extended by its original duration once less than `EXTEND_BEFORE` of it is left;
* once no alert matches it on two complete Alertmanager answers in a row (every peer reached,
  not the restored snapshot), it is expired: the next firing pages again.

A silence is recognised by the marker the engine writes into every silence comment it creates
(`[oncall-tui:<action id>]`, engine/actions.py) and the action's stored parameters, so silences
created by another oncall-tui on the same log (the dashboard vs `serve`) and those from before a
restart are kept too. Which silences are managed, and what was last asked for them, lives in the
log's state table (`acknowledge.silences`); extends and expiries go through `submit` (the
engine's outbox, actor "automation"), so each is logged and retried like any other action.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from oncall_tui.clock import Clock
from oncall_tui.engine.actions import SILENCE_CREATE, SILENCE_EXPIRE, SILENCE_EXTEND, ActionRequest
from oncall_tui.engine.loop import cancel_all
from oncall_tui.matchers import matches_all
from oncall_tui.models import Action, Silence, SilenceState, Snapshot

log = logging.getLogger(__name__)

STATE_KEY = "acknowledge.silences"
EXTEND_BEFORE = 3600.0
"""Extend a silence whose alert still fires once less than this many seconds are left."""
DEFAULT_DURATION = 12 * 3600.0
ABSENT_ROUNDS = 2
"""Complete answers in a row without a matching alert before the silence is expired."""
_MARKER = re.compile(r"\[oncall-tui:([0-9A-Za-z_-]+)\]")

Submit = Callable[[ActionRequest], Awaitable[Action]]


class StateStore(Protocol):
    async def get_state(self, key: str) -> str | None: ...
    async def set_state(self, key: str, value: str) -> None: ...
    async def get_action(self, action_id: str) -> Action | None: ...


@dataclass(slots=True)
class Managed:
    """One silence kept until its alerts resolve, by the action that created it."""

    action_id: str
    cluster: str
    duration: float
    absent: int = 0  # complete answers in a row with no matching alert
    asked: str = ""  # "expire" once expiry was asked for; "extend:<ends_at>" after an extend

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "duration": self.duration,
            "absent": self.absent,
            "asked": self.asked,
        }


def complete(snapshot: Snapshot) -> bool:
    """Every Alertmanager answered its last poll: only then is a missing alert resolved."""
    peers = [h for h in snapshot.health if h.kind == "alertmanager"]
    return bool(peers) and not snapshot.restored and all(h.reachable is True for h in peers)


def marker_of(silence: Silence) -> str | None:
    found = _MARKER.search(silence.comment)
    return found.group(1) if found else None


class AckSilences:
    """The part: `start()`/`stop()`, and `on_alerts(snapshot)` after every Alertmanager poll."""

    def __init__(self, *, clock: Clock, store: StateStore, submit: Submit) -> None:
        self._clock = clock
        self._store = store
        self._submit = submit
        self.managed: dict[str, Managed] = {}
        self._not_ours: set[str] = set()  # action ids already looked up: not until_resolved
        self._latest: Snapshot | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._load()
        self._task = asyncio.create_task(self._loop(), name="ack-silences")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_all([task])

    def on_alerts(self, snapshot: Snapshot) -> None:
        """Record the newest snapshot; the work happens on the part's own task."""
        self._latest = snapshot
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            snapshot = self._latest
            if snapshot is None:
                continue
            try:
                await self.review(snapshot)
            except Exception:
                log.exception("acknowledged silences: review failed")

    # -- state -------------------------------------------------------------------------------

    async def _load(self) -> None:
        raw = await self._store.get_state(STATE_KEY)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        for action_id, item in data.items():
            if isinstance(item, dict):
                self.managed[str(action_id)] = Managed(
                    str(action_id),
                    str(item.get("cluster", "")),
                    float(item.get("duration") or DEFAULT_DURATION),
                    int(item.get("absent") or 0),
                    str(item.get("asked") or ""),
                )

    async def _save(self) -> None:
        data = {key: managed.to_json() for key, managed in self.managed.items()}
        await self._store.set_state(STATE_KEY, json.dumps(data, sort_keys=True))

    # -- the rules ---------------------------------------------------------------------------

    async def review(self, snapshot: Snapshot) -> list[Action]:
        """Adopt new acknowledgement silences, then extend or expire each; returns the actions."""
        current = _live_silences(snapshot.silences)
        changed = await self._adopt(current)
        requests: list[ActionRequest] = []
        now = self._clock.now()
        is_complete = complete(snapshot)
        for action_id, managed in list(self.managed.items()):
            silence = current.get(action_id)
            if silence is None:
                if is_complete:
                    # Expired (by us or by someone) or gone: nothing left to keep.
                    del self.managed[action_id]
                    changed = True
                continue
            firing = any(
                a.cluster == silence.cluster and matches_all(silence.matchers, a.labels)
                for a in snapshot.alerts
            )
            if firing:
                if managed.absent:
                    managed.absent, changed = 0, True
                left = (silence.ends_at - now).total_seconds()
                asked = f"extend:{silence.ends_at.isoformat()}"
                if left < min(EXTEND_BEFORE, managed.duration / 2) and managed.asked != asked:
                    managed.asked, changed = asked, True
                    requests.append(
                        ActionRequest(
                            SILENCE_EXTEND, silence.key, {"duration_seconds": managed.duration}
                        )
                    )
            elif is_complete and managed.asked != "expire":
                managed.absent += 1
                changed = True
                if managed.absent >= ABSENT_ROUNDS:
                    managed.asked = "expire"
                    requests.append(ActionRequest(SILENCE_EXPIRE, silence.key))
        if changed:
            await self._save()  # before anything is sent: a restart does not ask twice
        return [await self._submit(request) for request in requests]

    async def _adopt(self, current: dict[str, Silence]) -> bool:
        adopted = False
        for action_id, silence in current.items():
            if action_id in self.managed or action_id in self._not_ours:
                continue
            action = await self._store.get_action(action_id)
            params = action.params if action is not None else {}
            if action is None or action.kind != SILENCE_CREATE or not params.get("until_resolved"):
                self._not_ours.add(action_id)
                continue
            duration = float(params.get("duration_seconds") or DEFAULT_DURATION)
            self.managed[action_id] = Managed(action_id, silence.cluster, duration)
            adopted = True
        return adopted

    def until(self, silence: Silence) -> datetime | None:
        """None unless the silence is kept until its alerts resolve (for the UI to say so)."""
        action_id = marker_of(silence)
        return silence.ends_at if action_id in self.managed else None


def _live_silences(silences: Sequence[Silence]) -> dict[str, Silence]:
    """Active or pending silences carrying an oncall-tui marker, by action id."""
    found: dict[str, Silence] = {}
    for silence in silences:
        if silence.state == SilenceState.EXPIRED:
            continue
        action_id = marker_of(silence)
        if action_id is not None:
            found[action_id] = silence
    return found
