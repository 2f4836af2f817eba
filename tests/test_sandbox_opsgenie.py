"""The sandbox serves the fake Opsgenie, configures it, and sends it warnings: from the real
Alertmanager through `opsgenie_configs`, or from the stand-in through its relay."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from am_harness import alertmanager_binary
from spec_check_swagger import SwaggerSpecValidator, ValidatingTransport

from oncall_tui.clock import SystemClock
from oncall_tui.providers.opsgenie import OpsgenieClient
from oncall_tui.sandbox.opsgenie_relay import opsgenie_call
from oncall_tui.sandbox.runner import Sandbox
from oncall_tui.webhook_payloads import AlertmanagerNotification
from oncall_tui.webhooks import WebhookServer, make_webhook_app


@dataclass
class Intake:
    """oncall-tui's real webhook app in front of a recorder."""

    notifications: list[AlertmanagerNotification] = field(default_factory=list)

    async def on_alertmanager(self, notification: AlertmanagerNotification, remote: str) -> None:
        self.notifications.append(notification)

    async def on_pagerduty(
        self, event: Mapping[str, Any], delivery_id: str | None, remote: str
    ) -> None:
        pass

    async def on_rejected(self, path: str, status: int, reason: str, remote: str) -> None:
        raise AssertionError(f"rejected {path}: {status} {reason}")


async def wait_until(condition: Callable[[], Any], within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture(params=["standin", pytest.param("alertmanager", marks=pytest.mark.alertmanager)])
async def sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Sandbox]:
    if request.param == "alertmanager":
        alertmanager_binary()  # skips without the binary (fails under CI)
    box = Sandbox(
        workdir=tmp_path / "sandbox",
        backend=request.param,
        scenario=False,
        pagerduty=False,
        opsgenie_processing_seconds=0.2,
    )
    await box.start()
    try:
        yield box
    finally:
        await box.stop()
    assert box.opsgenie is None
    assert box.opsgenie_url == ""


async def test_a_warning_reaches_the_fake_opsgenie_with_the_group_alias(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = sandbox.config(log_path=tmp_path / "log.db")
    og = config.opsgenie
    assert og is not None
    assert og.api_key is not None
    assert og.api_url == sandbox.opsgenie_url
    intake = Intake()
    host, _, port = sandbox.listen.rpartition(":")
    listener = WebhookServer(
        make_webhook_app(intake, alertmanager_token=sandbox.webhook_token), host, int(port)
    )
    await listener.start()
    fake = sandbox.opsgenie
    assert fake is not None
    transport = ValidatingTransport(
        httpx.AsyncHTTPTransport(), SwaggerSpecValidator.load("opsgenie")
    )
    try:
        async with httpx.AsyncClient(timeout=5.0, transport=transport) as http:
            client = OpsgenieClient(
                og.api_url, og.api_key.get_secret_value(), http, clock=SystemClock()
            )
            client.poll_interval = 0.05
            assert {s.name for s in await client.schedules()}  # the configured key works
            warning = {
                "labels": {"alertname": "RelayWarn", "service": "checkout", "severity": "warning"},
                "annotations": {"summary": "checkout slow"},
            }
            critical = {"labels": {"alertname": "RelayCrit", "severity": "critical"}}
            url = sandbox.alertmanager_urls[0]
            async with httpx.AsyncClient(timeout=5.0) as am:
                await am.post(f"{url}/api/v2/alerts", json=[warning, critical])
                # Opsgenie works asynchronously: each check lets the fake process what it queued.
                await wait_until(lambda: fake.process_pending() >= 0 and fake.alerts)
                await wait_until(lambda: len(intake.notifications) >= 2)
                [alert] = await client.alerts()
                now = datetime.now(UTC).isoformat()
                await am.post(f"{url}/api/v2/alerts", json=[{**warning, "endsAt": now}])
                await wait_until(
                    lambda: fake.process_pending() >= 0 and fake.alerts[0].status == "closed"
                )
    finally:
        await listener.stop()
    # Only the warning went to Opsgenie, under the alias Alertmanager's notifier uses.
    assert len(fake.alerts) == 1
    group_key = next(n.group_key for n in intake.notifications if "RelayWarn" in n.group_key)
    assert alert.dedup_key == hashlib.sha256(group_key.encode()).hexdigest()
    assert transport.violations == []


async def test_sandbox_without_opsgenie(tmp_path: Path) -> None:
    box = Sandbox(backend="standin", scenario=False, pagerduty=False, opsgenie=False)
    await box.start()
    try:
        assert box.opsgenie is None
        assert box.config(log_path=tmp_path / "log.db").opsgenie is None
    finally:
        await box.stop()


def test_relayed_calls_follow_the_opsgenie_spec() -> None:
    validator = SwaggerSpecValidator.load("opsgenie")
    notification: dict[str, Any] = {
        "groupKey": '{}:{alertname="A", service="s"}',
        "externalURL": "http://127.0.0.1:9093",
        "commonLabels": {"alertname": "A", "service": "s", "severity": "warning"},
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "A", "service": "s", "severity": "warning"},
                "annotations": {"summary": "s is slow"},
            }
        ],
    }
    alias = hashlib.sha256(notification["groupKey"].encode()).hexdigest()
    create = opsgenie_call(notification)
    assert create is not None
    assert create[0] == "/v2/alerts"
    assert create[1]["alias"] == alias
    assert create[1]["description"] == "s is slow"
    notification["alerts"][0]["status"] = "resolved"
    close = opsgenie_call(notification)
    assert close is not None
    assert close[0] == f"/v2/alerts/{alias}/close?identifierType=alias"
    for path, body in (create, close):
        validator.check_request(
            httpx.Request(
                "POST",
                f"https://api.opsgenie.com{path}",
                content=json.dumps(body).encode(),
                headers={"Authorization": "GenieKey k", "Content-Type": "application/json"},
            )
        )
    critical_only = {**notification, "alerts": [{"status": "firing", "labels": {"severity": "x"}}]}
    assert opsgenie_call(critical_only) is None
