"""The one way providers talk HTTP: shared client settings, bounded retries, short safe errors.

Every provider call goes through `send()`. It retries what is worth retrying (timeouts, refused
connections, 5xx, 429 and Statuspage's 420) a bounded number of times with exponential backoff
and full jitter, honours `Retry-After` (and, on a 429, PagerDuty's `ratelimit-reset`) up to a
cap, sleeps through the injected clock, and turns every failure
into a `ProviderError` whose text an operator can read at 2 AM and which never carries a secret.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import random
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC
from typing import Any

import httpx

from oncall_tui.clock import Clock
from oncall_tui.providers.errors import ProviderError

USER_AGENT = "oncall-tui/0.1"

BACKOFF_BASE = 0.5
"""Seconds; the n-th retry waits a random time in [0, min(BACKOFF_CAP, BACKOFF_BASE * 2**(n-1))]."""
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 30.0
"""A server asking for a longer pause gets this much: the outbox retries later anyway, and a
poller that sleeps for an hour inside one call would look frozen."""

_MAX_DETAIL = 300
# Methods whose repetition cannot change the outcome: a lost response may be retried.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# 420 is Statuspage's "Enhance your calm": its rate limit, answered like a 429.
_RATE_LIMITED = frozenset({420, 429})
_WHITESPACE = re.compile(r"\s+")
_rng = random.Random()


def make_http_client(*, timeout: float = 10.0) -> httpx.AsyncClient:
    """The shared client: every phase of every request is bounded, connections are pooled."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16, keepalive_expiry=30),
        headers={"User-Agent": USER_AGENT},
        # An API answering with a redirect is usually a login proxy; following it would turn
        # an auth problem into a confusing JSON error.
        follow_redirects=False,
    )


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    source: str,
    clock: Clock,
    attempts: int = 3,
    idempotent: bool | None = None,
    should_retry: Callable[[httpx.Response], bool] | None = None,
    secrets: Iterable[str] = (),
    **httpx_kwargs: Any,
) -> httpx.Response:
    """Send one request, retrying transient failures; return a response with status < 300.

    `idempotent` (default: by method) says whether a request that may already have reached the
    server can be sent again: a POST that timed out while waiting for the answer is not
    repeated here, since it may have been applied (its error is still marked retryable, for the
    outbox to decide). `should_retry` can veto retrying a 5xx/429 response the caller knows to
    be final. `secrets` are credentials carried where `send` cannot see them (e.g. a routing key
    in the JSON body): they are scrubbed from error text like the Authorization header is.
    Raises ProviderError.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    method = method.upper()
    safe = idempotent if idempotent is not None else method in _IDEMPOTENT
    secrets = _secrets_of(client, url, httpx_kwargs, extra=secrets)
    attempt = 0
    while True:
        attempt += 1
        wait: float | None = None
        try:
            response = await client.request(method, url, **httpx_kwargs)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # InvalidURL is not an HTTPError in httpx, but it is as final as a bad scheme.
            error, maybe_applied = _transport_error(source, exc)
            retry_here = error.retryable and (safe or not maybe_applied)
        else:
            if response.status_code < 300:
                return response
            error = _status_error(source, response, secrets)
            if error.retryable and should_retry is not None and not should_retry(response):
                error.retryable = False
            retry_here = error.retryable
            wait = _server_wait(response, clock)
        if not retry_here or attempt >= attempts:
            raise error
        if wait is None:
            wait = _rng.uniform(0.0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
        await clock.sleep(min(wait, RETRY_AFTER_CAP))


def error_detail(response: httpx.Response) -> str:
    """The server's own words about an error, on one short line.

    Alertmanager sends a bare JSON string; the other vendors send objects with `message`,
    `error` or `errors`. Anything else is shown as text, except an HTML page (a proxy's or
    load balancer's error page), which says nothing the status line does not.
    """
    if "html" in response.headers.get("content-type", "").lower():
        return ""
    raw = response.content.decode("utf-8", errors="replace")
    try:
        data: Any = json.loads(raw) if raw else None
    except ValueError:
        data = None
    if isinstance(data, str):
        text = data
    elif isinstance(data, dict):
        text = _detail_from_object(data)
    elif data is None:
        text = raw
    else:
        text = raw if raw.strip() else ""
    return _one_line(text)


def _detail_from_object(data: Mapping[str, Any]) -> str:
    parts: list[str] = []
    error = data.get("error")
    if isinstance(error, Mapping):
        parts.append(_detail_from_object(error))
    elif isinstance(error, str):
        parts.append(error)
    message = data.get("message")
    if isinstance(message, str):
        parts.append(message)
    errors = data.get("errors")
    if isinstance(errors, list):
        parts.extend(item for item in errors if isinstance(item, str))
    if not parts:
        return json.dumps(data, separators=(",", ":"))
    seen: dict[str, None] = dict.fromkeys(part for part in parts if part)
    return ": ".join(seen)


def _one_line(text: str) -> str:
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 1] + "…"
    return text


def _status_error(source: str, response: httpx.Response, secrets: Iterable[str]) -> ProviderError:
    status = response.status_code
    detail = _scrub(error_detail(response), secrets)
    if status in (301, 302, 303, 307, 308):
        detail = "unexpected redirect (a login proxy in front of the API?)"
    message = f"HTTP {status}: {detail}" if detail else f"HTTP {status} {response.reason_phrase}"
    retryable = status in _RATE_LIMITED or status >= 500
    return ProviderError(
        source, message.rstrip(), status=status, retryable=retryable, code=_vendor_code(response)
    )


def _vendor_code(response: httpx.Response) -> int | None:
    """PagerDuty's numeric error code (`{"error": {"code": 2001}}`), if the body has one."""
    try:
        data: Any = response.json()
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return None


def _transport_error(
    source: str, exc: httpx.HTTPError | httpx.InvalidURL
) -> tuple[ProviderError, bool]:
    """The error to raise and whether the request may have reached the server."""
    if isinstance(exc, httpx.ConnectTimeout):
        return ProviderError(source, "connection timed out", retryable=True), False
    if isinstance(exc, httpx.PoolTimeout):
        message = "timed out waiting for a free connection"
        return ProviderError(source, message, retryable=True), False
    if isinstance(exc, httpx.WriteTimeout):
        return ProviderError(source, "timed out sending the request", retryable=True), True
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(source, "timed out waiting for the response", retryable=True), True
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "certificate" in text or "ssl" in text or "tls" in text:
            return ProviderError(source, "TLS handshake failed (certificate?)"), False
        if any(
            marker in text
            for marker in ("name or service not known", "nodename nor servname", "name resolution")
        ):
            return ProviderError(source, "host not found", retryable=True), False
        if "refused" in text or "all connection attempts failed" in text:
            return ProviderError(source, "connection refused", retryable=True), False
        return ProviderError(source, "cannot connect", retryable=True), False
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return ProviderError(source, "connection lost", retryable=True), True
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ProviderError(source, "invalid URL"), False
    if isinstance(exc, httpx.NetworkError | httpx.ProxyError):
        return ProviderError(source, "network error", retryable=True), False
    return ProviderError(source, f"request failed ({type(exc).__name__})"), False


def _server_wait(response: httpx.Response, clock: Clock) -> float | None:
    """Seconds the server asked us to wait (`Retry-After`, or PagerDuty's `ratelimit-reset`).

    PagerDuty sends `ratelimit-reset` (seconds until the window resets) on every rate-evaluated
    answer; it is a reason to wait only when the answer says we are over the limit.
    """
    headers = ["retry-after"]
    if response.status_code in _RATE_LIMITED:
        headers.append("ratelimit-reset")
    for header in headers:
        value = response.headers.get(header)
        if value is None:
            continue
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - clock.now()).total_seconds())
    return None


def _secrets_of(
    client: httpx.AsyncClient, url: str, kwargs: Mapping[str, Any], *, extra: Iterable[str] = ()
) -> list[str]:
    """Credential strings this request carries, so that no echo of them reaches a message."""
    values: list[str] = list(extra)
    header_values: list[str] = []
    for headers in (client.headers, kwargs.get("headers")):
        if headers is None:
            continue
        merged = httpx.Headers(headers)
        for name in ("authorization", "x-api-key", "proxy-authorization"):
            if name in merged:
                header_values.append(merged[name])
    auth = kwargs.get("auth")
    if isinstance(auth, httpx.BasicAuth):
        header_values.append(str(getattr(auth, "_auth_header", "")))
    for header in header_values:
        values.append(header)
        _scheme, _sep, credential = header.partition(" ")
        credential = credential.strip()
        if credential:
            values.append(credential)
            values.extend(_basic_parts(credential))
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is not None and parsed.password:
        values.append(parsed.password)
    # Longest first, so that a token is not half-replaced through one of its own parts.
    return sorted({value for value in values if len(value) >= 4}, key=len, reverse=True)


def _basic_parts(credential: str) -> list[str]:
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return []
    _user, sep, password = decoded.partition(":")
    return [decoded, password] if sep else []


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
