"""The L3 jitter buffer: repair and smooth one publisher track once, for all its L3 players.

A sans-IO core (STYLE.md): every input carries `now` (monotonic seconds); it never reads a clock.
Inputs: `push(packet, now)`, `set_rtt(rtt, wait)`. Outputs: `poll(now)` (frames due), `next_timer()`,
`take_keyframe_needed()`, `take_delay_samples()`, `counters`.

Rules (DESIGN.md §2, "The L3 timeline"):

1. Frames. Packets are grouped by RTP timestamp into frames. Frames occupy disjoint runs of
   `ext_seq`, so they are ordered by sequence number: the order the publisher encoded and sent
   them, which is timestamp order for every codec without B-frames (all real-time ones).
   A frame is complete when it has its frame_start packet, its marker packet and every ext_seq
   between them. Audio mode: every packet is a complete frame whatever its flags.
2. Push. A packet whose ext_seq is already held is a duplicate (counted, ignored). A packet of a
   frame already released or dropped (its ext_seq is at or below the highest one finished, or its
   timestamp is one of the last `_FINISHED_MEMORY` finished frames) is late (counted, ignored);
   so is a packet that arrives after its frame's deadline (its release time, or with late repair
   the later deadline of rule 6) when poll has not run yet, so that what is released does not
   depend on when the caller polls. ext_seq must only grow
   along the stream: a publisher that restarts in a new sequence space needs a new buffer.
3. Jitter. One sample per frame: the first packet to arrive of each frame, unless it is a
   retransmission. RFC 3550 §6.4.1 in seconds: D = (a_j - a_i) - (ts_j - ts_i) / clock_rate,
   J += (|D| - J) / 16. A |D| of `_DISCONTINUITY` (1 s) or more is a restart or timestamp jump,
   not jitter: it only moves the reference (`interarrival_jitter`, which the FastTrack also uses
   over every packet, for the NACK reorder delay).
4. Target delay (the track's own). desired = clamp(jitter_factor * J + repair + margin, min_delay, max_delay),
   margin 10 ms, where repair = wait + repair_rounds * rtt with rtt_allowance (else 0), from
   `set_rtt(rtt, wait)`: rtt is how long a NACK's answer may take (never below `rtt_floor`, 0 by
   default), wait how long a gap waits before its first NACK; both 0 until `set_rtt`. With
   repair_rounds 2 a packet whose retransmission is lost too still makes it. The target follows a rise at
   once; it falls towards a lower desired value by at most `decay` (20 ms per second of `now`).
   It is recomputed whenever a new frame is first seen.
   With `repair_quantile` q (None: off), the target also covers the repair delay the stream has
   shown. A frame's *needed delay* is the last time one of its packets arrived for the first
   time (a reordered one, a retransmission, also one that came after the frame was released or
   dropped: duplicates do not count) minus its first packet's arrival: the delay it would have
   needed to be complete. It is taken `max_delay` after the first arrival (later packets could
   never be waited for). Once `repair_min_frames` frames have one, desired is at least the
   q-quantile of the last `repair_window` frames' needed delays + margin (within the bounds): the
   target then leaves room for the NACK round trips (and retries) this path really takes, not
   for a guess, and a frame falls outside it only about 1 - q of the time.
   The stream's target (DESIGN §2: a frame is released at its first packet's arrival plus "the
   stream's target delay"): the buffers of one stream's tracks share a `StreamTarget`, and each
   releases with the highest of their own targets, as each last stated it (when it last saw a new
   frame) within the last `StreamTarget.memory` seconds. So audio, whose own target is short (one
   packet a frame, nothing to wait for), is held as long as the video it goes with, and frames
   captured together leave together: an L3 player gets them in lip sync, whatever its own
   buffering. A fall of the stream's target (a track that stopped is forgotten) follows the same
   `decay` as the own target's.
5. Release time, fixed when a frame is first seen: first_arrival + target. A frame first seen
   after a later one (a whole frame reordered, or lost and retransmitted), or whose first packet
   is a retransmission, is released no later than its *slot*: the release time of the frame
   before it in sequence order (the last finished one if none is pending) plus the RTP
   timestamp step between them (when that step is between 0 and `_DISCONTINUITY`): the time it
   would have had had it come on time (its first arrival was the lost original's, or a reorder).
   A repaired frame then goes where it belongs, not with the next frame (a burst of lost audio
   went out in one bunch, up to a burst's length after the video captured with it). The release
   time is then clamped between the release times of its neighbours in sequence order, so
   release times never decrease along the stream. (Because the target falls slower than time
   passes, frames seen in order need no clamp.) A frame is never due before it was first seen:
   one whose slot is past (and so its next frame's release time, if that is earlier) is due at
   its first arrival, at once. All L3 players read this one timeline: that is the sync.
6. Poll. `poll(now)` takes the frames due (release time <= now) in order. Audio: a complete frame
   is released, an incomplete one dropped alone. Video, per due frame:
   - complete, but not starting where the previous finished frame ended (a whole frame lost
     in between): the gap counts as one dropped incomplete frame and breaks the chain, unless
     this frame is a keyframe; then the cases below apply;
   - incomplete: dropped (frames_dropped_incomplete), the chain is broken;
   - complete keyframe: released, the chain is whole again;
   - complete, chain broken: dropped (frames_dropped_dependency);
   - complete, chain whole: released.
   The chain starts broken (a decoder needs a keyframe first). A dropped frame raises
   keyframe_needed once per broken chain (`take_keyframe_needed()`); repeating the request is
   the KeyframeRequester's job (`waiting_for_keyframe` says the chain is still broken).
   Late repair (`late_repair`, video only; the node sets it): a due frame that is not ready
   (incomplete, or whole after a hole) and could still go (the chain is whole, or it is or may be
   a keyframe) waits for its repair until its *deadline*: its first packet's arrival +
   max_delay, no later than the next frame's deadline (so a whole frame repaired late and
   slotted in before a waiting one waits no longer than it). The frames after it wait behind it.
   When it becomes ready (`next_timer` says so at once: its release time, past) it goes, with
   the frames due after it, in one poll; its `Released.release_time` is when it went
   (`frames_repaired_late`). At its deadline the cases above apply. The target covers the repair
   a stream usually needs (rule 4); late repair spares the rare one that needs more a keyframe
   round trip (some 9 frames lost to their dependency), at the cost of up to max_delay - target
   of delay for the frames it holds, still the same instant for every player. While a frame
   waits, `room` is 0 for it: the packet that makes it ready must come here.
   A frame is never released before an earlier one, and never held past its deadline (its
   release time without late repair): an earlier frame's comes first, and there it is released
   or dropped.
7. Memory. At most `max_frames` pending frames and `max_packets` pending packets: past either,
   the oldest pending frame is dropped (frames_dropped_overflow) and the chain is broken. The
   needed-delay bookkeeping holds the frames first seen in the last `max_delay` seconds (at
   most `max_frames` of them) and the last `repair_window` values.
   `delay_samples` keeps the last `_DELAY_SAMPLES` release delays (release_time - first_arrival)
   for the L3 buffer-delay histogram; `take_delay_samples()` drains them.
8. Counters: packets, duplicates, packets_late, frames_released, frames_dropped_incomplete,
   frames_dropped_dependency, frames_dropped_overflow, keyframes_needed, frames_repaired_late.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from dataclasses import dataclass

from sfu.media.packet import Frame, MediaPacket

_FINISHED_MEMORY = 128  # timestamps of finished frames remembered, to call their packets late
_DISCONTINUITY = 1.0  # seconds of transit change taken as a discontinuity, not jitter
_DELAY_SAMPLES = 4096


class _Lateness:
    """A recent frame's needed-delay bookkeeping: its first arrival, the latest first arrival of one of
    its packets, and the ext_seqs seen (so a duplicate of a finished frame's packet is no news)."""

    __slots__ = ("first", "latest", "seqs")

    def __init__(self, first: float) -> None:
        self.first = self.latest = first
        self.seqs: set[int] = set()


class StreamTarget:
    """The target delay one stream's jitter buffers share (rule 4): the highest of their own targets,
    each as its buffer last stated it, forgotten `memory` seconds after that (a track that stopped
    sending does not hold the others)."""

    def __init__(self, memory: float = 2.0) -> None:
        self.memory = memory
        self._own: dict[int, tuple[float, float]] = {}  # member -> (its own target, when stated)

    def state(self, member: int, target: float, now: float) -> float:
        """`member`'s own target at `now`; returns the stream's."""
        self._own[member] = (target, now)
        best = target
        for m, (t, at) in list(self._own.items()):
            if now - at > self.memory:
                del self._own[m]
            elif t > best:
                best = t
        return best

    def leave(self, member: int) -> None:
        self._own.pop(member, None)


@dataclass(slots=True, frozen=True)
class Released:
    frame: Frame
    release_time: float


class _Pending:
    __slots__ = ("timestamp", "order", "packets", "start", "end", "keyframe", "first_arrival", "release_time",
                 "deadline", "waited")

    def __init__(self, packet: MediaPacket, release_time: float, deadline: float) -> None:
        self.timestamp = packet.timestamp
        self.order = packet.ext_seq  # sort key among pending frames, fixed at first sight
        self.packets: dict[int, MediaPacket] = {}
        self.start: int | None = None  # ext_seq of the frame_start packet
        self.end: int | None = None  # ext_seq of the marker packet
        self.keyframe = False
        self.first_arrival = packet.arrival
        self.release_time = release_time
        self.deadline = deadline  # the last moment it may still go (rule 6, late repair)
        self.waited = False  # it was due and waited for late repair

    def add(self, packet: MediaPacket, audio: bool) -> None:
        seq = packet.ext_seq
        self.packets[seq] = packet
        if packet.frame_start or audio:
            self.start = seq if self.start is None else min(self.start, seq)
        if packet.marker or audio:
            self.end = seq if self.end is None else max(self.end, seq)
        self.keyframe = self.keyframe or packet.keyframe

    def complete(self) -> bool:
        start, end, packets = self.start, self.end, self.packets
        if start is None or end is None or end < start:
            return False
        span = end - start + 1
        if len(packets) <= span:  # as many ext_seqs as the span holds: complete if none is outside it
            return len(packets) == span and min(packets) == start and max(packets) == end
        return all(s in packets for s in range(start, end + 1))

    def to_frame(self) -> Frame:
        seqs = sorted(self.packets)
        return Frame(self.timestamp, seqs[0], seqs[-1], [self.packets[s] for s in seqs],
                     self.keyframe, self.first_arrival)


def _order_of(frame: _Pending) -> int:
    return frame.order


def interarrival_jitter(estimate: float, last: tuple[float, int] | None, arrival: float, timestamp: int,
                       clock_rate: int) -> float:
    """RFC 3550 §6.4.1 in seconds: the estimate after a packet (`arrival`, 32-bit `timestamp`) that
    follows `last` (arrival, timestamp; None: the first). A jump of `_DISCONTINUITY` or more is a
    restart, not jitter: the estimate stays."""
    if last is None:
        return estimate
    dts = (timestamp - last[1]) & 0xFFFFFFFF
    if dts >= 0x80000000:
        dts -= 0x100000000
    d = abs((arrival - last[0]) - dts / clock_rate)
    return estimate + (d - estimate) / 16 if d < _DISCONTINUITY else estimate


class JitterBuffer:
    def __init__(self, clock_rate: int, *, min_delay: float = 0.02, max_delay: float = 0.5,
                 rtt_allowance: bool = True, jitter_factor: float = 3.0, audio: bool = False,
                 margin: float = 0.010, decay: float = 0.020,
                 max_frames: int = 256, max_packets: int = 4096, repair_quantile: float | None = None,
                 repair_window: int = 300, repair_min_frames: int = 30, rtt_floor: float = 0.0,
                 repair_rounds: int = 1, late_repair: bool = False, stream: StreamTarget | None = None) -> None:
        if clock_rate <= 0 or not 0 <= min_delay <= max_delay:
            raise ValueError("need clock_rate > 0 and 0 <= min_delay <= max_delay")
        if repair_quantile is not None and not 0 < repair_quantile <= 1:
            raise ValueError("repair_quantile must be in (0, 1] or None")
        if repair_window < 1 or repair_min_frames < 1 or repair_rounds < 0:
            raise ValueError("need repair_window >= 1, repair_min_frames >= 1 and repair_rounds >= 0")
        self.clock_rate = clock_rate
        self.min_delay, self.max_delay = min_delay, max_delay
        self.rtt_allowance, self.jitter_factor = rtt_allowance, jitter_factor
        self.audio, self.margin, self.decay = audio, margin, decay
        self.max_frames, self.max_packets = max_frames, max_packets
        self.jitter = 0.0  # seconds, RFC 3550 estimate
        self.rtt = 0.0
        self.wait = 0.0
        self.rtt_floor = rtt_floor
        self.repair_rounds = repair_rounds
        self.late_repair = late_repair and not audio
        self._held: _Pending | None = None  # the due frame poll last stopped at, waiting for its repair
        self.repair_quantile = repair_quantile
        self.repair_min_frames = repair_min_frames
        self._lateness: dict[int, _Lateness] = {}  # by timestamp, frames first seen within max_delay
        self._lateness_order: deque[int] = deque()  # their timestamps, by first arrival
        self._lateness_due = math.inf  # when the oldest of them is committed (its first + max_delay)
        self.needed_delays: deque[float] = deque(maxlen=repair_window)
        self._needed_sorted: list[float] = []  # the same values, ascending: the quantile without a sort
        self._target: float | None = None
        self._target_at = 0.0  # `now` of the last target update
        self.stream = stream  # shared with the stream's other tracks (rule 4), or None
        self._release_target: float | None = None  # what new frames get: the stream's (or the own) target
        self._last_sample: tuple[float, int] | None = None  # (arrival, timestamp)
        self._frames: dict[int, _Pending] = {}  # pending, by RTP timestamp
        self._order: list[_Pending] = []  # the same, by sequence order
        self._packet_count = 0
        self._floor: int | None = None  # highest ext_seq of a finished frame
        self._expect: int | None = None  # ext_seq the next frame must start at, if known
        # the last _FINISHED_MEMORY finished frames' timestamps, oldest first, and the same as a set: one
        # is never there twice (its packets are late while it is, so no frame of it can finish again)
        self._finished: deque[int] = deque()
        self._finished_set: set[int] = set()
        self._last_release = float("-inf")
        self._last_ts: int | None = None  # the RTP timestamp of the frame finished last (the latest release)
        self._waiting = not audio  # the dependency chain is broken until a keyframe
        self._requested = False  # keyframe_needed already raised for this break
        self._keyframe_needed = False
        self.delay_samples: deque[float] = deque(maxlen=_DELAY_SAMPLES)
        self.counters: dict[str, int] = dict.fromkeys((
            "packets", "duplicates", "packets_late", "frames_released", "frames_dropped_incomplete",
            "frames_dropped_dependency", "frames_dropped_overflow", "keyframes_needed", "frames_repaired_late"), 0)

    # -- inputs -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every frame and estimate, as if new (the counters, delay samples, RTT and NACK wait
        stay): for a track whose L3 timeline stops when its last L3 player leaves."""
        counters, samples, rtt, wait = self.counters, self.delay_samples, self.rtt, self.wait
        self.__init__(self.clock_rate, min_delay=self.min_delay, max_delay=self.max_delay,
                      rtt_allowance=self.rtt_allowance, jitter_factor=self.jitter_factor, audio=self.audio,
                      margin=self.margin, decay=self.decay, max_frames=self.max_frames,
                      max_packets=self.max_packets, repair_quantile=self.repair_quantile,
                      repair_window=self.needed_delays.maxlen, repair_min_frames=self.repair_min_frames,
                      rtt_floor=self.rtt_floor, repair_rounds=self.repair_rounds, late_repair=self.late_repair,
                      stream=self.stream)
        if self.stream is not None:
            self.stream.leave(id(self))
        self.counters, self.delay_samples, self.rtt, self.wait = counters, samples, rtt, wait

    def set_rtt(self, rtt: float, wait: float = 0.0) -> None:
        self.rtt = max(0.0, rtt, self.rtt_floor)
        self.wait = max(0.0, wait)

    def push(self, packet: MediaPacket, now: float) -> None:
        self.counters["packets"] += 1
        seq, ts = packet.ext_seq, packet.timestamp
        if self.repair_quantile is not None:
            self._note_lateness(seq, ts, now)
        frame = self._frames.get(ts)
        if frame is not None:
            if seq in frame.packets:
                self.counters["duplicates"] += 1
                return
            if frame.deadline < now:  # past its last moment, whether or not poll has run
                self.counters["packets_late"] += 1
                return
        elif (self._floor is not None and seq <= self._floor) or ts in self._finished_set:
            self.counters["packets_late"] += 1
            return
        else:
            frame = self._new_frame(packet, now)
        frame.add(packet, self.audio)
        self._packet_count += 1
        while len(self._order) > self.max_frames or self._packet_count > self.max_packets:
            dropped = self._order.pop(0)
            del self._frames[dropped.timestamp]
            self._packet_count -= len(dropped.packets)
            self.counters["frames_dropped_overflow"] += 1
            self._break_chain(request=True)
            self._finish(dropped)

    def _new_frame(self, packet: MediaPacket, now: float) -> _Pending:
        if not packet.is_retransmission:
            self._sample_jitter(packet)
        target = self._update_target(now)
        order = self._order
        # in order (the usual case) it goes last; else find its place by sequence
        i = len(order) if not order or packet.ext_seq > order[-1].order else \
            bisect_right(order, packet.ext_seq, key=_order_of)
        release = packet.arrival + target
        if i < len(order) or packet.is_retransmission:  # rule 5: no later than its slot on the timeline
            prev_release, prev_ts = (order[i - 1].release_time, order[i - 1].timestamp) if i else \
                (self._last_release, self._last_ts)
            if prev_ts is not None:
                step = ((packet.timestamp - prev_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
                if 0 < step < self.clock_rate * _DISCONTINUITY:
                    release = min(release, prev_release + step / self.clock_rate)
        if i < len(order):
            release = min(release, order[i].release_time)
        release = max(release, order[i - 1].release_time if i else self._last_release, packet.arrival)
        deadline = release
        if self.late_repair:  # rule 6: no later than the frame after it may wait
            deadline = max(release, min(packet.arrival + self.max_delay,
                                        self._order[i].deadline if i < len(self._order) else math.inf))
        frame = _Pending(packet, release, deadline)
        self._frames[packet.timestamp] = frame
        self._order.insert(i, frame)
        return frame

    def _sample_jitter(self, packet: MediaPacket) -> None:
        last, self._last_sample = self._last_sample, (packet.arrival, packet.timestamp)
        self.jitter = interarrival_jitter(self.jitter, last, packet.arrival, packet.timestamp, self.clock_rate)

    def _note_lateness(self, seq: int, ts: int, now: float) -> None:
        """Rule 4's needed delay: commit the frames first seen max_delay ago, then note this packet."""
        order, lateness = self._lateness_order, self._lateness
        if now >= self._lateness_due or len(order) > self.max_frames:
            while order and (lateness[order[0]].first + self.max_delay <= now or len(order) > self.max_frames):
                done = lateness.pop(order.popleft())
                self._commit_needed(done.latest - done.first)
            self._lateness_due = lateness[order[0]].first + self.max_delay if order else math.inf
        entry = lateness.get(ts)
        if entry is None:
            if (self._floor is not None and seq <= self._floor) or ts in self._finished_set:
                return  # a frame finished and committed (or never seen): nothing to learn
            entry = lateness[ts] = _Lateness(now)
            if not order:
                self._lateness_due = now + self.max_delay
            order.append(ts)
        if seq not in entry.seqs:
            entry.seqs.add(seq)
            entry.latest = now

    def _commit_needed(self, delay: float) -> None:
        needed, ordered = self.needed_delays, self._needed_sorted
        if len(needed) == needed.maxlen:  # the oldest value leaves the window
            del ordered[bisect_left(ordered, needed[0])]
        needed.append(delay)
        insort(ordered, delay)

    @property
    def repair_delay(self) -> float | None:
        """The repair_quantile of the recent frames' needed delays; None until repair_min_frames have one."""
        ordered = self._needed_sorted
        if self.repair_quantile is None or len(ordered) < self.repair_min_frames:
            return None
        return ordered[max(0, math.ceil(self.repair_quantile * len(ordered)) - 1)]

    def _desired(self) -> float:
        repair = self.wait + self.repair_rounds * self.rtt if self.rtt_allowance else 0.0
        desired = self.jitter_factor * self.jitter + repair + self.margin
        repair = self.repair_delay
        if repair is not None:
            desired = max(desired, repair + self.margin)
        return min(max(desired, self.min_delay), self.max_delay)

    def _update_target(self, now: float) -> float:
        """The own target afresh, and the one a new frame gets (the stream's: rule 4)."""
        desired = self._desired()
        last_at, self._target_at = self._target_at, now
        if self._target is None or desired >= self._target:
            self._target = desired
        else:
            self._target = max(desired, self._target - self.decay * max(0.0, now - last_at))
        if self.stream is None:
            return self._target
        shared = self.stream.state(id(self), self._target, now)
        last = self._release_target
        if last is not None and shared < last:
            shared = max(shared, last - self.decay * max(0.0, now - last_at))
        self._release_target = shared
        return shared

    # -- outputs ------------------------------------------------------------------------------

    @property
    def target_delay(self) -> float:
        """The track's own target delay as last computed (when the newest frame was first seen)."""
        return self._desired() if self._target is None else self._target

    @property
    def release_target(self) -> float:
        """The target its newest frame was released with: the stream's (rule 4), without a stream its own."""
        return self.target_delay if self._release_target is None else self._release_target

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._waiting

    def next_timer(self) -> float | None:
        if not self._order:
            return None
        head = self._order[0]
        if head is self._held and self._worth_waiting(head):
            return head.deadline
        return head.release_time

    def room(self, timestamp: int | None) -> int:
        """How many more packets of the pending frame `timestamp` it takes before rule 7 would drop a
        frame (0: no such frame pending). Packets of a pending frame start none: no timer moves."""
        if self._held is not None and self._held.timestamp == timestamp:
            return 0  # a frame waiting for its repair: the packet that completes it moves the timer
        return max(0, self.max_packets - self._packet_count) if timestamp in self._frames else 0

    def poll(self, now: float) -> list[Released]:
        out: list[Released] = []
        order = self._order
        while order and order[0].release_time <= now:
            f = order[0]
            if f.deadline > now and self._worth_waiting(f):
                f.waited = True
                self._held = f
                break
            order.pop(0)
            del self._frames[f.timestamp]
            self._packet_count -= len(f.packets)
            if f.waited:
                f.release_time = max(f.release_time, min(now, f.deadline))  # when it went
            if self._decide(f):
                frame = f.to_frame()
                out.append(Released(frame, f.release_time))
                self.counters["frames_released"] += 1
                self.counters["frames_repaired_late"] += f.waited
                self.delay_samples.append(f.release_time - f.first_arrival)
            self._finish(f)
        if self._held is not None and (not order or order[0] is not self._held):
            self._held = None
        return out

    def _worth_waiting(self, f: _Pending) -> bool:
        """Rule 6, late repair: a due video frame that is not ready (incomplete, or complete after a
        hole) and could still be released (the chain is whole, or it is or may be a keyframe)."""
        if not self.late_repair:
            return False
        if f.complete() and (f.keyframe or self._expect is None or f.start == self._expect):
            return False  # ready
        return not self._waiting or f.keyframe or f.start is None

    def _decide(self, f: _Pending) -> bool:
        """Rule 6: whether a due frame is released; counts and chain bookkeeping otherwise."""
        complete = f.complete()
        if self.audio:
            if not complete:
                self.counters["frames_dropped_incomplete"] += 1
            return complete
        if complete and self._expect is not None and f.start != self._expect:  # a hole before it
            self.counters["frames_dropped_incomplete"] += 1
            if not f.keyframe:
                self._break_chain(request=False)
        if not complete:
            self.counters["frames_dropped_incomplete"] += 1
            self._break_chain(request=True)
            return False
        if f.keyframe:
            self._waiting = self._requested = False
            return True
        if self._waiting:
            self.counters["frames_dropped_dependency"] += 1
            self._break_chain(request=True)
            return False
        return True

    def _break_chain(self, *, request: bool) -> None:
        if self.audio:
            return
        self._waiting = True
        if request and not self._requested:
            self._requested = self._keyframe_needed = True
            self.counters["keyframes_needed"] += 1

    def _finish(self, f: _Pending) -> None:
        last = max(f.packets)
        self._floor = last if self._floor is None else max(self._floor, last)
        self._expect = max(f.end, last) + 1 if f.end is not None else None
        if len(self._finished) == _FINISHED_MEMORY:
            self._finished_set.discard(self._finished.popleft())
        self._finished.append(f.timestamp)
        self._finished_set.add(f.timestamp)
        if f.release_time >= self._last_release:
            self._last_release, self._last_ts = f.release_time, f.timestamp

    def take_keyframe_needed(self) -> bool:
        needed, self._keyframe_needed = self._keyframe_needed, False
        return needed

    def take_delay_samples(self) -> list[float]:
        samples = list(self.delay_samples)
        self.delay_samples.clear()
        return samples

    def missing(self, now: float) -> list[int]:
        """ext_seqs not yet arrived between the last finished frame and the newest pending packet
        that can still be repaired: in, or just before, a frame whose release time is after now.
        At most `max_packets` of them."""
        out: list[int] = []
        expect = self._floor + 1 if self._floor is not None else None
        for f in self._order:
            seqs = f.packets.keys()
            lo, hi = min(seqs), max(seqs)
            if f.start is not None:
                lo = min(lo, f.start)
            if expect is not None:
                lo = min(lo, expect)
            if f.deadline > now:
                out.extend(s for s in range(lo, min(hi + 1, lo + self.max_packets)) if s not in f.packets)
                if len(out) >= self.max_packets:
                    return out[:self.max_packets]
            expect = hi + 1
        return out
