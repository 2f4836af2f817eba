"""The spec checker itself: it must pass what the vendors send and catch what they never would."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from spec_check import SpecValidator, SpecViolation, ValidatingTransport
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

PD_HEADERS = {
    "Authorization": "Token token=test-token",
    "Accept": "application/vnd.pagerduty+json;version=2",
    "Content-Type": "application/json",
}

REFERENCE = {
    "type": "service_reference",
    "id": "PSVC",
    "summary": "s",
    "self": "x",
    "html_url": "y",
}

INCIDENT: dict[str, Any] = {
    "id": "PINC1",
    "type": "incident",
    "summary": "[#1] disk full",
    "self": "https://api.pagerduty.com/incidents/PINC1",
    "html_url": "https://example.pagerduty.com/incidents/PINC1",
    "incident_number": 1,
    "title": "disk full",
    "created_at": "2026-01-01T00:00:00Z",
    "status": "triggered",
    "incident_key": "abc",
    "service": REFERENCE,
    "assignments": [],
    "acknowledgements": [],
    "last_status_change_at": "2026-01-01T00:00:00Z",
    "resolved_at": None,  # the real API sends null here; the spec does not say nullable
    "urgency": "high",
    "priority": None,
    "escalation_policy": {"id": "PEP", "type": "escalation_policy_reference"},
}


def pd_app(incident: dict[str, Any]) -> Starlette:
    async def get_incident(request: Request) -> Response:
        return JSONResponse({"incident": incident})

    async def put_incident(request: Request) -> Response:
        return JSONResponse({"incident": incident})

    return Starlette(
        routes=[
            Route("/incidents/{id}", get_incident, methods=["GET"]),
            Route("/incidents/{id}", put_incident, methods=["PUT"]),
        ]
    )


def client_for(app: Starlette, name: Any, *, mount: str = "") -> httpx.AsyncClient:
    transport = ValidatingTransport(
        httpx.ASGITransport(app=app), SpecValidator.load(name), mount=mount
    )
    return httpx.AsyncClient(transport=transport, base_url="http://fake.test")


async def test_valid_exchange_passes_with_vendor_nulls() -> None:
    async with client_for(pd_app(INCIDENT), "pagerduty-rest") as http:
        response = await http.get("/incidents/PINC1", headers=PD_HEADERS)
    assert response.json()["incident"]["id"] == "PINC1"
    transport = http._transport
    assert isinstance(transport, ValidatingTransport)
    assert transport.violations == []
    assert transport.exchanges == [("GET", "/incidents/PINC1", 200)]


async def test_response_outside_the_schema_is_caught_and_recorded() -> None:
    async with client_for(pd_app({**INCIDENT, "status": "open"}), "pagerduty-rest") as http:
        with pytest.raises(SpecViolation, match=r"incident/status.*'open'"):
            await http.get("/incidents/PINC1", headers=PD_HEADERS)
    transport = http._transport
    assert isinstance(transport, ValidatingTransport)
    assert len(transport.violations) == 1
    assert "GET /incidents/PINC1 response 200" in str(transport.violations[0])


async def test_invented_response_fields_are_caught() -> None:
    invented = {**INCIDENT, "dedup_key": "abc", "service": {**REFERENCE, "owner": "me"}}
    async with client_for(pd_app(invented), "pagerduty-rest") as http:
        with pytest.raises(SpecViolation) as caught:
            await http.get("/incidents/PINC1", headers=PD_HEADERS)
    assert "incident.dedup_key" in str(caught.value)
    assert "incident.service.owner" in str(caught.value)


async def test_write_without_from_header_is_caught() -> None:
    body = {"incident": {"type": "incident_reference", "status": "acknowledged"}}
    async with client_for(pd_app(INCIDENT), "pagerduty-rest") as http:
        with pytest.raises(SpecViolation, match="From"):
            await http.put("/incidents/PINC1", headers=PD_HEADERS, json=body)
        await http.put(
            "/incidents/PINC1", headers={**PD_HEADERS, "From": "a@example.com"}, json=body
        )


async def test_missing_token_is_caught() -> None:
    headers = {k: v for k, v in PD_HEADERS.items() if k != "Authorization"}
    async with client_for(pd_app(INCIDENT), "pagerduty-rest") as http:
        with pytest.raises(SpecViolation, match="api_key"):
            await http.get("/incidents/PINC1", headers=headers)


async def test_reassign_with_references_is_valid() -> None:
    """The *Reference readOnly strip (API-NOTES section 0) lets a real reassign request through."""
    assignee = {"assignee": {"id": "PUSER", "type": "user_reference"}}
    body = {"incident": {"type": "incident_reference", "assignments": [assignee]}}
    policy = {
        "incident": {
            "type": "incident_reference",
            "escalation_policy": REFERENCE | {"type": "escalation_policy_reference"},
        }
    }
    headers = {**PD_HEADERS, "From": "a@example.com"}
    async with client_for(pd_app(INCIDENT), "pagerduty-rest") as http:
        await http.put("/incidents/PINC1", headers=headers, json=body)
        await http.put("/incidents/PINC1", headers=headers, json=policy)


async def test_requests_do_not_get_the_null_relaxation() -> None:
    body = {"incident": {"type": "incident_reference", "status": None}}
    async with client_for(pd_app(INCIDENT), "pagerduty-rest") as http:
        with pytest.raises(SpecViolation, match="status"):
            await http.put(
                "/incidents/PINC1", headers={**PD_HEADERS, "From": "a@example.com"}, json=body
            )


def events_app(status: int, body: dict[str, Any]) -> Starlette:
    async def enqueue(request: Request) -> Response:
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/v2/enqueue", enqueue, methods=["POST"])])


async def test_events_path_and_mount_prefix() -> None:
    answer = {"status": "success", "message": "Event processed", "dedup_key": "k"}
    app = Starlette(routes=[Mount("/pagerduty", app=events_app(202, answer))])
    event = {
        "routing_key": "r" * 32,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "host", "severity": "critical"},
    }
    async with client_for(app, "pagerduty-events", mount="/pagerduty") as http:
        response = await http.post("/pagerduty/v2/enqueue", json=event)
        assert response.status_code == 202
        with pytest.raises(SpecViolation, match="event_action"):
            await http.post("/pagerduty/v2/enqueue", json={**event, "event_action": "poke"})
        with pytest.raises(SpecViolation, match="outside /pagerduty"):
            await http.post("/v2/enqueue", json=event)


async def test_statuspage_rate_limit_answers_are_not_validated() -> None:
    async def components(request: Request) -> Response:
        if request.query_params.get("page") == "2":
            return PlainTextResponse("You are being rate limited", status_code=420)
        return JSONResponse([{"id": "c1", "name": "API", "status": "operational"}])

    app = Starlette(routes=[Route("/v1/pages/{page_id}/components", components)])
    async with client_for(app, "statuspage") as http:
        headers = {"Authorization": "OAuth key"}
        ok = await http.get("/v1/pages/p1/components", params={"page": 1}, headers=headers)
        limited = await http.get("/v1/pages/p1/components", params={"page": 2}, headers=headers)
    assert (ok.status_code, limited.status_code) == (200, 420)


def test_validators_are_cached() -> None:
    assert SpecValidator.load("statuspage") is SpecValidator.load("statuspage")


async def test_undeclared_error_status_is_checked_against_the_shared_error_body() -> None:
    """PUT /incidents/{id} declares no 400, yet PagerDuty answers 1002 "Already Acknowledged"."""
    answers = iter(
        [
            {"error": {"code": 1002, "message": "Incident Already Acknowledged", "errors": []}},
            {"message": "Incident Already Acknowledged"},
        ]
    )

    async def put_incident(request: Request) -> Response:
        return JSONResponse(next(answers), status_code=400)

    app = Starlette(routes=[Route("/incidents/{id}", put_incident, methods=["PUT"])])
    body = {"incident": {"type": "incident_reference", "status": "acknowledged"}}
    headers = {**PD_HEADERS, "From": "a@example.com"}
    async with client_for(app, "pagerduty-rest") as http:
        response = await http.put("/incidents/PINC1", headers=headers, json=body)
        assert response.status_code == 400
        with pytest.raises(SpecViolation, match="not PagerDuty's error body"):
            await http.put("/incidents/PINC1", headers=headers, json=body)
