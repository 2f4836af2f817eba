"""Crash safety: a webhook answered 2xx is in the log, whenever the process is killed.

A real Alertmanager notifies `oncall-tui serve` (a subprocess) through a recording proxy while
the test adds a new alert group every few tens of milliseconds, and four senders post their own
notifications straight to the listener. Meanwhile the process is killed with SIGKILL and
restarted several times. Every delivery that was answered 2xx, by the proxy's record and the
senders' own, must then be in the log file: zero lost. (Entries committed whose answer was
lost to the kill are allowed: the sender retries, delivery is at least once.)
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from am_harness import am_binary, running_alertmanager
from faults_harness import FaultProxy, ServeProcess, serving, wait_until

from oncall_tui.clock import SystemClock
from oncall_tui.sandbox.alertmanager_process import alertmanager_config_yaml, free_port
from oncall_tui.store import Store

__all__ = ["am_binary"]  # a fixture, imported to be visible here

TOKEN = "storm-webhook-token-0001"
AM_PATH = "/webhooks/alertmanager"
KILLS = 3
SENDERS = 4

Delivery = tuple[str, str, tuple[tuple[str, str], ...]]  # group key, status, (fingerprint, status)


def _delivery(payload: dict[str, Any]) -> Delivery:
    alerts = tuple(sorted((a["fingerprint"], a["status"]) for a in payload["alerts"]))
    return str(payload["groupKey"]), str(payload["status"]), alerts


def _notification(sender: int, number: int) -> dict[str, Any]:
    fingerprint = f"{sender:04x}{number:012x}"
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="Direct{sender}-{number}"}}',
        "status": "firing",
        "receiver": "hook",
        "groupLabels": {"alertname": f"Direct{sender}-{number}"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://sender.test",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": f"Direct{sender}-{number}", "severity": "warning"},
                "annotations": {"summary": "storm"},
                "startsAt": "2026-11-23T17:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": fingerprint,
            }
        ],
    }


@pytest.mark.alertmanager
async def test_no_acknowledged_webhook_is_lost_across_kill_9(
    am_binary: str, tmp_path: Path
) -> None:
    rng = random.Random(7)
    port = free_port()
    listener = f"http://127.0.0.1:{port}"
    relay = FaultProxy(listener)
    acked: list[Delivery] = []
    attempted = 0
    async with serving(relay.app) as relay_url:
        am_config = alertmanager_config_yaml(
            webhook_url=relay_url + AM_PATH, webhook_token=TOKEN, group_interval="1s"
        )
        async with running_alertmanager(am_binary, tmp_path / "am", am_config) as am:
            log = tmp_path / "log.db"
            config_path = tmp_path / "config.yaml"
            config_path.write_text(
                f"""
alertmanagers: [{{name: am, url: "{am.url}"}}]
webhooks: {{listen: "127.0.0.1:{port}", alertmanager_token: "{TOKEN}"}}
poll: {{alerts: 2s}}
log: {{path: "{log}"}}
""",
                encoding="utf-8",
            )
            serve = ServeProcess(config_path, tmp_path)
            storming = True
            groups: list[str] = []

            async def feed_alertmanager(http: httpx.AsyncClient) -> None:
                number = 0
                while storming:
                    name = f"Storm{number}"
                    alert = {"labels": {"alertname": name, "severity": "critical"}}
                    (await http.post(f"{am.url}/api/v2/alerts", json=[alert])).raise_for_status()
                    groups.append(name)
                    number += 1
                    await asyncio.sleep(0.05)

            async def send_directly(sender: int, http: httpx.AsyncClient) -> None:
                nonlocal attempted
                number = 0
                while storming:
                    payload = _notification(sender, number)
                    number += 1
                    attempted += 1
                    try:
                        response = await http.post(
                            listener + AM_PATH,
                            content=json.dumps(payload).encode(),
                            headers={"Authorization": f"Bearer {TOKEN}"},
                        )
                    except httpx.HTTPError:
                        await asyncio.sleep(0.02)  # down: a real sender backs off and retries
                        continue
                    if 200 <= response.status_code < 300:
                        acked.append(_delivery(payload))

            async with httpx.AsyncClient(trust_env=False, timeout=3) as http:
                await serve.start()
                tasks = [asyncio.create_task(feed_alertmanager(http))] + [
                    asyncio.create_task(send_directly(i, http)) for i in range(SENDERS)
                ]
                try:
                    for _ in range(KILLS):
                        await asyncio.sleep(rng.uniform(0.6, 1.5))
                        await serve.kill9()
                        await asyncio.sleep(rng.uniform(0.1, 0.4))
                        await serve.start()
                    await asyncio.sleep(0.5)
                finally:
                    storming = False
                    for task in tasks:
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(task, 10)

                def relayed_ok() -> list[Delivery]:
                    return [
                        _delivery(json.loads(call.body))
                        for call in relay.calls
                        if call.outcome == "forwarded" and call.status == 200
                    ]

                # Alertmanager retries what failed while we were down: wait for every group.
                await wait_until(
                    lambda: (
                        {f'{{}}/{{severity="critical"}}:{{alertname="{g}"}}' for g in groups}
                        <= {d[0] for d in relayed_ok()}
                    ),
                    within=30,
                    what="Alertmanager to deliver every group",
                )
            code = await serve.stop()
            assert code == 0, serve.output()
    await relay.aclose()
    from_alertmanager = relayed_ok()
    acked.extend(from_alertmanager)

    store = await Store.open(log, clock=SystemClock())
    try:
        entries = await store.entries(sources=["alertmanager"], kinds=["webhook"], limit=0)
    finally:
        await store.close()
    stored = Counter(
        _delivery(
            {
                "groupKey": e.data["group_key"],
                "status": e.data["status"],
                "alerts": copy.deepcopy(e.data["alerts"]),
            }
        )
        for e in entries
    )
    lost = Counter(acked) - stored
    assert not lost, f"{sum(lost.values())} acknowledged deliveries missing from the log"
    assert len(from_alertmanager) >= len(groups) > 10
    assert len(acked) > 100
    print(  # noqa: T201
        f"\nstorm: {KILLS} kill -9, {attempted} direct posts, {len(groups)} Alertmanager groups, "
        f"{len(acked)} acknowledged ({len(from_alertmanager)} by Alertmanager), "
        f"{sum(stored.values())} stored, 0 lost"
    )
