"""Reading an Events API v2 `POST /v2/enqueue` body the way PagerDuty does.

The published spec leaves the conditional rules in prose (API-NOTES.md section 2.2), so they are
enforced here: a 32-character routing key of a known integration, `payload` with `summary`
(at most 1024 characters), `source` and a known `severity` for a trigger, and a `dedup_key` (at
most 255 characters) for acknowledge and resolve. A trigger without one gets a generated key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_BODY = 512 * 1024
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")


class EventRejected(Exception):
    """A 400 answer: PagerDuty's message and the list of reasons."""

    def __init__(self, message: str, errors: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


@dataclass(frozen=True)
class Event:
    routing_key: str
    action: str
    dedup_key: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    client: str | None = None


def parse_event(body: bytes, routing_keys: Container[str]) -> Event:
    if len(body) > MAX_BODY:
        raise EventRejected("Event object is invalid", ["Event is larger than 512 KB."])
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise EventRejected("Event object format is unrecognized", ["JSON parse error"]) from exc
    if not isinstance(data, dict):
        raise EventRejected("Event object format is unrecognized", ["Unrecognized object"])
    errors: list[str] = []
    key = data.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("'routing_key' must be a 32 character integration key")
    elif key not in routing_keys:
        errors.append("Invalid routing key")
    action = data.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' must be one of trigger, acknowledge, resolve")
    dedup = data.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not dedup or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    payload = data.get("payload")
    if action == "trigger":
        errors.extend(_payload_errors(payload))
    elif action in ACTIONS and not dedup:
        errors.append("'dedup_key' is missing or blank")
    if errors:
        raise EventRejected("Event object is invalid", errors)
    client = data.get("client") if action == "trigger" else None
    return Event(
        routing_key=str(key),
        action=str(action),
        dedup_key=str(dedup) if dedup else uuid.uuid4().hex,
        payload=payload if isinstance(payload, dict) else {},
        client=client if isinstance(client, str) else None,
    )


def _payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or blank"]
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > 1024:
        errors.append("'payload.summary' must be at most 1024 characters")
    if not isinstance(payload.get("source"), str) or not payload["source"].strip():
        errors.append("'payload.source' is missing or blank")
    if payload.get("severity") not in SEVERITIES:
        errors.append("'payload.severity' must be one of critical, error, warning, info")
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict | str):
        errors.append("'payload.custom_details' must be an object")
    return errors
