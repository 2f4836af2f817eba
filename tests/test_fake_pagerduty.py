"""The fake PagerDuty behaves as PagerDuty does; every exchange is checked against its specs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from spec_check import SpecValidator, ValidatingTransport
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oncall_tui.clock import FrozenClock
from oncall_tui.sandbox.fake_pagerduty import FakePagerDuty
from oncall_tui.webhook_payloads import verify_pagerduty_signature

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
TOKEN = "test-api-token"
KEY = "k" * 32
SEARCH_KEY = "s" * 32
SECRETS = ("old-secret", "new-secret")
OPERATOR = "demo@example.com"
PD_HEADERS = {
    "Authorization": f"Token token={TOKEN}",
    "Accept": "application/vnd.pagerduty+json;version=2",
    "Content-Type": "application/json",
}
WRITE_HEADERS = {**PD_HEADERS, "From": OPERATOR}


@dataclass
class Recorder:
    """The webhook receiver: keeps raw bodies and headers; answers with `statuses` in turn."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            self.received.append((await request.body(), dict(request.headers)))
            return Response(status_code=self.statuses.pop(0) if self.statuses else 200)

        return Starlette(routes=[Route("/hook", receive, methods=["POST"])])

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body)["event"] for body, _ in self.received]

    def types(self) -> list[str]:
        return [event["event_type"] for event in self.events()]


@dataclass
class Env:
    clock: FrozenClock
    fake: FakePagerDuty
    rest: httpx.AsyncClient
    events: httpx.AsyncClient
    hooks: Recorder

    async def trigger(self, dedup_key: str | None = "group-1", **payload: Any) -> str:
        body: dict[str, Any] = {
            "routing_key": KEY,
            "event_action": "trigger",
            "payload": {"summary": "payment-service down", "source": "am", "severity": "critical"}
            | payload,
        }
        if dedup_key is not None:
            body["dedup_key"] = dedup_key
        response = await self.events.post("/v2/enqueue", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["dedup_key"])

    async def event(self, action: str, dedup_key: str, routing_key: str = KEY) -> None:
        body = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key}
        response = await self.events.post("/v2/enqueue", json=body)
        assert response.status_code == 202, response.text

    async def incidents(self, *params: tuple[str, str]) -> list[dict[str, Any]]:
        response = await self.rest.get("/incidents", params=list(params), headers=PD_HEADERS)
        assert response.status_code == 200, response.text
        return list(response.json()["incidents"])

    async def put(self, incident_id: str, **changes: Any) -> httpx.Response:
        body = {"incident": {"type": "incident_reference", **changes}}
        return await self.rest.put(f"/incidents/{incident_id}", json=body, headers=WRITE_HEADERS)

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.fake.tick()


def validating(app: Starlette, spec: Any, **kwargs: Any) -> httpx.AsyncClient:
    transport = ValidatingTransport(
        httpx.ASGITransport(app=app), SpecValidator.load(spec), **kwargs
    )
    return httpx.AsyncClient(transport=transport, base_url="http://pagerduty.test")


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    clock = FrozenClock(T0)
    hooks = Recorder()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=hooks.app()))
    fake = FakePagerDuty(
        clock=clock,
        api_token=TOKEN,
        routing_keys=[KEY, SEARCH_KEY],
        webhook_url="http://listener.test/hook",
        webhook_secrets=SECRETS,
        time_scale=30.0,
        http=http,
    )
    rest = validating(fake.app, "pagerduty-rest")
    events = validating(fake.app, "pagerduty-events")
    try:
        yield Env(clock, fake, rest, events, hooks)
    finally:
        await fake.stop()
        for client in (rest, events, http):
            await client.aclose()


def unvalidated_requests(env: Env) -> httpx.AsyncClient:
    """For requests that break the spec on purpose; the fake's answers are still checked."""
    return validating(env.fake.app, "pagerduty-rest", check_requests=False)


# -- Events API v2 ------------------------------------------------------------------------------


async def test_trigger_opens_an_incident_and_pages_level_one(env: Env) -> None:
    key = await env.trigger("group-1")
    assert key == "group-1"
    [incident] = await env.incidents()
    assert incident["incident_key"] == "group-1"
    assert incident["status"] == "triggered"
    assert incident["service"]["summary"] == "payment-service"
    assert incident["escalation_policy"]["summary"] == "Payments"
    # Monday 2026-03-02 10:00: the daily "Payments primary" rotation puts one user there.
    [assignment] = incident["assignments"]
    assert [p.user_id for p in env.fake.pages] == [assignment["assignee"]["id"]]
    await env.fake.tick()
    assert env.hooks.types() == ["incident.triggered"]


async def test_same_dedup_key_joins_the_open_incident_without_a_new_page(env: Env) -> None:
    await env.trigger("group-1")
    await env.trigger("group-1", summary="payment-service down (2 alerts)")
    assert len(await env.incidents()) == 1
    assert len(env.fake.pages) == 1
    await env.fake.tick()
    assert env.hooks.types() == ["incident.triggered"]


async def test_trigger_without_dedup_key_gets_one(env: Env) -> None:
    key = await env.trigger(None)
    assert len(key) == 32
    [incident] = await env.incidents()
    assert incident["incident_key"] == key


async def test_unknown_or_foreign_keys_are_accepted_and_dropped(env: Env) -> None:
    await env.trigger("group-1")
    await env.event("acknowledge", "no-such-key")
    await env.event("resolve", "no-such-key")
    await env.event("resolve", "group-1", routing_key=SEARCH_KEY)  # another integration's key
    [incident] = await env.incidents()
    assert incident["status"] == "triggered"
    assert len(env.fake.incidents) == 1


async def test_events_acknowledge_and_resolve_by_dedup_key(env: Env) -> None:
    await env.trigger("group-1")
    await env.event("acknowledge", "group-1")
    [incident] = await env.incidents()
    assert incident["status"] == "acknowledged"
    assert incident["acknowledgements"][0]["acknowledger"]["type"] == "service_reference"
    await env.event("resolve", "group-1")
    [incident] = await env.incidents()
    assert incident["status"] == "resolved"
    assert incident["resolved_at"] == "2026-03-02T10:00:00Z"


async def test_trigger_after_resolve_opens_a_new_incident(env: Env) -> None:
    await env.trigger("group-1")
    await env.event("resolve", "group-1")
    await env.trigger("group-1")
    incidents = await env.incidents(("sort_by", "incident_number"))
    assert [(i["incident_number"], i["status"]) for i in incidents] == [
        (1, "resolved"),
        (2, "triggered"),
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"routing_key": KEY, "event_action": "trigger"}, "payload"),
        (
            {
                "routing_key": KEY,
                "event_action": "trigger",
                "payload": {"summary": "s", "source": "x", "severity": "fatal"},
            },
            "severity",
        ),
        ({"routing_key": "short", "event_action": "resolve", "dedup_key": "k"}, "routing_key"),
        ({"routing_key": "x" * 32, "event_action": "resolve", "dedup_key": "k"}, "routing key"),
        ({"routing_key": KEY, "event_action": "acknowledge"}, "dedup_key"),
    ],
)
async def test_invalid_events_get_400(env: Env, body: dict[str, Any], reason: str) -> None:
    # The spec leaves these rules in prose, so the request itself validates (or is sent anyway).
    events = validating(env.fake.app, "pagerduty-events", check_requests=False)
    async with events:
        response = await events.post("/v2/enqueue", json=body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["status"] == "invalid event"
    assert any(reason in error for error in answer["errors"])
    assert env.fake.incidents == []


async def test_events_throttled(env: Env) -> None:
    env.fake.throttle(1)
    body = {"routing_key": KEY, "event_action": "resolve", "dedup_key": "k"}
    assert (await env.events.post("/v2/enqueue", json=body)).status_code == 429
    assert (await env.events.post("/v2/enqueue", json=body)).status_code == 202


# -- REST: headers, errors, pagination ----------------------------------------------------------


async def test_token_accept_and_from_are_required(env: Env) -> None:
    async with unvalidated_requests(env) as rest:
        bearer = await rest.get(
            "/incidents", headers={**PD_HEADERS, "Authorization": f"Bearer {TOKEN}"}
        )
        assert bearer.status_code == 401
        assert bearer.json()["error"]["code"] == 2006
        no_accept = {k: v for k, v in PD_HEADERS.items() if k != "Accept"}
        assert (await rest.get("/incidents", headers=no_accept)).status_code == 400
        await env.trigger()
        [incident] = await env.incidents()
        body = {"incident": {"type": "incident_reference", "status": "acknowledged"}}
        anonymous = await rest.put(f"/incidents/{incident['id']}", json=body, headers=PD_HEADERS)
        assert anonymous.status_code == 400
        stranger = await rest.put(
            f"/incidents/{incident['id']}",
            json=body,
            headers={**PD_HEADERS, "From": "nobody@example.com"},
        )
        assert stranger.json()["error"]["code"] == 1008
    [incident] = await env.incidents()
    assert incident["status"] == "triggered"


async def test_acknowledge_twice_and_resolve_twice_give_pagerduty_codes(env: Env) -> None:
    await env.trigger()
    [incident] = await env.incidents()
    first = await env.put(incident["id"], status="acknowledged")
    assert first.status_code == 200
    assert first.json()["incident"]["acknowledgements"][0]["acknowledger"]["summary"] == (
        "Demo Operator"
    )
    again = await env.put(incident["id"], status="acknowledged")
    assert (again.status_code, again.json()["error"]["code"]) == (400, 1002)
    assert (await env.put(incident["id"], status="resolved")).status_code == 200
    twice = await env.put(incident["id"], status="resolved")
    assert (twice.status_code, twice.json()["error"]["code"]) == (400, 1001)
    missing = await env.rest.get("/incidents/QNOPE", headers=PD_HEADERS)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, 2100)


async def test_classic_pagination(env: Env) -> None:
    for index in range(30):
        await env.trigger(f"group-{index}")
    first = (await env.rest.get("/incidents", headers=PD_HEADERS)).json()
    assert (len(first["incidents"]), first["limit"], first["more"], first["total"]) == (
        25,
        25,
        True,
        None,
    )
    rest = await env.rest.get(
        "/incidents", params={"offset": 25, "total": "true"}, headers=PD_HEADERS
    )
    page = rest.json()
    assert (len(page["incidents"]), page["more"], page["total"]) == (5, False, 30)
    capped = await env.rest.get("/incidents", params={"limit": 500}, headers=PD_HEADERS)
    assert capped.json()["limit"] == 100
    too_far = await env.rest.get(
        "/incidents", params={"offset": 9950, "limit": 100}, headers=PD_HEADERS
    )
    assert too_far.status_code == 400


async def test_filters_and_lookup_by_number(env: Env) -> None:
    await env.trigger("group-1")
    await env.trigger("group-2")
    body = {
        "routing_key": SEARCH_KEY,
        "event_action": "trigger",
        "payload": {"summary": "search slow", "source": "am", "severity": "critical"},
    }
    assert (await env.events.post("/v2/enqueue", json=body)).status_code == 202
    await env.event("acknowledge", "group-2")
    open_ones = await env.incidents(("statuses[]", "triggered"), ("statuses[]", "acknowledged"))
    assert len(open_ones) == 3
    triggered = await env.incidents(("statuses[]", "triggered"), ("service_ids[]", "PSVCPAY"))
    assert [i["incident_key"] for i in triggered] == ["group-1"]
    by_number = await env.rest.get("/incidents/3", headers=PD_HEADERS)
    assert by_number.json()["incident"]["title"] == "search slow"
    expanded = await env.incidents(
        ("include[]", "assignees"), ("include[]", "services"), ("include[]", "escalation_policies")
    )
    assert expanded[0]["assignments"][0]["assignee"]["email"].endswith("@example.com")
    assert expanded[0]["escalation_policy"]["escalation_rules"][0]["escalation_delay_in_minutes"]


async def test_rest_throttled_with_rate_limit_headers(env: Env) -> None:
    ok = await env.rest.get("/users", headers=PD_HEADERS)
    assert ok.headers["ratelimit-limit"] == "960"
    env.fake.throttle(1)
    limited = await env.rest.get("/users", headers=PD_HEADERS)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == 2020
    assert int(limited.headers["ratelimit-reset"]) >= 1


# -- REST: incident actions ---------------------------------------------------------------------


async def test_notes_are_added_with_200_and_announced(env: Env) -> None:
    await env.trigger()
    [incident] = await env.incidents()
    path = f"/incidents/{incident['id']}/notes"
    added = await env.rest.post(path, json={"note": {"content": "looking"}}, headers=WRITE_HEADERS)
    assert added.status_code == 200
    assert added.json()["note"]["user"]["summary"] == "Demo Operator"
    notes = (await env.rest.get(path, headers=PD_HEADERS)).json()["notes"]
    assert [n["content"] for n in notes] == ["looking"]
    await env.fake.tick()
    annotated = env.hooks.events()[-1]
    assert annotated["event_type"] == "incident.annotated"
    assert annotated["data"]["type"] == "incident_note"
    assert annotated["data"]["incident"]["id"] == incident["id"]


async def test_manual_escalation_reassign_and_delegate(env: Env) -> None:
    await env.trigger()
    [incident] = await env.incidents()
    escalated = (await env.put(incident["id"], escalation_level=3)).json()["incident"]
    assert [a["assignee"]["summary"] for a in escalated["assignments"]] == ["Dana Ito"]
    bad = await env.put(incident["id"], escalation_level=9)
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, 1006)
    assignee = {"assignee": {"id": "PERINW7", "type": "user_reference"}}
    reassigned = (await env.put(incident["id"], assignments=[assignee])).json()["incident"]
    assert reassigned["assigned_via"] == "direct_assignment"
    assert reassigned["pending_actions"] == []  # a direct assignment stops the policy
    policy = {"id": "PEPSRC2", "type": "escalation_policy_reference"}
    delegated = (await env.put(incident["id"], escalation_policy=policy)).json()["incident"]
    assert delegated["escalation_policy"]["id"] == "PEPSRC2"
    await env.fake.tick()
    assert env.hooks.types() == [
        "incident.triggered",
        "incident.escalated",
        "incident.reassigned",
        "incident.delegated",
    ]


async def test_snooze_returns_the_incident_to_triggered(env: Env) -> None:
    await env.trigger()
    [incident] = await env.incidents()
    path = f"/incidents/{incident['id']}/snooze"
    early = await env.rest.post(path, json={"duration": 600}, headers=WRITE_HEADERS)
    assert early.status_code == 400  # only an acknowledged incident can be snoozed
    await env.put(incident["id"], status="acknowledged")
    snoozed = await env.rest.post(path, json={"duration": 600}, headers=WRITE_HEADERS)
    assert snoozed.status_code == 201
    await env.advance(601)
    [incident] = await env.incidents()
    assert incident["status"] == "triggered"
    assert env.hooks.types()[-1] == "incident.unacknowledged"


async def test_bulk_update_limit(env: Env) -> None:
    items = [{"id": f"Q{index}", "type": "incident_reference"} for index in range(251)]
    response = await env.rest.put("/incidents", json={"incidents": items}, headers=WRITE_HEADERS)
    assert response.status_code == 413
    await env.trigger()
    [incident] = await env.incidents()
    body = {
        "incidents": [{"id": incident["id"], "type": "incident_reference", "status": "resolved"}]
    }
    done = await env.rest.put("/incidents", json=body, headers=WRITE_HEADERS)
    assert done.json()["incidents"][0]["status"] == "resolved"


# -- escalation on the compressed clock ---------------------------------------------------------


def levels(env: Env) -> list[int]:
    return [page.level for page in env.fake.pages]


async def test_unacknowledged_incident_climbs_and_loops(env: Env) -> None:
    """Payments: levels of 5, 5 and 10 minutes, num_loops 2; time_scale 30 (5 min = 10 s)."""
    await env.trigger()
    await env.advance(9)
    assert levels(env) == [1]
    await env.advance(1)  # 10 s: the 5-minute rule is over
    assert levels(env) == [1, 2]
    await env.advance(10)
    assert levels(env) == [1, 2, 3]
    [incident] = await env.incidents()
    assert incident["pending_actions"][0]["at"] == "2026-03-02T10:00:40Z"  # level 3 waits 10 min
    # Two more rounds through the policy, then it stays at the last level.
    await env.advance(3600)
    assert levels(env) == [1, 2, 3, 1, 2, 3, 1, 2, 3]
    [incident] = await env.incidents()
    assert incident["pending_actions"] == []  # last level of the last loop: it stays there
    escalations = [e for e in env.hooks.events() if e["event_type"] == "incident.escalated"]
    assert len(escalations) == 8
    for body, headers in env.hooks.received:
        assert verify_pagerduty_signature(body, headers["x-pagerduty-signature"], [SECRETS[1]])
    for event in escalations:
        assert event["agent"] is None
        assert event["data"]["number"] == 1
        assert event["data"]["assignees"]


async def test_acknowledging_stops_escalation(env: Env) -> None:
    await env.trigger()
    await env.advance(10)
    [incident] = await env.incidents()
    await env.put(incident["id"], status="acknowledged")
    await env.advance(3600)
    assert levels(env) == [1, 2]
    assert env.hooks.types() == [
        "incident.triggered",
        "incident.escalated",
        "incident.acknowledged",
    ]


# -- webhooks -----------------------------------------------------------------------------------


async def test_webhooks_are_signed_with_every_secret(env: Env) -> None:
    await env.trigger()
    await env.fake.tick()
    [(body, headers)] = env.hooks.received
    signature = headers["x-pagerduty-signature"]
    assert signature.count("v1=") == 2
    assert " " not in signature
    for secret in SECRETS:
        assert verify_pagerduty_signature(body, signature, [secret])
    assert not verify_pagerduty_signature(body, signature, ["other"])
    assert not verify_pagerduty_signature(body + b" ", signature, [SECRETS[0]])
    event = json.loads(body)["event"]
    assert set(event) == {
        "id",
        "event_type",
        "resource_type",
        "occurred_at",
        "agent",
        "client",
        "data",
    }
    assert event["agent"]["type"] == "service_reference"
    data = event["data"]
    assert data["type"] == "incident"
    assert data["number"] == 1
    assert "incident_number" not in data
    assert "assignments" not in data
    assert data["assignees"][0]["type"] == "user_reference"
    assert headers["x-webhook-id"]
    # Entries of other versions are ignored; a v1 entry still has to match.
    assert verify_pagerduty_signature(body, "v0=beef," + signature, [SECRETS[0]])
    assert not verify_pagerduty_signature(body, signature.replace("v1=", "v2="), [SECRETS[0]])


async def test_unsigned_without_secrets_and_silent_without_a_url() -> None:
    hooks = Recorder()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=hooks.app())) as http:
        clock = FrozenClock(T0)
        unsigned = FakePagerDuty(
            clock=clock, api_token=TOKEN, routing_keys=[KEY], webhook_url="http://l/hook", http=http
        )
        silent = FakePagerDuty(clock=clock, api_token=TOKEN, routing_keys=[KEY], http=http)
        for fake in (unsigned, silent):
            async with validating(fake.app, "pagerduty-events") as events:
                body = {
                    "routing_key": KEY,
                    "event_action": "trigger",
                    "payload": {"summary": "s", "source": "x", "severity": "info"},
                }
                assert (await events.post("/v2/enqueue", json=body)).status_code == 202
            await fake.tick()
    [(_, headers)] = hooks.received
    assert "x-pagerduty-signature" not in headers
    assert silent.deliveries == []


async def test_webhooks_retry_in_order_and_drop_on_4xx(env: Env) -> None:
    env.hooks.statuses = [503, 200, 200, 400]
    await env.trigger("group-1")
    await env.trigger("group-2")
    await env.fake.tick()
    assert len(env.hooks.received) == 1  # the second waits behind the first, which is retried
    env.clock.advance(1)
    await env.fake.tick()
    ids = [headers["x-webhook-id"] for _, headers in env.hooks.received]
    assert len(ids) == 3
    assert ids[0] == ids[1] != ids[2]
    assert [d.outcome for d in env.fake.deliveries] == ["delivered", "delivered"]
    await env.event("resolve", "group-1")
    await env.fake.tick()
    assert env.fake.deliveries[-1].outcome == "dropped"
    assert env.fake.deliveries[-1].attempts == 1


# -- on-call and directory ----------------------------------------------------------------------


async def test_oncalls_now_and_next(env: Env) -> None:
    response = await env.rest.get(
        "/oncalls", params={"escalation_policy_ids[]": "PEPPAY1"}, headers=PD_HEADERS
    )
    oncalls = response.json()["oncalls"]
    assert [o["escalation_level"] for o in oncalls] == [1, 2, 3]
    permanent = oncalls[2]
    assert (permanent["user"]["summary"], permanent["start"], permanent["end"]) == (
        "Dana Ito",
        None,
        None,
    )
    assert oncalls[0]["start"] == "2026-03-02T09:00:00Z"  # daily turns from 09:00
    assert oncalls[0]["end"] == "2026-03-03T09:00:00Z"
    week = await env.rest.get(
        "/oncalls",
        params={
            "escalation_policy_ids[]": "PEPPAY1",
            "since": "2026-03-02T10:00:00Z",
            "until": "2026-03-09T10:00:00Z",
            "earliest": "true",
            "include[]": "users",
        },
        headers=PD_HEADERS,
    )
    level_one = [o for o in week.json()["oncalls"] if o["escalation_level"] == 1]
    assert len(level_one) == 3  # three people rotate daily; earliest keeps one shift each
    assert all("@" in o["user"]["email"] for o in level_one)


async def test_schedule_rendered_a_week_ahead(env: Env) -> None:
    response = await env.rest.get(
        "/schedules/PSCHPR1",
        params={"since": "2026-03-02T10:00:00Z", "until": "2026-03-09T10:00:00Z"},
        headers=PD_HEADERS,
    )
    entries = response.json()["schedule"]["final_schedule"]["rendered_schedule_entries"]
    assert len(entries) == 8  # cut at the window: 10:00-09:00, six whole days, 09:00-10:00
    assert entries[0]["start"] == "2026-03-02T10:00:00Z"
    assert entries[-1]["end"] == "2026-03-09T10:00:00Z"
    users = [e["user"]["id"] for e in entries]
    assert users[0] == users[3] != users[1]


async def test_directory_endpoints(env: Env) -> None:
    me = (await env.rest.get("/users/me", headers=PD_HEADERS)).json()["user"]
    assert me["email"] == OPERATOR
    found = await env.rest.get("/users", params={"query": "dana"}, headers=PD_HEADERS)
    assert [u["name"] for u in found.json()["users"]] == ["Dana Ito"]
    policies = (await env.rest.get("/escalation_policies", headers=PD_HEADERS)).json()
    assert {p["name"]: p["num_loops"] for p in policies["escalation_policies"]} == {
        "Payments": 2,
        "Search": 0,
    }
    services = (await env.rest.get("/services", headers=PD_HEADERS)).json()["services"]
    assert [s["name"] for s in services] == ["payment-service", "search"]
    schedules = (await env.rest.get("/schedules", headers=PD_HEADERS)).json()["schedules"]
    assert len(schedules) == 3
    policy = await env.rest.get("/escalation_policies/PEPPAY1", headers=PD_HEADERS)
    rules = policy.json()["escalation_policy"]["escalation_rules"]
    assert [r["escalation_delay_in_minutes"] for r in rules] == [5, 5, 10]


async def test_background_loop_escalates_and_delivers(env: Env) -> None:
    """start() runs tick() on its own: a trigger's webhook arrives without a test calling it."""
    await env.fake.start(interval=0.01)
    await env.trigger()
    for _ in range(200):
        if env.hooks.received:
            break
        await env.clock.sleep(0.01)
    assert env.hooks.types() == ["incident.triggered"]
    env.clock.advance(10)
    for _ in range(200):
        if len(env.hooks.received) == 2:
            break
        await env.clock.sleep(0.01)
    assert env.hooks.types() == ["incident.triggered", "incident.escalated"]
    assert timedelta(seconds=10) == env.clock.now() - T0
