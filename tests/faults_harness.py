"""Fault injection for the reliability tests: a loopback proxy that misbehaves on cue, and a
`serve` subprocess that can be killed with SIGKILL.

`FaultProxy` sits between oncall-tui and a real upstream (the Alertmanager binary, a fake
served on loopback). Each request is matched against its rules in order: a rule may answer
with a status of its own (503, 429 with Retry-After, an HTML page) without forwarding, hold
the request unanswered (a hang), or forward it and then hold the answer (the upstream acted,
the caller never hears). Everything that arrives is recorded, so a test counts what reached
the upstream. `ServeProcess` runs `python -m oncall_tui serve` and ends it by its PID only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oncall_tui.webhooks import WebhookServer

HOLD_LIMIT = 30.0  # a held request is answered 504 after this, so nothing waits forever
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass
class Rule:
    """What to do with matching requests; `times` None: for as long as the rule is there."""

    method: str | None
    path: str  # a regular expression matched against the whole path
    action: str  # "answer" | "hang" | "hold_answer"
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    times: int | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and bool(
            re.fullmatch(self.path, path)
        )


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    outcome: str  # "faulted" | "hung" | "forwarded" | "held" | "unreachable"
    status: int | None
    body: bytes = b""


class FaultProxy:
    """An ASGI reverse proxy with switchable faults; `app` is served with `serving()`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.rules: list[Rule] = []
        self.calls: list[Call] = []
        self.held = asyncio.Event()  # set when an answer (or a request) is being held
        self.release = asyncio.Event()
        self._http = httpx.AsyncClient(timeout=10.0, trust_env=False)
        self.app = Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self._handle,
                    methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
                )
            ]
        )

    def add(self, rule: Rule) -> Rule:
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()
        self.release.set()

    def count(
        self, method: str, path: str, *, outcome: tuple[str, ...] = ("forwarded", "held")
    ) -> int:
        """Requests matching `method` and the `path` expression that reached the upstream."""
        return sum(
            1
            for call in self.calls
            if call.method == method and re.fullmatch(path, call.path) and call.outcome in outcome
        )

    def _rule_for(self, method: str, path: str) -> Rule | None:
        for rule in self.rules:
            if rule.matches(method, path) and (rule.times is None or rule.times > 0):
                if rule.times is not None:
                    rule.times -= 1
                return rule
        return None

    async def _hold(self) -> bool:
        self.held.set()
        try:
            await asyncio.wait_for(self.release.wait(), HOLD_LIMIT)
        except TimeoutError:
            return False
        return True

    async def _handle(self, request: Request) -> Response:
        method, path = request.method, request.url.path
        body = await request.body()
        rule = self._rule_for(method, path)
        if rule is not None and rule.action == "answer":
            self.calls.append(Call(method, path, "faulted", rule.status))
            return Response(rule.body, status_code=rule.status, headers=rule.headers)
        if rule is not None and rule.action == "hang":
            self.calls.append(Call(method, path, "hung", None))
            await self._hold()
            return Response(b"", status_code=504)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in {"host", "content-length", "connection", "accept-encoding"}
        }
        try:
            answer = await self._http.request(
                method,
                self.upstream + path,
                params=list(request.query_params.multi_items()),
                content=body,
                headers=headers,
            )
        except httpx.HTTPError:
            self.calls.append(Call(method, path, "unreachable", 502))
            return Response(b"upstream unreachable", status_code=502)
        if rule is not None and rule.action == "hold_answer":
            self.calls.append(Call(method, path, "held", answer.status_code))
            await self._hold()
            return Response(b"", status_code=504)
        self.calls.append(Call(method, path, "forwarded", answer.status_code, body))
        kept = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in {"content-length", "content-encoding", "transfer-encoding"}
        }
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    async def aclose(self) -> None:
        self.release.set()
        await self._http.aclose()


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on a free 127.0.0.1 port; yields its base URL."""
    server = WebhookServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        yield f"http://{server.address}"
    finally:
        await server.stop()


async def wait_until(
    probe: Callable[[], Awaitable[object]] | Callable[[], object],
    *,
    within: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll `probe` (sync or async) until truthy; AssertionError after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = probe()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(interval)


class ServeProcess:
    """`oncall-tui serve --config PATH` in a subprocess; killed or stopped by its PID only."""

    def __init__(self, config_path: Path, workdir: Path) -> None:
        self.config_path = config_path
        self.workdir = workdir
        self.runs = 0
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"serve-{self.runs}.out"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"serve-{self.runs}.err"

    def output(self) -> str:
        """Everything every run printed, stdout and stderr."""
        parts = []
        for run in range(1, self.runs + 1):
            for suffix in ("out", "err"):
                path = self.workdir / f"serve-{run}.{suffix}"
                if path.exists():
                    parts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(parts)

    async def start(self, *, ready: str = "Webhooks:") -> None:
        """Start and wait until serve printed the `ready` line (it is up and listening)."""
        self.runs += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("ONCALL_TUI")}
        env["PYTHONUNBUFFERED"] = "1"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "oncall_tui",
                "serve",
                "--config",
                str(self.config_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
            )
        process = self._process

        def started() -> bool:
            if process.returncode is not None:
                raise AssertionError(f"serve exited early ({process.returncode}):\n{self.output()}")
            return ready in self.stdout_path.read_text(encoding="utf-8", errors="replace")

        await wait_until(started, within=START_TIMEOUT, what="serve to start")

    async def kill9(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)

    async def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a bound; returns the exit status."""
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                await self.kill9()
        return process.returncode
