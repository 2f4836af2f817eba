"""The webhook listener: Alertmanager and PagerDuty deliveries, verified, parsed and logged."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from am_harness import am_binary, running_alertmanager, wait_for
from hypothesis import given, settings
from hypothesis import strategies as st

from oncall_tui.clock import FrozenClock
from oncall_tui.engine.intake import WebhookIntake
from oncall_tui.models import LogEntry
from oncall_tui.sandbox.alertmanager_process import alertmanager_config_yaml
from oncall_tui.store import Store
from oncall_tui.webhook_payloads import (
    AlertmanagerNotification,
    WebhookRejected,
    parse_alertmanager_notification,
    verify_pagerduty_signature,
)
from oncall_tui.webhooks import WebhookServer, make_webhook_app

T0 = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
AM_TOKEN = "am-webhook-token-0123"
PD_OLD, PD_NEW = "pd-secret-old-abcdef", "pd-secret-new-uvwxyz"
AM_PATH, PD_PATH = "/webhooks/alertmanager", "/webhooks/pagerduty"

# Captured from Alertmanager 0.25.0 (Debian's prometheus-alertmanager) posting to a webhook
# receiver with group_by [alertname, service]; only externalURL was changed (it named the host).
AM_FIRING: dict[str, Any] = {
    "receiver": "hook",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "ServiceDown",
                "instance": "pay-1:9100",
                "service": "payment-service",
                "severity": "critical",
            },
            "annotations": {
                "runbook_url": "https://runbooks.example.com/service-down",
                "summary": "payment-service is down",
            },
            "startsAt": "2026-11-23T16:59:20.088817318Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up%3D%3D0",
            "fingerprint": "eb64a503a7a34dd1",
        },
        {
            "status": "firing",
            "labels": {
                "alertname": "ServiceDown",
                "instance": "pay-2:9100",
                "service": "payment-service",
                "severity": "critical",
            },
            "annotations": {"summary": "payment-service is down"},
            "startsAt": "2026-11-23T16:59:20.088817318Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": "ca30bb0a4a44adc4",
        },
    ],
    "groupLabels": {"alertname": "ServiceDown", "service": "payment-service"},
    "commonLabels": {
        "alertname": "ServiceDown",
        "service": "payment-service",
        "severity": "critical",
    },
    "commonAnnotations": {"summary": "payment-service is down"},
    "externalURL": "http://alertmanager.example:9093",
    "version": "4",
    "groupKey": '{}:{alertname="ServiceDown", service="payment-service"}',
    "truncatedAlerts": 0,
}

PD_EVENT: dict[str, Any] = {
    "event": {
        "id": "01DEN7QDRJYR8RKTQHBUSC7A4P",
        "event_type": "incident.acknowledged",
        "resource_type": "incident",
        "occurred_at": "2026-11-23T17:00:05.123Z",
        "agent": {"id": "PLH1HKV", "type": "user_reference"},
        "client": None,
        "data": {
            "id": "PGR0VU2",
            "type": "incident",
            "number": 2,
            "status": "acknowledged",
            "incident_key": "d3b0c5e1",
            "title": "payment-service is down",
            "assignees": [{"id": "PLH1HKV", "type": "user_reference"}],
            "urgency": "high",
        },
    }
}


def _body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def _sign(body: bytes, *secrets: str) -> str:
    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)


@dataclass
class RecordingHandler:
    """Stores every call in a real log, and remembers the calls in order."""

    store: Store
    calls: list[tuple[str, Any]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    fail: bool = False

    async def on_alertmanager(self, notification: AlertmanagerNotification, remote: str) -> None:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("disk full")
        await self.store.append(
            "alertmanager",
            "webhook",
            notification.group_key,
            data={"remote": remote, "fingerprints": [a.fingerprint for a in notification.alerts]},
        )
        self.calls.append(("alertmanager", notification))

    async def on_pagerduty(
        self, event: Mapping[str, Any], delivery_id: str | None, remote: str
    ) -> None:
        await self.store.append(
            "pagerduty", "webhook", str(event["event_type"]), data={"event": dict(event)}
        )
        self.calls.append(("pagerduty", (dict(event), delivery_id)))

    async def on_rejected(self, path: str, status: int, reason: str, remote: str) -> None:
        await self.store.append(
            "webhooks", "webhook.rejected", f"{path} {status} {reason}", data={"remote": remote}
        )
        self.calls.append(("rejected", (path, status, reason, remote)))

    def rejections(self) -> list[tuple[str, int, str, str]]:
        return [args for kind, args in self.calls if kind == "rejected"]


@pytest.fixture
async def store(tmp_log: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_log, clock=FrozenClock(T0), secrets=[AM_TOKEN, PD_OLD, PD_NEW])
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def handler(store: Store) -> RecordingHandler:
    return RecordingHandler(store)


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hooks")


@pytest.fixture
async def client(handler: RecordingHandler) -> AsyncIterator[httpx.AsyncClient]:
    app = make_webhook_app(handler, alertmanager_token=AM_TOKEN, pagerduty_secrets=[PD_NEW])
    async with _client(app) as c:
        yield c


def _committed(path: Path) -> list[tuple[str, str]]:
    """What another process would read from the log file right now."""
    with sqlite3.connect(path) as db:
        return db.execute("SELECT source, kind FROM entries ORDER BY id").fetchall()


AUTH = {"Authorization": f"Bearer {AM_TOKEN}"}
__all__ = ["am_binary"]  # a fixture, imported to be visible here


# --- Alertmanager ------------------------------------------------------------------------------


async def test_alertmanager_notification_is_parsed_and_logged(
    client: httpx.AsyncClient, handler: RecordingHandler, tmp_log: Path
) -> None:
    response = await client.post(AM_PATH, content=_body(AM_FIRING), headers=AUTH)
    assert response.status_code == 200
    assert _committed(tmp_log) == [("alertmanager", "webhook")]
    ((kind, notification),) = handler.calls
    assert kind == "alertmanager"
    assert notification.group_key == AM_FIRING["groupKey"]
    assert notification.status == "firing"
    assert notification.receiver == "hook"
    assert notification.group_labels == {"alertname": "ServiceDown", "service": "payment-service"}
    assert notification.common_annotations == {"summary": "payment-service is down"}
    assert notification.external_url == "http://alertmanager.example:9093"
    assert notification.truncated_alerts == 0
    first, second = notification.alerts
    assert first.fingerprint == "eb64a503a7a34dd1"
    assert first.labels["instance"] == "pay-1:9100"
    # Go's nanoseconds, truncated to microseconds; Go's zero time means "no end yet".
    assert first.starts_at == datetime(2026, 11, 23, 16, 59, 20, 88817, tzinfo=UTC)
    assert first.ends_at is None
    assert second.generator_url == ""


async def test_answer_waits_until_the_entry_is_committed(
    handler: RecordingHandler, tmp_log: Path
) -> None:
    handler.gate = asyncio.Event()
    app = make_webhook_app(handler, alertmanager_token=None)
    async with _client(app) as c:
        request = asyncio.create_task(c.post(AM_PATH, content=_body(AM_FIRING)))
        for _ in range(20):  # give the request every chance to (wrongly) complete
            await asyncio.sleep(0)
        assert not request.done()
        assert _committed(tmp_log) == []
        handler.gate.set()
        response = await asyncio.wait_for(request, 5)
    assert response.status_code == 200
    assert _committed(tmp_log) == [("alertmanager", "webhook")]


async def test_handler_failure_answers_5xx_so_the_sender_retries(handler: RecordingHandler) -> None:
    handler.fail = True
    app = make_webhook_app(handler, alertmanager_token=None)
    async with _client(app) as c:
        response = await c.post(AM_PATH, content=_body(AM_FIRING))
    assert response.status_code == 500
    assert "disk full" not in response.text
    assert handler.rejections() == [(AM_PATH, 500, "handler failed", "127.0.0.1")]


async def test_resolved_alert_has_its_end_time(client: httpx.AsyncClient) -> None:
    payload = copy.deepcopy(AM_FIRING)
    payload["alerts"][0].update(status="resolved", endsAt="2026-11-23T18:59:24+02:00")
    notification = parse_alertmanager_notification(_body(payload))
    assert notification.alerts[0].status == "resolved"
    assert notification.alerts[0].ends_at == datetime(2026, 11, 23, 16, 59, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {AM_TOKEN}"},
        {"Authorization": f"Bearer {AM_TOKEN}x"},
    ],
    ids=["missing", "wrong", "not-bearer", "longer"],
)
async def test_bearer_token_is_required_when_configured(
    client: httpx.AsyncClient,
    handler: RecordingHandler,
    tmp_log: Path,
    headers: dict[str, str],
) -> None:
    response = await client.post(AM_PATH, content=_body(AM_FIRING), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert AM_TOKEN not in response.text
    assert handler.rejections() == [(AM_PATH, 401, "missing or wrong bearer token", "127.0.0.1")]
    assert _committed(tmp_log) == [("webhooks", "webhook.rejected")]


async def test_no_token_configured_accepts_without_one(handler: RecordingHandler) -> None:
    app = make_webhook_app(handler, alertmanager_token=None)
    async with _client(app) as c:
        response = await c.post(AM_PATH, content=_body(AM_FIRING))
    assert response.status_code == 200


async def test_oversized_body_gets_413(handler: RecordingHandler) -> None:
    app = make_webhook_app(handler, alertmanager_token=None, max_body=4096)
    big = copy.deepcopy(AM_FIRING)
    big["commonAnnotations"]["description"] = "x" * 5000

    async def chunks() -> AsyncIterator[bytes]:
        body = _body(big)
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    async with _client(app) as c:
        declared = await c.post(AM_PATH, content=_body(big))
        # Chunked: no Content-Length to trust, the limit is counted while reading.
        streamed = await c.post(AM_PATH, content=chunks())
        fits = await c.post(AM_PATH, content=_body(AM_FIRING))
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "content-length" not in streamed.request.headers
    assert fits.status_code == 200
    assert [r[1] for r in handler.rejections()] == [413, 413]


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"version": "4",', b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000],
    ids=["empty", "text", "truncated", "not-utf8", "deep"],
)
async def test_non_json_gets_400(
    client: httpx.AsyncClient, handler: RecordingHandler, body: bytes
) -> None:
    response = await client.post(AM_PATH, content=body, headers=AUTH)
    assert response.status_code == 400
    assert handler.rejections()[0][:2] == (AM_PATH, 400)


def _broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(AM_FIRING)
    target = payload
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "field_name"),
    [
        ([AM_FIRING], "body"),
        (_broken(("version",), "3"), "version"),
        (_broken(("groupKey",), KeyError), "groupKey"),
        (_broken(("status",), "burning"), "status"),
        (_broken(("alerts",), {"a": 1}), "alerts"),
        (_broken(("truncatedAlerts",), -1), "truncatedAlerts"),
        (_broken(("commonLabels",), ["x"]), "commonLabels"),
        (_broken(("alerts", 1), "alert"), "alerts[1]"),
        (_broken(("alerts", 0, "startsAt"), "yesterday"), "alerts[0].startsAt"),
        (_broken(("alerts", 0, "startsAt"), "2026-11-23T16:59:20"), "alerts[0].startsAt"),
        (_broken(("alerts", 1, "endsAt"), "2026-13-01T00:00:00Z"), "alerts[1].endsAt"),
        (_broken(("alerts", 0, "labels", "severity"), 3), "alerts[0].labels"),
        (_broken(("alerts", 0, "labels"), KeyError), "alerts[0].labels"),
        (_broken(("alerts", 1, "fingerprint"), None), "alerts[1].fingerprint"),
        (_broken(("alerts", 1, "status"), "pending"), "alerts[1].status"),
    ],
)
async def test_wrong_shape_gets_422_naming_the_field(
    client: httpx.AsyncClient, handler: RecordingHandler, payload: Any, field_name: str
) -> None:
    response = await client.post(AM_PATH, content=_body(payload), headers=AUTH)
    assert response.status_code == 422
    reason = response.json()["error"]
    assert reason.startswith(field_name), reason
    assert handler.rejections() == [(AM_PATH, 422, reason, "127.0.0.1")]
    assert not [c for c in handler.calls if c[0] == "alertmanager"]


def test_parse_rejects_with_webhook_rejected() -> None:
    with pytest.raises(WebhookRejected) as caught:
        parse_alertmanager_notification(b'{"version": "4"}')
    assert caught.value.status == 422


# --- PagerDuty ---------------------------------------------------------------------------------


def test_signature_verification() -> None:
    body = _body(PD_EVENT)
    secrets = [PD_OLD, PD_NEW]
    assert verify_pagerduty_signature(body, _sign(body, PD_NEW), secrets)
    # During a rotation PagerDuty sends one v1= per active secret; any may be ours.
    assert verify_pagerduty_signature(body, _sign(body, "someone-else", PD_OLD), secrets)
    assert verify_pagerduty_signature(body, _sign(body, PD_OLD), [PD_NEW, PD_OLD])
    # Unknown versions are ignored, also when they carry a correct digest.
    v1 = _sign(body, PD_NEW)
    assert verify_pagerduty_signature(body, "v2=abc," + v1, secrets)
    assert not verify_pagerduty_signature(body, "v0=" + v1[3:], secrets)
    assert not verify_pagerduty_signature(body + b" ", v1, secrets)
    assert not verify_pagerduty_signature(body, _sign(body, "wrong-secret"), secrets)
    assert not verify_pagerduty_signature(body, None, secrets)
    assert not verify_pagerduty_signature(body, "", secrets)
    assert not verify_pagerduty_signature(body, v1, [])
    assert not verify_pagerduty_signature(body, "v1=", [""])


async def test_signed_pagerduty_event_is_accepted(
    client: httpx.AsyncClient, handler: RecordingHandler, tmp_log: Path
) -> None:
    body = _body(PD_EVENT)
    response = await client.post(
        PD_PATH,
        content=body,
        headers={"X-PagerDuty-Signature": _sign(body, PD_OLD, PD_NEW), "X-Webhook-Id": "wh-1"},
    )
    assert response.status_code == 200
    assert handler.calls == [("pagerduty", (PD_EVENT["event"], "wh-1"))]
    assert _committed(tmp_log) == [("pagerduty", "webhook")]


@pytest.mark.parametrize(
    "signature",
    [None, "", "v1=deadbeef", "garbage", _sign(b"another body", PD_NEW), _sign(b"{}", PD_NEW)],
)
async def test_bad_pagerduty_signature_gets_401(
    client: httpx.AsyncClient, handler: RecordingHandler, signature: str | None
) -> None:
    headers = {"X-PagerDuty-Signature": signature} if signature is not None else {}
    response = await client.post(PD_PATH, content=_body(PD_EVENT), headers=headers)
    assert response.status_code == 401
    assert "www-authenticate" not in response.headers
    ((path, status, _reason, _remote),) = handler.rejections()
    assert (path, status) == (PD_PATH, 401)
    assert not [c for c in handler.calls if c[0] == "pagerduty"]


async def test_pagerduty_without_a_secret_is_refused(handler: RecordingHandler) -> None:
    app = make_webhook_app(handler, alertmanager_token=None)
    body = _body(PD_EVENT)
    async with _client(app) as c:
        response = await c.post(
            PD_PATH, content=body, headers={"X-PagerDuty-Signature": _sign(body, PD_NEW)}
        )
    assert response.status_code == 401
    assert handler.rejections()[0][2] == "webhook secret not configured"


async def test_signed_but_malformed_pagerduty_body_gets_4xx(
    client: httpx.AsyncClient, handler: RecordingHandler
) -> None:
    for body, status in [(b"nope", 400), (b'{"event": []}', 422), (b'{"event": {"id": 1}}', 422)]:
        response = await client.post(
            PD_PATH, content=body, headers={"X-PagerDuty-Signature": _sign(body, PD_NEW)}
        )
        assert response.status_code == status, body
    assert [r[1] for r in handler.rejections()] == [400, 422, 422]


# --- the engine's intake on this listener ------------------------------------------------------


@pytest.fixture
async def intake_client(store: Store) -> AsyncIterator[tuple[httpx.AsyncClient, list[LogEntry]]]:
    seen: list[LogEntry] = []

    async def on_entry(entry: LogEntry) -> None:
        seen.append(entry)

    intake = WebhookIntake(store, FrozenClock(T0), on_entry)
    app = make_webhook_app(intake, alertmanager_token=AM_TOKEN, pagerduty_secrets=[PD_NEW])
    async with _client(app) as c:
        yield c, seen


async def test_duplicate_pagerduty_delivery_is_logged_once(
    store: Store, intake_client: tuple[httpx.AsyncClient, list[LogEntry]]
) -> None:
    client, seen = intake_client
    body = _body(PD_EVENT)
    headers = {"X-PagerDuty-Signature": _sign(body, PD_NEW), "X-Webhook-Id": "wh-42"}
    first = await client.post(PD_PATH, content=body, headers=headers)
    retry = await client.post(PD_PATH, content=body, headers=headers)
    other = await client.post(PD_PATH, content=body, headers={**headers, "X-Webhook-Id": "wh-43"})
    assert [first.status_code, retry.status_code, other.status_code] == [200, 200, 200]
    logged = await store.entries(sources=["pagerduty"], newest_first=False)
    assert [e.data["delivery_id"] for e in logged] == ["wh-42", "wh-43"]
    assert logged[0].summary == "incident.acknowledged"
    assert len(seen) == 2


async def test_engine_intake_logs_alertmanager_and_rejections(
    store: Store, intake_client: tuple[httpx.AsyncClient, list[LogEntry]]
) -> None:
    client, seen = intake_client
    ok = await client.post(AM_PATH, content=_body(AM_FIRING), headers=AUTH)
    denied = await client.post(AM_PATH, content=_body(AM_FIRING))
    assert (ok.status_code, denied.status_code) == (200, 401)
    webhook, rejected = await store.entries(newest_first=False)
    assert webhook.summary == "firing: ServiceDown (2 firing) to hook"
    assert webhook.data["group_key"] == AM_FIRING["groupKey"]
    assert rejected.kind == "webhook.rejected"
    assert rejected.data == {"path": AM_PATH, "status": 401, "remote": "127.0.0.1"}
    assert AM_TOKEN not in repr(await store.entries())
    assert seen == [webhook, rejected]


# --- routes and the server ---------------------------------------------------------------------


async def test_healthz_and_unknown_routes(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (await client.get(AM_PATH)).status_code == 405
    assert (await client.post("/webhooks/opsgenie", content=b"{}")).status_code == 404


async def test_server_on_a_free_port_serves_and_stops(
    handler: RecordingHandler, tmp_log: Path
) -> None:
    app = make_webhook_app(handler, alertmanager_token=AM_TOKEN)
    server = WebhookServer(app, "127.0.0.1", 0)
    assert not server.running
    await server.start()
    try:
        assert server.running
        assert server.port != 0
        assert server.address == f"127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=f"http://{server.address}", trust_env=False) as c:
            assert (await c.get("/healthz")).status_code == 200
            response = await c.post(AM_PATH, content=_body(AM_FIRING), headers=AUTH)
        assert response.status_code == 200
        assert _committed(tmp_log) == [("alertmanager", "webhook")]
        assert handler.calls[0][1].alerts[0].fingerprint == "eb64a503a7a34dd1"
    finally:
        await asyncio.wait_for(server.stop(), 10)
    assert not server.running
    async with httpx.AsyncClient(trust_env=False, timeout=2) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(f"http://{server.address}/healthz")


async def test_stop_is_bounded_when_a_handler_hangs(handler: RecordingHandler) -> None:
    handler.gate = asyncio.Event()  # never set: the log is stuck
    server = WebhookServer(make_webhook_app(handler, alertmanager_token=None), "127.0.0.1", 0)
    await server.start()
    async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
        request = asyncio.create_task(
            c.post(f"http://{server.address}{AM_PATH}", content=_body(AM_FIRING))
        )
        await asyncio.wait_for(handler.entered.wait(), 5)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(server.stop(), 10)
        assert loop.time() - started < WebhookServer.STOP_TIMEOUT + 1
        assert not server.running
        # The sender gets no 2xx for a delivery that was never logged.
        try:
            response = await asyncio.wait_for(request, 5)
        except httpx.HTTPError:
            return  # the connection closed without an answer: Alertmanager retries that too
        assert response.status_code >= 500


async def test_server_start_reports_a_busy_port(handler: RecordingHandler) -> None:
    app = make_webhook_app(handler, alertmanager_token=None)
    first = WebhookServer(app, "127.0.0.1", 0)
    await first.start()
    try:
        second = WebhookServer(app, "127.0.0.1", first.port)
        with pytest.raises(OSError):  # noqa: PT011 - the engine catches exactly OSError
            await second.start()
        assert not second.running
    finally:
        await asyncio.wait_for(first.stop(), 10)


@pytest.mark.alertmanager
async def test_real_alertmanager_delivers_to_the_listener(
    am_binary: str, handler: RecordingHandler, tmp_path: Path
) -> None:
    app = make_webhook_app(handler, alertmanager_token=AM_TOKEN)
    server = WebhookServer(app, "127.0.0.1", 0)
    await server.start()
    config = alertmanager_config_yaml(
        webhook_url=f"http://{server.address}{AM_PATH}", webhook_token=AM_TOKEN
    )
    alert = {
        "labels": {"alertname": "ListenerProbe", "severity": "critical", "service": "hooks"},
        "annotations": {"summary": "probe"},
    }

    def delivered(status: str) -> list[AlertmanagerNotification]:
        return [
            n
            for kind, n in handler.calls
            if kind == "alertmanager" and n.alerts and n.alerts[0].status == status
        ]

    try:
        async with (
            running_alertmanager(am_binary, tmp_path / "am", config) as am,
            httpx.AsyncClient(base_url=am.url, timeout=5, trust_env=False) as http,
        ):
            (await http.post("/api/v2/alerts", json=[alert])).raise_for_status()
            firing = (await wait_for(_returning(delivered, "firing")))[0]
            ended = dict(alert, endsAt=datetime.now(UTC).isoformat())
            (await http.post("/api/v2/alerts", json=[ended])).raise_for_status()
            resolved = (await wait_for(_returning(delivered, "resolved")))[0]
    finally:
        await asyncio.wait_for(server.stop(), 10)
    assert handler.rejections() == []
    assert firing.version == "4"
    assert 'alertname="ListenerProbe"' in firing.group_key
    assert firing.receiver == "critical"
    assert firing.group_labels == {"alertname": "ListenerProbe", "service": "hooks"}
    assert firing.alerts[0].labels == alert["labels"]
    assert firing.alerts[0].ends_at is None
    assert len(firing.alerts[0].fingerprint) == 16
    assert resolved.status == "resolved"
    assert resolved.alerts[0].ends_at is not None
    assert resolved.alerts[0].fingerprint == firing.alerts[0].fingerprint


def _returning(
    probe: Callable[[str], list[AlertmanagerNotification]], status: str
) -> Callable[[], Awaitable[list[AlertmanagerNotification]]]:
    async def call() -> list[AlertmanagerNotification]:
        return probe(status)

    return call


# --- no input crashes the listener -------------------------------------------------------------

# JSON may carry lone surrogates ("\ud800"), which SQLite and UTF-8 output cannot take.
_text = st.text(max_size=20) | st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_alert = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["firing", "resolved"]) | _json,
        "labels": st.dictionaries(_text, _text, max_size=3) | _json,
        "startsAt": st.sampled_from(["2026-11-23T16:59:20.1Z", "0001-01-01T00:00:00Z"]) | _text,
        "fingerprint": _text,
    },
    optional={"endsAt": _text | _json, "annotations": _json, "generatorURL": _json},
)
_notification = st.fixed_dictionaries(
    {
        "version": st.just("4"),
        "groupKey": _text,
        "status": st.sampled_from(["firing", "resolved"]),
        "alerts": st.lists(_alert, max_size=3),
    },
    optional={"receiver": _json, "truncatedAlerts": _json, "groupLabels": _json},
)
_bodies = (
    st.binary(max_size=300)
    | _json.map(_body)
    | _notification.map(_body)
    | st.builds(lambda e: _body({"event": e}), _json)
)


@pytest.fixture
def event_loop_runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


def test_no_body_crashes_the_listener(tmp_path: Path, event_loop_runner: asyncio.Runner) -> None:
    run = event_loop_runner.run
    store = run(Store.open(tmp_path / "log.db", clock=FrozenClock(T0)))
    handler = RecordingHandler(store)
    app = make_webhook_app(handler, alertmanager_token=None, pagerduty_secrets=[PD_NEW])
    client = _client(app)

    posts = 0

    async def post_both(body: bytes) -> list[int]:
        nonlocal posts
        posts += 2
        am = await client.post(AM_PATH, content=body)
        # Correctly signed, so that the PagerDuty parser sees the arbitrary body too.
        pd = await client.post(
            PD_PATH, content=body, headers={"X-PagerDuty-Signature": _sign(body, PD_NEW)}
        )
        return [am.status_code, pd.status_code]

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
    )
    @given(body=_bodies)
    def check(body: bytes) -> None:
        statuses = run(post_both(body))
        assert all(status in {200, 400, 422} for status in statuses), statuses

    try:
        check()
    finally:
        run(client.aclose())
        run(store.close())
    # Every answer was logged: accepted deliveries and rejections alike.
    assert run(_all_entries(tmp_path / "log.db")) == posts > 0


async def _all_entries(path: Path) -> int:
    store = await Store.open(path, clock=FrozenClock(T0))
    try:
        return len(await store.entries(limit=0))
    finally:
        await store.close()
