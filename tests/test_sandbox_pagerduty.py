"""The sandbox serves the fake PagerDuty, configures it, and pages it from the stand-in too."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from spec_check import SpecValidator, ValidatingTransport

from oncall_tui.sandbox.runner import Sandbox
from oncall_tui.sandbox.standin_relay import pagerduty_event
from oncall_tui.webhook_payloads import AlertmanagerNotification
from oncall_tui.webhooks import WebhookServer, make_webhook_app

KEY = "k" * 32
PD_HEADERS = {
    "Accept": "application/vnd.pagerduty+json;version=2",
    "Content-Type": "application/json",
}


async def test_sandbox_serves_the_fake_and_configures_it(tmp_path: Path) -> None:
    sandbox = Sandbox(workdir=tmp_path / "sandbox", backend="standin", scenario=False)
    await sandbox.start()
    try:
        config = sandbox.config(log_path=tmp_path / "log.db")
        pagerduty = config.pagerduty
        assert pagerduty is not None
        assert pagerduty.api_url == pagerduty.events_url == sandbox.pagerduty_url
        assert pagerduty.routing_key is not None
        assert len(pagerduty.routing_key.get_secret_value()) == 32
        assert pagerduty.api_token is not None
        transport = ValidatingTransport(
            httpx.AsyncHTTPTransport(), SpecValidator.load("pagerduty-rest")
        )
        async with httpx.AsyncClient(
            transport=transport, base_url=pagerduty.api_url, timeout=5.0
        ) as rest:
            token = pagerduty.api_token.get_secret_value()
            headers = {**PD_HEADERS, "Authorization": f"Token token={token}"}
            me = await rest.get("/users/me", headers=headers)
        assert me.json()["user"]["email"] == config.operator.email
    finally:
        await sandbox.stop()
    assert sandbox.pagerduty is None
    assert sandbox.pagerduty_url == ""


async def test_sandbox_without_pagerduty(tmp_path: Path) -> None:
    sandbox = Sandbox(backend="standin", scenario=False, pagerduty=False)
    await sandbox.start()
    try:
        assert sandbox.pagerduty is None
        assert sandbox.config(log_path=tmp_path / "log.db").pagerduty is None
    finally:
        await sandbox.stop()


class Intake:
    """oncall-tui's real webhook app in front of a recorder (it verifies what arrives)."""

    def __init__(self) -> None:
        self.notifications: list[AlertmanagerNotification] = []
        self.pagerduty: list[Mapping[str, Any]] = []
        self.rejected: list[tuple[str, int, str]] = []

    async def on_alertmanager(self, notification: AlertmanagerNotification, remote: str) -> None:
        self.notifications.append(notification)

    async def on_pagerduty(
        self, event: Mapping[str, Any], delivery_id: str | None, remote: str
    ) -> None:
        self.pagerduty.append(event)

    async def on_rejected(self, path: str, status: int, reason: str, remote: str) -> None:
        self.rejected.append((path, status, reason))


async def test_standin_pages_the_fake_like_alertmanager(tmp_path: Path) -> None:
    sandbox = Sandbox(workdir=tmp_path / "sandbox", backend="standin", scenario=False)
    await sandbox.start()
    intake = Intake()
    try:
        config = sandbox.config(log_path=tmp_path / "log.db")
        assert config.pagerduty is not None
        assert config.pagerduty.webhook_secret is not None
        app = make_webhook_app(
            intake,
            alertmanager_token=sandbox.webhook_token,
            pagerduty_secrets=[config.pagerduty.webhook_secret.get_secret_value()],
        )
        host, _, port = sandbox.listen.rpartition(":")
        listener = WebhookServer(app, host, int(port))
        await listener.start()
        fake = sandbox.pagerduty
        assert fake is not None
        try:
            labels = {"alertname": "RelayProbe", "service": "payment-service"}
            critical = {"labels": {**labels, "severity": "critical"}}
            warning = {"labels": {"alertname": "RelayWarn", "severity": "warning"}}
            async with httpx.AsyncClient(timeout=5.0) as http:
                url = sandbox.alertmanager_urls[0]
                await http.post(f"{url}/api/v2/alerts", json=[critical, warning])
                await wait_until(lambda: fake.incidents and len(intake.notifications) == 2)
                now = datetime.now(UTC).isoformat()
                await http.post(f"{url}/api/v2/alerts", json=[{**critical, "endsAt": now}])
                await wait_until(lambda: fake.incidents[0].status == "resolved")
                await wait_until(lambda: len(intake.pagerduty) >= 2)
        finally:
            await listener.stop()
    finally:
        await sandbox.stop()
    [incident] = fake.incidents
    group_key = next(n.group_key for n in intake.notifications if "RelayProbe" in n.group_key)
    assert incident.incident_key == hashlib.sha256(group_key.encode()).hexdigest()
    kinds = [event["event_type"] for event in intake.pagerduty]
    assert kinds[:2] == ["incident.triggered", "incident.resolved"]
    assert intake.rejected == []


async def wait_until(condition: Any, within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_relayed_events_follow_the_events_spec() -> None:
    notification = {
        "groupKey": '{}:{alertname="A", service="s"}',
        "groupLabels": {"alertname": "A", "service": "s"},
        "commonLabels": {"alertname": "A", "service": "s", "severity": "critical"},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [
            {"status": "firing", "labels": {"alertname": "A", "severity": "critical"}},
            {"status": "resolved", "labels": {"alertname": "A", "severity": "critical"}},
        ],
    }
    validator = SpecValidator.load("pagerduty-events")
    trigger = pagerduty_event(notification, KEY)
    assert trigger is not None
    assert trigger["payload"]["summary"] == "[FIRING:1] A s (critical)"
    assert trigger["payload"]["custom_details"]["num_resolved"] == "1"
    resolved = {**notification, "alerts": notification["alerts"][1:]}  # type: ignore[index]
    resolve = pagerduty_event(resolved, KEY)
    assert resolve is not None
    assert resolve["event_action"] == "resolve"
    assert resolve["dedup_key"] == trigger["dedup_key"]
    for event in (trigger, resolve):
        validator.check_request(httpx.Request("POST", "http://e/v2/enqueue", json=event))
    warning = {**notification, "alerts": [{"status": "firing", "labels": {"severity": "warning"}}]}
    assert pagerduty_event(warning, KEY) is None
