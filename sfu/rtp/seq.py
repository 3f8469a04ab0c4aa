"""Widen wrapping RTP counters to unbounded integers: sequence numbers (16 bits), timestamps (32).

The media plane widens every RTP sequence number once, at ingress, and works on the widened
``ext_seq`` behind it (docs/media.md; str0m ``src/rtp/id.rs``, pion
``internal/sequencenumber/unwrapper.go``, libwebrtc ``rtc_base/numerics/sequence_number_unwrapper.h``
do the same). Timestamps are widened the same way where a part compares them.

Rules, for a counter of ``B`` bits (``M = 2**B``, half range ``H = M // 2``):

- The first value maps to itself: ``unwrap(v0) == v0``.
- Every later value ``v`` is placed relative to the **highest** widened value seen so far,
  ``hi``. With ``d = (v - hi) mod M``:

  ============  ==============================  ====================================
  ``d``          meaning                         result
  ============  ==============================  ====================================
  0              the highest again (duplicate)   ``hi``
  1 .. H-1       forward (a new highest)         ``hi + d``, and ``hi`` moves there
  H .. M-1       backward: late or reordered     ``hi - (M - d)``; ``hi`` stays
  ============  ==============================  ====================================

  So a packet up to ``H`` behind the highest maps backwards, across a wrap too; a forward
  jump must stay below ``H``. Exactly ``H`` ahead is read as ``H`` behind (libwebrtc breaks
  that tie by comparing raw values; one fixed rule is simpler and the case is a loss of half
  the number space either way).
- Measuring from the highest, not from the last value (pion, libwebrtc), means a burst of
  reordered packets never drags the reference backwards.
- Results can be negative: a packet from before the first one, across a wrap (first 0, then
  65535 → -1). ``result & (M - 1)`` always gives the wire value back.
- Values outside ``0 .. M-1`` raise ``ValueError`` (a caller bug, not bad network input: a
  parsed header cannot produce one).

``peek(v)`` widens without moving ``hi`` (for numbers that arrive in feedback, e.g. NACKs,
which must not advance the stream's own reference).
"""

from __future__ import annotations

__all__ = ["SeqUnwrapper", "TimestampUnwrapper"]


class _Unwrapper:
    __slots__ = ("_highest",)

    _BITS = 0  # set by subclasses
    _MOD = 1 << _BITS
    _HALF = _MOD >> 1

    def __init__(self) -> None:
        self._highest: int | None = None

    @property
    def highest(self) -> int | None:
        """The highest widened value so far (``None`` before the first)."""
        return self._highest

    def _widen(self, value: int) -> int:
        if not 0 <= value < self._MOD:
            raise ValueError(f"{type(self).__name__}: {value} is not a {self._BITS}-bit unsigned value")
        hi = self._highest
        if hi is None:
            return value
        d = (value - hi) % self._MOD
        return hi + d if d < self._HALF else hi + d - self._MOD

    def unwrap(self, value: int) -> int:
        """Widen ``value``; a new highest moves the reference."""
        ext = self._widen(value)
        if self._highest is None or ext > self._highest:
            self._highest = ext
        return ext

    def peek(self, value: int) -> int | None:
        """What ``unwrap(value)`` would return, without recording it (``None`` before the first)."""
        if self._highest is None:
            self._widen(value)  # still validate the range
            return None
        return self._widen(value)


class SeqUnwrapper(_Unwrapper):
    """16-bit RTP sequence numbers → widened ``ext_seq`` (half range 32768)."""

    __slots__ = ()
    _BITS = 16
    _MOD = 1 << 16
    _HALF = 1 << 15


class TimestampUnwrapper(_Unwrapper):
    """32-bit RTP timestamps → widened timestamps (half range 2**31)."""

    __slots__ = ()
    _BITS = 32
    _MOD = 1 << 32
    _HALF = 1 << 31
