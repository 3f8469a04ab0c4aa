"""A precise one-shot timer for the event loop: a Linux timerfd on CLOCK_MONOTONIC.

The media plane's clock is `time.monotonic()` (CLOCK_MONOTONIC, nanoseconds). libuv's timers
(uvloop's `call_at`) count whole milliseconds of a clock read once per loop iteration, so a timer
armed for an L3 frame's release could fire up to a millisecond before its deadline (the frame
would leave early) or after it. A timerfd armed with the absolute deadline wakes the loop
(`loop.add_reader(timer.fileno(), ...)`) within microseconds after it, never before.

One system call to arm (`set`), one to acknowledge (`clear`); the node keeps one such timer for
the Router's next deadline.
"""

from __future__ import annotations

import ctypes
import math
import os
import time

__all__ = ["PreciseTimer"]

_libc = ctypes.CDLL(None, use_errno=True)
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.timerfd_create.restype = ctypes.c_int
_libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
_libc.timerfd_settime.restype = ctypes.c_int


class PreciseTimer:
    """A one-shot timer on `time.monotonic()`'s clock: readable from its deadline on."""

    def __init__(self) -> None:
        fd = _libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_create: {os.strerror(err)}")
        self._fd = fd
        self._spec = _Itimerspec()
        self.deadline: float | None = None

    def fileno(self) -> int:
        return self._fd

    def set(self, deadline: float | None) -> None:
        """Fire once at `deadline` (seconds on `time.monotonic()`'s clock; one in the past fires at
        once), replacing any earlier setting; None disarms."""
        if self._fd < 0:
            raise ValueError("the timer is closed")
        value = self._spec.it_value
        if deadline is None:
            value.tv_sec = value.tv_nsec = 0  # an all-zero value disarms
        else:
            if not math.isfinite(deadline):
                raise ValueError(f"deadline must be finite, got {deadline!r}")
            ns = max(1, math.ceil(deadline * 1e9))  # rounded up: never before the deadline
            value.tv_sec, value.tv_nsec = divmod(ns, 1_000_000_000)
        if _libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_settime: {os.strerror(err)}")
        self.deadline = deadline

    def clear(self) -> bool:
        """Acknowledge a firing (the descriptor stops being readable); False if it had not fired."""
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return False
        self.deadline = None
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
