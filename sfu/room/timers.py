"""A timer queue for sans-IO cores: deadlines in, due keys out; the core never reads a clock."""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from itertools import count


class TimerQueue:
    """One pending deadline per key; setting a key again replaces its deadline.

    Cancelled and replaced entries stay in the heap and are skipped lazily.
    """

    __slots__ = ("_heap", "_current", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._current: dict[Hashable, int] = {}
        self._seq = count()

    def set(self, key: Hashable, deadline: float) -> None:
        seq = next(self._seq)
        self._current[key] = seq
        heapq.heappush(self._heap, (deadline, seq, key))

    def cancel(self, key: Hashable) -> None:
        self._current.pop(key, None)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._current

    def _prune(self) -> None:
        heap = self._heap
        while heap and self._current.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)

    def next_deadline(self) -> float | None:
        self._prune()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> Hashable | None:
        """The key of the earliest deadline <= now (removed), or None."""
        entry = self.pop_due_entry(now)
        return None if entry is None else entry[0]

    def pop_due_entry(self, now: float) -> tuple[Hashable, float] | None:
        """(key, deadline) of the earliest deadline <= now (removed), or None."""
        self._prune()
        if self._heap and self._heap[0][0] <= now:
            deadline, _, key = heapq.heappop(self._heap)
            del self._current[key]
            return key, deadline
        return None

    def __len__(self) -> int:
        return len(self._current)
