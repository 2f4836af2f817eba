"""Helpers for tests that need the real Alertmanager binary, and a clock that does not wait.

Import what you use: `from am_harness import am_binary, running_alertmanager, ...` (fixtures must
be imported into the test module to be visible). Without the binary, tests skip locally but
fail under CI (env `CI` set), because CI installs Debian's `prometheus-alertmanager` and a
silently skipped suite would prove nothing there.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
import yaml
from jsonschema import Draft4Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from oncall_tui.sandbox.alertmanager_process import (
    AlertmanagerProcess,
    alertmanager_config_yaml,
    find_alertmanager_binary,
)

T = TypeVar("T")

WAIT_TIMEOUT = 10.0
SPEC_FILE = (
    Path(__file__).resolve().parents[2] / "shared" / "specs" / ("alertmanager-v0.25.0-openapi.yaml")
)


def alertmanager_binary() -> str:
    """The binary's path; skips the test (fails it under CI) when there is none."""
    binary = find_alertmanager_binary()
    if binary is None:
        reason = "no Alertmanager binary on PATH (install Debian's prometheus-alertmanager)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must provide it", pytrace=False)
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def am_binary() -> str:
    return alertmanager_binary()


def am_config_yaml(*, inhibit: bool = True) -> str:
    """The sandbox config without notification targets, plus an inhibition rule for tests.

    An alert labelled `inhibit="source"` with severity critical inhibits the warnings that share
    its `run` label, so that each test inhibits only its own alerts.
    """
    config = yaml.safe_load(alertmanager_config_yaml(webhook_url=None))
    if inhibit:
        config["inhibit_rules"] = [
            {
                "source_matchers": ['severity="critical"', 'inhibit="source"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["run"],
            }
        ]
    return str(yaml.safe_dump(config, sort_keys=False))


@asynccontextmanager
async def running_alertmanager(
    binary: str, workdir: Path, config_yaml: str | None = None, **kwargs: Any
) -> AsyncIterator[AlertmanagerProcess]:
    process = AlertmanagerProcess(binary, workdir, config_yaml or am_config_yaml(), **kwargs)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


@asynccontextmanager
async def running_cluster(
    binary: str, workdir: Path, size: int = 2, config_yaml: str | None = None
) -> AsyncIterator[list[AlertmanagerProcess]]:
    """`size` Alertmanagers gossiping on loopback; returns once each sees all the others."""
    config = config_yaml or am_config_yaml()
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(
            running_alertmanager(binary, workdir / "peer-0", config, cluster_listen=True)
        )
        assert first.cluster_address is not None
        peers = [first]
        for index in range(1, size):
            peers.append(
                await stack.enter_async_context(
                    running_alertmanager(
                        binary, workdir / f"peer-{index}", config, peers=[first.cluster_address]
                    )
                )
            )
        async with httpx.AsyncClient(timeout=2.0) as http:

            async def joined() -> bool:
                for peer in peers:
                    status = (await http.get(f"{peer.url}/api/v2/status")).json()
                    if len(status["cluster"].get("peers") or ()) != size:
                        return False
                return True

            await wait_for(joined, what=f"{size} peers to see each other")
        yield peers


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    *,
    within: float = WAIT_TIMEOUT,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `probe` until it returns something truthy; fail the test after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await probe()
        if result:
            return result
        if loop.time() >= deadline:
            pytest.fail(f"timed out after {within:g}s waiting for {what}", pytrace=False)
        await asyncio.sleep(interval)


class FastClock:
    """Real wall time, but retry back-off sleeps return at once and are recorded.

    For tests where a client retries against a server that is down: the back-off is asserted
    on, not waited for.
    """

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self._offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time() + self._offset

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


def soon(minutes: float = 0.0) -> datetime:
    """Wall time (what the real binary uses) `minutes` from now, aware UTC."""
    return datetime.now(UTC) + timedelta(minutes=minutes)


def labels_of(items: Sequence[Any]) -> list[dict[str, str]]:
    return [dict(item.labels) for item in items]


class AmSpecChecker:
    """Checks Alertmanager exchanges against the published v0.25.0 API spec (Swagger 2.0).

    For each request: the operation exists, every query parameter is declared for it, and a
    JSON body matches its `in: body` schema. For each answer: a body matches the schema the
    spec gives for that status (errors included). Collects problems instead of raising, so a
    test can use it as an httpx response hook and assert on `problems` at the end.
    """

    _URN = "urn:alertmanager-v0.25.0"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        self.base_path = str(spec.get("basePath", "/")).rstrip("/")
        self._registry: Registry[Any] = Registry().with_resource(
            self._URN, Resource.from_contents(spec, default_specification=DRAFT4)
        )
        self._templates = [
            (re.compile("^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(t)) + "$"), t)
            for t in map(str, spec["paths"])
        ]
        self.problems: list[str] = []
        self.checked: list[str] = []

    @classmethod
    def load(cls) -> AmSpecChecker:
        """From the shared specs directory; skips (fails under CI) when it is not there."""
        if not SPEC_FILE.exists():
            reason = f"Alertmanager spec not found beside the repository ({SPEC_FILE.name})"
            if os.environ.get("CI"):
                pytest.fail(reason, pytrace=False)
            pytest.skip(reason)
        return cls(yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8")))

    async def hook(self, response: httpx.Response) -> None:
        """An httpx `event_hooks["response"]` entry."""
        await response.aread()
        self.check(response.request, response)

    def check(self, request: httpx.Request, response: httpx.Response) -> None:
        method = request.method.lower()
        path = request.url.path
        where = f"{request.method} {path}"
        if not path.startswith(self.base_path + "/"):
            self.problems.append(f"{where}: outside {self.base_path}")
            return
        template = self._template(path[len(self.base_path) :])
        if template is None or method not in self.spec["paths"][template]:
            self.problems.append(f"{where}: no such operation in the spec")
            return
        pointer = f"/paths/{_escape(template)}/{method}"
        operation = self.spec["paths"][template][method]
        params = [
            *self.spec["paths"][template].get("parameters", ()),
            *operation.get("parameters", ()),
        ]
        declared = {p["name"] for p in params if p["in"] == "query"}
        for name in request.url.params:
            if name not in declared:
                self.problems.append(f"{where}: query parameter {name!r} is not in the spec")
        for index, param in enumerate(operation.get("parameters", ())):
            if param["in"] == "body":
                body = json.loads(request.content) if request.content else None
                self._validate(f"{pointer}/parameters/{index}/schema", body, f"{where} request")
        status = str(response.status_code)
        answer = operation["responses"].get(status)
        if answer is None:
            self.problems.append(f"{where}: status {status} is not in the spec")
            return
        answer_pointer = f"{pointer}/responses/{status}"
        if "$ref" in answer:
            answer_pointer = answer["$ref"].removeprefix("#")
            answer = self._resolve(answer_pointer)
        if "schema" in answer:
            self._validate(f"{answer_pointer}/schema", response.json(), f"{where} -> {status}")
        self.checked.append(f"{request.method} {template} -> {status}")

    def _template(self, path: str) -> str | None:
        for pattern, template in self._templates:
            if pattern.match(path):
                return template
        return None

    def _resolve(self, pointer: str) -> Any:
        node: Any = self.spec
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _validate(self, pointer: str, instance: Any, what: str) -> None:
        schema = {"$ref": f"{self._URN}#{quote(pointer, safe='/~')}"}
        validator = Draft4Validator(schema, registry=self._registry)
        for error in validator.iter_errors(instance):
            location = "/".join(str(p) for p in error.absolute_path)
            self.problems.append(f"{what}: {location or '(root)'}: {error.message}")


def _escape(template: str) -> str:
    return template.replace("~", "~0").replace("/", "~1")
