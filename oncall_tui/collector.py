"""Pausing Python's cyclic garbage collector while a big answer is turned into objects.

Decoding 10,000 alerts allocates a few hundred thousand objects, none of them garbage; each
allocation threshold crossed on the way starts a collector pass that finds nothing (a fifth of
the decode's time). The pause is process-wide, so it nests and works across threads: the
collector runs again when the last pause ends, if it was running before the first.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_resume = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
