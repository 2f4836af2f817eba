"""Benchmark: `oncall-tui` process start to the first frame showing the last known snapshot.

Run alone: .venv/bin/python benchmarks/bench_startup.py --alerts 1000. Saves a snapshot of N
alerts in a fresh log, then starts the real dashboard (`python -m oncall_tui --config ...`) in a
pseudo-terminal of 160x48 and times, from just before the process is spawned, until the terminal
receives a frame with the snapshot's alert rows (their summaries). The configured Alertmanager
is a closed loopback port, so every row on that frame came from the saved snapshot. Median of 3.

The package is byte-compiled first, as `scripts/bootstrap` and a regular pip install leave it:
compiling its modules from source adds about 0.1 s to a start on this machine, once after each
change where Python may write its cache, at every start where PYTHONDONTWRITEBYTECODE is set.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import emit, free_port, load_average, median, ms, now

from oncall_tui.clock import SystemClock
from oncall_tui.models import Alert, AlertState, Snapshot, SourceHealth
from oncall_tui.store import Store

MARKER = b"synthetic alert"
RUNS = 3


def snapshot_of(count: int) -> Snapshot:
    moment = datetime.now(UTC)
    alerts = tuple(
        Alert(
            fingerprint=f"{i:016x}",
            labels={
                "alertname": f"Alert{i % 50:02d}",
                "service": f"service-{i % 20:02d}",
                "instance": f"host-{i:05d}:9100",
                "severity": ("critical", "warning", "warning", "info")[i % 4],
            },
            annotations={"summary": f"synthetic alert {i} for the benchmark"},
            starts_at=moment - timedelta(minutes=i % 90),
            updated_at=moment,
            ends_at=None,
            state=AlertState.ACTIVE,
            cluster="bench",
            seen_by=("bench",),
        )
        for i in range(count)
    )
    health = (SourceHealth(name="bench", kind="alertmanager", last_success=moment),)
    return Snapshot(taken_at=moment, alerts=alerts, health=health)


def time_to_frame(config: Path) -> float:
    """Seconds from spawning the dashboard to a frame with the snapshot's rows."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "48"}
    started = now()
    process = subprocess.Popen(
        [sys.executable, "-m", "oncall_tui", "--config", str(config)],
        stdin=follower,
        stdout=follower,
        stderr=follower,  # Textual draws on stderr
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    seen = b""
    try:
        while now() - started < 30:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 1 << 16)
            except OSError:
                break
            seen = seen[-64:] + chunk
            if MARKER in seen:
                return now() - started
        raise RuntimeError("no frame with the snapshot within 30 s")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            # Keep reading so that the dashboard's last writes cannot block its exit.
            deadline = now() + 15
            while process.poll() is None and now() < deadline:
                if select.select([leader], [], [], 0.1)[0]:
                    with contextlib.suppress(OSError):
                        os.read(leader, 1 << 16)
            if process.poll() is None:
                process.kill()
            process.wait(5)
        finally:
            os.close(leader)


async def save_snapshot(path: Path, count: int) -> None:
    store = await Store.open(path, clock=SystemClock())
    try:
        await store.save_snapshot(snapshot_of(count))
    finally:
        await store.close()


def main(count: int) -> dict[str, Any]:
    result: dict[str, Any] = {"snapshot_alerts": count, "load_before": load_average()}
    package = Path(__file__).resolve().parent.parent / "oncall_tui"
    if not compileall.compile_dir(package, quiet=1):
        raise RuntimeError("byte-compiling the package failed")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "config.yaml"
        config.write_text(
            f"alertmanagers: [{{name: bench, url: 'http://127.0.0.1:{free_port()}'}}]\n"
            "webhooks: {enabled: false}\n"
            f"log: {{path: '{workdir / 'log.db'}'}}\n"
            "notify: {bell: false, desktop: false}\n"
        )
        times = []
        for _ in range(RUNS):
            # Each run saves again: the dashboard saves its own snapshot when it stops.
            asyncio.run(save_snapshot(workdir / "log.db", count))
            times.append(time_to_frame(config))
    result["startup_ms"] = ms(median(times))
    result["startup_max_ms"] = ms(max(times))
    result["load_after"] = load_average()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    args = parser.parse_args()
    emit({"bench": "startup", **main(args.alerts)})
