"""Keeping the garbage collector's full passes short.

A full pass of Python's cyclic collector walks every tracked object: the dashboard holds well
over 100,000 of them before it shows an alert (modules, classes, functions, widgets), plus a few
objects per alert. With 10,000 alerts a full pass froze the screen for over 100 ms, several
times a minute during an alert storm. Objects that live as long as the process are moved out of
the collector's sight with `gc.freeze()`; they are still freed as usual when their last
reference goes, only a reference cycle among them would never be collected.
"""

from __future__ import annotations

import gc


def settle_startup() -> None:
    """After start-up: freeze everything alive.

    No collection first: a full pass here would itself stall the first seconds. Whatever
    start-up garbage sits in a reference cycle at this moment stays, once; it is small.
    """
    gc.freeze()


def settle_loaded() -> None:
    """After the first full load of alerts: freeze it too (no collection, that would stall)."""
    gc.freeze()
