"""The engine's side of the webhook listener: every delivery is logged before it is answered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from oncall_tui.clock import Clock
from oncall_tui.models import LogEntry
from oncall_tui.store import Store
from oncall_tui.webhook_payloads import AlertmanagerNotification

OnEntry = Callable[[LogEntry], Awaitable[None]]


class WebhookIntake:
    """Implements the listener's handler protocol on top of the log."""

    def __init__(self, store: Store, clock: Clock, on_entry: OnEntry) -> None:
        self._store = store
        self._clock = clock
        self._on_entry = on_entry

    async def on_alertmanager(self, notification: AlertmanagerNotification, remote: str) -> None:
        names = sorted({a.labels.get("alertname", "?") for a in notification.alerts})
        firing = sum(1 for a in notification.alerts if a.status == "firing")
        resolved = len(notification.alerts) - firing
        counts = ", ".join(
            part
            for part in (
                f"{firing} firing" if firing else "",
                f"{resolved} resolved" if resolved else "",
            )
            if part
        )
        summary = f"{notification.status}: {', '.join(names)} ({counts}) to {notification.receiver}"
        entry = await self._store.append(
            "alertmanager",
            "webhook",
            summary,
            data={
                "group_key": notification.group_key,
                "status": notification.status,
                "receiver": notification.receiver,
                "group_labels": dict(notification.group_labels),
                "truncated_alerts": notification.truncated_alerts,
                "remote": remote,
                "alerts": [
                    {
                        "status": a.status,
                        "fingerprint": a.fingerprint,
                        "labels": dict(a.labels),
                        "starts_at": a.starts_at.isoformat(),
                    }
                    for a in notification.alerts
                ],
            },
        )
        await self._on_entry(entry)

    async def on_pagerduty(
        self, event: Mapping[str, Any], delivery_id: str | None, remote: str
    ) -> None:
        body = event.get("event", event)
        event_type = str(body.get("event_type", "unknown")) if isinstance(body, Mapping) else "?"
        data = {"delivery_id": delivery_id, "remote": remote, "event": dict(event)}
        if delivery_id:
            # The id and the entry are committed together: a copy that failed to log is not
            # remembered, so PagerDuty's retry of it is logged rather than taken as a duplicate.
            recorded = await self._store.append_delivery(
                delivery_id, "pagerduty", "webhook", event_type, data=data
            )
            if recorded is None:
                return  # at-least-once delivery: the first copy is already in the log
            entry = recorded
        else:
            entry = await self._store.append("pagerduty", "webhook", event_type, data=data)
        await self._on_entry(entry)

    async def on_rejected(self, path: str, status: int, reason: str, remote: str) -> None:
        entry = await self._store.append(
            "webhooks",
            "webhook.rejected",
            f"{path} answered {status}: {reason}",
            data={"path": path, "status": status, "remote": remote},
        )
        await self._on_entry(entry)
