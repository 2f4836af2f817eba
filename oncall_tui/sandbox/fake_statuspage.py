"""A stateful fake of the Atlassian Statuspage REST API v1, for the sandbox and the tests.

It answers the part of the API oncall-tui uses (components, incidents) the way the vendor does,
as described in the published spec and API-NOTES.md section 3:

* auth by `Authorization: OAuth <key>` or the `api_key` query parameter, else 401;
* list endpoints return bare JSON arrays, paged by `page`/`per_page` (at most 100) — there is no
  pagination envelope, callers stop at a short page;
* an incident is created with 201; every change of status, and every posted body, appends an
  entry to `incident_updates` (newest first, as the vendor lists them) naming the components whose
  status it changed; the `components` map of a create or update is applied to the page's
  components; the impact follows the worst component status applied unless overridden;
* errors are `ErrorEntity` bodies (`{"message": ...}`): 401, 404, 400 and 422;
* rate limiting (the vendor allows 1 request/s per key over a rolling minute and answers 420) can
  be switched on, and tests can force the next answers to be 420 or 429.

Bodies carry only fields the vendor returns, with `null` where the vendor sends null (the spec
harness makes every property nullable, as API-NOTES.md section 0 prescribes). Paths are served
with and without the `.json` suffix the vendor's prose uses. The app is mounted at `/v1`, so the
client's `api_url` is `<base>/v1`. All time comes from the injected Clock.
"""

from __future__ import annotations

import json
import random
import string
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from oncall_tui.clock import Clock

COMPONENT_STATUSES = (
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "",
)
REALTIME_STATUSES = ("investigating", "identified", "monitoring", "resolved")
SCHEDULED_STATUSES = ("scheduled", "in_progress", "verifying", "completed")
IMPACTS = ("none", "maintenance", "minor", "major", "critical")
# How the vendor derives an incident's impact from the component statuses it sets.
_IMPACT_OF_STATUS = {
    "operational": "none",
    "": "none",
    "under_maintenance": "maintenance",
    "degraded_performance": "minor",
    "partial_outage": "major",
    "major_outage": "critical",
}
MAX_PER_PAGE = 100
MAX_NAME = 255
MAX_BODY = 25000
RATE_LIMIT_REQUESTS = 60
RATE_LIMIT_WINDOW = 60.0
_ID_ALPHABET = string.ascii_lowercase + string.digits


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class _Component:
    id: str
    name: str
    status: str
    position: int
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    group_id: str | None = None
    group: bool = False
    showcase: bool = True
    only_show_if_degraded: bool = False


@dataclass(slots=True)
class _Update:
    id: str
    status: str
    body: str
    created_at: datetime
    deliver_notifications: bool
    affected: list[dict[str, str]]


@dataclass(slots=True)
class _Incident:
    id: str
    name: str
    status: str
    created_at: datetime
    updated_at: datetime
    component_ids: list[str]
    impact: str = "none"
    impact_override: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    updates: list[_Update] = field(default_factory=list)  # oldest first
    monitoring_at: datetime | None = None
    resolved_at: datetime | None = None
    shortlink: str = ""


class FakeStatuspage:
    """One Statuspage page with its components and incidents, behind a Starlette `app`.

    `components` seeds the page: component name -> component id, all operational.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        api_key: str,
        page_id: str,
        components: Mapping[str, str],
        seed: int = 0,
        rate_limit: bool = False,
    ) -> None:
        self.clock = clock
        self.page_id = page_id
        self.rate_limit = rate_limit
        """When true, more than 60 requests in a rolling 60 s (by the clock) are answered 420."""
        self._api_key = api_key
        self._rng = random.Random(seed)
        self._components: dict[str, _Component] = {}
        self._incidents: dict[str, _Incident] = {}
        self._recent: deque[float] = deque()
        self._forced: deque[int] = deque()
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request that reached the fake, rejected ones included."""
        for name, component_id in components.items():
            self.add_component(name, component_id=component_id)
        self.app = Starlette(
            routes=[Mount("/v1", routes=self._routes())],
            exception_handlers={404: _not_found, 405: _not_allowed},
        )

    # -- test and sandbox controls ------------------------------------------------------------

    def add_component(
        self,
        name: str,
        *,
        component_id: str | None = None,
        status: str = "operational",
        group: bool = False,
        group_id: str | None = None,
        description: str | None = None,
    ) -> str:
        """Add a component (or a component group) to the page; returns its id."""
        if status not in COMPONENT_STATUSES:
            raise ValueError(f"unknown component status {status!r}")
        component_id = component_id or self._new_id()
        now = self.clock.now()
        self._components[component_id] = _Component(
            id=component_id,
            name=name,
            status=status,
            position=len(self._components) + 1,
            created_at=now,
            updated_at=now,
            description=description,
            group=group,
            group_id=group_id,
        )
        return component_id

    def fail_next(self, count: int = 1, *, status: int = 420) -> None:
        """Answer the next `count` authenticated requests with `status` (420 or 429)."""
        if status not in (420, 429):
            raise ValueError("the vendor rate-limits with 420 or 429")
        self._forced.extend([status] * count)

    def component_status(self, component_id: str) -> str:
        return self._components[component_id].status

    def incident(self, incident_id: str) -> dict[str, Any]:
        """The incident as the API would return it (a fresh copy)."""
        return self._incident_json(self._incidents[incident_id])

    @property
    def incident_ids(self) -> list[str]:
        """Every incident's id, oldest first."""
        return list(self._incidents)

    # -- HTTP plumbing --------------------------------------------------------------------------

    def _routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Callable[..., Any], list[str]]] = [
            ("/pages/{page_id}/components", self._list_components, ["GET"]),
            ("/pages/{page_id}/components/{component_id}", self._get_component, ["GET"]),
            (
                "/pages/{page_id}/components/{component_id}",
                self._update_component,
                ["PATCH", "PUT"],
            ),
            ("/pages/{page_id}/incidents/unresolved", self._list_unresolved, ["GET"]),
            ("/pages/{page_id}/incidents", self._list_incidents, ["GET"]),
            ("/pages/{page_id}/incidents", self._create_incident, ["POST"]),
            ("/pages/{page_id}/incidents/{incident_id}", self._get_incident, ["GET"]),
            (
                "/pages/{page_id}/incidents/{incident_id}",
                self._update_incident,
                ["PATCH", "PUT"],
            ),
        ]
        routes: list[BaseRoute] = []
        for path, handler, methods in table:
            endpoint = self._endpoint(handler)
            # The suffixed form first: `{incident_id}` would otherwise swallow "x.json".
            routes.append(Route(path + ".json", endpoint, methods=methods))
            routes.append(Route(path, endpoint, methods=methods))
        return routes

    def _endpoint(self, handler: Callable[..., Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            self.requests.append((request.method, request.url.path))
            try:
                self._authenticate(request)
                self._throttle()
                params = dict(request.path_params)
                if params.pop("page_id") != self.page_id:
                    raise _ApiError(404, "The requested resource could not be found.")
                body: Any = None
                if request.method in ("POST", "PATCH", "PUT"):
                    body = await _json_body(request)
                result: Response = handler(request, body, **params)
                return result
            except _ApiError as exc:
                return _error(exc.status, exc.message)

        return endpoint

    def _authenticate(self, request: Request) -> None:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "oauth" and credential.strip() == self._api_key:
            return
        if request.query_params.get("api_key") == self._api_key:
            return
        raise _ApiError(401, "Could not authenticate")

    def _throttle(self) -> None:
        if self._forced:
            raise _ApiError(self._forced.popleft(), "Rate limit exceeded")
        if not self.rate_limit:
            return
        now = self.clock.monotonic()
        while self._recent and now - self._recent[0] >= RATE_LIMIT_WINDOW:
            self._recent.popleft()
        if len(self._recent) >= RATE_LIMIT_REQUESTS:
            raise _ApiError(420, "Rate limit exceeded")
        self._recent.append(now)

    def _new_id(self) -> str:
        while True:
            candidate = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(12))
            if candidate not in self._components and candidate not in self._incidents:
                return candidate

    # -- components -----------------------------------------------------------------------------

    def _list_components(self, request: Request, _body: Any) -> Response:
        page, per_page = _paging(request, "per_page")
        ordered = sorted(self._components.values(), key=lambda c: c.position)
        chosen = ordered[(page - 1) * per_page : page * per_page]
        return JSONResponse([self._component_json(c) for c in chosen])

    def _get_component(self, _request: Request, _body: Any, component_id: str) -> Response:
        return JSONResponse(self._component_json(self._component(component_id)))

    def _update_component(self, _request: Request, body: Any, component_id: str) -> Response:
        component = self._component(component_id)
        fields = _wrapped(body, "component")
        status = fields.get("status")
        if status is not None:
            _check_component_status(status, "component[status]")
        name = fields.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise _ApiError(422, "Name can't be blank")
        description = fields.get("description")
        if description is not None and not isinstance(description, str):
            raise _ApiError(422, "description must be a string")
        now = self.clock.now()
        if status is not None and status != component.status:
            component.status = status
            component.updated_at = now
        if isinstance(name, str):
            component.name = name
            component.updated_at = now
        if "description" in fields:
            component.description = description
            component.updated_at = now
        if "group_id" in fields:
            # The vendor takes `null` as "remove from its group".
            group_id = fields["group_id"]
            if group_id is not None and group_id not in self._components:
                raise _ApiError(422, "Group not found")
            component.group_id = group_id
            component.updated_at = now
        return JSONResponse(self._component_json(component))

    def _component(self, component_id: str) -> _Component:
        component = self._components.get(component_id)
        if component is None:
            raise _ApiError(404, "The requested resource could not be found.")
        return component

    def _component_json(self, component: _Component) -> dict[str, Any]:
        return {
            "id": component.id,
            "page_id": self.page_id,
            "group_id": component.group_id,
            "created_at": _time(component.created_at),
            "updated_at": _time(component.updated_at),
            "group": component.group,
            "name": component.name,
            "description": component.description,
            "position": component.position,
            "status": component.status,
            "showcase": component.showcase,
            "only_show_if_degraded": component.only_show_if_degraded,
            "automation_email": f"component+{component.id}@notifications.statuspage.io",
            "start_date": None,
        }

    # -- incidents ------------------------------------------------------------------------------

    def _list_incidents(self, request: Request, _body: Any) -> Response:
        page, limit = _paging(request, "limit")
        query = request.query_params.get("q", "").strip().lower()
        found = [
            incident
            for incident in self._newest_first()
            if not query or query in self._searchable(incident)
        ]
        chosen = found[(page - 1) * limit : page * limit]
        return JSONResponse([self._incident_json(i) for i in chosen])

    def _list_unresolved(self, request: Request, _body: Any) -> Response:
        page, per_page = _paging(request, "per_page")
        found = [
            incident
            for incident in self._newest_first()
            if incident.status in REALTIME_STATUSES and incident.status != "resolved"
        ]
        chosen = found[(page - 1) * per_page : page * per_page]
        return JSONResponse([self._incident_json(i) for i in chosen])

    def _get_incident(self, _request: Request, _body: Any, incident_id: str) -> Response:
        return JSONResponse(self._incident_json(self._incident(incident_id)))

    def _create_incident(self, _request: Request, body: Any) -> Response:
        fields = _wrapped(body, "incident")
        name = fields.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _ApiError(422, "Name can't be blank")
        if len(name) > MAX_NAME:
            raise _ApiError(422, f"Name is too long (maximum is {MAX_NAME} characters)")
        status = fields.get("status", "investigating")
        if status in SCHEDULED_STATUSES:
            # Scheduled maintenance needs scheduled_for/until; oncall-tui never creates one.
            raise _ApiError(422, "Scheduled incidents are not supported by this fake")
        _check_enum(status, REALTIME_STATUSES, "incident[status]")
        self._check_common(fields)
        components = _component_map(fields.get("components"))
        component_ids = _component_list(fields.get("component_ids"))
        self._check_components([*components, *component_ids])
        now = self.clock.now()
        incident = _Incident(
            id=self._new_id(),
            name=name,
            status=status,
            created_at=now,
            updated_at=now,
            component_ids=list(dict.fromkeys([*component_ids, *components])),
            impact_override=fields.get("impact_override"),
            metadata=dict(fields.get("metadata") or {}),
        )
        incident.shortlink = f"https://stspg.io/{incident.id[:9]}"
        self._incidents[incident.id] = incident
        affected = self._apply_components(incident, components)
        self._append_update(
            incident,
            status=status,
            body=str(fields.get("body") or ""),
            deliver=bool(fields.get("deliver_notifications", True)),
            affected=affected,
        )
        self._enter_status(incident, None, status, now)
        return JSONResponse(self._incident_json(incident), status_code=201)

    def _update_incident(self, _request: Request, body: Any, incident_id: str) -> Response:
        incident = self._incident(incident_id)
        fields = _wrapped(body, "incident")
        name = fields.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise _ApiError(422, "Name can't be blank")
        if isinstance(name, str) and len(name) > MAX_NAME:
            raise _ApiError(422, f"Name is too long (maximum is {MAX_NAME} characters)")
        status = fields.get("status")
        if status is not None:
            _check_enum(status, REALTIME_STATUSES, "incident[status]")
        self._check_common(fields)
        components = _component_map(fields.get("components"))
        component_ids = _component_list(fields.get("component_ids"))
        self._check_components([*components, *component_ids])
        now = self.clock.now()
        if isinstance(name, str):
            incident.name = name
        if "impact_override" in fields:
            incident.impact_override = fields["impact_override"]
        if "metadata" in fields:
            incident.metadata = dict(fields["metadata"] or {})
        for component_id in [*component_ids, *components]:
            if component_id not in incident.component_ids:
                incident.component_ids.append(component_id)
        affected = self._apply_components(incident, components)
        body_text = fields.get("body")
        new_status = status if status is not None else incident.status
        if new_status != incident.status or body_text:
            self._append_update(
                incident,
                status=new_status,
                body=str(body_text or ""),
                deliver=bool(fields.get("deliver_notifications", True)),
                affected=affected,
            )
        self._enter_status(incident, incident.status, new_status, now)
        incident.updated_at = now
        return JSONResponse(self._incident_json(incident))

    def _check_common(self, fields: Mapping[str, Any]) -> None:
        body = fields.get("body")
        if body is not None and not isinstance(body, str):
            raise _ApiError(422, "Body must be a string")
        if isinstance(body, str) and len(body) > MAX_BODY:
            raise _ApiError(422, f"Body is too long (maximum is {MAX_BODY} characters)")
        impact = fields.get("impact_override")
        if impact is not None:
            _check_enum(impact, IMPACTS, "incident[impact_override]")
        deliver = fields.get("deliver_notifications")
        if deliver is not None and not isinstance(deliver, bool):
            raise _ApiError(422, "deliver_notifications must be true or false")
        metadata = fields.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict)
            or not all(isinstance(value, dict) for value in metadata.values())
        ):
            raise _ApiError(422, "Metadata top-level values must be objects")

    def _check_components(self, component_ids: Iterable[str]) -> None:
        for component_id in component_ids:
            if component_id not in self._components:
                raise _ApiError(422, f"Component {component_id} not found on this page")

    def _apply_components(
        self, incident: _Incident, statuses: Mapping[str, str]
    ) -> list[dict[str, str]]:
        """Set the page's components as the incident says; what changed, for its update."""
        affected: list[dict[str, str]] = []
        now = self.clock.now()
        for component_id, status in statuses.items():
            component = self._components[component_id]
            affected.append(
                {
                    "code": component_id,
                    "name": component.name,
                    "old_status": component.status,
                    "new_status": status,
                }
            )
            if component.status != status:
                component.status = status
                component.updated_at = now
            # The vendor's impact never drops while the incident lasts: a resolved outage
            # stays "critical" in the history.
            derived = _IMPACT_OF_STATUS[status]
            if IMPACTS.index(derived) > IMPACTS.index(incident.impact):
                incident.impact = derived
        return affected

    def _append_update(
        self,
        incident: _Incident,
        *,
        status: str,
        body: str,
        deliver: bool,
        affected: list[dict[str, str]],
    ) -> None:
        incident.updates.append(
            _Update(
                id=self._new_id(),
                status=status,
                body=body,
                created_at=self.clock.now(),
                deliver_notifications=deliver,
                affected=affected,
            )
        )

    def _enter_status(
        self, incident: _Incident, old_status: str | None, status: str, now: datetime
    ) -> None:
        if status == "monitoring" and incident.monitoring_at is None:
            incident.monitoring_at = now
        if status == "resolved" and old_status != "resolved":
            incident.resolved_at = now
        elif status != "resolved":
            incident.resolved_at = None  # reopened
        incident.status = status

    def _incident(self, incident_id: str) -> _Incident:
        incident = self._incidents.get(incident_id)
        if incident is None:
            raise _ApiError(404, "The requested resource could not be found.")
        return incident

    def _newest_first(self) -> list[_Incident]:
        return sorted(self._incidents.values(), key=lambda i: i.created_at, reverse=True)

    def _searchable(self, incident: _Incident) -> str:
        parts = [incident.name, incident.status, *(u.body for u in incident.updates)]
        return "\n".join(parts).lower()

    def _incident_json(self, incident: _Incident) -> dict[str, Any]:
        impact = incident.impact_override or incident.impact
        return {
            "id": incident.id,
            "components": [
                self._component_json(self._components[c]) for c in incident.component_ids
            ],
            "created_at": _time(incident.created_at),
            "impact": impact,
            "impact_override": incident.impact_override,
            "incident_updates": [
                self._update_json(incident, update) for update in reversed(incident.updates)
            ],
            "metadata": json.loads(json.dumps(incident.metadata)),
            "monitoring_at": _optional_time(incident.monitoring_at),
            "name": incident.name,
            "page_id": self.page_id,
            "postmortem_body": None,
            "postmortem_body_last_updated_at": None,
            "postmortem_ignored": False,
            "postmortem_notified_subscribers": False,
            "postmortem_notified_twitter": False,
            "postmortem_published_at": None,
            "resolved_at": _optional_time(incident.resolved_at),
            "scheduled_auto_completed": False,
            "scheduled_auto_in_progress": False,
            "scheduled_for": None,
            "auto_transition_deliver_notifications_at_end": False,
            "auto_transition_deliver_notifications_at_start": False,
            "auto_transition_to_maintenance_state": False,
            "auto_transition_to_operational_state": False,
            "scheduled_remind_prior": False,
            "scheduled_reminded_at": None,
            "scheduled_until": None,
            "shortlink": incident.shortlink,
            "status": incident.status,
            "updated_at": _time(incident.updated_at),
            "reminder_intervals": None,
        }

    def _update_json(self, incident: _Incident, update: _Update) -> dict[str, Any]:
        return {
            "id": update.id,
            "incident_id": incident.id,
            "affected_components": [dict(a) for a in update.affected] or None,
            "body": update.body,
            "created_at": _time(update.created_at),
            "custom_tweet": None,
            "deliver_notifications": update.deliver_notifications,
            "display_at": _time(update.created_at),
            "status": update.status,
            "tweet_id": None,
            "twitter_updated_at": None,
            "updated_at": _time(update.created_at),
            "wants_twitter_update": False,
        }


async def _not_found(_request: Request, _exc: Exception) -> Response:
    return _error(404, "The requested resource could not be found.")


async def _not_allowed(_request: Request, _exc: Exception) -> Response:
    return _error(405, "Method not allowed")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        raise _ApiError(400, "Request body is not valid JSON") from None


def _wrapped(body: Any, key: str) -> Mapping[str, Any]:
    """The `{"<key>": {...}}` wrapper every write uses; 422 when it is missing."""
    fields = body.get(key) if isinstance(body, dict) else None
    if not isinstance(fields, dict):
        raise _ApiError(422, f"Missing parameter: {key}")
    return fields


def _paging(request: Request, size_name: str) -> tuple[int, int]:
    page = _int_param(request, "page", 1)
    size = _int_param(request, size_name, MAX_PER_PAGE)
    if page < 1 or size < 1:
        raise _ApiError(400, f"page and {size_name} must be positive")
    return page, min(size, MAX_PER_PAGE)


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _ApiError(400, f"{name} must be an integer") from None


def _check_enum(value: Any, allowed: Sequence[str], where: str) -> None:
    if value not in allowed:
        raise _ApiError(422, f"{where} must be one of {', '.join(repr(a) for a in allowed)}")


def _check_component_status(value: Any, where: str) -> None:
    _check_enum(value, COMPONENT_STATUSES, where)


def _component_map(raw: Any) -> dict[str, str]:
    # The spec models this map with one example key, so a validator lets any status through
    # under a real id: the vendor's own check is reproduced here.
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _ApiError(422, "incident[components] must be a map of component id to status")
    for component_id, status in raw.items():
        _check_component_status(status, f"incident[components][{component_id}]")
    return {str(k): str(v) for k, v in raw.items()}


def _component_list(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise _ApiError(422, "incident[component_ids] must be a list of component ids")
    return list(raw)


def _time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`, as the vendor writes times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _optional_time(moment: datetime | None) -> str | None:
    return None if moment is None else _time(moment)
