"""Real Alertmanager -> fake Opsgenie: the alias Alertmanager sets is our correlation key.

Alertmanager (the real binary) routes a warning through its `opsgenie_configs` to the fake
Opsgenie, served on loopback behind a validating proxy, so what Alertmanager sends is checked
against Opsgenie's spec too; a recording webhook receives the same group's notification. The
alert Opsgenie ends up with must carry alias == group_dedup_key(groupKey), and resolving the
alert in Alertmanager must close it (Alertmanager closes by alias).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from am_harness import am_binary, running_alertmanager, wait_for
from spec_check_swagger import SwaggerSpecValidator, ValidatingProxy, ValidatingTransport
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oncall_tui.clock import SystemClock
from oncall_tui.engine.correlation import group_dedup_key
from oncall_tui.providers.opsgenie import OpsgenieClient
from oncall_tui.sandbox.alertmanager_process import alertmanager_config_yaml
from oncall_tui.sandbox.fake_opsgenie import FakeOpsgenie
from oncall_tui.webhooks import WebhookServer

__all__ = ["am_binary"]  # the fixture, imported so pytest sees it

pytestmark = pytest.mark.alertmanager

KEY = "og-pipeline-key-77"


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeOpsgenie, ValidatingProxy, str, list[Any], str]]:
    """The fake behind a validating proxy, and a webhook recorder, both on loopback."""
    fake = FakeOpsgenie(clock=SystemClock(), api_key=KEY, processing_polls=1)
    proxy = ValidatingProxy(fake.app, SwaggerSpecValidator.load("opsgenie"))
    hooks: list[Any] = []

    async def record(request: Request) -> Response:
        hooks.append(json.loads(await request.body()))
        return JSONResponse({})

    recorder = Starlette(routes=[Route("/hook", record, methods=["POST"])])
    og_server = WebhookServer(proxy, "127.0.0.1", 0)  # type: ignore[arg-type]
    hook_server = WebhookServer(recorder, "127.0.0.1", 0)
    await og_server.start()
    await hook_server.start()
    try:
        yield fake, proxy, f"http://{og_server.address}", hooks, f"http://{hook_server.address}"
    finally:
        await hook_server.stop()
        await og_server.stop()
        await proxy.aclose()


async def test_alertmanager_warning_reaches_opsgenie_with_our_correlation_alias(
    am_binary: str,
    tmp_path: Path,
    served: tuple[FakeOpsgenie, ValidatingProxy, str, list[Any], str],
) -> None:
    fake, proxy, og_url, hooks, hook_url = served
    config = alertmanager_config_yaml(
        webhook_url=f"{hook_url}/hook", opsgenie_url=og_url, opsgenie_api_key=KEY
    )
    run = uuid.uuid4().hex[:10]
    labels = {"alertname": f"DiskSlow{run}", "severity": "warning", "service": "search"}
    annotations = {"summary": "disk latency above 200ms", "description": "db-1 is slow"}
    validator = SwaggerSpecValidator.load("opsgenie")
    transport = ValidatingTransport(httpx.AsyncHTTPTransport(), validator)
    async with (
        running_alertmanager(am_binary, tmp_path / "am", config) as am,
        httpx.AsyncClient(timeout=5.0) as plain,
        httpx.AsyncClient(transport=transport, timeout=5.0) as checked,
    ):
        client = OpsgenieClient(og_url, KEY, checked, clock=SystemClock())
        now = datetime.now(UTC)
        alert = {"labels": labels, "annotations": annotations, "startsAt": now.isoformat()}
        (await plain.post(f"{am.url}/api/v2/alerts", json=[alert])).raise_for_status()

        async def group_key() -> str:
            firing = [h for h in hooks if h["status"] == "firing"]
            return str(firing[0]["groupKey"]) if firing else ""

        key = await wait_for(group_key, what="Alertmanager's webhook notification")
        alias = group_dedup_key(key)

        async def opened() -> list[Any]:
            # Each of our requests also lets the fake work through its queue.
            return await client.alerts(query=f"alias={alias}")

        (incident,) = await wait_for(opened, what="the Opsgenie alert with our alias")
        assert incident.dedup_key == alias
        assert incident.status == "open"
        assert labels["alertname"] in incident.title
        created = [body for method, path, body in fake.received if path == "/v2/alerts"]
        assert created[0]["alias"] == alias
        assert created[0]["description"]  # Alertmanager's default description template

        # Resolving in Alertmanager closes the Opsgenie alert, by alias.
        alert["endsAt"] = datetime.now(UTC).isoformat()
        (await plain.post(f"{am.url}/api/v2/alerts", json=[alert])).raise_for_status()

        async def closed() -> bool:
            return (await client.alert(alias, "alias")).status == "closed"

        await wait_for(closed, within=15.0, what="Alertmanager to close the alert by alias")
    closes = [path for method, path, body in fake.received if path.endswith("/close")]
    assert closes == [f"/v2/alerts/{alias}/close"]
    sent = {
        (method, path.split("/")[-1], status) for method, path, status in proxy.transport.exchanges
    }
    assert {("POST", "alerts", 202), ("POST", "close", 202)} <= sent
    assert proxy.transport.violations == []
    assert transport.violations == []
