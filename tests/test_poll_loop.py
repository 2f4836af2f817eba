"""PollLoop: woken polls come at once after a quiet spell, but a storm of wakes is merged."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

from oncall_tui.clock import SystemClock
from oncall_tui.engine.loop import PollLoop, cancel_all


async def test_a_storm_of_wakes_costs_a_few_polls_and_a_lone_wake_one_at_once() -> None:
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    polled = asyncio.Event()

    async def poll() -> None:
        starts.append(loop.time())
        polled.set()

    poller = PollLoop("test", poll, interval=3600, clock=SystemClock(), min_gap=0.2)
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.wait_for(polled.wait(), 5)
        # 100 wakes over half a second (a webhook storm): polls at most every 0.2 s.
        for _ in range(100):
            poller.wake()
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.25)
        storm = len(starts) - 1
        assert 2 <= storm <= 4, starts
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert min(gaps) >= 0.19, gaps

        # After a quiet spell a wake polls at once: a lone webhook is not delayed.
        await asyncio.sleep(0.3)
        polled.clear()
        woken = loop.time()
        poller.wake()
        await asyncio.wait_for(polled.wait(), 5)
        assert starts[-1] - woken < 0.05
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_cancel_all_waits_for_every_task_to_end_and_drops_what_they_raise() -> None:
    ended: list[str] = []

    async def quiet() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("quiet")

    async def noisy() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # some cleanup that takes a turn of the loop
            ended.append("noisy")
            raise RuntimeError("cleanup failed") from None

    tasks = [asyncio.create_task(quiet()), asyncio.create_task(noisy())]
    await asyncio.sleep(0)
    await cancel_all(tasks)
    assert sorted(ended) == ["noisy", "quiet"]
    assert all(task.done() for task in tasks)
