"""sandbox/fake_statuspage.py answers as the vendor does, checked against the published spec.

Raw HTTP (not our client) goes through `ValidatingTransport`, so the fake's answers are validated
against the Statuspage spec and checked for fields the vendor does not document. Where a test
sends a request the spec itself forbids (no credentials, the `.json` suffix), the request goes
straight to the fake and only the answer is validated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from spec_check import SpecValidator, SpecViolation, ValidatingTransport

from oncall_tui.clock import FrozenClock
from oncall_tui.sandbox.fake_statuspage import FakeStatuspage
from oncall_tui.webhooks import WebhookServer

API_KEY = "sp-test-key-8e1d0c7a55"
PAGE_ID = "pgq4n8z2m6t1"
BASE = "http://statuspage.test"
ROOT = f"/v1/pages/{PAGE_ID}"
COMPONENTS = {"payment-service": "cmppayment01", "search": "cmpsearch001"}
PAYMENT = COMPONENTS["payment-service"]
SEARCH = COMPONENTS["search"]
START = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


@dataclass
class Harness:
    clock: FrozenClock
    fake: FakeStatuspage
    transport: ValidatingTransport
    http: httpx.AsyncClient

    async def create(self, **fields: Any) -> dict[str, Any]:
        incident = {"name": "Payments failing", "status": "investigating", **fields}
        response = await self.http.post(f"{ROOT}/incidents", json={"incident": incident})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def patch(self, incident_id: str, **fields: Any) -> dict[str, Any]:
        response = await self.http.patch(
            f"{ROOT}/incidents/{incident_id}", json={"incident": fields}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def sp() -> AsyncIterator[Harness]:
    clock = FrozenClock(START)
    fake = FakeStatuspage(clock=clock, api_key=API_KEY, page_id=PAGE_ID, components=COMPONENTS)
    transport = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SpecValidator.load("statuspage")
    )
    headers = {"Authorization": f"OAuth {API_KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
        yield Harness(clock, fake, transport, http)
    assert transport.violations == []


async def raw(fake: FakeStatuspage, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A request the spec does not describe, sent past the validator; the answer is checked."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as http:
        response = await http.request(method, BASE + url, **kwargs)
    return response


def check_answer(response: httpx.Response, method: str, path: str) -> None:
    """Validate an answer as if it had come for the spec's own (suffix-less) path."""
    SpecValidator.load("statuspage").check_response(httpx.Request(method, BASE + path), response)


# -- auth ------------------------------------------------------------------------------------


async def test_a_wrong_key_gets_401_error_entity(sp: Harness) -> None:
    response = await sp.http.get(
        f"{ROOT}/components", headers={"Authorization": "OAuth sp-not-the-key"}
    )

    assert response.status_code == 401
    assert response.json() == {"message": "Could not authenticate"}


async def test_no_key_gets_401_and_the_spec_calls_such_a_request_invalid(sp: Harness) -> None:
    response = await raw(sp.fake, "GET", f"{ROOT}/components")
    check_answer(response, "GET", f"{ROOT}/components")
    assert response.status_code == 401

    async with httpx.AsyncClient(transport=sp.transport, base_url=BASE) as anonymous:
        with pytest.raises(SpecViolation):
            await anonymous.get(f"{ROOT}/components")
    sp.transport.violations.clear()
    # A Bearer token is not the vendor's scheme, even with the right key.
    bearer = await raw(
        sp.fake, "GET", f"{ROOT}/components", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert bearer.status_code == 401


async def test_the_key_may_be_a_query_parameter(sp: Harness) -> None:
    response = await raw(sp.fake, "GET", f"{ROOT}/components", params={"api_key": API_KEY})

    check_answer(response, "GET", f"{ROOT}/components")
    assert [c["id"] for c in response.json()] == [PAYMENT, SEARCH]


async def test_paths_with_the_json_suffix_answer_the_same(sp: Harness) -> None:
    plain = await sp.http.get(f"{ROOT}/components")
    suffixed = await raw(
        sp.fake,
        "GET",
        f"{ROOT}/components.json",
        headers={"Authorization": f"OAuth {API_KEY}"},
    )

    check_answer(suffixed, "GET", f"{ROOT}/components")
    assert suffixed.json() == plain.json()


# -- components ------------------------------------------------------------------------------


async def test_components_are_a_bare_array_paged_at_most_100(sp: Harness) -> None:
    for number in range(148):
        sp.fake.add_component(f"edge-{number:03d}")

    first = await sp.http.get(f"{ROOT}/components", params={"per_page": 500})
    second = await sp.http.get(f"{ROOT}/components", params={"page": 2, "per_page": 100})
    small = await sp.http.get(f"{ROOT}/components", params={"page": 3, "per_page": 7})
    past = await sp.http.get(f"{ROOT}/components", params={"page": 9})

    assert isinstance(first.json(), list)
    assert len(first.json()) == 100
    assert len(second.json()) == 50
    assert [c["name"] for c in small.json()] == [f"edge-{n:03d}" for n in range(12, 19)]
    assert past.json() == []
    assert [c["position"] for c in first.json()[:3]] == [1, 2, 3]


async def test_component_answers_carry_the_vendor_fields(sp: Harness) -> None:
    response = await sp.http.get(f"{ROOT}/components/{PAYMENT}")

    component = response.json()
    assert component["id"] == PAYMENT
    assert component["page_id"] == PAGE_ID
    assert component["status"] == "operational"
    assert component["group_id"] is None
    assert component["group"] is False
    assert set(component) >= {"created_at", "updated_at", "position", "showcase"}


async def test_patch_component_changes_status_and_updated_at(sp: Harness) -> None:
    sp.clock.advance(90)

    response = await sp.http.patch(
        f"{ROOT}/components/{SEARCH}", json={"component": {"status": "partial_outage"}}
    )

    assert response.status_code == 200
    assert response.json()["status"] == "partial_outage"
    assert response.json()["updated_at"] == "2026-03-01T02:01:30.000Z"
    assert sp.fake.component_status(SEARCH) == "partial_outage"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (f"components/{SEARCH}", {"component": {"status": "broken"}}, 422, "must be one of"),
        (f"components/{SEARCH}", {"status": "major_outage"}, 422, "component"),
        (f"components/{SEARCH}", {"component": {"name": ""}}, 422, "blank"),
        ("components/nosuchcomp01", {"component": {"status": "major_outage"}}, 404, "found"),
    ],
)
async def test_bad_component_updates_get_error_entities(
    sp: Harness, path: str, body: dict[str, Any], status: int, message: str
) -> None:
    if status == 422 and "status" in body.get("component", {}):
        # The spec's own enum catches this one in the request: send it past the validator.
        response = await raw(sp.fake, "PATCH", f"{ROOT}/{path}", json=body, headers=sp.http.headers)
        check_answer(response, "PATCH", f"{ROOT}/{path}")
    else:
        response = await sp.http.patch(f"{ROOT}/{path}", json=body)

    assert response.status_code == status
    assert message in response.json()["message"]
    assert sp.fake.component_status(SEARCH) == "operational"


async def test_another_page_is_not_found(sp: Harness) -> None:
    response = await sp.http.get("/v1/pages/someoneelse1/incidents")

    assert response.status_code == 404
    assert "could not be found" in response.json()["message"]


# -- incidents -------------------------------------------------------------------------------


async def test_create_answers_201_with_the_first_update_and_applies_components(
    sp: Harness,
) -> None:
    incident = await sp.create(
        body="We are investigating failed payments.",
        components={PAYMENT: "partial_outage"},
        component_ids=[PAYMENT],
        metadata={"oncall_tui": {"component": "payment-service"}},
    )

    assert incident["status"] == "investigating"
    assert incident["impact"] == "major"  # partial_outage
    assert incident["impact_override"] is None
    assert incident["created_at"] == "2026-03-01T02:00:00.000Z"
    assert incident["resolved_at"] is None
    assert incident["metadata"] == {"oncall_tui": {"component": "payment-service"}}
    assert incident["shortlink"].startswith("https://stspg.io/")
    assert [c["id"] for c in incident["components"]] == [PAYMENT]
    assert incident["components"][0]["status"] == "partial_outage"
    [update] = incident["incident_updates"]
    assert update["body"] == "We are investigating failed payments."
    assert update["status"] == "investigating"
    assert update["incident_id"] == incident["id"]
    assert update["affected_components"] == [
        {
            "code": PAYMENT,
            "name": "payment-service",
            "old_status": "operational",
            "new_status": "partial_outage",
        }
    ]
    assert sp.fake.component_status(PAYMENT) == "partial_outage"
    assert sp.fake.component_status(SEARCH) == "operational"


async def test_each_status_or_body_change_appends_an_update_newest_first(sp: Harness) -> None:
    incident = await sp.create(body="Investigating.", components={PAYMENT: "major_outage"})
    sp.clock.advance(60)
    await sp.patch(incident["id"], status="identified")
    sp.clock.advance(60)
    await sp.patch(incident["id"], body="Rollback in progress.")
    sp.clock.advance(60)
    await sp.patch(incident["id"], name="Payments failing in EU")
    await sp.patch(incident["id"], components={SEARCH: "degraded_performance"})
    sp.clock.advance(60)
    monitoring = await sp.patch(incident["id"], status="monitoring", body="Fix deployed.")
    sp.clock.advance(60)
    resolved = await sp.patch(
        incident["id"],
        status="resolved",
        body="Resolved.",
        components={PAYMENT: "operational", SEARCH: "operational"},
    )

    updates = resolved["incident_updates"]
    assert [(u["status"], u["body"]) for u in updates] == [
        ("resolved", "Resolved."),
        ("monitoring", "Fix deployed."),
        ("identified", "Rollback in progress."),
        ("identified", ""),
        ("investigating", "Investigating."),
    ]
    assert [u["created_at"][11:16] for u in updates] == [
        "02:05",
        "02:04",
        "02:02",
        "02:01",
        "02:00",
    ]
    assert resolved["name"] == "Payments failing in EU"
    assert monitoring["monitoring_at"] == "2026-03-01T02:04:00.000Z"
    assert resolved["monitoring_at"] == monitoring["monitoring_at"]
    assert resolved["resolved_at"] == "2026-03-01T02:05:00.000Z"
    assert resolved["impact"] == "critical"  # stays what the outage was
    assert {c["id"]: c["status"] for c in resolved["components"]} == {
        PAYMENT: "operational",
        SEARCH: "operational",
    }
    assert [a["code"] for a in updates[0]["affected_components"]] == [PAYMENT, SEARCH]
    assert updates[1]["affected_components"] is None


async def test_impact_override_wins_over_the_derived_impact(sp: Harness) -> None:
    incident = await sp.create(impact_override="minor", components={PAYMENT: "major_outage"})
    assert incident["impact"] == "minor"
    assert incident["impact_override"] == "minor"

    updated = await sp.patch(incident["id"], impact_override="critical")
    assert updated["impact"] == "critical"


async def test_unresolved_lists_open_incidents_newest_first(sp: Harness) -> None:
    first = await sp.create(name="First")
    sp.clock.advance(1)
    second = await sp.create(name="Second")
    sp.clock.advance(1)
    third = await sp.create(name="Third")
    await sp.patch(second["id"], status="resolved", body="Done.")

    unresolved = await sp.http.get(f"{ROOT}/incidents/unresolved")
    paged = await sp.http.get(f"{ROOT}/incidents/unresolved", params={"page": 2, "per_page": 1})
    everything = await sp.http.get(f"{ROOT}/incidents")

    assert [i["id"] for i in unresolved.json()] == [third["id"], first["id"]]
    assert [i["id"] for i in paged.json()] == [first["id"]]
    assert [i["id"] for i in everything.json()] == [third["id"], second["id"], first["id"]]


async def test_incident_search_and_limit(sp: Harness) -> None:
    for number in range(5):
        sp.clock.advance(1)
        await sp.create(name=f"Incident {number}", body=f"update text {number}")

    found = await sp.http.get(f"{ROOT}/incidents", params={"q": "TEXT 3"})
    limited = await sp.http.get(f"{ROOT}/incidents", params={"limit": 2, "page": 2})

    assert [i["name"] for i in found.json()] == ["Incident 3"]
    assert [i["name"] for i in limited.json()] == ["Incident 2", "Incident 1"]


async def test_get_one_incident(sp: Harness) -> None:
    incident = await sp.create(body="Hello.")

    response = await sp.http.get(f"{ROOT}/incidents/{incident['id']}")

    assert response.json() == incident
    assert sp.fake.incident(incident["id"]) == incident


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "  ", "status": "investigating"}, "Name can't be blank"),
        ({"name": "x" * 256}, "too long"),
        ({"name": "x", "components": {PAYMENT: "on_fire"}}, f"[components][{PAYMENT}]"),
        ({"name": "x", "components": {"nosuchcomp01": "major_outage"}}, "nosuchcomp01"),
        ({"name": "x", "component_ids": ["nosuchcomp01"]}, "nosuchcomp01"),
        ({"name": "x", "metadata": {"team": "platform"}}, "must be objects"),
        ({"name": "x", "body": "y" * 25001}, "too long"),
    ],
)
async def test_invalid_incidents_get_422_and_change_nothing(
    sp: Harness, fields: dict[str, Any], message: str
) -> None:
    response = await sp.http.post(f"{ROOT}/incidents", json={"incident": fields})

    assert response.status_code == 422
    assert message in response.json()["message"]
    assert sp.fake.incident_ids == []
    assert sp.fake.component_status(PAYMENT) == "operational"


async def test_create_without_the_wrapper_or_json_is_refused(sp: Harness) -> None:
    unwrapped = await sp.http.post(f"{ROOT}/incidents", json={"name": "x"})
    not_json = await raw(
        sp.fake,
        "POST",
        f"{ROOT}/incidents",
        content=b"incident[name]=x{",
        headers={**sp.http.headers, "Content-Type": "application/json"},
    )
    check_answer(not_json, "POST", f"{ROOT}/incidents")

    assert unwrapped.status_code == 422
    assert not_json.status_code == 400
    assert sp.fake.incident_ids == []


# -- rate limiting ---------------------------------------------------------------------------


async def test_rate_limit_switch_allows_60_requests_per_rolling_minute(sp: Harness) -> None:
    sp.fake.rate_limit = True
    for _ in range(30):
        assert (await sp.http.get(f"{ROOT}/components")).status_code == 200
    sp.clock.advance(30)
    for _ in range(30):
        assert (await sp.http.get(f"{ROOT}/components")).status_code == 200

    limited = await sp.http.get(f"{ROOT}/components")
    sp.clock.advance(30)  # the first 30 leave the window
    after = [(await sp.http.get(f"{ROOT}/components")).status_code for _ in range(31)]

    assert limited.status_code == 420
    assert after == [200] * 30 + [420]


async def test_forced_rate_limit_answers(sp: Harness) -> None:
    sp.fake.fail_next(1, status=429)
    sp.fake.fail_next(1)

    codes = [(await sp.http.get(f"{ROOT}/components")).status_code for _ in range(3)]

    assert codes == [429, 420, 200]
    with pytest.raises(ValueError, match="420 or 429"):
        sp.fake.fail_next(1, status=503)


async def test_forced_answers_are_not_spent_on_unauthenticated_requests(sp: Harness) -> None:
    sp.fake.fail_next(1)

    anonymous = await raw(sp.fake, "GET", f"{ROOT}/components")
    limited = await sp.http.get(f"{ROOT}/components")

    assert anonymous.status_code == 401
    assert limited.status_code == 420


async def test_same_seed_same_ids(sp: Harness) -> None:
    other = FakeStatuspage(clock=sp.clock, api_key=API_KEY, page_id=PAGE_ID, components=COMPONENTS)
    async with httpx.AsyncClient(
        transport=ValidatingTransport(
            httpx.ASGITransport(app=other.app), SpecValidator.load("statuspage")
        ),
        base_url=BASE,
        headers=sp.http.headers,
    ) as http:
        again = await http.post(f"{ROOT}/incidents", json={"incident": {"name": "x"}})
    first = await sp.create(name="x")

    assert again.json()["id"] == first["id"]
    assert len(first["id"]) == 12


async def test_served_on_loopback_it_answers_the_same_over_real_http() -> None:
    """As the sandbox serves it: uvicorn on 127.0.0.1, a free port, a real socket (420 included)."""
    clock = FrozenClock(START)
    fake = FakeStatuspage(clock=clock, api_key=API_KEY, page_id=PAGE_ID, components=COMPONENTS)
    server = WebhookServer(fake.app, "127.0.0.1", 0)
    await server.start()
    try:
        transport = ValidatingTransport(
            httpx.AsyncHTTPTransport(), SpecValidator.load("statuspage")
        )
        headers = {"Authorization": f"OAuth {API_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url=f"http://{server.address}", headers=headers
        ) as http:
            fake.fail_next(1)
            limited = await http.get(f"{ROOT}/components")
            created = await http.post(f"{ROOT}/incidents", json={"incident": {"name": "x"}})
    finally:
        await server.stop()

    assert limited.status_code == 420
    assert created.status_code == 201
    assert transport.violations == []
