"""`fire --wait` end to end: the real Alertmanager, our webhook listener and the fake PagerDuty.

Alertmanager is configured as the sandbox does (critical -> PagerDuty Events API + our webhook),
and `fire_and_wait` serves the configured listener itself. With PagerDuty's Events endpoint
unreachable, the trace must fail, name the PagerDuty stage and say that the receiver errs
(read from Alertmanager's own failure counter).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from am_harness import am_binary, running_alertmanager

from oncall_tui.clock import SystemClock
from oncall_tui.config import Config, validate_config
from oncall_tui.engine import Engine
from oncall_tui.engine.correlation import group_dedup_key
from oncall_tui.engine.trace_result import OK, SKIPPED
from oncall_tui.engine.trace_routing import failed_requests, routing_of
from oncall_tui.sandbox.alertmanager_process import alertmanager_config_yaml
from oncall_tui.sandbox.fake_pagerduty import FakePagerDuty
from oncall_tui.sandbox.fake_statuspage import FakeStatuspage
from oncall_tui.sandbox.runner import Sandbox, free_port
from oncall_tui.store import Store
from oncall_tui.trace_cli import fire_and_wait
from oncall_tui.webhooks import WebhookServer

__all__ = ["am_binary"]

pytestmark = pytest.mark.alertmanager

TOKEN = "trace-test-token"
ROUTING_KEY = "0123456789abcdef0123456789abcdef"
WEBHOOK_TOKEN = "trace-webhook-token"
SP_KEY = "sp-key-for-trace-01"
SP_PAGE = "pagetrace"
SP_PAY = "cpay00000001"
CRITICAL = {"alertname": "TraceDown", "severity": "critical", "service": "payment-service"}


@asynccontextmanager
async def pipeline(
    am_binary: str,
    tmp_path: Path,
    *,
    events_reachable: bool = True,
    statuspage_url: str = "",
) -> AsyncIterator[tuple[Config, FakePagerDuty]]:
    clock = SystemClock()
    fake = FakePagerDuty(clock=clock, api_token=TOKEN, routing_keys=[ROUTING_KEY])
    server = WebhookServer(fake.app, "127.0.0.1", 0)
    await server.start()
    fake_url = f"http://{server.address}"
    listen = f"127.0.0.1:{free_port()}"
    # Nothing listens on a port just freed: Alertmanager's PagerDuty requests fail.
    events_url = fake_url if events_reachable else f"http://127.0.0.1:{free_port()}"
    am_yaml = alertmanager_config_yaml(
        webhook_url=f"http://{listen}/webhooks/alertmanager",
        webhook_token=WEBHOOK_TOKEN,
        pagerduty_events_url=events_url,
        pagerduty_routing_key=ROUTING_KEY,
    )
    try:
        async with running_alertmanager(am_binary, tmp_path / "am", am_yaml) as am:
            data: dict[str, Any] = {
                "operator": {"name": "Trace Tester", "email": "demo@example.com"},
                "alertmanagers": [{"name": "am", "url": am.url}],
                "webhooks": {"listen": listen, "alertmanager_token": WEBHOOK_TOKEN},
                "log": {"path": str(tmp_path / "log.db")},
                "pagerduty": {
                    "api_token": TOKEN,
                    "routing_key": ROUTING_KEY,
                    "api_url": fake_url,
                    "events_url": fake_url,
                },
            }
            if statuspage_url:
                data["statuspage"] = {
                    "api_key": SP_KEY,
                    "page_id": SP_PAGE,
                    "api_url": statuspage_url,
                    "components": {"payment-service": SP_PAY},
                    "automation": {"enabled": True},
                }
                data["poll"] = {"alerts": "1s", "statuspage": "1s"}
            yield validate_config(data, "<test>"), fake
    finally:
        await server.stop()
        await fake.stop()


async def test_fire_and_wait_follows_every_stage(am_binary: str, tmp_path: Path) -> None:
    async with pipeline(am_binary, tmp_path) as (config, fake):
        out = io.StringIO()
        code = await fire_and_wait(
            config, CRITICAL, {"summary": "trace test"}, timeout=15.0, out=out
        )
        text = out.getvalue()
        assert code == 0, text
        [incident] = fake.incidents
    lines = [line for line in text.splitlines() if line.startswith("  ")]
    assert "pipeline OK" in text
    # Every expected stage printed as ok with a latency; the others say why they are skipped.
    for title in ("accepted", "routed", "notification", "PagerDuty", "paged"):
        assert any(line.split()[0] == "ok" and title in line for line in lines), text
    assert "joined" not in text, "a new group opens a new incident"
    assert "not routed to Opsgenie" in text
    assert "Statuspage not configured" in text

    store = await Store.open(config.log.file, clock=SystemClock())
    try:
        [entry] = await store.entries(kinds=["trace.passed"])
        [webhook, *_] = await store.entries(sources=["alertmanager"], kinds=["webhook"])
    finally:
        await store.close()
    stages = {s["name"]: s for s in entry.data["stages"]}
    assert stages["pagerduty"]["status"] == OK
    assert stages["opsgenie"]["status"] == SKIPPED
    # The incident is the one of the alert's group: dedup_key = sha256(group key).
    assert entry.data["group_key"] == webhook.data["group_key"]
    assert incident.incident_key == group_dedup_key(entry.data["group_key"])
    latencies = [stages[n]["latency"] for n in ("accepted", "notified", "pagerduty")]
    assert all(0 <= value < 15 for value in latencies)
    # Alertmanager notifies its receivers in parallel: the webhook and PagerDuty race each
    # other, but both come after Alertmanager accepted the alert.
    accepted, notified, paged = latencies
    assert accepted <= min(notified, paged), latencies
    assert stages["paged"]["detail"], "who was paged is named"


async def test_broken_pagerduty_receiver_fails_and_names_the_stage(
    am_binary: str, tmp_path: Path
) -> None:
    async with pipeline(am_binary, tmp_path, events_reachable=False) as (config, fake):
        out = io.StringIO()
        code = await fire_and_wait(
            config, CRITICAL, {"summary": "trace test"}, timeout=4.0, out=out
        )
        assert fake.incidents == []
    text = out.getvalue()
    assert code != 0
    assert "pipeline BROKEN at pagerduty, paged" in text
    [line] = [ln for ln in text.splitlines() if "BROKEN" in ln and "PagerDuty incident" in ln]
    assert "receiver error" in line
    assert "failed PagerDuty requests" in line
    # The stages before it still worked.
    assert any(ln.split()[:1] == ["ok"] and "notification received" in ln for ln in lines(text))


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("  ")]


def test_routing_names_routes_receivers_and_missing_keys() -> None:
    am_yaml = alertmanager_config_yaml(
        webhook_url="http://127.0.0.1:1/hook", pagerduty_events_url="http://127.0.0.1:2"
    )
    critical = routing_of(am_yaml, CRITICAL)
    assert critical.receivers == ("critical",)
    assert "pagerduty_configs" in critical.integrations
    assert critical.pagerduty_keyed
    assert not critical.only_root
    assert critical.group_keys == (
        '{}/{severity="critical"}:{alertname="TraceDown", service="payment-service"}',
    )
    stray = routing_of(am_yaml, {"alertname": "X", "severity": "page"})
    assert stray.only_root
    assert stray.receivers == ("default",)
    unkeyed = am_yaml.replace("routing_key: sandbox-routing-key-000000000000", "routing_key: ''")
    assert not routing_of(unkeyed, CRITICAL).pagerduty_keyed


def test_failed_requests_reads_alertmanager_metrics() -> None:
    text = (
        "# HELP x\n"
        'alertmanager_notification_requests_failed_total{integration="pagerduty"} 4\n'
        'alertmanager_notification_requests_failed_total{integration="webhook"} 0\n'
        'alertmanager_notifications_failed_total{integration="pagerduty"} 1\n'
    )
    assert failed_requests(text) == {"pagerduty": 4.0, "webhook": 0.0}


async def test_sandbox_warning_reaches_opsgenie_and_a_stray_alert_has_no_route(
    am_binary: str, tmp_path: Path
) -> None:
    """The sandbox's own wiring: warnings go to the fake Opsgenie (alias = sha256 of the group
    key); an alert no route matches ends at the root receiver and the trace says so."""
    sandbox = Sandbox(
        workdir=tmp_path / "sandbox",
        backend="alertmanager",
        scenario=False,
        opsgenie_processing_seconds=0.1,
    )
    await sandbox.start()
    try:
        config = sandbox.config(log_path=tmp_path / "log.db")
        [_, warning] = config.test_alerts
        out = io.StringIO()
        code = await fire_and_wait(
            config, warning.labels, warning.annotations, timeout=15.0, out=out
        )
        text = out.getvalue()
        assert code == 0, text
        assert any(ln.split()[0] == "ok" and "Opsgenie alert" in ln for ln in lines(text)), text
        assert "not routed to PagerDuty" in text

        stray = io.StringIO()
        labels = {"alertname": "Stray", "severity": "page", "service": "nowhere"}
        code = await fire_and_wait(config, labels, {}, timeout=3.0, out=stray)
        assert code != 0
        [routed] = [
            ln for ln in lines(stray.getvalue()) if " routed " in ln.replace("not routed", "")
        ]
        assert "BROKEN" in routed
        assert "no route matched" in routed
        assert "'default'" in routed
    finally:
        await sandbox.stop()


async def test_statuspage_stage_seen_while_serve_runs_the_automation(
    am_binary: str, tmp_path: Path
) -> None:
    """As deployed: an engine (`serve`) holds the listener and runs the automation; `fire --wait`
    reads the shared log for the notification and sees the public incident the automation opens."""
    clock = SystemClock()
    statuspage = FakeStatuspage(
        clock=clock, api_key=SP_KEY, page_id=SP_PAGE, components={"Payments": SP_PAY}
    )
    server = WebhookServer(statuspage.app, "127.0.0.1", 0)
    await server.start()
    try:
        url = f"http://{server.address}/v1"
        async with pipeline(am_binary, tmp_path, statuspage_url=url) as (config, _fake):
            engine = Engine(config, clock=clock)
            await engine.start()
            try:
                assert engine.webhook_address == config.webhooks.listen
                out = io.StringIO()
                code = await fire_and_wait(
                    config, CRITICAL, {"summary": "trace test"}, timeout=20.0, out=out
                )
            finally:
                await engine.stop()
    finally:
        await server.stop()
    text = out.getvalue()
    assert code == 0, text
    [line] = [ln for ln in lines(text) if "Statuspage incident" in ln]
    assert line.split()[0] == "ok", text
    assert "investigating" in line or "identified" in line
