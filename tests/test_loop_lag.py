"""The event-loop lag monitor: a loop blocked by a callback shows as lag; stop ends the sampling."""

import asyncio
import time

import pytest

from sfu.loop_lag import LoopLagMonitor


async def wait_for_samples(monitor, n, deadline_s=5.0):
    got = []
    deadline = time.monotonic() + deadline_s
    while len(got) < n:
        assert time.monotonic() < deadline, f"only {len(got)} samples"
        await asyncio.sleep(monitor.interval)
        got += monitor.take_samples()
    return got


async def test_a_blocked_loop_is_measured_as_lag():
    monitor = LoopLagMonitor(interval=0.02)
    monitor.start()
    try:
        await wait_for_samples(monitor, 3)
        time.sleep(0.15)  # the point: a callback that blocks the loop for 150 ms
        lagged = await wait_for_samples(monitor, 1)
        assert max(lagged) >= 0.1
    finally:
        await monitor.stop()


async def test_stop_ends_the_task_and_samples_stop():
    monitor = LoopLagMonitor(interval=0.01)
    monitor.start()
    await wait_for_samples(monitor, 1)
    await monitor.stop()
    monitor.take_samples()
    await asyncio.sleep(0.05)
    assert monitor.take_samples() == []


def test_interval_must_be_positive():
    with pytest.raises(ValueError):
        LoopLagMonitor(interval=0)
