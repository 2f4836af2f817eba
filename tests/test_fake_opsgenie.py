"""The fake Opsgenie answers as Opsgenie does; every exchange is checked against the vendor spec.

Requests here are written by hand (not through our client), so the fake's rules are tested on
their own: GenieKey auth, the envelope on every body, asynchronous processing (202, then 404 on
the request status for `processing_polls` polls, then the outcome), alias deduplication, paging,
rate limiting, and schedules whose on-calls agree with their timeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from spec_check_swagger import SpecViolation, SwaggerSpecValidator, ValidatingTransport

from oncall_tui.clock import FrozenClock
from oncall_tui.sandbox.fake_opsgenie import FakeOpsgenie

KEY = "og-test-key-0001"
AUTH = {"Authorization": f"GenieKey {KEY}"}
START = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def fake(clock: FrozenClock) -> FakeOpsgenie:
    return FakeOpsgenie(clock=clock, api_key=KEY, seed=7, processing_polls=2)


@pytest.fixture
def transport(fake: FakeOpsgenie) -> ValidatingTransport:
    return ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SwaggerSpecValidator.load("opsgenie")
    )


@pytest.fixture
async def http(transport: ValidatingTransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=transport, base_url="https://api.opsgenie.com", headers=AUTH
    ) as client:
        yield client
    assert transport.violations == []


async def create(http: httpx.AsyncClient, **fields: Any) -> str:
    body = {"message": "DiskSlow on db-1", **fields}
    response = await http.post("/v2/alerts", json=body)
    assert response.status_code == 202
    return str(response.json()["requestId"])


async def outcome(http: httpx.AsyncClient, request_id: str, polls: int = 10) -> dict[str, Any]:
    for _ in range(polls):
        response = await http.get(f"/v2/alerts/requests/{request_id}")
        if response.status_code == 200:
            return dict(response.json()["data"])
        assert response.status_code == 404
    raise AssertionError(f"request {request_id} never processed")


async def test_genie_key_is_required_and_errors_carry_the_envelope(
    fake: FakeOpsgenie, transport: ValidatingTransport
) -> None:
    async with httpx.AsyncClient(transport=transport, base_url="https://api.opsgenie.com") as raw:
        transport.check_requests = False  # a request without credentials breaks the spec
        for headers in ({}, {"Authorization": "GenieKey wrong"}, {"Authorization": KEY}):
            response = await raw.get("/v2/alerts", headers=headers)
            assert response.status_code == 401
            body = response.json()
            assert body["message"] == "Could not authenticate"
            assert isinstance(body["took"], float)
            assert response.headers["X-Request-ID"] == body["requestId"]
    assert transport.violations == []


async def test_create_is_asynchronous_404_then_processed(
    fake: FakeOpsgenie, http: httpx.AsyncClient
) -> None:
    response = await http.post("/v2/alerts", json={"message": "DiskSlow", "alias": "grp-1"})
    assert response.status_code == 202
    body = response.json()
    assert body["result"] == "Request will be processed"
    request_id = body["requestId"]
    # Not there yet: Opsgenie has only accepted it.
    assert fake.alerts == []
    statuses = [(await http.get(f"/v2/alerts/requests/{request_id}")).status_code for _ in range(3)]
    assert statuses == [404, 404, 200]
    done = await outcome(http, request_id)
    assert done["isSuccess"] is True
    assert done["action"] == "Create"
    assert done["status"] == "Created alert"
    assert done["alias"] == "grp-1"
    alert = (await http.get(f"/v2/alerts/{done['alertId']}")).json()["data"]
    assert alert["message"] == "DiskSlow"
    assert alert["status"] == "open"
    assert alert["acknowledged"] is False
    assert alert["priority"] == "P3"  # Opsgenie's default
    assert alert["tinyId"] == "1"
    assert alert["count"] == 1
    # The same alert by alias and by tiny id.
    by_alias = await http.get("/v2/alerts/grp-1", params={"identifierType": "alias"})
    by_tiny = await http.get("/v2/alerts/1", params={"identifierType": "tiny"})
    assert by_alias.json()["data"]["id"] == by_tiny.json()["data"]["id"] == alert["id"]


async def test_a_request_is_also_processed_once_it_has_waited_long_enough(
    fake: FakeOpsgenie, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """Nobody may poll (Alertmanager never does): queued work still happens in time."""
    request_id = await create(http, alias="quiet")
    clock.advance(5)
    response = await http.get(f"/v2/alerts/requests/{request_id}")
    assert response.status_code == 200
    assert [a.alias for a in fake.alerts] == ["quiet"]


async def test_unknown_request_and_alert_are_404_with_the_envelope(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/v2/alerts/requests/no-such-request")
    assert response.status_code == 404
    assert set(response.json()) == {"message", "took", "requestId"}
    response = await http.get("/v2/alerts/no-such-alert")
    assert response.status_code == 404
    assert response.json()["message"] == "Alert does not exist"


async def test_same_alias_while_open_counts_instead_of_creating(
    fake: FakeOpsgenie, http: httpx.AsyncClient
) -> None:
    first = await create(http, alias="group-a", priority="P2", tags=["team:platform"])
    second = await create(http, alias="group-a")
    one, two = await outcome(http, first), await outcome(http, second)
    assert one["alertId"] == two["alertId"]
    assert two["status"] == "Alert is deduplicated"
    alerts = (await http.get("/v2/alerts", params={"query": "alias=group-a"})).json()["data"]
    assert [(a["count"], a["priority"], a["tags"]) for a in alerts] == [
        (2, "P2", ["team:platform"])
    ]
    # Once closed, the alias starts a new alert.
    closing = await http.post(
        "/v2/alerts/group-a/close", params={"identifierType": "alias"}, json={"source": "am"}
    )
    assert (await outcome(http, closing.json()["requestId"]))["isSuccess"] is True
    third = await outcome(http, await create(http, alias="group-a"))
    assert third["alertId"] != one["alertId"]
    assert len(fake.alerts) == 2


async def test_actions_change_the_alert_once_processed(
    fake: FakeOpsgenie, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    alert_id = (await outcome(http, await create(http)))["alertId"]
    clock.advance(90)
    ack = await http.post(
        f"/v2/alerts/{alert_id}/acknowledge", json={"user": "ava.moreau@example.com"}
    )
    assert ack.status_code == 202
    assert (await http.get(f"/v2/alerts/{alert_id}")).json()["data"]["acknowledged"] is False
    assert (await outcome(http, ack.json()["requestId"]))["status"] == "Acknowledged alert"
    note = await http.post(f"/v2/alerts/{alert_id}/notes", json={"note": "looking", "user": "ava"})
    await outcome(http, note.json()["requestId"])
    escalate = await http.post(
        f"/v2/alerts/{alert_id}/escalate",
        json={"escalation": {"type": "escalation", "name": "platform_escalation"}},
    )
    await outcome(http, escalate.json()["requestId"])
    close = await http.post(f"/v2/alerts/{alert_id}/close", json={"user": "ben", "note": "fixed"})
    await outcome(http, close.json()["requestId"])
    alert = (await http.get(f"/v2/alerts/{alert_id}")).json()["data"]
    assert alert["acknowledged"] is True
    assert alert["owner"] == "ava.moreau@example.com"
    assert alert["status"] == "closed"
    assert alert["report"]["ackTime"] == 90_000
    assert alert["report"]["acknowledgedBy"] == "ava.moreau@example.com"
    assert alert["report"]["closedBy"] == "ben"
    escalation_id = fake.directory.escalations[0].id
    assert {"type": "escalation", "id": escalation_id} in alert["responders"]
    notes = (await http.get(f"/v2/alerts/{alert_id}/notes", params={"order": "asc"})).json()
    assert [(n["note"], n["owner"]) for n in notes["data"]] == [
        ("looking", "ava"),
        ("fixed", "ben"),
    ]


async def test_an_action_on_a_missing_alert_fails_only_in_its_request_status(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/v2/alerts/not-there/acknowledge", json={})
    assert response.status_code == 202
    done = await outcome(http, response.json()["requestId"])
    assert done["isSuccess"] is False
    assert done["status"] == "Alert does not exist"
    bad_escalation = await http.post(
        f"/v2/alerts/{(await outcome(http, await create(http)))['alertId']}/escalate",
        json={"escalation": {"type": "escalation", "name": "nobody"}},
    )
    assert (await outcome(http, bad_escalation.json()["requestId"]))["isSuccess"] is False


async def test_invalid_writes_are_refused_at_once(
    http: httpx.AsyncClient, transport: ValidatingTransport
) -> None:
    transport.check_requests = False  # these requests break the spec on purpose
    assert (await http.post("/v2/alerts", json={"message": " "})).status_code == 422
    assert (
        await http.post("/v2/alerts", json={"message": "x", "priority": "P9"})
    ).status_code == 422
    assert (await http.post("/v2/alerts/x/notes", json={"user": "a"})).status_code == 422
    escalate = await http.post("/v2/alerts/x/escalate", json={"escalation": {"type": "escalation"}})
    assert escalate.status_code == 422
    assert (await http.get("/v2/alerts", params={"limit": 101})).status_code == 422
    assert (await http.get("/v2/alerts", params={"query": "nosuchfield=1"})).status_code == 422


async def test_list_pages_sorts_and_filters(fake: FakeOpsgenie, http: httpx.AsyncClient) -> None:
    for index in range(5):
        await create(http, message=f"alert {index}", alias=f"a{index}")
    # Each request steps the queue: the first three were processed by the later creates.
    assert fake.process_pending() == 2
    assert len(fake.alerts) == 5
    first = await http.get("/v2/alerts", params={"limit": 2})
    page = first.json()
    assert [a["message"] for a in page["data"]] == ["alert 4", "alert 3"]  # newest first
    assert "offset=2" in page["paging"]["next"]
    assert first.headers["X-Paging-Next"] == page["paging"]["next"]
    assert "prev" not in page["paging"]
    last = (await http.get("/v2/alerts", params={"limit": 2, "offset": 4})).json()
    assert [a["message"] for a in last["data"]] == ["alert 0"]
    assert "next" not in last["paging"]
    ascending = await http.get("/v2/alerts", params={"sort": "tinyId", "order": "asc"})
    assert [a["tinyId"] for a in ascending.json()["data"]] == ["1", "2", "3", "4", "5"]
    fake.alerts[0].acknowledged = True
    acked = await http.get("/v2/alerts", params={"query": "status=open AND acknowledged=true"})
    assert [a["alias"] for a in acked.json()["data"]] == ["a0"]
    words = await http.get("/v2/alerts", params={"query": "3"})
    assert [a["alias"] for a in words.json()["data"]] == ["a3"]


async def test_throttled_answers_are_429_with_rate_limit_headers(
    fake: FakeOpsgenie, http: httpx.AsyncClient
) -> None:
    fake.throttle(1)
    response = await http.get("/v2/alerts")
    assert response.status_code == 429
    assert response.headers["X-RateLimit-State"] == "THROTTLED"
    assert response.headers["X-RateLimit-Period-In-Sec"] == "60"
    assert {"took", "requestId", "message"} <= set(response.json())
    assert (await http.get("/v2/alerts")).status_code == 200


async def test_oncalls_next_and_timeline_agree(fake: FakeOpsgenie, http: httpx.AsyncClient) -> None:
    schedules = (await http.get("/v2/schedules", params={"expand": "rotation"})).json()
    assert schedules["expandable"] == ["rotation"]
    names = [s["name"] for s in schedules["data"]]
    assert names == ["platform_schedule", "search_schedule"]
    assert all(s["rotations"][0]["participants"] for s in schedules["data"])
    name_params = {"scheduleIdentifierType": "name"}
    now = (await http.get("/v2/schedules/search_schedule/on-calls", params=name_params)).json()
    nxt = (await http.get("/v2/schedules/search_schedule/next-on-calls", params=name_params)).json()
    flat = await http.get(
        "/v2/schedules/search_schedule/on-calls", params={**name_params, "flat": "true"}
    )
    schedule_id = schedules["data"][1]["id"]
    timeline = await http.get(
        f"/v2/schedules/{schedule_id}/timeline",
        params={"interval": 3, "intervalUnit": "days", "date": "2026-03-04T10:30:00Z"},
    )
    periods = timeline.json()["data"]["finalTimeline"]["rotations"][0]["periods"]
    current, following = periods[0], periods[1]
    assert now["data"]["_parent"]["name"] == "search_schedule"
    assert now["data"]["onCallParticipants"] == [current["recipient"]]
    assert nxt["data"]["nextOnCallRecipients"] == [following["recipient"]]
    assert flat.json()["data"]["onCallRecipients"] == [current["recipient"]["name"]]
    # Daily handover at 09:00 UTC: the current shift started today and ends tomorrow.
    assert current["startDate"] == "2026-03-04T10:30:00.000Z"  # clipped to the window
    assert current["endDate"] == "2026-03-05T09:00:00.000Z"
    assert len(periods) == 4  # 10:30 today -> 10:30 in three days crosses three handovers
    tomorrow = (START + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = await http.get(
        "/v2/schedules/search_schedule/on-calls", params={**name_params, "date": tomorrow}
    )
    assert later.json()["data"]["onCallParticipants"] == [following["recipient"]]
    assert (await http.get("/v2/schedules/nope/on-calls")).status_code == 404


async def test_escalations_name_their_schedules(
    fake: FakeOpsgenie, http: httpx.AsyncClient
) -> None:
    data = (await http.get("/v2/escalations")).json()["data"]
    assert [e["name"] for e in data] == ["platform_escalation", "search_escalation"]
    rules = data[0]["rules"]
    assert [r["recipient"]["name"] for r in rules] == ["platform_schedule", "search_schedule"]
    assert [r["delay"]["timeAmount"] for r in rules] == [0, 10]


def test_the_checker_refuses_fields_opsgenie_does_not_return() -> None:
    """The fake is held to the spec's fields; the checker must therefore notice invented ones."""
    validator = SwaggerSpecValidator.load("opsgenie")
    request = httpx.Request("GET", "https://api.opsgenie.com/v2/alerts/abc", headers=AUTH)
    body = {"data": {"id": "abc", "url": "https://example"}, "took": 0.1, "requestId": "r"}
    with pytest.raises(SpecViolation, match=r"data\.url"):
        validator.check_response(request, httpx.Response(200, json=body, request=request))
    missing_envelope = {"message": "Alert does not exist"}
    with pytest.raises(SpecViolation, match="requestId"):
        validator.check_response(
            request, httpx.Response(404, json=missing_envelope, request=request)
        )
    # Nulls are tolerated in answers (the spec marks almost nothing nullable).
    validator.check_response(
        request,
        httpx.Response(
            200, json={"data": {"id": "abc", "owner": None}, "took": 0, "requestId": "r"}
        ),
    )
