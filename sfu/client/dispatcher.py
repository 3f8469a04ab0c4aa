"""Delivers callbacks to the EventHandler in event order, from one task.

A callback may be a plain function or a coroutine function (awaited before the next one).
An exception in a callback is logged and never stops delivery.
"""

from __future__ import annotations

import asyncio
import inspect
import logging

log = logging.getLogger("sfu.client")

_STOP = object()


class Dispatcher:
    def __init__(self, handler: object):
        self._handler = handler
        self._queue: asyncio.Queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sfu-client-dispatcher")
        self._closed = False

    def emit(self, method: str, *args: object) -> None:
        """Queue `handler.<method>(*args)`; never blocks, never raises."""
        if not self._closed:
            self._queue.put_nowait((method, args))

    async def close(self) -> None:
        """Deliver what is queued, then stop (without waiting when called from a callback)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(_STOP)
        if asyncio.current_task() is not self._task:
            await self._task

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is _STOP:
                return
            method, args = item
            fn = getattr(self._handler, method, None)
            if fn is None:
                continue
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("event handler %s raised", method)
