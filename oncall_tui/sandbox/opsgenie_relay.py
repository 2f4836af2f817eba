"""Sends warnings to the fake Opsgenie for the Alertmanager stand-in, as Alertmanager would.

The stand-in notifies only one webhook. Its HTTP client gets this transport, which passes every
notification on unchanged and, for a group with warning alerts, also sends what Alertmanager's
`opsgenie_configs` would: `POST /v2/alerts` with alias = SHA-256 hex of the group key while any
warning fires (Opsgenie folds a repeat into the open alert), and a close by that alias once none
does. So the demo shows Opsgenie alerts without the Alertmanager binary too. The Opsgenie call
goes first and its failure never fails the notification (receivers are independent).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)

NOTIFICATION_PATH = "/webhooks/alertmanager"


class OpsgenieRelay(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, api_url: str, api_key: str) -> None:
        self.inner = inner
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith(NOTIFICATION_PATH):
            call = opsgenie_call(json.loads(await request.aread()))
            if call is not None:
                await self._send(*call)
        return await self.inner.handle_async_request(request)

    async def _send(self, path: str, body: Mapping[str, Any]) -> None:
        call = httpx.Request(
            "POST",
            f"{self.api_url}{path}",
            content=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"GenieKey {self.api_key}",
                "User-Agent": "Alertmanager/0.25.0",
            },
        )
        try:
            response = await self.inner.handle_async_request(call)
            await response.aread()
            await response.aclose()
        except httpx.HTTPError as exc:
            log.warning("stand-in could not reach Opsgenie: %s", type(exc).__name__)

    async def aclose(self) -> None:
        await self.inner.aclose()


def opsgenie_call(notification: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(path with query, JSON body) for a webhook notification, or None without warnings."""
    alerts: Sequence[Mapping[str, Any]] = notification.get("alerts") or ()
    warnings = [a for a in alerts if (a.get("labels") or {}).get("severity") == "warning"]
    if not warnings:
        return None
    alias = hashlib.sha256(str(notification.get("groupKey", "")).encode()).hexdigest()
    source = str(notification.get("externalURL") or "Alertmanager")
    firing = [a for a in warnings if a.get("status") == "firing"]
    if not firing:
        return f"/v2/alerts/{quote(alias, safe='')}/close?identifierType=alias", {"source": source}
    common = notification.get("commonLabels") or {}
    lines: list[str] = []
    for alert in firing:
        annotations = alert.get("annotations") or {}
        lines.append(str(annotations.get("summary") or annotations.get("description") or ""))
    return "/v2/alerts", {
        "alias": alias,
        # Alertmanager's default message template is the group's alert name.
        "message": str(common.get("alertname") or "Alertmanager alert")[:130],
        "description": "\n".join(line for line in lines if line)[:15000],
        "source": source,
        "details": {str(k): str(v) for k, v in common.items()},
    }
