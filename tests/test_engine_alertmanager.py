"""The engine against the real Alertmanager binary: a webhook push refreshes the screen long
before the next poll, and an HA pair of real Alertmanagers shows each alert once, surviving the
loss of one peer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from am_harness import am_binary, running_alertmanager, running_cluster, wait_for

from oncall_tui.clock import FrozenClock, SystemClock
from oncall_tui.config import Config, load_config_text
from oncall_tui.engine import ActionRequest, Engine
from oncall_tui.engine.alerts import AlertmanagerSource
from oncall_tui.events import SnapshotChanged
from oncall_tui.models import ActionStatus, SilenceState
from oncall_tui.providers.alertmanager import AlertmanagerClient, PostableAlert
from oncall_tui.sandbox.alertmanager_process import alertmanager_config_yaml, free_port
from oncall_tui.sandbox.standin import StandinAlertmanager

pytestmark = pytest.mark.alertmanager

__all__ = ["am_binary"]

TOKEN = "hook-token-for-tests"


def engine_config(
    tmp_path: Path, peers: list[tuple[str, str]], *, listen: str, poll: str
) -> Config:
    ams = ",".join(f'{{name: {name}, url: "{url}", cluster: prod}}' for name, url in peers)
    text = f"""
operator: {{name: Test Operator, email: ops@example.com}}
alertmanagers: [{ams}]
webhooks: {{listen: "{listen}", alertmanager_token: "${{HOOK_TOKEN}}"}}
poll: {{alerts: {poll}}}
log: {{path: "{tmp_path / "log.db"}"}}
"""
    return load_config_text(text, "test.yaml", {"HOOK_TOKEN": TOKEN})


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def test_webhook_push_refreshes_before_the_next_poll(
    am_binary: str, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    port = free_port()
    am_yaml = alertmanager_config_yaml(
        webhook_url=f"http://127.0.0.1:{port}/webhooks/alertmanager", webhook_token=TOKEN
    )
    async with running_alertmanager(am_binary, tmp_path / "am", am_yaml) as am:
        # A poll interval far longer than the test: only the webhook can make the alert appear.
        config = engine_config(tmp_path, [("am-0", am.url)], listen=f"127.0.0.1:{port}", poll="5m")
        engine = Engine(config, clock=SystemClock())
        await engine.start()
        try:
            assert engine.webhook_address == f"127.0.0.1:{port}"

            async def first_poll_done() -> bool:
                health = engine.snapshot.health_of("am-0")
                return health is not None and health.reachable is True

            await wait_for(first_poll_done, what="the first poll")
            client = AlertmanagerClient("am-0", am.url, http, clock=SystemClock())
            sent = time.monotonic()
            await client.post_alerts(
                [PostableAlert(labels={"alertname": "PushedAlert", "severity": "critical"})]
            )

            async def shown() -> bool:
                return any(a.alertname == "PushedAlert" for a in engine.snapshot.alerts)

            await wait_for(shown, within=10, what="the pushed alert on screen")
            elapsed = time.monotonic() - sent
            assert elapsed < 10  # the next poll would only come after 300 s

            hooks = await engine.log_entries(sources=["alertmanager"], kinds=["webhook"])
            assert hooks, "the webhook that triggered the refresh is in the log"
            assert hooks[0].data["alerts"][0]["labels"]["alertname"] == "PushedAlert"
            firing = await engine.log_entries(kinds=["alert.firing"])
            assert [e.data["labels"]["alertname"] for e in firing] == ["PushedAlert"]
        finally:
            await engine.stop()


async def test_webhook_without_the_token_is_refused_and_logged(
    am_binary: str, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    port = free_port()
    config = engine_config(
        tmp_path, [("am-0", "http://127.0.0.1:1")], listen=f"127.0.0.1:{port}", poll="5m"
    )
    engine = Engine(config, clock=SystemClock())
    await engine.start()
    try:
        response = await http.post(
            f"http://127.0.0.1:{port}/webhooks/alertmanager", content=b'{"version": "4"}'
        )
        assert response.status_code == 401
        assert TOKEN not in response.text
        rejected = await engine.log_entries(sources=["webhooks"])
        assert any(e.kind == "webhook.rejected" for e in rejected), [e.kind for e in rejected]
    finally:
        await engine.stop()


async def test_ha_pair_is_one_cluster_and_survives_losing_a_peer(
    am_binary: str, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    async with running_cluster(am_binary, tmp_path / "cluster", size=2) as peers:
        config = engine_config(
            tmp_path,
            [("prod-a", peers[0].url), ("prod-b", peers[1].url)],
            listen="127.0.0.1:0",
            poll="1s",
        )
        engine = Engine(config, clock=SystemClock(), listen_webhooks=False)
        await engine.start()
        try:
            alert = PostableAlert(labels={"alertname": "HaAlert", "severity": "warning"})
            # Prometheus sends every alert to every peer; Alertmanager does not gossip alerts.
            for index, peer in enumerate(peers):
                await AlertmanagerClient(
                    f"p{index}", peer.url, http, clock=SystemClock()
                ).post_alerts([alert])

            async def seen_by_both() -> bool:
                found = [a for a in engine.snapshot.alerts if a.alertname == "HaAlert"]
                return len(found) == 1 and sorted(found[0].seen_by) == ["prod-a", "prod-b"]

            await wait_for(seen_by_both, what="the alert seen once, by both peers")
            assert engine.snapshot.alerts[0].cluster == "prod"

            # A silence made through the engine lands on one peer and gossips to the other.
            done = await engine.act(
                ActionRequest(
                    "silence.create",
                    "",
                    {
                        "cluster": "prod",
                        "matchers": ['alertname="HaAlert"'],
                        "duration_seconds": 600,
                        "comment": "ha test",
                    },
                )
            )
            assert done.status == ActionStatus.DONE, done.result

            async def one_silence_on_both() -> bool:
                for peer in peers:
                    listed = (await http.get(f"{peer.url}/api/v2/silences")).json()
                    if len([s for s in listed if s["status"]["state"] == "active"]) != 1:
                        return False
                active = [s for s in engine.snapshot.silences if s.state == SilenceState.ACTIVE]
                return len(active) == 1

            await wait_for(one_silence_on_both, what="one silence, gossiped to both peers")

            await peers[1].stop()

            async def peer_b_down() -> bool:
                health = engine.snapshot.health_of("prod-b")
                return health is not None and health.reachable is False

            await wait_for(peer_b_down, within=20, what="prod-b reported unreachable")
            health_a = engine.snapshot.health_of("prod-a")
            assert health_a is not None
            assert health_a.reachable is True
            still = [a for a in engine.snapshot.alerts if a.alertname == "HaAlert"]
            assert len(still) == 1
            assert still[0].seen_by == ("prod-a",)
            downs = await engine.log_entries(kinds=["source.down"])
            assert [e.data["peer"] for e in downs] == ["prod-b"]
        finally:
            await engine.stop()


class HeldTransport(httpx.AsyncBaseTransport):
    """The stand-in for every host; requests to `held_host` wait until `release` is set."""

    def __init__(self, app: Any, held_host: str) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.held_host = held_host
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == self.held_host:
            await self.release.wait()
        return await self._inner.handle_async_request(request)


async def test_a_peer_is_shown_as_answered_only_together_with_its_alerts() -> None:
    clock = FrozenClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    standin = StandinAlertmanager(clock=clock)
    standin.put_alerts(
        [{"labels": {"alertname": "DiskFull", "severity": "critical"}, "annotations": {}}]
    )
    transport = HeldTransport(standin.app, "peer-b.invalid")
    async with httpx.AsyncClient(transport=transport) as client:
        peers = [
            AlertmanagerClient(name, f"http://{name}.invalid", client, clock=clock, cluster="prod")
            for name in ("peer-a", "peer-b")
        ]
        source = AlertmanagerSource(peers, clock)
        polling = asyncio.create_task(source.poll_cluster("prod"))
        for _ in range(50):  # peer-a has answered by now; peer-b is held
            await asyncio.sleep(0.01)
        # A snapshot taken now must not show peer-a as just answered over no alerts at all.
        assert source.health["peer-a"].last_success is None
        assert source.alerts == []
        transport.release.set()
        await asyncio.wait_for(polling, 5)
        assert source.health["peer-a"].last_success is not None
        assert [a.alertname for a in source.alerts] == ["DiskFull"]


async def test_a_bulk_first_load_is_shown_before_it_is_logged(
    am_binary: str, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    """Hundreds of alerts at once: the screen gets them first, the log right after, and the log
    holds every one by the time the poll is over."""
    count = 600  # above the engine's bulk threshold
    am_yaml = alertmanager_config_yaml(webhook_url=None)
    async with running_alertmanager(am_binary, tmp_path / "am", am_yaml) as am:
        client = AlertmanagerClient("am-0", am.url, http, clock=SystemClock())
        await client.post_alerts(
            [PostableAlert(labels={"alertname": "Bulk", "n": str(i)}) for i in range(count)]
        )
        config = engine_config(tmp_path, [("am-0", am.url)], listen="127.0.0.1:0", poll="5m")
        engine = Engine(config, clock=SystemClock(), listen_webhooks=False)
        all_shown = asyncio.Event()

        def on_event(event: object) -> None:
            if isinstance(event, SnapshotChanged) and len(event.snapshot.alerts) == count:
                all_shown.set()

        engine.subscribe(on_event)
        await engine.start()
        try:
            await asyncio.wait_for(all_shown.wait(), 30)
            logged_when_shown = await engine.store.entries(kinds=["alert.firing"], limit=0)

            async def all_logged() -> bool:
                return len(await engine.store.entries(kinds=["alert.firing"], limit=0)) == count

            await wait_for(all_logged, what="every alert in the log")
        finally:
            await engine.stop()
    assert logged_when_shown == [], "the screen had the alerts before the log"
