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
import hmac
import logging
import socket
from collections.abc import Awaitable, Generator, Mapping, Sequence
from typing import Any, Final, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oncall_tui.webhook_payloads import (
    AlertmanagerNotification,
    WebhookRejected,
    parse_alertmanager_notification,
    parse_pagerduty_event,
    verify_pagerduty_signature,
)

log = logging.getLogger(__name__)

MAX_BODY: Final = 1 << 20
# A sender that trickles its body (slowloris) is cut off: the connection would otherwise stay
# open for as long as it likes.
BODY_TIMEOUT: Final = 10.0
ALERTMANAGER_PATH: Final = "/webhooks/alertmanager"
PAGERDUTY_PATH: Final = "/webhooks/pagerduty"


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
