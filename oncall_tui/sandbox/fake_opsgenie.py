"""A fake Opsgenie for the sandbox and the tests: the REST API v2 parts we use, asynchronous.

`FakeOpsgenie.app` (Starlette) serves the API at the root of `api_url` (paths start with `/v2`).
It answers as Opsgenie does (API-NOTES.md section 4) and only with fields Opsgenie's spec
documents; the tests check every exchange against the published Swagger spec.

- `Authorization: GenieKey <api_key>` (else 401). Every body, errors included, carries `took`
  and `requestId`; `X-Request-ID` / `X-Response-Time` headers; `throttle(n)` makes the next n
  requests 429 with the `X-RateLimit-*` headers.
- Writes are asynchronous: create, acknowledge, close, add note and escalate answer 202 with a
  requestId and are queued. `GET /v2/alerts/requests/{id}` answers 404 until the request is
  processed, then 200 with how it went (`isSuccess: false` and the reason for an alert that does
  not exist). Each request the fake answers counts as one step for every request queued before
  it; a queued request is processed after `processing_polls` steps (so with the default 2, two
  status polls see 404 and the third sees the outcome), or once it has waited
  `processing_seconds` on the clock, whichever comes first (so a quiet sandbox still gets its
  alerts). `process_pending()` processes all now.
- Creating an alert whose alias matches an open alert increments its `count` instead (Opsgenie's
  deduplication; Alertmanager sends the sha256 of its group key as the alias). Closing by alias
  (what Alertmanager does on resolve) closes that open alert.
- Lists: `query` (a small subset of Opsgenie's search syntax: `field=value` / `field:value`
  terms joined by AND, on status, acknowledged, alias, tinyId, priority, owner, tag, message),
  `offset`, `limit` (<= 100), `sort`, `order`, `paging` links and `X-Paging-*` headers;
  `identifierType` id / alias / tiny.
- Schedules, on-calls (now, at `date`, next), timelines and escalations from the seeded
  directory in `opsgenie_directory.py`.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oncall_tui.clock import Clock
from oncall_tui.sandbox.opsgenie_alerts import (
    FakeAlert,
    OpsgenieError,
    alert_json,
    int_param,
    paging_links,
    parse_query,
    sort_key,
)
from oncall_tui.sandbox.opsgenie_directory import (
    Directory,
    Schedule,
    escalation_json,
    og_time,
    parent_json,
    participant_json,
    schedule_json,
    timeline_json,
)

TOOK = 0.004
MESSAGE_MAX = 130  # Opsgenie truncates longer messages
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
_SORTS = {"createdAt", "updatedAt", "tinyId", "alias", "message", "status", "count", "owner"}
_ACTIONS = {
    "acknowledge": "Acknowledge",
    "close": "Close",
    "notes": "AddNote",
    "escalate": "Escalate",
}
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Queued:
    """An accepted asynchronous request, processed after `steps_left` answered requests."""

    request_id: str
    action: str
    run: Callable[[], tuple[bool, str, FakeAlert | None]]
    alias: str
    steps_left: int
    queued_at: datetime
    outcome: dict[str, Any] | None = None


class FakeOpsgenie:
    def __init__(
        self,
        *,
        clock: Clock,
        api_key: str,
        seed: int = 0,
        processing_polls: int = 2,
        processing_seconds: float | None = 5.0,
    ) -> None:
        self.clock = clock
        self.api_key = api_key
        self.processing_polls = processing_polls
        self.processing_seconds = processing_seconds
        self.directory = Directory(now=clock.now(), seed=seed)
        self.alerts: list[FakeAlert] = []
        self.requests: dict[str, Queued] = {}
        self.received: list[tuple[str, str, Any]] = []  # (method, path, JSON body) of writes
        self._rng = random.Random(seed + 1)
        self._throttled = 0
        self._next_tiny = 1
        self.app = Starlette(routes=self._routes())

    # -- plumbing --------------------------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def throttle(self, requests: int = 1) -> None:
        """The next `requests` requests get 429 (Opsgenie's rate limit)."""
        self._throttled += requests

    def _routes(self) -> list[Route]:
        return [
            Route("/v2/alerts", self._wrap(self._list_alerts), methods=["GET"]),
            Route("/v2/alerts", self._wrap(self._create_alert), methods=["POST"]),
            Route(
                "/v2/alerts/requests/{request_id}",
                self._wrap(self._request_status),
                methods=["GET"],
            ),
            Route("/v2/alerts/{identifier}", self._wrap(self._get_alert), methods=["GET"]),
            Route("/v2/alerts/{identifier}/notes", self._wrap(self._list_notes), methods=["GET"]),
            Route(
                "/v2/alerts/{identifier}/{action}", self._wrap(self._alert_action), methods=["POST"]
            ),
            Route("/v2/schedules", self._wrap(self._list_schedules), methods=["GET"]),
            Route(
                "/v2/schedules/{identifier}/on-calls", self._wrap(self._oncalls), methods=["GET"]
            ),
            Route(
                "/v2/schedules/{identifier}/next-on-calls",
                self._wrap(self._next_oncalls),
                methods=["GET"],
            ),
            Route(
                "/v2/schedules/{identifier}/timeline", self._wrap(self._timeline), methods=["GET"]
            ),
            Route("/v2/escalations", self._wrap(self._list_escalations), methods=["GET"]),
        ]

    def _answer(
        self, status: int, body: dict[str, Any], request_id: str, **headers: str
    ) -> JSONResponse:
        body = {**body, "took": TOOK, "requestId": request_id}
        return JSONResponse(
            body,
            status_code=status,
            headers={"X-Request-ID": request_id, "X-Response-Time": f"{TOOK}", **headers},
        )

    def _wrap(self, handler: Callable[[Request, str], Awaitable[JSONResponse]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            request_id = self._uuid()
            self._process_overdue()
            queued_before = list(self.requests.values())
            try:
                if self._throttled > 0:
                    self._throttled -= 1
                    response = self._answer(
                        429,
                        {"message": "You are making too many requests!"},
                        request_id,
                        **{
                            "X-RateLimit-State": "THROTTLED",
                            "X-RateLimit-Reason": "ALERT",
                            "X-RateLimit-Period-In-Sec": "60",
                        },
                    )
                elif request.headers.get("authorization") != f"GenieKey {self.api_key}":
                    response = self._answer(401, {"message": "Could not authenticate"}, request_id)
                else:
                    response = await handler(request, request_id)
            except OpsgenieError as exc:
                response = self._answer(exc.status, {"message": exc.message}, request_id)
            # Opsgenie works through its queue while clients keep asking; see the docstring.
            for queued in queued_before:
                self._step(queued)
            return response

        return endpoint

    async def _body(self, request: Request, *, required: bool) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            if required:
                raise OpsgenieError(400, "Request body is required")
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise OpsgenieError(400, "Invalid JSON body") from None
        if not isinstance(body, dict):
            raise OpsgenieError(400, "Invalid JSON body")
        self.received.append((request.method, request.url.path, body))
        return body

    # -- the asynchronous queue ------------------------------------------------------------------

    def _queue(
        self,
        request_id: str,
        action: str,
        alias: str,
        run: Callable[[], tuple[bool, str, FakeAlert | None]],
    ) -> JSONResponse:
        self.requests[request_id] = Queued(
            request_id, action, run, alias, self.processing_polls, self.clock.now()
        )
        return self._answer(202, {"result": "Request will be processed"}, request_id)

    def _step(self, queued: Queued) -> None:
        if queued.outcome is not None:
            return
        queued.steps_left -= 1
        if queued.steps_left <= 0:
            self._process(queued)

    def _process(self, queued: Queued) -> None:
        success, status, alert = queued.run()
        queued.outcome = {
            "action": queued.action,
            "processedAt": og_time(self.clock.now()),
            "integrationId": self.directory.integration_id,
            "isSuccess": success,
            "status": status,
            "alertId": alert.id if alert is not None else "",
            "alias": alert.alias if alert is not None else queued.alias,
        }

    def _process_overdue(self) -> None:
        if self.processing_seconds is None:
            return
        due = self.clock.now() - timedelta(seconds=self.processing_seconds)
        for queued in list(self.requests.values()):
            if queued.outcome is None and queued.queued_at <= due:
                self._process(queued)

    def process_pending(self) -> int:
        """Processes every queued request now, in order; returns how many there were."""
        pending = [queued for queued in self.requests.values() if queued.outcome is None]
        for queued in pending:
            self._process(queued)
        return len(pending)

    async def _request_status(self, request: Request, request_id: str) -> JSONResponse:
        queued = self.requests.get(request.path_params["request_id"])
        if queued is None or queued.outcome is None:
            raise OpsgenieError(404, "Request not found. It might not be processed, yet.")
        return self._answer(200, {"data": queued.outcome}, request_id)

    # -- alerts ----------------------------------------------------------------------------------

    def find(self, identifier: str, identifier_type: str = "id") -> FakeAlert | None:
        if identifier_type == "tiny":
            return next((a for a in self.alerts if str(a.tiny_id) == identifier), None)
        if identifier_type == "alias":
            # The open alert owns its alias; otherwise the newest closed one answers.
            matching = [a for a in self.alerts if a.alias == identifier]
            open_ones = [a for a in matching if a.status == "open"]
            candidates = open_ones or matching
            return candidates[-1] if candidates else None
        return next((a for a in self.alerts if a.id == identifier), None)

    @staticmethod
    def _identifier_type(request: Request) -> str:
        kind = request.query_params.get("identifierType", "id")
        if kind not in ("id", "alias", "tiny"):
            raise OpsgenieError(422, f"Invalid identifierType [{kind}]")
        return kind

    def _existing(self, request: Request) -> FakeAlert:
        alert = self.find(request.path_params["identifier"], self._identifier_type(request))
        if alert is None:
            raise OpsgenieError(404, "Alert does not exist")
        return alert

    async def _create_alert(self, request: Request, request_id: str) -> JSONResponse:
        body = await self._body(request, required=True)
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise OpsgenieError(422, "Message can not be empty.")
        priority = body.get("priority") or "P3"
        if priority not in PRIORITIES:
            raise OpsgenieError(422, f"Priority should be one of {list(PRIORITIES)}")
        alias = str(body.get("alias") or "")[:512]

        def run() -> tuple[bool, str, FakeAlert | None]:
            now = self.clock.now()
            existing = self.find(alias, "alias") if alias else None
            if existing is not None and existing.status == "open":
                existing.count += 1
                existing.last_occurred_at = existing.updated_at = now
                return True, "Alert is deduplicated", existing
            alert = FakeAlert(
                id=self._uuid(),
                tiny_id=self._next_tiny,
                alias=alias,
                message=message[:MESSAGE_MAX],
                created_at=now,
                updated_at=now,
                last_occurred_at=now,
                description=str(body.get("description") or "")[:15000],
                details={str(k): str(v) for k, v in (body.get("details") or {}).items()},
                tags=[str(tag) for tag in body.get("tags") or ()],
                priority=priority,
                # Opsgenie defaults the source to the sender's address.
                source=str(body.get("source") or (request.client.host if request.client else "")),
                entity=str(body.get("entity") or ""),
                actions=[str(action) for action in body.get("actions") or ()],
                responders=[
                    responder
                    for item in body.get("responders") or ()
                    if (responder := self.directory.responder(item)) is not None
                ],
            )
            self._next_tiny += 1
            alert.alias = alias or alert.id  # Opsgenie uses the id when no alias is given
            self.alerts.append(alert)
            return True, "Created alert", alert

        return self._queue(request_id, "Create", alias, run)

    async def _alert_action(self, request: Request, request_id: str) -> JSONResponse:
        action = request.path_params["action"]
        if action not in _ACTIONS:
            raise OpsgenieError(404, "Not found")
        identifier = request.path_params["identifier"]
        kind = self._identifier_type(request)
        body = await self._body(request, required=action in ("notes", "escalate"))
        user = str(body.get("user") or "")
        note = str(body.get("note") or "")
        if action == "notes" and not note.strip():
            raise OpsgenieError(422, "Note can not be empty.")
        target: tuple[str, str] = ("", "")
        if action == "escalate":
            escalation = body.get("escalation")
            if not isinstance(escalation, dict) or not (
                escalation.get("id") or escalation.get("name")
            ):
                raise OpsgenieError(422, "Escalation id or name should be provided.")
            by = "id" if escalation.get("id") else "name"
            target = (by, str(escalation[by]))

        def run() -> tuple[bool, str, FakeAlert | None]:
            alert = self.find(identifier, kind)
            if alert is None:
                return False, "Alert does not exist", None
            return self._apply(alert, action, user or "API", note, target)

        alias = identifier if kind == "alias" else ""
        return self._queue(request_id, _ACTIONS[action], alias, run)

    def _apply(
        self, alert: FakeAlert, action: str, user: str, note: str, target: tuple[str, str]
    ) -> tuple[bool, str, FakeAlert | None]:
        now = self.clock.now()
        elapsed = int((now - alert.created_at) / timedelta(milliseconds=1))
        if action == "escalate":
            escalation = self.directory.escalation(target[1], target[0])
            if escalation is None:
                return False, "Escalation does not exist", alert
            responder = {"type": "escalation", "id": escalation.id}
            if responder not in alert.responders:
                alert.responders.append(responder)
            status = "Escalated alert"
        elif action == "acknowledge":
            if alert.status == "closed":
                return False, "Alert is already closed", alert
            if not alert.acknowledged:
                alert.acknowledged = True
                alert.ack_time = elapsed
                alert.acknowledged_by = user
                alert.owner = user
            status = "Acknowledged alert"
        elif action == "close":
            if alert.status != "closed":
                alert.status = "closed"
                alert.close_time = elapsed
                alert.closed_by = user
            status = "Closed alert"
        else:
            status = "Added note"
        if note:
            alert.notes.append((note, user, now))
        alert.updated_at = now
        return True, status, alert

    async def _get_alert(self, request: Request, request_id: str) -> JSONResponse:
        return self._answer(
            200,
            {
                "data": alert_json(
                    self._existing(request), full=True, integration_id=self.directory.integration_id
                )
            },
            request_id,
        )

    async def _list_notes(self, request: Request, request_id: str) -> JSONResponse:
        alert = self._existing(request)
        notes = [
            {"note": text, "owner": owner, "createdAt": og_time(at), "offset": str(index + 1)}
            for index, (text, owner, at) in enumerate(alert.notes)
        ]
        if request.query_params.get("order", "desc") == "desc":
            notes.reverse()
        limit = int_param(request.query_params.get("limit"), 20, 1, 100)
        return self._answer(200, {"data": notes[:limit], "paging": {}}, request_id)

    async def _list_alerts(self, request: Request, request_id: str) -> JSONResponse:
        params = request.query_params
        offset = int_param(params.get("offset"), 0, 0, 20_000)
        limit = int_param(params.get("limit"), 20, 1, 100)
        if offset + limit > 20_000:
            raise OpsgenieError(422, "Offset + limit should be less than or equal to 20000")
        sort = params.get("sort", "createdAt")
        order = params.get("order", "desc")
        if sort not in _SORTS or order not in ("asc", "desc"):
            raise OpsgenieError(422, f"Invalid sort [{sort}] or order [{order}]")
        terms = parse_query(params.get("query", ""))
        found = [alert for alert in self.alerts if all(t(alert) for t in terms)]
        found.sort(key=lambda a: (sort_key(a, sort), a.tiny_id), reverse=order == "desc")
        page = found[offset : offset + limit]
        base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        query = dict(request.query_params.items())
        paging, headers = paging_links(base, query, offset, limit, len(found))
        integration = self.directory.integration_id
        data = [alert_json(a, full=False, integration_id=integration) for a in page]
        return self._answer(200, {"data": data, "paging": paging}, request_id, **headers)

    # -- schedules and escalations ---------------------------------------------------------------

    def _schedule(self, request: Request, type_param: str) -> Schedule:
        by = request.query_params.get(type_param, "id")
        if by not in ("id", "name"):
            raise OpsgenieError(422, f"Invalid {type_param} [{by}]")
        schedule = self.directory.schedule(request.path_params["identifier"], by)
        if schedule is None:
            raise OpsgenieError(404, "Schedule not found")
        return schedule

    def _date(self, request: Request) -> datetime:
        value = request.query_params.get("date")
        if not value:
            return self.clock.now()
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise OpsgenieError(422, f"Invalid date [{value}]") from None

    async def _list_schedules(self, request: Request, request_id: str) -> JSONResponse:
        expand = request.query_params.get("expand", "").split(",")
        data = [schedule_json(s, rotations="rotation" in expand) for s in self.directory.schedules]
        return self._answer(200, {"data": data, "expandable": ["rotation"]}, request_id)

    async def _oncalls(self, request: Request, request_id: str) -> JSONResponse:
        schedule = self._schedule(request, "scheduleIdentifierType")
        user = schedule.on_call(self._date(request))
        data: dict[str, Any] = {"_parent": parent_json(schedule)}
        if request.query_params.get("flat") == "true":
            data["onCallRecipients"] = [user.username] if user else []
        else:
            data["onCallParticipants"] = [participant_json(user)] if user else []
        return self._answer(200, {"data": data}, request_id)

    async def _next_oncalls(self, request: Request, request_id: str) -> JSONResponse:
        schedule = self._schedule(request, "scheduleIdentifierType")
        user = schedule.next_on_call(self._date(request))
        data: dict[str, Any] = {"_parent": parent_json(schedule)}
        if request.query_params.get("flat") == "true":
            names = [user.username] if user else []
            data |= {"nextOnCallParticipants": names, "exactNextOnCallParticipants": names}
        else:
            people = [participant_json(user)] if user else []
            data |= {"nextOnCallRecipients": people, "exactNextOnCallRecipients": people}
        return self._answer(200, {"data": data}, request_id)

    async def _timeline(self, request: Request, request_id: str) -> JSONResponse:
        schedule = self._schedule(request, "identifierType")
        unit = request.query_params.get("intervalUnit", "weeks")
        step = {
            "days": timedelta(days=1),
            "weeks": timedelta(weeks=1),
            "months": timedelta(days=30),
        }.get(unit)
        if step is None:
            raise OpsgenieError(422, f"Invalid intervalUnit [{unit}]")
        since = self._date(request)
        until = since + step * int_param(request.query_params.get("interval"), 1, 1, 366)
        body = {
            "data": timeline_json(schedule, since, until),
            "expandable": ["base", "forwarding", "override"],
        }
        return self._answer(200, body, request_id)

    async def _list_escalations(self, request: Request, request_id: str) -> JSONResponse:
        data = [escalation_json(e) for e in self.directory.escalations]
        return self._answer(200, {"data": data}, request_id)
