"""Client for the Atlassian Statuspage REST API v1: components and incidents of one page.

`StatuspageClient` returns domain objects (Component, StatusIncident, StatusIncidentDetail),
never raw JSON. Vendor facts it relies on (API-NOTES.md section 3):

* auth is `Authorization: OAuth <api key>`; paths are used without the `.json` suffix;
* list endpoints answer bare arrays with no pagination envelope: pages are requested until one
  comes back shorter than asked (at most 100 per page);
* writes are wrapped (`{"component": {...}}`, `{"incident": {...}}`); an incident's `components`
  map sets the page's component statuses; every status or body change appends an incident update,
  listed newest first;
* rate limiting is 1 request/s per key over a rolling minute and is answered 420 or 429: both are
  retried by `send()` and, when the retries run out, raised as a retryable ProviderError so the
  outbox tries again later.

Every method raises ProviderError (source "statuspage") on failure, never with the key in it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from oncall_tui.clock import Clock
from oncall_tui.models import Component, StatusIncident
from oncall_tui.providers.errors import ProviderError
from oncall_tui.providers.http import send

SOURCE = "statuspage"
PER_PAGE = 100
MAX_PAGES = 100
"""A bound on paging: 10,000 components or incidents, far beyond any real page."""
MAX_NAME = 255
MAX_BODY = 25000
RATE_LIMITED = frozenset({420, 429})
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = (
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
)
IMPACTS = ("none", "maintenance", "minor", "major", "critical")
T = TypeVar("T")
_NO_COMPONENTS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class StatusIncidentUpdate:
    """One entry of an incident's public history: what customers read at that moment."""

    id: str
    status: str
    body: str
    created_at: datetime
    # (component id, old status, new status) for each component this update changed.
    affected_components: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class StatusIncidentDetail:
    """An incident with what the summary `StatusIncident` leaves out.

    `updates` are newest first, as the vendor lists them; `components` are the affected
    components with their current statuses; `metadata` is the incident's free-form metadata
    (automation marks its own incidents there).
    """

    incident: StatusIncident
    created_at: datetime
    resolved_at: datetime | None
    shortlink: str
    updates: tuple[StatusIncidentUpdate, ...]
    components: tuple[Component, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.incident.id


class StatuspageClient:
    """One Statuspage page. Every method raises ProviderError on failure."""

    def __init__(
        self,
        api_url: str,
        page_id: str,
        api_key: str,
        http: httpx.AsyncClient,
        *,
        clock: Clock,
        read_attempts: int = 2,
        write_attempts: int = 3,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.page_id = page_id
        self._http = http
        self._clock = clock
        self._headers = {"Authorization": f"OAuth {api_key}", "Accept": "application/json"}
        # Polls repeat soon anyway; operator writes try harder before giving up to the outbox.
        self.read_attempts = read_attempts
        self.write_attempts = write_attempts

    def __repr__(self) -> str:
        return f"StatuspageClient(api_url={self.api_url!r}, page_id={self.page_id!r})"

    # -- components -----------------------------------------------------------------------------

    async def components(self, *, include_groups: bool = False) -> list[Component]:
        """GET /pages/{page_id}/components, every page of it, in the page's order.

        Component groups are left out unless asked for: their status is derived from their
        members and cannot be set.
        """
        items = await self._paged("/components", "per_page", PER_PAGE, None)
        return [
            self._parse(item, "component", parse_component)
            for item in items
            if include_groups or not (isinstance(item, Mapping) and item.get("group") is True)
        ]

    async def update_component(self, component_id: str, status: str) -> Component:
        """PATCH /pages/{page_id}/components/{id} with a new status."""
        _check_choice(status, COMPONENT_STATUSES, "component status")
        response = await self._request(
            "PATCH",
            f"/components/{_segment(component_id)}",
            json={"component": {"status": status}},
            idempotent=True,  # setting a status twice leaves it set: safe to resend
        )
        return self._parse(self._json(response), "component", parse_component)

    # -- incidents ------------------------------------------------------------------------------

    async def unresolved_incidents(self) -> list[StatusIncident]:
        """GET /pages/{page_id}/incidents/unresolved, every page of it, newest first."""
        return [detail.incident for detail in await self.unresolved_incident_details()]

    async def unresolved_incident_details(self) -> list[StatusIncidentDetail]:
        """Like `unresolved_incidents`, with each incident's history, components and metadata."""
        items = await self._paged("/incidents/unresolved", "per_page", PER_PAGE, None)
        return [self._parse(item, "incident", parse_incident_detail) for item in items]

    async def incidents(self, *, query: str = "", limit: int = 25) -> list[StatusIncident]:
        """GET /pages/{page_id}/incidents: the newest `limit` incidents, matching `query` if given.

        The vendor searches names, statuses, postmortems and update bodies for `query`.
        """
        if limit < 1:
            return []
        extra = [("q", query)] if query else []
        items = await self._paged("/incidents", "limit", min(limit, PER_PAGE), limit, extra)
        return [self._parse(item, "incident", parse_incident) for item in items]

    async def incident(self, incident_id: str) -> StatusIncidentDetail:
        """GET /pages/{page_id}/incidents/{id} with its history."""
        response = await self._request("GET", f"/incidents/{_segment(incident_id)}")
        return self._parse(self._json(response), "incident", parse_incident_detail)

    async def create_incident(
        self,
        *,
        name: str,
        status: str,
        body: str,
        impact: str | None = None,
        components: Mapping[str, str] = _NO_COMPONENTS,
        deliver_notifications: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> StatusIncident:
        """POST /pages/{page_id}/incidents (201): a realtime incident, public at once.

        `components` maps component id -> the status to set; `impact` overrides the impact the
        vendor derives from those statuses. Not retried after a response that may mean it was
        created (5xx or a lost answer): the error stays retryable for the outbox, which should
        look for the incident (e.g. by `metadata`) before creating it again.
        """
        fields = _incident_fields(
            name=name,
            status=status,
            body=body,
            impact=impact,
            components=components,
            metadata=metadata,
        )
        if not name.strip():
            raise ProviderError(SOURCE, "an incident needs a name")
        fields["deliver_notifications"] = deliver_notifications
        response = await self._request(
            "POST",
            "/incidents",
            json={"incident": fields},
            should_retry=lambda r: r.status_code in RATE_LIMITED,
            retry_5xx_later=True,
        )
        return self._parse(self._json(response), "incident", parse_incident)

    async def update_incident(
        self,
        incident_id: str,
        *,
        status: str | None = None,
        body: str | None = None,
        components: Mapping[str, str] | None = None,
        name: str | None = None,
        impact: str | None = None,
        deliver_notifications: bool = True,
    ) -> StatusIncident:
        """PATCH /pages/{page_id}/incidents/{id}: post an update, change components, rename.

        Resolving is `status="resolved"` with a body and the components set back to
        "operational". Sending the same update twice posts it twice (the vendor appends an
        update per call), so it is repeated here only after a rate-limit answer; a 5xx or a lost
        answer stays retryable for the outbox, which can compare the incident's history first.
        """
        fields = _incident_fields(
            name=name, status=status, body=body, impact=impact, components=components
        )
        if name is not None and not name.strip():
            raise ProviderError(SOURCE, "an incident needs a name")
        if not fields:
            raise ProviderError(SOURCE, "nothing to update")
        fields["deliver_notifications"] = deliver_notifications
        response = await self._request(
            "PATCH",
            f"/incidents/{_segment(incident_id)}",
            json={"incident": fields},
            idempotent=False,
            should_retry=lambda r: r.status_code in RATE_LIMITED,
            retry_5xx_later=True,
        )
        return self._parse(self._json(response), "incident", parse_incident)

    # -- plumbing -------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        json: Any = None,
        idempotent: bool | None = None,
        should_retry: Callable[[httpx.Response], bool] | None = None,
        retry_5xx_later: bool = False,
    ) -> httpx.Response:
        kwargs: dict[str, Any] = {"headers": self._headers}
        if params:
            kwargs["params"] = list(params)
        if json is not None:
            kwargs["json"] = json
        try:
            return await send(
                self._http,
                method,
                f"{self.api_url}/pages/{_segment(self.page_id)}{path}",
                source=SOURCE,
                clock=self._clock,
                attempts=self.read_attempts if method == "GET" else self.write_attempts,
                idempotent=idempotent,
                should_retry=should_retry,
                **kwargs,
            )
        except ProviderError as exc:
            if exc.status in RATE_LIMITED:
                # Whatever send() made of it, a rate-limited request was rejected, not applied:
                # always worth another try later.
                raise ProviderError(
                    SOURCE,
                    f"rate limited (HTTP {exc.status}); try again later",
                    status=exc.status,
                    retryable=True,
                ) from None
            if retry_5xx_later and exc.status is not None and exc.status >= 500:
                raise ProviderError(
                    SOURCE, exc.message, status=exc.status, retryable=True
                ) from None
            raise

    async def _paged(
        self,
        path: str,
        size_name: str,
        size: int,
        limit: int | None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> list[Any]:
        """Every item of a bare-array list endpoint, page by page until a short page."""
        items: list[Any] = []
        seen: set[str] = set()
        for page in range(1, MAX_PAGES + 1):
            params = [*extra, ("page", str(page)), (size_name, str(size))]
            response = await self._request("GET", path, params=params)
            batch = self._json(response)
            if not isinstance(batch, list):
                raise ProviderError(SOURCE, f"unexpected answer for {path}: not a list")
            fresh = [item for item in batch if _item_id(item) not in seen]
            # A server that ignores `page` repeats its first page forever: stop there.
            if batch and not fresh:
                break
            seen.update(_item_id(item) for item in fresh)
            items.extend(fresh)
            if limit is not None and len(items) >= limit:
                return items[:limit]
            if len(batch) < size:
                break
        return items

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ProviderError(SOURCE, f"answer from {response.url.path} is not JSON") from None

    def _parse(self, item: Any, what: str, parse: Callable[[Mapping[str, Any]], T]) -> T:
        try:
            if not isinstance(item, Mapping):
                raise TypeError("not an object")
            return parse(item)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderError(
                SOURCE, f"unexpected answer for {what}: {type(exc).__name__} {exc}"
            ) from None


def _incident_fields(
    *,
    name: str | None,
    status: str | None,
    body: str | None,
    impact: str | None,
    components: Mapping[str, str] | None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `incident` object of a write, checked before anything is sent.

    A request the vendor would refuse with 422 raises a final ProviderError here, so the outbox
    does not retry it.
    """
    fields: dict[str, Any] = {}
    if name is not None:
        if len(name) > MAX_NAME:
            raise ProviderError(SOURCE, f"incident name longer than {MAX_NAME} characters")
        fields["name"] = name
    if status is not None:
        _check_choice(status, INCIDENT_STATUSES, "incident status")
        fields["status"] = status
    if body is not None:
        if len(body) > MAX_BODY:
            raise ProviderError(SOURCE, f"update longer than {MAX_BODY} characters")
        fields["body"] = body
    if impact is not None:
        _check_choice(impact, IMPACTS, "impact")
        fields["impact_override"] = impact
    if components:
        for component_status in components.values():
            _check_choice(component_status, COMPONENT_STATUSES, "component status")
        fields["components"] = dict(components)
        # component_ids decides whose subscribers hear of it; the map alone sets statuses.
        fields["component_ids"] = list(components)
    if metadata is not None:
        if not all(isinstance(value, Mapping) for value in metadata.values()):
            raise ProviderError(SOURCE, "incident metadata values must be objects")
        fields["metadata"] = {key: dict(value) for key, value in metadata.items()}
    return fields


def _check_choice(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise ProviderError(SOURCE, f"unknown {what} {value!r} (one of {', '.join(allowed)})")


def _segment(identifier: str) -> str:
    """An id as one path segment: a stray "/" or "?" (a typo in config) cannot change the path."""
    return quote(identifier, safe="")


def _item_id(item: Any) -> str:
    return str(item.get("id")) if isinstance(item, Mapping) else repr(item)


def parse_component(item: Mapping[str, Any]) -> Component:
    """One vendor `Component` as a Component."""
    return Component(id=str(item["id"]), name=str(item["name"]), status=str(item["status"] or ""))


def parse_incident(item: Mapping[str, Any]) -> StatusIncident:
    """One vendor `Incident` as a StatusIncident; `latest_update` is the newest update's body."""
    updates = _updates(item)
    latest = updates[0].body if updates else ""
    components = item.get("components") or ()
    return StatusIncident(
        id=str(item["id"]),
        name=str(item["name"]),
        status=str(item["status"]),
        impact=str(item.get("impact") or "none"),
        updated_at=parse_time(item["updated_at"]),
        latest_update=latest,
        component_ids=tuple(str(c["id"]) for c in components),
    )


def parse_incident_detail(item: Mapping[str, Any]) -> StatusIncidentDetail:
    """One vendor `Incident` with its history, components and metadata."""
    metadata = item.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise TypeError("metadata is not an object")
    return StatusIncidentDetail(
        incident=parse_incident(item),
        created_at=parse_time(item["created_at"]),
        resolved_at=parse_optional_time(item.get("resolved_at")),
        shortlink=str(item.get("shortlink") or ""),
        updates=_updates(item),
        components=tuple(parse_component(c) for c in item.get("components") or ()),
        metadata=dict(metadata),
    )


def _updates(item: Mapping[str, Any]) -> tuple[StatusIncidentUpdate, ...]:
    updates = [_update(raw) for raw in item.get("incident_updates") or ()]
    # The vendor lists newest first; sorting (stable) makes that true whatever the order sent.
    updates.sort(key=lambda update: update.created_at, reverse=True)
    return tuple(updates)


def _update(raw: Mapping[str, Any]) -> StatusIncidentUpdate:
    affected = tuple(
        (
            str(change.get("code") or ""),
            str(change.get("old_status") or ""),
            str(change.get("new_status") or ""),
        )
        for change in raw.get("affected_components") or ()
        if isinstance(change, Mapping)
    )
    return StatusIncidentUpdate(
        id=str(raw["id"]),
        status=str(raw["status"]),
        body=str(raw.get("body") or ""),
        created_at=parse_time(raw.get("display_at") or raw["created_at"]),
        affected_components=affected,
    )


def parse_time(text: Any) -> datetime:
    """An ISO 8601 time as the vendor writes it (zone `Z` or an offset) as aware UTC."""
    if not isinstance(text, str):
        raise TypeError(f"expected a time string, got {type(text).__name__}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return moment.astimezone(UTC)


def parse_optional_time(text: Any) -> datetime | None:
    return None if text is None or text == "" else parse_time(text)
