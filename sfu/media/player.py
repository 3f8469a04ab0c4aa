"""One player's view of one publisher track: where it goes, its own numbering, and what its path
can take (a `PlayerPath`, shared by the player's tracks: congestion estimate and latency budget)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sfu.media.budget import FrameJudge, LatencyBudget
from sfu.media.congestion import PlayerCongestion
from sfu.media.packet import Frame, MediaPacket
from sfu.media.report_clock import ReportClock
from sfu.media.rewrite import SeqRewriter, TimestampRewriter
from sfu.rtp.header import rewrite_rtp

SKIP_LIMIT = 4096  # input sequence numbers a player skips in its numbering at most: a longer jump stays a gap
SENDS_KEPT = 2.0  # seconds of (time, packets_sent) a player track keeps: what a report could have seen

Addr = tuple


def frame_size(frame: Frame) -> int:
    return sum(len(p.data) for p in frame.packets)


def frame_droppable(frame: Frame) -> bool:
    return all(p.droppable for p in frame.packets)


@dataclass(slots=True)
class PlayerPath:
    """One player's network path, shared by its audio and video tracks."""

    congestion: PlayerCongestion = field(default_factory=lambda: PlayerCongestion(start_bps=8_000_000))
    budget: LatencyBudget = field(default_factory=LatencyBudget)
    measured: bool = False  # has the player said anything about its path (RR, REMB)? Until then: no limits


@dataclass(slots=True)
class PlayerTrack:
    kind: str
    ssrc: int
    l3: bool
    addr: Addr | None = None
    payload_type: int | None = None  # None: the publisher's
    codec: str | None = None  # the only codec it takes (its SDP named it: the HTTP API); None: any
    rewriter: SeqRewriter = field(default_factory=SeqRewriter)
    epoch: int = -1  # the publisher track epoch it follows
    started: bool = False  # has had its first frame (the cached GOP or a live keyframe)
    preview_ts: int | None = None  # the keyframe it was shown alone (its GOP did not fit the cache), until started
    last_ext: int | None = None  # the highest input ext_seq sent
    packets_sent: int = 0
    octets_sent: int = 0
    retransmissions: int = 0
    path: PlayerPath | None = None
    judge: FrameJudge | None = None  # its frame decisions on its path's budget (made with the path)
    timestamps: TimestampRewriter | None = None  # made at the first packet: it keeps that numbering
    timestamps_reset: bool = False
    fast: bool = False  # in its publisher track's fast table (sfu/media/track.py), and gated there
    gated: bool = False
    slot: int = -1  # its place in that table while `fast`
    play_at: float | None = None  # when its play request reached the node, until its first keyframe is sent
    packets_dropped: int = 0  # packets its latency budget did not let through
    report_clock: ReportClock = field(default_factory=ReportClock)  # when its sender reports went: the RTT
    sends: deque = field(default_factory=deque)  # (when, packets_sent after it), the last SENDS_KEPT seconds
    first_sent_at: float | None = None  # when its first packet was sent

    def __post_init__(self) -> None:
        if self.path is not None and self.judge is None:
            self.judge = FrameJudge(self.path.budget, self.path.congestion, self.kind)

    def follow(self, epoch: int) -> None:
        """A (new) publisher: numbering continues after what this player already got."""
        if self.epoch != epoch:
            if self.epoch != -1:
                self.rewriter.reset()
                self.timestamps_reset = True
            self.epoch = epoch
            self.started = False
            self.preview_ts = None
            self.last_ext = None

    def skip_to(self, ext_seq: int) -> None:
        """Input packets before `ext_seq` that this player will never get leave no gap in its numbering."""
        if self.last_ext is None or ext_seq - self.last_ext > SKIP_LIMIT:
            return
        for e in range(self.last_ext + 1, ext_seq):
            self.rewriter.drop(e)

    def admit(self, p: MediaPacket, now: float) -> bool:
        """RTC: does this packet go to the player? The latency budget decides once per frame."""
        path = self.path
        if path is None or not path.measured:
            return True
        size = len(p.data)
        judge = self.judge
        if p.is_retransmission and self.kind == "video" and p.timestamp != judge.frame_ts:
            # a packet of an earlier frame, come late (a repair, a reorder): its frame was judged when
            # it started and went or not. Judging it again would decide afresh for the frame being
            # forwarded, which goes whole or not at all. It takes the place its numbering kept, if
            # any (its frame went), and is queued on the path.
            if self.rewriter.dropped(p.ext_seq):
                self.packets_dropped += 1
                return False
            path.budget.add_bytes(self.kind, size, now)
            return True
        if judge.new_frame(p.timestamp):
            judge.judge(p.timestamp, size, p.keyframe, p.droppable, now)
        judge.account(judge.frame_bytes + size, now)
        if not judge.frame_send:
            self.rewriter.drop(p.ext_seq)  # no gap in its numbering for what it will never get
            self.packets_dropped += 1
        return judge.frame_send

    def admit_frame(self, frame: Frame, now: float) -> bool:
        """L3: does this released frame go to the player? Judged from its release, not its capture:
        the shared target delay is chosen, not this path's fault."""
        path = self.path
        if path is None or not path.measured:
            return True
        send = self.judge.decide(frame.keyframe, frame_size(frame), frame_droppable(frame), now)
        if not send:
            self.packets_dropped += len(frame.packets)
        return send

    def skip_gaps(self, gaps: list[tuple[int, int]], upto: int) -> None:
        """Gaps in the L3 timeline (first, last ext_seq; ascending) that the fast path closed in this
        player's numbering before it sent `upto`: the rewriter drops what it skipped, as `skip_to`
        would have. Call before `absorb_fast` for the same packets."""
        last = self.last_ext
        k = len(gaps)
        while k and (last is None or gaps[k - 1][1] > last):  # the gaps after what it had (the log's tail)
            k -= 1
        for first, end in gaps[k:]:
            if first >= upto:
                break
            for e in range(first if last is None else max(first, last + 1), min(end, upto - 1) + 1):
                self.rewriter.drop(e)

    def absorb_fast(self, count: int, size: int, octets: int, last_ext: int, last_ts: int, last_arrival: float,
                    drops: int, drop_bytes: int, drop_first: int, drop_last: int, marks: tuple, clock_rate: int) -> None:
        """What the fast path did for this player since the last time (its track's FastTrack):
        sent `count` packets (the last `last_ext`), or dropped `drops` consecutive ones (a frame its
        budget refused). Brings the rewriters and counts to where sending or dropping those
        packets one by one here would have. The sends are dated by their `marks` (the first `n` of
        them, `b` bytes, by `at`), the rest at `last_arrival`: the send rate sees them as they went,
        however long ago the last time was."""
        if count:
            self.rewriter.rewrite(last_ext)  # the number the fast path gave it: now the rewriter knows
            self.timestamp(last_ts, last_arrival, clock_rate)
            if self.last_ext is None or last_ext > self.last_ext:
                self.last_ext = last_ext
            done = done_bytes = 0
            for at, n, b in marks:
                self.packets_sent += n - done
                self.sent(b - done_bytes, at)
                done, done_bytes = n, b
            self.packets_sent += count - done
            self.octets_sent += octets
            self.sent(size - done_bytes, last_arrival)
        if drops:
            for e in range(drop_first, drop_last + 1):
                self.rewriter.drop(e)
            self.packets_dropped += drops
        # (a gated player's frame accounting, for its latency budget, is its track's: `account_frames`)

    def admit_resend(self, size: int, now: float) -> bool:
        """A retransmission to this player: does it fit its path (the budget's rule 10)? Counted as sent if so."""
        path = self.path
        if path is None or not path.measured:
            return True
        if not path.budget.offer_resend(size, now):
            return False
        path.congestion.on_sent(size, now)
        return True

    @property
    def rtt(self) -> float | None:
        """The round trip to this player (its receiver reports), None until measured."""
        return self.path.congestion.rtt if self.path is not None else None

    def sent(self, size: int, now: float) -> None:
        if self.path is not None:
            self.path.congestion.on_sent(size, now)
        if self.first_sent_at is None:
            self.first_sent_at = now
        sends = self.sends
        sends.append((now, self.packets_sent))
        while len(sends) > 1 and sends[0][0] < now - SENDS_KEPT:
            sends.popleft()

    def packets_sent_before(self, t: float) -> int | None:
        """How many packets it had been sent before `t`: what a receiver report made at `t` can speak
        of (packets sent since were in flight). A batch the fast path sent (one entry for its last
        packet) is taken as spread evenly since the entry before it. None when the kept sends do
        not reach back to `t`."""
        sends = self.sends
        if not sends:
            return self.packets_sent
        for i in range(len(sends) - 1, -1, -1):
            at, count = sends[i]
            if at < t:
                if i + 1 == len(sends):
                    return self.packets_sent
                after, total = sends[i + 1]
                return count + int((total - count - 1) * (t - at) / (after - at))
        return None

    def timestamp(self, ts: int, arrival: float, clock_rate: int) -> int:
        """The player's timestamp for a publisher timestamp: continuous across a publisher's restart."""
        if self.timestamps is None:
            self.timestamps = TimestampRewriter(ts)
        elif self.timestamps_reset:
            self.timestamps.reset(arrival)
            self.timestamps_reset = False
        return self.timestamps.rewrite(ts, arrival, clock_rate)

    def packet(self, p: MediaPacket, payload_type: int, clock_rate: int) -> bytes | None:
        """The packet rewritten for this player, or None when its numbering has no place for it."""
        seq = self.rewriter.rewrite(p.ext_seq)
        if seq is None:
            return None
        buf = bytearray(p.data)
        rewrite_rtp(buf, self.ssrc, seq, self.timestamp(p.timestamp, p.arrival, clock_rate),
                    payload_type if self.payload_type is None else self.payload_type)
        if self.last_ext is None or p.ext_seq > self.last_ext:
            self.last_ext = p.ext_seq
        self.packets_sent += 1
        self.octets_sent += len(buf) - 12
        return bytes(buf)
