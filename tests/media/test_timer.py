"""The media plane's precise timer (a timerfd on time.monotonic's clock)."""

import select
import time

import pytest

from sfu.media.timer import PreciseTimer


@pytest.fixture
def timer():
    t = PreciseTimer()
    yield t
    t.close()


def readable(timer: PreciseTimer, wait: float) -> bool:
    return bool(select.select([timer], [], [], wait)[0])


def test_it_fires_at_its_deadline_never_before(timer):
    for delay in (0.002, 0.0105, 0.03):
        deadline = time.monotonic() + delay
        timer.set(deadline)
        assert timer.deadline == deadline
        assert readable(timer, 5)
        assert time.monotonic() >= deadline  # woken at or after the deadline, to the nanosecond
        assert timer.clear() and timer.deadline is None
        assert not timer.clear() and not readable(timer, 0)  # one-shot: acknowledged, quiet


def test_a_deadline_in_the_past_fires_at_once(timer):
    timer.set(time.monotonic() - 1.0)
    assert readable(timer, 5)
    assert timer.clear()


def test_a_new_setting_replaces_the_last_and_none_disarms(timer):
    timer.set(time.monotonic() - 1.0)  # due already: readable...
    assert readable(timer, 5)
    later = time.monotonic() + 3600
    timer.set(later)  # ...until it is set again: the due firing is gone
    assert not readable(timer, 0.05) and not timer.clear()
    timer.set(time.monotonic() + 0.01)
    timer.set(None)
    assert timer.deadline is None
    assert not readable(timer, 0.05)


def test_bad_input(timer):
    with pytest.raises(ValueError, match="finite"):
        timer.set(float("nan"))
    timer.close()
    with pytest.raises(ValueError, match="closed"):
        timer.set(1.0)
