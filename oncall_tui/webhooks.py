"""The webhook listener: Alertmanager and PagerDuty push here, the engine handles what arrives.

A Starlette app (driven in-process by tests through `httpx.ASGITransport`) served by uvicorn
inside the running event loop. DESIGN.md section 8: Alertmanager is checked against an optional
bearer token, PagerDuty against `X-PagerDuty-Signature`; a missing or wrong credential gets 401,
bodies over the limit 413, a body still trickling in after BODY_TIMEOUT 408 (slowloris),
non-JSON 400, wrong shapes and strings over MAX_STRING 422, and each rejection is reported to
the handler (which logs it) before the answer goes out. A notification is answered 200 only after
the handler returned, i.e. after its log entry is committed; if the handler fails the answer is
500 so that the sender retries.

PagerDuty without a configured signing secret is refused with 401 "webhook secret not
configured": an unverifiable delivery must not look like a verified one in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import socket
from collections.abc import Awaitable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

MAX_BODY: Final = 1 << 20
# PagerDuty event data is handed on as a mapping; deeper nesting than any real event is refused
# so that nothing downstream (redaction, JSON encoding, rendering) recurses without bound.
MAX_EVENT_DEPTH: Final = 32
# No label, annotation or event field of a real sender comes near this; a longer one is refused
# rather than carried into the log and onto the operator's screen.
MAX_STRING: Final = 64 * 1024
# A sender that trickles its body (slowloris) is cut off: the connection would otherwise stay
# open for as long as it likes.
BODY_TIMEOUT: Final = 10.0
ALERTMANAGER_PATH: Final = "/webhooks/alertmanager"
PAGERDUTY_PATH: Final = "/webhooks/pagerduty"
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


# --- the app ---------------------------------------------------------------------------------


class WebhookHandler(Protocol):
    async def on_alertmanager(self, notification: AlertmanagerNotification, remote: str) -> None:
        """Handle a notification; return only after its log entry is committed."""
        ...

    async def on_pagerduty(
        self, event: Mapping[str, Any], delivery_id: str | None, remote: str
    ) -> None: ...

    async def on_rejected(self, path: str, status: int, reason: str, remote: str) -> None: ...


def _remote(request: Request) -> str:
    return request.client.host if request.client else ""


async def _read_body(request: Request, max_body: int, patience: float) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `max_body`, and with 408
    when it has not fully arrived within `patience` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise WebhookRejected(400, "invalid Content-Length")
        if int(declared) > max_body:
            raise WebhookRejected(413, f"body larger than {max_body} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(patience):
            # Counted while streaming: a chunked body has no Content-Length to trust.
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body:
                    raise WebhookRejected(413, f"body larger than {max_body} bytes")
                chunks.append(chunk)
    except ClientDisconnect:
        raise WebhookRejected(400, "client disconnected") from None
    except TimeoutError:
        raise WebhookRejected(408, f"body not received within {patience:g}s") from None
    return b"".join(chunks)


def _bearer_ok(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(
        value.strip().encode("utf-8", "replace"), token.encode("utf-8", "replace")
    )


def make_webhook_app(
    handler: WebhookHandler,
    *,
    alertmanager_token: str | None,
    pagerduty_secrets: Sequence[str] = (),
    max_body: int = MAX_BODY,
    body_timeout: float = BODY_TIMEOUT,
) -> Starlette:
    secrets = tuple(secret for secret in pagerduty_secrets if secret)

    async def reject(path: str, rejected: WebhookRejected, remote: str) -> Response:
        try:
            await handler.on_rejected(path, rejected.status, rejected.reason, remote)
        except Exception as error:
            # The answer still goes out; the sender learns nothing of our log's trouble.
            log.error("could not record a rejected webhook: %s", type(error).__name__)
        bearer = rejected.status == 401 and path == ALERTMANAGER_PATH
        headers = {"WWW-Authenticate": "Bearer"} if bearer else None
        return JSONResponse(
            {"error": rejected.reason}, status_code=rejected.status, headers=headers
        )

    async def handled(path: str, remote: str, call: Awaitable[None]) -> Response:
        try:
            await call
        except Exception as error:
            # 5xx makes Alertmanager and PagerDuty retry: nothing is lost while the log is sick.
            log.error("webhook handler failed on %s: %s", path, type(error).__name__)
            return await reject(path, WebhookRejected(500, "handler failed"), remote)
        return JSONResponse({"status": "ok"})

    async def alertmanager(request: Request) -> Response:
        remote = _remote(request)
        try:
            if alertmanager_token and not _bearer_ok(
                request.headers.get("authorization"), alertmanager_token
            ):
                raise WebhookRejected(401, "missing or wrong bearer token")
            body = await _read_body(request, max_body, body_timeout)
            notification = parse_alertmanager_notification(body)
        except WebhookRejected as rejected:
            return await reject(ALERTMANAGER_PATH, rejected, remote)
        return await handled(
            ALERTMANAGER_PATH, remote, handler.on_alertmanager(notification, remote)
        )

    async def pagerduty(request: Request) -> Response:
        remote = _remote(request)
        try:
            if not secrets:
                raise WebhookRejected(401, "webhook secret not configured")
            body = await _read_body(request, max_body, body_timeout)
            signature = request.headers.get("x-pagerduty-signature")
            if not signature:
                raise WebhookRejected(401, "missing signature")
            if not verify_pagerduty_signature(body, signature, secrets):
                raise WebhookRejected(401, "bad signature")
            event = parse_pagerduty_event(body)
        except WebhookRejected as rejected:
            return await reject(PAGERDUTY_PATH, rejected, remote)
        delivery_id = request.headers.get("x-webhook-id") or None
        return await handled(
            PAGERDUTY_PATH, remote, handler.on_pagerduty(event, delivery_id, remote)
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route(ALERTMANAGER_PATH, alertmanager, methods=["POST"]),
            Route(PAGERDUTY_PATH, pagerduty, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


# --- the server ------------------------------------------------------------------------------


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The host process (dashboard or `serve`) owns SIGINT/SIGTERM, not the listener.
        yield


class WebhookServer:
    """Serves an ASGI app with uvicorn inside the current event loop."""

    START_TIMEOUT: Final = 10.0
    STOP_TIMEOUT: Final = 5.0

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def running(self) -> bool:
        return (
            self._server is not None
            and self._task is not None
            and not self._task.done()
            and self._server.started
            and not self._server.should_exit
        )

    async def start(self) -> None:
        """Bind and start serving; port 0 picks a free port (then `.port` is the real one).

        Raises OSError if the address cannot be bound.
        """
        if self._task is not None:
            raise RuntimeError("webhook server already started")
        # We bind the socket ourselves: uvicorn answers a bind failure with sys.exit(), which
        # inside a task would take the whole event loop down.
        sock = await self._bind()
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            log_config=None,  # never reconfigure the host's logging (it would paint the TUI)
            access_log=False,
            lifespan="off",
            ws="none",
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        server = _EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="webhook-server")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.START_TIMEOUT
        while not server.started:
            if self._task.done():
                sock.close()
                error = None if self._task.cancelled() else self._task.exception()
                self._task = None
                raise RuntimeError(f"webhook server failed to start: {error!r}")
            if loop.time() > deadline:
                await self.stop()
                raise TimeoutError("webhook server did not start in time")
            await asyncio.sleep(0.01)

    async def _bind(self) -> socket.socket:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        if not infos:
            raise OSError(f"cannot resolve {self.host}")
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), then return."""
        task, server = self._task, self._server
        if task is None or server is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), self.STOP_TIMEOUT)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 1.0)
        except Exception as error:
            log.error("webhook server stopped with %s", type(error).__name__)
        finally:
            self._task = None
