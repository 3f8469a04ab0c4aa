"""PlayerCongestion: what one player's path can take, estimated from the RTCP it sends back.

A sans-IO core (docs/media.md): every input carries ``now`` (monotonic seconds); it never reads a
clock, never touches a socket, keeps plain ``counters``. One per player (per player *transport*:
all the tracks a player receives share its path). The latency budget (sfu/media/budget.py) drains
its virtual send queue at ``estimate_bps``.

Inputs:

- ``on_receiver_report(block, now, rtt_from_lsr, packet_bytes, packets_sent)``: a report block
  (RR, or SR from a player that also publishes) about an SSRC the node sends to this player.
  ``rtt_from_lsr`` is the round trip the caller worked out from LSR/DLSR (``rtt_from_report``,
  or the node's own ``ReportClock``), or None; ``packet_bytes`` the average size of the packets
  the node sends on that SSRC and ``packets_sent`` how many it had sent on it when the player
  made the report (RTP media, not retransmissions; not those still on the way), or None;
  ``start`` (the sequence number of the first packet sent on that SSRC, and when), or None.
- ``on_remb(bitrate_bps, now)``: the player's own receive-side estimate (REMB).
- ``on_sent(size_bytes, now)``: every datagram the node sends to this player (retransmissions
  included: they use the path too).
- ``on_limited(now)``: the player's latency budget dropped a video frame (or skipped to a keyframe)
  for this path: the stream wanted more than the estimate let through.

Rules (the loss-based controller of draft-ietf-rmcat-gcc-02 §6, with libwebrtc's rates):

1. loss = fraction_lost / 256 from the block (RFC 3550 §6.4.1: the loss since the last report),
   or, when the path's own loss is known and lower, that: ``1 - received / sent`` between this
   SSRC's last two reports, or for its first report since ``start`` (received: the extended
   highest seq minus the cumulative loss, differenced; sent: ``packets_sent``, differenced; at
   least 10 sent), clamped to [0, 1]. A
   player fed packets as they come (RTC) counts in fraction_lost the publisher's own losses too,
   as gaps in its numbering the node never filled: not this path's, and a path that carried
   everything it was sent must not be cut for them. (The count alone is not the measure either:
   a player that is slow to read its socket has received less than was sent without losing
   any; fraction_lost, from gaps, does not see that. Each is high only for its own reason; a
   loss both see is the path's.)
2. loss < 2 %: increase by 8 % per second: ``estimate *= 1 + 0.08 * dt``, dt = time since the
   previous report, at most 1 s. Scaling by dt makes the rate of growth independent of how often
   the player reports, and several blocks in one compound packet (audio and video) count once.
   An increase never lifts the estimate above ``1.5 * send rate + 50 kbit/s`` (the bound of
   draft §5.5): a path that has not been used has not shown it can take more; the bound never
   lowers the estimate by itself.
   Except on a path the budget holds down (``limited``: ``on_limited`` within the last two
   windows): it sends little *because of* the estimate (a single-layer stream over a path that
   took less than it: the budget lets keyframes through and little else), and bounded by that it
   could never rise again, even once the path recovered (a player capped for 10 s stayed at 2 %
   of its frames for as long as it played). There the increase is a *probe*: it goes on at 8 % a
   second past the bound (within rule 10's memory, which has faded by then), and the media the
   budget then lets through tests the path. ``probes`` counts them. A decrease during a probe
   (rule 4 or 9) goes back to the estimate it started from and remembers that as the capacity
   (rule 10; the delivered rate of a path fed in bursts says less), for twice the memory of the
   last one, at most ``MAX_CAPACITY_MEMORY`` (80 s) (``probes_failed``): a path that stays capped
   is probed at longer and longer intervals. A probe holds when the estimate has doubled from
   where it started, or the budget stops dropping: the memory is back to ``CAPACITY_MEMORY``.
   The price: a failed probe lets through more than the path takes until the next report says
   so, and the player's media can lag past the budget for a moment (up to ~0.35 s over it in
   tests/media/paths.py's 500 kbit/s cap with a 500 ms queue; the next probe comes 40, then 80 s
   later).
3. 2 % <= loss <= 10 %: hold.
4. loss > 10 %: ``estimate *= 1 - 0.5 * loss``, and not above the delivered rate (rule 10) when
   known, at most once per ``300 ms + rtt``: the next report may still show loss caused by the
   rate before the cut (libwebrtc waits the same). A path that drops what it cannot queue took
   what it delivered, however high the estimate had climbed (from its start value, 8 Mbit/s
   toward players, halving by halving would take seconds of losses).
5. REMB is a ceiling: ``estimate = min(estimate, remb)``. A later, higher REMB lifts the ceiling
   and the estimate climbs to it by rule 2. The ceiling stays until the next REMB.
6. Always ``min_bps <= estimate <= max_bps``.
7. RTT: first sample as is, then ``srtt = 7/8 srtt + 1/8 sample`` (RFC 6298). Negative or
   absurd (> 60 s) samples are ignored. ``rtt`` is None until a sample arrives.
8. Send rate: the bytes given to ``on_sent`` during the last ``window`` (1 s) * 8 / window.
   ``overusing(now)``: the send rate exceeds the estimate by more than ``overuse_margin``
   (10 %): the node is sending more than the path takes, so queues (and latency) grow.
9. Queue delay (a deep bottleneck queue fills without a loss: the loss rules alone would let it
   hold seconds of media). ``base_rtt`` is the smallest RTT sample of the last ``base_window``
   (30 s); a sample minus it is what the path queued then. ``queue_delay`` is the smallest such
   value of the last ``1.5 * window`` (the last report's samples and the previous one's: players
   report once a second): the *standing* queue (one keyframe's burst passing a slow link is not
   one), None before a sample. A report that finds ``queue_delay`` above ``delay_threshold``
   (100 ms) decreases the estimate to ``delay_backoff`` (0.85) times itself, or to the
   delivered rate (rule 10) when known and lower, at most once per ``300 ms + rtt`` (as rule 4,
   and counted with it): the path takes less than was sent. Above half the threshold the report
   holds: no increase, whatever the loss. Otherwise rules 2-4 apply. (GCC §5 reads the same
   signal per packet from transport-wide feedback; here it comes from receiver reports, a
   sample or two a second.)
10. Delivered rate: per reported SSRC, the packets the player got between two of its reports
   (extended highest seq minus cumulative loss, both differenced) times ``packet_bytes`` * 8
   over the time between the reports; ``delivered_bps(now)`` sums the SSRCs reported in the
   last ``2.5 * window``; None before two reports of an SSRC with ``packet_bytes``. While the
   path queues or drops, that is what it can carry: a decrease (rule 4 or 9) that knows it
   remembers it as the path's ``capacity_bps`` for ``capacity_memory`` (``CAPACITY_MEMORY``, 20 s;
   longer after a failed probe: rule 2), and while it is
   remembered an increase (rule 2) never lifts the estimate above it. (Once its queue has drained
   a path the budget keeps below its capacity shows neither loss nor queue; without the memory
   the estimate would climb back over the capacity, 8 % a second, and the next bursts would
   queue past the budget. After the memory fades the estimate may probe higher again.)

Later input, not here yet: transport-wide congestion control feedback
(draft-holmer-rmcat-transport-wide-cc-extensions-01, ``TransportCc`` in sfu/rtp/rtcp.py) would
feed a delay-based estimate (GCC §5: inter-arrival filter, overuse detector, AIMD rate control)
that caps the estimate as REMB does (GCC's final estimate is the minimum of the two).

Counters: reports, increases, holds, decreases, delay_decreases, upstream_loss (reports whose
fraction_lost was over 2 % and the path's own loss under it), rembs, rtt_samples, probes,
probes_failed.
"""

from __future__ import annotations

import math
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
BASE_WINDOW = 30.0
DELAY_THRESHOLD = 0.1
DELAY_BACKOFF = 0.85
CAPACITY_MEMORY = 20.0
MAX_CAPACITY_MEMORY = 80.0
PROBE_HELD = 2.0  # a probe holds once the estimate has doubled from where it started, or the stream fits


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
                 window: float = 1.0, overuse_margin: float = 0.1, delay_threshold: float = DELAY_THRESHOLD,
                 delay_backoff: float = DELAY_BACKOFF, base_window: float = BASE_WINDOW) -> None:
        if not 0 < min_bps <= max_bps:
            raise ValueError("need 0 < min_bps <= max_bps")
        if window <= 0:
            raise ValueError("window must be positive")
        self.min_bps = float(min_bps)
        self.max_bps = float(max_bps)
        self.window = window
        self.overuse_margin = overuse_margin
        self.delay_threshold = delay_threshold
        self.delay_backoff = delay_backoff
        self.base_window = base_window
        self._rtts: deque[tuple[float, float]] = deque()  # (when, sample) of the last base_window
        self._queued: deque[tuple[float, float]] = deque()  # (when, sample minus the base), the last 1.5 windows
        self._deliveries: dict[int, list] = {}  # ssrc -> [highest, received, when, rate, packets sent]
        self.capacity_memory = CAPACITY_MEMORY  # doubled by each failed probe, reset by one that holds (rule 2)
        self._capacity: tuple[float, float] | None = None  # (delivered bps at the last decrease, when)
        self._estimate = min(max(float(start_bps), self.min_bps), self.max_bps)
        self._remb: float | None = None
        self._srtt: float | None = None
        self._last_report: float | None = None
        self._last_decrease: float | None = None
        self._sent: deque[tuple[float, int]] = deque()
        self._sent_bytes = 0
        self.last_loss: float | None = None
        self._limited_at: float | None = None  # when the latency budget last dropped video for this path
        self._probe_base: float | None = None  # the estimate a probe (rule 2) started from, while it lasts
        self.counters = {"reports": 0, "increases": 0, "holds": 0, "decreases": 0, "delay_decreases": 0,
                         "upstream_loss": 0, "rembs": 0, "rtt_samples": 0, "probes": 0, "probes_failed": 0}

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
    def base_rtt(self) -> float | None:
        """The smallest RTT sample of the last base_window seconds (rule 9), None before one."""
        return min(s for _, s in self._rtts) if self._rtts else None

    @property
    def queue_delay(self) -> float | None:
        """The path's standing queue as of the last RTT samples (rule 9), None before one."""
        return min(q for _, q in self._queued) if self._queued else None

    def capacity_bps(self, now: float) -> float | None:
        """What the path delivered when it last dropped or queued (rule 10), while remembered."""
        if self._capacity is None or now - self._capacity[1] > self.capacity_memory:
            return None
        return self._capacity[0]

    def delivered_bps(self, now: float) -> float | None:
        """What the player got per second lately (rule 10), None until known."""
        rates = [d[3] for d in self._deliveries.values() if d[3] is not None and d[2] >= now - 2.5 * self.window]
        return sum(rates) if rates else None

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

    def on_receiver_report(self, block: ReportBlock, now: float, rtt_from_lsr: float | None = None,
                           packet_bytes: float | None = None, packets_sent: int | None = None,
                           start: tuple[int, float] | None = None) -> None:
        self.counters["reports"] += 1
        if rtt_from_lsr is not None and 0 <= rtt_from_lsr <= MAX_RTT:
            self.counters["rtt_samples"] += 1
            self._srtt = rtt_from_lsr if self._srtt is None else self._srtt + (rtt_from_lsr - self._srtt) / 8
            self._sample_queue(rtt_from_lsr, now)
        path_loss = self._note_delivery(block, now, packet_bytes, packets_sent, start)
        loss = min(max(block.fraction_lost, 0), 255) / 256
        if path_loss is not None and path_loss < loss:
            if loss >= LOW_LOSS > path_loss:
                self.counters["upstream_loss"] += 1
            loss = path_loss
        self.last_loss = loss
        dt = 0.0 if self._last_report is None else min(max(now - self._last_report, 0.0), MAX_INCREASE_DT)
        self._last_report = now if self._last_report is None else max(now, self._last_report)
        queued = self.queue_delay
        if queued is not None and queued > self.delay_threshold:
            self._decrease_for_delay(now)
        elif queued is not None and queued > self.delay_threshold / 2:
            self.counters["holds"] += 1
        elif loss < LOW_LOSS:
            self._increase(dt, now)
        elif loss <= HIGH_LOSS:
            self.counters["holds"] += 1
        else:
            self._decrease(loss, now)

    def on_remb(self, bitrate_bps: float, now: float) -> None:
        self.counters["rembs"] += 1
        self._remb = max(float(bitrate_bps), 0.0)
        self._set(self._estimate)

    def on_limited(self, now: float) -> None:
        """The latency budget dropped video for this path: it was sent less than the stream because of
        the estimate (rule 2)."""
        self._limited_at = now

    def limited(self, now: float) -> bool:
        """The budget dropped video for this path within the last two windows (rule 2)."""
        return self._limited_at is not None and now - self._limited_at <= 2 * self.window

    def on_sent(self, size_bytes: int, now: float) -> None:
        if size_bytes <= 0:
            return
        self._sent.append((now, size_bytes))
        self._sent_bytes += size_bytes
        self._expire(now)

    # ----- rules -----------------------------------------------------------------------------

    def _increase(self, dt: float, now: float) -> None:
        bound = SEND_RATE_BOUND * self.send_rate_bps(now) + SEND_RATE_HEADROOM_BPS
        limited = self.limited(now)
        if self._probe_base is not None and not limited:
            self._probe_held()  # the stream fits
        if limited and self._estimate >= bound:
            if self._probe_base is None:
                self._probe_base = self._estimate
                self.counters["probes"] += 1
            bound = math.inf  # held down by the estimate itself, not by a thin stream: a probe (rule 2)
        capacity = self.capacity_bps(now)
        if capacity is not None:
            bound = min(bound, capacity)
        target = min(self._estimate * (1 + INCREASE_PER_S * dt), max(bound, self._estimate))
        before = self._estimate
        self._set(target)
        if self._estimate > before:
            self.counters["increases"] += 1
        else:
            self.counters["holds"] += 1
        if self._probe_base is not None and self._estimate >= PROBE_HELD * self._probe_base:
            self._probe_held()

    def _probe_held(self) -> None:
        """Rule 2: the path took more than when the probe started."""
        self._probe_base = None
        self.capacity_memory = CAPACITY_MEMORY

    def _decrease(self, loss: float, now: float) -> None:
        if self._decrease_allowed(now):
            self.counters["decreases"] += 1
            if self._probe_failed(now):
                return
            delivered = self._note_capacity(now)
            self._set(min(self._estimate * (1 - 0.5 * loss), delivered if delivered is not None else math.inf))

    def _decrease_for_delay(self, now: float) -> None:
        if self._decrease_allowed(now):
            self.counters["delay_decreases"] += 1
            if self._probe_failed(now):
                return
            delivered = self._note_capacity(now)
            self._set(min(self.delay_backoff * self._estimate, delivered if delivered is not None else math.inf))

    def _probe_failed(self, now: float) -> bool:
        """A decrease during a probe (rule 2): back to where the probe started, remembered as the
        capacity (what the path took before the probe; the delivered rate of a path fed in bursts
        says less)."""
        base, self._probe_base = self._probe_base, None
        if base is None or self._estimate <= base:
            return False
        self.counters["probes_failed"] += 1
        self.capacity_memory = min(2 * self.capacity_memory, MAX_CAPACITY_MEMORY)
        self._capacity = (base, now)
        self._set(base)
        return True

    def _note_capacity(self, now: float) -> float | None:
        delivered = self.delivered_bps(now)
        if delivered is not None:
            self._capacity = (delivered, now)
        return delivered

    def _decrease_allowed(self, now: float) -> bool:
        interval = DECREASE_INTERVAL + (self._srtt or 0.0)
        if self._last_decrease is not None and now - self._last_decrease < interval:
            self.counters["holds"] += 1
            return False
        self._last_decrease = now
        return True

    def _sample_queue(self, rtt: float, now: float) -> None:
        """Rule 9: note an RTT sample."""
        self._rtts.append((now, rtt))
        while self._rtts and self._rtts[0][0] < now - self.base_window:
            self._rtts.popleft()
        self._queued.append((now, max(0.0, rtt - self.base_rtt)))
        while len(self._queued) > 1 and self._queued[0][0] < now - 1.5 * self.window:
            self._queued.popleft()

    def _note_delivery(self, block: ReportBlock, now: float, packet_bytes: float | None,
                       packets_sent: int | None, start: tuple[int, float] | None = None) -> float | None:
        """Rules 10 and 1: packets received since this SSRC's previous report, as a rate; the path's
        own loss over that interval (None when unknown)."""
        received = block.highest_seq - block.cumulative_lost
        prev = self._deliveries.get(block.ssrc)
        if prev is None and start is not None and packets_sent is not None:
            # its first report: the interval runs from the first packet sent on this SSRC (`start`:
            # its sequence number, when), nothing received or sent before it
            prev = [start[0] - 1, start[0] - 1, start[1], None, 0]
        if prev is None:
            self._deliveries[block.ssrc] = [block.highest_seq, received, now, None, packets_sent]
            return None
        dt = now - prev[2]
        if dt < 0.1:  # two blocks of one compound packet, or a report too soon after: wait
            return None
        got = received - prev[1]
        sane = 0 <= got and 0 <= block.highest_seq - prev[0] < 1 << 20
        rate = got * packet_bytes * 8 / dt if sane and packet_bytes else None
        self._deliveries[block.ssrc] = [block.highest_seq, received, now, rate, packets_sent]
        if not sane or packets_sent is None or prev[4] is None or packets_sent - prev[4] < 10:
            return None
        return min(max(1.0 - got / (packets_sent - prev[4]), 0.0), 1.0)

    def _set(self, bps: float) -> None:
        if self._remb is not None:
            bps = min(bps, self._remb)
        self._estimate = min(max(bps, self.min_bps), self.max_bps)

    def _expire(self, now: float) -> None:
        start = now - self.window
        while self._sent and self._sent[0][0] <= start:
            self._sent_bytes -= self._sent.popleft()[1]
