"""Benchmark: Alertmanager webhooks acknowledged after a durable commit, through `oncall-tui serve`.

Run alone: .venv/bin/python benchmarks/bench_intake.py. Starts a real Alertmanager (the source the
engine polls when a webhook wakes it) and `oncall-tui serve` in its own process, then, from this
process, over loopback:

- latency at a steady 200 notifications per second (open loop: each is sent on schedule,
  whether or not earlier ones were answered): p50, p99 and max;
- then throughput: as many Alertmanager notifications (10 alerts each) as the listener
  acknowledges, 64 in flight, for a fixed number of requests; every 2xx means the entry was
  committed (WAL, synchronous=FULL) before the answer; and the server's CPU per notification;
- and then counts the entries in the log file after `serve` stopped: acknowledged == stored.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from _common import (
    LoopbackPoster,
    alertmanager,
    am_time,
    emit,
    free_port,
    load_average,
    ms,
    now,
    percentile,
)

ALERTS_PER_NOTIFICATION = 10
IN_FLIGHT = 64
PACED_CONNECTIONS = 16


def notification(number: int) -> dict[str, Any]:
    started = am_time(datetime.now(UTC))
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": f"Storm{number % 7}",
                "service": f"service-{number % 20:02d}",
                "instance": f"host-{number:06d}-{i}:9100",
                "severity": "critical",
            },
            "annotations": {"summary": f"storm alert {number}/{i}"},
            "startsAt": started,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example/graph",
            "fingerprint": f"{number:010x}{i:06x}",
        }
        for i in range(ALERTS_PER_NOTIFICATION)
    ]
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="Storm{number % 7}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "oncall-tui",
        "groupLabels": {"alertname": f"Storm{number % 7}"},
        "commonLabels": {"severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": alerts,
    }


async def post(client: LoopbackPoster, body: bytes) -> float:
    started = now()
    status = await client.post(body)
    if status != 200:
        raise RuntimeError(f"listener answered {status}")
    return now() - started


def body_of(number: int) -> bytes:
    return json.dumps(notification(number)).encode()


async def throughput(url: str, total: int) -> dict[str, float]:
    bodies = [body_of(n) for n in range(total)]
    queue = list(reversed(bodies))

    async def worker() -> None:
        client = LoopbackPoster(url)  # one keep-alive connection per worker
        try:
            while queue:
                await post(client, queue.pop())
        finally:
            await client.close()

    started = now()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    elapsed = now() - started
    return {"intake_per_s": round(total / elapsed), "intake_sent": total}


async def paced(url: str, rate: float, seconds: float) -> dict[str, Any]:
    count = int(rate * seconds)
    bodies = [body_of(100_000 + n) for n in range(count)]
    latencies: list[float] = []
    late: list[float] = []
    # Connections taken in turn, each opened before the clock starts.
    clients = [LoopbackPoster(url) for _ in range(PACED_CONNECTIONS)]
    try:
        await asyncio.gather(*(client.connect() for client in clients))
        start = now() + 0.05

        async def one(n: int) -> None:
            await asyncio.sleep(max(0.0, start + n / rate - now()))
            late.append(now() - (start + n / rate))
            client = clients[n % len(clients)]
            latencies.append(await post(client, bodies[n]))

        await asyncio.gather(*(one(n) for n in range(count)))
    finally:
        for client in clients:
            await client.close()
    return {
        "paced_rate": rate,
        "paced_sent": count,
        "paced_p50_ms": ms(percentile(latencies, 0.50)),
        "paced_p99_ms": ms(percentile(latencies, 0.99)),
        "paced_max_ms": ms(max(latencies)),
        "paced_sender_late_p99_ms": ms(percentile(late, 0.99)),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_healthy(http: httpx.AsyncClient, base: str, process: Any) -> None:
    for _ in range(300):
        if process.returncode is not None:
            raise RuntimeError("oncall-tui serve exited early")
        with contextlib.suppress(httpx.TransportError):
            if (await http.get(f"{base}/healthz")).status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError("the listener did not come up within 15 s")


async def main(total: int, rate: float, seconds: float) -> dict[str, Any]:
    result: dict[str, Any] = {"load_before": load_average()}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        async with alertmanager(workdir) as am_url:
            log_path = workdir / "log.db"
            config = workdir / "config.yaml"
            config.write_text(
                f"alertmanagers: [{{name: bench, url: '{am_url}'}}]\n"
                f"webhooks: {{listen: '127.0.0.1:{port}'}}\n"
                f"log: {{path: '{log_path}'}}\n"
            )
            serve = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "oncall_tui",
                "serve",
                "--config",
                str(config),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                base = f"http://127.0.0.1:{port}"
                url = f"{base}/webhooks/alertmanager"
                limits = httpx.Limits(
                    max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT
                )
                async with httpx.AsyncClient(timeout=30, limits=limits) as http:
                    await wait_healthy(http, base, serve)
                    first = LoopbackPoster(url)
                    await post(first, body_of(0))
                    await first.close()
                    # The steady rate first, on a fresh listener; then the storm.
                    result.update(await paced(url, rate, seconds))
                    cpu_before = cpu_seconds(serve.pid)
                    result.update(await throughput(url, total))
                    # What one notification costs the server: its capacity on a core of its own,
                    # whatever the load generator beside it takes.
                    spent = cpu_seconds(serve.pid) - cpu_before
                    result["serve_cpu_ms_per_notification"] = ms(spent / total)
            finally:
                serve.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(serve.wait(), 30)
                except TimeoutError:
                    serve.kill()
                    await serve.wait()
        with contextlib.closing(sqlite3.connect(log_path)) as db:
            (stored,) = db.execute(
                "SELECT count(*) FROM entries WHERE source = 'alertmanager' AND kind = 'webhook'"
            ).fetchone()
    result["acknowledged"] = 1 + result["intake_sent"] + result["paced_sent"]
    result["stored"] = stored
    result["load_after"] = load_average()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--total", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    emit({"bench": "intake", **asyncio.run(main(args.total, args.rate, args.seconds))})
