"""Client for the PagerDuty Events API v2: trigger, acknowledge and resolve alerts by dedup_key.

This is how a test alert reaches PagerDuty without Alertmanager (`oncall-tui fire --to
pagerduty`). The routing key in the body is the only credential (no auth header), so it is
scrubbed from error text like a token. API facts (API-NOTES.md section 2.2):

* `POST {events_url}/v2/enqueue`; 202 `{"status", "message", "dedup_key"}`.
* A trigger with the dedup_key of an open alert joins it; acknowledge/resolve of an unknown key
  is accepted and dropped.
* 400 is final, 429 and 5xx are retried.

Every event this client sends carries a dedup_key: a trigger without one gets a fresh random key
here rather than from PagerDuty, so that re-sending it after a lost answer cannot open a second
incident.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from oncall_tui.clock import Clock
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.http import send
from oncall_tui.providers.pagerduty import format_time

SOURCE = "pagerduty events"
SEVERITIES = ("critical", "error", "warning", "info")
SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255

_SEVERITY_ALIASES = {
    "critical": "critical",
    "page": "critical",
    "fatal": "critical",
    "error": "error",
    "high": "error",
    "major": "error",
    "warning": "warning",
    "warn": "warning",
    "minor": "warning",
}


def event_severity(label: str) -> str:
    """An alert's `severity` label as one of the four severities the Events API accepts."""
    return _SEVERITY_ALIASES.get(label.strip().lower(), "info")


def enqueue_url(events_url: str) -> str:
    """`https://events.pagerduty.com` (as configured) -> `.../v2/enqueue`; a full path is kept."""
    base = events_url.rstrip("/")
    if base.endswith("/v2/enqueue"):
        return base
    if base.endswith("/v2"):
        return f"{base}/enqueue"
    return f"{base}/v2/enqueue"


class PagerDutyEventsClient:
    """One Events API v2 integration (routing key). Every method raises ProviderError."""

    def __init__(
        self,
        events_url: str,
        routing_key: str,
        http: httpx.AsyncClient,
        *,
        clock: Clock,
        attempts: int = 3,
    ) -> None:
        self.url = enqueue_url(events_url)
        self._routing_key = routing_key
        self._http = http
        self._clock = clock
        self.attempts = attempts

    def __repr__(self) -> str:
        return f"PagerDutyEventsClient(url={self.url!r}, routing_key=***)"

    async def trigger(
        self,
        *,
        summary: str,
        source: str,
        severity: str,
        dedup_key: str | None = None,
        custom_details: Mapping[str, Any] | None = None,
        component: str = "",
        group: str = "",
        class_: str = "",
    ) -> str:
        """Open (or join, for an open dedup_key) an alert; returns its dedup_key."""
        if severity not in SEVERITIES:
            raise _invalid(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
        if not summary.strip() or not source.strip():
            raise _invalid("an event needs a summary and a source")
        key = dedup_key if dedup_key is not None else uuid.uuid4().hex
        payload: dict[str, Any] = {
            # Over-long summaries are refused by PagerDuty; the start says what matters.
            "summary": summary if len(summary) <= SUMMARY_MAX else summary[: SUMMARY_MAX - 1] + "…",
            "source": source,
            "severity": severity,
            "timestamp": format_time(self._clock.now()),
        }
        if component:
            payload["component"] = component
        if group:
            payload["group"] = group
        if class_:
            payload["class"] = class_
        if custom_details:
            payload["custom_details"] = dict(custom_details)
        answered = await self._enqueue("trigger", key, payload)
        return answered or key

    async def acknowledge(self, dedup_key: str) -> None:
        """Acknowledge the alert with this key (an unknown key is accepted and ignored)."""
        await self._enqueue("acknowledge", dedup_key)

    async def resolve(self, dedup_key: str) -> None:
        """Resolve the alert with this key (an unknown key is accepted and ignored)."""
        await self._enqueue("resolve", dedup_key)

    async def _enqueue(
        self, action: str, dedup_key: str, payload: Mapping[str, Any] | None = None
    ) -> str:
        if not dedup_key or len(dedup_key) > DEDUP_KEY_MAX:
            raise _invalid(f"a dedup_key has 1 to {DEDUP_KEY_MAX} characters")
        body: dict[str, Any] = {
            "routing_key": self._routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
        }
        if payload is not None:
            body["payload"] = dict(payload)
        response = await send(
            self._http,
            "POST",
            self.url,
            source=SOURCE,
            clock=self._clock,
            attempts=self.attempts,
            # Same key, same alert: PagerDuty deduplicates a repeated event.
            idempotent=True,
            secrets=[self._routing_key],
            json=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        answered = data.get("dedup_key") if isinstance(data, dict) else None
        return answered if isinstance(answered, str) else ""


def _invalid(message: str) -> ProviderError:
    return ProviderError(SOURCE, message, retryable=False)
