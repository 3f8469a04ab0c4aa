"""The keyframe cache: the last keyframe and everything after it, for a player that joins now.

One per video track (audio needs none: every audio packet decodes on its own). DESIGN.md §2,
"First frame at once": the Router sends `snapshot()` to a new player at once, then follows live.
Pure data structure: no clock, no IO.

Rules:

1. `push(packet)` takes the packets in the order the Router sends them. A packet that starts a
   keyframe (keyframe and frame_start) begins a new GOP: the cache is reset to it, keeping the
   packets already held that carry the same timestamp (the keyframe's own packets that arrived
   before its first one). A keyframe start at or before the cached one's (a retransmission, a
   duplicate), or with the cached keyframe's own timestamp (H.264 sends SPS, PPS and the IDR as
   separate NAL units of one access unit, each a keyframe start), starts nothing: it is handled
   like any other packet (rule 2).
2. Until the first keyframe, packets are ignored (`counters["ignored"]`). Packets older than the
   GOP's keyframe (ext_seq below its first packet) and duplicates (an ext_seq already held) are
   ignored too.
3. Later packets are kept in ext_seq order (an out-of-order push goes into its place) while the
   GOP fits in `max_packets` and `max_bytes`.
4. Overflow. A packet that does not fit marks the GOP incomplete (`complete` False,
   `counters["overflows"]`): from then on `snapshot()` returns only the keyframe's own packets
   (the keyframe decodes; what follows the snapshot will not until the next keyframe, which the
   Router should request), the rest is freed, and packets are ignored until the next keyframe.
   If the keyframe itself does not fit, the cache is emptied (`has_keyframe` False) until the
   next keyframe.
5. `snapshot()` returns a new list, in ext_seq order; the packets are shared, never copied.
"""

from __future__ import annotations

from bisect import bisect_left

from sfu.media.packet import MediaPacket


class KeyframeCache:
    def __init__(self, *, max_packets: int = 2048, max_bytes: int = 3_000_000) -> None:
        if max_packets < 1 or max_bytes < 1:
            raise ValueError("max_packets and max_bytes must be positive")
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self._packets: list[MediaPacket] = []  # the GOP, in ext_seq order
        self._seqs: list[int] = []  # their ext_seqs, for bisect
        self._bytes = 0
        self._keyframe_ts: int | None = None  # RTP timestamp of the cached keyframe
        self._first_seq = 0  # ext_seq of the keyframe's first packet
        self.complete = False  # the whole GOP since the keyframe is held
        self.counters: dict[str, int] = {"packets": 0, "keyframes": 0, "overflows": 0, "ignored": 0}

    @property
    def has_keyframe(self) -> bool:
        return self._keyframe_ts is not None

    def __len__(self) -> int:
        return len(self._packets)

    @property
    def bytes(self) -> int:
        return self._bytes

    def push(self, packet: MediaPacket) -> None:
        self.counters["packets"] += 1
        seqs = self._seqs
        if self.complete and packet.ext_seq > seqs[-1] and not (packet.keyframe and packet.frame_start) \
                and len(seqs) < self.max_packets and self._bytes + len(packet.data) <= self.max_bytes:
            self._packets.append(packet)  # the next one of a whole GOP (the usual case): rule 3 at the end
            seqs.append(packet.ext_seq)
            self._bytes += len(packet.data)
            return
        newer = self._keyframe_ts is None or packet.ext_seq > self._first_seq
        if packet.keyframe and packet.frame_start and newer and packet.timestamp != self._keyframe_ts:
            self._start_gop(packet)
            return
        if (self._keyframe_ts is None or packet.ext_seq < self._first_seq
                or (not self.complete and packet.timestamp != self._keyframe_ts)):
            self.counters["ignored"] += 1
            return
        self._insert(packet)

    def _start_gop(self, packet: MediaPacket) -> None:
        self.counters["keyframes"] += 1
        early = [p for p in self._packets
                 if p.timestamp == packet.timestamp and p.ext_seq > packet.ext_seq]
        self._clear()
        self._keyframe_ts = packet.timestamp
        self._first_seq = packet.ext_seq
        self.complete = True
        for p in [packet, *early]:
            self._insert(p)

    def _insert(self, packet: MediaPacket) -> None:
        i = bisect_left(self._seqs, packet.ext_seq)
        if i < len(self._seqs) and self._seqs[i] == packet.ext_seq:
            self.counters["ignored"] += 1
            return
        if len(self._packets) + 1 > self.max_packets or self._bytes + len(packet.data) > self.max_bytes:
            self._overflow(packet)
            return
        self._packets.insert(i, packet)
        self._seqs.insert(i, packet.ext_seq)
        self._bytes += len(packet.data)

    def _overflow(self, packet: MediaPacket) -> None:
        self.counters["overflows"] += 1
        if packet.timestamp == self._keyframe_ts:  # the keyframe itself does not fit
            self._clear()
            return
        self.complete = False
        keep = [p for p in self._packets if p.timestamp == self._keyframe_ts]
        self._packets = keep
        self._seqs = [p.ext_seq for p in keep]
        self._bytes = sum(len(p.data) for p in keep)

    def _clear(self) -> None:
        self._packets, self._seqs, self._bytes = [], [], 0
        self._keyframe_ts = None
        self.complete = False

    def snapshot(self) -> list[MediaPacket]:
        return list(self._packets)
