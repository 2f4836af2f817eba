"""Facts the engine reports to whoever shows them (the dashboard, `serve`, tests).

Past-tense, immutable, carrying data or an error message; they never raise into a listener.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from oncall_tui.models import Action, Alert, Incident, LogEntry, Snapshot


@dataclass(frozen=True, slots=True)
class SnapshotChanged:
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class ActionChanged:
    """An action moved to pending, done or failed."""

    action: Action


@dataclass(frozen=True, slots=True)
class AlertsRaised:
    """New alerts at or above `notify.min_severity` that the operator should hear about."""

    alerts: tuple[Alert, ...]


@dataclass(frozen=True, slots=True)
class IncidentsRaised:
    """New (or newly re-triggered) incidents the operator should hear about."""

    incidents: tuple[Incident, ...]


@dataclass(frozen=True, slots=True)
class LogAppended:
    entry: LogEntry


EngineEvent = SnapshotChanged | ActionChanged | AlertsRaised | IncidentsRaised | LogAppended
Listener = Callable[[EngineEvent], None]
