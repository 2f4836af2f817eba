"""The real Alertmanager pages the fake PagerDuty through its pagerduty_configs.

Alertmanager posts Events API v2 triggers to the fake, served on a loopback port behind a proxy
that checks every exchange against the Events spec; it also notifies a recording webhook
listener, whose payload carries the group key. The incident's key must be the SHA-256 of that
group key (what lets oncall-tui link an alert group to its incident), and a second alert of the
group must join the open incident without paging anyone again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from am_harness import am_binary, running_alertmanager, wait_for
from spec_check import SpecValidator, ValidatingProxy, ValidatingTransport
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oncall_tui.clock import SystemClock
from oncall_tui.sandbox.alertmanager_process import alertmanager_config_yaml
from oncall_tui.sandbox.fake_pagerduty import FakePagerDuty
from oncall_tui.sandbox.runner import Sandbox
from oncall_tui.webhook_payloads import AlertmanagerNotification
from oncall_tui.webhooks import WebhookServer, make_webhook_app

__all__ = ["am_binary"]

pytestmark = pytest.mark.alertmanager

ROUTING_KEY = "pipeline-routing-key-00000000000"
TOKEN = "pipeline-token"
PD_HEADERS = {
    "Authorization": f"Token token={TOKEN}",
    "Accept": "application/vnd.pagerduty+json;version=2",
}


class Listener:
    """Records Alertmanager's webhook notifications."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/hook", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        self.notifications.append(json.loads(await request.body()))
        return Response(status_code=200)


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FakePagerDuty, ValidatingProxy, str, Listener, str]]:
    fake = FakePagerDuty(clock=SystemClock(), api_token=TOKEN, routing_keys=[ROUTING_KEY])
    proxy = ValidatingProxy(fake.app, SpecValidator.load("pagerduty-events"))
    methods = ["GET", "POST", "PUT"]
    fake_server = WebhookServer(
        Starlette(routes=[Route("/{path:path}", proxy, methods=methods)]), "127.0.0.1", 0
    )
    listener = Listener()
    listener_server = WebhookServer(listener.app, "127.0.0.1", 0)
    await fake_server.start()
    await listener_server.start()
    try:
        yield (
            fake,
            proxy,
            f"http://{fake_server.address}",
            listener,
            f"http://{listener_server.address}/hook",
        )
    finally:
        await listener_server.stop()
        await fake_server.stop()
        await proxy.aclose()
        await fake.stop()


async def post_alert(http: httpx.AsyncClient, url: str, instance: str) -> None:
    alert = {
        "labels": {
            "alertname": "PipelineDown",
            "severity": "critical",
            "service": "payment-service",
            "instance": instance,
        },
        "annotations": {"summary": f"payment-service down on {instance}"},
    }
    response = await http.post(f"{url}/api/v2/alerts", json=[alert])
    response.raise_for_status()


async def test_alert_group_pages_once_with_the_group_key_hash(
    am_binary: str,
    tmp_path: Path,
    servers: tuple[FakePagerDuty, ValidatingProxy, str, Listener, str],
) -> None:
    fake, proxy, fake_url, listener, listener_url = servers
    config = alertmanager_config_yaml(
        webhook_url=listener_url,
        pagerduty_events_url=fake_url,
        pagerduty_routing_key=ROUTING_KEY,
    )
    enqueued = [0]

    def triggers() -> int:
        return sum(1 for _, path, status in proxy.transport.exchanges if path == "/v2/enqueue")

    async with (
        running_alertmanager(am_binary, tmp_path / "am", config) as am,
        httpx.AsyncClient(timeout=5.0) as http,
    ):
        await post_alert(http, am.url, "a")

        async def paged() -> bool:
            return bool(fake.incidents) and bool(listener.notifications)

        await wait_for(paged, what="Alertmanager to page the fake PagerDuty")
        group_key = listener.notifications[0]["groupKey"]
        [incident] = fake.incidents
        assert incident.incident_key == hashlib.sha256(group_key.encode()).hexdigest()
        assert len(fake.pages) == 1
        enqueued[0] = triggers()

        await post_alert(http, am.url, "b")

        async def regrouped() -> bool:
            firing = [len(n["alerts"]) for n in listener.notifications]
            return 2 in firing and triggers() > enqueued[0]

        await wait_for(regrouped, what="the second alert of the group to reach both receivers")

    assert {n["groupKey"] for n in listener.notifications} == {group_key}
    assert len(fake.incidents) == 1
    assert len(fake.pages) == 1, "the second alert of an open incident must not page again"
    [alert] = incident.alerts  # the same dedup_key: the alert is updated, not added
    assert str(alert.details.get("num_firing")) == "2"
    assert proxy.transport.violations == []

    # The incident as the REST API shows it, checked against the REST spec.
    rest = httpx.AsyncClient(
        transport=ValidatingTransport(
            httpx.ASGITransport(app=fake.app), SpecValidator.load("pagerduty-rest")
        ),
        base_url="http://pagerduty.test",
    )
    async with rest:
        answer = await rest.get(
            "/incidents", params={"incident_key": incident.incident_key}, headers=PD_HEADERS
        )
    [listed] = answer.json()["incidents"]
    assert listed["status"] == "triggered"
    assert listed["service"]["summary"] == "payment-service"


class RecordingHandler:
    """Stands behind oncall-tui's real webhook app (which verifies the signatures)."""

    def __init__(self) -> None:
        self.pagerduty: list[Mapping[str, Any]] = []
        self.alertmanager: list[AlertmanagerNotification] = []
        self.rejected: list[tuple[str, int, str]] = []

    async def on_alertmanager(self, notification: AlertmanagerNotification, remote: str) -> None:
        self.alertmanager.append(notification)

    async def on_pagerduty(
        self, event: Mapping[str, Any], delivery_id: str | None, remote: str
    ) -> None:
        self.pagerduty.append(event)

    async def on_rejected(self, path: str, status: int, reason: str, remote: str) -> None:
        self.rejected.append((path, status, reason))


async def test_sandbox_pipeline_pages_escalates_and_signs_webhooks(
    am_binary: str, tmp_path: Path
) -> None:
    """The sandbox's own wiring: Alertmanager -> fake PagerDuty -> signed webhooks -> listener.

    time_scale 600 makes the Payments policy's 5-minute first level last half a second.
    """
    sandbox = Sandbox(
        workdir=tmp_path / "sandbox",
        backend="alertmanager",
        scenario=False,
        pagerduty_time_scale=600.0,
    )
    await sandbox.start()
    handler = RecordingHandler()
    try:
        config = sandbox.config(log_path=tmp_path / "log.db")
        assert config.pagerduty is not None
        assert config.pagerduty.webhook_secret is not None
        assert config.pagerduty.api_token is not None
        secret = config.pagerduty.webhook_secret.get_secret_value()
        token = sandbox.webhook_token
        app = make_webhook_app(handler, alertmanager_token=token, pagerduty_secrets=[secret])
        host, _, port = sandbox.listen.rpartition(":")
        listener = WebhookServer(app, host, int(port))
        await listener.start()
        try:
            async with httpx.AsyncClient(timeout=5.0) as http:
                await post_alert(http, sandbox.alertmanager_urls[0], "a")

            def kinds() -> list[str]:
                return [str(event["event_type"]) for event in handler.pagerduty]

            async def escalated() -> bool:
                return "incident.escalated" in kinds() and bool(handler.alertmanager)

            await wait_for(escalated, what="a signed incident.escalated webhook")
        finally:
            await listener.stop()
        assert kinds()[0] == "incident.triggered"
        assert handler.rejected == []  # every delivery passed the real signature check
        group_key = handler.alertmanager[0].group_key
        fake = sandbox.pagerduty
        assert fake is not None
        [incident] = fake.incidents
        assert incident.incident_key == hashlib.sha256(group_key.encode()).hexdigest()

        rest = httpx.AsyncClient(
            transport=ValidatingTransport(
                httpx.ASGITransport(app=fake.app), SpecValidator.load("pagerduty-rest")
            ),
            base_url=config.pagerduty.api_url,
        )
        headers = {
            "Authorization": f"Token token={config.pagerduty.api_token.get_secret_value()}",
            "Accept": "application/vnd.pagerduty+json;version=2",
        }
        async with rest:
            answer = await rest.get("/incidents", headers=headers)
        [listed] = answer.json()["incidents"]
        assert listed["incident_key"] == incident.incident_key
    finally:
        await sandbox.stop()
    assert sandbox.pagerduty is None
