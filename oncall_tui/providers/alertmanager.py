"""Client for Prometheus Alertmanager API v2 (as of 0.25).

`AlertmanagerClient` talks to one Alertmanager peer and returns domain objects (Alert,
AlertGroup, Silence, AlertmanagerStatus), never raw JSON. The peers of one HA cluster gossip
silences but not alerts (every client posts alerts to every peer, as Prometheus does), so the
engine polls every peer and merges their answers (oncall_tui/engine/cluster_merge.py).

Behaviour of the real 0.25 binary that callers rely on (checked by tests/test_alertmanager_*):

* Updating a silence (POST with its id) keeps the id when only the end time or the comment
  changes on an active silence; changing the matchers, or updating an expired silence, expires
  the old one and returns a new id.
* DELETE of an unknown silence is a 500 with the text "silence not found" (404 came in 0.26);
  DELETE of an already expired silence succeeds.
* Error bodies are JSON strings (or `{"code", "message"}` objects for schema errors, 422).
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import msgspec

from oncall_tui import config as _config
from oncall_tui.clock import Clock
from oncall_tui.collector import collector_paused
from oncall_tui.models import (
    Alert,
    AlertGroup,
    AlertmanagerStatus,
    AlertState,
    ClusterPeer,
    Matcher,
    Silence,
    SilenceState,
)
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.http import send
from oncall_tui.providers.json_items import decode_array

API = "/api/v2"
OFFLOAD_DECODE_BYTES = 256 * 1024  # about 500 alerts
T = TypeVar("T")
# Go's zero time.Time; Alertmanager sends it for "no end" in some places.
_GO_ZERO_YEAR = 1


@dataclass(frozen=True, slots=True, repr=False)
class AlertmanagerAuth:
    """Credentials for an Alertmanager behind an authenticating proxy: a bearer token or basic.

    Alertmanager itself has no auth; deployments put a proxy in front. repr() never shows a
    credential.
    """

    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        if self.bearer_token is not None and self.username is not None:
            raise ValueError("give either a bearer token or basic credentials, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both a username and a password")

    @classmethod
    def from_config(cls, auth: _config.AlertmanagerAuth | None) -> AlertmanagerAuth | None:
        """From the `auth:` section of one `alertmanagers:` entry (None when absent or empty)."""
        if auth is None:
            return None
        if auth.bearer_token is not None:
            return cls(bearer_token=auth.bearer_token.get_secret_value())
        if auth.basic is not None:
            return cls(
                username=auth.basic.username, password=auth.basic.password.get_secret_value()
            )
        return None

    def headers(self) -> dict[str, str]:
        if self.bearer_token is not None:
            return {"Authorization": f"Bearer {self.bearer_token}"}
        if self.username is not None and self.password is not None:
            raw = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        return {}

    def __repr__(self) -> str:
        kind = "bearer" if self.bearer_token is not None else "basic"
        return f"AlertmanagerAuth({kind}, ***)"


@dataclass(slots=True)
class PostableAlert:
    """An alert to send to Alertmanager, as Prometheus would (POST /api/v2/alerts)."""

    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"labels": dict(self.labels), "annotations": dict(self.annotations)}
        if self.starts_at is not None:
            body["startsAt"] = format_time(self.starts_at)
        if self.ends_at is not None:
            body["endsAt"] = format_time(self.ends_at)
        if self.generator_url:
            body["generatorURL"] = self.generator_url
        return body


class AlertmanagerClient:
    """One Alertmanager peer. Every method raises ProviderError on failure."""

    def __init__(
        self,
        name: str,
        url: str,
        http: httpx.AsyncClient,
        *,
        clock: Clock,
        cluster: str = "",
        auth: AlertmanagerAuth | _config.AlertmanagerAuth | None = None,
        read_attempts: int = 2,
        write_attempts: int = 3,
    ) -> None:
        self.name = name
        self.cluster = cluster or name
        self._http = http
        self._clock = clock
        if isinstance(auth, _config.AlertmanagerAuth):
            auth = AlertmanagerAuth.from_config(auth)
        # Credentials written into the URL become basic auth, so that `url` (shown in the
        # header and in the log) never carries them.
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            self.url = url.rstrip("/")  # every call will fail with "invalid URL", not __init__
        else:
            if parsed.userinfo:
                if auth is None:
                    auth = AlertmanagerAuth(username=parsed.username, password=parsed.password)
                parsed = parsed.copy_with(username=None, password=None)
            self.url = str(parsed).rstrip("/")
        self._headers = auth.headers() if auth is not None else {}
        self.source = f"alertmanager {name}"
        # Polling repeats every few seconds anyway, so a read retries once: a peer that is
        # really down shows as stale soon. Writes are operator actions and try harder.
        self.read_attempts = read_attempts
        self.write_attempts = write_attempts
        # Each list endpoint's last answer, item by item, so that the next decodes only changes.
        self._last_items: dict[tuple[str, tuple[tuple[str, str], ...]], Sequence[Any]] = {}

    def __repr__(self) -> str:
        return f"AlertmanagerClient(name={self.name!r}, url={self.url!r}, cluster={self.cluster!r})"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        json: Any = None,
        idempotent: bool | None = None,
        not_found: str | None = None,
    ) -> httpx.Response:
        kwargs: dict[str, Any] = {"headers": {"Accept": "application/json", **self._headers}}
        if params:
            kwargs["params"] = list(params)
        if json is not None:
            kwargs["json"] = json
        try:
            return await send(
                self._http,
                method,
                f"{self.url}{API}{path}",
                source=self.source,
                clock=self._clock,
                idempotent=idempotent,
                attempts=self.read_attempts if method == "GET" else self.write_attempts,
                # 0.25 answers "not found" with a 500; asking again cannot change that.
                should_retry=lambda response: not _says_not_found(response),
                **kwargs,
            )
        except ProviderError as exc:
            # Only an answer from the server can say "no such silence"; a DNS failure
            # ("host not found") is an outage, and stays retryable.
            answered = exc.status is not None and not exc.retryable
            if (
                not_found is not None
                and answered
                and (exc.status == 404 or "not found" in exc.message)
            ):
                raise ProviderError(self.source, not_found, status=exc.status) from None
            raise

    async def _get_json(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        response = await self._request("GET", path, params=params)
        return self._json(response)

    async def _get_list(
        self,
        path: str,
        params: Sequence[tuple[str, str]],
        what: str,
        parse: Callable[[Any], T],
        key: Callable[[T], Hashable] | None = None,
        parse_raw: Callable[[msgspec.Raw], T] | None = None,
    ) -> list[T]:
        """A list endpoint's items, each turned into a T by `parse` (given the decoded item).

        With `key`, items unchanged since the last call are reused, and new ones are turned
        into a T from their raw JSON text by `parse_raw` (by default: decoded, then `parse`).
        """
        response = await self._request("GET", path, params=params)
        if key is None:
            return self._parse_list(self._json(response), what, parse)
        remembered = (path, tuple(params))
        previous = self._last_items.get(remembered, ())
        from_raw = parse_raw or (lambda raw: parse(_JSON.decode(raw)))

        def decode() -> list[T]:
            with collector_paused():  # thousands of new objects, no garbage
                try:
                    items = decode_array(
                        response.content,
                        lambda raw: self._parse_one(raw, what, from_raw),
                        previous=previous,
                        key=key,
                    )
                except ValueError:
                    # Not an array, or JSON that only Python's decoder accepts (an unpaired
                    # surrogate escape): decoded whole, with the usual errors, nothing reused.
                    self._last_items.pop(remembered, None)
                    return self._parse_list(self._json(response), what, parse)
            self._last_items[remembered] = items
            return [item.value for item in items]

        # A first answer of thousands of alerts takes tens of milliseconds to decode: done on
        # the event loop that would freeze the dashboard, so big answers are decoded in a worker
        # thread, one item at a time (one call for all of it would hold the GIL throughout).
        big = len(response.content) >= OFFLOAD_DECODE_BYTES
        return await asyncio.to_thread(decode) if big else decode()

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ProviderError(
                self.source, f"answer from {response.url.path} is not JSON", status=None
            ) from None

    # -- alerts ---------------------------------------------------------------------------------

    async def alerts(
        self,
        *,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
        unprocessed: bool = True,
        filters: Sequence[Matcher] = (),
        receiver: str | None = None,
    ) -> list[Alert]:
        """GET /alerts: the alerts this peer holds, in the states asked for."""
        params = _flags(active=active, silenced=silenced, inhibited=inhibited)
        params.append(("unprocessed", _bool(unprocessed)))
        params += _filter_params(filters, receiver)
        return await self._get_list(
            "/alerts",
            params,
            "alerts",
            self._alert,
            key=lambda alert: alert.fingerprint,
            parse_raw=self._alert_from_raw,
        )

    async def alert_groups(
        self,
        *,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
        filters: Sequence[Matcher] = (),
        receiver: str | None = None,
    ) -> list[AlertGroup]:
        """GET /alerts/groups: alerts as this peer's routing tree groups them, per receiver."""
        params = _flags(active=active, silenced=silenced, inhibited=inhibited)
        params += _filter_params(filters, receiver)
        return await self._get_list("/alerts/groups", params, "alert groups", self._group)

    async def post_alerts(self, alerts: Sequence[PostableAlert]) -> None:
        """POST /alerts. Re-sending an alert only refreshes it, so retrying is safe."""
        await self._request(
            "POST", "/alerts", json=[alert.to_json() for alert in alerts], idempotent=True
        )

    # -- silences -------------------------------------------------------------------------------

    async def silences(self, *, filters: Sequence[Matcher] = ()) -> list[Silence]:
        """GET /silences: every silence this peer knows, expired ones included."""
        return await self._get_list(
            "/silences",
            _filter_params(filters, None),
            "silences",
            self._silence,
            key=lambda silence: silence.id,
        )

    async def silence(self, silence_id: str) -> Silence:
        """GET /silence/{id}; ProviderError with status 404 when there is no such silence."""
        response = await self._request(
            "GET", f"/silence/{silence_id}", not_found=f"silence {silence_id} not found"
        )
        return self._parse_one(self._json(response), "silence", self._silence)

    async def create_silence(
        self,
        matchers: Sequence[Matcher],
        *,
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        """POST /silences without an id; returns the new silence's id."""
        body = _silence_body(matchers, starts_at, ends_at, created_by, comment)
        return await self._post_silence(body)

    async def update_silence(
        self, silence: Silence, *, ends_at: datetime, comment: str | None = None
    ) -> str:
        """POST /silences with the silence's id, new end time and (optionally) comment.

        Returns the id Alertmanager answers with: the same id when it could update in place
        (an active or pending silence with unchanged matchers), a new id when it replaced the
        silence (e.g. an expired one), in which case the old one is expired.
        """
        body = _silence_body(
            silence.matchers,
            silence.starts_at,
            ends_at,
            silence.created_by,
            silence.comment if comment is None else comment,
        )
        body["id"] = silence.id
        return await self._post_silence(body, not_found=f"silence {silence.id} not found")

    async def _post_silence(self, body: dict[str, Any], *, not_found: str | None = None) -> str:
        response = await self._request("POST", "/silences", json=body, not_found=not_found)
        data = self._json(response)
        silence_id = data.get("silenceID") if isinstance(data, dict) else None
        if not isinstance(silence_id, str) or not silence_id:
            raise ProviderError(self.source, "answer to POST /silences has no silenceID")
        return silence_id

    async def expire_silence(self, silence_id: str) -> None:
        """DELETE /silence/{id}. An unknown id is a non-retryable ProviderError."""
        await self._request(
            "DELETE", f"/silence/{silence_id}", not_found=f"silence {silence_id} not found"
        )

    # -- status ---------------------------------------------------------------------------------

    async def status(self) -> AlertmanagerStatus:
        """GET /status: version, cluster state and peers, uptime and the loaded config."""
        data = await self._get_json("/status")
        return self._parse_one(data, "status", _status)

    async def receivers(self) -> list[str]:
        """GET /receivers: the names of the configured receivers."""
        data = await self._get_json("/receivers")
        return self._parse_list(data, "receivers", lambda item: str(item["name"]))

    # -- parsing --------------------------------------------------------------------------------

    def _parse_list(self, data: Any, what: str, parse: Callable[[Any], T]) -> list[T]:
        if not isinstance(data, list):
            raise ProviderError(self.source, f"unexpected answer for {what}: not a list")
        return [self._parse_one(item, what, parse) for item in data]

    def _parse_one(self, item: Any, what: str, parse: Callable[[Any], T]) -> T:
        try:
            return parse(item)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderError(
                self.source, f"unexpected answer for {what}: {type(exc).__name__} {exc}"
            ) from None

    def _alert(self, item: Mapping[str, Any]) -> Alert:
        return parse_alert(item, cluster=self.cluster, peer=self.name)

    def _alert_from_raw(self, raw: msgspec.Raw) -> Alert:
        return parse_alert_json(raw, cluster=self.cluster, peer=self.name)

    def _group(self, item: Mapping[str, Any]) -> AlertGroup:
        receiver = item["receiver"]
        return AlertGroup(
            labels=_str_map(item["labels"]),
            receiver=str(receiver["name"] if isinstance(receiver, Mapping) else receiver),
            alerts=tuple(self._alert(alert) for alert in item["alerts"]),
            cluster=self.cluster,
        )

    def _silence(self, item: Mapping[str, Any]) -> Silence:
        return parse_silence(item, cluster=self.cluster)


def _alert_state(
    raw_state: str, silenced_by: Sequence[str], inhibited_by: Sequence[str]
) -> AlertState:
    if raw_state == "active":
        return AlertState.ACTIVE
    if raw_state == "unprocessed":
        return AlertState.UNPROCESSED
    if raw_state == "suppressed":
        # A silence is the operator's own doing; name it even when an inhibition also applies.
        return AlertState.INHIBITED if inhibited_by and not silenced_by else AlertState.SILENCED
    raise ValueError(f"unknown alert state {raw_state!r}")


def parse_alert(item: Mapping[str, Any], *, cluster: str, peer: str = "") -> Alert:
    """One `gettableAlert` as an Alert (seen_by is this peer alone until merged)."""
    status = item["status"]
    silenced_by = _str_tuple(status.get("silencedBy"))
    inhibited_by = _str_tuple(status.get("inhibitedBy"))
    state = _alert_state(str(status["state"]), silenced_by, inhibited_by)
    receivers = item.get("receivers")
    # Positional: the first poll of 10,000 alerts builds them all, and keywords cost more.
    return Alert(
        str(item["fingerprint"]),  # fingerprint
        _str_map(item["labels"]),  # labels
        _str_map(item.get("annotations") or {}),  # annotations
        parse_time(item["startsAt"]),  # starts_at
        parse_time(item["updatedAt"]),  # updated_at
        parse_optional_time(item.get("endsAt")),  # ends_at
        state,
        silenced_by,
        inhibited_by,
        tuple([str(r["name"]) for r in receivers]) if receivers else (),  # receivers
        str(item.get("generatorURL") or ""),  # generator_url
        cluster,
        (peer,) if peer else (),  # seen_by
    )


# The spec's gettableAlert, as msgspec structs: the poll's items are decoded straight into them
# in C. Times stay text so that they are parsed exactly as parse_alert parses them (msgspec
# rounds Go's nanoseconds to the nearest microsecond, Python truncates).
class _AlertStatus(msgspec.Struct):
    state: str
    silencedBy: list[str] | None = None
    inhibitedBy: list[str] | None = None


class _Receiver(msgspec.Struct):
    name: str


class GettableAlert(msgspec.Struct):
    fingerprint: str
    labels: dict[str, str]
    startsAt: str
    updatedAt: str
    status: _AlertStatus
    annotations: dict[str, str] | None = None
    endsAt: str | None = None
    receivers: list[_Receiver] | None = None
    generatorURL: str | None = None


_GETTABLE_ALERT = msgspec.json.Decoder(GettableAlert)
_JSON = msgspec.json.Decoder()


def parse_alert_json(raw: msgspec.Raw | bytes, *, cluster: str, peer: str = "") -> Alert:
    """What parse_alert makes of the decoded JSON `raw`, decoded straight into the spec's types."""
    try:
        item = _GETTABLE_ALERT.decode(raw)
    except msgspec.ValidationError:
        # Off the spec's types (a number for a label value...): the lenient dict path converts
        # what it can and names what it cannot.
        return parse_alert(_JSON.decode(raw), cluster=cluster, peer=peer)
    return _alert_from_gettable(item, cluster=cluster, peer=peer)


def _alert_from_gettable(item: GettableAlert, *, cluster: str, peer: str) -> Alert:
    status = item.status
    silenced_by = tuple(status.silencedBy) if status.silencedBy else ()
    inhibited_by = tuple(status.inhibitedBy) if status.inhibitedBy else ()
    receivers = item.receivers
    return Alert(
        item.fingerprint,
        item.labels,
        item.annotations or {},
        _parse_time_text(item.startsAt),
        _parse_time_text(item.updatedAt),
        parse_optional_time(item.endsAt),
        _alert_state(status.state, silenced_by, inhibited_by),
        silenced_by,
        inhibited_by,
        tuple([r.name for r in receivers]) if receivers else (),
        item.generatorURL or "",
        cluster,
        (peer,) if peer else (),
    )


def _str_tuple(raw: Any) -> tuple[str, ...]:
    return tuple([str(value) for value in raw]) if raw else ()


def parse_silence(item: Mapping[str, Any], *, cluster: str) -> Silence:
    """One `gettableSilence` as a Silence."""
    return Silence(
        id=str(item["id"]),
        matchers=tuple(
            Matcher(
                name=str(m["name"]),
                value=str(m["value"]),
                is_regex=bool(m["isRegex"]),
                is_equal=bool(m.get("isEqual", True)),
            )
            for m in item["matchers"]
        ),
        starts_at=parse_time(item["startsAt"]),
        ends_at=parse_time(item["endsAt"]),
        created_by=str(item.get("createdBy") or ""),
        comment=str(item.get("comment") or ""),
        state=SilenceState(str(item["status"]["state"])),
        updated_at=parse_optional_time(item.get("updatedAt")),
        cluster=cluster,
    )


def _status(item: Mapping[str, Any]) -> AlertmanagerStatus:
    cluster = item["cluster"]
    peers = tuple(
        ClusterPeer(name=str(p["name"]), address=str(p["address"]))
        for p in cluster.get("peers") or ()
    )
    config = item.get("config") or {}
    return AlertmanagerStatus(
        version=str((item.get("versionInfo") or {}).get("version", "")),
        cluster_status=str(cluster["status"]),
        peers=peers,
        uptime=parse_optional_time(item.get("uptime")),
        config_yaml=str(config.get("original") or ""),
    )


def parse_time(text: Any) -> datetime:
    """An RFC 3339 time from Alertmanager (Go may send up to 9 fraction digits) as aware UTC."""
    if not isinstance(text, str):
        raise TypeError(f"expected a time string, got {type(text).__name__}")
    return _parse_time_text(text)


# Alerts of one rule evaluation share their end time, and a poll repeats the last poll's times.
@functools.lru_cache(maxsize=16384)
def _parse_time_text(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return moment.astimezone(UTC)


def parse_optional_time(text: Any) -> datetime | None:
    if text is None or text == "":
        return None
    moment = parse_time(text)
    return None if moment.year == _GO_ZERO_YEAR else moment


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as Alertmanager writes it."""
    if moment.tzinfo is None:
        raise ValueError("Alertmanager times must be timezone-aware")
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _str_map(raw: Any) -> dict[str, str]:
    if type(raw) is dict:
        for value in raw.values():
            if type(value) is not str:
                break
        else:
            return raw  # fresh from the JSON decoder (keys are strings): nothing to convert
    if not isinstance(raw, Mapping):
        raise TypeError("expected an object of strings")
    return {str(k): str(v) for k, v in raw.items()}


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _flags(*, active: bool, silenced: bool, inhibited: bool) -> list[tuple[str, str]]:
    return [
        ("active", _bool(active)),
        ("silenced", _bool(silenced)),
        ("inhibited", _bool(inhibited)),
    ]


def _filter_params(filters: Sequence[Matcher], receiver: str | None) -> list[tuple[str, str]]:
    params = [("filter", str(matcher)) for matcher in filters]
    if receiver is not None:
        params.append(("receiver", receiver))
    return params


def _matcher_json(matcher: Matcher) -> dict[str, Any]:
    return {
        "name": matcher.name,
        "value": matcher.value,
        "isRegex": matcher.is_regex,
        "isEqual": matcher.is_equal,
    }


def _silence_body(
    matchers: Sequence[Matcher],
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str,
) -> dict[str, Any]:
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    return {
        "matchers": [_matcher_json(m) for m in matchers],
        "startsAt": format_time(starts_at),
        "endsAt": format_time(ends_at),
        "createdBy": created_by,
        "comment": comment,
    }


def _says_not_found(response: httpx.Response) -> bool:
    return response.status_code == 500 and b"not found" in response.content.lower()
