"""Benchmark: N active alerts in a real Alertmanager, fetched by us and by amtool, shown by the UI.

Run alone: .venv/bin/python benchmarks/bench_alerts.py --alerts 10000   (benchmarks/run.py runs
it for 1,000 / 10,000 / 50,000 and tabulates). Measures, in this one process:

- fetch: our client's GET /api/v2/alerts and decode into Alert objects, against
  `amtool alert query -o json` on the same Alertmanager (median of 3 each; ratio = ours / amtool);
- first display: from the engine's start (first poll) to the end of the first screen paint
  after the app applied the snapshot holding every alert;
- Alertmanager's own share: how long it takes to start answering GET /api/v2/alerts; and
  from data arrival (that answer fully received) to the same painted screen;
- steady refresh with 1% churn (1% new alerts, 1% resolved; the cursor's alert stays): UI work
  = the app's snapshot handler plus Textual's screen paints, median of 3 refreshes; and the main
  thread's CPU over the whole refresh (engine and UI share the event loop), for reference;
- longest stall: the longest the event loop missed a 5 ms ticker, during the steady refreshes
  alone, and during the refreshes and the key presses (and, apart, during the first load);
- key latency while refreshing: `down` and filter keystrokes (typing a filter and erasing it,
  three times) pressed while a churn-and-refresh loop runs, from the key press to the painted
  frame (p95);
- peak RSS of this process: engine and dashboard (Alertmanager, and the child processes that
  post the alerts, run the fetch comparison and post the churn, are not counted).

The churn is posted by a child process, as Prometheus would post it: its JSON encoding and HTTP
requests do not run on the event loop whose work and stalls are measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import (
    RESULT_PREFIX,
    StallMeter,
    alert_json,
    alertmanager,
    am_time,
    emit,
    load_average,
    median,
    ms,
    now,
    peak_rss_mb,
    percentile,
    post_all,
)
from textual import events
from textual.screen import Screen

from oncall_tui.clock import SystemClock
from oncall_tui.config import load_config_text
from oncall_tui.engine import Engine
from oncall_tui.events import EngineEvent, SnapshotChanged
from oncall_tui.providers.alertmanager import AlertmanagerClient
from oncall_tui.ui.alert_table import AlertTable
from oncall_tui.ui.alerts import AlertsView
from oncall_tui.ui.app import OncallApp, make_app

FETCH_RUNS = 3
STEADY_RUNS = 3
DOWN_PRESSES = 30
# Each half of the key phase stops early past this many seconds (50,000 alerts under load).
KEY_PHASE_LIMIT = 60.0
FILTER_TEXT = "host-0042"
# The filter is typed and erased this many times: one typing of 9 characters is 9 samples, whose
# "p95" would be their maximum; 3 rounds of 9 characters and 9 backspaces are 54.
FILTER_ROUNDS = 3


class UiWork:
    """Wall time spent in the app's snapshot handler and in screen paints."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, owner: type, name: str) -> None:
        original = getattr(owner, name)
        work = self

        def timed(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                work.seconds += time.perf_counter() - started

        setattr(owner, name, timed)


UI_WORK = UiWork()


class KeyProbe:
    """When a key's handler ran and when the next frame after it was painted."""

    def __init__(self) -> None:
        self.handled: float | None = None
        self.painted: float | None = None

    def after(self, owner: type, name: str, stamp: Callable[[], None]) -> None:
        original = getattr(owner, name)

        def wrapped(*args: object, **kwargs: object) -> object:
            try:
                return original(*args, **kwargs)
            finally:
                stamp()

        setattr(owner, name, wrapped)

    def on_handled(self) -> None:
        if self.handled is None:
            self.handled = now()

    def on_paint(self) -> None:
        if self.handled is not None and self.painted is None:
            self.painted = now()

    async def press(self, app: OncallApp, key: str, char: str | None) -> float:
        """Send one key as the terminal driver would; seconds until its frame was painted.

        Not Pilot.press: that waits for the whole process to go idle, which under a refresh
        storm measures the storm, not the key.
        """
        self.handled = self.painted = None
        started = now()
        send_key(app, key, char)
        deadline = started + 60
        while self.painted is None:
            if now() > deadline:
                raise RuntimeError(f"key {key!r} had no effect within 60 s")
            await asyncio.sleep(0.0005)
        return self.painted - started


PROBE = KeyProbe()


class PaintClock:
    """When screen paints ended, when the app last finished applying a snapshot, and when the
    first answer with every alert arrived from Alertmanager."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.applied = 0.0
        self.data_arrived: float | None = None

    def stamp(self) -> None:
        self.ends.append(now())

    def stamp_applied(self) -> None:
        self.applied = now()

    def first_after(self, moment: float) -> float | None:
        return next((end for end in self.ends if end > moment), None)


PAINTS = PaintClock()


def watch_data_arrival(count: int) -> None:
    """Stamp when the first GET /alerts answer is fully received (before it is decoded)."""
    original = AlertmanagerClient._request

    async def stamped(self: AlertmanagerClient, method: str, path: str, **kwargs: Any) -> Any:
        response = await original(self, method, path, **kwargs)
        if path == "/alerts" and method == "GET" and PAINTS.data_arrived is None:
            PAINTS.data_arrived = now()
        return response

    AlertmanagerClient._request = stamped  # type: ignore[method-assign]


def send_key(app: OncallApp, key: str, char: str | None) -> None:
    """A key as the terminal driver delivers it (Pilot.press would wait for an idle process)."""
    assert app._driver is not None
    app._driver.send_message(events.Key(key, char))


async def compare_fetch(url: str, count: int) -> dict[str, float]:
    ours: list[float] = []
    warm: list[float] = []
    answer: list[float] = []
    theirs: list[float] = []
    async with httpx.AsyncClient(timeout=120) as http:
        for _ in range(FETCH_RUNS):
            # A new client each time: everything decoded, as amtool does.
            client = AlertmanagerClient("bench", url, http, clock=SystemClock())
            started = now()
            alerts = await client.alerts()
            ours.append(now() - started)
            if len(alerts) != count:
                raise RuntimeError(f"fetched {len(alerts)} alerts, expected {count}")
            # The same client again, as every later poll: unchanged alerts are not decoded.
            started = now()
            await client.alerts()
            warm.append(now() - started)
            # Alertmanager's own share: until the answer starts (it sends it in one piece).
            started = now()
            async with http.stream("GET", f"{url}/api/v2/alerts") as response:
                answer.append(now() - started)
                await response.aread()
    for _ in range(FETCH_RUNS):
        started = now()
        process = await asyncio.create_subprocess_exec(
            "amtool",
            f"--alertmanager.url={url}",
            "alert",
            "query",
            "-o",
            "json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        theirs.append(now() - started)
        if process.returncode != 0:
            raise RuntimeError(f"amtool failed: {err.decode(errors='replace')[:200]}")
        if len(json.loads(out)) != count:
            raise RuntimeError("amtool did not return every alert")
    return {
        "am_answer_ms": ms(median(answer)),
        "fetch_ours_ms": ms(median(ours)),
        "fetch_ours_warm_ms": ms(median(warm)),
        "fetch_amtool_ms": ms(median(theirs)),
        "fetch_ratio": round(median(ours) / median(theirs), 2),
    }


class Churn:
    """Rounds of 1% new alerts and 1% resolved ones, taken from the middle of the range.

    Posted by a child process (`--churn`), so that encoding and sending them is not counted
    as the dashboard's work or stalls: in real use Prometheus posts them, not this process.
    """

    def __init__(self, url: str, count: int) -> None:
        self.url = url
        self.count = count
        self.round = 0
        self._child: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--churn",
            self.url,
            "--alerts",
            str(self.count),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )

    async def step(self) -> int:
        """Post one round (in the child); returns its generation number once posted."""
        child = self._child
        assert child is not None
        assert child.stdin is not None
        assert child.stdout is not None
        self.round += 1
        child.stdin.write(f"{self.round}\n".encode())
        await child.stdin.drain()
        line = await child.stdout.readline()
        if line.strip() != str(self.round).encode():
            raise RuntimeError(f"the churn process answered {line!r}")
        return self.round

    async def stop(self) -> None:
        child = self._child
        if child is None:
            return
        assert child.stdin is not None
        child.stdin.close()
        await asyncio.wait_for(child.wait(), 30)


async def post_churn(url: str, count: int) -> None:
    """The `--churn` child: reads round numbers on stdin, posts each round, echoes the number."""
    ends = datetime.now(UTC) + timedelta(hours=3)
    size = max(1, count // 100)
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=120) as http:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            generation = int(line)
            start = (count // 2 + generation * size) % count
            indices = [(start + i) % count for i in range(size)]
            fresh = [alert_json(i, ends, generation=generation) for i in indices]
            gone = [{**alert_json(i, ends), "endsAt": am_time(datetime.now(UTC))} for i in indices]
            await post_all(http, url, fresh + gone)
            sys.stdout.write(f"{generation}\n")
            sys.stdout.flush()


class Snapshots:
    """Waits for the engine's next snapshot that satisfies a condition."""

    def __init__(self, engine: Engine) -> None:
        self.latest: Any = None
        self.changed = asyncio.Event()
        engine.subscribe(self._on_event)

    def _on_event(self, event: EngineEvent) -> None:
        if isinstance(event, SnapshotChanged):
            self.latest = event.snapshot
            self.changed.set()

    async def wait_for(self, condition: Callable[[Any], bool], limit: float = 300) -> float:
        deadline = now() + limit
        while self.latest is None or not condition(self.latest):
            self.changed.clear()
            remaining = deadline - now()
            if remaining <= 0:
                raise RuntimeError("the expected snapshot did not arrive")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return now()


def has_generation(generation: int) -> Callable[[Any], bool]:
    wanted = str(generation)
    return lambda snapshot: any(a.labels.get("generation") == wanted for a in snapshot.alerts)


async def run(url: str, workdir: Path, count: int) -> dict[str, Any]:
    result: dict[str, Any] = {"alerts": count, "load_before": load_average()}
    # Posting the alerts and the fetch comparison run in a child process: their 50,000 JSON
    # objects and Alert copies would otherwise count in the dashboard's peak RSS.
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--prepare",
        url,
        "--alerts",
        str(count),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    prepared = [line for line in out.decode().splitlines() if line.startswith(RESULT_PREFIX)]
    if child.returncode != 0 or not prepared:
        raise RuntimeError("posting the alerts or the fetch comparison failed")
    result.update(json.loads(prepared[0][len(RESULT_PREFIX) :]))
    churn = Churn(url, count)
    await churn.start()
    try:
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
        app = make_app(config, engine, SystemClock(), tune_runtime=True)
        UI_WORK.wrap(OncallApp, "_apply_snapshot")
        UI_WORK.wrap(Screen, "_on_timer_update")
        PROBE.after(Screen, "_on_timer_update", PROBE.on_paint)
        PROBE.after(Screen, "_on_timer_update", PAINTS.stamp)
        PROBE.after(OncallApp, "_apply_snapshot", PAINTS.stamp_applied)
        watch_data_arrival(count)
        PROBE.after(AlertTable, "action_cursor_down", PROBE.on_handled)
        PROBE.after(AlertTable, "refilter", PROBE.on_handled)
        snapshots = Snapshots(engine)
        async with app.run_test(size=(160, 48)) as pilot:
            table = app.query_one(AlertsView).table
            meter = StallMeter()
            meter.start()
            started = now()
            await engine.start()
            polled = await snapshots.wait_for(lambda s: len(s.alerts) >= count)
            for _ in range(60_000):  # the app applies the snapshot it was just sent
                if table.model.total >= count:
                    break
                await asyncio.sleep(0.001)
            # Complete on screen: the first frame painted after the app applied that snapshot.
            applied = PAINTS.applied
            for _ in range(60_000):
                if PAINTS.first_after(applied) is not None:
                    break
                await asyncio.sleep(0.001)
            painted = PAINTS.first_after(applied)
            if painted is None:
                raise RuntimeError("no frame was painted after the first load")
            result["first_poll_ms"] = ms(polled - started)
            result["first_display_ms"] = ms(painted - started)
            if PAINTS.data_arrived is not None:
                result["data_to_screen_ms"] = ms(painted - PAINTS.data_arrived)
            await pilot.pause()
            result["first_load_stall_ms"] = ms(await meter.stop())

            meter.start()
            ui_work: list[float] = []
            cpu: list[float] = []
            for _ in range(STEADY_RUNS):
                generation = await churn.step()
                UI_WORK.seconds = 0.0
                cpu0 = time.thread_time()
                engine.refresh_now()
                await snapshots.wait_for(has_generation(generation))
                await pilot.pause()
                ui_work.append(UI_WORK.seconds)
                cpu.append(time.thread_time() - cpu0)
            result["refresh_ui_ms"] = ms(median(ui_work))
            result["refresh_main_cpu_ms"] = ms(median(cpu))
            result["refresh_stall_ms"] = ms(await meter.stop())
            meter.start()

            stop = asyncio.Event()

            async def keep_refreshing() -> None:
                while not stop.is_set():
                    generation = await churn.step()
                    engine.refresh_now()
                    await snapshots.wait_for(has_generation(generation))

            refresher = asyncio.create_task(keep_refreshing())
            down: list[float] = []
            typing: list[float] = []
            try:
                send_key(app, "home", None)
                phase = now()
                for _ in range(DOWN_PRESSES):
                    if now() - phase > KEY_PHASE_LIMIT:
                        break
                    down.append(await PROBE.press(app, "down", None))
                    await asyncio.sleep(0.03)  # an operator's pace, not key repeat
                send_key(app, "slash", "/")
                view = app.query_one(AlertsView)
                for _ in range(60_000):  # the filter box opens and takes the keys
                    if view.filter_input.has_focus:
                        break
                    await asyncio.sleep(0.001)
                await asyncio.sleep(0.03)  # the operator's pace before the first character too
                phase = now()
                strokes = [("minus" if c == "-" else c, c) for c in FILTER_TEXT]
                strokes += [("backspace", None)] * len(FILTER_TEXT)
                for key, char in strokes * FILTER_ROUNDS:
                    if now() - phase > KEY_PHASE_LIMIT:
                        break
                    typing.append(await PROBE.press(app, key, char))
                    await asyncio.sleep(0.03)
                send_key(app, "escape", None)
            finally:
                stop.set()
                await asyncio.wait_for(refresher, 600)
            result["refreshes_during_keys"] = churn.round - STEADY_RUNS
            result["key_presses"] = {"down": len(down), "filter": len(typing)}
            result["key_down_p95_ms"] = ms(percentile(down, 0.95))
            result["key_filter_p95_ms"] = ms(percentile(typing, 0.95))
            result["stall_ms"] = max(ms(await meter.stop()), result["refresh_stall_ms"])
            await engine.stop()
    finally:
        await churn.stop()
    result["peak_rss_mb"] = round(peak_rss_mb())
    result["load_after"] = load_average()
    return result


async def prepare(url: str, count: int) -> dict[str, Any]:
    """Post the alerts, then compare fetching them with amtool (in the child process)."""
    ends = datetime.now(UTC) + timedelta(hours=3)
    async with httpx.AsyncClient(timeout=120) as http:
        started = now()
        await post_all(http, url, [alert_json(i, ends) for i in range(count)])
        figures: dict[str, Any] = {"post_s": round(now() - started, 1)}
    figures.update(await compare_fetch(url, count))
    return figures


async def main(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with alertmanager(workdir) as url:
            return await run(url, workdir, count)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--prepare", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--churn", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.churn:
        asyncio.run(post_churn(args.churn, args.alerts))
        sys.exit(0)
    if args.prepare:
        emit(asyncio.run(prepare(args.prepare, args.alerts)))
        sys.exit(0)
    figures = asyncio.run(main(args.alerts))
    emit({"bench": "alerts", **figures})
    sys.exit(0)
