"""What a pipeline trace found (engine/trace.py follows the alert): stages, verdict, log form.

Apart from the tracer so that the dashboard can show traces without loading the HTTP stack.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oncall_tui.engine.correlation import group_dedup_key

STAGES = ("accepted", "routed", "notified", "pagerduty", "paged", "opsgenie", "statuspage")
TITLES = {
    "accepted": "accepted by Alertmanager",
    "routed": "routed",
    "notified": "notification received",
    "pagerduty": "PagerDuty incident",
    "paged": "paged",
    "opsgenie": "Opsgenie alert",
    "statuspage": "Statuspage incident",
}
OK, BROKEN, SKIPPED, WAITING = "ok", "broken", "skipped", "waiting"


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage of a trace: `status` ok / broken / skipped / waiting."""

    name: str
    status: str = WAITING
    at: datetime | None = None
    latency: float | None = None  # seconds since the alert was fired
    detail: str = ""
    cause: str = ""  # for a broken stage: the likely reason

    @property
    def title(self) -> str:
        return TITLES.get(self.name, self.name)


@dataclass(frozen=True, slots=True)
class Trace:
    trace_id: str
    labels: Mapping[str, str]
    fired_at: datetime
    stages: tuple[Stage, ...]
    group_key: str = ""
    finished: bool = False

    @property
    def dedup_key(self) -> str:
        return group_dedup_key(self.group_key) if self.group_key else ""

    @property
    def ok(self) -> bool:
        return self.finished and not self.broken

    @property
    def broken(self) -> list[Stage]:
        return [s for s in self.stages if s.status == BROKEN]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def new_trace_id() -> str:
    return secrets.token_hex(4)


def trace_summary(trace: Trace) -> str:
    if trace.ok:
        done = [s.latency for s in trace.stages if s.status == OK and s.latency is not None]
        total = f" in {max(done):.2f}s" if done else ""
        return f"pipeline OK{total} (trace_id {trace.trace_id})"
    names = ", ".join(s.name for s in trace.broken)
    return f"pipeline BROKEN at {names} (trace_id {trace.trace_id})"


def trace_data(trace: Trace) -> dict[str, Any]:
    """The trace as plain data for the log (`trace.passed` / `trace.broken` entries)."""
    return {
        "trace_id": trace.trace_id,
        "labels": dict(trace.labels),
        "fired_at": trace.fired_at.isoformat(),
        "group_key": trace.group_key,
        "stages": [
            {
                "name": s.name,
                "status": s.status,
                "at": s.at.isoformat() if s.at else None,
                "latency": s.latency,
                "detail": s.detail,
                "cause": s.cause,
            }
            for s in trace.stages
        ],
    }
