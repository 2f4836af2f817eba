"""HTTP helpers of the fake PagerDuty, and its read-only directory endpoints.

Error bodies, classic pagination, time parameters and incident sorting as PagerDuty's REST API v2
has them; `DirectoryApi` answers `/oncalls`, `/escalation_policies`, `/schedules`, `/services`
and `/users` from the seeded `Directory`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from oncall_tui.clock import Clock
from oncall_tui.sandbox.pagerduty_directory import Directory, User
from oncall_tui.sandbox.pagerduty_incidents import Incident

MAX_OFFSET = 10_000


def error_response(
    status: int, code: int, message: str, errors: Sequence[str] = (), **headers: str
) -> JSONResponse:
    body = {"error": {"message": message, "code": code, "errors": list(errors)}}
    return JSONResponse(body, status_code=status, headers=headers or None)


class DirectoryApi:
    """Handlers `(request, requester) -> Response` over the seeded directory."""

    def __init__(self, directory: Directory, clock: Clock, created_at: datetime) -> None:
        self.directory = directory
        self.clock = clock
        self._started_at = created_at

    async def oncalls(self, request: Request, _: User | None) -> Response:
        query = request.query_params
        now = self.clock.now()
        since = parse_time(query.get("since")) or now
        until = parse_time(query.get("until")) or since
        if until < since:
            raise BadInput("until must not be before since.")
        if until - since > timedelta(days=90):
            raise BadInput("The range may not exceed 90 days.")
        entries = self.directory.oncalls(
            since,
            until,
            policy_ids=query.getlist("escalation_policy_ids[]"),
            schedule_ids=query.getlist("schedule_ids[]"),
            user_ids=query.getlist("user_ids[]"),
            earliest=query.get("earliest") == "true",
        )
        include = query.getlist("include[]")
        for entry in entries:
            if "users" in include:
                entry["user"] = self.directory.user_json(self.directory.users[entry["user"]["id"]])
            if "escalation_policies" in include:
                policy = self.directory.policies[entry["escalation_policy"]["id"]]
                entry["escalation_policy"] = self.directory.policy_json(policy)
            if "schedules" in include and entry["schedule"] is not None:
                schedule = self.directory.schedules[entry["schedule"]["id"]]
                entry["schedule"] = self.directory.schedule_json(schedule)
        page, meta = page_of(request, len(entries))
        return JSONResponse({"oncalls": entries[page], **meta})

    async def policies(self, request: Request, _: User | None) -> Response:
        text = request.query_params.get("query", "").lower()
        policies = [p for p in self.directory.policies.values() if text in p.name.lower()]
        policies.sort(
            key=lambda p: p.name.lower(),
            reverse=request.query_params.get("sort_by", "").endswith(":desc"),
        )
        page, meta = page_of(request, len(policies))
        items = [self.directory.policy_json(p) for p in policies[page]]
        return JSONResponse({"escalation_policies": items, **meta})

    async def policy(self, request: Request, _: User | None) -> Response:
        policy = self.directory.policies.get(request.path_params["id"])
        if policy is None:
            return error_response(404, 2100, "Not Found")
        return JSONResponse({"escalation_policy": self.directory.policy_json(policy)})

    async def schedules(self, request: Request, _: User | None) -> Response:
        text = request.query_params.get("query", "").lower()
        schedules = [s for s in self.directory.schedules.values() if text in s.name.lower()]
        page, meta = page_of(request, len(schedules))
        items = [self.directory.schedule_json(s) for s in schedules[page]]
        return JSONResponse({"schedules": items, **meta})

    async def schedule(self, request: Request, _: User | None) -> Response:
        schedule = self.directory.schedules.get(request.path_params["id"])
        if schedule is None:
            return error_response(404, 2100, "Not Found")
        query = request.query_params
        since = parse_time(query.get("since")) or self.clock.now()
        until = parse_time(query.get("until")) or since + timedelta(weeks=2)
        if until < since:
            raise BadInput("until must not be before since.")
        data = self.directory.schedule_json(
            schedule, since=since, until=until, overflow=query.get("overflow") == "true"
        )
        return JSONResponse({"schedule": data})

    async def services(self, request: Request, _: User | None) -> Response:
        text = request.query_params.get("query", "").lower()
        services = [s for s in self.directory.services.values() if text in s.name.lower()]
        page, meta = page_of(request, len(services))
        items = [self.directory.service_json(s, self._started_at) for s in services[page]]
        return JSONResponse({"services": items, **meta})

    async def service(self, request: Request, _: User | None) -> Response:
        service = self.directory.services.get(request.path_params["id"])
        if service is None:
            return error_response(404, 2100, "Not Found")
        return JSONResponse({"service": self.directory.service_json(service, self._started_at)})

    async def users(self, request: Request, _: User | None) -> Response:
        text = request.query_params.get("query", "").lower()
        users = [
            u
            for u in self.directory.users.values()
            if text in u.name.lower() or text in u.email.lower()
        ]
        page, meta = page_of(request, len(users))
        return JSONResponse({"users": [self.directory.user_json(u) for u in users[page]], **meta})

    async def user(self, request: Request, _: User | None) -> Response:
        user = self.directory.users.get(request.path_params["id"])
        if user is None:
            return error_response(404, 2100, "Not Found")
        return JSONResponse({"user": self.directory.user_json(user)})

    async def me(self, request: Request, _: User | None) -> Response:
        return JSONResponse({"user": self.directory.user_json(self.directory.me)})


class BadInput(Exception):
    """400 Invalid Input Provided (code 2001) with this detail."""


async def json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise BadInput("The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise BadInput("The request body must be a JSON object.")
    return body


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadInput(f"{text!r} is not an ISO 8601 date-time.") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def page_of(request: Request, count: int) -> tuple[slice, dict[str, Any]]:
    """Classic pagination: the slice to return and the limit/offset/more/total fields."""
    query = request.query_params
    try:
        limit = int(query.get("limit", "25"))
        offset = int(query.get("offset", "0"))
    except ValueError as exc:
        raise BadInput("limit and offset must be integers.") from exc
    if limit < 1 or offset < 0:
        raise BadInput("limit must be positive and offset not negative.")
    limit = min(limit, 100)
    if offset + limit > MAX_OFFSET:
        raise BadInput(f"Offset + limit must not exceed {MAX_OFFSET}.")
    meta: dict[str, Any] = {
        "limit": limit,
        "offset": offset,
        "more": offset + limit < count,
        "total": count if query.get("total") == "true" else None,
    }
    return slice(offset, offset + limit), meta


def sort_incidents(incidents: list[Incident], sort_by: str) -> list[Incident]:
    field, _, direction = sort_by.partition(":")
    keys: Mapping[str, Callable[[Incident], Any]] = {
        "incident_number": lambda i: i.number,
        "created_at": lambda i: i.created_at,
        "resolved_at": lambda i: i.resolved_at or datetime.max.replace(tzinfo=UTC),
        "urgency": lambda i: i.urgency,
    }
    key = keys.get(field or "created_at")
    if key is None:
        raise BadInput(f"Cannot sort by {field!r}.")
    return sorted(incidents, key=key, reverse=direction == "desc")
