"""The collector pause around big decodes: nests, and never turns on a collector that was off."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from oncall_tui.collector import collector_paused


@pytest.fixture
def collector_state() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.usefixtures("collector_state")
def test_pauses_nest_and_the_last_one_resumes() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause is still on
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_state")
def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


@pytest.mark.usefixtures("collector_state")
def test_overlapping_pauses_in_two_threads_resume_only_after_both() -> None:
    gc.enable()
    inside = threading.Event()
    leave = threading.Event()

    def other() -> None:
        with collector_paused():
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(5)
    with collector_paused():
        pass
    assert not gc.isenabled()  # the other thread's pause is still on
    leave.set()
    thread.join(5)
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_state")
def test_an_error_inside_still_resumes() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("decode failed")
    assert gc.isenabled()
