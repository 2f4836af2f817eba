"""Shared pieces of the benchmarks: a real Alertmanager, synthetic alerts, timers and figures.

Not part of the package and not run by pytest: `benchmarks/run.py` runs each benchmark in its
own process (so that peak RSS belongs to one scenario) and collects what they print as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from oncall_tui.sandbox.alertmanager_process import (
    AlertmanagerProcess,
    alertmanager_config_yaml,
    find_alertmanager_binary,
)

SEVERITIES = ("critical", "warning", "warning", "info")
RESULT_PREFIX = "BENCH-RESULT "


def am_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_json(index: int, ends_at: datetime, generation: int = 0) -> dict[str, Any]:
    """One synthetic alert: 50 alert names x 20 services, so 100 groups of alerts."""
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
        "endsAt": am_time(ends_at),
    }


async def post_all(http: httpx.AsyncClient, url: str, alerts: list[dict[str, Any]]) -> None:
    for start in range(0, len(alerts), 1000):
        response = await http.post(f"{url}/api/v2/alerts", json=alerts[start : start + 1000])
        response.raise_for_status()


@contextlib.asynccontextmanager
async def alertmanager(workdir: Path, webhook_url: str | None = None) -> AsyncIterator[str]:
    """A real Alertmanager on loopback for the duration; yields its URL."""
    binary = find_alertmanager_binary()
    if binary is None:
        sys.exit("needs the Alertmanager binary (Debian: prometheus-alertmanager)")
    process = AlertmanagerProcess(
        binary,
        workdir / "am",
        alertmanager_config_yaml(webhook_url=webhook_url, group_wait="0s", group_interval="1s"),
        # One of the two cores: in use Alertmanager runs on a host of its own, and here its
        # bursts of work on both cores would be measured as the dashboard's slowness.
        extra_env={"GOMAXPROCS": "1"},
    )
    await process.start()
    try:
        yield process.url
    finally:
        await process.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackPoster:
    """A minimal HTTP/1.1 keep-alive client for POSTing JSON to our listener over loopback.

    The intake benchmark measures the listener; httpx costs about a millisecond of CPU per
    request, which on a two-core machine would make the load generator, not the listener, the
    limit. This one does no more than write a request and read the status line, headers and body.
    """

    def __init__(self, url: str) -> None:
        parsed = httpx.URL(url)
        self.host = parsed.host
        self.port = parsed.port or 80
        self.path = parsed.raw_path.decode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        # One request at a time on the connection: a later one waits its turn, as with a
        # one-connection pool.
        self._turn = asyncio.Lock()

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, body: bytes) -> int:
        """Send one request and read the whole answer; returns the status code."""
        async with self._turn:
            return await self._exchange(body)

    async def _exchange(self, body: bytes) -> int:
        if self._writer is None:
            await self.connect()
        assert self._reader is not None
        assert self._writer is not None
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        status_line = await self._reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self._reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None


class StallMeter:
    """A 5 ms ticker on the event loop; the longest gap beyond 5 ms is the longest stall."""

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


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


def emit(result: dict[str, Any]) -> None:
    """Hand a result to run.py (one line of JSON on stdout, after a marker)."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def now() -> float:
    return time.perf_counter()
