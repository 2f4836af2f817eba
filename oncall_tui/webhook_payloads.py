"""What Alertmanager and PagerDuty send to our webhooks, parsed and checked, without a server.

Kept apart from the listener (`oncall_tui.webhooks`, Starlette and uvicorn) so that the engine
and the correlation can read notifications, and the dashboard can start, without importing the
HTTP server stack. Every check raises WebhookRejected with the status the listener answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

# PagerDuty event data is handed on as a mapping; deeper nesting than any real event is refused
# so that nothing downstream (redaction, JSON encoding, rendering) recurses without bound.
MAX_EVENT_DEPTH: Final = 32
# No label, annotation or event field of a real sender comes near this; a longer one is refused
# rather than carried into the log and onto the operator's screen.
MAX_STRING: Final = 64 * 1024
_STATUSES: Final = frozenset({"firing", "resolved"})


class WebhookRejected(Exception):
    """A request we refuse; `reason` is short, fixed text that never echoes the body."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class WebhookAlert:
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None  # None while firing (Alertmanager sends Go's zero time)
    generator_url: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class AlertmanagerNotification:
    version: str
    group_key: str
    status: str
    receiver: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    truncated_alerts: int
    alerts: tuple[WebhookAlert, ...]


# --- parsing ---------------------------------------------------------------------------------

# ASCII only: `\d` would otherwise accept any Unicode digit.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


def _clean(text: str) -> str:
    # JSON may carry lone surrogates (`"\ud800"`); they cannot be stored or printed as UTF-8.
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 timestamp as Go writes it (nanoseconds allowed), as aware UTC.

    Raises ValueError for anything else, including naive times and out-of-range dates.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("not an RFC 3339 timestamp")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = (match.group(7) or "")[:6].ljust(6, "0")
    if match.group(8):
        tz = UTC
    else:
        sign = 1 if match.group(9) == "+" else -1
        offset = timedelta(hours=int(match.group(10)), minutes=int(match.group(11)))
        tz = timezone(sign * offset)  # ValueError past 24 h
    if second == 60:  # a leap second: Python has none, the next instant is close enough
        second = 59
    moment = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=tz)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


def _load_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise WebhookRejected(400, "JSON nested too deeply") from None
    except ValueError:  # JSONDecodeError, and integers past Python's digit limit
        raise WebhookRejected(400, "body is not valid JSON") from None


def _bounded_text(text: str, where: str) -> str:
    if len(text) > MAX_STRING:
        raise WebhookRejected(422, f"{where} longer than {MAX_STRING} characters")
    return _clean(text)


def _str(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required and key not in obj:
        return ""
    if not isinstance(value, str):
        raise WebhookRejected(422, f"{where}{key} must be a string")
    return _bounded_text(value, f"{where}{key}")


def _str_map(
    obj: Mapping[str, Any], key: str, where: str, *, required: bool = False
) -> dict[str, str]:
    if obj.get(key) is None and not required:
        return {}
    value = obj.get(key)
    if not isinstance(value, dict):
        raise WebhookRejected(422, f"{where}{key} must be an object")
    result: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(item, str):
            raise WebhookRejected(422, f"{where}{key} values must be strings")
        result[_bounded_text(name, f"{where}{key} name")] = _bounded_text(
            item, f"{where}{key} value"
        )
    return result


def _status(obj: Mapping[str, Any], where: str) -> str:
    status = _str(obj, "status", where)
    if status not in _STATUSES:
        raise WebhookRejected(422, f"{where}status must be firing or resolved")
    return status


def _time(obj: Mapping[str, Any], key: str, where: str, *, required: bool) -> datetime | None:
    if key not in obj and not required:
        return None
    text = _str(obj, key, where)
    if not required and text == "":
        return None
    try:
        moment = parse_rfc3339(text)
    except ValueError:
        raise WebhookRejected(422, f"{where}{key} is not an RFC 3339 timestamp") from None
    # Go's zero time marks "no end yet" on a firing alert.
    if not required and moment.year == 1:
        return None
    return moment


def _parse_alert(raw: Any, index: int) -> WebhookAlert:
    where = f"alerts[{index}]."
    if not isinstance(raw, dict):
        raise WebhookRejected(422, f"alerts[{index}] must be an object")
    starts_at = _time(raw, "startsAt", where, required=True)
    assert starts_at is not None
    return WebhookAlert(
        status=_status(raw, where),
        labels=_str_map(raw, "labels", where, required=True),
        annotations=_str_map(raw, "annotations", where),
        starts_at=starts_at,
        ends_at=_time(raw, "endsAt", where, required=False),
        generator_url=_str(raw, "generatorURL", where, required=False),
        fingerprint=_str(raw, "fingerprint", where),
    )


def parse_alertmanager_notification(body: bytes) -> AlertmanagerNotification:
    """Parse an Alertmanager webhook body (version "4"); raise WebhookRejected(400/422)."""
    data = _load_json(body)
    if not isinstance(data, dict):
        raise WebhookRejected(422, "body must be a JSON object")
    if data.get("version") != "4":
        raise WebhookRejected(422, 'version must be "4"')
    truncated = data.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise WebhookRejected(422, "truncatedAlerts must be a non-negative integer")
    raw_alerts = data.get("alerts")
    if not isinstance(raw_alerts, list):
        raise WebhookRejected(422, "alerts must be a list")
    return AlertmanagerNotification(
        version="4",
        group_key=_str(data, "groupKey", ""),
        status=_status(data, ""),
        receiver=_str(data, "receiver", "", required=False),
        group_labels=_str_map(data, "groupLabels", ""),
        common_labels=_str_map(data, "commonLabels", ""),
        common_annotations=_str_map(data, "commonAnnotations", ""),
        external_url=_str(data, "externalURL", "", required=False),
        truncated_alerts=truncated,
        alerts=tuple(_parse_alert(raw, i) for i, raw in enumerate(raw_alerts)),
    )


def _bounded(value: Any, depth: int) -> Any:
    """A copy of decoded JSON with clean strings, refusing nesting past MAX_EVENT_DEPTH."""
    if depth > MAX_EVENT_DEPTH:
        raise WebhookRejected(422, "event nested too deeply")
    if isinstance(value, str):
        return _bounded_text(value, "event string")
    if isinstance(value, dict):
        return {_bounded_text(k, "event key"): _bounded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_bounded(item, depth + 1) for item in value]
    return value


def parse_pagerduty_event(body: bytes) -> dict[str, Any]:
    """The `event` of a PagerDuty Webhooks v3 envelope; raise WebhookRejected(400/422)."""
    data = _load_json(body)
    if not isinstance(data, dict) or not isinstance(data.get("event"), dict):
        raise WebhookRejected(422, "body must be an object with an event object")
    event = data["event"]
    for key in ("id", "event_type"):
        if not isinstance(event.get(key), str):
            raise WebhookRejected(422, f"event.{key} must be a string")
    for key in ("resource_type", "occurred_at"):
        if event.get(key) is not None and not isinstance(event[key], str):
            raise WebhookRejected(422, f"event.{key} must be a string")
    if event.get("data") is not None and not isinstance(event["data"], dict):
        raise WebhookRejected(422, "event.data must be an object")
    cleaned = _bounded(event, 0)
    assert isinstance(cleaned, dict)
    return cleaned


def verify_pagerduty_signature(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """True if any `v1=` entry of the header is HMAC-SHA256(secret, body) for any secret.

    Several entries come during secret rotation; entries of other versions are ignored.
    """
    keys = [secret for secret in secrets if secret]
    if not header or not keys:
        return False
    offered = [
        entry[3:].lower().encode("utf-8", "replace")
        for entry in header.split(",")
        if entry.startswith("v1=")
    ]
    expected = [
        hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest().encode("ascii")
        for key in keys
    ]
    matched = False
    # Compare every pair so that the time taken does not reveal which entry was close.
    for signature in offered:
        for digest in expected:
            matched |= hmac.compare_digest(signature, digest)
    return matched
