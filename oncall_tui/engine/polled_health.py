"""The health of a system polled on several endpoints (incidents, on-calls): one line for it.

The system counts as reachable only while every kind of poll works, so one failing endpoint (an
on-call scope the token lacks) shows as one lasting problem instead of flapping down and up
with every other poll; the error names each failing kind.
"""

from __future__ import annotations

from dataclasses import replace

from oncall_tui.clock import Clock
from oncall_tui.models import Snapshot, SourceHealth


class PolledHealth:
    def __init__(self, source: str, detail: str, clock: Clock) -> None:
        self._source = source
        self._clock = clock
        self.current = SourceHealth(name=source, kind=source, detail=detail)
        self._errors: dict[str, str] = {}  # kind of poll -> its last error ("" when it worked)

    def restore(self, snapshot: Snapshot) -> None:
        """Known from before, but nothing has answered yet in this run: stale until it does."""
        known = snapshot.health_of(self._source)
        if known is not None:
            self.current = replace(
                self.current,
                last_success=known.last_success,
                reachable=None,
                stale_since=known.last_success,
            )

    def mark(self, facet: str, error: str) -> None:
        """Record one poll's outcome: `facet` names the kind of poll, `error` is "" on success."""
        now = self._clock.now()
        old = self.current
        self._errors[facet] = error
        errors = [f"{name}: {text}" for name, text in self._errors.items() if text]
        last_success = old.last_success if error else now
        if errors:
            self.current = replace(
                old,
                reachable=False,
                last_success=last_success,
                stale_since=old.stale_since or old.last_success or now,
                error="; ".join(errors),
            )
        else:
            self.current = replace(
                old, reachable=True, last_success=last_success, stale_since=None, error=""
            )

    def edge(self, before: SourceHealth) -> bool | None:
        """True/False when reachability flipped since `before` (first success is not news)."""
        now = self.current.reachable
        if now is None or before.reachable == now or (before.reachable is None and now):
            return None
        return now
