"""RetransmissionBuffer: a track's recent packets by ext_seq, to answer a player's NACKs.

A sans-IO core (see docs/media.md): ``now`` is monotonic seconds passed in; no clock, no
sockets. One buffer per outgoing track; the packets stored are the ones as sent (already
rewritten), keyed by the extended (64-bit) sequence number they were sent with.

Rules:

- Storage is a ring of ``max_packets`` slots indexed by ``ext_seq % max_packets``, so memory
  is bounded by count whatever happens. The buffer covers the window
  ``(newest - max_packets, newest]``.
- ``store`` of a packet newer than ``newest`` by ``max_packets`` or more (a far jump) clears
  the buffer first (counted in ``resets``): nothing stored can be addressed any more.
  ``store`` of a packet older than the window is ignored (counted in ``rejected``).
  Storing an ext_seq again replaces the packet and forgets that it was resent.
- ``get`` returns the packet, or None when it is absent (``misses``) or was stored more than
  ``max_age`` seconds before ``now`` (``too_old``; the slot is freed). Found: ``hits``.
- ``resend_allowed`` implements mediasoup's rule: a packet is resent at most once per RTT.
  True (and the resend time recorded) when the packet is held and was not resent within the
  last ``rtt`` seconds (``rtt <= 0`` means unknown: ``default_rtt``); False when absent, and
  False counted in ``suppressed`` when resent too recently. The usual flow for each NACKed
  ext_seq: ``packet = buffer.get(seq, now)``; if packet and
  ``buffer.resend_allowed(seq, now, rtt)``: send it.
- ``clear()`` forgets everything (e.g. when the track's numbering restarts).

Counters (``counters`` dict): stored, hits, misses, too_old, suppressed, rejected, resets.
"""

from __future__ import annotations

__all__ = ["RetransmissionBuffer"]


class _Slot:
    __slots__ = ("ext_seq", "packet", "stored_at", "resent_at")

    def __init__(self, ext_seq: int, packet: bytes, stored_at: float) -> None:
        self.ext_seq = ext_seq
        self.packet = packet
        self.stored_at = stored_at
        self.resent_at: float | None = None


class RetransmissionBuffer:
    """Recent packets of one track by ext_seq, bounded by count and age (rules above)."""

    def __init__(self, max_packets: int = 2048, max_age: float = 2.0, default_rtt: float = 0.1) -> None:
        if max_packets < 1:
            raise ValueError(f"max_packets must be >= 1, got {max_packets}")
        if max_age <= 0:
            raise ValueError(f"max_age must be > 0, got {max_age}")
        self.max_packets = max_packets
        self.max_age = max_age
        self.default_rtt = default_rtt
        self._slots: list[_Slot | None] = [None] * max_packets
        self._newest: int | None = None
        self.counters = {
            "stored": 0, "hits": 0, "misses": 0, "too_old": 0, "suppressed": 0, "rejected": 0, "resets": 0,
        }

    @property
    def newest(self) -> int | None:
        """The highest ext_seq stored since the last reset, or None."""
        return self._newest

    def __len__(self) -> int:
        return sum(slot is not None for slot in self._slots)

    def clear(self) -> None:
        self._slots = [None] * self.max_packets
        self._newest = None

    def store(self, ext_seq: int, packet: bytes, now: float) -> None:
        newest = self._newest
        if newest is None or ext_seq > newest:
            if newest is not None and ext_seq - newest >= self.max_packets:
                self.clear()
                self.counters["resets"] += 1
            self._newest = ext_seq
        elif ext_seq <= newest - self.max_packets:
            self.counters["rejected"] += 1
            return
        self._slots[ext_seq % self.max_packets] = _Slot(ext_seq, packet, now)
        self.counters["stored"] += 1

    def _find(self, ext_seq: int) -> _Slot | None:
        slot = self._slots[ext_seq % self.max_packets]
        return slot if slot is not None and slot.ext_seq == ext_seq else None

    def get(self, ext_seq: int, now: float) -> bytes | None:
        slot = self._find(ext_seq)
        if slot is None:
            self.counters["misses"] += 1
            return None
        if now - slot.stored_at > self.max_age:
            self._slots[ext_seq % self.max_packets] = None
            self.counters["too_old"] += 1
            return None
        self.counters["hits"] += 1
        return slot.packet

    def resend_allowed(self, ext_seq: int, now: float, rtt: float) -> bool:
        slot = self._find(ext_seq)
        if slot is None:
            return False
        interval = rtt if rtt > 0 else self.default_rtt
        if slot.resent_at is not None and now - slot.resent_at < interval:
            self.counters["suppressed"] += 1
            return False
        slot.resent_at = now
        return True
