"""Client for the Opsgenie REST API v2: alerts, their asynchronous actions, schedules, on-calls.

`OpsgenieClient` returns domain objects (Incident, IncidentNote, OnCall, Shift and the small
records below), never raw JSON. What it relies on (API-NOTES.md section 4):

* Every request carries `Authorization: GenieKey <key>`. `api_url` is the origin
  (`https://api.opsgenie.com`, the EU `https://api.eu.opsgenie.com`, or a fake); paths start
  with `/v2`.
* Alert actions (acknowledge, close, note, escalate) are asynchronous: Opsgenie answers 202 with
  a `requestId` and does the work later. `request_status` asks how it went and returns None
  while Opsgenie still answers 404 (not processed yet, which the docs do not say);
  `wait_for_request` polls with backoff until the status is known and raises `RequestPending`
  (a ProviderError carrying the request id) when it is still unknown after `timeout`.
* Alert lists are paged by `offset`/`limit` (at most 100 per page) and stop at a short page.
* An Opsgenie alert becomes an `Incident(system="opsgenie")`: title = message, status
  "open" / "acknowledged" / "closed" (from `status` and `acknowledged`), priority P1-P5,
  dedup_key = alias (what Alertmanager sets to the sha256 of its group key), number = tinyId,
  assignee = owner, last_change_at = updatedAt, escalation_policy_id = the id of the first
  escalation among its responders (`escalations()` names it).
* On-call: `oncalls(schedule)` gives the users on call now as `OnCall(system="opsgenie",
  policy=<schedule name>, level=1)`, `next_oncalls` the ones after them, `shifts` the rendered
  timeline (who from when to when) for the next days. Opsgenie's on-call answer has no end
  time; `shifts` has it.
* Errors become ProviderError(source="opsgenie") with Opsgenie's message; 429 and 5xx are
  retried by `send` with backoff.

The JSON-to-domain parsing lives in `opsgenie_parse.py`; the names the rest of the program uses
are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from oncall_tui.clock import Clock
from oncall_tui.models import Incident, IncidentNote, OnCall, Shift
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.http import send
from oncall_tui.providers.opsgenie_parse import (
    SOURCE,
    EscalationInfo,
    EscalationRuleInfo,
    RequestStatus,
    ScheduleInfo,
    current_shift_end,
    date_param,
    format_time,
    parse_alert,
    parse_escalation,
    parse_note,
    parse_oncalls,
    parse_schedule,
    parse_shifts,
    parse_status,
    parse_time,
)

DEFAULT_API_URL = "https://api.opsgenie.com"
EU_API_URL = "https://api.eu.opsgenie.com"
PAGE_LIMIT = 100
"""Opsgenie's maximum `limit` for lists."""
MAX_ALERTS = 20_000
"""Opsgenie refuses `offset + limit` beyond this for the alert list."""
ACTION_SOURCE = "oncall-tui"

IdentifierType = Literal["id", "alias", "tiny"]
ScheduleIdentifierType = Literal["id", "name"]
T = TypeVar("T")

__all__ = [
    "DEFAULT_API_URL",
    "EU_API_URL",
    "EscalationInfo",
    "EscalationRuleInfo",
    "OpsgenieClient",
    "RequestPending",
    "RequestStatus",
    "ScheduleInfo",
    "current_shift_end",
    "format_time",
    "parse_alert",
    "parse_time",
]


class RequestPending(ProviderError):
    """An asynchronous action Opsgenie accepted but had not processed when we stopped asking.

    It may still happen: whoever retries should first ask `request_status(request_id)` again.
    """

    def __init__(self, request_id: str, waited: float) -> None:
        super().__init__(
            SOURCE,
            f"request {request_id} not processed after {waited:.0f}s (it may still be)",
            retryable=True,
        )
        self.request_id = request_id


class OpsgenieClient:
    """One Opsgenie account, through one API key. Every method raises ProviderError."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        http: httpx.AsyncClient,
        *,
        clock: Clock,
        user: str = "",
        read_attempts: int = 2,
        write_attempts: int = 3,
        poll_interval: float = 0.25,
    ) -> None:
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.user = user
        self._key = api_key
        self._http = http
        self._clock = clock
        self.read_attempts = read_attempts
        self.write_attempts = write_attempts
        self.poll_interval = poll_interval

    def __repr__(self) -> str:
        return f"OpsgenieClient(api_url={self.api_url!r}, api_key=***)"

    # -- transport ------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        headers = {"Authorization": f"GenieKey {self._key}", "Accept": "application/json"}
        kwargs: dict[str, Any] = {"headers": headers}
        if params:
            kwargs["params"] = list(params)
        if json is not None:
            kwargs["json"] = json
        write = method != "GET"
        response = await send(
            self._http,
            method,
            f"{self.api_url}{path}",
            source=SOURCE,
            clock=self._clock,
            attempts=self.write_attempts if write else self.read_attempts,
            idempotent=idempotent,
            secrets=[self._key],
            **kwargs,
        )
        try:
            return response.json()
        except ValueError:
            raise ProviderError(SOURCE, f"answer from {path} is not JSON") from None

    def _parse(self, what: str, parse: Callable[[Any], T], item: Any) -> T:
        try:
            return parse(item)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderError(
                SOURCE, f"unexpected answer for {what}: {type(exc).__name__} {exc}"
            ) from None

    @staticmethod
    def _data(answer: Any, what: str, kind: type) -> Any:
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, kind):
            raise ProviderError(SOURCE, f"unexpected answer for {what}: no data")
        return data

    # -- alerts ---------------------------------------------------------------------------------

    async def alerts(self, *, query: str = "status=open", limit: int = 100) -> list[Incident]:
        """GET /v2/alerts, newest first, up to `limit` alerts (paged by 100)."""
        limit = max(0, min(limit, MAX_ALERTS))
        items: list[Any] = []
        offset = 0
        while len(items) < limit:
            size = min(PAGE_LIMIT, limit - len(items), MAX_ALERTS - offset)
            if size <= 0:
                break
            params = [
                ("query", query),
                ("offset", str(offset)),
                ("limit", str(size)),
                ("sort", "createdAt"),
                ("order", "desc"),
            ]
            page = self._data(
                await self._request("GET", "/v2/alerts", params=params), "alerts", list
            )
            items.extend(page)
            offset += len(page)
            if len(page) < size:
                break
        return [self._parse("alerts", parse_alert, item) for item in items[:limit]]

    async def alert(self, identifier: str, identifier_type: IdentifierType = "id") -> Incident:
        """GET /v2/alerts/{identifier} by id, alias or tiny id."""
        answer = await self._request(
            "GET",
            f"/v2/alerts/{_segment(identifier)}",
            params=[("identifierType", identifier_type)],
        )
        return self._parse("alert", parse_alert, self._data(answer, "alert", dict))

    async def notes(
        self, identifier: str, identifier_type: IdentifierType = "id"
    ) -> list[IncidentNote]:
        """GET /v2/alerts/{identifier}/notes (the first 100, oldest first)."""
        params = [("identifierType", identifier_type), ("limit", "100"), ("order", "asc")]
        answer = await self._request(
            "GET", f"/v2/alerts/{_segment(identifier)}/notes", params=params
        )
        return [
            self._parse("notes", parse_note, item) for item in self._data(answer, "notes", list)
        ]

    async def _action(
        self,
        identifier: str,
        action: str,
        body: Mapping[str, Any],
        identifier_type: IdentifierType,
        *,
        idempotent: bool,
    ) -> str:
        payload = {"source": ACTION_SOURCE, **body}
        if self.user:
            payload.setdefault("user", self.user)
        answer = await self._request(
            "POST",
            f"/v2/alerts/{_segment(identifier)}/{action}",
            params=[("identifierType", identifier_type)],
            json=payload,
            idempotent=idempotent,
        )
        request_id = answer.get("requestId") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError(SOURCE, f"no requestId in the answer to {action}")
        return request_id

    async def acknowledge(
        self, identifier: str, *, note: str = "", identifier_type: IdentifierType = "id"
    ) -> str:
        """POST .../acknowledge; returns the requestId to follow."""
        body = {"note": note} if note else {}
        return await self._action(identifier, "acknowledge", body, identifier_type, idempotent=True)

    async def close(
        self, identifier: str, *, note: str = "", identifier_type: IdentifierType = "id"
    ) -> str:
        """POST .../close; returns the requestId to follow."""
        body = {"note": note} if note else {}
        return await self._action(identifier, "close", body, identifier_type, idempotent=True)

    async def add_note(
        self, identifier: str, note: str, *, identifier_type: IdentifierType = "id"
    ) -> str:
        """POST .../notes; returns the requestId. Not repeated after a lost answer (a note
        sent twice shows twice)."""
        if not note.strip():
            raise ProviderError(SOURCE, "a note cannot be empty")
        return await self._action(
            identifier, "notes", {"note": note}, identifier_type, idempotent=False
        )

    async def escalate(
        self,
        identifier: str,
        escalation: str,
        *,
        by: ScheduleIdentifierType = "id",
        note: str = "",
        identifier_type: IdentifierType = "id",
    ) -> str:
        """POST .../escalate to an escalation given by id or name; returns the requestId."""
        if not escalation:
            raise ProviderError(SOURCE, "no escalation to escalate to")
        body: dict[str, Any] = {"escalation": {"type": "escalation", by: escalation}}
        if note:
            body["note"] = note
        return await self._action(identifier, "escalate", body, identifier_type, idempotent=False)

    async def request_status(self, request_id: str) -> RequestStatus | None:
        """How an asynchronous request went; None while Opsgenie has not processed it."""
        try:
            answer = await self._request("GET", f"/v2/alerts/requests/{_segment(request_id)}")
        except ProviderError as exc:
            if exc.status == 404:
                return None
            raise
        data = self._data(answer, "request status", dict)
        return self._parse("request status", lambda item: parse_status(request_id, item), data)

    # The budget counts the injected clock's sleeps, which asyncio.timeout (wall time) cannot.
    async def wait_for_request(
        self,
        request_id: str,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> RequestStatus:
        """Polls `request_status` with backoff until Opsgenie has processed the request.

        Time is counted from the sleeps themselves, so a frozen test clock cannot make this
        loop forever. Raises RequestPending after `timeout` seconds of waiting.
        """
        waited = 0.0
        delay = self.poll_interval
        while True:
            status = await self.request_status(request_id)
            if status is not None:
                return status
            if waited >= timeout:
                raise RequestPending(request_id, waited)
            pause = min(delay, timeout - waited)
            await self._clock.sleep(pause)
            waited += pause
            delay = min(delay * 1.6, 2.0)

    # -- schedules and on-call ------------------------------------------------------------------

    async def schedules(self) -> list[ScheduleInfo]:
        """GET /v2/schedules."""
        answer = await self._request("GET", "/v2/schedules")
        return [
            self._parse("schedules", parse_schedule, item)
            for item in self._data(answer, "schedules", list)
        ]

    async def escalations(self) -> list[EscalationInfo]:
        """GET /v2/escalations: where alerts can be escalated to, with their rules."""
        answer = await self._request("GET", "/v2/escalations")
        return [
            self._parse("escalations", parse_escalation, item)
            for item in self._data(answer, "escalations", list)
        ]

    async def oncalls(
        self, schedule: str, *, by: ScheduleIdentifierType = "id", at: datetime | None = None
    ) -> list[OnCall]:
        """Who is on call now (or `at`) in one schedule: level 1 of that schedule."""
        params = [("scheduleIdentifierType", by), ("flat", "false")]
        if at is not None:
            params.append(("date", date_param(at)))
        answer = await self._request(
            "GET", f"/v2/schedules/{_segment(schedule)}/on-calls", params=params
        )
        data = self._data(answer, "on-calls", dict)
        return self._parse(
            "on-calls", lambda item: parse_oncalls(item, schedule, "onCallParticipants"), data
        )

    async def next_oncalls(
        self, schedule: str, *, by: ScheduleIdentifierType = "id"
    ) -> list[OnCall]:
        """Who takes over next in one schedule (level 1, as in `oncalls`)."""
        params = [("scheduleIdentifierType", by), ("flat", "false")]
        answer = await self._request(
            "GET", f"/v2/schedules/{_segment(schedule)}/next-on-calls", params=params
        )
        data = self._data(answer, "next on-calls", dict)
        return self._parse(
            "next on-calls",
            lambda item: parse_oncalls(item, schedule, "nextOnCallRecipients"),
            data,
        )

    async def shifts(
        self, schedule: str, *, by: ScheduleIdentifierType = "id", days: int = 7
    ) -> list[Shift]:
        """The final timeline of one schedule for `days` from now: who is on call when."""
        params = [
            ("identifierType", by),
            ("interval", str(days)),
            ("intervalUnit", "days"),
            ("date", date_param(self._clock.now())),
        ]
        answer = await self._request(
            "GET", f"/v2/schedules/{_segment(schedule)}/timeline", params=params
        )
        data = self._data(answer, "timeline", dict)
        return self._parse("timeline", lambda item: parse_shifts(item, schedule), data)


def _segment(value: str) -> str:
    """One URL path segment: an alias or name may contain anything."""
    return quote(value, safe="")
