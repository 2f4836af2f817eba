"""The Alertmanager stand-in answers like the real 0.25 binary for everything oncall-tui uses.

Each behavioural test runs twice: against the stand-in (in-process through ASGITransport) and
against Debian's real Alertmanager on a free loopback port, with the same assertions, so the
stand-in cannot drift from the binary it imitates.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from am_harness import alertmanager_binary

from oncall_tui.clock import FrozenClock, SystemClock
from oncall_tui.sandbox.alertmanager_process import AlertmanagerProcess, alertmanager_config_yaml
from oncall_tui.sandbox.standin import (
    StandinAlertmanager,
    fingerprint,
    format_time,
    group_key,
    parse_time,
)

ALERT: dict[str, Any] = {
    "labels": {"alertname": "ServiceDown", "service": "payment", "severity": "critical"},
    "annotations": {"summary": "payment is down"},
    "generatorURL": "http://prometheus.example/graph",
}


@pytest.fixture(params=["standin", pytest.param("real", marks=pytest.mark.alertmanager)])
async def am(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    if request.param == "standin":
        standin = StandinAlertmanager(clock=SystemClock())
        transport = httpx.ASGITransport(app=standin.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://standin") as client:
            yield client
        return
    binary = alertmanager_binary()  # skips without the binary (fails under CI)
    config = alertmanager_config_yaml(webhook_url=None)
    process = AlertmanagerProcess(binary, tmp_path / "am", config)
    await process.start()
    try:
        async with httpx.AsyncClient(base_url=process.url, timeout=5.0) as client:
            yield client
    finally:
        await process.stop()


def _in(minutes: float) -> str:
    return format_time(datetime.now(UTC) + timedelta(minutes=minutes))


async def _silence(client: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    body: dict[str, Any] = {
        "matchers": [{"name": "service", "value": "payment", "isRegex": False, "isEqual": True}],
        "startsAt": _in(0),
        "endsAt": _in(60),
        "createdBy": "tester",
        "comment": "maintenance",
    }
    body.update(overrides)
    return await client.post("/api/v2/silences", json=body)


async def test_posted_alert_is_listed_with_the_binary_fingerprint(am: httpx.AsyncClient) -> None:
    response = await am.post("/api/v2/alerts", json=[ALERT])
    assert response.status_code == 200
    alerts = (await am.get("/api/v2/alerts")).json()
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["labels"] == ALERT["labels"]
    assert alert["annotations"] == ALERT["annotations"]
    assert alert["fingerprint"] == fingerprint(ALERT["labels"])
    assert alert["status"] == {"inhibitedBy": [], "silencedBy": [], "state": "active"}
    assert alert["generatorURL"] == ALERT["generatorURL"]
    assert [r["name"] for r in alert["receivers"]]
    assert parse_time(alert["endsAt"]) > parse_time(alert["startsAt"])


async def test_filter_and_resolved_alerts(am: httpx.AsyncClient) -> None:
    other = {"labels": {"alertname": "DiskFull", "service": "db", "severity": "warning"}}
    past = format_time(datetime.now(UTC) - timedelta(minutes=5))
    resolved = {
        "labels": {"alertname": "Gone", "severity": "info"},
        "startsAt": format_time(datetime.now(UTC) - timedelta(minutes=10)),
        "endsAt": past,
    }
    assert (await am.post("/api/v2/alerts", json=[ALERT, other, resolved])).status_code == 200
    listed = (await am.get("/api/v2/alerts")).json()
    assert {a["labels"]["alertname"] for a in listed} == {"ServiceDown", "DiskFull"}
    chosen = (await am.get("/api/v2/alerts", params={"filter": 'severity="warning"'})).json()
    assert [a["labels"]["alertname"] for a in chosen] == ["DiskFull"]
    regex = (await am.get("/api/v2/alerts", params={"filter": 'service=~"pay.*"'})).json()
    assert [a["labels"]["alertname"] for a in regex] == ["ServiceDown"]
    bad = await am.get("/api/v2/alerts", params={"filter": "{{nonsense"})
    assert bad.status_code == 400


async def test_alert_without_labels_is_refused(am: httpx.AsyncClient) -> None:
    response = await am.post("/api/v2/alerts", json=[{"labels": {}}])
    assert response.status_code == 400
    assert (await am.get("/api/v2/alerts")).json() == []


async def test_silence_suppresses_then_expires(am: httpx.AsyncClient) -> None:
    await am.post("/api/v2/alerts", json=[ALERT])
    created = await _silence(am)
    assert created.status_code == 200
    silence_id = created.json()["silenceID"]
    alert = (await am.get("/api/v2/alerts")).json()[0]
    assert alert["status"]["state"] == "suppressed"
    assert alert["status"]["silencedBy"] == [silence_id]
    unsilenced = (await am.get("/api/v2/alerts", params={"silenced": "false"})).json()
    assert unsilenced == []

    silence = (await am.get(f"/api/v2/silence/{silence_id}")).json()
    assert silence["status"]["state"] == "active"
    assert silence["createdBy"] == "tester"
    assert silence["matchers"] == [
        {"isEqual": True, "isRegex": False, "name": "service", "value": "payment"}
    ]

    assert (await am.delete(f"/api/v2/silence/{silence_id}")).status_code == 200
    expired = (await am.get(f"/api/v2/silence/{silence_id}")).json()
    assert expired["status"]["state"] == "expired"
    alert = (await am.get("/api/v2/alerts")).json()[0]
    assert alert["status"]["state"] == "active"
    # Expiring twice is quiet; an unknown id is a 500 in 0.25.
    assert (await am.delete(f"/api/v2/silence/{silence_id}")).status_code == 200
    unknown = await am.delete("/api/v2/silence/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 500


async def test_extend_keeps_the_id_and_changed_matchers_replace_it(am: httpx.AsyncClient) -> None:
    first = (await _silence(am)).json()["silenceID"]
    current = (await am.get(f"/api/v2/silence/{first}")).json()
    extended = await _silence(
        am, id=first, startsAt=current["startsAt"], endsAt=_in(120), comment="longer"
    )
    assert extended.status_code == 200
    assert extended.json()["silenceID"] == first
    assert (await am.get(f"/api/v2/silence/{first}")).json()["comment"] == "longer"

    matchers = [{"name": "service", "value": "db", "isRegex": False, "isEqual": True}]
    replaced = (await _silence(am, id=first, matchers=matchers)).json()["silenceID"]
    assert replaced != first
    assert (await am.get(f"/api/v2/silence/{first}")).json()["status"]["state"] == "expired"
    assert (await am.get(f"/api/v2/silence/{replaced}")).json()["status"]["state"] == "active"
    states = {s["id"]: s["status"]["state"] for s in (await am.get("/api/v2/silences")).json()}
    assert states == {first: "expired", replaced: "active"}


async def test_invalid_silences_are_refused(am: httpx.AsyncClient) -> None:
    past = await _silence(am, startsAt=_in(-60), endsAt=_in(-30))
    assert past.status_code == 400
    backwards = await _silence(am, startsAt=_in(30), endsAt=_in(10))
    assert backwards.status_code == 400
    empty = [{"name": "service", "value": "", "isRegex": False, "isEqual": True}]
    assert (await _silence(am, matchers=empty)).status_code == 400
    missing = await am.post("/api/v2/silences", json={"matchers": []})
    assert missing.status_code == 422
    assert (await am.get("/api/v2/silence/not-a-uuid")).status_code == 422


async def test_status_and_groups(am: httpx.AsyncClient) -> None:
    status = (await am.get("/api/v2/status")).json()
    assert status["versionInfo"]["version"]
    assert status["cluster"]["status"] in ("disabled", "ready", "settling")
    assert "route:" in status["config"]["original"]
    await am.post("/api/v2/alerts", json=[ALERT])
    groups = (await am.get("/api/v2/alerts/groups")).json()
    assert len(groups) == 1
    assert groups[0]["labels"] == {"alertname": "ServiceDown", "service": "payment"}
    assert [a["fingerprint"] for a in groups[0]["alerts"]] == [fingerprint(ALERT["labels"])]
    assert (await am.get("/-/ready")).status_code == 200


# -- stand-in only: the notifier, driven by a frozen clock -----------------------------------


def test_group_key_and_fingerprint_format() -> None:
    assert group_key({"service": "a", "alertname": 'x"y'}) == '{}:{alertname="x\\"y", service="a"}'
    assert len(fingerprint({"a": "b"})) == 16
    assert fingerprint({"a": "b", "c": "d"}) == fingerprint({"c": "d", "a": "b"})
    assert fingerprint({"a": "b"}) != fingerprint({"a": "c"})


async def test_standin_sends_webhooks_for_firing_and_resolved_groups() -> None:
    received: list[tuple[dict[str, Any], str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append((json.loads(request.content), request.headers.get("authorization")))
        return httpx.Response(200)

    clock = FrozenClock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        standin = StandinAlertmanager(
            clock=clock,
            webhook_url="http://listener/webhooks/alertmanager",
            webhook_token="tok-123",
            http=http,
            resolve_timeout=60,
        )
        standin.put_alerts([ALERT])
        await standin.flush()
        assert len(received) == 1
        payload, auth = received[0]
        assert auth == "Bearer tok-123"
        assert payload["version"] == "4"
        assert payload["status"] == "firing"
        assert payload["groupKey"] == '{}:{alertname="ServiceDown", service="payment"}'
        assert payload["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
        await standin.flush()
        assert len(received) == 1  # nothing changed: no repeat before repeat_interval

        clock.advance(61)  # past the resolve timeout: the alert resolves on its own
        await standin.flush()
        assert len(received) == 2
        assert received[1][0]["status"] == "resolved"
        assert received[1][0]["alerts"][0]["status"] == "resolved"
        assert standin.notifications_sent == 2
