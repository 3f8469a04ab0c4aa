"""FrameAssembler: a player's video packets → whole frames, released the moment they are complete.

A sans-IO core: every input carries ``now`` (monotonic seconds). Inputs: ``push(packet, now)``,
``poll(now)``; outputs: the ``AssembledFrame`` lists they return, ``next_timer()``,
``take_keyframe_needed()``, ``waiting_for_keyframe``, ``counters``. Unlike the node's L3
``JitterBuffer`` it holds nothing back on purpose: the lowest latency a player can have, with
or without a jitter buffer on the node in front of it.

Packets are ``sfu.media.packet.MediaPacket``s whose ``data`` is the RTP payload (the player
has already parsed the header), ``ext_seq`` widened at ingress, flags from
``sfu.media.codecs.inspect_payload``.

Rules:

1. Frames. Packets are grouped by RTP timestamp. Frames occupy disjoint runs of ext_seq, so
   they are ordered by their lowest ext_seq (the encoder's order: no B-frames in real time).
2. Complete. A frame is complete when it has a start packet ``S`` (its lowest frame_start
   packet, which must also be its lowest packet), a marker packet ``E`` and every ext_seq from
   ``S`` to ``E``, and ``S`` is certainly the frame's first packet: always for codecs whose
   payload marks the first packet (``unambiguous_start``: VP8's S bit with PID 0); for H.264,
   where any NAL unit may start a frame, only when the packet was pushed with
   ``certain_start`` (it begins with SPS or an access unit delimiter), or ``S`` is right after
   the last finished frame, or ``S - 1`` is held by another pending frame, or ``S`` is the
   lowest ext_seq pushed so far and no frame has finished yet (the stream starts there: a
   player that joins at a keyframe sent from the node's cache).
3. Release, in order, after every input. The oldest pending frame (the head) is released when
   it is complete and nothing is missing between the last finished frame and it; a complete
   keyframe is released even with something missing before it (it needs nothing earlier; the
   gap counts as one dropped frame). Otherwise the head waits, for a repair (a NACK answer),
   until ``max_wait`` after its first packet arrived or until a later pending frame is a
   complete keyframe; then it is given up: a complete head with a gap before it is released
   after counting the gap as one dropped frame, an incomplete head is dropped (counted).
   Frames behind the head wait for it: a later frame usually depends on it.
4. The chain. A decoder needs a keyframe, then every frame after it. The chain starts broken;
   a released keyframe makes it whole; a dropped frame breaks it. A complete non-key frame
   released while the chain is broken is *skipped* (counted, not returned). A break, or a skip
   with no request yet for this break, raises ``keyframe_needed`` once
   (``take_keyframe_needed()``); ``waiting_for_keyframe`` stays True until a keyframe is
   released (the caller repeats its PLI meanwhile).
5. Late and duplicate. A packet at or below the highest ext_seq of a finished frame, or of one
   of the last 64 finished timestamps, is late; a packet already held is a duplicate; both are
   counted and ignored.
6. Memory: more than ``max_frames`` pending frames drops the head (counted as dropped, the
   chain breaks).

Counters: packets, duplicates, packets_late, frames_complete (released + skipped: every frame
that arrived whole), frames_released, frames_skipped, frames_dropped (incomplete, gaps,
overflow), keyframes_needed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sfu.media.packet import Frame, MediaPacket

__all__ = ["AssembledFrame", "FrameAssembler"]

_FINISHED_MEMORY = 64


@dataclass(slots=True)
class AssembledFrame:
    frame: Frame
    completed_at: float  # `now` of the push that made it complete


class _Pending:
    __slots__ = ("timestamp", "order", "packets", "start", "end", "keyframe", "first_arrival", "certain",
                 "completed_at")

    def __init__(self, packet: MediaPacket, now: float) -> None:
        self.timestamp = packet.timestamp
        self.order = packet.ext_seq
        self.packets: dict[int, MediaPacket] = {}
        self.start: int | None = None
        self.end: int | None = None
        self.keyframe = False
        self.first_arrival = now
        self.certain: set[int] = set()  # ext_seqs pushed with certain_start
        self.completed_at: float | None = None

    def to_frame(self) -> Frame:
        seqs = sorted(self.packets)
        return Frame(self.timestamp, seqs[0], seqs[-1], [self.packets[s] for s in seqs], self.keyframe,
                     self.first_arrival)


class FrameAssembler:
    def __init__(self, *, unambiguous_start: bool = True, max_wait: float = 0.25, max_frames: int = 128) -> None:
        self.unambiguous_start = unambiguous_start
        self.max_wait = max_wait
        self.max_frames = max_frames
        self._frames: dict[int, _Pending] = {}  # by timestamp
        self._order: list[_Pending] = []  # by lowest ext_seq
        self._owner: dict[int, _Pending] = {}  # ext_seq -> pending frame holding it
        self._floor: int | None = None  # highest ext_seq of a finished frame
        self._lowest: int | None = None  # lowest ext_seq pushed
        self._expect: int | None = None  # ext_seq right after the last finished frame, if its end was known
        self._finished: deque[int] = deque(maxlen=_FINISHED_MEMORY)
        self._waiting = True
        self._requested = False
        self._keyframe_needed = False
        self.counters: dict[str, int] = dict.fromkeys((
            "packets", "duplicates", "packets_late", "frames_complete", "frames_released", "frames_skipped",
            "frames_dropped", "keyframes_needed"), 0)

    # -- inputs -------------------------------------------------------------------------------

    def push(self, packet: MediaPacket, now: float, *, certain_start: bool = False) -> list[AssembledFrame]:
        self.counters["packets"] += 1
        seq, ts = packet.ext_seq, packet.timestamp
        if self._lowest is None or seq < self._lowest:
            self._lowest = seq
        if seq in self._owner:
            self.counters["duplicates"] += 1
            return self._resolve(now)
        frame = self._frames.get(ts)
        if frame is None:
            if (self._floor is not None and seq <= self._floor) or ts in self._finished:
                self.counters["packets_late"] += 1
                return self._resolve(now)
            frame = _Pending(packet, now)
            self._frames[ts] = frame
            i = len(self._order)
            while i and self._order[i - 1].order > seq:
                i -= 1
            self._order.insert(i, frame)
        frame.order = min(frame.order, seq)
        frame.packets[seq] = packet
        self._owner[seq] = frame
        if packet.frame_start:
            frame.start = seq if frame.start is None else min(frame.start, seq)
            if certain_start:
                frame.certain.add(seq)
        if packet.marker:
            frame.end = seq if frame.end is None else max(frame.end, seq)
        frame.keyframe = frame.keyframe or packet.keyframe
        self._check(frame, now)
        after = self._owner.get(seq + 1)
        if after is not None and after is not frame:
            self._check(after, now)
        while len(self._order) > self.max_frames:
            self._drop(self._order[0])
        return self._resolve(now)

    def poll(self, now: float) -> list[AssembledFrame]:
        return self._resolve(now)

    # -- outputs ------------------------------------------------------------------------------

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._waiting

    def take_keyframe_needed(self) -> bool:
        needed, self._keyframe_needed = self._keyframe_needed, False
        return needed

    def next_timer(self) -> float | None:
        return self._order[0].first_arrival + self.max_wait if self._order else None

    @property
    def pending(self) -> int:
        return len(self._order)

    def holds(self, timestamp: int) -> bool:
        """Whether a frame with this RTP timestamp is pending."""
        return timestamp in self._frames

    # -- the rules ----------------------------------------------------------------------------

    def _complete(self, f: _Pending) -> bool:
        s, e = f.start, f.end
        if s is None or e is None or e < s or s != f.order:
            return False
        if e - s + 1 != len(f.packets):  # frames are disjoint runs: all of s..e and nothing else
            return False
        return (self.unambiguous_start or s in f.certain or s == self._expect
                or (s - 1) in self._owner or (self._floor is None and s == self._lowest))

    def _check(self, f: _Pending, now: float) -> None:
        if f.completed_at is None and self._complete(f):
            f.completed_at = now

    def _resolve(self, now: float) -> list[AssembledFrame]:
        out: list[AssembledFrame] = []
        while self._order:
            f = self._order[0]
            self._check(f, now)
            complete = f.completed_at is not None
            gap = self._expect is not None and f.order > self._expect
            if complete and (not gap or f.keyframe):
                if gap:
                    self._count_gap()
                self._finish(f)
                self._release(f, out)
                continue
            if now < f.first_arrival + self.max_wait and not self._later_keyframe():  # as next_timer sums it
                break
            if complete:  # a gap before a non-key frame: the gap is the loss
                self._count_gap()
                self._finish(f)
                self._release(f, out)
            else:
                self._drop(f)
        return out

    def _later_keyframe(self) -> bool:
        for f in self._order[1:]:
            if f.keyframe and f.completed_at is not None:
                return True
        return False

    def _release(self, f: _Pending, out: list[AssembledFrame]) -> None:
        self.counters["frames_complete"] += 1
        if f.keyframe:
            self._waiting = self._requested = False
        elif self._waiting:
            self.counters["frames_skipped"] += 1
            self._break_chain()
            return
        self.counters["frames_released"] += 1
        out.append(AssembledFrame(f.to_frame(), f.completed_at))

    def _count_gap(self) -> None:
        self.counters["frames_dropped"] += 1
        self._break_chain()

    def _drop(self, f: _Pending) -> None:
        self._finish(f)
        self.counters["frames_dropped"] += 1
        self._break_chain()

    def _break_chain(self) -> None:
        self._waiting = True
        if not self._requested:
            self._requested = self._keyframe_needed = True
            self.counters["keyframes_needed"] += 1

    def _finish(self, f: _Pending) -> None:
        self._order.remove(f)
        del self._frames[f.timestamp]
        for seq in f.packets:
            del self._owner[seq]
        last = max(f.packets)
        self._floor = last if self._floor is None else max(self._floor, last)
        self._expect = max(f.end, last) + 1 if f.end is not None else None
        self._finished.append(f.timestamp)
