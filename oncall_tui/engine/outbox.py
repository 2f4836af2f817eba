"""The outbox: every action, the operator's or the automation's, is written to the log as
pending before anything is sent, carried out by the system it belongs to, and finished as done
or failed with its outcome. One that failed for a reason worth retrying (a system down, a rate
limit) stays pending and is retried with backoff, in this run or the next, until it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from oncall_tui.clock import Clock
from oncall_tui.engine.actions import ActionRejected, ActionRequest, Outcome
from oncall_tui.events import ActionChanged, EngineEvent
from oncall_tui.models import Action, ActionStatus
from oncall_tui.providers.errors import ProviderError
from oncall_tui.store import Store

log = logging.getLogger(__name__)

RETRY_BASE = 2.0
RETRY_MAX = 60.0

Execute = Callable[[str, ActionRequest], Awaitable[Outcome]]


class Outbox:
    """Records, carries out and retries actions; `execute(action_id, request)` does the work.

    `execute` raises ActionRejected for a request that cannot succeed, ProviderError for a
    failed call (retried when the error says so), and returns the outcome otherwise.
    `ready` is set once `execute` can run: an action asked for before that is recorded and
    waits. `done(action)` is called after each action that succeeded.
    """

    def __init__(
        self,
        *,
        store: Callable[[], Store | None],
        clock: Clock,
        emit: Callable[[EngineEvent], None],
        execute: Execute,
        done: Callable[[Action], None],
    ) -> None:
        self._store = store
        self._clock = clock
        self._emit = emit
        self._execute = execute
        self._done = done
        self._wake = asyncio.Event()
        self._in_flight: set[str] = set()
        self.ready = asyncio.Event()

    def wake(self) -> None:
        """Retry what is pending now rather than after the current backoff."""
        self._wake.set()

    def _log(self) -> Store:
        store = self._store()
        if store is None:
            raise RuntimeError("engine not started")
        return store

    async def submit(self, request: ActionRequest, *, actor: str, refuse: str = "") -> Action:
        """Record the action as pending, carry it out, record the outcome; never raises.

        A non-empty `refuse` (read-only mode) finishes it as failed without recording it as
        pending or sending anything.
        """
        action = Action(
            id=secrets.token_hex(6),
            kind=request.kind,
            target=request.target,
            params=dict(request.params),
            actor=actor,
            created_at=self._clock.now(),
        )
        if refuse:
            return await self._finish(action, ActionStatus.FAILED, refuse)
        store = self._log()
        await store.put_action(action)
        await store.append(
            _log_source(action),
            "action.requested",
            f"{request.kind} {request.target}".strip(),
            actor=action.actor,
            data={"action_id": action.id, "params": dict(request.params)},
        )
        self._emit(ActionChanged(action))
        # The dashboard takes keys from its first frame, shortly before the engine has started;
        # the action is in the outbox already, so it is not lost if the start never completes.
        await self.ready.wait()
        return await self._attempt(action)

    async def _attempt(self, action: Action) -> Action:
        self._in_flight.add(action.id)
        try:
            return await self._attempt_once(action)
        finally:
            self._in_flight.discard(action.id)

    async def _attempt_once(self, action: Action) -> Action:
        request = ActionRequest(action.kind, action.target, action.params)
        action = replace(action, attempts=action.attempts + 1)
        try:
            outcome = await self._execute(action.id, request)
        except ActionRejected as exc:
            return await self._finish(action, ActionStatus.FAILED, str(exc))
        except ProviderError as exc:
            if exc.retryable:
                action = replace(action, result=f"will retry: {exc}")
                await self._log().put_action(action)
                self._emit(ActionChanged(action))
                self._wake.set()
                return action
            return await self._finish(action, ActionStatus.FAILED, str(exc))
        except Exception as exc:
            log.exception("action %s failed", action.kind)
            return await self._finish(action, ActionStatus.FAILED, f"internal error: {exc}")
        self._done(action)
        return await self._finish(action, ActionStatus.DONE, outcome.summary, outcome.data)

    async def _finish(
        self,
        action: Action,
        status: ActionStatus,
        result: str,
        data: Mapping[str, Any] | None = None,
    ) -> Action:
        action = replace(action, status=status, result=result, finished_at=self._clock.now())
        store = self._store()
        if store is not None:  # None: refused before the log was opened, nothing to keep
            await store.put_action(action)
            await store.append(
                _log_source(action),
                f"action.{status.value}",
                f"{action.kind}: {result}",
                actor=action.actor,
                data={"action_id": action.id, **(dict(data) if data else {})},
            )
        self._emit(ActionChanged(action))
        return action

    async def run(self) -> None:
        """Retry pending actions with backoff, including those left by an earlier run."""
        delay = RETRY_BASE
        while True:
            store = self._log()
            pending = await store.pending_actions()
            retried = False
            for action in pending:
                if action.id in self._in_flight:
                    continue
                retried = True
                await self._attempt(action)
            still = await store.pending_actions()
            delay = min(delay * 2, RETRY_MAX) if still and retried else RETRY_BASE
            self._wake.clear()
            if not still:
                await self._wake.wait()
                continue
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the event is set, and then stop() would wait for this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()


def _log_source(action: Action) -> str:
    return "automation" if action.actor == "automation" else "operator"
