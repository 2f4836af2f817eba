"""End to end: the real Alertmanager -> our webhook listener -> automation -> fake Statuspage.

Alertmanager delivers every notification twice (two identical webhook configs), the engine polls
only when a webhook (or a refresh) wakes it, and every Statuspage exchange is checked against
the published spec. The engine's clock is frozen and advanced by hand for `resolve_after`;
Alertmanager itself runs on wall time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from am_harness import am_binary, running_alertmanager, wait_for
from spec_check import SpecValidator, ValidatingTransport
from test_engine_statuspage import WiredEngine

from oncall_tui.clock import FrozenClock, SystemClock
from oncall_tui.config import Config, load_config_text
from oncall_tui.engine.actions import ActionRequest
from oncall_tui.engine.statuspage import INCIDENT_UPDATE
from oncall_tui.models import ActionStatus, LogEntry
from oncall_tui.providers.alertmanager import AlertmanagerClient, PostableAlert
from oncall_tui.sandbox.alertmanager_process import (
    AlertmanagerProcess,
    alertmanager_config_yaml,
    free_port,
)
from oncall_tui.sandbox.fake_statuspage import FakeStatuspage

pytestmark = pytest.mark.alertmanager

__all__ = ["am_binary"]

KEY = "sp-key-for-pipeline-01"
PAGE = "pagepipeline"
PAY = "cpay00000001"
SEARCH = "csearch00001"
RESOLVE_AFTER = 300.0


class Routes(httpx.AsyncBaseTransport):
    """Statuspage (in process, spec-checked) by host name; Alertmanager over loopback."""

    def __init__(self, statuspage: httpx.AsyncBaseTransport) -> None:
        self.statuspage = statuspage
        self.network = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "statuspage.test":
            return await self.statuspage.handle_async_request(request)
        return await self.network.handle_async_request(request)

    async def aclose(self) -> None:
        await self.network.aclose()


@dataclass
class Pipeline:
    tmp_path: Path
    clock: FrozenClock
    fake: FakeStatuspage
    validating: ValidatingTransport
    http: httpx.AsyncClient
    am: AlertmanagerProcess
    config: Config
    engine: WiredEngine

    async def start_engine(self) -> None:
        self.engine = WiredEngine(self.config, clock=self.clock, http=self.http)
        await self.engine.start()

        async def ready() -> bool:
            sp = self.engine.snapshot.health_of("statuspage")
            am = self.engine.snapshot.health_of("am")
            return bool(sp and sp.reachable and am and am.reachable)

        await wait_for(ready, what="the first polls")

    async def restart(self) -> None:
        await self.engine.stop()
        await self.start_engine()

    async def fire(self, service: str, name: str = "ServiceDown", *, resolve: bool = False) -> None:
        client = AlertmanagerClient("am", self.am.url, self.http, clock=SystemClock())
        now = datetime.now(UTC)
        labels = {"alertname": name, "service": service, "severity": "critical"}
        await client.post_alerts(
            [PostableAlert(labels=labels, starts_at=now, ends_at=now if resolve else None)]
        )
        # As the regular poll would (it is 1h here): Alertmanager notifies only what changed
        # since its last notification, so an alert that resolves and fires again between two of
        # them (flapping) may bring no webhook at all.
        self.engine.refresh_now()

    async def log(self, *kinds: str, source: str = "automation") -> list[LogEntry]:
        return await self.engine.log_entries(sources=[source], kinds=list(kinds), limit=0)

    async def wait_log(self, kind: str, count: int = 1, source: str = "automation") -> None:
        async def seen() -> bool:
            return len(await self.log(kind, source=source)) >= count

        await wait_for(seen, within=15, what=f"{count} x {kind} in the log")

    def incidents(self) -> list[dict[str, Any]]:
        return [self.fake.incident(i) for i in self.fake.incident_ids]

    async def settle_resolve(self) -> None:
        """Wait out `resolve_after` on the engine's clock, then let the next poll look."""
        self.clock.advance(RESOLVE_AFTER + 1)
        self.engine.refresh_now()


def engine_config(tmp_path: Path, am_url: str, port: int) -> Config:
    text = f"""
operator: {{name: Test Operator, email: ops@example.com}}
alertmanagers: [{{name: am, url: "{am_url}"}}]
statuspage:
  api_key: "{KEY}"
  page_id: "{PAGE}"
  api_url: "http://statuspage.test/v1"
  components: {{payment-service: {PAY}, search: {SEARCH}}}
  automation:
    enabled: true
    match: {{severity: critical}}
    component_label: service
    resolve_after: {RESOLVE_AFTER:.0f}s
webhooks: {{listen: "127.0.0.1:{port}"}}
poll: {{alerts: 1h, statuspage: 1h}}
log: {{path: "{tmp_path / "log.db"}"}}
"""
    return load_config_text(text, "test.yaml", {})


def doubled_webhooks_yaml(webhook_url: str) -> str:
    """The sandbox routing, with every notification delivered twice to our listener."""
    config = yaml.safe_load(alertmanager_config_yaml(webhook_url=webhook_url))
    for receiver in config["receivers"]:
        hooks = receiver.get("webhook_configs") or []
        receiver["webhook_configs"] = hooks + [dict(h) for h in hooks]
    return str(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture
async def pipeline(am_binary: str, tmp_path: Path) -> AsyncIterator[Pipeline]:
    clock = FrozenClock(datetime.now(UTC))
    fake = FakeStatuspage(
        clock=clock, api_key=KEY, page_id=PAGE, components={"Payments": PAY, "Search": SEARCH}
    )
    validating = ValidatingTransport(
        httpx.ASGITransport(app=fake.app), SpecValidator.load("statuspage")
    )
    http = httpx.AsyncClient(transport=Routes(validating), timeout=5.0)
    port = free_port()
    am_yaml = doubled_webhooks_yaml(f"http://127.0.0.1:{port}/webhooks/alertmanager")
    try:
        async with running_alertmanager(am_binary, tmp_path / "am", am_yaml) as am:
            config = engine_config(tmp_path, am.url, port)
            engine = WiredEngine(config, clock=clock, http=http)
            world = Pipeline(tmp_path, clock, fake, validating, http, am, config, engine)
            await world.start_engine()
            try:
                yield world
            finally:
                await world.engine.stop()
    finally:
        await http.aclose()
    assert validating.violations == []


async def test_one_incident_per_component_across_duplicates_and_a_restart_then_resolved(
    pipeline: Pipeline,
) -> None:
    await pipeline.fire("payment-service")
    await wait_for(lambda: _async(len(pipeline.incidents()) == 1), what="the public incident")
    await pipeline.fire("payment-service", "HighErrorRate")
    await pipeline.wait_log("automation.joined")

    hooks = await pipeline.log("webhook", source="alertmanager")
    group_keys = [h.data["group_key"] for h in hooks]
    assert any(group_keys.count(k) >= 2 for k in group_keys), "deliveries were duplicated"

    # A restart, then a delivery from before it replayed to the new listener.
    await pipeline.restart()
    replay = _notification(hooks[0])
    answer = await pipeline.http.post(
        f"http://{pipeline.engine.webhook_address}/webhooks/alertmanager", json=replay
    )
    assert answer.status_code == 200
    await pipeline.wait_log("webhook", count=len(hooks) + 1, source="alertmanager")
    await pipeline.fire("payment-service")
    await pipeline.fire("search")
    await wait_for(lambda: _async(len(pipeline.incidents()) == 2), what="the search incident")
    by_component = {i["components"][0]["id"]: i for i in pipeline.incidents()}
    assert set(by_component) == {PAY, SEARCH}
    assert pipeline.fake.component_status(PAY) == "major_outage"

    for name in ("ServiceDown", "HighErrorRate"):
        await pipeline.fire("payment-service", name, resolve=True)
    await pipeline.wait_log("automation.quiet")
    assert pipeline.fake.incident(by_component[PAY]["id"])["status"] == "investigating"
    await pipeline.settle_resolve()
    await pipeline.wait_log("automation.resolved")

    payments = pipeline.fake.incident(by_component[PAY]["id"])
    assert payments["status"] == "resolved"
    assert pipeline.fake.component_status(PAY) == "operational"
    assert pipeline.fake.incident(by_component[SEARCH]["id"])["status"] == "investigating"
    assert len(pipeline.incidents()) == 2
    actions = await pipeline.log("action.done", source="automation")
    assert {a.actor for a in actions} == {"automation"}


async def test_a_flapping_alert_keeps_one_incident_open(pipeline: Pipeline) -> None:
    await pipeline.fire("search")
    await wait_for(lambda: _async(len(pipeline.incidents()) == 1), what="the public incident")
    for round_ in range(1, 3):
        await pipeline.fire("search", resolve=True)
        await pipeline.wait_log("automation.quiet", count=round_)
        pipeline.clock.advance(RESOLVE_AFTER / 2)
        await pipeline.fire("search")
        await pipeline.wait_log("automation.refired", count=round_)
    [incident] = pipeline.incidents()
    assert incident["status"] == "investigating"
    assert len(incident["incident_updates"]) == 1

    await pipeline.fire("search", resolve=True)
    await pipeline.wait_log("automation.quiet", count=3)
    await pipeline.settle_resolve()
    await pipeline.wait_log("automation.resolved")
    [incident] = pipeline.incidents()
    assert [u["status"] for u in incident["incident_updates"]] == ["resolved", "investigating"]


async def test_an_operator_edited_incident_is_not_auto_resolved(pipeline: Pipeline) -> None:
    await pipeline.fire("payment-service")
    await wait_for(lambda: _async(len(pipeline.incidents()) == 1), what="the public incident")
    [incident] = pipeline.incidents()
    edit = await pipeline.engine.act(
        ActionRequest(
            INCIDENT_UPDATE,
            incident["id"],
            {"status": "identified", "body": "A bad deploy; rolling back."},
        )
    )
    assert edit.status == ActionStatus.DONE

    await pipeline.fire("payment-service", resolve=True)
    await pipeline.wait_log("automation.quiet")
    await pipeline.settle_resolve()
    await pipeline.wait_log("automation.handover")
    assert pipeline.fake.incident(incident["id"])["status"] == "identified"
    assert pipeline.fake.component_status(PAY) == "major_outage"
    assert await pipeline.log("automation.resolve") == []


async def _async(value: bool) -> bool:
    return value


def _notification(entry: LogEntry) -> dict[str, Any]:
    """An Alertmanager webhook body (version 4) rebuilt from what the intake logged."""
    data = entry.data
    alerts = [
        {
            "status": a["status"],
            "labels": a["labels"],
            "annotations": {},
            "startsAt": a["starts_at"],
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": a["fingerprint"],
        }
        for a in data["alerts"]
    ]
    common = dict(alerts[0]["labels"]) if alerts else {}
    return json.loads(
        json.dumps(
            {
                "version": "4",
                "groupKey": data["group_key"],
                "truncatedAlerts": data["truncated_alerts"],
                "status": data["status"],
                "receiver": data["receiver"],
                "groupLabels": data["group_labels"],
                "commonLabels": common,
                "commonAnnotations": {},
                "externalURL": "http://alertmanager.test",
                "alerts": alerts,
            }
        )
    )
