"""Per-player outgoing numbering: contiguous sequence numbers, continuous timestamps.

A player sees one RTP stream from the node, whatever happened upstream: frames the node dropped
for it (congestion, waiting for a keyframe) must not show up as losses, and a publisher that
restarts (new SSRC, new random sequence numbers and timestamps) must not show up as a jump.
One ``SeqRewriter`` and one ``TimestampRewriter`` per player and track do that.

``SeqRewriter`` (mediasoup's ``RTC::SeqManager`` is the model; ours works on the widened
``ext_seq`` from ``sfu.rtp.seq``, so it has no wrap-around cases of its own):

- ``rewrite(ext_seq)`` returns the 16-bit output sequence number for an input packet. The
  mapping is ``out = ext_seq - base - (number of dropped inputs below ext_seq)``, computed on
  unbounded integers and wrapped to 16 bits only on the way out. The first packet gets
  ``initial``; everything else keeps its distance to it, minus the drops in between.
- ``drop(ext_seq)`` declares an input packet dropped on purpose, so later packets close the
  gap. Only packets above the highest one rewritten so far can be dropped: the numbers of
  packets already sent are fixed, and making room behind them would hand one output number to
  two packets. ``drop`` returns whether it took effect. (A packet the caller gives up on below
  that point just stays a gap in the output, which the player sees as a loss.)
- A late or reordered packet that was not dropped gets the number it would have had in order
  (there is a hole for it: the count of drops below it does not include later drops).
- Rewriting a dropped packet returns ``None`` (it stays dropped, e.g. a retransmission of a
  packet from a dropped frame).
- Memory is bounded: drops more than ``window`` below the highest input seen are folded into
  ``base``; packets that far behind are too late to place and return ``None``
  (``counters["too_old"]``). Default window 16384, a quarter of the 16-bit space the player
  sees (mediasoup keeps a third).
- ``reset()``: the next input (from a new source, any ``ext_seq``) continues right after the
  highest output so far; drops are forgotten. A packet of the new source from before its
  first one would land on a number already used for the old source: it returns ``None``
  (``counters["before_reset"]``).
- ``original(seq16)``: the input ``ext_seq`` that maps to an output number (for answering a
  player's NACK from the retransmission buffer), or ``None`` if no input maps there (not yet
  sent, outside the window, or sent for the source before the last reset).

Output numbers are strictly increasing in input order for non-dropped inputs, so two packets
never share a number (while their inputs are within ``window`` of each other).

``TimestampRewriter``:

- ``rewrite(ts32, now, clock_rate)`` returns the 32-bit output timestamp: the input widened
  (``TimestampUnwrapper``, so reordered packets and wraps are fine) plus a fixed offset. The
  first packet ever gets ``initial``.
- ``reset(now)``: the source changed. The first packet after it is mapped to
  ``last + max(1, round(elapsed * clock_rate))`` where ``last`` is the highest output timestamp
  so far and ``elapsed`` the wall time from when ``last`` was first output to when this packet
  arrives (or to ``now`` of the reset, if later). So the player sees time pass as it really did
  and its jitter buffer does not stall or rush; the next timestamp is always new.
- ``now`` is monotonic seconds from the caller; the rewriter never reads a clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from sfu.rtp.seq import TimestampUnwrapper

__all__ = ["SeqRewriter", "TimestampRewriter"]


class SeqRewriter:
    __slots__ = ("_initial", "_window", "_started", "_base", "_dropped", "_folded",
                 "_max_in", "_highest", "_max_out", "_reset_out", "first_input", "counters")

    def __init__(self, initial: int = 0, *, window: int = 1 << 14) -> None:
        if not 0 <= initial <= 0xFFFF:
            raise ValueError(f"initial sequence number {initial} is not 16-bit")
        if not 1 <= window <= 1 << 15:
            raise ValueError(f"window {window} must be 1..32768")
        self._initial = initial  # output (unbounded) for the first packet after start/reset
        self._window = window
        self._started = False
        self._base = 0
        self._dropped: list[int] = []  # sorted ext_seqs dropped on purpose, all >= the floor
        self._folded = 0  # drops removed from the list (all below the floor) but still counted
        self._max_in: int | None = None  # highest ext_seq rewritten
        self._highest: int | None = None  # highest ext_seq seen by rewrite or drop
        self._max_out: int | None = None  # highest output so far, unbounded
        self._reset_out: int | None = None  # highest output before the last reset: never reused
        self.first_input: int | None = None  # the first ext_seq rewritten since start or the last reset
        self.counters = {"rewritten": 0, "dropped": 0, "dropped_resent": 0, "too_old": 0, "before_reset": 0}

    # ----- helpers ----------------------------------------------------------------------------

    def _floor(self) -> int | None:
        return None if self._highest is None else self._highest - self._window

    def _see(self, ext_seq: int) -> None:
        if self._highest is None or ext_seq > self._highest:
            self._highest = ext_seq
            floor = ext_seq - self._window
            if self._dropped and self._dropped[0] < floor:
                k = bisect_left(self._dropped, floor)
                del self._dropped[:k]
                self._folded += k

    def _drops_below(self, ext_seq: int) -> int:
        return self._folded + bisect_left(self._dropped, ext_seq)

    def _is_dropped(self, ext_seq: int) -> bool:
        i = bisect_left(self._dropped, ext_seq)
        return i < len(self._dropped) and self._dropped[i] == ext_seq

    # ----- the API ----------------------------------------------------------------------------

    @property
    def initial(self) -> int:
        """The output sequence number of the first packet after start."""
        return self._initial

    def rewrite(self, ext_seq: int) -> int | None:
        """The output sequence number for this input packet, or None (dropped, or too old)."""
        floor = self._floor()
        if floor is not None and ext_seq < floor:
            self.counters["too_old"] += 1
            return None
        self._see(ext_seq)
        if self._is_dropped(ext_seq):
            self.counters["dropped_resent"] += 1
            return None
        if not self._started:
            self._started = True
            self.first_input = ext_seq
            self._base = ext_seq - self._drops_below(ext_seq) - self._initial
        out = ext_seq - self._base - self._drops_below(ext_seq)
        if self._reset_out is not None and out <= self._reset_out:
            self.counters["before_reset"] += 1
            return None
        if self._max_in is None or ext_seq > self._max_in:
            self._max_in = ext_seq
        if self._max_out is None or out > self._max_out:
            self._max_out = out
        self.counters["rewritten"] += 1
        return out & 0xFFFF

    def dropped(self, ext_seq: int) -> bool:
        """Was this input packet dropped on purpose (`drop`)? (Known for the last window of inputs.)"""
        return self._is_dropped(ext_seq)

    def drop(self, ext_seq: int) -> bool:
        """Drop this input packet on purpose, closing its gap in the output; False if too late to."""
        if self._max_in is not None and ext_seq <= self._max_in:
            return False
        floor = self._floor()
        if floor is not None and ext_seq < floor:
            return False
        self._see(ext_seq)
        if not self._is_dropped(ext_seq):
            insort(self._dropped, ext_seq)
            self.counters["dropped"] += 1
        return True

    def reset(self) -> None:
        """A new source: its next packet continues right after the highest output so far."""
        if self._max_out is not None:
            self._initial = self._max_out + 1
            self._reset_out = self._max_out
        self._started = False
        self.first_input = None
        self._base = 0
        self._dropped.clear()
        self._folded = 0
        self._max_in = self._highest = None

    def steady_delta(self) -> int | None:
        """``d`` such that ``rewrite(e) == (e - d) & 0xFFFF`` for every ``e`` above the highest
        input seen, as long as nothing more is dropped (the fast path's per-player offset); None
        before the first packet. Rewriting those inputs one by one or rewriting only the last
        of them leaves the rewriter in the same state (what the fast path relies on)."""
        if not self._started or self._highest is None or (self._dropped and self._dropped[-1] > self._highest):
            return None
        return self._base + self._folded + len(self._dropped)

    @property
    def max_output(self) -> int | None:
        """The highest output sequence number so far (16-bit), or None before the first."""
        return None if self._max_out is None else self._max_out & 0xFFFF

    def original(self, seq16: int) -> int | None:
        """The input ext_seq that maps to output number ``seq16``, or None (see the module rules)."""
        if not 0 <= seq16 <= 0xFFFF:
            raise ValueError(f"sequence number {seq16} is not 16-bit")
        if not self._started or self._max_out is None:
            return None
        # widen seq16 next to the highest output (at most half the space ahead or behind)
        d = (seq16 - self._max_out) % 0x10000
        out = self._max_out + (d if d < 0x8000 else d - 0x10000)
        if out > self._max_out or (self._reset_out is not None and out <= self._reset_out):
            return None  # not sent yet, or sent for the source before the last reset
        # solve ext - base - drops_below(ext) == out for a non-dropped ext: the count of drops
        # at or below the candidate only grows, so iterate to the fixed point
        count = 0
        while True:
            ext = out + self._base + self._folded + count
            k = bisect_right(self._dropped, ext)
            if k == count:
                break
            count = k
        floor = self._floor()
        if floor is not None and ext < floor:
            return None
        return ext


class TimestampRewriter:
    __slots__ = ("_initial", "_unwrap", "_offset", "_max_out", "_max_out_now", "_reset_now", "counters")

    def __init__(self, initial: int = 0) -> None:
        if not 0 <= initial <= 0xFFFFFFFF:
            raise ValueError(f"initial timestamp {initial} is not 32-bit")
        self._initial = initial
        self._unwrap = TimestampUnwrapper()
        self._offset: int | None = None  # out = widened input + offset; None until the first packet
        self._max_out: int | None = None  # highest output so far, unbounded
        self._max_out_now = 0.0  # when it was first output
        self._reset_now: float | None = None
        self.counters = {"resets": 0}

    def rewrite(self, ts32: int, now: float, clock_rate: int) -> int:
        """The 32-bit output timestamp for an input timestamp arriving at ``now``."""
        ext = self._unwrap.unwrap(ts32)
        if self._offset is None:
            if self._max_out is None:
                target = self._initial
            else:
                arrived = now if self._reset_now is None else max(now, self._reset_now)
                elapsed = max(0.0, arrived - self._max_out_now)
                target = self._max_out + max(1, round(elapsed * clock_rate))
            self._offset = target - ext
            self._reset_now = None
        out = ext + self._offset
        if self._max_out is None or out > self._max_out:
            self._max_out = out
            self._max_out_now = now
        return out & 0xFFFFFFFF

    def reset(self, now: float) -> None:
        """The source changed at ``now``: map its first packet to continue from the last output."""
        self._unwrap = TimestampUnwrapper()
        self._offset = None
        self._reset_now = now
        self.counters["resets"] += 1

    def steady_offset(self) -> int | None:
        """``o`` such that ``rewrite(ts) == (ts + o) & 0xFFFFFFFF`` until the next reset (the fast
        path's per-player offset); None before the first packet and right after a reset."""
        return None if self._offset is None else self._offset & 0xFFFFFFFF

    @property
    def max_output(self) -> int | None:
        """The highest output timestamp so far (32-bit), or None before the first."""
        return None if self._max_out is None else self._max_out & 0xFFFFFFFF
