"""The sandbox: an Alertmanager on loopback, routed to our webhook listener, with a live scenario.

`Sandbox` starts the real Alertmanager binary when it is on PATH (else the built-in stand-in,
served by uvicorn inside the running loop), on free 127.0.0.1 ports, with a generated config
that sends every notification to the oncall-tui webhook listener with a random bearer token.
The listener's port is chosen before Alertmanager starts, because Alertmanager's config has to
name it; `config()` then gives a validated oncall-tui Config aimed at all of it, and
`write_config()` the same as YAML for another process. `stop()` ends only what `start()`
started.

With `pagerduty=True` (the default) it also serves the fake PagerDuty on a loopback port before
Alertmanager starts: Alertmanager's critical route pages it through `pagerduty_configs` (Events
API v2), the fake escalates on a clock compressed by `pagerduty_time_scale` and sends signed
webhooks v3 to the listener's `/webhooks/pagerduty`, and the config gets a `pagerduty:` section
with the sandbox's throwaway token, routing key and webhook secret. The stand-in Alertmanager
notifies only the webhook listener; its notifications pass through `PagerDutyRelay`, which pages
the fake as Alertmanager's PagerDuty notifier would.

With `opsgenie=True` (the default) it serves the fake Opsgenie on a loopback port too:
Alertmanager's warning route sends it alerts through `opsgenie_configs` (alias = sha256 of the
group key, closed by alias on resolve), the stand-in through `OpsgenieRelay`, and the config
gets an `opsgenie:` section with the sandbox's throwaway API key. The fake processes its
asynchronous requests as it is asked, or after `opsgenie_processing_seconds`.

With `statuspage=True` (the default) it serves the fake Statuspage too, with one component per
service of the scenario, and the config turns the automation on: a critical alert opens a public
incident for its service's component, resolved `statuspage_resolve_after` after it recovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml

from oncall_tui.clock import Clock, SystemClock
from oncall_tui.config import Config, validate_config
from oncall_tui.sandbox.alertmanager_process import (
    AlertmanagerProcess,
    alertmanager_config_yaml,
    find_alertmanager_binary,
)
from oncall_tui.sandbox.fake_opsgenie import FakeOpsgenie
from oncall_tui.sandbox.fake_pagerduty import FakePagerDuty
from oncall_tui.sandbox.fake_statuspage import FakeStatuspage
from oncall_tui.sandbox.opsgenie_relay import OpsgenieRelay
from oncall_tui.sandbox.scenario import Scenario
from oncall_tui.sandbox.standin import StandinAlertmanager
from oncall_tui.sandbox.standin_relay import PagerDutyRelay
from oncall_tui.webhooks import WebhookServer

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
CLUSTER = "sandbox"
OPERATOR = "Demo Operator"
OPERATOR_EMAIL = "demo@example.com"

# The public page of the demo: one component per service of the scenario (name -> id).
STATUS_COMPONENTS = {
    "payment-service": "cmp-payments",
    "checkout": "cmp-checkout",
    "search": "cmp-search",
    "auth-service": "cmp-auth",
}
STATUS_PAGE_ID = "sandbox-page"

TEST_ALERTS: list[dict[str, Any]] = [
    {
        "name": "payment-service down",
        "labels": {
            "alertname": "ServiceDown",
            "severity": "critical",
            "service": "payment-service",
            "team": "platform",
        },
        "annotations": {
            "summary": "payment-service is down",
            "description": "Test alert to verify the incident pipeline.",
        },
    },
    {
        "name": "checkout slow",
        "labels": {"alertname": "HighLatency", "severity": "warning", "service": "checkout"},
        "annotations": {
            "summary": "checkout p99 latency above 1s",
            "description": "Test warning to verify routing of warnings.",
        },
    },
]

Backend = Literal["alertmanager", "standin"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class SandboxError(RuntimeError):
    """The sandbox could not start."""


class Sandbox:
    """One sandbox; use `async with Sandbox(...)` or start()/stop().

    `backend` None picks the real binary when one is found, else the stand-in; "standin"
    forces the stand-in; "alertmanager" requires the binary. `peers=2` (or more) runs an HA
    cluster: real peers gossip on loopback; stand-ins are independent, and like unsynchronised
    peers each notify. `scenario=False` leaves the Alertmanager quiet (tests fire their own).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        workdir: Path | None = None,
        log_path: Path | None = None,
        backend: Backend | None = None,
        seed: int = 0,
        scenario: bool = True,
        scenario_interval: float = 5.0,
        listen_port: int | None = None,
        peers: int = 1,
        pagerduty: bool = True,
        pagerduty_time_scale: float = 30.0,
        opsgenie: bool = True,
        opsgenie_processing_seconds: float = 2.0,
        statuspage: bool = True,
        statuspage_resolve_after: str = "1m",
    ) -> None:
        if peers < 1:
            raise ValueError("a sandbox needs at least one Alertmanager")
        self.peers = peers
        self.clock: Clock = clock or SystemClock()
        self._given_workdir = workdir
        self._log_path = log_path
        self._wanted_backend = backend
        self.seed = seed
        self._with_scenario = scenario
        self._scenario_interval = scenario_interval
        self._listen_port = listen_port
        self.backend: Backend | None = None
        self.fallback_reason = ""
        self.webhook_token = secrets.token_urlsafe(24)
        self.listen = ""
        self.alertmanager_urls: list[str] = []
        self.scenario: Scenario | None = None
        self.workdir: Path | None = None
        self._own_workdir = False
        self._processes: list[AlertmanagerProcess] = []
        self._standins: list[StandinAlertmanager] = []
        self._servers: list[WebhookServer] = []
        self._scenario_task: asyncio.Task[None] | None = None
        self._with_pagerduty = pagerduty
        self._pagerduty_time_scale = pagerduty_time_scale
        self.pagerduty: FakePagerDuty | None = None
        self.pagerduty_url = ""
        self._pagerduty_server: WebhookServer | None = None
        self._standin_clients: list[httpx.AsyncClient] = []
        # Throwaway credentials of this sandbox alone; the routing key has PagerDuty's 32 chars.
        self.pagerduty_token = secrets.token_urlsafe(24)
        self.pagerduty_routing_key = secrets.token_hex(16)
        self.pagerduty_webhook_secret = secrets.token_urlsafe(24)
        self._with_opsgenie = opsgenie
        self._opsgenie_processing_seconds = opsgenie_processing_seconds
        self.opsgenie: FakeOpsgenie | None = None
        self.opsgenie_url = ""
        self._opsgenie_server: WebhookServer | None = None
        self.opsgenie_api_key = secrets.token_urlsafe(24)
        self._with_statuspage = statuspage
        self._statuspage_resolve_after = statuspage_resolve_after
        self.statuspage: FakeStatuspage | None = None
        self.statuspage_url = ""
        self._statuspage_server: WebhookServer | None = None
        self.statuspage_api_key = secrets.token_urlsafe(24)

    # -- addresses -------------------------------------------------------------------------

    @property
    def webhook_url(self) -> str:
        return f"http://{self.listen}/webhooks/alertmanager"

    @property
    def log_path(self) -> Path:
        if self._log_path is not None:
            return self._log_path
        if self.workdir is None:
            raise SandboxError("sandbox not started")
        return self.workdir / "log.db"

    @property
    def pids(self) -> list[int]:
        """PIDs of the Alertmanager processes we started (none for the stand-in)."""
        return [p.pid for p in self._processes if p.pid is not None]

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.alertmanager_urls:
            return
        if self._given_workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="oncall-tui-sandbox-"))
            self._own_workdir = True
        else:
            self.workdir = self._given_workdir
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.listen = f"{HOST}:{self._listen_port or free_port()}"
        try:
            if self._with_pagerduty:
                await self._start_pagerduty()
            if self._with_opsgenie:
                await self._start_opsgenie()
            if self._with_statuspage:
                await self._start_statuspage()
            await self._start_alertmanager()
            if self._with_scenario:
                self.scenario = Scenario(
                    self.alertmanager_urls,
                    self.clock,
                    seed=self.seed,
                    interval=self._scenario_interval,
                )
                self._scenario_task = asyncio.create_task(
                    self.scenario.run(), name="sandbox-scenario"
                )
        except BaseException:
            await self.stop()
            raise

    async def _start_pagerduty(self) -> None:
        fake = FakePagerDuty(
            clock=self.clock,
            api_token=self.pagerduty_token,
            routing_keys=[self.pagerduty_routing_key],
            webhook_url=f"http://{self.listen}/webhooks/pagerduty",
            webhook_secrets=[self.pagerduty_webhook_secret],
            time_scale=self._pagerduty_time_scale,
            seed=self.seed,
            operator_email=OPERATOR_EMAIL,
        )
        self.pagerduty = fake
        server = WebhookServer(fake.app, HOST, 0)
        await server.start()
        self._pagerduty_server = server
        self.pagerduty_url = f"http://{server.address}"
        await fake.start()

    async def _start_opsgenie(self) -> None:
        fake = FakeOpsgenie(
            clock=self.clock,
            api_key=self.opsgenie_api_key,
            seed=self.seed,
            processing_seconds=self._opsgenie_processing_seconds,
        )
        server = WebhookServer(fake.app, HOST, 0)
        await server.start()
        self.opsgenie = fake
        self._opsgenie_server = server
        self.opsgenie_url = f"http://{server.address}"

    async def _start_statuspage(self) -> None:
        fake = FakeStatuspage(
            clock=self.clock,
            api_key=self.statuspage_api_key,
            page_id=STATUS_PAGE_ID,
            components=dict(STATUS_COMPONENTS),
            seed=self.seed,
        )
        server = WebhookServer(fake.app, HOST, 0)
        await server.start()
        self.statuspage = fake
        self._statuspage_server = server
        self.statuspage_url = f"http://{server.address}/v1"

    async def _start_alertmanager(self) -> None:
        if self._wanted_backend != "standin":
            binary = find_alertmanager_binary()
            reason = "neither alertmanager nor prometheus-alertmanager is on PATH"
            if binary is not None:
                try:
                    await self._start_binary(binary)
                    return
                except Exception as exc:
                    await self._stop_processes()
                    if self._wanted_backend == "alertmanager":
                        raise SandboxError(f"Alertmanager did not start: {exc}") from exc
                    reason = f"Alertmanager did not start ({_first_line(exc)})"
            elif self._wanted_backend == "alertmanager":
                raise SandboxError(f"no Alertmanager binary: {reason}")
            self.fallback_reason = reason
            log.warning("sandbox uses the built-in stand-in: %s", reason)
        await self._start_standin()

    async def _start_binary(self, binary: str) -> None:
        assert self.workdir is not None
        config = alertmanager_config_yaml(
            webhook_url=self.webhook_url,
            webhook_token=self.webhook_token,
            pagerduty_events_url=self.pagerduty_url or None,
            pagerduty_routing_key=self.pagerduty_routing_key,
            opsgenie_url=self.opsgenie_url or None,
            opsgenie_api_key=self.opsgenie_api_key,
        )
        clustered = self.peers > 1
        for index in range(self.peers):
            first = self._processes[0].cluster_address if self._processes else None
            process = AlertmanagerProcess(
                binary,
                self.workdir / f"alertmanager-{index}",
                config,
                cluster_listen=clustered,
                peers=[first] if first else (),
            )
            self._processes.append(process)
            await process.start()
        self.backend = "alertmanager"
        self.alertmanager_urls = [p.url for p in self._processes]

    async def _start_standin(self) -> None:
        urls = []
        for _ in range(self.peers):
            http = None
            if self.pagerduty_url or self.opsgenie_url:
                transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport()
                if self.opsgenie_url:
                    transport = OpsgenieRelay(transport, self.opsgenie_url, self.opsgenie_api_key)
                if self.pagerduty_url:
                    transport = PagerDutyRelay(
                        transport, self.pagerduty_url, self.pagerduty_routing_key
                    )
                http = httpx.AsyncClient(timeout=5.0, transport=transport)
                self._standin_clients.append(http)
            standin = StandinAlertmanager(
                clock=self.clock,
                webhook_url=self.webhook_url,
                webhook_token=self.webhook_token,
                http=http,
            )
            server = WebhookServer(standin.app, HOST, 0)
            await server.start()
            self._servers.append(server)
            self._standins.append(standin)
            url = f"http://{server.address}"
            standin.external_url = url
            await standin.start(tick=0.5)
            urls.append(url)
        self.backend = "standin"
        self.alertmanager_urls = urls

    async def stop(self) -> None:
        """Stop the scenario, then the Alertmanager; each step bounded, errors logged."""
        if self._scenario_task is not None:
            self._scenario_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._scenario_task, 5.0)
            self._scenario_task = None
        for standin in self._standins:
            await standin.stop()
        self._standins.clear()
        for client in self._standin_clients:
            await client.aclose()
        self._standin_clients.clear()
        for server in self._servers:
            await server.stop()
        self._servers.clear()
        await self._stop_processes()
        # After Alertmanager: it would otherwise page a fake that is gone.
        await self._stop_pagerduty()
        await self._stop_opsgenie()
        await self._stop_statuspage()
        self.alertmanager_urls = []
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._own_workdir = False

    async def _stop_pagerduty(self) -> None:
        if self.pagerduty is not None:
            await self.pagerduty.stop()
            self.pagerduty = None
        if self._pagerduty_server is not None:
            await self._pagerduty_server.stop()
            self._pagerduty_server = None
        self.pagerduty_url = ""

    async def _stop_opsgenie(self) -> None:
        self.opsgenie = None
        if self._opsgenie_server is not None:
            await self._opsgenie_server.stop()
            self._opsgenie_server = None
        self.opsgenie_url = ""

    async def _stop_statuspage(self) -> None:
        self.statuspage = None
        if self._statuspage_server is not None:
            await self._statuspage_server.stop()
            self._statuspage_server = None
        self.statuspage_url = ""

    async def _stop_processes(self) -> None:
        # Later peers first: the first is the one the others joined.
        for process in reversed(self._processes):
            try:
                await process.stop()
            except Exception:
                log.exception("could not stop the sandbox Alertmanager (pid %s)", process.pid)
        self._processes.clear()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- oncall-tui config -----------------------------------------------------------------

    def config_data(self, *, log_path: Path | None = None) -> dict[str, Any]:
        """The oncall-tui config for this sandbox, as plain data (secrets in clear)."""
        if not self.alertmanager_urls:
            raise SandboxError("sandbox not started")
        names = "abcdefgh"
        data: dict[str, Any] = {
            "operator": {"name": OPERATOR, "email": OPERATOR_EMAIL},
            "alertmanagers": [
                {"name": f"{CLUSTER}-{names[i]}", "url": url, "cluster": CLUSTER}
                for i, url in enumerate(self.alertmanager_urls)
            ],
            "webhooks": {"listen": self.listen, "alertmanager_token": self.webhook_token},
            "poll": {"alerts": "5s"},
            "log": {"path": str(log_path or self.log_path)},
            "test_alerts": TEST_ALERTS,
        }
        if self.pagerduty_url:
            data["pagerduty"] = {
                "api_token": self.pagerduty_token,
                "routing_key": self.pagerduty_routing_key,
                "webhook_secret": self.pagerduty_webhook_secret,
                "api_url": self.pagerduty_url,
                "events_url": self.pagerduty_url,
            }
        if self.opsgenie_url:
            data["opsgenie"] = {"api_key": self.opsgenie_api_key, "api_url": self.opsgenie_url}
        if self.statuspage_url:
            data["statuspage"] = {
                "api_key": self.statuspage_api_key,
                "page_id": STATUS_PAGE_ID,
                "api_url": self.statuspage_url,
                "components": dict(STATUS_COMPONENTS),
                "automation": {
                    "enabled": True,
                    "match": {"severity": "critical"},
                    "component_label": "service",
                    "impact": "major",
                    "component_status": "major_outage",
                    "resolve_after": self._statuspage_resolve_after,
                },
            }
        return data

    def config(self, *, log_path: Path | None = None) -> Config:
        """A validated Config pointing at this sandbox and its webhook listener."""
        return validate_config(self.config_data(log_path=log_path), "<sandbox>")

    def write_config(self, path: Path, *, log_path: Path | None = None) -> None:
        """Write the config as YAML (mode 0600: it holds the sandbox's webhook token)."""
        data = self.config_data(log_path=log_path)
        validate_config(data, str(path))
        header = (
            "# oncall-tui config for a local sandbox, written by `oncall-tui sandbox`.\n"
            "# It is valid only while that sandbox runs: its ports are chosen at start-up.\n"
            "# The webhook token and the PagerDuty, Opsgenie and Statuspage keys below are random\n"
            "# throwaway secrets of this sandbox alone, so they are written here directly; real\n"
            "# secrets belong in ${ENV} variables.\n"
        )
        text = header + yaml.safe_dump(data, sort_keys=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
