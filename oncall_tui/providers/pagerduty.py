"""Client for the PagerDuty REST API v2: incidents, notes, on-calls, policies, schedules, users.

`PagerDutyClient` returns domain objects (Incident, IncidentNote, OnCall, Shift and the small
directory records below), never raw JSON. What it relies on (API-NOTES.md section 2.1):

* Every request carries `Authorization: Token token=<key>` and the versioned `Accept`; every
  write also carries `From: <operator email>`, which PagerDuty needs to know who acted.
* Lists use classic pagination (`limit` 100, `offset`, `more`) and stop before `offset + limit`
  passes 10000, where PagerDuty answers 400.
* Incidents are listed with `include[]` so that assignee, acknowledger, service and policy
  names are filled, and with `date_range=all` when no `since` is given: PagerDuty's default
  window is one month, and an incident left open longer is still open.
* Incidents carry no escalation level. It is known when the assignee is a direct user target of
  the included escalation policy; otherwise `with_escalation_levels` fills it from on-calls.
* Errors become ProviderError(source="pagerduty") whose message ends with PagerDuty's code
  (e.g. "... (code 1002)"); `pagerduty_error_code` reads it back so the engine can treat
  "already acknowledged" (1002) and "already resolved" (1001) as done.

The JSON-to-domain parsing (also used for webhooks) lives in `pagerduty_parse.py`; the names the
rest of the program uses are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

import httpx

from oncall_tui.clock import Clock
from oncall_tui.models import Incident, IncidentNote, OnCall, Shift
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.http import send
from oncall_tui.providers.pagerduty_parse import (
    SOURCE,
    EscalationPolicyInfo,
    EscalationRuleInfo,
    ScheduleInfo,
    UserInfo,
    format_time,
    incident_from_webhook,
    parse_incident,
    parse_note,
    parse_oncall,
    parse_policy,
    parse_schedule,
    parse_shifts,
    parse_time,
    parse_user,
    with_escalation_levels,
)

__all__ = [
    "ALREADY_ACKNOWLEDGED",
    "ALREADY_RESOLVED",
    "EscalationPolicyInfo",
    "EscalationRuleInfo",
    "PagerDutyClient",
    "ScheduleInfo",
    "UserInfo",
    "format_time",
    "incident_from_webhook",
    "pagerduty_error_code",
    "parse_incident",
    "parse_time",
    "with_escalation_levels",
]
ACCEPT = "application/vnd.pagerduty+json;version=2"
PAGE_LIMIT = 100
OFFSET_CEILING = 10_000
"""PagerDuty refuses `offset + limit` above this with a 400."""
SNOOZE_MAX_SECONDS = 604_800

ALREADY_RESOLVED = 1001
ALREADY_ACKNOWLEDGED = 1002

_INCIDENT_INCLUDES = ("assignees", "acknowledgers", "escalation_policies", "services", "priorities")
T = TypeVar("T")


def pagerduty_error_code(exc: ProviderError) -> int | None:
    """PagerDuty's error code of a failed call (1001 already resolved, 1002 already acked...)."""
    return exc.code if exc.source == SOURCE else None


class PagerDutyClient:
    """One PagerDuty account, through one API token. Every method raises ProviderError."""

    def __init__(
        self,
        api_url: str,
        token: str,
        http: httpx.AsyncClient,
        *,
        clock: Clock,
        from_email: str = "",
        read_attempts: int = 2,
        write_attempts: int = 3,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.from_email = from_email
        self._token = token
        self._http = http
        self._clock = clock
        # Polls repeat soon anyway; operator actions try harder.
        self.read_attempts = read_attempts
        self.write_attempts = write_attempts

    def __repr__(self) -> str:
        return f"PagerDutyClient(api_url={self.api_url!r}, token=***)"

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
        headers = {
            "Authorization": f"Token token={self._token}",
            "Accept": ACCEPT,
            "Content-Type": "application/json",
        }
        write = method != "GET"
        if write:
            if not self.from_email:
                raise ProviderError(
                    SOURCE, "operator.email is not set: PagerDuty needs it to record who acted"
                )
            headers["From"] = self.from_email
        kwargs: dict[str, Any] = {"headers": headers}
        if params:
            kwargs["params"] = list(params)
        if json is not None:
            kwargs["json"] = json
        try:
            response = await send(
                self._http,
                method,
                f"{self.api_url}{path}",
                source=SOURCE,
                clock=self._clock,
                attempts=self.write_attempts if write else self.read_attempts,
                idempotent=idempotent,
                secrets=[self._token],
                **kwargs,
            )
        except ProviderError as exc:
            if exc.code is None or f"code {exc.code}" in exc.message:
                raise
            raise ProviderError(
                SOURCE,
                f"{exc.message} (code {exc.code})",
                status=exc.status,
                retryable=exc.retryable,
                code=exc.code,
            ) from None
        try:
            return response.json()
        except ValueError:
            raise ProviderError(SOURCE, f"answer from {path} is not JSON") from None

    async def _pages(
        self, path: str, key: str, params: Sequence[tuple[str, str]], max_items: int
    ) -> list[Any]:
        """Every item of a classic-paginated list, up to `max_items` and PagerDuty's ceiling."""
        items: list[Any] = []
        offset = 0
        limit = max(1, min(PAGE_LIMIT, max_items))
        while len(items) < max_items:
            page_params = [*params, ("limit", str(limit)), ("offset", str(offset))]
            data = await self._request("GET", path, params=page_params)
            page = data.get(key) if isinstance(data, dict) else None
            if not isinstance(page, list):
                raise ProviderError(SOURCE, f"unexpected answer from {path}: no {key} list")
            items.extend(page)
            offset += len(page)
            # An empty page that claims more would loop forever; PagerDuty refuses offsets
            # past the ceiling, so the rest is not reachable this way.
            if not data.get("more") or not page or offset + limit > OFFSET_CEILING:
                break
        return items[:max_items]

    def _parse(self, what: str, parse: Callable[[Any], T], item: Any) -> T:
        try:
            return parse(item)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderError(
                SOURCE, f"unexpected answer for {what}: {type(exc).__name__} {exc}"
            ) from None

    def _one(self, data: Any, key: str, what: str, parse: Callable[[Any], T]) -> T:
        item = data.get(key) if isinstance(data, dict) else None
        if not isinstance(item, dict):
            raise ProviderError(SOURCE, f"unexpected answer for {what}: no {key} object")
        return self._parse(what, parse, item)

    # -- incidents ------------------------------------------------------------------------------

    async def incidents(
        self,
        *,
        statuses: Sequence[str] = ("triggered", "acknowledged"),
        service_ids: Sequence[str] = (),
        since: datetime | None = None,
        max_items: int = 1000,
    ) -> list[Incident]:
        """GET /incidents: newest first, with names filled through include[]."""
        params: list[tuple[str, str]] = [("statuses[]", status) for status in statuses]
        params += [("service_ids[]", service_id) for service_id in service_ids]
        params += [("include[]", name) for name in _INCIDENT_INCLUDES]
        params.append(("sort_by", "created_at:desc"))
        if since is None:
            params.append(("date_range", "all"))
        else:
            params.append(("since", format_time(since)))
            params.append(("until", format_time(self._clock.now())))
        items = await self._pages("/incidents", "incidents", params, max_items)
        return [self._parse("incidents", parse_incident, item) for item in items]

    async def incident(self, incident_id: str) -> Incident:
        """GET /incidents/{id} (an id or an incident number)."""
        params = [("include[]", name) for name in _INCIDENT_INCLUDES]
        data = await self._request("GET", f"/incidents/{_segment(incident_id)}", params=params)
        return self._one(data, "incident", "incident", parse_incident)

    async def _update(self, incident_id: str, changes: Mapping[str, Any]) -> Incident:
        body = {"incident": {"type": "incident_reference", **changes}}
        data = await self._request("PUT", f"/incidents/{_segment(incident_id)}", json=body)
        return self._one(data, "incident", "incident", parse_incident)

    async def acknowledge(self, incident_id: str) -> Incident:
        """PUT status acknowledged; ProviderError code 1002 when it already was."""
        return await self._update(incident_id, {"status": "acknowledged"})

    async def resolve(self, incident_id: str, resolution: str = "") -> Incident:
        """PUT status resolved (with a resolution note); code 1001 when it already was."""
        changes: dict[str, Any] = {"status": "resolved"}
        if resolution:
            changes["resolution"] = resolution
        return await self._update(incident_id, changes)

    async def escalate(self, incident_id: str, level: int) -> Incident:
        """PUT escalation_level: pages the targets of that level of the incident's policy.

        Invalid arguments (here and in the other writes) raise a final ProviderError, so an
        operator's bad input fails the action instead of escaping the engine.
        """
        if level < 1:
            raise _invalid("escalation levels start at 1")
        incident = await self._update(incident_id, {"escalation_level": level})
        # The answer has the policy as a reference only, so the level cannot be derived.
        return (
            incident
            if incident.escalation_level is not None
            else replace(incident, escalation_level=level)
        )

    async def reassign(
        self,
        incident_id: str,
        *,
        user_ids: Sequence[str] = (),
        escalation_policy_id: str | None = None,
    ) -> Incident:
        """PUT assignments (to users) or escalation_policy (to a policy's first level)."""
        if bool(user_ids) == (escalation_policy_id is not None):
            raise _invalid("reassign to users or to an escalation policy, exactly one")
        changes: dict[str, Any]
        if escalation_policy_id is not None:
            changes = {
                "escalation_policy": {
                    "id": escalation_policy_id,
                    "type": "escalation_policy_reference",
                }
            }
        else:
            changes = {
                "assignments": [
                    {"assignee": {"id": user_id, "type": "user_reference"}} for user_id in user_ids
                ]
            }
        return await self._update(incident_id, changes)

    async def snooze(self, incident_id: str, duration_seconds: int) -> Incident:
        """POST /incidents/{id}/snooze: an acknowledged incident re-triggers after the duration."""
        if not 1 <= duration_seconds <= SNOOZE_MAX_SECONDS:
            raise _invalid(f"a snooze lasts 1 to {SNOOZE_MAX_SECONDS} seconds")
        data = await self._request(
            "POST",
            f"/incidents/{_segment(incident_id)}/snooze",
            json={"duration": duration_seconds},
            # Snoozing again only restarts the same timer.
            idempotent=True,
        )
        return self._one(data, "incident", "incident", parse_incident)

    # -- notes ----------------------------------------------------------------------------------

    async def notes(self, incident_id: str) -> list[IncidentNote]:
        """GET /incidents/{id}/notes, oldest first as PagerDuty lists them."""
        data = await self._request("GET", f"/incidents/{_segment(incident_id)}/notes")
        items = data.get("notes") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ProviderError(SOURCE, "unexpected answer for notes: no notes list")
        return [self._parse("notes", parse_note, item) for item in items]

    async def add_note(self, incident_id: str, content: str) -> IncidentNote:
        """POST /incidents/{id}/notes. Not repeated after a lost answer: it may have landed."""
        if not content.strip():
            raise _invalid("a note needs some text")
        data = await self._request(
            "POST", f"/incidents/{_segment(incident_id)}/notes", json={"note": {"content": content}}
        )
        return self._one(data, "note", "note", parse_note)

    # -- on-call --------------------------------------------------------------------------------

    async def oncalls(
        self,
        *,
        escalation_policy_ids: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        earliest: bool = False,
        max_items: int = 2000,
    ) -> list[OnCall]:
        """GET /oncalls: who is on call at which level (now, or in the window given)."""
        params: list[tuple[str, str]] = [
            ("escalation_policy_ids[]", policy_id) for policy_id in escalation_policy_ids
        ]
        params.append(("include[]", "users"))
        if since is not None:
            params.append(("since", format_time(since)))
            # `until` defaults to now at PagerDuty, and a future `since` past it is a 400.
            until = since if until is None else until
        if until is not None:
            params.append(("until", format_time(until)))
        if earliest:
            params.append(("earliest", "true"))
        items = await self._pages("/oncalls", "oncalls", params, max_items)
        return [self._parse("on-calls", parse_oncall, item) for item in items]

    async def escalation_policies(self, ids: Sequence[str] = ()) -> list[EscalationPolicyInfo]:
        """The policies asked for (GET /escalation_policies/{id} each), or all of them."""
        if ids:
            policies: list[EscalationPolicyInfo] = []
            for policy_id in ids:
                data = await self._request(
                    "GET",
                    f"/escalation_policies/{_segment(policy_id)}",
                    params=[("include[]", "targets")],
                )
                policies.append(
                    self._one(data, "escalation_policy", "escalation policy", parse_policy)
                )
            return policies
        params = [("include[]", "targets"), ("sort_by", "name")]
        items = await self._pages("/escalation_policies", "escalation_policies", params, 1000)
        return [self._parse("escalation policies", parse_policy, item) for item in items]

    async def schedules(self) -> list[ScheduleInfo]:
        """GET /schedules: every schedule's id, name and time zone."""
        items = await self._pages("/schedules", "schedules", (), 1000)
        return [self._parse("schedules", parse_schedule, item) for item in items]

    async def shifts(self, schedule_id: str, since: datetime, until: datetime) -> list[Shift]:
        """GET /schedules/{id} rendered from `since` to `until`: the final schedule's entries."""
        params = [("since", format_time(since)), ("until", format_time(until))]
        data = await self._request("GET", f"/schedules/{_segment(schedule_id)}", params=params)
        return self._one(data, "schedule", "schedule", parse_shifts)

    # -- users ----------------------------------------------------------------------------------

    async def users(self, query: str = "", *, max_items: int = 500) -> list[UserInfo]:
        """GET /users, filtered by name or email when `query` is given."""
        params = [("query", query)] if query else []
        items = await self._pages("/users", "users", params, max_items)
        return [self._parse("users", parse_user, item) for item in items]

    async def me(self) -> UserInfo:
        """GET /users/me: works with a user-level token only (not an account token)."""
        data = await self._request("GET", "/users/me")
        return self._one(data, "user", "current user", parse_user)


def _invalid(message: str) -> ProviderError:
    """A request we refuse to send: final, so the outbox does not retry it."""
    return ProviderError(SOURCE, message, retryable=False)


def _segment(value: str) -> str:
    """An id as one URL path segment: nothing in it can reach another endpoint."""
    if not value or "/" in value or value in (".", "..") or "?" in value or "#" in value:
        raise _invalid(f"not a PagerDuty id: {value!r}")
    return value
