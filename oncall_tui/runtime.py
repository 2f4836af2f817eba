"""Process settings of the dashboard that keep its event loop responsive.

Worker threads (decoding a big poll, encoding the log) share the GIL with the event loop that
draws the screen. Python hands the GIL over every 5 ms by default, and the loop gives it up at
every select(): while a worker computes, each turn of the loop waited up to 5 ms to get it back.
At 1 ms the screen keeps up (at 10,000 alerts the first load's longest stall went from about 110
to 85 ms, a filter keystroke's p95 from 45 to 35 ms); the workers take a little longer.

And the garbage collector's full passes:

A full pass of Python's cyclic collector walks every tracked object: the dashboard holds well
over 100,000 of them before it shows an alert (modules, classes, functions, widgets), plus a few
objects per alert. With 10,000 alerts a full pass froze the screen for over 100 ms, several
times a minute during an alert storm. Objects that live as long as the process are moved out of
the collector's sight with `gc.freeze()`; they are still freed as usual when their last
reference goes, only a reference cycle among them would never be collected.
"""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL = 0.001


def favour_the_event_loop() -> None:
    """Hand the GIL over every millisecond instead of every five."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def settle() -> None:
    """Freeze everything alive now: once after start-up, once after the first full load.

    No collection first: a full pass here would itself stall the screen. Whatever garbage sits
    in a reference cycle at that moment stays, once; it is small.
    """
    gc.freeze()
