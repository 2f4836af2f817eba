"""Checks HTTP exchanges against the vendors' published OpenAPI 3 specs (PagerDuty, Statuspage).

Tests put `ValidatingTransport` between a client and a fake, so every request our clients send and
every response the fakes return is validated; a violation raises `SpecViolation` (an
AssertionError) in the test and is also recorded in `transport.violations`.

The specs are loaded as published and patched in memory with the load-time fixes listed in
API-NOTES.md section 0 (the files are never edited):

- in responses, every object property may be null (both vendors return nulls the specs do not
  declare); requests are checked without that relaxation;
- `readOnly` is stripped from PagerDuty's `*Reference` schemas (reassign requests write them);
- PagerDuty's spec validator is off (a broken `default` in an unused parameter);
- Statuspage: `metadata` type `Object` -> `object`, `PartialStartDate`/`PartialEndDate` -> `string`;
- Statuspage 420/429 answers are not validated (the spec declares neither).
Beyond section 0: PagerDuty `Oncall.user`/`escalation_policy`/`schedule` may also be the full
object (what `include[]` does, as `Incident.assignments[].assignee` already allows), and an error
status an operation does not declare is checked against PagerDuty's shared error body.

How request URLs map onto the specs' servers: only the path matters, the host is ignored.
- "pagerduty-rest" (server https://api.pagerduty.com): `api_url` is the fake's origin and paths
  sit at its root: `GET /incidents`.
- "pagerduty-events" (server https://events.pagerduty.com/v2): `events_url` is the fake's origin
  and the client posts to `/v2/enqueue`.
- "statuspage" (server https://api.statuspage.io/v1): `api_url` is `<origin>/v1`, paths are
  `/v1/pages/{page_id}/...` (without `.json`).
A fake mounted under a sub-path (several fakes on one port) passes `mount="/prefix"` to
`ValidatingTransport`; that prefix is removed before matching.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_schema_validator import OAS30ReadValidator
from starlette.requests import Request
from starlette.responses import Response
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPECS_DIR = Path(__file__).resolve().parents[2] / "shared" / "specs"

SpecName = Literal["pagerduty-rest", "pagerduty-events", "statuspage"]

_FILES: dict[str, str] = {
    "pagerduty-rest": "pagerduty-rest-v2-openapiv3.json",
    "pagerduty-events": "pagerduty-events-v2-openapiv3.json",
    "statuspage": "statuspage-v1-openapi3.json",
}

_NULL: dict[str, Any] = {"enum": [None]}


class SpecViolation(AssertionError):
    """A request or response that the vendor's spec does not allow."""


def _nullable(schema: Any) -> Any:
    """The same schema, but also accepting null."""
    if not isinstance(schema, dict):
        return schema
    if "type" in schema and "$ref" not in schema:
        schema["nullable"] = True
        if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
            schema["enum"].append(None)
        return schema
    if schema.get("anyOf") and _NULL in schema["anyOf"]:
        return schema
    # A $ref (or a composition) cannot carry `nullable` itself: offer null as an alternative.
    # readOnly/writeOnly stay on the property, where `required` looks for them.
    wrapper: dict[str, Any] = {"anyOf": [schema, dict(_NULL)]}
    for key in ("readOnly", "writeOnly", "description"):
        if key in schema:
            wrapper[key] = schema.pop(key) if key != "description" else schema[key]
    return wrapper


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict in a JSON document, parents before children."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            yield current
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def _make_properties_nullable(spec: dict[str, Any]) -> None:
    for node in list(_walk(spec)):
        properties = node.get("properties")
        # A "properties" key that is itself a schema is a property named "properties".
        if not isinstance(properties, dict) or isinstance(properties.get("type"), str):
            continue
        for name, schema in list(properties.items()):
            properties[name] = _nullable(schema)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            node["additionalProperties"] = _nullable(extra)


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def _fix_pagerduty_rest(spec: dict[str, Any]) -> None:
    # *Reference schemas inherit their readOnly id/type from shared bases (Tag/allOf/0), so the
    # strip follows $refs.
    pending = [s for n, s in spec["components"]["schemas"].items() if "Reference" in n]
    seen: set[int] = set()
    while pending:
        schema = pending.pop()
        if id(schema) in seen:
            continue
        seen.add(id(schema))
        for node in _walk(schema):
            node.pop("readOnly", None)
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                pending.append(_resolve(spec, ref))
    # GET /oncalls documents include[]=users/escalation_policies/schedules, which put the full
    # objects where the schema only allows references; Incident.assignments[].assignee already
    # says oneOf [UserReference, User], so the same is allowed here.
    oncall = spec["components"]["schemas"]["Oncall"]["properties"]
    for name, full in (("user", "User"), ("escalation_policy", "EscalationPolicy")):
        oncall[name] = {"oneOf": [oncall[name], {"$ref": f"#/components/schemas/{full}"}]}
    oncall["schedule"] = {
        "oneOf": [*oncall["schedule"]["oneOf"], {"$ref": "#/components/schemas/Schedule"}]
    }
    # The broken default ("20 - incident_summary" on an integer) would fail spec validation if on.
    param = spec["components"]["parameters"].get("sre_memories_limit", {})
    param.get("schema", {}).pop("default", None)


def _fix_statuspage(spec: dict[str, Any]) -> None:
    for node in _walk(spec):
        if node.get("type") == "Object":
            node["type"] = "object"
        if node.get("type") in ("PartialStartDate", "PartialEndDate"):
            node["type"] = "string"


@dataclass
class _OpenAPIRequest:
    """An httpx request seen by openapi-core, placed on the spec's own server."""

    request: httpx.Request
    host_url: str
    path: str
    parameters: RequestParameters

    @property
    def method(self) -> str:
        return self.request.method.lower()

    @property
    def body(self) -> bytes | None:
        content = self.request.content
        return content or None

    @property
    def content_type(self) -> str:
        return str(self.request.headers.get("Content-Type", "")).lower()


@dataclass
class _OpenAPIResponse:
    response: httpx.Response

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def content_type(self) -> str:
        return str(self.response.headers.get("Content-Type", "")).lower()

    @property
    def headers(self) -> Headers:
        return Headers(list(self.response.headers.multi_items()))

    @property
    def data(self) -> bytes | None:
        return self.response.content or None


class SpecValidator:
    """One vendor spec, patched and loaded once per process."""

    _cache: ClassVar[dict[str, SpecValidator]] = {}

    def __init__(
        self,
        name: str,
        request_spec: dict[str, Any],
        response_spec: dict[str, Any],
        *,
        skip_statuses: frozenset[int],
    ) -> None:
        self.name = name
        server = urlsplit(request_spec["servers"][0]["url"])
        self.host_url = f"{server.scheme}://{server.netloc}"
        self.server_path = server.path.rstrip("/")
        self.skip_statuses = skip_statuses
        self._spec = response_spec
        self._templates = [
            (re.compile("^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(t)) + "$"), t)
            for t in map(str, response_spec["paths"])
        ]
        config = Config(spec_validator_cls=None)
        self._requests = OpenAPI.from_dict(request_spec, config=config)
        self._responses = OpenAPI.from_dict(response_spec, config=config)

    @classmethod
    def load(cls, name: SpecName) -> SpecValidator:
        if name not in cls._cache:
            if name not in _FILES:
                raise ValueError(f"unknown spec {name!r}")
            if not (SPECS_DIR / _FILES[name]).exists():
                reason = f"vendor spec not found beside the repository ({_FILES[name]})"
                if os.environ.get("CI"):
                    pytest.fail(reason, pytrace=False)
                pytest.skip(reason)
            spec = json.loads((SPECS_DIR / _FILES[name]).read_text(encoding="utf-8"))
            if name == "pagerduty-rest":
                _fix_pagerduty_rest(spec)
            if name == "statuspage":
                _fix_statuspage(spec)
            # Nulls are tolerated in what the vendor answers, not in what our clients send.
            response_spec = copy.deepcopy(spec)
            _make_properties_nullable(response_spec)
            skip = frozenset({420, 429}) if name == "statuspage" else frozenset()
            cls._cache[name] = cls(name, spec, response_spec, skip_statuses=skip)
        return cls._cache[name]

    def check_request(self, request: httpx.Request, *, mount: str = "") -> None:
        """Raises SpecViolation when the spec does not allow this request."""
        adapted = self._adapt(request, mount)
        try:
            self._requests.validate_request(adapted)
        except Exception as exc:  # openapi-core raises many unrelated types
            raise SpecViolation(self._describe("request", request, exc)) from exc

    def check_response(
        self, request: httpx.Request, response: httpx.Response, *, mount: str = ""
    ) -> None:
        """Raises SpecViolation when the spec does not allow this answer to that request."""
        if response.status_code in self.skip_statuses:
            return
        adapted = self._adapt(request, mount)
        where = f"response {response.status_code}"
        try:
            self._responses.validate_response(adapted, _OpenAPIResponse(response))
        except ResponseNotFound as exc:
            if self._error_schema() is None or response.status_code < 400:
                raise SpecViolation(self._describe(where, request, exc)) from exc
            self._check_undeclared_error(request, response, where)
        except Exception as exc:
            raise SpecViolation(self._describe(where, request, exc)) from exc
        extra = self.undocumented_fields(request, response, mount=mount)
        if extra:
            head = f"{self.name}: {request.method} {request.url.path} {where}"
            raise SpecViolation(f"{head}: fields the spec does not document: {', '.join(extra)}")

    def _error_schema(self) -> dict[str, Any] | None:
        """PagerDuty's shared error body, which every REST operation may answer with.

        Operations often leave out statuses the API really returns (PUT /incidents/{id} declares
        no 400, yet "Already Acknowledged" is a 400), so those are checked against this shape.
        """
        if self.name != "pagerduty-rest":
            return None
        schema = self._spec["components"]["responses"]["Conflict"]["content"]["application/json"]
        return dict(schema["schema"])

    def _check_undeclared_error(
        self, request: httpx.Request, response: httpx.Response, where: str
    ) -> None:
        head = f"{self.name}: {request.method} {request.url.path} {where}"
        schema = self._error_schema()
        assert schema is not None
        try:
            body = response.json()
        except ValueError as exc:
            raise SpecViolation(f"{head}: error body is not JSON") from exc
        errors = list(OAS30ReadValidator(schema).iter_errors(body))
        if errors or not isinstance(body, dict) or not isinstance(body.get("error"), dict):
            lines = [f"{head}: not PagerDuty's error body {{'error': {{code, message, errors}}}}"]
            for error in errors:
                lines.extend(_error_lines(error, "  "))
            raise SpecViolation("\n".join(lines))
        found: list[str] = []
        self._undocumented([schema], body, "", found)
        if found:
            raise SpecViolation(f"{head}: fields the spec does not document: {', '.join(found)}")

    def undocumented_fields(
        self, request: httpx.Request, response: httpx.Response, *, mount: str = ""
    ) -> list[str]:
        """Paths of JSON fields in the answer that its schema does not declare.

        Schemas are open by default, so the validation above accepts invented fields; a fake must
        not answer with fields the vendor lacks, so they are looked for here. Objects without
        declared properties (free-form maps such as custom_details) may hold anything.
        """
        schema = self._response_schema(request, response, mount)
        if schema is None or not response.content:
            return []
        try:
            body = response.json()
        except ValueError:
            return []
        found: list[str] = []
        self._undocumented([schema], body, "", found)
        return found

    def _response_schema(
        self, request: httpx.Request, response: httpx.Response, mount: str
    ) -> Any | None:
        path = request.url.path
        if mount:
            path = path[len(mount.rstrip("/")) :]
        path = path.removeprefix(self.server_path)
        template = next((t for pattern, t in self._templates if pattern.match(path)), None)
        if template is None:
            return None
        operation = self._spec["paths"][template].get(request.method.lower(), {})
        responses = operation.get("responses", {})
        answer = responses.get(str(response.status_code), responses.get("default"))
        if answer is None:
            return self._error_schema() if response.status_code >= 400 else None
        answer = self._deref(answer)
        media = answer.get("content", {})
        content = media.get("application/json") or next(iter(media.values()), None)
        return None if content is None else content.get("schema")

    def _deref(self, schema: Any) -> Any:
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            schema = _resolve(self._spec, schema["$ref"])
        return schema

    def _flatten(self, schemas: list[Any]) -> list[dict[str, Any]]:
        flat: list[dict[str, Any]] = []
        pending = list(schemas)
        while pending:
            schema = self._deref(pending.pop())
            if not isinstance(schema, dict):
                continue
            flat.append(schema)
            for key in ("allOf", "anyOf", "oneOf"):
                pending.extend(schema.get(key, ()))
        return flat

    def _undocumented(self, schemas: list[Any], value: Any, path: str, found: list[str]) -> None:
        flat = self._flatten(schemas)
        if isinstance(value, dict):
            declared: dict[str, list[Any]] = {}
            extra: list[Any] = []
            free_form = True
            for schema in flat:
                if isinstance(schema.get("properties"), dict):
                    free_form = False
                    for name, sub in schema["properties"].items():
                        declared.setdefault(name, []).append(sub)
                more = schema.get("additionalProperties")
                if more is True:
                    free_form = True
                elif isinstance(more, dict):
                    extra.append(more)
            for key, item in value.items():
                where = f"{path}.{key}" if path else key
                if key in declared:
                    self._undocumented(declared[key], item, where, found)
                elif extra:
                    self._undocumented(extra, item, where, found)
                elif not free_form:
                    found.append(where)
        elif isinstance(value, list):
            items = [schema["items"] for schema in flat if "items" in schema]
            if items:
                for index, item in enumerate(value):
                    self._undocumented(items, item, f"{path}[{index}]", found)

    def _adapt(self, request: httpx.Request, mount: str) -> _OpenAPIRequest:
        path = request.url.path
        if mount:
            if not path.startswith(mount.rstrip("/") + "/"):
                raise SpecViolation(f"{self.name}: {request.method} {path}: outside {mount}")
            path = path[len(mount.rstrip("/")) :]
        query = parse_qs(request.url.query.decode("ascii"), keep_blank_values=True)
        parameters = RequestParameters(
            query=ImmutableMultiDict(list(_pairs(query))),
            header=Headers(list(request.headers.multi_items())),
            cookie=ImmutableMultiDict(),
        )
        return _OpenAPIRequest(request, self.host_url, path, parameters)

    def _describe(self, what: str, request: httpx.Request, exc: Exception) -> str:
        """Operation, then each failing field with the schema's complaint (not the whole body)."""
        errors: list[Any] = []
        cause: BaseException | None = exc
        while cause is not None and not errors:
            errors = list(getattr(cause, "schema_errors", None) or ())
            cause = cause.__cause__
        head = f"{self.name}: {request.method} {request.url.path} {what}"
        if not errors:
            return f"{head}: {type(exc).__name__}: {_shorten(str(exc))}"
        lines = [f"{head}: {type(exc).__name__}"]
        for error in errors:
            lines.extend(_error_lines(error, "  "))
        return "\n".join(lines)


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_lines(error: Any, indent: str) -> list[str]:
    field = "/".join(str(p) for p in getattr(error, "absolute_path", ()))
    lines = [
        f"{indent}field {field or '(root)'}: {_shorten(str(getattr(error, 'message', error)))}"
    ]
    # anyOf/oneOf failures hide the useful reason in their context; show a few.
    for sub in list(getattr(error, "context", None) or ())[:4]:
        lines.extend(_error_lines(sub, indent + "  "))
    return lines


def _pairs(query: Mapping[str, list[str]]) -> Iterator[tuple[str, str]]:
    for key, values in query.items():
        for value in values:
            yield key, value


class ValidatingTransport(httpx.AsyncBaseTransport):
    """Validates every request and response passing through to `inner`."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        validator: SpecValidator,
        *,
        mount: str = "",
        check_requests: bool = True,
    ) -> None:
        """`check_requests=False` is for tests that send a deliberately invalid request to see
        how a fake refuses it: the answer is still checked."""
        self.inner = inner
        self.validator = validator
        self.mount = mount
        self.check_requests = check_requests
        self.violations: list[SpecViolation] = []
        self.exchanges: list[tuple[str, str, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        try:
            if self.check_requests:
                self.validator.check_request(request, mount=self.mount)
        except SpecViolation as exc:
            self.violations.append(exc)
            raise
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        # The body is already decoded: pass it on without the headers that describe the wire form.
        headers = [
            (key, value)
            for key, value in response.headers.multi_items()
            if key.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        checked = httpx.Response(
            response.status_code, headers=headers, content=content, request=request
        )
        try:
            self.validator.check_response(request, checked, mount=self.mount)
        except SpecViolation as exc:
            self.violations.append(exc)
            raise
        self.exchanges.append((request.method, request.url.path, response.status_code))
        return checked

    async def aclose(self) -> None:
        await self.inner.aclose()


class ValidatingProxy:
    """An ASGI app that passes every request to `app` through a ValidatingTransport.

    For exchanges our tests do not send themselves, such as Alertmanager's calls to a fake:
    serve this on a loopback port instead of the fake. A violation is recorded in
    `transport.violations` and answered with 500 (the sender cannot raise for us), so tests
    assert that list is empty at the end.
    """

    def __init__(self, app: Any, validator: SpecValidator) -> None:
        self.transport = ValidatingTransport(httpx.ASGITransport(app=app), validator)
        self._client = httpx.AsyncClient(transport=self.transport, base_url="http://proxied")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() != "host"]
        try:
            answer = await self._client.request(
                request.method,
                request.url.path,
                params=list(request.query_params.multi_items()),
                headers=headers,
                content=body,
            )
            response = Response(
                answer.content,
                status_code=answer.status_code,
                headers={
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
                },
            )
        except SpecViolation as exc:
            response = Response(str(exc), status_code=500)
        await response(scope, receive, send)

    async def aclose(self) -> None:
        await self._client.aclose()
