"""Pages the fake PagerDuty for the Alertmanager stand-in, as Alertmanager's notifier would.

The stand-in notifies only one webhook. Its HTTP client gets this transport, which passes every
notification on unchanged and, for a group with critical alerts, also sends the Events API v2
event Alertmanager's `pagerduty_configs` would: `dedup_key` = SHA-256 hex of the group key,
trigger while any critical alert fires, resolve once none does. So the demo shows incidents
without the Alertmanager binary too. The PagerDuty event goes first and its failure never fails
the notification (Alertmanager's receivers are independent of each other).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

log = logging.getLogger(__name__)

NOTIFICATION_PATH = "/webhooks/alertmanager"


class PagerDutyRelay(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, events_url: str, routing_key: str) -> None:
        self.inner = inner
        self.enqueue_url = events_url.rstrip("/") + "/v2/enqueue"
        self.routing_key = routing_key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith(NOTIFICATION_PATH):
            event = pagerduty_event(json.loads(await request.aread()), self.routing_key)
            if event is not None:
                await self._page(event)
        return await self.inner.handle_async_request(request)

    async def _page(self, event: Mapping[str, Any]) -> None:
        page = httpx.Request(
            "POST",
            self.enqueue_url,
            content=json.dumps(event).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0"},
        )
        try:
            response = await self.inner.handle_async_request(page)
            await response.aread()
            await response.aclose()
        except httpx.HTTPError as exc:
            log.warning("stand-in could not page PagerDuty: %s", type(exc).__name__)

    async def aclose(self) -> None:
        await self.inner.aclose()


def pagerduty_event(notification: Mapping[str, Any], routing_key: str) -> dict[str, Any] | None:
    """The Events API v2 body for a webhook notification, or None if it has no critical alert."""
    alerts: Sequence[Mapping[str, Any]] = notification.get("alerts") or ()
    critical = [a for a in alerts if (a.get("labels") or {}).get("severity") == "critical"]
    if not critical:
        return None
    firing = [a for a in critical if a.get("status") == "firing"]
    resolved = [a for a in critical if a.get("status") != "firing"]
    group_key = str(notification.get("groupKey", ""))
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "dedup_key": hashlib.sha256(group_key.encode()).hexdigest(),
        "event_action": "trigger" if firing else "resolve",
    }
    if firing:
        group = dict(notification.get("groupLabels") or {})
        common = {
            k: v for k, v in (notification.get("commonLabels") or {}).items() if k not in group
        }
        summary = f"[FIRING:{len(firing)}] {' '.join(group.values())}"
        if common:
            summary += f" ({' '.join(common.values())})"
        event["payload"] = {
            "summary": summary[:1024],
            "source": str(notification.get("externalURL") or "Alertmanager"),
            "severity": "error",  # Alertmanager's default for pagerduty_configs
            "custom_details": {
                "firing": _describe(firing),
                "resolved": _describe(resolved),
                "num_firing": str(len(firing)),
                "num_resolved": str(len(resolved)),
            },
        }
        event["client"] = "Alertmanager"
        event["client_url"] = str(notification.get("externalURL") or "")
    return event


def _describe(alerts: Sequence[Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for alert in alerts:
        lines.append("Labels:")
        lines.extend(f" - {k} = {v}" for k, v in sorted((alert.get("labels") or {}).items()))
        lines.append("Annotations:")
        lines.extend(f" - {k} = {v}" for k, v in sorted((alert.get("annotations") or {}).items()))
    return "\n".join(lines) + ("\n" if lines else "")
