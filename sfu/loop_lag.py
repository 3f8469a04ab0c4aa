"""LoopLagMonitor: how late the event loop runs a periodic timer (IO layer; the Node starts it).

Every `interval` seconds a timer is due; the sample is how long after its due time it ran
(`loop.time()` then minus the due time, never negative). A loop kept busy by a callback that does
not yield shows up here as lag. Samples are kept (bounded) until `take_samples()` drains them.
"""

from __future__ import annotations

import asyncio
from collections import deque

_SAMPLES = 4096


class LoopLagMonitor:
    def __init__(self, interval: float = 0.1) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=_SAMPLES)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sfu-loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def take_samples(self) -> list[float]:
        samples = list(self.samples)
        self.samples.clear()
        return samples

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, loop.time() - due))
