"""One publisher track: ingress, repair, caches, the L3 timeline, and the fan-out to its players.

The per-packet work lives in the track's `FastTrack` (sfu/media/fastpath.py: compiled, with a
Python reference): parse, source check, sequence widening, payload inspection, the ring (the
retransmission history and the RTC keyframe cache), and the fan-out of the next in-order packet
to every player whose numbering is a steady offset. Everything else comes here (`on_rtp`):
- a packet out of order (a gap, late, a retransmission), the first packet of a keyframe, or any
  packet while some RTC player is not in the fast table (not started yet, or its path is
  measured, so its latency budget judges each frame) or while the track has L3 players (each
  packet feeds the L3 jitter buffer). Such a packet feeds the NACK generator (gaps toward the
  publisher), the keyframe requester, the RTC keyframe cache's start and the jitter buffer, and
  is forwarded to the RTC players here.
Before Python touches the players it brings their rewriters up to what the fast path sent
(`_pull`), and afterwards loads the fast table again from them (`_push`).
Per timer (`on_timer`): release due L3 frames to every L3 player at the same instant (the fast
table's L3 players in one fan-out, after a gap in the timeline too: the fast path closes it in their
numbering and the track logs it for their rewriters; into the L3 keyframe cache too); NACK what is missing; request
a keyframe when the jitter buffer or the NACK generator needs one or a player asked, aggregated
and rate-limited.
A player that starts gets its mode's cached GOP at once, then follows live (a GOP too long for the
cache: its keyframe alone, then nothing until the next keyframe, asked for then). The L3 timeline runs
while the track has L3 players; the first one seeds it from the ring's GOP, so it starts at once
too.
Lazy pulls of gated players. A gated player's budget needs nothing from a pull: an L3 one judges
each released frame whole (`FrameJudge.decide`: the offer queues all its bytes); an RTC one
judges a frame at its first packet with the last frame's size, and the rest of the frame, which
goes from the fast path unseen here, is queued from the ring at the next packet left here
(`_account_frame`, `FrameJudge.account`: as `admit` would have, packet by packet). The track judges
them all in one compiled call per frame (`judge_frames`, `decide_frames`, `account_frames`), which
says whose decision changed: only those gates are set (the fast path's gate is the player's last
decision, `FrameJudge.frame_send`, from the table's load on). And the
fast path keeps a gated player's numbering itself (a closed gate closes it over what it drops). So
the track pulls them only: a slice of a mode's at a time, every GATED_PULL_INTERVAL /
GATED_PULL_SLICES, so that each is pulled once every GATED_PULL_INTERVAL (1 s: it bounds how
stale Python's view of them gets; in slices, because all of 2000 at once held the event loop
20-30 ms; their send rate, which congestion control reads at their next
receiver report, does not depend on it: a pull brings the fast path's marks, which date the sends
to within 0.1 s however long the batch); one alone when its gate changes (a pull must bring one
run of sends or one run of drops: a drop before a send could no longer be dropped in its
rewriter); all of them before an L3 frame out of order, and before an RTC packet that is not the
first of a frame in order (it is served here, packet by packet); and wherever Python touches
players (their reports, NACKs, sender reports, a reload; for the node's totals, the gated ones
alone: only a closed gate drops, `sync_drops`).
Deferred reloads. A player that joins or starts (or whose address moves, or whose path is
measured now) needs the fast table reloaded, and a whole load is O(players): a pull of every
player, then the table rebuilt. So such a change only marks the table stale (`_defer_push`); at
the next packet or timer the players that joined, started or were measured since are put in the
table, the others' entries untouched, nothing pulled (`_append`), or, when more changed, the table
is loaded whole once. Until then the fast path hands every packet to Python, which does that first.
A player that leaves empties its slot at once (`detach`), and once half the table is empty slots
it compacts itself (`_compact`): nothing is pulled for a leave either.
Held packets. While the track's players are all L3 players, the next packets of the newest frame
need nothing from Python but their place in the jitter buffer: the track lets the fast path keep
them (`fast.hold`: as many as the buffer has room for, and only while it holds that frame, so a held
packet can neither start a frame nor make the buffer drop one: no timer moves). Before the jitter
buffer is used again (the next packet the fast path leaves here, a timer, a player starting or the
L3 timeline stopping, the track's end, its counters read) they go in, each as `on_rtp` would have
put it, with the `now` it was handed over with (`catch_up`): the buffer sees the same inputs in the
same order as if each had come here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sfu.media.budget import account_frames, decide_frames, judge_frames, new_frame_for_all, take_keyframes_needed
from sfu.media.codecs import Codec
from sfu.media.fastpath import GATE_CLOSED, GATE_NONE, GATE_OPEN, F_DROPPABLE, F_DUPLICATE, F_FRAME_START, F_KEYFRAME, F_LATE, F_MARKER, MODE_L3, \
    MODE_RTC, FastTrack
from sfu.media.jitter import JitterBuffer, StreamTarget
from sfu.media.keyframe_cache import KeyframeCache
from sfu.media.keyframe_request import KeyframeRequester
from sfu.media.nack import NackGenerator
from sfu.media.packet import MediaPacket
from sfu.media.player import SKIP_LIMIT, Addr, PlayerPath, PlayerTrack, frame_droppable, frame_size
from sfu.media.rtt import RttEstimator
from sfu.rtp.header import parse_rtp, rewrite_rtp
from sfu.rtp.rtcp import Nack, RtcpParseError, SenderReport, parse_rtcp, serialize

Out = tuple[int, bytes, Addr]  # (socket key to send from, datagram, destination)
SENDER_REPORT_INTERVAL = 1.0  # seconds between the translated sender reports each player gets
SENDER_REPORT_SLICE = 32  # players per SR tick: a round over many players is spread over the interval
_FIRST_FRAME_SAMPLES = 4096
_KEYFRAME_START = F_KEYFRAME | F_FRAME_START  # the first packet of a keyframe (every audio packet)
_L3_GAPS = 1024  # gaps the fast table's L3 players skipped, logged until each player is caught up
GATED_PULL_INTERVAL = 1.0  # seconds: the longest the gated players go without a pull (module rules)
GATED_PULL_SLICES = 10  # ... pulled a slice at a time: one every GATED_PULL_INTERVAL / GATED_PULL_SLICES


@dataclass(slots=True)
class _FrameSeen:
    """The newest frame, as the packets left to Python saw it start (`_account_frame`)."""
    timestamp: int
    first: int  # its first packet's ext_seq
    scanned: int  # the ring is summed up to here
    size: int = 0  # bytes of its packets in the ring up to `scanned`
    last_arrival: float = 0.0  # the last of them


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """What a publisher declares for one track."""

    kind: str  # "audio" | "video"
    codec: str  # "opus" | "VP8" | "VP9" | "H264"
    payload_type: int

    @property
    def clock_rate(self) -> int:
        return 48000 if self.kind == "audio" else 90000


@dataclass(frozen=True, slots=True)
class MediaSettings:
    rtt: float = 0.05  # assumed toward publishers until measured (NACK turnaround: RttEstimator)
    l3_min_delay: float = 0.02
    l3_max_delay: float = 0.35  # L3 holds a frame at most this long: with the uplink's and the player's, < 400 ms
    l3_repair_rounds: int = 2  # the L3 target leaves room for a NACK and one retry...
    l3_repair_quantile: float | None = 0.995  # ...and at least this quantile of the repair delays seen
    l3_late_repair: bool = True  # a frame not whole at its release waits for its repair, up to l3_max_delay
    nack_reorder_factor: float = 2.0  # NACK a gap after this many times the arrival jitter...
    nack_max_reorder_delay: float = 0.05  # ...at most this long
    nack_keyframe_clears: bool = False  # a keyframe does not cancel older repairs: L3 still releases those frames
    keyframe_min_interval: float = 0.5
    keyframe_congestion_interval: float = 3.0  # a congested player's keyframe waits this long after the last
    retransmission_packets: int = 4096  # the ring: a power of two
    retransmission_age: float = 2.0
    keyframe_cache_packets: int = 4096  # a GOP a new player starts from, at most (RTC's: the ring's too)
    keyframe_cache_bytes: int = 6_144_000  # (as many packets of 1500 bytes)


class PublisherTrack:
    def __init__(self, track_id: int, key: tuple[int, str], spec: TrackSpec, epoch: int, node_ssrc: int,
                 settings: MediaSettings, stream_target: StreamTarget | None = None) -> None:
        self.track_id = track_id
        self.key = key
        self.spec = spec
        self.epoch = epoch
        self.node_ssrc = node_ssrc  # the node's SSRC in feedback toward this publisher
        self.settings = settings
        self.codec = Codec.from_name(spec.codec)
        self.video = self.codec.is_video
        self.fast = FastTrack(spec.codec, settings.retransmission_packets, settings.retransmission_age)
        self._resent: dict[tuple[int, int], float] = {}  # (player SSRC, ext_seq) -> when last resent to it (throttled by its RTT)
        self._resent_limit = 4 * settings.retransmission_packets
        self.nack = NackGenerator(default_rtt=settings.rtt, reorder_factor=settings.nack_reorder_factor,
                                  max_reorder_delay=settings.nack_max_reorder_delay,
                                  keyframe_clears=settings.nack_keyframe_clears)
        self.rtt = RttEstimator(settings.rtt)  # toward the publisher, from NACK turnaround
        self.requester = KeyframeRequester(settings.keyframe_min_interval,
                                           reason_intervals={"congestion": settings.keyframe_congestion_interval})
        self.jitter = JitterBuffer(spec.clock_rate, min_delay=settings.l3_min_delay,
                                   max_delay=settings.l3_max_delay, audio=not self.video,
                                   repair_quantile=settings.l3_repair_quantile, rtt_floor=settings.rtt,
                                   repair_rounds=settings.l3_repair_rounds, late_repair=settings.l3_late_repair,
                                   stream=stream_target)
        self.jitter.set_rtt(settings.rtt)
        self.l3_cache = self._new_l3_cache() if self.video else None
        self._l3_live = False  # the jitter buffer is fed (the track has L3 players)
        self._l3_seed = False  # ... and is to be seeded from the ring's GOP first
        self._l3_last: int | None = None  # last ext_seq of the last frame the fast table's L3 players got
        # gaps in the L3 timeline (first, last ext_seq, ascending) the fast table's L3 players skipped
        # since it was loaded: a pull drops them in each player's rewriter too (`PlayerTrack.skip_gaps`)
        self._l3_gaps: list[tuple[int, int]] = []
        self.players: list[PlayerTrack] = []
        self._loaded: list[PlayerTrack | None] = []  # the fast table, in slot order (None: an empty slot)
        self._empty_slots = 0  # ... how many: players that left since the last whole load (detach)
        self._table_dirty = False  # a player's place in the fast table may have changed: reload it
        self._pending: list[PlayerTrack] = []  # ... the players that joined, started or were measured since
        self._reload_all = False  # ... or more: a whole load (_defer_push)
        self._rtc: list[PlayerTrack] = []  # the RTC players, and those whose path is measured
        self._measured: list[PlayerTrack] = []
        self._measured_judges: list = []  # their FrameJudges
        self._rtc_python: list[PlayerTrack] = []  # the RTC players not in the fast table
        self._rtc_served: list[PlayerTrack] = []  # ... and those with a gate (served here when it is not set)
        self._gated: list[tuple[int, PlayerTrack]] = []  # (slot, player): in the table, their budget decides per frame
        self._l3_gated: list[tuple[int, PlayerTrack]] = []  # the same for L3 players
        self._judges: list = []  # the FrameJudges of _gated, and of _l3_gated, in the same order
        self._l3_judges: list = []
        self._l3_gated_pull_at = 0.0  # when the next slice of the gated L3 players is pulled (module rules)
        self._l3_gated_cursor = 0  # ... and where in their list it starts
        self._gated_pull_at = 0.0  # the same for the gated RTC players
        self._gated_cursor = 0
        self._frame: _FrameSeen | None = None  # the newest frame: the gated RTC players' frame accounting
        self._l3: list[PlayerTrack] = []  # the L3 players, and those of them not in the fast table
        self._l3_python: list[PlayerTrack] = []
        self.sender_report: SenderReport | None = None  # the publisher's last, and when it came
        self.sender_report_at = 0.0
        self.next_sender_reports: float | None = None
        self._sr_next = 0  # the next player of the SR round (an index into `players`)
        self._sr_round_start = 0.0
        self.counters = {"packets": 0, "bad_payload": 0, "nacks_sent": 0, "plis_sent": 0,
                         "retransmissions": 0, "frames_released": 0, "sender_reports": 0,
                         "keyframes_alone": 0}  # players shown a keyframe alone: its GOP did not fit the cache
        # (mode, seconds from a player's play request to its first keyframe packet sent), for metrics
        self.first_frames: deque[tuple[str, float]] = deque(maxlen=_FIRST_FRAME_SAMPLES)

    def _new_l3_cache(self) -> KeyframeCache:
        return KeyframeCache(max_packets=self.settings.keyframe_cache_packets,
                             max_bytes=self.settings.keyframe_cache_bytes)

    @property
    def addr(self) -> Addr | None:
        """The publisher's source address (the first RTP packet's binds it)."""
        return self.fast.bound

    @property
    def media_ssrc(self) -> int | None:
        return self.fast.ssrc

    @property
    def last_packet(self) -> float | None:
        return self.fast.last_arrival

    # ----- ingress -------------------------------------------------------------------------

    def on_rtp(self, now: float) -> list[Out]:
        """The packet the fast path just stored (`fast.last_ext`) and left to Python (module rules)."""
        fast = self.fast
        if self._table_dirty:  # players joined since the last call (_defer_push): they are served too
            self.catch_up()  # (the packets held before that, as ever, first)
            self._reload()
        ext, flags, prev_newest = fast.last_ext, fast.last_flags, fast.slow_prev
        rtc = self._rtc
        stored = fast.packet(ext) if flags & F_LATE or rtc or self._l3_live else None  # None: no player looks
        if flags & F_LATE and stored is None:
            return []  # older than the whole history (a wild jump back): nothing can use it
        self.catch_up()  # the packets held before this one go first
        keyframe_start = flags & _KEYFRAME_START == _KEYFRAME_START
        late = bool(flags & F_LATE)
        if prev_newest is not None and ext == prev_newest + 1 and not keyframe_start:
            self.nack.advance_to(ext)  # the next in sequence, not a keyframe: all the NACK generator needs
        else:
            if prev_newest is not None:
                self.nack.advance_to(prev_newest)
            if late:
                self.rtt.on_packet(ext, now)
            self.nack.on_packet(ext, now, is_keyframe=keyframe_start, is_retransmission=late)
            if keyframe_start:
                self.requester.on_keyframe(now)
                if self.video and (fast.gop_start is None or ext > fast.gop_start):
                    fast.gop_start = ext
        out: list[Out] = []
        if stored is None:
            packet = None
        else:
            packet = MediaPacket(ext, stored.timestamp, bool(flags & F_MARKER), bool(flags & F_KEYFRAME),
                                 bool(flags & F_FRAME_START), stored.arrival, stored.data, late,
                                 bool(flags & F_DROPPABLE))
        if self._l3_live:
            if self._l3_seed:
                self._seed_l3()
            self.jitter.push(packet, now)
        gated, steady, continuing = self._gated, False, False
        if gated:
            # the first packet of a frame, in order, new to every gated player: their budgets judge
            # it and set their gates, and the fast path carries it out too, without a pull (module
            # rules: lazy pulls). The next packet of the newest frame, in order (it came here because
            # the fast path hands every packet over: an L3 timeline, a reload pending): the gates
            # stand, and the fast path carries it out as it would have on its own. Anything else:
            # they are pulled (the others in the table Python skips: pulling 1000 of them for each
            # keyframe stalled forwarding ~4 ms) and served here.
            in_order = packet is not None and not late and not flags & F_DUPLICATE and prev_newest is not None \
                and ext == prev_newest + 1
            steady = in_order and new_frame_for_all(self._judges, packet.timestamp)
            if in_order and not steady and not keyframe_start:
                before = fast.packet(prev_newest)
                continuing = before is not None and before.timestamp == packet.timestamp
            if not steady and not continuing:
                self._pull(MODE_RTC)
            elif now >= self._gated_pull_at:
                self._gated_cursor = self._pull_slice(MODE_RTC, gated, self._gated_cursor)
                self._gated_pull_at = now + GATED_PULL_INTERVAL / GATED_PULL_SLICES
            if prev_newest is not None:
                self._account_frame(prev_newest, ext)
        gates_set = False
        if rtc and not flags & F_DUPLICATE:  # (a duplicate went to them as its first copy)
            pt = self.spec.payload_type
            if steady:
                # the gates of those whose decision changed (the others' stand; the fast path's
                # numbering is the player's: it closes over drops itself)
                for i in judge_frames(self._judges, packet.timestamp, len(packet.data), packet.keyframe,
                                      packet.droppable, now):
                    slot, p = gated[i]
                    self._pull(MODE_RTC, slot, slot + 1)  # a pull takes one run of sends or of drops
                    fast.set_gate(slot, GATE_OPEN if p.judge.frame_send else GATE_CLOSED, p.rewriter.steady_delta())
                gates_set = True
            elif continuing:
                gates_set = True  # (set at the frame's first packet)
            # the table's RTC players without a gate (theirs is a steady offset), and the gated ones
            # when their gates are set for this packet
            fast.forward(now, gates_set)
            for p in self._rtc_python if gates_set else self._rtc_served:
                if p.addr is None or (p.fast and (not p.gated or gates_set)):
                    continue
                if not p.started:
                    out += self._start(p, now)
                    if self.video or not p.started:
                        continue  # (audio goes live with this packet)
                if not p.admit(packet, now):
                    continue
                data_out = p.packet(packet, pt, self.spec.clock_rate)
                if data_out is not None:
                    p.sent(len(data_out), now)
                    out.append((0, data_out, p.addr))
        if self._measured:
            self._congestion_keyframes(now)
        self._repair_keyframes(now)
        for slot, p in () if gates_set else self._gated:  # this frame's decision, and the numbering after what was dropped
            delta = p.rewriter.steady_delta()
            if delta is None:
                self._table_dirty = True
            else:
                fast.set_gate(slot, GATE_OPEN if p.judge.frame_send else GATE_CLOSED, delta)
        if packet is not None and not late and (self._frame is None or packet.timestamp != self._frame.timestamp):
            self._frame = _FrameSeen(packet.timestamp, ext, ext - 1)  # a new frame, for _account_frame
        if self._table_dirty:
            self._push()
        else:
            self._set_hold()
        return out

    def _account_frame(self, upto: int, skip: int) -> None:
        """The gated RTC players on the track's newest frame: their budgets queue what that frame has
        carried so far (the ring's packets of it up to `upto`, but `skip`: the packet in hand, which
        `admit` counts if it goes here) beyond what they counted. A frame is judged at its first
        packet with the last frame's size, and the rest of it goes from the fast path, unseen here
        (`FrameJudge.account`)."""
        frame = self._frame
        if frame is None:
            return
        if upto > frame.scanned:
            packet = self.fast.packet
            ring = self.settings.retransmission_packets  # (what is older is no longer there)
            for e in range(max(frame.scanned + 1, frame.first, upto - ring + 1), upto + 1):
                s = packet(e)
                if s is not None and s.timestamp == frame.timestamp and e != skip:
                    frame.size += len(s.data)
                    frame.last_arrival = s.arrival
            frame.scanned = upto
        if not frame.size:
            return
        account_frames(self._judges, frame.timestamp, frame.size, frame.last_arrival)

    def catch_up(self) -> None:
        """The packets the fast path held for the L3 timeline (module rules) into the jitter buffer,
        each as on_rtp would have put it, with the `now` it came with: before the buffer or its
        counters are used."""
        held = self.fast.take_held()
        if not held:
            return
        self.nack.advance_to(held[-1][0].ext_seq)
        push = self.jitter.push
        for packet, read_at in held:
            push(packet, read_at)

    def _set_hold(self) -> None:
        """How many packets of the newest frame the fast path may keep for the L3 timeline (module
        rules): while every player is an L3 one and the jitter buffer holds that frame, its room."""
        fast = self.fast
        live = self._l3_live and not self._l3_seed and not self._rtc
        fast.hold = self.jitter.room(fast.newest_timestamp) if live else 0

    def _repair_keyframes(self, now: float) -> None:
        """A keyframe the jitter buffer or the NACK generator wants (a broken chain, a loss past
        repair) is asked for in the same call: its request timer runs from now, whatever the other
        tracks do."""
        if self.jitter.take_keyframe_needed() | self.nack.take_keyframe_needed():
            self.requester.request(now, "repair")

    def _congestion_keyframes(self, now: float) -> None:
        for _ in range(take_keyframes_needed(self._measured_judges)):
            self.requester.request(now, "congestion")

    def on_rtcp(self, data: bytes, now: float) -> None:
        """The publisher's RTCP: its sender reports are kept, to be translated for each player."""
        try:
            packets = parse_rtcp(data)
        except RtcpParseError:
            return
        for p in packets:
            if isinstance(p, SenderReport):
                self.sender_report, self.sender_report_at = p, now
                if self.next_sender_reports is None:
                    self.next_sender_reports = now

    def _sender_reports(self, now: float) -> list[Out]:
        """SR translation: the publisher's NTP/RTP time pair, carried to now, in each player's numbering.

        A round gives every player one SR per SENDER_REPORT_INTERVAL, SENDER_REPORT_SLICE players a
        tick, the ticks spread evenly over the interval: with a thousand players the node never
        stops forwarding for all of them at once. (A player that leaves mid-round shifts those
        after it: one may miss this round's SR or get two.)"""
        sr = self.sender_report
        players = self.players
        if self._sr_next == 0:
            self._sr_round_start = now
        first = self._sr_next
        batch = players[first:first + SENDER_REPORT_SLICE]
        self._sr_next = first + len(batch)
        if self._sr_next >= len(players):
            self._sr_next = 0
            self.next_sender_reports = max(self._sr_round_start + SENDER_REPORT_INTERVAL, now + 0.001)
        else:
            ticks = -(-len(players) // SENDER_REPORT_SLICE)
            self.next_sender_reports = now + SENDER_REPORT_INTERVAL / ticks
        slots = [p.slot for p in batch if p.fast]
        if slots:  # what the fast path sent them: the counts and numbering the SR carries
            self._pull(0, min(slots), max(slots) + 1)
        out: list[Out] = []
        elapsed = now - self.sender_report_at
        ntp = (sr.ntp_time + round(elapsed * 2**32)) & 0xFFFFFFFFFFFFFFFF
        rtp_in = (sr.rtp_time + round(elapsed * self.spec.clock_rate)) & 0xFFFFFFFF
        for p in batch:
            if p.addr is None or not p.started or p.timestamps is None:
                continue
            report = SenderReport(p.ssrc, ntp, p.timestamp(rtp_in, now, self.spec.clock_rate),
                                  p.packets_sent & 0xFFFFFFFF, p.octets_sent & 0xFFFFFFFF)
            p.report_clock.sent(ntp, now)
            out.append((0, serialize([report]), p.addr))
        self.counters["sender_reports"] += len(out)
        return out

    # ----- the fast table --------------------------------------------------------------------

    def _pull(self, mode: int = 0, first: int = 0, last: int | None = None) -> None:
        """Bring the players' numbering and counts up to what the fast path sent them (those of
        `mode`, 0: all; in table slots `first` to `last`) since the last pull: before Python
        touches them."""
        stats = self.fast.take_player_stats(mode, first, last)
        rate, gaps = self.spec.clock_rate, self._l3_gaps
        for slot, *done in stats:
            p = self._loaded[slot]
            if p is None:
                continue  # (an empty slot: its player left, pulled as it did)
            if gaps and p.l3 and (done[0] or done[6]):  # (sent to it, or dropped for it: a gated one)
                p.skip_gaps(gaps, max(done[3] if done[0] else -1, done[8] if done[6] else -1))
            p.absorb_fast(*done, rate)
        if gaps and mode in (0, MODE_L3) and first == 0 and last is None:
            gaps.clear()  # every L3 player in the table is caught up

    def _pull_slice(self, mode: int, gated: list[tuple[int, PlayerTrack]], cursor: int) -> int:
        """The next slice of `gated` (in slot order; 1/GATED_PULL_SLICES of them, from `cursor` on, round
        the list) pulled, with the players of `mode` between their slots; where the next one starts."""
        n = len(gated)
        start = cursor if cursor < n else 0
        end = min(start + -(-n // GATED_PULL_SLICES), n)
        self._pull(mode, gated[start][0], gated[end - 1][0] + 1)
        return end if end < n else 0

    def sync_drops(self) -> None:
        """Bring the players the fast path may have dropped packets for up to date (before the node's
        totals read their drops): the gated ones, whose closed gates drop; an ungated player's pull
        would change none of the totals, so a scrape pulls no silent player (module rules: lazy
        pulls). Each mode's gated players with the slots between them, of that mode, in one pull."""
        for mode, gated in ((MODE_RTC, self._gated), (MODE_L3, self._l3_gated)):
            if gated:
                self._pull(mode, gated[0][0], gated[-1][0] + 1)

    def sync(self, p: PlayerTrack) -> None:
        """Bring one player's numbering and counts up to what the fast path sent it: before Python
        reads them from outside the track (e.g. its receiver report's facts)."""
        if p.fast and 0 <= p.slot < len(self._loaded) and self._loaded[p.slot] is p:
            self._pull(0, p.slot, p.slot + 1)

    def _fast_mode(self, p: PlayerTrack) -> int:
        """The player's mode in the fast table, or 0 when Python must see each of its packets. A
        measured path's budget judges each frame here (RTC: at its first packet; L3: each released
        frame), and the fast path obeys (a gate)."""
        if not p.started or p.timestamps is None or p.timestamps_reset:
            return 0
        return MODE_L3 if p.l3 else MODE_RTC

    @staticmethod
    def _gate(p: PlayerTrack) -> int:
        """A player's gate in the table: its last decision, if its path is measured (GATE_NONE else)."""
        if p.path is None or not p.path.measured:
            return GATE_NONE
        return GATE_OPEN if p.judge.frame_send else GATE_CLOSED

    def _entry(self, p: PlayerTrack, gate: int) -> tuple | None:
        """A player's entry in the fast table, or None while it cannot be in it (not started, or its
        numbering not at a steady offset: Python serves it)."""
        mode = self._fast_mode(p)
        seq_delta = p.rewriter.steady_delta() if mode else None
        ts_delta = p.timestamps.steady_offset() if mode else None
        if seq_delta is None or ts_delta is None:
            return None
        return (p.addr, p.ssrc, self.spec.payload_type if p.payload_type is None else p.payload_type,
                seq_delta, ts_delta, mode, gate, p.rewriter.first_input)

    def _reload(self) -> None:
        """The reload `_defer_push` deferred: the players that joined, started or were measured since
        put in the table where they are (`_append`) when that is all there is to do, else a whole
        load."""
        pending, self._pending = self._pending, []
        if self._reload_all or not self._append(pending):
            self._push()
        self._reload_all = False

    def _append(self, new: list[PlayerTrack]) -> bool:
        """Players attached, started or measured since the table's last load, and nothing else
        changed: those not in the table go to its end, one in it whose path is measured now gets a
        gate where it is; the others' entries (and what the fast path did for them) stay, so
        nothing is pulled. False when a whole load is needed: one in the table some other way."""
        players = set(map(id, self.players))
        new = list({id(p): p for p in new}.values())
        for p in new:
            measured = p.path is not None and p.path.measured
            if id(p) not in players or (p.fast and (p.gated or not measured)):
                return False
            if p.fast and not (0 <= p.slot < len(self._loaded) and self._loaded[p.slot] is p):
                return False
        entries, loaded = [], self._loaded
        for p in new:
            gate = self._gate(p)
            if p.fast:  # in the table already, its path measured now
                self.fast.add_gate(p.slot, gate)
                p.gated = True
                (self._l3_gated if p.l3 else self._gated).append((p.slot, p))
                continue
            entry = self._entry(p, gate) if p.addr is not None else None
            if entry is None:
                continue  # served from Python for now (p.fast stays False)
            entries.append(entry)
            p.fast, p.gated, p.slot = True, gate != GATE_NONE, len(loaded)
            if p.gated:
                (self._l3_gated if p.l3 else self._gated).append((p.slot, p))
            loaded.append(p)
        self.fast.append_players(entries)
        for group in (self._gated, self._l3_gated):
            group.sort(key=lambda e: e[0])  # (slot order: pulls go by runs of slots)
        self._judges = [p.judge for _, p in self._gated]
        self._l3_judges = [p.judge for _, p in self._l3_gated]
        self._table_dirty = False
        self._lists()
        # as a load has it: every RTC player with an address in the table, and no L3 timeline
        self.fast.fast_ok = not self._l3_live and all(p.addr is None for p in self._rtc_python)
        self._set_hold()
        return True

    def _lists(self) -> None:
        """The players by what the track does for them, from their places in the table."""
        self._rtc = [p for p in self.players if not p.l3]
        self._measured = [p for p in self.players if p.path is not None and p.path.measured]
        self._measured_judges = [p.judge for p in self._measured]
        self._rtc_python = [p for p in self._rtc if not p.fast]
        self._rtc_served = [p for p in self._rtc if not p.fast or p.gated]
        self._l3 = [p for p in self.players if p.l3]
        self._l3_python = [p for p in self._l3 if not p.fast]

    def _push(self) -> None:
        """Load the fast table from the players (after Python has changed them)."""
        self._pull()  # what the fast path sent since the last load must not be lost
        self._table_dirty = False
        self._pending, self._reload_all = [], False
        self._gated = []
        self._l3_gated = []
        entries, loaded = [], []
        fast_ok = not self._l3_live
        measured = [p for p in self.players if p.l3 and p.path is not None and p.path.measured]
        # the gated L3 players last, in one run of slots: a release's pulls of them pass over no others
        # (an append, `_append`, puts one measured since where it is)
        for p in [p for p in self.players if not (p.l3 and p.path is not None and p.path.measured)] + measured:
            if p.addr is None:
                continue
            gate = self._gate(p)
            entry = self._entry(p, gate)
            if entry is None:
                p.fast = False
                if not p.l3:
                    fast_ok = False
                continue
            p.fast = True
            gated = gate != GATE_NONE
            if gated:
                (self._l3_gated if p.l3 else self._gated).append((len(loaded), p))
            entries.append(entry)
            p.gated = gated
            p.slot = len(loaded)
            loaded.append(p)
        self.fast.load_players(entries)
        self._judges = [p.judge for _, p in self._gated]
        self._l3_judges = [p.judge for _, p in self._l3_gated]
        self._loaded = loaded
        self._empty_slots = 0
        self._lists()
        self.fast.fast_ok = fast_ok
        self._set_hold()

    def close(self) -> None:
        """The track ends: its players keep what the fast path sent them (a next publisher's numbering
        continues after it)."""
        self.catch_up()
        self._pull()
        self.fast.load_players([])
        self.fast.hold = 0

    def refresh(self, path: PlayerPath | None = None) -> None:
        """A player's state changed outside the track: its `path` is measured now (its budget judges
        each frame from now on), or None: something else. At the next packet or timer
        (`_defer_push`): a player in the table gets a gate where it is, others a whole load."""
        if path is None:
            self._defer_push()
            return
        for p in self.players:
            if p.path is path:
                self._defer_push(p)

    # ----- players ---------------------------------------------------------------------------

    def attach(self, player: PlayerTrack) -> None:
        player.follow(self.epoch)
        self.players.append(player)
        if player.l3 and not self._l3_live:
            self._l3_live = self._l3_seed = True
            self._defer_push()  # (the L3 timeline starts: a whole load)
        else:
            self._defer_push(player)

    def _defer_push(self, player: PlayerTrack | None = None) -> None:
        """The table must be reloaded (module rules: deferred reloads): at the next packet or timer that
        comes to the track (`on_rtp`, `on_timer`; or a whole load before it), once for all the
        players that changed since. Until then the fast path hands every packet to Python (fast_ok
        off, nothing held), which reloads first; the table it has stays consistent with `_loaded`,
        so pulls are right meanwhile. `player`: the one that joined, started or was measured, when
        that is all that changed (`_append`); None: a whole load (a player left or moved, the L3
        timeline starts)."""
        if player is None:
            self._reload_all = True
        elif not self._reload_all:
            self._pending.append(player)
        self._table_dirty = True
        self.fast.fast_ok = False
        self.fast.hold = 0

    def detach(self, player: PlayerTrack) -> None:
        """The player leaves: its counts brought up to date now (it alone), then its slot in the table
        emptied where it is (`FastTrack.remove_player`: the others' entries and counts stay, nothing
        is pulled); once half of the table is empty slots, they go (`_compact`, nothing pulled
        either), if no whole load, which leaves them out, is due. A whole load, deferred
        (`_defer_push`), when the L3 timeline stops with it."""
        self.sync(player)
        if player in self.players:
            self.players.remove(player)
        in_table = player.fast and 0 <= player.slot < len(self._loaded) and self._loaded[player.slot] is player
        player.fast = False
        if self._l3_live and not any(p.l3 for p in self.players):
            self.catch_up()
            self._l3_live = self._l3_seed = False
            self._l3_last = None
            self.jitter.reset()
            if self.l3_cache is not None:
                self.l3_cache = self._new_l3_cache()
            self._defer_push()
            return
        if in_table:
            self.fast.remove_player(player.slot)
            self._loaded[player.slot] = None
            self._empty_slots += 1
            if self._empty_slots * 2 > len(self._loaded) and not self._reload_all:
                self._compact()
        for group in (self._gated, self._l3_gated):
            if player.gated and any(p is player for _, p in group):
                group[:] = [e for e in group if e[1] is not player]
        self._judges = [p.judge for _, p in self._gated]
        self._l3_judges = [p.judge for _, p in self._l3_gated]
        for group in (self._rtc, self._measured, self._rtc_python, self._rtc_served, self._l3, self._l3_python):
            if player in group:
                group.remove(player)
        self._measured_judges = [p.judge for p in self._measured]
        if not self._table_dirty:  # (else the reload due sets them)
            self.fast.fast_ok = not self._l3_live and all(p.addr is None for p in self._rtc_python)
            self._set_hold()

    def _compact(self) -> None:
        """The fast table's empty slots out of it (`FastTrack.compact`): the others move down, their
        entries and what the fast path did for them since their last pull with them, so nothing is
        pulled; their slots follow."""
        loaded = [self._loaded[slot] for slot in self.fast.compact()]
        if len(loaded) != len(self._loaded) - self._empty_slots or any(p is None for p in loaded):
            raise RuntimeError("the fast table's empty slots are not the track's")  # (a broken invariant)
        for slot, p in enumerate(loaded):
            p.slot = slot
        self._loaded = loaded
        self._empty_slots = 0
        for group in (self._gated, self._l3_gated):
            group[:] = [(p.slot, p) for _, p in group]

    def _seed_l3(self) -> None:
        """The L3 timeline starts: the ring's GOP into the jitter buffer, at the times it arrived."""
        if not self._l3_seed:
            return
        self._l3_seed = False
        for s in self.fast.gop(self.settings.keyframe_cache_packets, self.settings.keyframe_cache_bytes):
            self.jitter.push(MediaPacket(s.ext_seq, s.timestamp, bool(s.flags & F_MARKER), bool(s.flags & F_KEYFRAME),
                                         bool(s.flags & F_FRAME_START), s.arrival, s.data, bool(s.flags & F_LATE),
                                         bool(s.flags & F_DROPPABLE)), s.arrival)

    def _start(self, p: PlayerTrack, now: float) -> list[Out]:
        """A player's first frame: its mode's cached GOP at once (or, for audio, simply go live).

        A GOP longer than the cache holds: the keyframe alone at once (a first picture), nothing more
        until the next keyframe, which is asked for now; that one starts the player. Called again
        for a player not started (each packet, each release) while it waits."""
        if not self.video:
            p.started = True
            self._table_dirty = True
            return []
        settings = self.settings
        if p.l3:
            if self._l3_seed:
                self._seed_l3()
                self._release(now, self._l3_cache_only)
            cache = self.l3_cache
            whole = cache.complete
            # (no keyframe cached: the ring's alone if its GOP was too long to seed the timeline)
            packets = cache.snapshot() if cache.has_keyframe else self._keyframe_alone(too_long=True)
        else:
            packets = self.fast.gop(settings.keyframe_cache_packets, settings.keyframe_cache_bytes)
            whole = bool(packets)
            if not whole:
                packets = self._keyframe_alone(too_long=False)
        if not whole:
            self.requester.request(now, "player_start")
            if not packets or p.preview_ts == packets[0].timestamp:
                return []  # nothing to show yet, or shown: it waits for the next keyframe
            p.preview_ts = packets[0].timestamp
            self.counters["keyframes_alone"] += 1
        else:
            p.started = True
            self._table_dirty = True
        out = []
        for packet in packets:
            p.skip_to(packet.ext_seq)
            data = p.packet(packet, self.spec.payload_type, self.spec.clock_rate)
            if data is not None:
                out.append((0, data, p.addr))
        if out and p.first_sent_at is None:
            p.first_sent_at = now  # (the GOP is not in its path's send rate: noted, left alone)
        if out and p.play_at is not None:
            self.first_frames.append(("l3" if p.l3 else "rtc", now - p.play_at))
            p.play_at = None
        return out

    def _keyframe_alone(self, *, too_long: bool) -> list:
        """The ring's newest keyframe's own packets ([] if it has none); with `too_long`, only when
        its GOP has more packets than the cache holds."""
        fast = self.fast
        start, newest = fast.gop_start, fast.newest
        if start is None or newest is None:
            return []
        if too_long and newest - start < min(self.settings.keyframe_cache_packets, self.settings.retransmission_packets):
            return []
        first = fast.packet(start)
        if first is None:
            return []
        out, total = [first], len(first.data)
        ext = start + 1
        while ext <= newest and (s := fast.packet(ext)) is not None and s.timestamp == first.timestamp:
            total += len(s.data)
            if total > self.settings.keyframe_cache_bytes:
                return []
            out.append(s)
            ext += 1
        return out

    def take_first_frame_samples(self) -> list[tuple[str, float]]:
        samples = list(self.first_frames)
        self.first_frames.clear()
        return samples

    def start_player(self, p: PlayerTrack, now: float) -> list[Out]:
        """Called when a player's address becomes known (or at once when it was given), or changes (a
        player that has started: the fast table sends to its new address from the next packet on)."""
        if p.started:
            self._defer_push()
            return []
        self.catch_up()
        out = self._start(p, now)
        if self._table_dirty:
            self._defer_push(p)  # (the cached GOP went from here; the table has it from the next packet on)
        else:
            self._set_hold()
        return out

    def on_player_nack(self, p: PlayerTrack, lost: list[int], now: float) -> list[Out]:
        self.sync(p)  # its numbering, up to what the fast path sent it (it alone: a NACK is one player's)
        out = []
        rtt = self.settings.rtt
        for seq16 in lost:
            ext = p.rewriter.original(seq16)
            stored = None if ext is None else self.fast.packet(ext, now)
            if stored is None:
                continue
            last = self._resent.get((p.ssrc, ext))
            if last is not None and now - last < (p.rtt or rtt):
                continue
            if not p.admit_resend(len(stored.data), now):
                continue
            seq = p.rewriter.rewrite(ext)  # the same number it had: the numbering does not move
            if seq is None:
                continue
            self._resent[(p.ssrc, ext)] = now
            buf = bytearray(stored.data)
            h = parse_rtp(buf)
            ts = p.timestamp(h.timestamp, now, self.spec.clock_rate)  # the offset is fixed: the same as first sent
            rewrite_rtp(buf, p.ssrc, seq, ts, h.payload_type if p.payload_type is None else p.payload_type)
            out.append((0, bytes(buf), p.addr))
            p.retransmissions += 1
            self.counters["retransmissions"] += 1
        if len(self._resent) > self._resent_limit:  # forget what is past the history's age (amortised)
            horizon = now - self.settings.retransmission_age
            self._resent = {e: t for e, t in self._resent.items() if t >= horizon}
            self._resent_limit = max(4 * self.settings.retransmission_packets, 2 * len(self._resent))
        return out

    # ----- timers ----------------------------------------------------------------------------

    def next_timer(self) -> float | None:
        due = self.jitter.next_timer()
        # a keyframe request waits for a publisher to ask (its first packet binds it)
        request = self.requester.next_timer() if self.addr is not None and self.media_ssrc is not None else None
        for t in (self.nack.next_timer(), request, self.next_sender_reports):
            if t is not None and (due is None or t < due):
                due = t
        return due

    def _l3_cache_only(self, frame, now: float, more: bool = False) -> list[Out]:
        return []

    def _l3_send(self, frame, now: float, more: bool = False) -> list[Out]:
        """A released frame to every L3 player: the fast table's in one fan-out (after a gap in the
        timeline, the fast path closes it in their numbering and the gap is logged for their
        rewriters), the others here; every one here for the timeline's first frame. With `more`
        frames released with it (a node that fell behind releases several at once), the fan-out
        sends its datagrams with theirs: each player's together."""
        out: list[Out] = []
        pt = self.spec.payload_type
        last = self._l3_last
        fast = last is not None
        if fast:
            gap = frame.first_ext_seq - last - 1
            skip = gap if 0 < gap < SKIP_LIMIT else 0  # as PlayerTrack.skip_to: a longer jump stays a gap
            gated = self._l3_gated
            if gated:  # their budgets judge this frame; the fast path carries out what they decide
                if gap < 0:  # (module rules: lazy pulls)
                    self._pull(MODE_L3, gated[0][0], gated[-1][0] + 1)
                elif now >= self._l3_gated_pull_at:
                    self._l3_gated_cursor = self._pull_slice(MODE_L3, gated, self._l3_gated_cursor)
                    self._l3_gated_pull_at = now + GATED_PULL_INTERVAL / GATED_PULL_SLICES
                keyframe, size, droppable = frame.keyframe, frame_size(frame), frame_droppable(frame)
                for i in decide_frames(self._l3_judges, keyframe, size, droppable, now):  # (whose changed)
                    slot, p = gated[i]
                    self._pull(MODE_L3, slot, slot + 1)  # a pull takes one run of sends or of drops
                    self.fast.set_gate(slot, GATE_OPEN if p.judge.frame_send else GATE_CLOSED)
            if skip:
                if len(self._l3_gaps) >= _L3_GAPS:
                    self._pull(MODE_L3)  # catches every L3 player up: the log starts again
                self._l3_gaps.append((last + 1, frame.first_ext_seq - 1))
            self.fast.send_frame(frame.packets, now, skip, not more)
        else:
            self._pull(MODE_L3)
        for p in self._l3_python if fast else self._l3:
            if p.addr is None:
                continue
            if not p.started:
                out += self._start(p, now)
                if self.video or not p.started:
                    continue  # (audio goes live with this frame)
            if not p.admit_frame(frame, now):
                continue  # the next frame it gets closes the gap in its numbering
            p.skip_to(frame.first_ext_seq)
            for packet in frame.packets:
                data = p.packet(packet, pt, self.spec.clock_rate)
                if data is not None:
                    p.sent(len(data), now)
                    out.append((0, data, p.addr))
        if not fast:
            self._push()
        return out

    def _release(self, now: float, send) -> list[Out]:
        out: list[Out] = []
        released_now = self.jitter.poll(now)
        for i, released in enumerate(released_now):
            frame = released.frame
            self.counters["frames_released"] += 1
            if self.l3_cache is not None:
                push = self.l3_cache.push
                for packet in frame.packets:
                    push(packet)
            out += send(frame, now, i < len(released_now) - 1)
            self._l3_last = frame.last_ext_seq
        return out

    def on_timer(self, now: float) -> list[Out]:
        self.catch_up()
        if self._table_dirty:  # (_defer_push)
            self._reload()
        if self._l3_seed:
            self._seed_l3()
        out = self._release(now, self._l3_send)
        if self._measured:
            self._congestion_keyframes(now)
        if self.next_sender_reports is not None and now >= self.next_sender_reports:
            out += self._sender_reports(now)
        # every timer is consumed, with or without a publisher to send to, so none stays due
        nack, retry = self.nack, self.rtt.retry_interval
        nack.set_jitter(self.fast.packet_jitter)  # every packet's, L3 timeline or not
        lost = nack.poll(now, retry)
        self.jitter.set_rtt(retry, nack.reorder_delay)
        self._repair_keyframes(now)  # (after the releases and the NACK poll, which may want one)
        if self._table_dirty:
            self._push()
        else:
            self._set_hold()
        if self.addr is None or self.media_ssrc is None:
            return out  # nothing has arrived yet: nothing to repair, no one to ask (a request waits)
        send_pli = self.requester.poll(now)
        if lost:
            self.counters["nacks_sent"] += 1
            self.rtt.on_nack(lost, now)
            nack = Nack(self.node_ssrc, self.media_ssrc, [e & 0xFFFF for e in sorted(set(lost))])
            out.append((self.track_id, serialize([nack]), self.addr))
        if send_pli:
            self.counters["plis_sent"] += 1
            out.append((self.track_id, serialize([self.requester.packet(self.node_ssrc, self.media_ssrc)]),
                        self.addr))
        return out
