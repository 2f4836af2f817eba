"""Benchmark: a test alert accepted by Alertmanager to its row on the dashboard, via the webhook.

Run alone: .venv/bin/python benchmarks/bench_e2e.py. A real Alertmanager (group_wait 0s) holding
1,000 background alerts sends its notifications to the engine's webhook listener; the engine
polls Alertmanager only when woken (the poll interval is an hour), so the row can only arrive
through the webhook path: Alertmanager -> webhook -> log commit -> poll -> snapshot -> screen.
Timed from Alertmanager's 200 to the POST of the alert until the first painted frame with the
alert's row. Five alerts, one at a time: median and max.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import (
    alert_json,
    alertmanager,
    am_time,
    emit,
    free_port,
    load_average,
    median,
    ms,
    now,
    post_all,
)
from textual.screen import Screen

from oncall_tui.clock import SystemClock
from oncall_tui.config import load_config_text
from oncall_tui.engine import Engine
from oncall_tui.ui.alerts import AlertsView
from oncall_tui.ui.app import make_app

BACKGROUND = 1000
ALERTS = 5


class RowWatch:
    """Stamps the end of the first screen paint after which the wanted alert is on screen."""

    def __init__(self) -> None:
        self.wanted: str | None = None
        self.shown_at: float | None = None
        self.view: AlertsView | None = None
        original = Screen._on_timer_update
        watch = self

        def painted(screen: Screen[Any]) -> None:
            original(screen)
            if watch.wanted is None or watch.shown_at is not None or watch.view is None:
                return
            model = watch.view.table.model
            if any(a.alertname == watch.wanted for a in model.shown_alerts()[:50]):
                watch.shown_at = now()

        Screen._on_timer_update = painted  # type: ignore[method-assign]


async def main() -> dict[str, Any]:
    result: dict[str, Any] = {"background_alerts": BACKGROUND, "load_before": load_average()}
    watch = RowWatch()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        hook = f"http://127.0.0.1:{port}/webhooks/alertmanager"
        async with alertmanager(workdir, webhook_url=hook) as url:
            ends = datetime.now(UTC) + timedelta(hours=1)
            async with httpx.AsyncClient(timeout=60) as http:
                await post_all(http, url, [alert_json(i, ends) for i in range(BACKGROUND)])
                config = load_config_text(
                    f"""
alertmanagers: [{{name: bench, url: "{url}"}}]
webhooks: {{listen: "127.0.0.1:{port}"}}
poll: {{alerts: 1h}}
log: {{path: "{workdir / "log.db"}"}}
notify: {{bell: false, desktop: false}}
""",
                    "bench.yaml",
                    {},
                )
                engine = Engine(config, clock=SystemClock())
                app = make_app(config, engine, SystemClock(), tune_runtime=True)
                times: list[float] = []
                async with app.run_test(size=(160, 48)) as pilot:
                    await engine.start()
                    watch.view = app.query_one(AlertsView)
                    for _ in range(600):  # the first poll and its frame
                        if watch.view.table.model.total >= BACKGROUND:
                            break
                        await asyncio.sleep(0.05)
                    await pilot.pause()
                    for n in range(ALERTS):
                        # Newest and most severe: the first row of the list once it arrives.
                        name = f"AAATestAlert{n}"
                        body = [
                            {
                                "labels": {
                                    "alertname": name,
                                    "severity": "critical",
                                    "service": "payment-service",
                                },
                                "annotations": {"summary": "test alert through the pipeline"},
                                "startsAt": am_time(datetime.now(UTC)),
                            }
                        ]
                        watch.wanted, watch.shown_at = name, None
                        response = await http.post(f"{url}/api/v2/alerts", json=body)
                        response.raise_for_status()
                        accepted = now()
                        for _ in range(1000):  # at most 10 s
                            if watch.shown_at is not None:
                                break
                            await asyncio.sleep(0.01)
                        if watch.shown_at is None:
                            raise RuntimeError(f"{name} did not reach the screen within 10 s")
                        times.append(watch.shown_at - accepted)
                        await asyncio.sleep(0.5)
                    await engine.stop()
    result["alert_to_screen_ms"] = ms(median(times))
    result["alert_to_screen_max_ms"] = ms(max(times))
    result["load_after"] = load_average()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.parse_args()
    emit({"bench": "e2e", **asyncio.run(main())})
