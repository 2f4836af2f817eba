"""Benchmark: 10,000 active alerts in a real Alertmanager, shown by the dashboard.

Run: .venv/bin/python benchmarks/bench_alerts.py [--alerts 10000] [--changed 0.01]

Prints, for the first load and for a refresh with a share of alerts changed:
- poll: fetching and decoding every alert and silence from Alertmanager (event loop, off the UI);
- first display: from the snapshot leaving the engine to a complete screen (rendered, idle);
- UI work: time spent applying the snapshot to the widgets and painting the screen after it
  (the app's snapshot handler plus Textual's screen updates), i.e. the UI thread's share;
- longest stall: the longest the event loop did not answer a 5 ms ticker during the refresh;
- peak RSS of this process (Alertmanager is a separate process and not counted).
Also, for reference, what a naive rebuild of a Textual DataTable with the same rows costs.
Budgets (issue 2): first display <= 300 ms, refresh UI time <= 30 ms, no stall > 50 ms,
RSS <= 250 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable

from oncall_tui.clock import SystemClock
from oncall_tui.config import load_config_text
from oncall_tui.engine import Engine
from oncall_tui.events import EngineEvent, SnapshotChanged
from oncall_tui.sandbox.alertmanager_process import (
    AlertmanagerProcess,
    alertmanager_config_yaml,
    find_alertmanager_binary,
)
from oncall_tui.ui.app import make_app

SEVERITIES = ("critical", "warning", "warning", "info")


def alert_json(index: int, ends_at: datetime, generation: int = 0) -> dict[str, object]:
    return {
        "labels": {
            "alertname": f"Alert{index % 50:02d}",
            "service": f"service-{index % 20:02d}",
            "instance": f"host-{index:05d}:9100",
            "severity": SEVERITIES[index % len(SEVERITIES)],
            "generation": str(generation),
        },
        "annotations": {
            "summary": f"synthetic alert {index} for the benchmark",
            "runbook_url": f"https://runbooks.example.com/{index % 50}",
        },
        "endsAt": ends_at.isoformat().replace("+00:00", "Z"),
    }


async def post_all(http: httpx.AsyncClient, url: str, alerts: list[dict[str, object]]) -> None:
    for start in range(0, len(alerts), 1000):
        response = await http.post(f"{url}/api/v2/alerts", json=alerts[start : start + 1000])
        response.raise_for_status()


class StallMeter:
    """A 5 ms ticker; the longest gap between ticks beyond 5 ms is the longest stall."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.longest = 0.0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            self.longest = max(self.longest, loop.time() - before - 0.005)

    async def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.longest


async def measure_refresh(
    engine: Engine, pilot_pause: Callable[[], Awaitable[None]], expect: Callable[[], bool]
) -> dict[str, float]:
    """Trigger a refresh and time it from the snapshot's arrival to an idle, complete screen."""
    arrived: list[tuple[float, float]] = []

    def on_event(event: EngineEvent) -> None:
        if isinstance(event, SnapshotChanged) and not arrived:
            arrived.append((time.perf_counter(), time.thread_time()))

    unsubscribe = engine.subscribe(on_event)
    UI_WORK.reset()
    meter = StallMeter()
    meter.start()
    started = time.perf_counter()
    engine.refresh_now()
    while not (arrived and expect()):
        await asyncio.sleep(0.001)
        if time.perf_counter() - started > 60:
            raise RuntimeError("refresh did not arrive")
    await pilot_pause()
    done_wall, done_cpu = time.perf_counter(), time.thread_time()
    stall = await meter.stop()
    unsubscribe()
    wall0, cpu0 = arrived[0]
    return {
        "poll_ms": (wall0 - started) * 1000,
        "display_ms": (done_wall - wall0) * 1000,
        "ui_cpu_ms": (done_cpu - cpu0) * 1000,
        "ui_work_ms": UI_WORK.seconds * 1000,
        "stall_ms": stall * 1000,
    }


class UiWork:
    """Accumulates wall time spent in the app's snapshot handler and in screen updates."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.longest = 0.0

    def wrap(self, owner: type, name: str) -> None:
        original = getattr(owner, name)
        work = self

        def timed(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                work.seconds += spent
                work.longest = max(work.longest, spent)

        setattr(owner, name, timed)

    def reset(self) -> None:
        self.seconds = 0.0
        self.longest = 0.0


UI_WORK = UiWork()


class NaiveTable(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable()


async def naive_rebuild_ms(rows: list[tuple[str, ...]]) -> float:
    app = NaiveTable()
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(DataTable)
        table.add_columns("severity", "alertname", "service", "instance", "summary")
        await pilot.pause()
        started = time.perf_counter()
        table.clear()
        table.add_rows(rows)
        await pilot.pause()
        return (time.perf_counter() - started) * 1000


async def main(count: int, changed_share: float) -> None:
    binary = find_alertmanager_binary()
    if binary is None:
        sys.exit("needs the Alertmanager binary (Debian: prometheus-alertmanager)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        am = AlertmanagerProcess(binary, workdir / "am", alertmanager_config_yaml(webhook_url=None))
        await am.start()
        try:
            await run(am.url, workdir, count, changed_share)
        finally:
            await am.stop()


async def run(url: str, workdir: Path, count: int, changed_share: float) -> None:
    ends = datetime.now(UTC) + timedelta(hours=2)
    alerts = [alert_json(i, ends) for i in range(count)]
    async with httpx.AsyncClient(timeout=60) as http:
        began = time.perf_counter()
        await post_all(http, url, alerts)
        print(f"posted {count} alerts in {time.perf_counter() - began:.1f} s")
        config = load_config_text(
            f"""
alertmanagers: [{{name: bench, url: "{url}"}}]
webhooks: {{enabled: false}}
poll: {{alerts: 1h}}
log: {{path: "{workdir / "log.db"}"}}
""",
            "bench.yaml",
            {},
        )
        engine = Engine(config, clock=SystemClock(), listen_webhooks=False)
        app = make_app(config, engine, SystemClock())
        UI_WORK.wrap(type(app), "_apply_snapshot")
        UI_WORK.wrap(Screen, "_on_timer_update")
        async with app.run_test(size=(160, 48)) as pilot:
            await engine.start()
            first = await measure_refresh(
                engine, pilot.pause, lambda: len(engine.snapshot.alerts) >= count
            )
            changed = max(1, int(count * changed_share))
            updated = [alert_json(i, ends, generation=1) for i in range(changed)]
            await post_all(http, url, updated)
            # The old generation of those alerts resolves: 1% new, 1% gone, the rest unchanged.
            gone = [
                {**alert_json(i, ends), "endsAt": datetime.now(UTC).isoformat()}
                for i in range(changed)
            ]
            await post_all(http, url, gone)
            steady = await measure_refresh(
                engine,
                pilot.pause,
                lambda: any(a.labels.get("generation") == "1" for a in engine.snapshot.alerts),
            )
            await engine.stop()
    rows = [
        (
            a["labels"]["severity"],
            a["labels"]["alertname"],
            a["labels"]["service"],  # type: ignore[index]
            a["labels"]["instance"],
            a["annotations"]["summary"],
        )  # type: ignore[index]
        for a in alerts
    ]
    naive = await naive_rebuild_ms(rows)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"alerts: {count}, changed in refresh: {changed} new + {changed} resolved")
    print(f"{'':22}{'poll':>8}{'to screen':>11}{'UI work':>9}{'UI CPU':>8}{'longest stall':>15}")
    for name, figures in (("first load", first), ("refresh (1% changed)", steady)):
        print(
            f"{name:22}{figures['poll_ms']:>6.0f}ms{figures['display_ms']:>9.0f}ms"
            f"{figures['ui_work_ms']:>7.0f}ms{figures['ui_cpu_ms']:>6.0f}ms"
            f"{figures['stall_ms']:>13.0f}ms"
        )
    print(f"peak RSS: {rss_mb:.0f} MB")
    print(f"reference, naive DataTable rebuild of {count} rows: {naive:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()
    asyncio.run(main(args.alerts, args.changed))
