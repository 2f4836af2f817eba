"""Helpers for tests that need the real Alertmanager binary, and a clock that does not wait.

Import what you use: `from am_harness import am_binary, running_alertmanager, ...` (fixtures must
be imported into the test module to be visible). Without the binary, tests skip locally but
fail under CI (env `CI` set), because CI installs Debian's `prometheus-alertmanager` and a
silently skipped suite would prove nothing there.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from oncall_tui.sandbox.alertmanager_process import (
    AlertmanagerProcess,
    alertmanager_config_yaml,
    find_alertmanager_binary,
)

T = TypeVar("T")

WAIT_TIMEOUT = 10.0


def alertmanager_binary() -> str:
    """The binary's path; skips the test (fails it under CI) when there is none."""
    binary = find_alertmanager_binary()
    if binary is None:
        reason = "no Alertmanager binary on PATH (install Debian's prometheus-alertmanager)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must provide it", pytrace=False)
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def am_binary() -> str:
    return alertmanager_binary()


def am_config_yaml(*, inhibit: bool = True) -> str:
    """The sandbox config without notification targets, plus an inhibition rule for tests.

    An alert labelled `inhibit="source"` with severity critical inhibits the warnings that share
    its `run` label, so that each test inhibits only its own alerts.
    """
    config = yaml.safe_load(alertmanager_config_yaml(webhook_url=None))
    if inhibit:
        config["inhibit_rules"] = [
            {
                "source_matchers": ['severity="critical"', 'inhibit="source"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["run"],
            }
        ]
    return str(yaml.safe_dump(config, sort_keys=False))


@asynccontextmanager
async def running_alertmanager(
    binary: str, workdir: Path, config_yaml: str | None = None, **kwargs: Any
) -> AsyncIterator[AlertmanagerProcess]:
    process = AlertmanagerProcess(binary, workdir, config_yaml or am_config_yaml(), **kwargs)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


@asynccontextmanager
async def running_cluster(
    binary: str, workdir: Path, size: int = 2, config_yaml: str | None = None
) -> AsyncIterator[list[AlertmanagerProcess]]:
    """`size` Alertmanagers gossiping on loopback; returns once each sees all the others."""
    config = config_yaml or am_config_yaml()
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(
            running_alertmanager(binary, workdir / "peer-0", config, cluster_listen=True)
        )
        assert first.cluster_address is not None
        peers = [first]
        for index in range(1, size):
            peers.append(
                await stack.enter_async_context(
                    running_alertmanager(
                        binary, workdir / f"peer-{index}", config, peers=[first.cluster_address]
                    )
                )
            )
        async with httpx.AsyncClient(timeout=2.0) as http:

            async def joined() -> bool:
                for peer in peers:
                    status = (await http.get(f"{peer.url}/api/v2/status")).json()
                    if len(status["cluster"].get("peers") or ()) != size:
                        return False
                return True

            await wait_for(joined, what=f"{size} peers to see each other")
        yield peers


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    *,
    within: float = WAIT_TIMEOUT,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `probe` until it returns something truthy; fail the test after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await probe()
        if result:
            return result
        if loop.time() >= deadline:
            pytest.fail(f"timed out after {within:g}s waiting for {what}", pytrace=False)
        await asyncio.sleep(interval)


class FastClock:
    """Real wall time, but retry back-off sleeps return at once and are recorded.

    For tests where a client retries against a server that is down: the back-off is asserted
    on, not waited for.
    """

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self._offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time() + self._offset

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


def soon(minutes: float = 0.0) -> datetime:
    """Wall time (what the real binary uses) `minutes` from now, aware UTC."""
    return datetime.now(UTC) + timedelta(minutes=minutes)


def labels_of(items: Sequence[Any]) -> list[dict[str, str]]:
    return [dict(item.labels) for item in items]
