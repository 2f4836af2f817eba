"""A built-in stand-in for Prometheus Alertmanager, for machines without the binary.

It speaks the subset of Alertmanager API v2 (as of 0.25) that oncall-tui and its sandbox use,
with the real server's semantics where they matter to an operator: fingerprints are the same
FNV-1a hash of the sorted label set, alerts posted without `endsAt` resolve after the resolve
timeout unless re-sent, silences suppress matching alerts, updating an active silence with new
matchers expires it and creates a new id, and deleting an unknown silence is a 500 with a JSON
string body. Behaviour was checked against Debian's Alertmanager 0.25 binary.

Optionally it notifies one webhook (payload version 4, group key like Alertmanager's
`{}:{alertname="X", service="Y"}`) when a group's firing set changes, so the demo works the same
with the stand-in as with the real binary. All time comes from the injected Clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from oncall_tui.clock import Clock
from oncall_tui.matchers import MatcherSyntaxError, matches_all, parse_matchers
from oncall_tui.models import Matcher

log = logging.getLogger(__name__)

VERSION = "0.25.0"
_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_TIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's label-set fingerprint: 64-bit FNV-1a over sorted names and values."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode() + b"\xff":
                value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def group_key(group_labels: Mapping[str, str]) -> str:
    """The group key Alertmanager puts in webhooks for a group of the root route."""
    inner = ", ".join(f"{name}={_quote(group_labels[name])}" for name in sorted(group_labels))
    return "{}:{" + inner + "}"


def parse_time(text: str) -> datetime:
    """RFC 3339 with any number of fractional digits, as aware UTC (Go sends nanoseconds)."""
    match = _TIME_RE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time")
    date, clock_part, fraction, zone = match.groups()
    micro = (fraction or "").ljust(6, "0")[:6]
    offset = "+00:00" if zone in ("Z", "z") else zone
    return datetime.fromisoformat(f"{date}T{clock_part}.{micro}{offset}").astimezone(UTC)


def format_time(moment: datetime) -> str:
    """How Alertmanager's API renders times: UTC with milliseconds."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _format_webhook_time(moment: datetime | None) -> str:
    """Go's RFC 3339 with trailing fractional zeros trimmed; the zero time for 'not ended'."""
    if moment is None:
        return "0001-01-01T00:00:00Z"
    moment = moment.astimezone(UTC)
    fraction = f".{moment.microsecond:06d}".rstrip("0").rstrip(".")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _millis(moment: datetime) -> datetime:
    # Alertmanager's API rounds to milliseconds; storing the same lets a client post back what
    # it read and be recognised as "unchanged" (which keeps a silence's id on update).
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(slots=True)
class _Alert:
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    updated_at: datetime
    generator_url: str
    timeout: bool  # endsAt was not given: the resolve timeout applies

    def resolved(self, now: datetime) -> bool:
        return self.ends_at <= now


@dataclass(slots=True)
class _Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    updated_at: datetime
    created_by: str
    comment: str

    def state(self, now: datetime) -> str:
        if now < self.starts_at:
            return "pending"
        if now < self.ends_at:
            return "active"
        return "expired"


@dataclass(slots=True)
class _NotifyEntry:
    firing: frozenset[str]
    resolved: frozenset[str]
    at: datetime


@dataclass(slots=True)
class _Group:
    labels: dict[str, str]
    alerts: dict[str, _Alert] = field(default_factory=dict)


class _Invalid(Exception):
    """A request the real server answers with 400 and a JSON string."""


def _api_error(code: int, message: str, status: int) -> JSONResponse:
    # go-openapi's own validation errors are objects, unlike the handlers' JSON strings.
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "").lower()
    return value not in _FALSE if value else True


def _label_set(raw: object, what: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise _Invalid(f"{what} must map names to strings")
    # Alertmanager drops empty values before validating, as Prometheus does.
    out = {str(k): v for k, v in raw.items() if v != ""}
    for name in out:
        if not _LABEL_NAME_RE.match(name):
            raise _Invalid(f"invalid {what}: invalid name {_quote(name)}")
    return out


def _matcher_json(matcher: Matcher) -> dict[str, Any]:
    return {
        "isEqual": matcher.is_equal,
        "isRegex": matcher.is_regex,
        "name": matcher.name,
        "value": matcher.value,
    }


class StandinAlertmanager:
    """State and HTTP API of the stand-in; `app` is the Starlette application to serve."""

    def __init__(
        self,
        *,
        clock: Clock,
        webhook_url: str | None = None,
        webhook_token: str | None = None,
        http: httpx.AsyncClient | None = None,
        receiver: str = "oncall-tui",
        group_by: Sequence[str] = ("alertname", "service"),
        resolve_timeout: float = 300.0,
        repeat_interval: float = 3600.0,
        external_url: str = "http://127.0.0.1:9093",
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.clock = clock
        self.webhook_url = webhook_url
        self.receiver = receiver
        self.group_by = tuple(group_by)
        self.resolve_timeout = timedelta(seconds=resolve_timeout)
        self.repeat_interval = timedelta(seconds=repeat_interval)
        self.external_url = external_url
        self.notifications_sent = 0
        self._webhook_token = webhook_token
        self._http = http
        self._own_http = False
        self._new_id = new_id
        self._alerts: dict[str, _Alert] = {}
        self._silences: dict[str, _Silence] = {}
        self._nflog: dict[str, _NotifyEntry] = {}
        self._started_at = clock.now()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.app = Starlette(
            routes=[
                Route("/api/v2/alerts", self._get_alerts, methods=["GET"]),
                Route("/api/v2/alerts", self._post_alerts, methods=["POST"]),
                Route("/api/v2/alerts/groups", self._get_groups, methods=["GET"]),
                Route("/api/v2/silences", self._get_silences, methods=["GET"]),
                Route("/api/v2/silences", self._post_silence, methods=["POST"]),
                Route("/api/v2/silence/{silence_id}", self._get_silence, methods=["GET"]),
                Route("/api/v2/silence/{silence_id}", self._delete_silence, methods=["DELETE"]),
                Route("/api/v2/status", self._get_status, methods=["GET"]),
                Route("/api/v2/receivers", self._get_receivers, methods=["GET"]),
                Route("/-/ready", self._ok, methods=["GET", "HEAD"]),
                Route("/-/healthy", self._ok, methods=["GET", "HEAD"]),
            ]
        )

    # -- lifecycle of the notifier ---------------------------------------------------------

    async def start(self, *, tick: float = 1.0) -> None:
        """Send webhook notifications (and forget resolved alerts) in the background."""
        if self._task is None:
            if self._http is None and self.webhook_url:
                self._http = httpx.AsyncClient(timeout=5.0)
                self._own_http = True
            self._task = asyncio.create_task(self._notify_loop(tick), name="standin-notifier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None
            self._own_http = False

    async def _notify_loop(self, tick: float) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(tick):  # not wait_for: it can swallow a cancel
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # the notifier must outlive one bad round
                log.exception("stand-in notification round failed")

    # -- domain ----------------------------------------------------------------------------

    def _silenced_by(self, labels: Mapping[str, str], now: datetime) -> list[str]:
        return [
            s.id
            for s in self._silences.values()
            if s.state(now) == "active" and matches_all(s.matchers, labels)
        ]

    def _group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        return {name: labels[name] for name in self.group_by if name in labels}

    def _alert_json(self, alert: _Alert, now: datetime) -> dict[str, Any]:
        silenced_by = self._silenced_by(alert.labels, now)
        out: dict[str, Any] = {
            "annotations": dict(alert.annotations),
            "endsAt": format_time(alert.ends_at),
            "fingerprint": alert.fingerprint,
            "receivers": [{"name": self.receiver}],
            "startsAt": format_time(alert.starts_at),
            "status": {
                "inhibitedBy": [],
                "silencedBy": silenced_by,
                "state": "suppressed" if silenced_by else "active",
            },
            "updatedAt": format_time(alert.updated_at),
            "labels": dict(alert.labels),
        }
        if alert.generator_url:
            out["generatorURL"] = alert.generator_url
        return out

    def _silence_json(self, silence: _Silence, now: datetime) -> dict[str, Any]:
        return {
            "id": silence.id,
            "status": {"state": silence.state(now)},
            "updatedAt": format_time(silence.updated_at),
            "comment": silence.comment,
            "createdBy": silence.created_by,
            "endsAt": format_time(silence.ends_at),
            "matchers": [_matcher_json(m) for m in silence.matchers],
            "startsAt": format_time(silence.starts_at),
        }

    def _filtered_alerts(self, request: Request, *, groups: bool) -> list[_Alert]:
        now = self.clock.now()
        matchers: list[Matcher] = []
        for text in request.query_params.getlist("filter"):
            matchers.append(_parse_filter(text))
        receiver_re: re.Pattern[str] | None = None
        if receiver := request.query_params.get("receiver"):
            try:
                receiver_re = re.compile(f"^(?:{receiver})$")
            except re.error as exc:
                raise _Invalid(f"failed to parse receiver param: {exc}") from None
        active, silenced = _flag(request, "active"), _flag(request, "silenced")
        inhibited = _flag(request, "inhibited")
        unprocessed = True if groups else _flag(request, "unprocessed")
        del inhibited, unprocessed  # nothing is ever inhibited or left unprocessed here
        out = []
        for alert in sorted(self._alerts.values(), key=lambda a: a.fingerprint):
            if alert.resolved(now):
                continue
            is_silenced = bool(self._silenced_by(alert.labels, now))
            if (is_silenced and not silenced) or (not is_silenced and not active):
                continue
            if receiver_re is not None and not receiver_re.match(self.receiver):
                continue
            if matches_all(matchers, alert.labels):
                out.append(alert)
        return out

    def put_alerts(self, raw_alerts: Iterable[Mapping[str, Any]]) -> list[str]:
        """Store alerts as `POST /alerts` does; returns the validation errors (valid ones stay)."""
        now = _millis(self.clock.now())
        errors: list[str] = []
        for raw in raw_alerts:
            try:
                alert = self._validate_alert(raw, now)
            except _Invalid as exc:
                errors.append(str(exc))
                continue
            old = self._alerts.get(alert.fingerprint)
            if old is not None and (
                old.starts_at < alert.ends_at < old.ends_at
                or old.starts_at < alert.starts_at < old.ends_at
            ):
                alert = _merge(old, alert)
            self._alerts[alert.fingerprint] = alert
        self._wake.set()
        return errors

    def _validate_alert(self, raw: Mapping[str, Any], now: datetime) -> _Alert:
        labels = _label_set(raw.get("labels"), "label set")
        if not labels:
            raise _Invalid("at least one label pair required")
        annotations = _label_set(raw.get("annotations"), "annotations")
        try:
            starts = parse_time(raw["startsAt"]) if raw.get("startsAt") else None
            ends = parse_time(raw["endsAt"]) if raw.get("endsAt") else None
        except (TypeError, ValueError) as exc:
            raise _Invalid(str(exc)) from None
        if starts is None:
            starts = ends if ends is not None else now
        timeout = ends is None
        if ends is None:
            ends = now + self.resolve_timeout
        if ends < starts:
            raise _Invalid("start time must be before end time")
        generator = raw.get("generatorURL") or ""
        if not isinstance(generator, str):
            raise _Invalid("generatorURL must be a string")
        return _Alert(
            fingerprint=fingerprint(labels),
            labels=labels,
            annotations=annotations,
            starts_at=_millis(starts),
            ends_at=_millis(ends),
            updated_at=now,
            generator_url=generator,
            timeout=timeout,
        )

    def set_silence(self, body: Mapping[str, Any]) -> str:
        """Create or update a silence as Alertmanager 0.25 does; raises _Invalid or KeyError."""
        now = _millis(self.clock.now())
        matchers = tuple(_silence_matcher(i, m) for i, m in enumerate(body["matchers"]))
        try:
            starts, ends = parse_time(body["startsAt"]), parse_time(body["endsAt"])
        except (TypeError, ValueError) as exc:
            raise _Invalid(str(exc)) from None
        starts, ends = _millis(starts), _millis(ends)
        if starts >= ends:
            raise _Invalid("Failed to create silence: start time must be before end time")
        if ends < now:
            raise _Invalid("Failed to create silence: end time can't be in the past")
        if all(matches_all((m,), {}) for m in matchers):
            raise _Invalid("silence invalid: at least one matcher must not match the empty string")
        wanted = _Silence(
            id=str(body.get("id") or ""),
            matchers=matchers,
            starts_at=starts,
            ends_at=ends,
            updated_at=now,
            created_by=str(body.get("createdBy", "")),
            comment=str(body.get("comment", "")),
        )
        if wanted.id:
            previous = self._silences.get(wanted.id)
            if previous is None:
                raise KeyError(wanted.id)
            if _can_update(previous, wanted, now):
                self._silences[wanted.id] = wanted
                self._wake.set()
                return wanted.id
            if previous.state(now) != "expired":
                self._expire(previous, now)
        wanted.id = self._new_id()
        wanted.starts_at = max(wanted.starts_at, now)
        self._silences[wanted.id] = wanted
        self._wake.set()
        return wanted.id

    def _expire(self, silence: _Silence, now: datetime) -> None:
        if silence.state(now) == "pending":
            silence.starts_at = now
        silence.ends_at = now
        silence.updated_at = now
        self._wake.set()

    # -- notifications ---------------------------------------------------------------------

    async def flush(self) -> None:
        """Send the notifications that are due, then forget alerts that have resolved."""
        now = self.clock.now()
        groups: dict[str, _Group] = {}
        for alert in self._alerts.values():
            labels = self._group_labels(alert.labels)
            groups.setdefault(group_key(labels), _Group(labels)).alerts[alert.fingerprint] = alert
        for key, group in sorted(groups.items()):
            unmuted = [a for a in group.alerts.values() if not self._silenced_by(a.labels, now)]
            firing = frozenset(a.fingerprint for a in unmuted if not a.resolved(now))
            resolved = frozenset(a.fingerprint for a in unmuted if a.resolved(now))
            if self._needs_update(self._nflog.get(key), firing, resolved, now):
                if self.webhook_url is None or self._http is None:
                    self._nflog[key] = _NotifyEntry(firing, resolved, now)
                elif not await self._send(key, group, unmuted, now):
                    continue  # keep the alerts so the next round retries
                else:
                    self._nflog[key] = _NotifyEntry(firing, resolved, now)
            for alert in group.alerts.values():
                current = self._alerts.get(alert.fingerprint)
                if current is alert and alert.resolved(now):
                    del self._alerts[alert.fingerprint]

    def _needs_update(
        self,
        entry: _NotifyEntry | None,
        firing: frozenset[str],
        resolved: frozenset[str],
        now: datetime,
    ) -> bool:
        # The same decision as Alertmanager's dedup stage with send_resolved: true.
        if entry is None:
            return bool(firing)
        if not firing <= entry.firing:
            return True
        if not firing:
            return bool(entry.firing)
        if not resolved <= entry.resolved:
            return True
        return entry.at < now - self.repeat_interval

    async def _send(self, key: str, group: _Group, alerts: Sequence[_Alert], now: datetime) -> bool:
        assert self._http is not None
        assert self.webhook_url is not None
        payload = self.webhook_payload(key, group.labels, alerts, now)
        headers = {"Content-Type": "application/json", "User-Agent": f"Alertmanager/{VERSION}"}
        if self._webhook_token:
            headers["Authorization"] = f"Bearer {self._webhook_token}"
        try:
            response = await self._http.post(
                self.webhook_url, content=json.dumps(payload).encode(), headers=headers
            )
        except httpx.HTTPError as exc:
            log.warning("stand-in webhook failed: %s", type(exc).__name__)
            return False
        if response.status_code >= 300:
            log.warning("stand-in webhook answered %s", response.status_code)
            return False
        self.notifications_sent += 1
        return True

    def webhook_payload(
        self,
        key: str,
        group_labels: Mapping[str, str],
        alerts: Sequence[_Alert],
        now: datetime,
    ) -> dict[str, Any]:
        items = []
        for alert in sorted(alerts, key=lambda a: a.fingerprint):
            done = alert.resolved(now)
            items.append(
                {
                    "status": "resolved" if done else "firing",
                    "labels": dict(alert.labels),
                    "annotations": dict(alert.annotations),
                    "startsAt": _format_webhook_time(alert.starts_at),
                    # Alertmanager zeroes the end of alerts still firing at notification time.
                    "endsAt": _format_webhook_time(alert.ends_at if done else None),
                    "generatorURL": alert.generator_url,
                    "fingerprint": alert.fingerprint,
                }
            )
        return {
            "receiver": self.receiver,
            "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
            "alerts": items,
            "groupLabels": dict(group_labels),
            "commonLabels": _common([a.labels for a in alerts]),
            "commonAnnotations": _common([a.annotations for a in alerts]),
            "externalURL": self.external_url,
            "version": "4",
            "groupKey": key,
            "truncatedAlerts": 0,
        }

    def config_yaml(self) -> str:
        """What `status.config.original` shows: the routing this stand-in applies."""
        lines = [
            "global:",
            f"  resolve_timeout: {int(self.resolve_timeout.total_seconds())}s",
            "route:",
            f"  receiver: {self.receiver}",
            "  group_by:",
            *[f"  - {name}" for name in self.group_by],
            "  group_wait: 0s",
            "  group_interval: 1s",
            f"  repeat_interval: {int(self.repeat_interval.total_seconds())}s",
            "receivers:",
            f"- name: {self.receiver}",
        ]
        if self.webhook_url:
            lines += ["  webhook_configs:", "  - send_resolved: true"]
            if self._webhook_token:
                lines += [
                    "    http_config:",
                    "      authorization:",
                    "        type: Bearer",
                    "        credentials: <secret>",
                ]
            lines.append(f"    url: {self.webhook_url}")
        return "\n".join(lines) + "\n"

    # -- HTTP handlers ---------------------------------------------------------------------

    async def _ok(self, request: Request) -> Response:
        return PlainTextResponse("OK")

    async def _get_alerts(self, request: Request) -> Response:
        try:
            alerts = self._filtered_alerts(request, groups=False)
        except _Invalid as exc:
            return JSONResponse(str(exc), status_code=400)
        now = self.clock.now()
        return JSONResponse([self._alert_json(a, now) for a in alerts])

    async def _get_groups(self, request: Request) -> Response:
        try:
            alerts = self._filtered_alerts(request, groups=True)
        except _Invalid as exc:
            return JSONResponse(str(exc), status_code=400)
        now = self.clock.now()
        groups: dict[str, _Group] = {}
        for alert in alerts:
            labels = self._group_labels(alert.labels)
            groups.setdefault(group_key(labels), _Group(labels)).alerts[alert.fingerprint] = alert
        return JSONResponse(
            [
                {
                    "alerts": [self._alert_json(a, now) for a in group.alerts.values()],
                    "labels": group.labels,
                    "receiver": {"name": self.receiver},
                }
                for _, group in sorted(groups.items())
            ]
        )

    async def _post_alerts(self, request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:
            # The sender gave up (e.g. the scenario stopping): nothing to store, no one to answer.
            return Response(status_code=400)
        try:
            raw = json.loads(body)
        except ValueError as exc:
            return _api_error(400, f"parsing alerts body failed, because {exc}", 400)
        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
            return _api_error(400, "parsing alerts body failed: expected an array of alerts", 400)
        for item in raw:
            if "labels" not in item:
                return _api_error(602, "labels in body is required", 422)
        errors = self.put_alerts(raw)
        if errors:
            return JSONResponse("; ".join(errors), status_code=400)
        return Response(status_code=200)

    async def _get_silences(self, request: Request) -> Response:
        now = self.clock.now()
        try:
            matchers = [_parse_filter(t) for t in request.query_params.getlist("filter")]
        except _Invalid as exc:
            return JSONResponse(str(exc), status_code=400)
        chosen = [
            s
            for s in self._silences.values()
            if matches_all(matchers, {m.name: m.value for m in s.matchers})
        ]
        return JSONResponse([self._silence_json(s, now) for s in _sort_silences(chosen, now)])

    async def _post_silence(self, request: Request) -> Response:
        body = await request.body()
        try:
            raw = json.loads(body)
        except ValueError as exc:
            return _api_error(400, f"parsing silence body failed, because {exc}", 400)
        if not isinstance(raw, dict):
            return _api_error(400, "parsing silence body failed: expected an object", 400)
        for name in ("matchers", "startsAt", "endsAt", "createdBy", "comment"):
            if name not in raw:
                return _api_error(602, f"{name} in body is required", 422)
        if not isinstance(raw["matchers"], list) or not raw["matchers"]:
            return _api_error(612, "matchers in body should have at least 1 items", 422)
        try:
            silence_id = self.set_silence(raw)
        except _Invalid as exc:
            return JSONResponse(str(exc), status_code=400)
        except KeyError:
            return JSONResponse("silence not found", status_code=404)
        return JSONResponse({"silenceID": silence_id})

    async def _get_silence(self, request: Request) -> Response:
        silence_id = request.path_params["silence_id"]
        if not _UUID_RE.match(silence_id):
            return _api_error(601, f'silenceID in path must be of type uuid: "{silence_id}"', 422)
        silence = self._silences.get(silence_id)
        if silence is None:
            return Response(status_code=404)
        return JSONResponse(self._silence_json(silence, self.clock.now()))

    async def _delete_silence(self, request: Request) -> Response:
        silence_id = request.path_params["silence_id"]
        if not _UUID_RE.match(silence_id):
            return _api_error(601, f'silenceID in path must be of type uuid: "{silence_id}"', 422)
        silence = self._silences.get(silence_id)
        if silence is None:
            # 0.25 answers 500 here (404 came with 0.26).
            return JSONResponse("silence not found", status_code=500)
        now = _millis(self.clock.now())
        if silence.state(now) != "expired":  # expiring an expired silence is a quiet no-op
            self._expire(silence, now)
        return Response(status_code=200)

    async def _get_status(self, request: Request) -> Response:
        return JSONResponse(
            {
                "cluster": {"peers": [], "status": "disabled"},
                "config": {"original": self.config_yaml()},
                "uptime": format_time(self._started_at),
                "versionInfo": {
                    "branch": "oncall-tui-standin",
                    "buildDate": "",
                    "buildUser": "oncall-tui",
                    "goVersion": "none",
                    "revision": "standin",
                    "version": VERSION,
                },
            }
        )

    async def _get_receivers(self, request: Request) -> Response:
        return JSONResponse([{"name": self.receiver}])


def _parse_filter(text: str) -> Matcher:
    # The real server takes one matcher per `filter` value, without braces.
    if text.strip().startswith("{"):
        raise _Invalid(f"bad matcher format: {text}")
    try:
        parsed = parse_matchers(text)
    except MatcherSyntaxError as exc:
        raise _Invalid(f"bad matcher format: {text}: {exc}") from None
    if len(parsed) != 1:
        raise _Invalid(f"bad matcher format: {text}")
    return parsed[0]


def _silence_matcher(index: int, raw: object) -> Matcher:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise _Invalid(f"silence invalid: invalid label matcher {index}: name is required")
    name, value = raw["name"], raw.get("value")
    if not isinstance(value, str) or not isinstance(raw.get("isRegex"), bool):
        raise _Invalid(f"silence invalid: invalid label matcher {index}: value and isRegex needed")
    if not _LABEL_NAME_RE.match(name):
        raise _Invalid(f"silence invalid: invalid label matcher {index}: invalid label name")
    matcher = Matcher(
        name=name,
        value=value,
        is_regex=raw["isRegex"],
        is_equal=raw.get("isEqual", True) is not False,
    )
    if matcher.is_regex:
        try:
            re.compile(value)
        except re.error as exc:
            raise _Invalid(
                f"silence invalid: invalid label matcher {index}: "
                f"invalid regular expression {_quote(value)}: {exc}"
            ) from None
    return matcher


def _can_update(previous: _Silence, wanted: _Silence, now: datetime) -> bool:
    """Whether Alertmanager would update in place rather than expire and replace."""
    if previous.matchers != wanted.matchers:
        return False
    state = previous.state(now)
    if state == "active":
        return wanted.starts_at == previous.starts_at and wanted.ends_at >= now
    if state == "pending":
        return wanted.starts_at >= now
    return False


def _sort_silences(silences: Sequence[_Silence], now: datetime) -> list[_Silence]:
    # Active by end, then pending by start, then expired with the most recent first.
    def key(silence: _Silence) -> tuple[int, float]:
        state = silence.state(now)
        if state == "active":
            return (0, silence.ends_at.timestamp())
        if state == "pending":
            return (1, silence.starts_at.timestamp())
        return (2, -silence.ends_at.timestamp())

    return sorted(silences, key=key)


def _merge(old: _Alert, new: _Alert) -> _Alert:
    """Alertmanager's merge of a re-sent alert into the one it already holds."""
    merged = replace(new)
    merged.starts_at = min(old.starts_at, new.starts_at)
    if new.resolved(new.updated_at):
        if old.resolved(new.updated_at) and old.ends_at > new.ends_at:
            merged.ends_at = old.ends_at
    elif old.ends_at > new.ends_at and not old.timeout:
        merged.ends_at = old.ends_at
        merged.timeout = False
    return merged


def _common(sets: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not sets:
        return {}
    common = dict(sets[0])
    for other in sets[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common
