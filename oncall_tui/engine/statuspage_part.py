"""Statuspage inside the engine: client, source, actions, automation, poll loop and queries.

The engine creates one `StatuspagePart` when `statuspage:` is configured with an API key and a
page id, and delegates to it: the poll loop (`poll.statuspage`), the three Statuspage action
kinds, what goes into the snapshot (components, status incidents, health), and the automation,
which it feeds every Alertmanager snapshot through `on_alerts`.

Automation runs on its own task: `on_alerts` only records the newest snapshot and wakes it, so
an Alertmanager poll never waits on Statuspage. Its requests go through `submit` (the engine's
`act` with actor "automation"), so they are in the outbox before anything is sent and are
retried like an operator's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

import httpx

from oncall_tui.clock import Clock
from oncall_tui.config import Config, StatuspageConfig
from oncall_tui.engine.actions import ActionRejected, ActionRequest, Outcome
from oncall_tui.engine.loop import PollLoop, cancel_all
from oncall_tui.engine.statuspage import (
    SOURCE,
    Applied,
    StatuspageActions,
    StatuspageSource,
)
from oncall_tui.engine.statuspage_automation import ACTOR, LOG_SOURCE, StatuspageAutomation
from oncall_tui.engine.statuspage_episode import templates_of
from oncall_tui.events import EngineEvent, LogAppended
from oncall_tui.models import Action, LogEntry, Snapshot
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.statuspage import StatuspageClient
from oncall_tui.store import Store

log = logging.getLogger(__name__)

Submit = Callable[[ActionRequest], Awaitable[Action]]


def statuspage_configured(config: Config) -> bool:
    sp = config.statuspage
    return sp is not None and sp.api_key is not None and bool(sp.page_id)


def alerts_complete(snapshot: Snapshot) -> bool:
    """Every Alertmanager answered its last poll: only then is a missing alert resolved."""
    peers = [h for h in snapshot.health if h.kind == "alertmanager"]
    return bool(peers) and not snapshot.restored and all(h.reachable is True for h in peers)


class StatuspagePart:
    """Everything Statuspage in one object, so the engine wires it in a handful of lines."""

    def __init__(
        self,
        config: Config,
        *,
        http: httpx.AsyncClient,
        clock: Clock,
        store: Store,
        emit: Callable[[EngineEvent], None],
        changed: Callable[[], None],
        submit: Submit,
        read_only: bool = False,
    ) -> None:
        sp = config.statuspage
        if sp is None or sp.api_key is None or not sp.page_id:
            raise ValueError("Statuspage is not configured (statuspage.api_key, page_id)")
        self.config: StatuspageConfig = sp
        self._clock = clock
        self._store = store
        self._emit = emit
        self._changed = changed
        self._submit = submit
        self._read_only = read_only
        self.client = StatuspageClient(
            sp.api_url, sp.page_id, sp.api_key.get_secret_value(), http, clock=clock
        )
        self.source = StatuspageSource(self.client, clock)
        self.actions = StatuspageActions(self.client, self.source, clock)
        self.automation = (
            StatuspageAutomation(sp, store, clock, on_entry=self._entry)
            if sp.automation.enabled and not read_only
            else None
        )
        self.loop = PollLoop("statuspage", self.poll, config.poll.statuspage, clock)
        self._latest: Snapshot | None = None
        self._automate_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def restore(self, snapshot: Snapshot) -> None:
        """Show the last known page (stale) until Statuspage answers."""
        self.source.restore(snapshot)

    async def start(self) -> None:
        rules = self.config.automation
        if self.automation is not None:
            match = ", ".join(f"{k}={v}" for k, v in rules.match.items()) or "every alert"
            await self._log(
                "automation.on",
                f"Statuspage automation on: {match} by label {rules.component_label} "
                f"for {len(self.config.components)} component(s), resolve after "
                f"{rules.resolve_after:.0f}s",
            )
        elif rules.enabled:
            await self._log("automation.off", "Statuspage automation off: read-only mode")
        self._tasks = [asyncio.create_task(self.loop.run(), name="poll-statuspage")]
        if self.automation is not None:
            self._tasks.append(asyncio.create_task(self._automate_loop(), name="automation"))

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks.clear()

    def wake(self) -> None:
        """ctrl+r: read the page now."""
        self.loop.wake()

    # -- snapshot ----------------------------------------------------------------------------

    def publish_into(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot with the page's components, incidents and health in it."""
        return replace(
            snapshot,
            components=tuple(self.source.components),
            status_incidents=tuple(self.source.incidents),
            health=(*(h for h in snapshot.health if h.name != SOURCE), self.source.health),
        )

    # -- polls -------------------------------------------------------------------------------

    async def poll(self) -> None:
        """Read the page once (what the poll loop does every `poll.statuspage`)."""
        rows = await self.source.poll()
        if rows:
            await self._store.append_many(rows)
        self._changed()
        # What the page says now (an operator's edit, a resolve) may change a decision.
        if self._latest is not None:
            self._wake.set()

    # -- automation --------------------------------------------------------------------------

    def on_alerts(self, snapshot: Snapshot) -> None:
        """After every Alertmanager poll: remember the newest alerts, let automation look."""
        if self.automation is None:
            return
        self._latest = snapshot
        self._wake.set()

    async def _automate_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            snapshot = self._latest
            if snapshot is None:
                continue
            try:
                await self.automate(snapshot)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not end automation for the rest of the night; the next alert
                # poll tries again.
                log.exception("statuspage automation failed")

    async def automate(self, snapshot: Snapshot) -> list[Action]:
        """One evaluation of the rules and the submission of what it asks for.

        Nothing is decided before the page has been read once in this process: an incident an
        operator already opened for a component must be seen before opening another.
        """
        if self.automation is None or not self.source.polled_once:
            return []
        # One evaluation at a time: each reads and writes the episodes' state in the log, and
        # two interleaved ones (the loop's and a direct call) could each act on a stale copy.
        async with self._automate_lock:
            requests = await self.automation.evaluate(
                snapshot.alerts,
                self.source.incidents,
                details=list(self.source.details.values()),
                components=self.source.components,
                complete=alerts_complete(snapshot),
            )
            return [await self._submit(request) for request in requests]

    # -- actions -----------------------------------------------------------------------------

    def handles(self, request: ActionRequest) -> bool:
        return self.actions.handles(request)

    async def run(self, action_id: str, request: ActionRequest) -> Outcome:
        """Carry out one Statuspage action; what it changed is shown at once."""
        try:
            outcome = await self.actions.run(action_id, request)
        except ActionRejected as exc:
            await self._failed(request, str(exc))
            raise
        except ProviderError as exc:
            if not exc.retryable:
                await self._failed(request, str(exc))
            raise
        finally:
            self._apply()
        if self.automation is not None:
            await self.automation.on_outcome(request, outcome)
        return outcome

    async def _failed(self, request: ActionRequest, error: str) -> None:
        if self.automation is not None:
            await self.automation.on_failure(request, error)

    def _apply(self) -> None:
        applied, self.actions.applied = self.actions.applied, Applied()
        if not applied.incidents and not applied.components:
            return
        for incident in applied.incidents:
            self.source.apply_incident(incident)
        self.source.apply_components(applied.components)
        self._changed()

    # -- queries -----------------------------------------------------------------------------

    def templates(self) -> dict[str, str]:
        """Message templates by name (configured over defaults), for the update forms."""
        return templates_of(self.config)

    # -- log ---------------------------------------------------------------------------------

    def _entry(self, entry: LogEntry) -> None:
        self._emit(LogAppended(entry))

    async def _log(self, kind: str, summary: str) -> None:
        entry = await self._store.append(LOG_SOURCE, kind, summary, actor=ACTOR)
        self._entry(entry)
