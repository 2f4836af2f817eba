"""providers/http.py: retries, back-off, Retry-After, final 4xx and scrubbed error text.

The server is a small stateful fake behind `httpx.MockTransport`: it answers from a script,
one step per attempt, and records every request it received. Sleeps go through a recording
clock, so the back-off is asserted exactly and no test waits for it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from oncall_tui.clock import FrozenClock
from oncall_tui.providers import http as provider_http
from oncall_tui.providers.http import (
    BACKOFF_BASE,
    RETRY_AFTER_CAP,
    ProviderError,
    error_detail,
    make_http_client,
    send,
)

URL = "http://am.test/api/v2/alerts"
Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class RecordingClock(FrozenClock):
    """Wall time stands still except that each sleep advances it; sleeps return at once."""

    def __init__(self) -> None:
        super().__init__(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


class FlakyServer:
    """Answers attempt n with script[n] (the last step repeats); remembers the requests."""

    def __init__(self, *script: Step) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    @property
    def attempts(self) -> int:
        return len(self.requests)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script[min(len(self.requests), len(self.script)) - 1]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))


def text(status: int, body: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=body.encode(), headers=headers)


async def call(
    server: FlakyServer, clock: RecordingClock, method: str = "GET", **kw: object
) -> int:
    async with server.client() as client:
        response = await send(client, method, URL, source="alertmanager prod-a", clock=clock, **kw)  # type: ignore[arg-type]
        return response.status_code


async def test_5xx_is_retried_with_growing_jittered_backoff() -> None:
    server = FlakyServer(text(503, '"overloaded"'), text(502, "bad gateway"), text(200, "[]"))
    clock = RecordingClock()
    assert await call(server, clock) == 200
    assert server.attempts == 3
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= BACKOFF_BASE
    assert 0 <= clock.sleeps[1] <= BACKOFF_BASE * 2


async def test_backoff_is_randomised() -> None:
    seen: set[float] = set()
    for _ in range(5):
        clock = RecordingClock()
        await call(FlakyServer(text(500, "x"), text(200, "")), clock)
        seen.update(clock.sleeps)
    assert len(seen) > 1  # full jitter: peers retrying together do not retry in lockstep


async def test_retry_after_seconds_is_honoured() -> None:
    server = FlakyServer(text(429, "slow down", **{"Retry-After": "7"}), text(200, ""))
    clock = RecordingClock()
    assert await call(server, clock) == 200
    assert clock.sleeps == [7.0]


async def test_retry_after_as_a_date_counts_from_the_clock() -> None:
    clock = RecordingClock()
    when = format_datetime(clock.now() + timedelta(seconds=12), usegmt=True)
    server = FlakyServer(text(503, "maintenance", **{"Retry-After": when}), text(200, ""))
    assert await call(server, clock) == 200
    assert clock.sleeps == [12.0]


async def test_pagerduty_ratelimit_reset_counts_as_retry_after() -> None:
    server = FlakyServer(text(429, "{}", **{"ratelimit-reset": "3"}), text(200, ""))
    clock = RecordingClock()
    assert await call(server, clock) == 200
    assert clock.sleeps == [3.0]


async def test_a_very_long_retry_after_is_capped() -> None:
    server = FlakyServer(text(429, "later", **{"Retry-After": "3600"}), text(200, ""))
    clock = RecordingClock()
    assert await call(server, clock) == 200
    assert clock.sleeps == [RETRY_AFTER_CAP]


async def test_giving_up_after_the_last_attempt_keeps_the_servers_words() -> None:
    server = FlakyServer(text(500, '"failed to write silence"\n'))
    clock = RecordingClock()
    with pytest.raises(ProviderError) as caught:
        await call(server, clock, attempts=4)
    assert server.attempts == 4
    assert len(clock.sleeps) == 3
    error = caught.value
    assert (error.status, error.retryable) == (500, True)
    assert error.message == "HTTP 500: failed to write silence"
    assert str(error) == "alertmanager prod-a: HTTP 500: failed to write silence"


@pytest.mark.parametrize(
    ("status", "body", "detail"),
    [
        (400, '"start time must be before end time"\n', "start time must be before end time"),
        (422, '{"code":601,"message":"silenceID must be a uuid"}', "silenceID must be a uuid"),
        (
            401,
            '{"error":{"code":2006,"message":"Authentication failed","errors":[]}}',
            "Authentication failed",
        ),
        (404, "", "HTTP 404 Not Found"),
    ],
)
async def test_4xx_fails_at_once_with_the_servers_text(status: int, body: str, detail: str) -> None:
    server = FlakyServer(text(status, body))
    clock = RecordingClock()
    with pytest.raises(ProviderError) as caught:
        await call(server, clock, method="POST", json={"a": 1})
    assert server.attempts == 1
    assert clock.sleeps == []
    assert caught.value.status == status
    assert not caught.value.retryable
    assert detail in caught.value.message


async def test_a_redirect_is_an_error_not_followed() -> None:
    server = FlakyServer(text(302, "", Location="http://login.example/"))
    with pytest.raises(ProviderError) as caught:
        await call(server, RecordingClock())
    assert server.attempts == 1
    assert "unexpected redirect" in caught.value.message


async def test_connection_errors_are_retried_then_reported_plainly() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    server = FlakyServer(refused, refused, text(200, ""))
    clock = RecordingClock()
    assert await call(server, clock, method="POST", json=[]) == 200  # never reached the server
    assert server.attempts == 3

    server = FlakyServer(refused)
    with pytest.raises(ProviderError) as caught:
        await call(server, RecordingClock())
    assert (caught.value.message, caught.value.retryable) == ("connection refused", True)


async def test_a_post_that_may_have_been_applied_is_not_repeated() -> None:
    server = FlakyServer(httpx.ReadTimeout("timed out"), text(200, ""))
    clock = RecordingClock()
    with pytest.raises(ProviderError) as caught:
        await call(server, clock, method="POST", json={})
    assert server.attempts == 1
    # Still retryable: the outbox decides, knowing how to find out whether it was applied.
    assert caught.value.retryable
    assert caught.value.message == "timed out waiting for the response"

    server = FlakyServer(httpx.ReadTimeout("timed out"), text(200, ""))
    assert await call(server, RecordingClock(), method="GET") == 200
    assert server.attempts == 2
    server = FlakyServer(httpx.ReadTimeout("timed out"), text(200, ""))
    assert await call(server, RecordingClock(), method="POST", idempotent=True) == 200
    assert server.attempts == 2


async def test_should_retry_can_declare_a_5xx_final() -> None:
    server = FlakyServer(text(500, '"silence not found"'))
    with pytest.raises(ProviderError) as caught:
        await call(
            server,
            RecordingClock(),
            method="DELETE",
            should_retry=lambda r: b"not found" not in r.content,
        )
    assert server.attempts == 1
    assert not caught.value.retryable


async def test_credentials_echoed_by_the_server_are_scrubbed() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return text(403, json.dumps(f"denied for {request.headers['authorization']}"))

    token = "tok-9f8e7d6c5b4a"
    server = FlakyServer(echo)
    with pytest.raises(ProviderError) as caught:
        await call(server, RecordingClock(), headers={"Authorization": f"Bearer {token}"})
    assert token not in str(caught.value)
    assert token not in repr(caught.value)
    assert "***" in caught.value.message

    password = "hunter2-long-password"
    basic = base64.b64encode(f"ops:{password}".encode()).decode()

    def leak(request: httpx.Request) -> httpx.Response:
        return text(400, json.dumps({"message": f"bad creds {basic} / ops:{password}"}))

    with pytest.raises(ProviderError) as caught:
        await call(FlakyServer(leak), RecordingClock(), auth=httpx.BasicAuth("ops", password))
    assert password not in str(caught.value)
    assert basic not in str(caught.value)


async def test_error_detail_is_one_short_line() -> None:
    long = httpx.Response(500, content=("line one\n  line two " + "x" * 1000).encode())
    detail = error_detail(long)
    assert "\n" not in detail
    assert detail.startswith("line one line two")
    assert len(detail) <= 300


async def test_a_proxy_error_page_is_reduced_to_its_status_line() -> None:
    page = "<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
    server = FlakyServer(text(502, page, **{"Content-Type": "text/html"}))
    with pytest.raises(ProviderError) as caught:
        await call(server, RecordingClock(), attempts=1)
    assert caught.value.message == "HTTP 502 Bad Gateway"


async def test_an_invalid_url_is_a_final_provider_error() -> None:
    clock = RecordingClock()
    async with httpx.AsyncClient() as client:
        for url in ("http://[::1/api", "ftp://am.test/api"):
            with pytest.raises(ProviderError) as caught:
                await send(client, "GET", url, source="am", clock=clock)
            assert (caught.value.message, caught.value.retryable) == ("invalid URL", False)
    assert clock.sleeps == []


async def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await call(FlakyServer(text(200, "")), RecordingClock(), attempts=0)


async def test_shared_client_bounds_every_request() -> None:
    async with make_http_client(timeout=4.0) as client:
        assert client.timeout.read == 4.0
        assert client.timeout.connect == 4.0
        assert client.follow_redirects is False
        assert client.headers["user-agent"] == provider_http.USER_AGENT


async def test_statuspage_420_is_rate_limiting_and_retried() -> None:
    server = FlakyServer(text(420, '{"error":"enhance your calm"}', **{"Retry-After": "2"}))
    clock = RecordingClock()
    with pytest.raises(ProviderError) as caught:
        await call(server, clock, attempts=2)
    assert server.attempts == 2
    assert clock.sleeps == [2.0]
    assert (caught.value.status, caught.value.retryable) == (420, True)


async def test_ratelimit_reset_is_no_reason_to_wait_when_not_rate_limited() -> None:
    # PagerDuty sends ratelimit-* headers on every answer; a 502 gets the usual short back-off.
    server = FlakyServer(text(502, "bad gateway", **{"ratelimit-reset": "25"}), text(200, ""))
    clock = RecordingClock()
    assert await call(server, clock) == 200
    assert len(clock.sleeps) == 1
    assert clock.sleeps[0] <= BACKOFF_BASE


async def test_pagerduty_error_code_is_kept_apart_from_the_message() -> None:
    body = {"error": {"code": 1002, "message": "Incident Already Acknowledged", "errors": []}}
    server = FlakyServer(text(400, json.dumps(body)))
    with pytest.raises(ProviderError) as caught:
        await call(server, RecordingClock(), method="PUT")
    assert caught.value.code == 1002
    assert "Incident Already Acknowledged" in caught.value.message
    assert "code=1002" in repr(caught.value)

    with pytest.raises(ProviderError) as caught:
        await call(FlakyServer(text(400, '{"message":"bad","code":"x"}')), RecordingClock())
    assert caught.value.code is None


async def test_secrets_given_by_the_caller_are_scrubbed_too() -> None:
    key = "R0UT1NGKEY0123456789abcdefABCDEF"

    def echo(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["routing_key"]
        return text(400, json.dumps({"status": "invalid", "message": f"unknown key {sent}"}))

    with pytest.raises(ProviderError) as caught:
        await call(
            FlakyServer(echo),
            RecordingClock(),
            method="POST",
            json={"routing_key": key},
            secrets=[key],
        )
    assert key not in str(caught.value)
    assert "unknown key ***" in caught.value.message
