"""Shared rig for the UI tests: a real Engine over the Alertmanager stand-in, on a frozen clock.

The stand-in is served in-process through httpx.ASGITransport; the engine polls it, logs to a
Store in tmp_path, and never listens for webhooks. Alerts are deterministic so that snapshots
never depend on when the test ran.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from oncall_tui.clock import FrozenClock
from oncall_tui.config import Config, validate_config
from oncall_tui.engine import Engine
from oncall_tui.sandbox.standin import StandinAlertmanager, format_time
from oncall_tui.store import Store

START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    data: dict[str, Any] = {
        "operator": {"name": "Nina Patel", "email": "nina@example.com"},
        "alertmanagers": [{"name": "prod-a", "url": "http://prod-a.invalid:9093"}],
        "webhooks": {"enabled": False},
        "poll": {"alerts": "60s"},
        "log": {"path": str(tmp_path / "log.db")},
        "notify": {"min_severity": "critical", "bell": True, "desktop": True},
        "test_alerts": [
            {
                "name": "payment-service down",
                "labels": {"alertname": "ServiceDown", "severity": "critical"},
            }
        ],
    }
    data.update(overrides)
    return validate_config(yaml.safe_load(yaml.safe_dump(data)), "test.yaml")


def raw_alert(
    name: str,
    severity: str,
    *,
    minutes_ago: float,
    summary: str = "",
    **labels: str,
) -> dict[str, Any]:
    starts = START - timedelta(minutes=minutes_ago)
    annotations = {"summary": summary or f"{name} is firing"}
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": annotations,
        "startsAt": format_time(starts),
    }


def demo_alerts() -> list[dict[str, Any]]:
    """A small night: two services down, a warning, a noisy info, one markup-looking summary."""
    return [
        raw_alert(
            "ServiceDown",
            "critical",
            minutes_ago=7,
            service="payment-service",
            instance="pay-1:8080",
            summary="payment-service is down",
        ),
        raw_alert(
            "ServiceDown",
            "critical",
            minutes_ago=3,
            service="payment-service",
            instance="pay-2:8080",
            summary="payment-service is down",
        ),
        raw_alert(
            "HighLatency",
            "warning",
            minutes_ago=42,
            service="checkout",
            instance="checkout-1:8080",
            summary="p99 latency above 2s for 10 minutes [bold]not markup[/bold]",
        ),
        raw_alert(
            "DiskFilling",
            "warning",
            minutes_ago=185,
            service="db",
            instance="db-1:9100",
            summary="/var/lib/postgres will be full in 6 hours",
        ),
        raw_alert(
            "Watchdog",
            "none",
            minutes_ago=60 * 24 * 3,
            summary="Always firing: the alerting pipeline works",
        ),
    ]


async def eventually(check: Callable[[], bool | Awaitable[bool]], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class SwitchableTransport(httpx.AsyncBaseTransport):
    """The stand-in in-process, or a refused connection while `down` is set."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self._inner.handle_async_request(request)


@dataclass
class Rig:
    config: Config
    clock: FrozenClock
    standin: StandinAlertmanager
    engine: Engine
    transport: SwitchableTransport


@contextlib.asynccontextmanager
async def running_engine(
    tmp_path: Path,
    *,
    alerts: Sequence[Mapping[str, Any]] | None = None,
    silences: Sequence[Mapping[str, Any]] = (),
    **config: Any,
) -> AsyncIterator[Rig]:
    """An engine that has polled the stand-in once (so the first screen is complete)."""
    clock = FrozenClock(START)
    standin = StandinAlertmanager(clock=clock, new_id=_ids())
    standin.put_alerts(demo_alerts() if alerts is None else alerts)
    for body in silences:
        standin.set_silence(body)
    cfg = make_config(tmp_path, **config)
    transport = SwitchableTransport(standin.app)
    http = httpx.AsyncClient(transport=transport, timeout=5.0)
    store = await Store.open(tmp_path / "log.db", clock=clock)
    engine = Engine(cfg, clock=clock, store=store, http=http, listen_webhooks=False)
    try:
        await engine.start()
        await eventually(lambda: _polled(engine))
        yield Rig(cfg, clock, standin, engine, transport)
    finally:
        await engine.stop()
        await store.close()
        await http.aclose()


def _polled(engine: Engine) -> bool:
    return any(h.last_success is not None for h in engine.snapshot.health if h.kind != "webhooks")


def _ids() -> Callable[[], str]:
    counter = iter(range(1, 1_000_000))
    return lambda: f"00000000-0000-4000-8000-{next(counter):012d}"
