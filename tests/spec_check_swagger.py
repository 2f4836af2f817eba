"""Checks HTTP exchanges against Opsgenie's published Swagger 2.0 spec (bravado-core).

The Swagger counterpart of `spec_check.py` (which handles the OpenAPI 3 specs), with the same
interface: `SwaggerSpecValidator.load("opsgenie")`, `check_request`, `check_response`, and a
`ValidatingTransport` / `ValidatingProxy` that run both on every exchange.

The spec is loaded as published and patched in memory with the fixes of API-NOTES.md section 0
(the file is never edited):

- bravado-core loads it with `validate_swagger_spec: False` (OAS3 `nullable` keys and broken
  deprecated-policy definitions make strict Swagger validators refuse the file);
- every `discriminator` is deleted: bravado-core looks for definitions literally named after the
  discriminator values (`team`, `escalation`) and fails. The subtypes (`TeamRecipient`, ...) are
  remembered, so the check for undocumented fields still knows that a `team` recipient may carry
  a `name`;
- in responses, every property may be null (`x-nullable`), as the OAS3 checker allows; requests
  are checked without that relaxation.
Beyond what bravado-core checks: query parameters the operation does not declare are refused,
and answers may not carry fields the spec does not document (schemas are open by default, so a
fake could otherwise invent convenience fields the vendor lacks). Concrete paths win over
templated ones (`/v2/schedules/on-calls` is not `/v2/schedules/{identifier}`).

How request URLs map onto the spec: the spec has no basePath and its paths start with `/v2`;
`api_url` is the fake's origin (like `https://api.opsgenie.com`), so only the path matters.
"""

from __future__ import annotations

import copy
import json
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs

import httpx
import pytest
from jsonschema import validators as jsonschema_validators  # type: ignore[import-untyped]
from spec_check import SpecViolation
from spec_check import ValidatingProxy as _OasValidatingProxy
from spec_check import ValidatingTransport as _OasValidatingTransport

# bravado-core still uses jsonschema's deprecated RefResolver; its warnings say nothing about us.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from bravado_core.exception import MatchingResponseNotFound
    from bravado_core.request import IncomingRequest, unmarshal_request
    from bravado_core.response import get_response_spec
    from bravado_core.spec import Spec
    from bravado_core.validate import validate_schema_object

SPECS_DIR = Path(__file__).resolve().parents[2] / "shared" / "specs"

SpecName = Literal["opsgenie"]

_FILES: dict[str, str] = {"opsgenie": "opsgenie-v2-swagger-bundled.json"}
_DEFINITION = "#/definitions/"
_DRAFT_META = re.compile(r"^https?://json-schema\.org/")

__all__ = [
    "SPECS_DIR",
    "SpecViolation",
    "SwaggerSpecValidator",
    "ValidatingProxy",
    "ValidatingTransport",
]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict in a JSON document."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            yield current
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def _strip_discriminators(spec: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Deletes every `discriminator`; returns base definition -> {value: subtype definition}."""
    definitions: dict[str, Any] = spec["definitions"]
    subtypes: dict[str, dict[str, str]] = {}
    for name, schema in definitions.items():
        value = schema.get("x-discriminator-value")
        if not isinstance(value, str):
            continue
        for part in schema.get("allOf", ()):
            ref = part.get("$ref", "") if isinstance(part, dict) else ""
            if ref.startswith(_DEFINITION):
                subtypes.setdefault(ref.removeprefix(_DEFINITION), {})[value] = name
    for node in _walk(spec):
        if isinstance(node.get("discriminator"), str):
            del node["discriminator"]
    return subtypes


def _make_properties_nullable(spec: dict[str, Any]) -> None:
    for node in list(_walk(spec)):
        properties = node.get("properties")
        # A "properties" key that is itself a schema is a property named "properties".
        if not isinstance(properties, dict) or isinstance(properties.get("type"), str):
            continue
        for schema in properties.values():
            if isinstance(schema, dict):
                schema["x-nullable"] = True


class _NoNetwork:
    """bravado-core's HTTP client for remote $refs: the spec has none, so any fetch is a bug."""

    def request(self, request_params: Any) -> Any:
        raise SpecViolation(f"spec loading tried to fetch {request_params.get('url')}")


@contextmanager
def _draft_meta_schemas_only() -> Iterator[None]:
    """Hides the meta-schemas other libraries registered with jsonschema while bravado builds.

    bravado-core walks every document in its resolver's store, which jsonschema fills with every
    registered meta-schema; openapi-schema-validator (loaded by spec_check.py) registers OAS 3.1
    ones whose $refs point at vocabularies that are not in the store, so the walk would try to
    download them. The resolver keeps the store it was built with, so restoring is safe.
    """
    registered = jsonschema_validators._META_SCHEMAS
    saved = dict(registered.items())
    for uri in list(saved):
        if not _DRAFT_META.match(uri):
            del registered[uri]
    try:
        yield
    finally:
        registered.update(saved)


def _load_spec(spec: dict[str, Any]) -> Spec:
    config = {
        "validate_swagger_spec": False,
        "validate_requests": True,
        "validate_responses": True,
        "use_models": False,
    }
    with _draft_meta_schemas_only(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return Spec.from_dict(
            spec, origin_url="https://api.opsgenie.com/", http_client=_NoNetwork(), config=config
        )


class _Incoming(IncomingRequest):  # type: ignore[misc]
    """An httpx request as bravado-core's server-side request interface sees it."""

    def __init__(self, request: httpx.Request, path: dict[str, str]) -> None:
        self._request = request
        self.path = path
        query = parse_qs(request.url.query.decode("ascii"), keep_blank_values=True)
        # Repeated parameters keep their last value; none of the operations we use repeat one.
        self.query = {key: values[-1] for key, values in query.items()}
        self.headers = request.headers
        self.form: dict[str, Any] = {}
        self.files: dict[str, Any] = {}

    def json(self, **kwargs: Any) -> Any:
        if not self._request.content:
            raise ValueError("no body")
        return json.loads(self._request.content)


class SwaggerSpecValidator:
    """One Swagger 2.0 vendor spec, patched and loaded once per process."""

    _cache: ClassVar[dict[str, SwaggerSpecValidator]] = {}

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        request_dict = copy.deepcopy(spec)
        self._subtypes = _strip_discriminators(request_dict)
        response_dict = copy.deepcopy(request_dict)
        _make_properties_nullable(response_dict)
        self._spec_dict = request_dict
        self._requests = _load_spec(request_dict)
        self._responses = _load_spec(response_dict)
        templates = [str(t) for t in request_dict["paths"]]
        # Fewer placeholders first, so that a concrete segment beats a {parameter}.
        templates.sort(key=lambda t: (t.count("{"), -len(t)))
        self._templates = [
            (re.compile("^" + re.sub(r"\\\{([^/]+?)\\\}", r"(?P<\1>[^/]+)", re.escape(t)) + "$"), t)
            for t in templates
        ]

    @classmethod
    def load(cls, name: SpecName) -> SwaggerSpecValidator:
        if name not in cls._cache:
            if name not in _FILES:
                raise ValueError(f"unknown spec {name!r}")
            path = SPECS_DIR / _FILES[name]
            if not path.exists():
                reason = f"vendor spec not found beside the repository ({_FILES[name]})"
                if os.environ.get("CI"):
                    pytest.fail(reason, pytrace=False)
                pytest.skip(reason)
            cls._cache[name] = cls(name, json.loads(path.read_text(encoding="utf-8")))
        return cls._cache[name]

    # -- matching ---------------------------------------------------------------------------------

    def _match(self, request: httpx.Request, mount: str) -> tuple[str, dict[str, str], str]:
        """(template, path parameters, path) of the operation this request calls."""
        path = request.url.path
        if mount:
            if not path.startswith(mount.rstrip("/") + "/"):
                raise SpecViolation(f"{self.name}: {request.method} {path}: outside {mount}")
            path = path[len(mount.rstrip("/")) :]
        method = request.method.lower()
        for pattern, template in self._templates:
            found = pattern.match(path)
            if found and method in self._spec_dict["paths"][template]:
                return template, found.groupdict(), path
        raise SpecViolation(f"{self.name}: {request.method} {path}: no such operation in the spec")

    def _head(self, request: httpx.Request, what: str) -> str:
        return f"{self.name}: {request.method} {request.url.path} {what}"

    # -- requests ---------------------------------------------------------------------------------

    def check_request(self, request: httpx.Request, *, mount: str = "") -> None:
        """Raises SpecViolation when the spec does not allow this request."""
        template, path_params, _path = self._match(request, mount)
        op = self._requests.get_op_for_request(request.method, template)
        if op is None:
            raise SpecViolation(self._head(request, "request: no such operation"))
        declared = {param.name for param in op.params.values() if param.location == "query"}
        for name in request.url.params:
            if name not in declared:
                raise SpecViolation(
                    self._head(request, f"request: query parameter {name!r} is not in the spec")
                )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                unmarshal_request(_Incoming(request, path_params), op)
        except Exception as exc:  # bravado-core and jsonschema raise many unrelated types
            raise SpecViolation(self._describe(request, "request", exc)) from exc
        body_params = [param for param in op.params.values() if param.location == "body"]
        if body_params and request.content:
            found: list[str] = []
            self._undocumented(
                [body_params[0].param_spec["schema"]], json.loads(request.content), "", found
            )
            if found:
                raise SpecViolation(
                    self._head(
                        request, f"request: fields the spec does not document: {', '.join(found)}"
                    )
                )

    # -- responses --------------------------------------------------------------------------------

    def check_response(
        self, request: httpx.Request, response: httpx.Response, *, mount: str = ""
    ) -> None:
        """Raises SpecViolation when the spec does not allow this answer to that request."""
        template, _params, _path = self._match(request, mount)
        where = f"response {response.status_code}"
        op = self._responses.get_op_for_request(request.method, template)
        if op is None:
            raise SpecViolation(self._head(request, f"{where}: no such operation"))
        try:
            answer = get_response_spec(response.status_code, op)
        except MatchingResponseNotFound as exc:
            raise SpecViolation(self._head(request, f"{where}: status not in the spec")) from exc
        schema = self._responses.deref(answer.get("schema"))
        if schema is None:
            if response.content:
                raise SpecViolation(self._head(request, f"{where}: body should be empty"))
            return
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise SpecViolation(self._head(request, f"{where}: content-type {content_type!r}"))
        try:
            body = response.json()
        except ValueError as exc:
            raise SpecViolation(self._head(request, f"{where}: body is not JSON")) from exc
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                validate_schema_object(self._responses, schema, body)
        except Exception as exc:
            raise SpecViolation(self._describe(request, where, exc)) from exc
        found: list[str] = []
        self._undocumented([answer.get("schema")], body, "", found)
        if found:
            raise SpecViolation(
                self._head(
                    request, f"{where}: fields the spec does not document: {', '.join(found)}"
                )
            )

    # -- undocumented fields ----------------------------------------------------------------------

    def _deref(self, schema: Any) -> Any:
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            if not ref.startswith(_DEFINITION):
                raise SpecViolation(f"{self.name}: unsupported $ref {ref}")
            schema = self._spec_dict["definitions"][ref.removeprefix(_DEFINITION)]
        return schema

    def _flatten(self, schemas: list[Any], value: Any) -> list[dict[str, Any]]:
        flat: list[dict[str, Any]] = []
        seen: set[int] = set()
        pending = list(schemas)
        while pending:
            raw = pending.pop()
            ref = raw.get("$ref", "") if isinstance(raw, dict) else ""
            schema = self._deref(raw)
            # A subtype refers back to its base: visit each schema once.
            if not isinstance(schema, dict) or id(schema) in seen:
                continue
            seen.add(id(schema))
            flat.append(schema)
            pending.extend(schema.get("allOf", ()))
            # A discriminated base also allows what the subtype named by the value declares.
            base = ref.removeprefix(_DEFINITION) if ref.startswith(_DEFINITION) else ""
            if base in self._subtypes and isinstance(value, dict):
                subtype = self._subtypes[base].get(str(value.get("type")))
                if subtype is not None:
                    pending.append({"$ref": _DEFINITION + subtype})
        return flat

    def _undocumented(self, schemas: list[Any], value: Any, path: str, found: list[str]) -> None:
        flat = self._flatten(schemas, value)
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

    def _describe(self, request: httpx.Request, what: str, exc: Exception) -> str:
        """Operation, then the failing field with the schema's complaint (not the whole body)."""
        head = self._head(request, what)
        field = "/".join(str(part) for part in getattr(exc, "absolute_path", ()))
        message = str(getattr(exc, "message", "") or exc).splitlines()[0]
        if len(message) > 300:
            message = message[:297] + "..."
        return f"{head}: {type(exc).__name__}: field {field or '(root)'}: {message}"


class ValidatingTransport(_OasValidatingTransport):
    """Validates every request and response passing through to `inner` against the spec."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        validator: SwaggerSpecValidator,
        *,
        mount: str = "",
        check_requests: bool = True,
    ) -> None:
        super().__init__(
            inner,
            validator,  # type: ignore[arg-type]  # same interface as SpecValidator
            mount=mount,
            check_requests=check_requests,
        )


class ValidatingProxy(_OasValidatingProxy):
    """An ASGI app passing every request to `app` through a ValidatingTransport (for exchanges
    our tests do not send themselves, such as Alertmanager's calls to the fake Opsgenie).
    Violations are recorded in `transport.violations` and answered with 500."""

    def __init__(self, app: Any, validator: SwaggerSpecValidator) -> None:
        self.transport = ValidatingTransport(httpx.ASGITransport(app=app), validator)
        self._client = httpx.AsyncClient(transport=self.transport, base_url="http://proxied")
