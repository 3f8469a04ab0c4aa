"""PlayerCongestion: what one player's path can take, estimated from the RTCP it sends back.

A sans-IO core (docs/media.md): every input carries ``now`` (monotonic seconds); it never reads a
clock, never touches a socket, keeps plain ``counters``. One per player (per player *transport*:
all the tracks a player receives share its path). The latency budget (sfu/media/budget.py) drains
its virtual send queue at ``estimate_bps``.

Inputs:

- ``on_receiver_report(block, now, rtt_from_lsr)``: a report block (RR, or SR from a player
  that also publishes) about an SSRC the node sends to this player. ``rtt_from_lsr`` is the
  round trip the caller worked out from LSR/DLSR (``rtt_from_report``), or None.
- ``on_remb(bitrate_bps, now)``: the player's own receive-side estimate (REMB).
- ``on_sent(size_bytes, now)``: every datagram the node sends to this player (retransmissions
  included: they use the path too).

Rules (the loss-based controller of draft-ietf-rmcat-gcc-02 §6, with libwebrtc's rates):

1. loss = fraction_lost / 256 from the block (RFC 3550 §6.4.1: the loss since the last report).
2. loss < 2 %: increase by 8 % per second: ``estimate *= 1 + 0.08 * dt``, dt = time since the
   previous report, at most 1 s. Scaling by dt makes the rate of growth independent of how often
   the player reports, and several blocks in one compound packet (audio and video) count once.
   An increase never lifts the estimate above ``1.5 * send rate + 50 kbit/s`` (the bound of
   draft §5.5): a path that has not been used has not shown it can take more; the bound never
   lowers the estimate by itself.
3. 2 % <= loss <= 10 %: hold.
4. loss > 10 %: ``estimate *= 1 - 0.5 * loss``, at most once per ``300 ms + rtt``: the next
   report may still show loss caused by the rate before the cut (libwebrtc waits the same).
5. REMB is a ceiling: ``estimate = min(estimate, remb)``. A later, higher REMB lifts the ceiling
   and the estimate climbs to it by rule 2. The ceiling stays until the next REMB.
6. Always ``min_bps <= estimate <= max_bps``.
7. RTT: first sample as is, then ``srtt = 7/8 srtt + 1/8 sample`` (RFC 6298). Negative or
   absurd (> 60 s) samples are ignored. ``rtt`` is None until a sample arrives.
8. Send rate: the bytes given to ``on_sent`` during the last ``window`` (1 s) * 8 / window.
   ``overusing(now)``: the send rate exceeds the estimate by more than ``overuse_margin``
   (10 %): the node is sending more than the path takes, so queues (and latency) grow.

Later input, not here yet: transport-wide congestion control feedback
(draft-holmer-rmcat-transport-wide-cc-extensions-01, ``TransportCc`` in sfu/rtp/rtcp.py) would
feed a delay-based estimate (GCC §5: inter-arrival filter, overuse detector, AIMD rate control)
that caps the estimate as REMB does (GCC's final estimate is the minimum of the two).

Counters: reports, increases, holds, decreases, rembs, rtt_samples.
"""

from __future__ import annotations

from collections import deque

from sfu.rtp.rtcp import ReportBlock

__all__ = ["PlayerCongestion", "rtt_from_report"]

LOW_LOSS = 0.02
HIGH_LOSS = 0.10
INCREASE_PER_S = 0.08
MAX_INCREASE_DT = 1.0
DECREASE_INTERVAL = 0.3
SEND_RATE_BOUND = 1.5
SEND_RATE_HEADROOM_BPS = 50_000
MAX_RTT = 60.0


def rtt_from_report(block: ReportBlock, arrival_compact_ntp: int) -> float | None:
    """RTT from a report block (RFC 3550 §6.4.1): arrival - LSR - DLSR, in seconds.

    ``arrival_compact_ntp`` is the middle 32 bits of the NTP wallclock when the report arrived
    (``compact_ntp(ntp_from_unix(wallclock))``). None when the player has had no SR yet (LSR 0)
    or the result is not plausible.
    """
    if block.lsr == 0:
        return None
    rtt = ((arrival_compact_ntp - block.lsr - block.dlsr) & 0xFFFFFFFF) / 65536
    return rtt if rtt <= MAX_RTT else None


class PlayerCongestion:
    """Loss- and REMB-based estimate of one player's path (rules above)."""

    def __init__(self, start_bps: float = 1_000_000, min_bps: float = 100_000, max_bps: float = 20_000_000, *,
                 window: float = 1.0, overuse_margin: float = 0.1) -> None:
        if not 0 < min_bps <= max_bps:
            raise ValueError("need 0 < min_bps <= max_bps")
        if window <= 0:
            raise ValueError("window must be positive")
        self.min_bps = float(min_bps)
        self.max_bps = float(max_bps)
        self.window = window
        self.overuse_margin = overuse_margin
        self._estimate = min(max(float(start_bps), self.min_bps), self.max_bps)
        self._remb: float | None = None
        self._srtt: float | None = None
        self._last_report: float | None = None
        self._last_decrease: float | None = None
        self._sent: deque[tuple[float, int]] = deque()
        self._sent_bytes = 0
        self.last_loss: float | None = None
        self.counters = {"reports": 0, "increases": 0, "holds": 0, "decreases": 0, "rembs": 0, "rtt_samples": 0}

    # ----- outputs ---------------------------------------------------------------------------

    @property
    def estimate_bps(self) -> float:
        """What the path is estimated to take, bits per second."""
        return self._estimate

    @property
    def rtt(self) -> float | None:
        """Smoothed round-trip time in seconds, None until measured."""
        return self._srtt

    @property
    def remb_bps(self) -> float | None:
        """The last REMB ceiling, None if the player never sent one."""
        return self._remb

    def send_rate_bps(self, now: float) -> float:
        """What the node sent to this player over the last ``window`` seconds, bits per second."""
        self._expire(now)
        return self._sent_bytes * 8 / self.window

    def overusing(self, now: float) -> bool:
        """Sending more than the path takes (rule 8)."""
        return self.send_rate_bps(now) > self._estimate * (1 + self.overuse_margin)

    # ----- inputs ----------------------------------------------------------------------------

    def on_receiver_report(self, block: ReportBlock, now: float, rtt_from_lsr: float | None = None) -> None:
        self.counters["reports"] += 1
        if rtt_from_lsr is not None and 0 <= rtt_from_lsr <= MAX_RTT:
            self.counters["rtt_samples"] += 1
            self._srtt = rtt_from_lsr if self._srtt is None else self._srtt + (rtt_from_lsr - self._srtt) / 8
        loss = min(max(block.fraction_lost, 0), 255) / 256
        self.last_loss = loss
        dt = 0.0 if self._last_report is None else min(max(now - self._last_report, 0.0), MAX_INCREASE_DT)
        self._last_report = now if self._last_report is None else max(now, self._last_report)
        if loss < LOW_LOSS:
            self._increase(dt, now)
        elif loss <= HIGH_LOSS:
            self.counters["holds"] += 1
        else:
            self._decrease(loss, now)

    def on_remb(self, bitrate_bps: float, now: float) -> None:
        self.counters["rembs"] += 1
        self._remb = max(float(bitrate_bps), 0.0)
        self._set(self._estimate)

    def on_sent(self, size_bytes: int, now: float) -> None:
        if size_bytes <= 0:
            return
        self._sent.append((now, size_bytes))
        self._sent_bytes += size_bytes
        self._expire(now)

    # ----- rules -----------------------------------------------------------------------------

    def _increase(self, dt: float, now: float) -> None:
        bound = SEND_RATE_BOUND * self.send_rate_bps(now) + SEND_RATE_HEADROOM_BPS
        target = min(self._estimate * (1 + INCREASE_PER_S * dt), max(bound, self._estimate))
        before = self._estimate
        self._set(target)
        if self._estimate > before:
            self.counters["increases"] += 1
        else:
            self.counters["holds"] += 1

    def _decrease(self, loss: float, now: float) -> None:
        interval = DECREASE_INTERVAL + (self._srtt or 0.0)
        if self._last_decrease is not None and now - self._last_decrease < interval:
            self.counters["holds"] += 1
            return
        self._last_decrease = now
        self.counters["decreases"] += 1
        self._set(self._estimate * (1 - 0.5 * loss))

    def _set(self, bps: float) -> None:
        if self._remb is not None:
            bps = min(bps, self._remb)
        self._estimate = min(max(bps, self.min_bps), self.max_bps)

    def _expire(self, now: float) -> None:
        start = now - self.window
        while self._sent and self._sent[0][0] <= start:
            self._sent_bytes -= self._sent.popleft()[1]
