"""A fake PagerDuty for the sandbox and the tests: REST API v2, Events API v2, Webhooks v3.

One Starlette app (`FakePagerDuty.app`) serves the REST API at the root of `api_url` and the
Events API at `/v2/enqueue`, so `api_url` and `events_url` may be the same origin. It answers as
PagerDuty does (API-NOTES.md section 2) and only with fields PagerDuty returns; the tests check
every exchange against the published specs. PagerDuty's rules it enforces:

- `Authorization: Token token=<api_token>` exactly (else 401), the versioned `Accept` (stricter
  than PagerDuty, which would fall back to its default version), `From: <a user's email>` on
  writes; error bodies `{"error": {"code", "message", "errors"}}`; classic pagination (`limit` at
  most 100, `offset + limit` at most 10000, `total` only with `total=true`); `ratelimit-*` headers
  and, when `throttle()` asks for it, 429 with code 2020;
- Events: 202 with the dedup_key; 400 for a bad routing key, action, payload or severity;
  acknowledge/resolve of an unknown key is accepted and dropped;
- webhooks v3 to `webhook_url`, one event per POST, signed with every secret
  (`X-PagerDuty-Signature: v1=..,v1=..`), `X-Webhook-Id` kept across retries, in order,
  retried on 5xx/429/network errors, dropped on other 4xx.

Incident and escalation semantics live in `pagerduty_incidents.py`, the seeded account in
`pagerduty_directory.py`, the JSON in `pagerduty_render.py`, Events parsing in
`pagerduty_enqueue.py`, pagination and the directory endpoints in `pagerduty_rest.py`.

Time comes from the injected Clock; escalation delays are divided by `time_scale` (30.0 makes a
5-minute delay take 10 s). `tick()` runs what is due once (tests call it with a FrozenClock);
`start()` runs it in the background and sends webhooks as they happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oncall_tui.clock import Clock
from oncall_tui.sandbox.pagerduty_directory import Directory, User
from oncall_tui.sandbox.pagerduty_enqueue import EventRejected, parse_event
from oncall_tui.sandbox.pagerduty_incidents import Incident, IncidentBook, IncidentError, Page
from oncall_tui.sandbox.pagerduty_render import incident_json, note_json
from oncall_tui.sandbox.pagerduty_rest import (
    BadInput,
    DirectoryApi,
    error_response,
    json_object,
    page_of,
    parse_time,
    sort_incidents,
)

log = logging.getLogger(__name__)

ACCEPT = "application/vnd.pagerduty+json;version=2"
RATE_LIMIT = 960  # requests per minute per key
SUBSCRIPTION_ID = "PSUBSC1"
WEBHOOK_ATTEMPTS = 6
WEBHOOK_TIMEOUT = 5.0

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Delivery:
    """One webhook delivery: its body is signed once and resent unchanged on retry."""

    webhook_id: str
    event_type: str
    body: bytes
    attempts: int = 0
    not_before: float = 0.0
    status: int | None = None  # last HTTP status; None: not answered
    outcome: str = "pending"  # pending | delivered | dropped


class FakePagerDuty:
    def __init__(
        self,
        *,
        clock: Clock,
        api_token: str,
        routing_keys: Sequence[str],
        webhook_url: str | None = None,
        webhook_secrets: Sequence[str] = (),
        time_scale: float = 1.0,
        http: httpx.AsyncClient | None = None,
        seed: int = 0,
        operator_email: str = "demo@example.com",
    ) -> None:
        self.clock = clock
        self.api_token = api_token
        self.directory = Directory(seed=seed, operator_email=operator_email)
        services = list(self.directory.services)
        # Each routing key is an Events API v2 integration on one service, in seeded order.
        self.routing_keys = {
            key: services[index % len(services)] for index, key in enumerate(routing_keys)
        }
        self.webhook_url = webhook_url
        self.webhook_secrets = [secret for secret in webhook_secrets if secret]
        self.book = IncidentBook(self.directory, time_scale=time_scale, seed=seed)
        self.deliveries: list[Delivery] = []
        self._queue: list[Delivery] = []
        self._http = http
        self._own_http = False
        self._throttled = 0
        self._window_start = 0.0
        self._window_count = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started_at = clock.now()
        self.app = Starlette(routes=self._routes())

    # -- for tests and the sandbox ----------------------------------------------------------

    @property
    def incidents(self) -> list[Incident]:
        return self.book.incidents

    @property
    def pages(self) -> list[Page]:
        return self.book.pages

    def throttle(self, requests: int = 1) -> None:
        """Answer the next `requests` requests (REST or Events) with 429."""
        self._throttled += requests

    def webhook_headers(self, body: bytes, webhook_id: str) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "PagerDuty-Webhook/V3.0",
            "X-Webhook-Id": webhook_id,
            "X-Webhook-Subscription": SUBSCRIPTION_ID,
        }
        if self.webhook_secrets:
            headers["X-PagerDuty-Signature"] = ",".join(
                "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                for secret in self.webhook_secrets
            )
        return headers

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, *, interval: float = 0.25) -> None:
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._run(interval), name="fake-pagerduty")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, WEBHOOK_TIMEOUT + 1)
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None
            self._own_http = False

    async def _run(self, interval: float) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("fake PagerDuty tick failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):  # not wait_for: it can swallow a cancel
                    await self._wake.wait()
            self._wake.clear()

    async def tick(self) -> None:
        """Escalate and un-snooze what is due now, then send the webhooks waiting."""
        self.book.advance(self.clock.now())
        await self._send_webhooks()

    # -- webhooks ---------------------------------------------------------------------------

    def _collect(self) -> None:
        for envelope in self.book.outbox:
            if self.webhook_url is None:
                continue
            body = json.dumps(envelope, separators=(",", ":")).encode()
            delivery = Delivery(str(uuid.uuid4()), envelope["event"]["event_type"], body)
            self._queue.append(delivery)
            self.deliveries.append(delivery)
        self.book.outbox.clear()

    async def _send_webhooks(self) -> None:
        self._collect()
        if not self._queue or self.webhook_url is None:
            return
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT)
            self._own_http = True
        while self._queue:
            delivery = self._queue[0]
            if delivery.not_before > self.clock.monotonic():
                return  # later events wait behind one being retried, as PagerDuty orders them
            delivery.attempts += 1
            retry = False
            try:
                response = await self._http.post(
                    self.webhook_url,
                    content=delivery.body,
                    headers=self.webhook_headers(delivery.body, delivery.webhook_id),
                    timeout=WEBHOOK_TIMEOUT,
                )
                delivery.status = response.status_code
                retry = response.status_code >= 500 or response.status_code == 429
                if response.is_success:
                    delivery.outcome = "delivered"
                elif not retry:
                    delivery.outcome = "dropped"
            except httpx.HTTPError as exc:
                log.info("webhook %s not delivered: %s", delivery.webhook_id, type(exc).__name__)
                retry = True
            if retry and delivery.attempts < WEBHOOK_ATTEMPTS:
                delivery.not_before = self.clock.monotonic() + 0.5 * 2 ** (delivery.attempts - 1)
                return
            if retry:
                delivery.outcome = "dropped"
            self._queue.pop(0)

    def _changed(self) -> None:
        self._wake.set()

    # -- HTTP plumbing ----------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        rest = self._rest
        directory = DirectoryApi(self.directory, self.clock, self._started_at)
        return [
            Route("/v2/enqueue", self._enqueue, methods=["POST"]),
            Route("/incidents", rest(self._list_incidents), methods=["GET"]),
            Route("/incidents", rest(self._bulk_update, write=True), methods=["PUT"]),
            Route("/incidents/{id}", rest(self._get_incident), methods=["GET"]),
            Route("/incidents/{id}", rest(self._update_incident, write=True), methods=["PUT"]),
            Route("/incidents/{id}/snooze", rest(self._snooze, write=True), methods=["POST"]),
            Route("/incidents/{id}/notes", rest(self._notes), methods=["GET"]),
            Route("/incidents/{id}/notes", rest(self._add_note, write=True), methods=["POST"]),
            Route("/oncalls", rest(directory.oncalls), methods=["GET"]),
            Route("/escalation_policies", rest(directory.policies), methods=["GET"]),
            Route("/escalation_policies/{id}", rest(directory.policy), methods=["GET"]),
            Route("/schedules", rest(directory.schedules), methods=["GET"]),
            Route("/schedules/{id}", rest(directory.schedule), methods=["GET"]),
            Route("/services", rest(directory.services), methods=["GET"]),
            Route("/services/{id}", rest(directory.service), methods=["GET"]),
            Route("/users", rest(directory.users), methods=["GET"]),
            Route("/users/me", rest(directory.me), methods=["GET"]),
            Route("/users/{id}", rest(directory.user), methods=["GET"]),
        ]

    def _rest(
        self, handler: Callable[[Request, User | None], Awaitable[Response]], *, write: bool = False
    ) -> Handler:
        async def endpoint(request: Request) -> Response:
            headers = self._rate_headers()
            response = await self._guarded(request, handler, write)
            response.headers.update(headers)
            return response

        return endpoint

    async def _guarded(
        self,
        request: Request,
        handler: Callable[[Request, User | None], Awaitable[Response]],
        write: bool,
    ) -> Response:
        if self._throttled > 0:
            self._throttled -= 1
            return error_response(429, 2020, "Rate Limit Exceeded")
        if request.headers.get("authorization") != f"Token token={self.api_token}":
            return error_response(401, 2006, "Authentication failed")
        accept = request.headers.get("accept", "").replace(" ", "").lower()
        if accept != ACCEPT:
            return error_response(
                400, 2001, "Invalid Input Provided", [f"Accept header must be {ACCEPT}."]
            )
        requester: User | None = None
        if write:
            email = request.headers.get("from", "")
            if not email:
                return error_response(400, 2011, "You must specify a requester_id")
            requester = self.directory.user_by_email(email)
            if requester is None:
                return error_response(400, 1008, "Requester User Not Found")
        try:
            return await handler(request, requester)
        except IncidentError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.errors)
        except BadInput as exc:
            return error_response(400, 2001, "Invalid Input Provided", [str(exc)])

    def _rate_headers(self) -> dict[str, str]:
        now = self.clock.monotonic()
        if now - self._window_start >= 60 or now < self._window_start:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        reset = max(1, int(60 - (now - self._window_start)))
        return {
            "ratelimit-limit": str(RATE_LIMIT),
            "ratelimit-remaining": str(max(0, RATE_LIMIT - self._window_count)),
            "ratelimit-reset": str(reset),
        }

    # -- Events API v2 ----------------------------------------------------------------------

    async def _enqueue(self, request: Request) -> Response:
        if self._throttled > 0:
            self._throttled -= 1
            return JSONResponse(
                {
                    "status": "throttle event",
                    "message": "Requests for this service are arriving too quickly.  "
                    "Please retry later.",
                },
                status_code=429,
            )
        try:
            event = parse_event(await request.body(), self.routing_keys)
        except EventRejected as exc:
            return JSONResponse(
                {"status": "invalid event", "message": exc.message, "errors": exc.errors},
                status_code=400,
            )
        now = self.clock.now()
        service_id = self.routing_keys[event.routing_key]
        if event.action == "trigger":
            self.book.trigger(service_id, event.dedup_key, event.payload, now, client=event.client)
        elif event.action == "acknowledge":
            self.book.acknowledge_by_key(service_id, event.dedup_key, now)
        else:
            self.book.resolve_by_key(service_id, event.dedup_key, now)
        self._changed()
        return JSONResponse(
            {"status": "success", "message": "Event processed", "dedup_key": event.dedup_key},
            status_code=202,
        )

    # -- REST: incidents --------------------------------------------------------------------

    async def _list_incidents(self, request: Request, _: User | None) -> Response:
        query = request.query_params
        now = self.clock.now()
        statuses = query.getlist("statuses[]")
        for status in statuses:
            if status not in ("triggered", "acknowledged", "resolved"):
                raise BadInput(f"Invalid status {status!r}.")
        services = query.getlist("service_ids[]")
        users = query.getlist("user_ids[]")
        urgencies = query.getlist("urgencies[]")
        key = query.get("incident_key")
        if query.get("date_range") == "all":
            since, until = None, None
        else:
            until = parse_time(query.get("until")) or now
            since = parse_time(query.get("since")) or until - timedelta(days=30)
        found = []
        for incident in self.book.incidents:
            if statuses and incident.status not in statuses:
                continue
            if services and incident.service_id not in services:
                continue
            if urgencies and incident.urgency not in urgencies:
                continue
            if key is not None and incident.incident_key != key:
                continue
            if users and (
                incident.status == "resolved"
                or not {uid for _, uid in incident.assignments} & set(users)
            ):
                continue
            if (
                since is not None
                and until is not None
                and not (since <= incident.created_at <= until)
            ):
                continue
            found.append(incident)
        found = sort_incidents(found, query.get("sort_by", ""))
        include = query.getlist("include[]")
        page, meta = page_of(request, len(found))
        items = [incident_json(self.directory, i, include) for i in found[page]]
        return JSONResponse({"incidents": items, **meta})

    async def _get_incident(self, request: Request, _: User | None) -> Response:
        incident = self.book.find(request.path_params["id"])
        include = request.query_params.getlist("include[]")
        return JSONResponse({"incident": incident_json(self.directory, incident, include)})

    async def _update_incident(self, request: Request, user: User | None) -> Response:
        assert user is not None
        body = await json_object(request)
        changes = body.get("incident")
        if not isinstance(changes, dict) or changes.get("type") not in (
            "incident",
            "incident_reference",
        ):
            raise BadInput("incident.type must be incident or incident_reference.")
        incident = self.book.find(request.path_params["id"])
        self.book.update(incident, changes, user.id, self.clock.now())
        self._changed()
        return JSONResponse({"incident": incident_json(self.directory, incident)})

    async def _bulk_update(self, request: Request, user: User | None) -> Response:
        assert user is not None
        body = await json_object(request)
        items = body.get("incidents")
        if not isinstance(items, list) or not items:
            raise BadInput("incidents must be a non-empty list.")
        if len(items) > 250:
            return error_response(413, 2001, "Request Entity Too Large")
        targets = []
        for item in items:
            if not isinstance(item, dict) or not item.get("id"):
                raise BadInput("Each incident needs an id and a type.")
            targets.append((self.book.find(str(item["id"])), item))
        now = self.clock.now()
        for incident, changes in targets:
            self.book.update(incident, changes, user.id, now)
        self._changed()
        updated = [incident_json(self.directory, incident) for incident, _ in targets]
        return JSONResponse(
            {"incidents": updated, "limit": len(updated), "offset": 0, "more": False, "total": None}
        )

    async def _snooze(self, request: Request, user: User | None) -> Response:
        assert user is not None
        body = await json_object(request)
        duration = body.get("duration")
        if (
            not isinstance(duration, int)
            or isinstance(duration, bool)
            or not (1 <= duration <= 604800)
        ):
            raise BadInput("duration must be 1 to 604800 seconds.")
        incident = self.book.find(request.path_params["id"])
        self.book.snooze(incident, duration, user.id, self.clock.now())
        self._changed()
        return JSONResponse({"incident": incident_json(self.directory, incident)}, status_code=201)

    async def _notes(self, request: Request, _: User | None) -> Response:
        incident = self.book.find(request.path_params["id"])
        return JSONResponse({"notes": [note_json(self.directory, note) for note in incident.notes]})

    async def _add_note(self, request: Request, user: User | None) -> Response:
        assert user is not None
        body = await json_object(request)
        note = body.get("note")
        content = note.get("content") if isinstance(note, dict) else None
        if not isinstance(content, str) or not content.strip():
            raise BadInput("note.content is required.")
        incident = self.book.find(request.path_params["id"])
        created = self.book.add_note(incident, content, user.id, self.clock.now())
        self._changed()
        return JSONResponse({"note": note_json(self.directory, created)})  # 200, as the spec says
