"""RttEstimator: the round trip toward a publisher, measured from NACK turnaround.

A sans-IO core (docs/media.md): ``now`` is monotonic seconds, passed in; no clock, no socket; plain
``counters``. The node never sends a publisher a sender report to be echoed, but it does ask for
lost packets: the time from a NACK to the packet's arrival is a round trip (the NACK's way, the
publisher's turnaround, the retransmission's way), which is what the repair logic needs to know.

Without RTX (RFC 4588) a retransmission looks exactly like its original. A packet NACKed because
it was late, not lost, arrives twice: the original first (soon after the NACK: no round trip at
all), then the publisher's answer, a duplicate. A lost packet arrives once. So the sample is taken
at a NACKed packet's *last* arrival: at its second arrival, or, if there is none, at its first
once ``settle`` has passed since the NACK.

Rules:

- ``on_nack(ext_seqs, now)``: every ext_seq asked for the first time is remembered with ``now``.
  One asked again (a retry) is ambiguous: its answer cannot be told from the first one's (Karn's
  rule); it gives no sample (``ambiguous``).
- ``on_packet(ext_seq, now)``, for every packet at or below the highest ext_seq seen (duplicates
  included): the first arrival of a remembered, unambiguous ext_seq is noted; a second one gives
  the sample ``now - asked`` and forgets it.
- ``settle`` after its NACK an ext_seq is decided: one arrival gives the sample ``first arrival -
  asked``; none, and it is forgotten (``expired``: lost again, or it came before the NACK was
  registered). At most ``max_outstanding`` are remembered (the oldest are dropped, ``expired``).
  Decisions happen on the next input (``on_nack``, ``on_packet``) or ``poll(now)``.
- A sample <= 0 or above ``max_rtt`` is ``rejected``.
- Estimates (RFC 6298 §2): the first sample sets ``srtt = s, rttvar = s / 2``; later ones
  ``rttvar = 3/4 rttvar + 1/4 |srtt - s|``, ``srtt = 7/8 srtt + 1/8 s``. ``minimum`` is the
  smallest sample of the last ``window`` seconds (of any sample at all if none is that recent).
- Outputs: ``rtt`` is ``srtt``, or ``default`` before the first sample; ``retry_interval`` is how
  long a NACK's answer may take before it is overdue: ``srtt + var_factor * rttvar`` (RFC 6298's
  RTO has ``var_factor`` 4 and a 1 s floor; here 2 and no floor: a retry that comes too early
  costs one duplicate packet, one that comes too late costs a frame), ``default`` before the
  first sample, never below ``min_interval``; ``measured`` says whether any sample has come.

Counters: nacked (first asks remembered), samples, twice (samples taken at a second arrival:
packets NACKed that were only late), ambiguous, rejected, expired.
"""

from __future__ import annotations

from collections import OrderedDict, deque

__all__ = ["RttEstimator"]


class _Ask:
    __slots__ = ("at", "ambiguous", "first")

    def __init__(self, at: float) -> None:
        self.at = at
        self.ambiguous = False
        self.first: float | None = None  # its first arrival since the NACK


class RttEstimator:
    """Round trip toward a publisher from NACK turnaround (rules above)."""

    def __init__(self, default: float = 0.05, *, var_factor: float = 2.0, min_interval: float = 0.02,
                 max_rtt: float = 2.0, settle: float = 0.5, max_outstanding: int = 2048,
                 window: float = 10.0) -> None:
        if default <= 0 or max_rtt <= 0 or settle <= 0 or max_outstanding < 1 or window <= 0:
            raise ValueError("need default, max_rtt, settle, window > 0 and max_outstanding >= 1")
        self.default = default
        self.var_factor = var_factor
        self.min_interval = min_interval
        self.max_rtt = max_rtt
        self.settle = settle
        self.max_outstanding = max_outstanding
        self.window = window
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self._asked: OrderedDict[int, _Ask] = OrderedDict()  # by first ask, oldest first
        self._recent: deque[tuple[float, float]] = deque()  # (when, sample), the last `window` seconds
        self._minimum: float | None = None
        self.counters = {"nacked": 0, "samples": 0, "twice": 0, "ambiguous": 0, "rejected": 0, "expired": 0}

    # ----- outputs -----------------------------------------------------------------------------

    @property
    def measured(self) -> bool:
        return self.srtt is not None

    @property
    def rtt(self) -> float:
        return self.default if self.srtt is None else self.srtt

    @property
    def retry_interval(self) -> float:
        if self.srtt is None:
            return max(self.default, self.min_interval)
        return max(self.srtt + self.var_factor * self.rttvar, self.min_interval)

    @property
    def minimum(self) -> float | None:
        if self._recent:
            return min(s for _, s in self._recent)
        return self._minimum

    def stats(self) -> dict:
        return {"srtt": self.srtt, "rttvar": self.rttvar, "minimum": self.minimum,
                "retry_interval": self.retry_interval, **self.counters}

    # ----- inputs ------------------------------------------------------------------------------

    def on_nack(self, ext_seqs, now: float) -> None:
        self.poll(now)
        asked = self._asked
        for seq in ext_seqs:
            entry = asked.get(seq)
            if entry is not None:
                if not entry.ambiguous:
                    entry.ambiguous = True
                    self.counters["ambiguous"] += 1
                continue
            asked[seq] = _Ask(now)
            self.counters["nacked"] += 1
        while len(asked) > self.max_outstanding:
            asked.popitem(last=False)
            self.counters["expired"] += 1

    def on_packet(self, ext_seq: int, now: float) -> None:
        if not self._asked:
            return
        self.poll(now)
        entry = self._asked.get(ext_seq)
        if entry is None:
            return
        if entry.ambiguous:
            del self._asked[ext_seq]
        elif entry.first is None:
            entry.first = now
        else:  # the answer after the late original
            del self._asked[ext_seq]
            self.counters["twice"] += 1
            self._sample(now - entry.at, now)

    def poll(self, now: float) -> None:
        """Decide the ext_seqs NACKed ``settle`` ago or more."""
        asked = self._asked
        while asked:
            entry = next(iter(asked.values()))
            if entry.at + self.settle > now:
                break
            asked.popitem(last=False)
            if entry.ambiguous or entry.first is None:
                self.counters["expired"] += 0 if entry.ambiguous else 1
            else:
                self._sample(entry.first - entry.at, now)

    # ----- internals ---------------------------------------------------------------------------

    def _sample(self, s: float, now: float) -> None:
        if not 0 < s <= self.max_rtt:
            self.counters["rejected"] += 1
            return
        self.counters["samples"] += 1
        if self.srtt is None:
            self.srtt, self.rttvar = s, s / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - s)
            self.srtt = 0.875 * self.srtt + 0.125 * s
        self._minimum = s if self._minimum is None else min(self._minimum, s)
        self._recent.append((now, s))
        while self._recent and self._recent[0][0] < now - self.window:
            self._recent.popleft()
