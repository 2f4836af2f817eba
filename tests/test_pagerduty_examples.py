"""providers/pagerduty.py against the vendor's documented examples: requests, parsing, errors.

Parsing is checked against PagerDuty's own documented examples, loaded from the published spec
and served by `ExampleServer`, a small Starlette app that checks the headers PagerDuty insists
on; every exchange also passes tests/spec_check.py's ValidatingTransport, so each request the
client sends is checked against the spec. Retry behaviour is checked against small stateful apps
and a clock that records its sleeps instead of sleeping.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from spec_check import SPECS_DIR, SpecValidator, ValidatingTransport
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oncall_tui.clock import FrozenClock
from oncall_tui.models import Incident, OnCall
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.pagerduty import (
    ALREADY_ACKNOWLEDGED,
    EscalationRuleInfo,
    PagerDutyClient,
    ScheduleInfo,
    UserInfo,
    incident_from_webhook,
    pagerduty_error_code,
    parse_incident,
    with_escalation_levels,
)

TOKEN = "pd-token-y_NbAkKc66ryYTWUXYEu"
EMAIL = "nina@example.com"
ACCEPT = "application/vnd.pagerduty+json;version=2"
API = "http://pd.test"
_SPEC: dict[str, Any] = {}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def example(path: str, method: str, status: str = "200", name: str | None = None) -> Any:
    """A response example of one operation, as published (a fresh copy)."""
    if not _SPEC:
        SpecValidator.load("pagerduty-rest")  # skips (or fails on CI) when the spec is absent
        _SPEC.update(json.loads((SPECS_DIR / "pagerduty-rest-v2-openapiv3.json").read_text()))
    content = _SPEC["paths"][path][method]["responses"][status]["content"]["application/json"]
    examples = content["examples"]
    return copy.deepcopy((examples[name] if name else next(iter(examples.values())))["value"])


def pd_error(status: int, code: int, message: str, **headers: str) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "errors": []}}
    return JSONResponse(body, status, headers=headers)


class RecordingClock(FrozenClock):
    """Wall time stands still except that each sleep advances it; sleeps return at once."""

    def __init__(self) -> None:
        super().__init__(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


class ExampleServer:
    """Answers each operation the client uses with the spec's example; records requests."""

    def __init__(self, *, incidents: int = 1) -> None:
        self.requests: list[tuple[str, str, httpx.QueryParams, dict[str, str], Any]] = []
        template = example("/incidents", "get")["incidents"][0]
        self.incidents = [template]
        for n in range(1, incidents):
            # The list example holds one incident; copies with their own ids make paging testable.
            self.incidents.append({**copy.deepcopy(template), "id": f"PINC{n:04d}"})
        get = ["GET"]
        routes = [
            Route("/incidents", self.list_incidents, methods=get),
            Route("/incidents/{id}", self.answer("/incidents/{id}", "get"), methods=get),
            Route("/incidents/{id}", self.answer("/incidents/{id}", "put"), methods=["PUT"]),
            Route(
                "/incidents/{id}/snooze",
                self.answer("/incidents/{id}/snooze", "post", "201"),
                methods=["POST"],
            ),
            Route(
                "/incidents/{id}/notes", self.answer("/incidents/{id}/notes", "get"), methods=get
            ),
            Route(
                "/incidents/{id}/notes",
                self.answer("/incidents/{id}/notes", "post"),
                methods=["POST"],
            ),
            Route("/oncalls", self.answer("/oncalls", "get"), methods=get),
            Route("/escalation_policies", self.answer("/escalation_policies", "get"), methods=get),
            Route("/escalation_policies/{id}", self.answer("/escalation_policies/{id}", "get")),
            Route(
                "/schedules", self.answer("/schedules", "get", name="Basic Example"), methods=get
            ),
            Route("/schedules/{id}", self.answer("/schedules/{id}", "get"), methods=get),
            Route("/users", self.answer("/users", "get"), methods=get),
            Route("/users/me", self.answer("/users/me", "get"), methods=get),
        ]
        self.app = Starlette(routes=routes)

    async def _refuse(self, request: Request) -> Response | None:
        """Record the request; answer as PagerDuty does when a required header is wrong."""
        body = await request.body()
        headers = dict(request.headers)
        query = httpx.QueryParams(request.url.query)
        self.requests.append(
            (request.method, request.url.path, query, headers, json.loads(body) if body else None)
        )
        if headers.get("authorization") != f"Token token={TOKEN}":
            return pd_error(401, 2006, "Authentication failed")
        if headers.get("accept") != ACCEPT:
            return pd_error(400, 2001, "Invalid Input Provided")
        if request.method != "GET" and headers.get("from") != EMAIL:
            return pd_error(400, 2011, "You must specify a requester_id")
        return None

    def answer(
        self, path: str, method: str, status: str = "200", name: str | None = None
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            if (refused := await self._refuse(request)) is not None:
                return refused
            if request.path_params.get("id") == "PMISSING":
                return pd_error(404, 2100, "Not Found")
            body = example(path, method, status, name)
            if path == "/users/me":
                # The published example says "created_via_sso": "true," (API-NOTES section 0),
                # which its own schema (a boolean) refuses; the live API sends a boolean.
                body["user"]["created_via_sso"] = True
            if path == "/incidents/{id}" and method == "get":
                # The example shows fields its schema does not declare (custom_fields, avatar
                # URLs of responders); the checker rightly refuses them, and we read none.
                for key in ("custom_fields", "incidents_responders", "responder_requests"):
                    body["incident"].pop(key, None)
            if path == "/schedules/{id}":
                # Same for `next_oncall_for_user.user`, an array in the example, an object in
                # the schema.
                upcoming = body["schedule"]["next_oncall_for_user"]
                upcoming["user"] = upcoming["user"][0]
            return JSONResponse(body, int(status))

        return handler

    async def list_incidents(self, request: Request) -> Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        limit = int(request.query_params.get("limit", "25"))
        offset = int(request.query_params.get("offset", "0"))
        page = self.incidents[offset : offset + limit]
        more = offset + limit < len(self.incidents)
        return JSONResponse(
            {"incidents": page, "limit": limit, "offset": offset, "more": more, "total": None}
        )


@pytest.fixture
def server() -> ExampleServer:
    return ExampleServer()


@pytest.fixture
async def validated(server: ExampleServer) -> AsyncIterator[httpx.AsyncClient]:
    transport = ValidatingTransport(
        httpx.ASGITransport(app=server.app), SpecValidator.load("pagerduty-rest")
    )
    async with httpx.AsyncClient(transport=transport, base_url=API) as http:
        yield http
    assert transport.violations == []


@pytest.fixture
def client(validated: httpx.AsyncClient) -> PagerDutyClient:
    return PagerDutyClient(API, TOKEN, validated, clock=RecordingClock(), from_email=EMAIL)


# -- incidents --------------------------------------------------------------------------------


async def test_incidents_are_parsed_from_the_documented_example(
    client: PagerDutyClient, server: ExampleServer
) -> None:
    [incident] = await client.incidents()
    assert incident == Incident(
        id="PT4KHLK",
        system="pagerduty",
        title="The server is on fire.",
        status="resolved",
        urgency="high",
        service="My Mail Service",
        assignee="",
        escalation_level=None,
        created_at=at("2015-10-06T21:30:42Z"),
        url="https://subdomain.pagerduty.com/incidents/PT4KHLK",
        dedup_key="baf7cf21b1da41b4b0221008339ff357",
        number=1234,
        service_id="PIJ90N7",
        escalation_policy="Another Escalation Policy",
        escalation_policy_id="PT20YPA",
        assignee_ids=(),
        acknowledged_by=(),
        last_change_at=at("2015-10-06T21:38:23Z"),
        priority="P2",
    )
    method, path, query, headers, _ = server.requests[0]
    assert (method, path) == ("GET", "/incidents")
    assert query.get_list("statuses[]") == ["triggered", "acknowledged"]
    assert {"assignees", "acknowledgers", "escalation_policies", "services"} <= set(
        query.get_list("include[]")
    )
    # Without `since`, PagerDuty would only look one month back; open is open however old.
    assert query["date_range"] == "all"
    assert (query["limit"], query["offset"]) == ("100", "0")
    assert headers["authorization"] == f"Token token={TOKEN}"
    assert headers["accept"] == ACCEPT
    assert headers["content-type"] == "application/json"
    assert "from" not in headers  # reads do not claim to be anyone


async def test_incidents_filters_reach_the_query(
    client: PagerDutyClient, server: ExampleServer
) -> None:
    since = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    await client.incidents(statuses=("resolved",), service_ids=("PIJ90N7", "PSEARCH"), since=since)
    query = server.requests[0][2]
    assert query.get_list("statuses[]") == ["resolved"]
    assert query.get_list("service_ids[]") == ["PIJ90N7", "PSEARCH"]
    assert query["since"] == "2026-02-28T12:00:00Z"
    assert query["until"] == "2026-03-01T02:00:00Z"  # the injected clock's now
    assert "date_range" not in query


async def test_incidents_are_paged_with_offsets_up_to_max_items() -> None:
    server = ExampleServer(incidents=250)
    transport = ValidatingTransport(
        httpx.ASGITransport(app=server.app), SpecValidator.load("pagerduty-rest")
    )
    async with httpx.AsyncClient(transport=transport) as http:
        client = PagerDutyClient(API, TOKEN, http, clock=RecordingClock())
        every = await client.incidents()
        assert [q["offset"] for _, _, q, _, _ in server.requests] == ["0", "100", "200"]
        assert len({i.id for i in every}) == 250
        server.requests.clear()
        some = await client.incidents(max_items=150)
        assert len(some) == 150
        assert [q["offset"] for _, _, q, _, _ in server.requests] == ["0", "100"]
    assert transport.violations == []


async def test_paging_stops_where_pagerduty_stops_answering() -> None:
    # offset + limit above 10000 is a 400 at PagerDuty: the client never asks for it.
    asked: list[int] = []

    async def endless(request: Request) -> Response:
        offset = int(request.query_params["offset"])
        limit = int(request.query_params["limit"])
        asked.append(offset)
        if offset + limit > 10_000:
            return pd_error(400, 2001, "Offset must be less than 10000")
        page = [
            {"id": f"P{offset + n}", "status": "triggered", "created_at": "2026-03-01T01:00:00Z"}
            for n in range(limit)
        ]
        return JSONResponse({"incidents": page, "limit": limit, "offset": offset, "more": True})

    app = Starlette(routes=[Route("/incidents", endless)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        client = PagerDutyClient(API, TOKEN, http, clock=RecordingClock())
        incidents = await client.incidents(max_items=50_000)
    assert len(incidents) == 10_000
    assert asked[-1] == 9_900


async def test_one_incident_with_assignee_and_acknowledger(
    client: PagerDutyClient, server: ExampleServer
) -> None:
    incident = await client.incident("PT4KHLK")
    assert incident.status == "acknowledged"
    assert (incident.assignee, incident.assignee_ids) == ("Earline Greenholt", ("PXPGF42",))
    assert incident.acknowledged_by == ("Earline Greenholt",)
    assert server.requests[0][2].get_list("include[]")


async def test_a_missing_incident_is_a_final_error_with_pagerdutys_words(
    client: PagerDutyClient,
) -> None:
    with pytest.raises(ProviderError) as caught:
        await client.incident("PMISSING")
    error = caught.value
    assert (error.source, error.status, error.retryable, error.code) == (
        "pagerduty",
        404,
        False,
        2100,
    )
    assert error.message == "HTTP 404: Not Found (code 2100)"


async def test_a_bad_token_never_shows_in_the_error(server: ExampleServer) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app)) as http:
        client = PagerDutyClient(API, "wrong-token-7777", http, clock=RecordingClock())
        with pytest.raises(ProviderError) as caught:
            await client.incidents()
    assert caught.value.status == 401
    assert "Authentication failed" in str(caught.value)
    assert "wrong-token-7777" not in str(caught.value) + repr(caught.value) + repr(client)


# -- writes -----------------------------------------------------------------------------------


async def test_writes_send_from_and_the_documented_bodies(
    client: PagerDutyClient, server: ExampleServer
) -> None:
    acked = await client.acknowledge("PT4KHLK")
    resolved = await client.resolve("PT4KHLK", "disk replaced")
    escalated = await client.escalate("PT4KHLK", 2)
    await client.reassign("PT4KHLK", user_ids=["PXPGF42", "PAM4FGS"])
    await client.reassign("PT4KHLK", escalation_policy_id="PT20YPA")
    snoozed = await client.snooze("PT4KHLK", 3600)
    bodies = [body for _, _, _, _, body in server.requests]
    assert bodies == [
        {"incident": {"type": "incident_reference", "status": "acknowledged"}},
        {
            "incident": {
                "type": "incident_reference",
                "status": "resolved",
                "resolution": "disk replaced",
            }
        },
        {"incident": {"type": "incident_reference", "escalation_level": 2}},
        {
            "incident": {
                "type": "incident_reference",
                "assignments": [
                    {"assignee": {"id": "PXPGF42", "type": "user_reference"}},
                    {"assignee": {"id": "PAM4FGS", "type": "user_reference"}},
                ],
            }
        },
        {
            "incident": {
                "type": "incident_reference",
                "escalation_policy": {"id": "PT20YPA", "type": "escalation_policy_reference"},
            }
        },
        {"duration": 3600},
    ]
    assert [(m, p) for m, p, _, _, _ in server.requests][-1] == (
        "POST",
        "/incidents/PT4KHLK/snooze",
    )
    assert all(headers["from"] == EMAIL for _, _, _, headers, _ in server.requests)
    # What comes back is PagerDuty's answer (here the spec's examples), parsed.
    assert acked.id == resolved.id == "PT4KHLK"
    assert resolved.status == "resolved"
    assert escalated.escalation_level == 2
    assert snoozed.acknowledged_by == ("Earline Greenholt",)


async def test_a_write_without_an_operator_email_is_refused_before_sending(
    validated: httpx.AsyncClient, server: ExampleServer
) -> None:
    client = PagerDutyClient(API, TOKEN, validated, clock=RecordingClock())
    with pytest.raises(ProviderError) as caught:
        await client.acknowledge("PT4KHLK")
    assert "operator.email" in caught.value.message
    assert not caught.value.retryable
    assert server.requests == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.escalate("P1", 0),
        lambda c: c.reassign("P1"),
        lambda c: c.reassign("P1", user_ids=["U1"], escalation_policy_id="E1"),
        lambda c: c.snooze("P1", 0),
        lambda c: c.add_note("P1", "  "),
        lambda c: c.acknowledge("../users/me"),
    ],
)
async def test_invalid_requests_fail_as_final_provider_errors(
    client: PagerDutyClient,
    server: ExampleServer,
    call: Callable[[PagerDutyClient], Awaitable[Any]],
) -> None:
    with pytest.raises(ProviderError) as caught:
        await call(client)
    assert not caught.value.retryable
    assert server.requests == []


async def test_already_acknowledged_is_recognisable() -> None:
    async def put(request: Request) -> Response:
        return pd_error(400, 1002, "Incident Already Acknowledged")

    app = Starlette(routes=[Route("/incidents/{id}", put, methods=["PUT"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        client = PagerDutyClient(API, TOKEN, http, clock=RecordingClock(), from_email=EMAIL)
        with pytest.raises(ProviderError) as caught:
            await client.acknowledge("P1")
    assert pagerduty_error_code(caught.value) == ALREADY_ACKNOWLEDGED
    assert caught.value.status == 400
    assert caught.value.message == "HTTP 400: Incident Already Acknowledged (code 1002)"
    assert pagerduty_error_code(ProviderError("alertmanager a", "x", code=1002)) is None


# -- notes, on-call, directory ----------------------------------------------------------------


async def test_notes_from_users_and_from_event_rules(
    client: PagerDutyClient, server: ExampleServer
) -> None:
    notes = await client.notes("PT4KHLK")
    assert [(n.id, n.user, n.content) for n in notes] == [
        ("PWL7QXS", "Earline Greenholt", "Firefighters are on the scene."),
        ("PCQC25", "A Global Event Rule", "Initial alert information indicates a 1-alarm fire"),
    ]
    assert notes[0].created_at == at("2013-03-06T20:28:51Z")
    note = await client.add_note("PT4KHLK", "Firefighters are on the scene.")
    assert note.id == "PWL7QXS"
    assert server.requests[-1][4] == {"note": {"content": "Firefighters are on the scene."}}
    assert server.requests[-1][3]["from"] == EMAIL


async def test_oncalls_with_levels_and_their_window(
    client: PagerDutyClient, server: ExampleServer
) -> None:
    since = datetime(2026, 3, 1, tzinfo=UTC)
    until = datetime(2026, 3, 8, tzinfo=UTC)
    oncalls = await client.oncalls(
        escalation_policy_ids=["PT20YPA"], since=since, until=until, earliest=True
    )
    assert oncalls == [
        OnCall(
            policy="Engineering Escalation Policy",
            level=2,
            user="Tim Wright",
            start=at("2015-03-06T20:28:51Z"),
            end=at("2015-03-07T20:28:51Z"),
            policy_id="PT20YPA",
            user_id="PT23IWX",
            schedule="Daily Engineering Rotation",
        )
    ]
    query = server.requests[0][2]
    assert query.get_list("escalation_policy_ids[]") == ["PT20YPA"]
    assert (query["since"], query["until"], query["earliest"]) == (
        "2026-03-01T00:00:00Z",
        "2026-03-08T00:00:00Z",
        "true",
    )


async def test_escalation_policies_listed_or_fetched_by_id(
    client: PagerDutyClient, server: ExampleServer
) -> None:
    [listed] = await client.escalation_policies()
    assert (listed.id, listed.name, listed.num_loops) == (
        "PANZZEQ",
        "Engineering Escalation Policy",
        0,
    )
    assert listed.rules == (
        EscalationRuleInfo(30, ("PagerDuty Admin", "Daily Engineering Rotation")),
    )
    [fetched] = await client.escalation_policies(["PT20YPA"])
    assert (fetched.id, fetched.num_loops) == ("PT20YPA", 2)
    assert fetched.rules[0].targets == ("Kyler Kuhn", "Daily Engineering Rotation")
    assert server.requests[-1][1] == "/escalation_policies/PT20YPA"


async def test_schedules_and_their_rendered_shifts(
    client: PagerDutyClient, server: ExampleServer
) -> None:
    assert await client.schedules() == [
        ScheduleInfo("PI7DH85", "Daily Engineering Rotation", "America/New_York")
    ]
    since = datetime(2026, 3, 1, tzinfo=UTC)
    shifts = await client.shifts("PI7DH85", since, datetime(2026, 3, 8, tzinfo=UTC))
    # The final schedule (overrides applied), not a layer; times in UTC.
    assert [(s.user, s.start, s.end, s.schedule, s.schedule_id) for s in shifts] == [
        (
            "Regina Phalange",
            at("2015-11-10T13:00:00Z"),
            at("2015-11-10T22:00:00Z"),
            "Daily Engineering Rotation",
            "PI7DH85",
        )
    ]
    assert server.requests[-1][2]["since"] == "2026-03-01T00:00:00Z"


async def test_users_and_me(client: PagerDutyClient, server: ExampleServer) -> None:
    users = await client.users("kyler")
    assert users[1] == UserInfo("PAM4FGS", "Kyler Kuhn", "126_dvm_kyler_kuhn@beahan.name")
    assert server.requests[0][2]["query"] == "kyler"
    me = await client.me()
    assert me == UserInfo("PXPGF42", "Earline Greenholt", "125.greenholt.earline@graham.name")


# -- retries ----------------------------------------------------------------------------------


class RateLimited:
    """Answers 429 to the first `limited` requests (with or without headers), then 200."""

    def __init__(self, limited: int, headers: dict[str, str]) -> None:
        self.limited = limited
        self.headers = headers
        self.count = 0
        self.app = Starlette(routes=[Route("/users/me", self.me)])

    async def me(self, request: Request) -> Response:
        self.count += 1
        if self.count <= self.limited:
            return pd_error(429, 2020, "Rate Limit Exceeded", **self.headers)
        return JSONResponse(
            {"user": {"id": "P1", "type": "user", "name": "Nina Patel", "email": EMAIL}},
            headers={
                "ratelimit-limit": "960",
                "ratelimit-remaining": "959",
                "ratelimit-reset": "40",
            },
        )


async def test_429_waits_for_ratelimit_reset() -> None:
    limiter = RateLimited(
        2, {"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": "4"}
    )
    clock = RecordingClock()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=limiter.app)) as http:
        client = PagerDutyClient(API, TOKEN, http, clock=clock, read_attempts=3)
        assert (await client.me()).name == "Nina Patel"
    assert clock.sleeps == [4.0, 4.0]
    assert limiter.count == 3


async def test_429_without_headers_backs_off_then_reports_the_rate_limit() -> None:
    limiter = RateLimited(10, {})
    clock = RecordingClock()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=limiter.app)) as http:
        client = PagerDutyClient(API, TOKEN, http, clock=clock, read_attempts=3)
        with pytest.raises(ProviderError) as caught:
            await client.me()
    assert limiter.count == 3
    assert len(clock.sleeps) == 2
    assert all(0 <= s <= 1.0 for s in clock.sleeps)
    error = caught.value
    assert (error.status, error.retryable, error.code) == (429, True, 2020)
    assert "Rate Limit Exceeded" in error.message


# -- pure functions ---------------------------------------------------------------------------


def incident(**changes: Any) -> Incident:
    base = Incident(
        id="P1",
        system="pagerduty",
        title="t",
        status="triggered",
        urgency="high",
        service="s",
        assignee="Tim Wright",
        escalation_level=None,
        created_at=at("2026-03-01T01:00:00Z"),
        escalation_policy_id="PEP",
        assignee_ids=("PT23IWX",),
    )
    return Incident(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **changes})


def test_escalation_level_comes_from_a_direct_target_of_the_included_policy() -> None:
    item = example("/incidents/{id}", "get")["incident"]
    item["escalation_policy"] = example("/escalation_policies/{id}", "get")["escalation_policy"]
    item["assignments"][0]["assignee"]["id"] = "PAM4FGS"  # Kyler Kuhn, a level-1 user target
    assert parse_incident(item).escalation_level == 1
    item["assignments"][0]["assignee"]["id"] = "PNOBODY"
    assert parse_incident(item).escalation_level is None


def test_escalation_levels_filled_from_oncalls() -> None:
    oncalls = [
        OnCall("EP", 2, "Tim Wright", None, None, policy_id="PEP", user_id="PT23IWX"),
        OnCall("EP", 3, "Tim Wright", None, None, policy_id="PEP", user_id="PT23IWX"),
        OnCall("Other", 1, "Tim Wright", None, None, policy_id="POTHER", user_id="PT23IWX"),
    ]
    known = incident(id="P2", escalation_level=3)
    unknown = incident(id="P3", assignee_ids=("PSOMEONE",))
    filled = with_escalation_levels([incident(), known, unknown], oncalls)
    assert [i.escalation_level for i in filled] == [2, 3, None]


def webhook(event_type: str, **data: Any) -> dict[str, Any]:
    """A Webhooks v3 delivery shaped as PagerDuty's docs describe (API-NOTES section 2.3)."""
    ref = {"type": "user_reference", "html_url": "https://acme.pagerduty.com/users/PT23IWX"}
    incident_data = {
        "id": "Q1ABC",
        "type": "incident",
        "self": "https://api.pagerduty.com/incidents/Q1ABC",
        "html_url": "https://acme.pagerduty.com/incidents/Q1ABC",
        "number": 42,
        "status": "acknowledged",
        "incident_key": "3f1c",
        "created_at": "2026-03-01T01:58:00Z",
        "title": "payment-service down",
        "service": {"id": "PSVC", "type": "service_reference", "summary": "payment-service"},
        "assignees": [{"id": "PT23IWX", "summary": "Tim Wright", **ref}],
        "escalation_policy": {
            "id": "PEP",
            "type": "escalation_policy_reference",
            "summary": "Payments",
        },
        "teams": [],
        "priority": None,
        "urgency": "high",
        "conference_bridge": None,
        "resolve_reason": None,
        **data,
    }
    return {
        "event": {
            "id": "01DEN",
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-03-01T02:00:00.123Z",
            "agent": {"id": "PT23IWX", "summary": "Tim Wright", **ref},
            "client": None,
            "data": incident_data,
        }
    }


def test_incident_from_a_webhook_uses_number_and_assignees() -> None:
    found = incident_from_webhook(webhook("incident.acknowledged"))
    assert found is not None
    assert (found.id, found.number, found.status) == ("Q1ABC", 42, "acknowledged")
    assert (found.assignee, found.assignee_ids) == ("Tim Wright", ("PT23IWX",))
    assert (found.service, found.service_id) == ("payment-service", "PSVC")
    assert (found.escalation_policy, found.dedup_key, found.priority) == ("Payments", "3f1c", "")
    assert found.acknowledged_by == ("Tim Wright",)
    assert found.last_change_at == at("2026-03-01T02:00:00.123Z")
    triggered = incident_from_webhook(webhook("incident.triggered", status="triggered"))
    assert triggered is not None
    assert triggered.acknowledged_by == ()


def test_webhooks_about_other_things_are_not_incidents() -> None:
    note = webhook("incident.annotated")
    note["event"]["data"] = {"type": "incident_note", "id": "N1", "content": "hi"}
    assert incident_from_webhook(note) is None
    assert incident_from_webhook({"event": {"event_type": "pagey.ping", "data": None}}) is None
    broken = webhook("incident.triggered")
    del broken["event"]["data"]["status"]
    with pytest.raises(ValueError, match="status"):
        incident_from_webhook(broken)


async def test_oncalls_at_a_future_moment_ask_for_that_moment_only(
    client: PagerDutyClient, server: ExampleServer
) -> None:
    # PagerDuty's `until` defaults to now, and `until` before `since` is a 400.
    later = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    await client.oncalls(since=later)
    query = server.requests[0][2]
    assert (query["since"], query["until"]) == ("2026-03-05T09:00:00Z", "2026-03-05T09:00:00Z")
