"""The log's rows for what one Alertmanager poll changed: alerts fired, resolved or changed
state, silences created or ended (PagerDuty's and Opsgenie's are in incident_changes.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oncall_tui.engine.alerts import AlertChange
from oncall_tui.models import Alert


def _alert_line(what: str, alert: Alert) -> str:
    service = alert.labels.get("service") or alert.labels.get("instance") or ""
    where = f" ({service})" if service else ""
    return f"{what}: {alert.alertname}{where} [{alert.severity}] {alert.summary}".rstrip()


def alert_change_rows(change: AlertChange) -> list[tuple[str, str, str, Mapping[str, Any]]]:
    """The log entries of one poll's changes: alerts fired, resolved or changed, silences."""
    rows: list[tuple[str, str, str, Mapping[str, Any]]] = []
    for alert in change.fired:
        rows.append(
            ("alertmanager", "alert.firing", _alert_line("firing", alert), _alert_data(alert))
        )
    for alert in change.resolved:
        rows.append(
            (
                "alertmanager",
                "alert.resolved",
                _alert_line("resolved", alert),
                _alert_data(alert),
            )
        )
    for alert, previous in change.state_changed:
        rows.append(
            (
                "alertmanager",
                "alert.state",
                _alert_line(f"{previous} -> {alert.state.value}", alert),
                {**_alert_data(alert), "previous": previous},
            )
        )
    for silence in change.silences_added:
        matchers = ", ".join(str(m) for m in silence.matchers)
        rows.append(
            (
                "alertmanager",
                "silence.created",
                f"silence {silence.id} by {silence.created_by}: {matchers}",
                {
                    "silence_id": silence.id,
                    "cluster": silence.cluster,
                    "comment": silence.comment,
                },
            )
        )
    for silence in change.silences_ended:
        rows.append(
            (
                "alertmanager",
                "silence.ended",
                f"silence {silence.id} ended",
                {"silence_id": silence.id, "cluster": silence.cluster},
            )
        )
    return rows


def _alert_data(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "cluster": alert.cluster,
        "labels": dict(alert.labels),
        "state": alert.state.value,
    }
