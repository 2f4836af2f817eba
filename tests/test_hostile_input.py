"""Hostile and broken input to the real listener on loopback: the right 4xx, a log entry, and
the process still serving.

tests/test_webhooks.py covers the parsers and the app in-process (shapes, tokens, signatures,
413, fuzzing of whole bodies). This module drives the served listener over TCP with what only
a socket can send (a body trickled slowly, a Content-Length that lies, an oversized header,
slow connections held open) and a table of hostile cases, each checked for its answer, its
rejection entry in the log, and a healthy listener afterwards. It also fuzzes the parsers with
near-valid payloads: a real notification or event with one value replaced by arbitrary JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncall_tui.clock import SystemClock
from oncall_tui.engine.intake import WebhookIntake
from oncall_tui.models import LogEntry
from oncall_tui.store import Store
from oncall_tui.webhook_payloads import (
    MAX_STRING,
    WebhookRejected,
    parse_alertmanager_notification,
    parse_pagerduty_event,
)
from oncall_tui.webhooks import MAX_BODY, WebhookServer, make_webhook_app

AM_TOKEN = "hostile-am-token-0001"
PD_SECRET = "hostile-pd-secret-0001"
AM_PATH, PD_PATH = "/webhooks/alertmanager", "/webhooks/pagerduty"
BODY_TIMEOUT = 1.0

AM_VALID: dict[str, Any] = {
    "receiver": "hook",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "ServiceDown", "service": "payment-service"},
            "annotations": {"summary": "payment-service is down"},
            "startsAt": "2026-11-23T16:59:20.088817318Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": "eb64a503a7a34dd1",
        }
    ],
    "groupLabels": {"alertname": "ServiceDown"},
    "commonLabels": {"alertname": "ServiceDown"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.example:9093",
    "version": "4",
    "groupKey": '{}:{alertname="ServiceDown"}',
    "truncatedAlerts": 0,
}
PD_VALID: dict[str, Any] = {
    "event": {
        "id": "01DEN7QDRJYR8RKTQHBUSC7A4P",
        "event_type": "incident.acknowledged",
        "resource_type": "incident",
        "occurred_at": "2026-11-23T17:00:05.123Z",
        "agent": {"id": "PLH1HKV", "type": "user_reference"},
        "data": {"id": "PGR0VU2", "type": "incident", "number": 2, "status": "acknowledged"},
    }
}


def _body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def _signed(body: bytes, secret: str = PD_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-PagerDuty-Signature": f"v1={digest}"}


AUTH = {"Authorization": f"Bearer {AM_TOKEN}"}


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": True}
    for _ in range(depth):
        node = {"n": node}
    return node


def _am(**changes: Any) -> bytes:
    payload = copy.deepcopy(AM_VALID)
    payload["alerts"][0].update(changes)
    return _body(payload)


def _pd(**changes: Any) -> bytes:
    payload = copy.deepcopy(PD_VALID)
    payload["event"].update(changes)
    return _body(payload)


@dataclass
class Listener:
    url: str
    port: int
    store: Store
    seen: list[LogEntry] = field(default_factory=list)

    async def rejected(self) -> list[tuple[str, int]]:
        entries = await self.store.entries(kinds=["webhook.rejected"], newest_first=False)
        return [(str(e.data["path"]), int(e.data["status"])) for e in entries]

    async def accepted(self) -> int:
        return len(await self.store.entries(kinds=["webhook"], limit=0))


@pytest.fixture
async def listener(tmp_path: Path) -> AsyncIterator[Listener]:
    store = await Store.open(tmp_path / "log.db", clock=SystemClock(), secrets=[AM_TOKEN])
    seen: list[LogEntry] = []

    async def on_entry(entry: LogEntry) -> None:
        seen.append(entry)

    app = make_webhook_app(
        WebhookIntake(store, SystemClock(), on_entry),
        alertmanager_token=AM_TOKEN,
        pagerduty_secrets=[PD_SECRET],
        body_timeout=BODY_TIMEOUT,
    )
    server = WebhookServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        yield Listener(f"http://{server.address}", server.port, store, seen)
    finally:
        await asyncio.wait_for(server.stop(), 15)
        await store.close()


async def _still_serving(listener: Listener) -> None:
    async with httpx.AsyncClient(base_url=listener.url, trust_env=False, timeout=5) as http:
        assert (await http.get("/healthz")).status_code == 200
        ok = await http.post(AM_PATH, content=_body(AM_VALID), headers=AUTH)
        assert ok.status_code == 200


# --- the table ---------------------------------------------------------------------------------

SIGNED_REPLAY = _pd()
HUGE_EVENT = _pd(id="i" * (MAX_STRING + 1))
DEEP_EVENT = _pd(data=_nested(100))
CASES: list[tuple[str, str, dict[str, str], bytes, int]] = [
    ("html instead of JSON", AM_PATH, AUTH, b"<html><body>502</body></html>", 400),
    ("JSON but a list", AM_PATH, AUTH, b"[1, 2, 3]", 422),
    ("number as a label", AM_PATH, AUTH, _am(labels={"alertname": 7}), 422),
    ("object as a time", AM_PATH, AUTH, _am(startsAt={"t": 1}), 422),
    ("huge label value", AM_PATH, AUTH, _am(labels={"alertname": "x" * (MAX_STRING + 1)}), 422),
    (
        "huge label name",
        AM_PATH,
        AUTH,
        _am(labels={"alertname": "a", "k" * (MAX_STRING + 1): "v"}),
        422,
    ),
    ("2 MiB body", AM_PATH, AUTH, b"[" + b" " * (2 << 20) + b"]", 413),
    ("deep JSON arrays", AM_PATH, AUTH, b"[" * 50_000 + b"]" * 50_000, 400),
    ("no token", AM_PATH, {}, _body(AM_VALID), 401),
    ("wrong token", AM_PATH, {"Authorization": "Bearer guess"}, _body(AM_VALID), 401),
    ("no signature", PD_PATH, {}, _pd(), 401),
    ("wrong signature", PD_PATH, _signed(_pd(), "not-the-secret"), _pd(), 401),
    ("signature of another body", PD_PATH, _signed(b"{}"), _pd(), 401),
    ("deeply nested event", PD_PATH, _signed(DEEP_EVENT), DEEP_EVENT, 422),
    ("huge event string", PD_PATH, _signed(HUGE_EVENT), HUGE_EVENT, 422),
    ("event without a type", PD_PATH, _signed(_pd(event_type=None)), _pd(event_type=None), 422),
    ("not UTF-8", PD_PATH, _signed(b"\xff\xfe\x00"), b"\xff\xfe\x00", 400),
]


@pytest.mark.parametrize(
    ("path", "headers", "body", "status"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_hostile_request_gets_its_4xx_and_a_log_entry(
    listener: Listener, path: str, headers: dict[str, str], body: bytes, status: int
) -> None:
    async with httpx.AsyncClient(base_url=listener.url, trust_env=False, timeout=10) as http:
        response = await http.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert await listener.rejected() == [(path, status)]
    assert AM_TOKEN not in response.text
    assert PD_SECRET not in response.text
    await _still_serving(listener)


async def test_replayed_signed_delivery_is_logged_once(listener: Listener) -> None:
    headers = {**_signed(SIGNED_REPLAY), "X-Webhook-Id": "delivery-1"}
    async with httpx.AsyncClient(base_url=listener.url, trust_env=False, timeout=5) as http:
        first = await http.post(PD_PATH, content=SIGNED_REPLAY, headers=headers)
        replays = [await http.post(PD_PATH, content=SIGNED_REPLAY, headers=headers) for _ in "abc"]
    # 200 to a copy already logged: PagerDuty retries on anything else, and a retry is normal.
    assert [first.status_code] + [r.status_code for r in replays] == [200] * 4
    logged = await listener.store.entries(sources=["pagerduty"], kinds=["webhook"])
    assert len(logged) == 1


async def test_unknown_event_type_is_logged_not_acted_on(listener: Listener) -> None:
    body = _pd(event_type="service.renamed", resource_type="service", data={"id": "S1"})
    async with httpx.AsyncClient(base_url=listener.url, trust_env=False, timeout=5) as http:
        response = await http.post(PD_PATH, content=body, headers=_signed(body))
    assert response.status_code == 200
    (entry,) = await listener.store.entries(sources=["pagerduty"], kinds=["webhook"])
    assert entry.summary == "service.renamed"


# --- what only a socket sends ------------------------------------------------------------------


async def _raw(
    port: int, head: bytes, parts: list[bytes], *, pause: float = 0.0, eof: bool = False
) -> int | None:
    """Send a request by hand; the answer's status, or None if the connection just closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(head)
            await writer.drain()
            for part in parts:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(pause)
            if eof:
                writer.write_eof()

    sender = asyncio.create_task(send())
    try:
        line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    if not line:
        return None
    return int(line.split()[1])


def _head(path: str, length: int | None, extra: str = "") -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: hooks\r\nAuthorization: Bearer {AM_TOKEN}\r\n"
        f"Content-Type: application/json\r\n{size}{extra}\r\n"
    ).encode()


async def test_slowloris_body_is_cut_off_with_408(listener: Listener) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    status = await _raw(listener.port, _head(AM_PATH, 1000), [b"{"] * 40, pause=0.2)
    assert status == 408
    assert loop.time() - started < BODY_TIMEOUT + 3
    assert await listener.rejected() == [(AM_PATH, 408)]
    await _still_serving(listener)


async def test_body_shorter_than_its_length_is_rejected(listener: Listener) -> None:
    status = await _raw(listener.port, _head(AM_PATH, 1000), [b'{"version": "4"'], eof=True)
    assert status in {400, None}  # the answer may not reach a client that hung up
    assert await listener.rejected() == [(AM_PATH, 400)]
    await _still_serving(listener)


async def test_oversized_header_is_refused_before_the_app(listener: Listener) -> None:
    status = await _raw(
        listener.port, _head(AM_PATH, 2, "X-Junk: " + "j" * 70_000 + "\r\n"), [b"{}"]
    )
    assert status is None or 400 <= status < 500
    await _still_serving(listener)


async def test_slow_connections_do_not_starve_real_senders(listener: Listener) -> None:
    # Fifty connections that never finish their headers, and fifty that trickle a body.
    idle = [await asyncio.open_connection("127.0.0.1", listener.port) for _ in range(50)]
    for _, writer in idle:
        writer.write(b"POST /webhooks/alertmanager HTTP/1.1\r\nHost: hooks\r\n")
    trickling = [
        asyncio.create_task(_raw(listener.port, _head(AM_PATH, 500), [b" "] * 20, pause=0.1))
        for _ in range(50)
    ]
    try:
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(base_url=listener.url, trust_env=False, timeout=5) as http:
            for _ in range(10):
                started = loop.time()
                response = await http.post(AM_PATH, content=_body(AM_VALID), headers=AUTH)
                assert response.status_code == 200
                assert loop.time() - started < 3.0  # bounded by work, not by the slow ones
        assert set(await asyncio.gather(*trickling)) == {408}
    finally:
        for task in trickling:
            task.cancel()
        for _, writer in idle:
            writer.close()
    assert await listener.accepted() == 10


# --- fuzzing the parsers with near-valid input -------------------------------------------------

_scalar = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
_any_json = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutated(payload: dict[str, Any], data: st.DataObject) -> bytes:
    mutated = copy.deepcopy(payload)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(mutated)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        target: Any = mutated
        for key in path[:-1]:
            target = target[key]
        if data.draw(st.booleans()) and isinstance(target, dict):
            target.pop(path[-1], None)
        else:
            target[path[-1]] = data.draw(_any_json)
    return json.dumps(mutated, allow_nan=True).encode()


def _check_rejection(rejected: WebhookRejected) -> None:
    # A short fixed reason naming the field: never the body's own text.
    assert rejected.status in {400, 422}
    assert len(rejected.reason) < 120


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.data())
def test_alertmanager_parser_on_near_valid_input(data: st.DataObject) -> None:
    body = _mutated(AM_VALID, data)
    try:
        notification = parse_alertmanager_notification(body)
    except WebhookRejected as rejected:
        _check_rejection(rejected)
        return
    for alert in notification.alerts:
        assert alert.status in {"firing", "resolved"}
        assert isinstance(alert.starts_at, datetime)
        assert alert.starts_at.utcoffset() is not None
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in alert.labels.items())


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.data())
def test_pagerduty_parser_on_near_valid_input(data: st.DataObject) -> None:
    body = _mutated(PD_VALID, data)
    try:
        event = parse_pagerduty_event(body)
    except WebhookRejected as rejected:
        _check_rejection(rejected)
        return
    assert isinstance(event["id"], str)
    assert isinstance(event["event_type"], str)
    assert event.get("data") is None or isinstance(event["data"], dict)


def test_body_limit_is_one_mebibyte() -> None:
    assert MAX_BODY == 1 << 20
