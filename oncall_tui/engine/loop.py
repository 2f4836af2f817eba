"""A polling loop that never overlaps itself and can be woken early (ctrl+r, a webhook)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from oncall_tui.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")


async def to_the_end(work: Awaitable[T]) -> T:
    """Await `work` to its end even if the caller is cancelled meanwhile, then pass that on.

    For the step that records what a poll has already taken in: stopping in the middle of it
    would keep alerts in the state (and in the snapshot saved at exit) that the log never got.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until each has ended; what they raise on the way is dropped."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class PollLoop:
    """Runs `poll` forever: poll, then wait `interval` or until woken, whichever comes first."""

    def __init__(
        self,
        name: str,
        poll: Callable[[], Awaitable[None]],
        interval: float,
        clock: Clock,
        *,
        min_gap: float = 0.0,
    ) -> None:
        self.name = name
        self._poll = poll
        self._interval = interval
        self._clock = clock
        # Wakes closer together than this (in real seconds, from one poll's start to the next)
        # are merged into one poll: a storm of webhooks must not turn into a storm of polls.
        self._min_gap = min_gap
        self._last_start = float("-inf")
        self._wake = asyncio.Event()
        self.polls = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            self._last_start = loop.time()
            try:
                await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A poll must report its own failures as source health; this is the last guard
                # so that one bug cannot end every future refresh.
                log.exception("poll %s failed unexpectedly", self.name)
            self.polls += 1
            if await self._wait():
                early = self._last_start + self._min_gap - loop.time()
                if early > 0:
                    await asyncio.sleep(early)  # wakes meanwhile join the next poll

    async def _wait(self) -> bool:
        """Wait for the interval or a wake; True if woken."""
        if self._wake.is_set():
            return True
        sleeper = asyncio.ensure_future(self._clock.sleep(self._interval))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Cancel without awaiting: awaiting here under suppress(CancelledError) would also
            # swallow a cancellation of this loop arriving at that moment, and it would never stop.
            sleeper.cancel()
            waker.cancel()
        return self._wake.is_set()
