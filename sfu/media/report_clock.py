"""ReportClock: the round trip to a player, from the sender reports the node sends it.

A sans-IO core (docs/media.md): ``now`` is monotonic seconds, passed in; no clock, no socket. One
per player track. The node translates its publisher's sender reports for each player (the
publisher's NTP time, carried forward); a player's receiver report echoes the last one it got
(LSR: the middle 32 bits of its NTP time) and how long it held it (DLSR, 1/65536 s). RFC 3550
§6.4.1 takes the round trip as arrival - LSR - DLSR on one NTP clock; the node's NTP times are
the publisher's, so instead it remembers when (on its own monotonic clock) it sent each report:
``rtt = now - sent_at(LSR) - DLSR``. No wallclock is read or trusted.

Rules:

- ``sent(ntp64, now)``: a sender report with this NTP timestamp went to the player at ``now``.
  The last ``keep`` are remembered (by their LSR value, the compact NTP time).
- ``rtt(block, now)``: the round trip a report block shows, or None when its LSR is 0 (no SR
  yet), unknown (too old, or not ours), or the result is negative or above ``max_rtt``.

Counters: sent, samples, unknown (LSR not remembered), rejected.
"""

from __future__ import annotations

from collections import OrderedDict

from sfu.rtp.rtcp import ReportBlock, compact_ntp

__all__ = ["ReportClock"]


class ReportClock:
    def __init__(self, keep: int = 8, max_rtt: float = 10.0) -> None:
        if keep < 1 or max_rtt <= 0:
            raise ValueError("need keep >= 1 and max_rtt > 0")
        self.keep = keep
        self.max_rtt = max_rtt
        self._sent: OrderedDict[int, float] = OrderedDict()  # LSR -> when it was sent
        self.counters = {"sent": 0, "samples": 0, "unknown": 0, "rejected": 0}

    def sent(self, ntp64: int, now: float) -> None:
        self.counters["sent"] += 1
        lsr = compact_ntp(ntp64)
        self._sent.pop(lsr, None)
        self._sent[lsr] = now
        while len(self._sent) > self.keep:
            self._sent.popitem(last=False)

    def rtt(self, block: ReportBlock, now: float) -> float | None:
        if block.lsr == 0:
            return None
        sent_at = self._sent.get(block.lsr)
        if sent_at is None:
            self.counters["unknown"] += 1
            return None
        rtt = now - sent_at - block.dlsr / 65536
        if not 0 <= rtt <= self.max_rtt:
            self.counters["rejected"] += 1
            return None
        self.counters["samples"] += 1
        return rtt
