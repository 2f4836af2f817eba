"""The sandbox: real Alertmanager or stand-in, webhooks to the listener, the scenario, stop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from am_harness import alertmanager_binary
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oncall_tui.clock import FrozenClock
from oncall_tui.config import load_config
from oncall_tui.sandbox.runner import Sandbox
from oncall_tui.sandbox.scenario import Scenario, build_alerts
from oncall_tui.webhooks import WebhookServer

ALERT: dict[str, Any] = {
    "labels": {"alertname": "SandboxProbe", "service": "probe", "severity": "critical"},
    "annotations": {"summary": "probe"},
}


async def wait_for(condition: Callable[[], Any], within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await _call(condition):
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _call(condition: Callable[[], Any]) -> bool:
    result = condition()
    if asyncio.iscoroutine(result):
        result = await result
    return bool(result)


@dataclass
class Listener:
    """Stands where oncall-tui's webhook listener would: records what Alertmanager sends."""

    received: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        self.received.append((await request.json(), request.headers.get("authorization")))
        return Response(status_code=200)


@pytest.fixture(params=["standin", pytest.param("alertmanager", marks=pytest.mark.alertmanager)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "alertmanager":
        alertmanager_binary()  # skips without the binary (fails under CI)
    return str(request.param)


@pytest.fixture
async def quiet_sandbox(backend: str, tmp_path: Path) -> AsyncIterator[Sandbox]:
    sandbox = Sandbox(workdir=tmp_path / "sandbox", backend=backend, scenario=False)  # type: ignore[arg-type]
    await sandbox.start()
    try:
        yield sandbox
    finally:
        await sandbox.stop()


async def _alerts(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(f"{url}/api/v2/alerts")
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()
        return data


async def test_generated_routing_delivers_webhooks_to_the_listener(
    quiet_sandbox: Sandbox, backend: str
) -> None:
    assert quiet_sandbox.backend == backend
    listener = Listener()
    host, _, port = quiet_sandbox.listen.rpartition(":")
    app = Starlette(routes=[Route("/webhooks/alertmanager", listener.handle, methods=["POST"])])
    server = WebhookServer(app, host, int(port))
    await server.start()
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            url = quiet_sandbox.alertmanager_urls[0]
            posted = await client.post(f"{url}/api/v2/alerts", json=[ALERT])
            assert posted.status_code == 200
        await wait_for(lambda: listener.received)
    finally:
        await server.stop()
    payload, auth = listener.received[0]
    assert auth == f"Bearer {quiet_sandbox.webhook_token}"
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["alerts"][0]["labels"] == ALERT["labels"]
    assert 'alertname="SandboxProbe"' in payload["groupKey"]


async def test_config_points_at_the_sandbox(quiet_sandbox: Sandbox, tmp_path: Path) -> None:
    config = quiet_sandbox.config(log_path=tmp_path / "log.db")
    assert [am.url for am in config.alertmanagers] == quiet_sandbox.alertmanager_urls
    assert config.webhooks.listen == quiet_sandbox.listen
    token = config.webhooks.alertmanager_token
    assert token is not None
    assert token.get_secret_value() == quiet_sandbox.webhook_token
    assert config.log.file == tmp_path / "log.db"
    assert config.operator.name == "Demo Operator"
    assert config.test_alerts

    path = tmp_path / "written" / "config.yaml"
    quiet_sandbox.write_config(path, log_path=tmp_path / "log.db")
    assert path.stat().st_mode & 0o777 == 0o600
    assert "throwaway" in path.read_text()
    assert load_config(path, env={}) == config


@pytest.mark.alertmanager
async def test_real_binary_is_chosen_and_stop_leaves_no_process(tmp_path: Path) -> None:
    alertmanager_binary()
    sandbox = Sandbox(workdir=tmp_path / "sandbox", scenario=False)
    await sandbox.start()
    pids = sandbox.pids
    try:
        assert sandbox.backend == "alertmanager"
        assert len(pids) == 1
        os.kill(pids[0], 0)  # alive
        async with httpx.AsyncClient(timeout=5.0) as client:
            status = await client.get(f"{sandbox.alertmanager_urls[0]}/api/v2/status")
        assert status.json()["versionInfo"]["version"]
    finally:
        await sandbox.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)
    assert sandbox.alertmanager_urls == []
    assert sandbox.pids == []


@pytest.mark.alertmanager
async def test_ha_pair_gossips_and_the_scenario_reaches_both(tmp_path: Path) -> None:
    alertmanager_binary()
    sandbox = Sandbox(workdir=tmp_path / "sandbox", peers=2, scenario_interval=0.2)
    await sandbox.start()
    pids = sandbox.pids
    try:
        assert len(pids) == 2
        config = sandbox.config(log_path=tmp_path / "log.db")
        assert [am.cluster_name for am in config.alertmanagers] == ["sandbox", "sandbox"]
        assert [am.name for am in config.alertmanagers] == ["sandbox-a", "sandbox-b"]

        async def both_have_alerts() -> bool:
            counts = [len(await _alerts(url)) for url in sandbox.alertmanager_urls]
            return all(counts)

        await wait_for(both_have_alerts)
        async with httpx.AsyncClient(timeout=5.0) as client:

            async def joined() -> bool:
                for url in sandbox.alertmanager_urls:
                    status = (await client.get(f"{url}/api/v2/status")).json()
                    if len(status["cluster"].get("peers") or ()) != 2:
                        return False
                return True

            await wait_for(joined)
    finally:
        await sandbox.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_standin_sandbox_cleans_up_its_temporary_workdir() -> None:
    sandbox = Sandbox(backend="standin", scenario=False)
    await sandbox.start()
    workdir = sandbox.workdir
    url = sandbox.alertmanager_urls[0]
    assert workdir is not None
    assert workdir.is_dir()
    assert await _alerts(url) == []
    await sandbox.stop()
    assert not workdir.exists()
    with pytest.raises(httpx.ConnectError):
        await _alerts(url)


async def test_scenario_makes_alerts_appear(backend: str, tmp_path: Path) -> None:
    sandbox = Sandbox(
        workdir=tmp_path / "sandbox",
        backend=backend,  # type: ignore[arg-type]
        scenario_interval=0.2,
        seed=7,
    )
    async with sandbox:
        url = sandbox.alertmanager_urls[0]

        async def several() -> bool:
            names = {a["labels"]["alertname"] for a in await _alerts(url)}
            return {"DiskSpaceLow", "HighLatency", "CertificateExpiringSoon"} <= names

        await wait_for(several)
        alerts = await _alerts(url)
        assert {a["labels"]["severity"] for a in alerts} >= {"warning", "info"}
        assert all(a["annotations"]["runbook_url"].startswith("https://") for a in alerts)
        assert sandbox.scenario is not None
        assert sandbox.scenario.failures == 0


# -- the scenario on its own, with a frozen clock ---------------------------------------------


def test_scenario_is_deterministic_per_seed() -> None:
    assert build_alerts(3) == build_alerts(3)
    assert build_alerts(3) != build_alerts(4)
    alerts = build_alerts(3)
    services = {a.labels["service"] for a in alerts}
    assert len(services) >= 5
    assert {a.labels["severity"] for a in alerts} == {"critical", "warning", "info"}
    flapping = [a for a in alerts if a.labels["alertname"] == "PodCrashLooping"]
    assert len(flapping) == 1
    assert len(flapping[0].spells) >= 3
    groups = {(a.labels["alertname"], a.labels["service"]) for a in alerts}
    assert len(groups) < len(alerts)  # some groups hold several alerts


def test_scenario_fires_and_resolves_over_time() -> None:
    clock = FrozenClock(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    scenario = Scenario(["http://unused"], clock, seed=5, interval=5.0)
    seen: dict[str, set[str]] = {}
    resolved: set[str] = set()
    for _ in range(int(scenario.cycle // 5)):
        now = clock.now()
        for alert in scenario.payload(now):
            key = alert["labels"]["alertname"]
            ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
            state = "firing" if ends > now else "resolved"
            seen.setdefault(key, set()).add(state)
            if state == "resolved":
                resolved.add(key)
                assert ends <= now
        clock.advance(5)
    assert {"ServiceDown", "HighErrorRate", "PodCrashLooping", "KafkaConsumerLag"} <= resolved
    assert seen["DiskSpaceLow"] == {"firing"}
    assert seen["ServiceDown"] == {"firing", "resolved"}
