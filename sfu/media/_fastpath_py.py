"""FastTrack: the per-packet path of one publisher track. This is the pure-Python reference and
the spec; ``sfu.media._fastpath_c`` (native/fastpath.pyx) is the same logic compiled, and tests
feed both the same inputs and require the same outputs.

A ``PublisherTrack`` (sfu/media/track.py) owns one. The FastTrack holds what every packet
touches, so that a packet in the steady state never reaches Python:

- **The ring**: the track's recent packets by ext_seq (``size`` slots, a power of two), each
  with its RTP timestamp, flags and arrival. It is the retransmission history (a packet older
  than ``max_age`` seconds is not handed out) and the storage the RTC keyframe cache reads
  (``gop_start``: the ext_seq of the newest keyframe's first packet, set by the track).
- **The ingress** (``ingest``, or ``pump`` from a socket): RTCP is handed to the caller as it
  came. RTP: parse the header; bind the first source address and drop RTP from any other
  (``unbound_source``); widen the sequence number (the rules of sfu.rtp.seq); inspect the
  payload (keyframe, frame start, droppable: the rules of sfu.media.codecs; a payload that does
  not parse counts ``bad_payload`` and is kept as a plain packet); store it in the ring, unless
  the ring holds its ext_seq already (a duplicate, flagged ``F_DUPLICATE``: the first copy and its
  arrival stay); a packet that is not late updates ``packet_jitter`` (RFC 3550's interarrival jitter, in seconds; the
  NACK generator's reorder delay follows it).
- **The player table** (``load_players``): per player its address, SSRC, payload type and its
  steady rewrite: output sequence number ``(ext_seq - seq_delta) & 0xFFFF`` and output timestamp
  ``(timestamp + ts_delta) & 0xFFFFFFFF``, and its mode: RTC (every packet at once) or L3
  (released frames, ``send_frame``; a frame after a gap in the L3 timeline says how many input
  sequence numbers were skipped, and every L3 player's seq_delta grows by that many, so its
  numbering stays contiguous). The track loads the table from its players' rewriters
  whenever Python has touched them; ``take_player_stats`` hands back what the fast path sent
  since, so the track can bring the rewriters up to date. It also hands back *marks*: where the
  sends crossed from one SEND_STEP (0.1 s) of the clock into the next, the time of the last send
  before and the counts up to it (at most SEND_MARKS, the newest), so that the track can date
  what it was sent step by step however seldom it takes them (a player's send rate, over a 1 s
  window, is read from those dates).
- **The fan-out**: the packet rewritten for each player, from one buffer.

A stored RTP packet is *fast* when it is the next one in sequence (ext_seq == the previous highest
+ 1), it is not the first packet of a video keyframe, and either ``fast_ok`` is set (the track says
every RTC player with an address is in the table and nothing else wants each packet) or it is
*held*: fewer than ``hold`` packets wait in the held list (the track's L3 jitter buffer takes them
later, ``take_held``) and it continues the newest frame (the newest packet's RTP timestamp, not a
frame start). A held packet joins the held list as it is now: (a ``MediaPacket``, the caller's
``now`` for it: ``ingest``'s, or the ``pump`` call's). A fast packet goes to every
RTC player in the table and ``ingest`` returns ``EV_NONE``. Any other stored packet returns
``EV_RTP`` and is left to the track (``last_ext`` / ``last_flags`` say which; ``packet(ext)``
reads it), and so is a duplicate (``F_LATE | F_DUPLICATE``). Datagrams that are dropped return ``EV_NONE`` and are counted.

Outputs go to ``output`` (a socket: sent at once, and a full send buffer counts ``unsent``, as does a
send that fails twice: the first failure may be an earlier datagram's error, pending), or,
without one, collect in a list that ``take_out`` drains: [(0, datagram, addr)] (0: the Router's shared socket).
"""

from __future__ import annotations

import math
import socket
import struct
import time
from dataclasses import dataclass

from sfu.media.codecs import Codec, PayloadError, inspect_payload
from sfu.media.jitter import interarrival_jitter
from sfu.media.packet import MediaPacket
from sfu.rtp._header_py import RtpParseError, is_rtcp, parse_rtp

__all__ = ["EV_AGAIN", "EV_NONE", "EV_RTCP", "EV_RTP", "F_DROPPABLE", "F_DUPLICATE", "F_FRAME_START", "F_KEYFRAME", "F_LATE",
           "F_MARKER", "MODE_L3", "MODE_RTC", "FastTrack", "Reader", "StoredPacket", "COUNTERS"]

EV_NONE, EV_RTP, EV_RTCP, EV_AGAIN = 0, 1, 2, 3
F_MARKER, F_KEYFRAME, F_FRAME_START, F_DROPPABLE, F_LATE, F_DUPLICATE = 1, 2, 4, 8, 16, 32
MODE_RTC, MODE_L3 = 1, 2
GATE_NONE, GATE_CLOSED, GATE_OPEN = -1, 0, 1
# the order of take_counters()
COUNTERS = ("packets_in", "bytes_in", "packets_out", "bytes_out", "malformed", "unbound_source",
            "bad_payload", "unsent", "rtp_packets")
RECV_BATCH = 64  # datagrams per pump() call, then the caller's loop gets a turn
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value (SCM_TIMESTAMPNS is the same)
CLOCKS_BRACKET_NS = 5000  # a monotonic-realtime offset read across a longer gap is not taken (pump)
SEND_STEP = 0.1  # seconds: a player's sends are marked where they cross from one step of the clock to the next
SEND_MARKS = 16  # ... and the newest this many marks are kept between takes (1.6 s: more than the 1 s window)


def dont_fragment(sock: socket.socket) -> None:
    """Set DF on an IPv4 UDP socket's datagrams (IP_MTU_DISCOVER = IP_PMTUDISC_DO): media is sized
    for the path and never fragmented, and the kernel skips picking an IP ID per datagram."""
    sock.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_MTU_DISCOVER", 10),  # Linux's values
                    getattr(socket, "IP_PMTUDISC_DO", 2))


@dataclass(slots=True)
class StoredPacket:
    ext_seq: int
    timestamp: int
    flags: int
    arrival: float
    data: bytes


class _Player:
    __slots__ = ("addr", "ssrc", "pt", "seq_delta", "ts_delta", "mode", "gate", "min_ext",
                 "count", "bytes", "octets", "last_ext", "last_ts", "last_arrival",
                 "drops", "drop_bytes", "drop_first", "drop_last", "step", "last_at", "marks")

    def __init__(self, addr, ssrc: int, pt: int, seq_delta: int, ts_delta: int, mode: int, gate: int = GATE_NONE,
                 min_ext: int | None = None) -> None:
        self.addr, self.ssrc, self.pt, self.min_ext = addr, ssrc, pt, min_ext
        self.seq_delta, self.ts_delta, self.mode, self.gate = seq_delta, ts_delta & 0xFFFFFFFF, mode, gate
        self.count = self.bytes = self.octets = 0
        self.last_ext = self.last_ts = 0
        self.last_arrival = 0.0
        self.drops = self.drop_bytes = self.drop_first = self.drop_last = 0
        self.step = 0  # the SEND_STEP of the clock of the last send
        self.last_at = 0.0  # the time of the last send
        self.marks: list[tuple[float, int, int]] = []  # (time of the last send before a step, count, bytes)


class FastTrack:
    def __init__(self, codec: str, size: int = 4096, max_age: float = 2.0) -> None:
        if size < 128 or size & (size - 1):
            raise ValueError(f"ring size must be a power of two >= 128, got {size}")
        self.codec = Codec.from_name(codec)
        self.video = self.codec.is_video
        self.size = size
        self.max_age = max_age
        self._ring: list[StoredPacket | None] = [None] * size
        self.clock_rate = self.codec.clock_rate
        self.packet_jitter = 0.0  # seconds: RFC 3550's interarrival jitter over every packet not late
        self._jitter_last: tuple[float, int] | None = None  # (arrival, timestamp) of the last one
        self.newest: int | None = None  # highest ext_seq stored (the unwrapper's highest)
        self._newest_ts = -1  # that packet's RTP timestamp
        self.bound = None  # the source address RTP is taken from; the first one binds
        self.ssrc: int | None = None  # the publisher's SSRC in its last packet
        self.last_arrival: float | None = None
        self.last_ext = 0
        self.last_flags = 0
        self.gop_start: int | None = None
        self.fast_ok = False
        self.hold = 0  # how many packets continuing the newest frame may wait in _held (module rules)
        self._held: list[tuple[MediaPacket, float]] = []
        self.output: socket.socket | None = None
        self.gso = False  # the reference sends each datagram alone (the compiled one groups them: UDP GSO)
        self.gso_sends = 0
        self._players: list[_Player] = []
        self._gated = 0  # players in the table with a gate
        self._dirty = 0  # the modes whose players got something since take_player_stats / load_players
        self._out: list[tuple] = []
        self._counters = dict.fromkeys(COUNTERS, 0)
        self.slow_data: bytes | None = None  # EV_RTCP: the datagram and where it came from
        self.slow_addr = None
        self.slow_prev: int | None = None  # EV_RTP: the highest ext_seq before that packet
        self._monotonic = False  # enable_timestamps(monotonic=)
        self._base: tuple[float, int] | None = None  # _clock_base's last good one
        self._kept: tuple | None = None  # (data, addr, stamp): a datagram pump left for the next call (EV_AGAIN)

    # ----- control ---------------------------------------------------------------------------

    def load_players(self, entries: list[tuple]) -> None:
        """The player table: [(addr, ssrc, payload_type, seq_delta, ts_delta, mode[, gate[, min_ext]])], in
        slot order. `min_ext`: the player's first packet (`forward` sends it nothing older)."""
        self._players = [_Player(*e) for e in entries]
        self._gated = sum(p.gate != GATE_NONE for p in self._players)
        self._dirty = 0

    def append_players(self, entries: list[tuple]) -> None:
        """More players after those of the table, entries as `load_players` takes them: the others'
        entries, and what the fast path did for them since the last take, stay."""
        added = [_Player(*e) for e in entries]
        self._players += added
        self._gated += sum(p.gate != GATE_NONE for p in added)

    def remove_player(self, slot: int) -> None:
        """A player out of the table where it is: it is sent nothing more, and its slot stays, empty,
        until the next load (take its stats first: what is left of them is not taken)."""
        if not 0 <= slot < len(self._players):
            raise IndexError(slot)
        p = self._players[slot]
        if p.gate != GATE_NONE:
            self._gated -= 1
        p.gate, p.mode = GATE_NONE, 0
        p.count = p.drops = 0

    def compact(self) -> list[int]:
        """The empty slots (`remove_player`'s; an entry of mode 0 sends nothing) out of the table, the
        others' entries, and what the fast path did for them since the last take, kept in order:
        the old slot of each, in its new order."""
        kept = [i for i, p in enumerate(self._players) if p.mode]
        self._players = [self._players[i] for i in kept]
        return kept

    def add_gate(self, slot: int, gate: int) -> None:
        """An ungated player gets a gate (open or closed): its budget decides per frame from now on."""
        if not 0 <= slot < len(self._players):
            raise IndexError(slot)
        p = self._players[slot]
        if p.gate != GATE_NONE or gate == GATE_NONE:
            raise ValueError("add_gate gives an ungated player a gate")
        p.gate = gate
        self._gated += 1

    def set_gate(self, slot: int, gate: int, seq_delta: int | None = None) -> None:
        """A gated player's decision for the frame that starts (and its sequence offset after it; None:
        as it is)."""
        p = self._players[slot]
        if (p.gate == GATE_NONE) != (gate == GATE_NONE):
            raise ValueError("set_gate cannot make a player gated or ungated: load the table")
        p.gate = gate
        if seq_delta is not None:
            p.seq_delta = seq_delta

    def take_player_stats(self, mode: int = 0, first: int = 0, last: int | None = None) -> list[tuple]:
        """What the fast path did since the last call or load, for each player of `mode` (0: all)
        in slots `first` to `last` (excluded; None: to the end) that it sent or dropped something
        for: (slot, count, bytes, octets, last_ext, last_ts, last_arrival, drops, drop_bytes,
        drop_first, drop_last, marks). Dropped packets (a closed gate) are consecutive ext_seqs,
        drop_first..drop_last. `marks`: ((time, count, bytes), ...), oldest first: the sends up to
        `time` were the first `count` of them, `bytes` in all (module rules)."""
        if not self._dirty & (mode or (MODE_RTC | MODE_L3)):
            return []
        first = max(first, 0)
        end = len(self._players) if last is None else min(last, len(self._players))
        if first == 0 and end == len(self._players):
            self._dirty &= ~(mode or (MODE_RTC | MODE_L3))  # the others (a range) may still have something
        stats = []
        for slot in range(first, end):
            p = self._players[slot]
            if (p.count or p.drops) and (not mode or p.mode == mode):
                stats.append((slot, p.count, p.bytes, p.octets, p.last_ext, p.last_ts, p.last_arrival,
                              p.drops, p.drop_bytes, p.drop_first, p.drop_last, tuple(p.marks)))
                p.count = p.bytes = p.octets = p.drops = p.drop_bytes = 0
                p.marks = []
        return stats

    def take_counters(self) -> tuple[int, ...]:
        """The counters since the last call, in COUNTERS order."""
        values = tuple(self._counters.values())
        self._counters = dict.fromkeys(COUNTERS, 0)
        return values

    def take_out(self) -> list[tuple]:
        out, self._out = self._out, []
        return out

    def take_held(self) -> list[tuple[MediaPacket, float]]:
        """The held packets (module rules), oldest first, since the last call: (packet, read at)."""
        held, self._held = self._held, []
        return held

    # ----- the ring --------------------------------------------------------------------------

    def packet(self, ext_seq: int, now: float | None = None) -> StoredPacket | None:
        """The stored packet `ext_seq` (None: never stored, overwritten, or older than max_age at `now`)."""
        slot = self._ring[ext_seq & (self.size - 1)]
        if slot is None or slot.ext_seq != ext_seq:
            return None
        if now is not None and now - slot.arrival > self.max_age:
            return None
        return slot

    def gop(self, max_packets: int, max_bytes: int) -> list[StoredPacket]:
        """The packets from `gop_start` to the newest, in order, if all of them are stored and
        within the limits; else []."""
        if self.gop_start is None or self.newest is None or self.newest - self.gop_start >= min(self.size, max_packets):
            return []
        out, total = [], 0
        for ext in range(self.gop_start, self.newest + 1):
            p = self.packet(ext)
            if p is None:
                continue  # lost and not repaired: the decoder conceals it
            total += len(p.data)
            if total > max_bytes:
                return []
            out.append(p)
        return out

    @property
    def newest_timestamp(self) -> int | None:
        """The RTP timestamp of the newest packet stored (`newest`): the frame a held packet continues."""
        return None if self.newest is None else self._newest_ts

    def _store(self, ext: int, ts: int, flags: int, now: float, data: bytes) -> None:
        newest = self.newest
        if newest is not None and ext <= newest - self.size:
            return  # older than anything the ring holds: it would overwrite a newer packet
        if newest is not None and ext - newest >= self.size:
            self._ring = [None] * self.size  # a jump past the whole ring: nothing in it is near
        if newest is None or ext > newest:
            self.newest = ext
            self._newest_ts = ts
        self._ring[ext & (self.size - 1)] = StoredPacket(ext, ts, flags, now, data)

    # ----- the ingress -------------------------------------------------------------------------

    def ingest(self, data: bytes, addr, now: float) -> int:
        return self._ingest(data, addr, now, now)

    def _ingest(self, data: bytes, addr, now: float, read_at: float) -> int:
        """One datagram that arrived at `now`, handed over at `read_at`."""
        c = self._counters
        c["packets_in"] += 1
        c["bytes_in"] += len(data)
        if len(data) < 8:
            c["malformed"] += 1
            return EV_NONE
        if is_rtcp(data):
            self.slow_data, self.slow_addr = bytes(data), addr
            return EV_RTCP
        if self.bound is not None and addr != self.bound:
            c["unbound_source"] += 1
            return EV_NONE
        try:
            h = parse_rtp(data)
        except RtpParseError:
            c["malformed"] += 1
            return EV_NONE
        if self.bound is None:
            self.bound = addr
        self.ssrc = h.ssrc
        self.last_arrival = now
        # widen the sequence number (sfu.rtp.seq's rules)
        hi = self.newest
        if hi is None:
            ext = h.sequence_number
        else:
            d = (h.sequence_number - hi) & 0xFFFF
            ext = hi + d if d < 0x8000 else hi + d - 0x10000
        flags = F_MARKER if h.marker else 0
        if self.video:
            start = h.header_length
            try:
                info = inspect_payload(self.codec, memoryview(data)[start:start + h.payload_length])
            except PayloadError:
                c["bad_payload"] += 1
            else:
                flags |= (F_KEYFRAME if info.keyframe else 0) | (F_FRAME_START if info.frame_start else 0) \
                    | (F_DROPPABLE if info.droppable else 0)
        else:
            flags |= F_MARKER | F_KEYFRAME | F_FRAME_START
        if hi is not None and ext <= hi:
            flags |= F_LATE
            if self.packet(ext) is not None:
                flags |= F_DUPLICATE  # the ring has it: it keeps the first copy (and its arrival)
        else:
            self._sample_jitter(now, h.timestamp)
        new_frame = h.timestamp != self._newest_ts  # the newest packet's before this one
        if not flags & F_DUPLICATE:
            self._store(ext, h.timestamp, flags, now, bytes(data))
        c["rtp_packets"] += 1
        self.last_ext, self.last_flags = ext, flags
        keyframe_start = self.video and flags & (F_KEYFRAME | F_FRAME_START) == F_KEYFRAME | F_FRAME_START
        held = not self.fast_ok and self.hold > len(self._held) and not new_frame and not flags & F_FRAME_START
        if not (self.fast_ok or held) or hi is None or ext != hi + 1 or keyframe_start or (self._gated and new_frame):
            self.slow_prev = hi
            return EV_RTP
        if held:
            self._held.append((MediaPacket(ext, h.timestamp, bool(flags & F_MARKER), bool(flags & F_KEYFRAME),
                                           bool(flags & F_FRAME_START), now, bytes(data), False,
                                           bool(flags & F_DROPPABLE)), read_at))
        for p in self._players:
            if p.mode != MODE_RTC:
                continue
            if p.gate == GATE_CLOSED:  # its budget dropped this frame: no gap in its numbering
                self._drop(p, ext, len(data))
            else:
                self._send(p, ext, h.timestamp, now, data)
        return EV_NONE

    def _drop(self, p: _Player, ext: int, size: int) -> None:
        """A packet a closed gate keeps from the player: its numbering closes over it."""
        p.seq_delta += 1
        if not p.drops:
            p.drop_first = ext
        p.drops += 1
        p.drop_bytes += size
        p.drop_last = ext
        self._dirty |= p.mode

    def _sample_jitter(self, now: float, ts: int) -> None:
        last, self._jitter_last = self._jitter_last, (now, ts)
        self.packet_jitter = interarrival_jitter(self.packet_jitter, last, now, ts, self.clock_rate)

    def enable_timestamps(self, sock: socket.socket, monotonic: bool = False) -> None:
        """Have the kernel stamp each datagram `sock` receives (SO_TIMESTAMPNS): `pump` then takes a
        packet's arrival from when it reached the socket, not from when the node got round to it.

        `monotonic`: the `now` given to `pump` is CLOCK_MONOTONIC time (`time.monotonic()`, the
        node's media clock). The pump then turns a stamp with the two clocks' offset, read by
        itself, so an arrival does not depend on when the caller read `now` (it may have lost the
        CPU since). Without it (a virtual clock in tests), `now` is taken as the time of the call."""
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._monotonic = monotonic

    def _clock_base(self, now: float) -> tuple[float, int]:
        """(t, wall): a time on the caller's clock and CLOCK_REALTIME in ns at that instant, so a
        kernel stamp k (CLOCK_REALTIME ns) is at t + (k - wall) / 1e9 on the caller's clock.
        Monotonic: the realtime read bracketed by two monotonic ones no more than
        CLOCKS_BRACKET_NS apart (else the last good base; the first time, the last reading)."""
        if not self._monotonic:
            return now, time.clock_gettime_ns(time.CLOCK_REALTIME)
        for k in range(3):  # bounded
            a = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            wall = time.clock_gettime_ns(time.CLOCK_REALTIME)
            b = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            if b - a < CLOCKS_BRACKET_NS or (k == 2 and self._base is None):
                self._base = ((a + b) // 2 * 1e-9, wall)
                break
        return self._base

    def pump(self, sock: socket.socket, now: float) -> int:
        """Read datagrams from `sock` (non-blocking) until one needs the caller (its event is
        returned), the socket is drained, or RECV_BATCH were handled (EV_NONE for both). A
        datagram's arrival is its kernel timestamp (`enable_timestamps`) on the caller's clock
        (`now` is the caller's time for this call); without one, `now`.

        A datagram stamped after `now` (the caller read its clock, then lost the CPU; or it came in
        while the pump ran) is kept, and EV_AGAIN returned: the caller calls again, with a fresh
        `now`, on the same socket. That call handles the kept datagram and nothing else, so a caller
        that pumps on after EV_AGAIN ends. (If its `now` is still earlier, the datagram's arrival is
        `now`: an arrival is never later than the `now` it is handled at.)"""
        t0, wall0 = self._clock_base(now)
        if self._kept is not None:
            data, addr, stamp = self._kept
            self._kept = None
            return self._ingest(data, addr, min(now, t0 + (stamp - wall0) * 1e-9), now)
        for _ in range(RECV_BATCH):
            try:
                data, ancillary, _flags, addr = sock.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return EV_NONE
            except OSError:  # e.g. ICMP port unreachable reported on the socket
                continue
            arrival = now
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("@qq", value[:16])
                    stamp = sec * 1_000_000_000 + nsec
                    arrival = t0 + (stamp - wall0) * 1e-9
                    if arrival > now:
                        self._kept = (data, addr, stamp)
                        return EV_AGAIN
                    break
            event = self._ingest(data, addr, arrival, now)
            if event != EV_NONE:
                return event
        return EV_NONE

    # ----- the fan-out -------------------------------------------------------------------------

    def send_frame(self, packets: list, now: float, skip: int = 0, flush: bool = True) -> None:
        """One released L3 frame (its packets, in order: objects with ext_seq, timestamp and data)
        to every L3 player in the table (a gated one: if its gate is open; closed, its numbering
        closes over the frame, as an RTC player's does). `skip`: that many input sequence numbers just before the
        frame were dropped from the L3 timeline; every L3 player's numbering closes the gap
        (its seq_delta grows by `skip`) before the frame is sent. `flush` False: more frames are
        released with it, and the compiled fan-out sends this one's datagrams with theirs (each
        player's in order, together under UDP GSO); here every datagram leaves at once anyway."""
        if skip:
            for p in self._players:
                if p.mode == MODE_L3:
                    p.seq_delta += skip
        for packet in packets:  # packet by packet, each to every L3 player (as the RTC fan-out does)
            for p in self._players:
                if p.mode == MODE_L3:
                    if p.gate == GATE_CLOSED:  # its budget dropped this frame
                        self._drop(p, packet.ext_seq, len(packet.data))
                    else:
                        self._send(p, packet.ext_seq, packet.timestamp, now, packet.data)

    def forward(self, now: float, gated: bool = False) -> None:
        """The packet just stored (`last_ext`, one `ingest` left to the track) to every RTC player in the
        table without a gate, unless it is older than the player's first (`min_ext`); with `gated`,
        to the gated ones too as their gates say (the track has just set them for this packet:
        open, sent; closed, their numbering closes over it), else those are the track's to judge.
        Their numbering is a steady offset, so a late packet lands in the hole it left and a packet
        after a gap leaves one."""
        stored = self.packet(self.last_ext)
        if stored is None:
            return
        for p in self._players:
            if p.mode != MODE_RTC or (p.min_ext is not None and stored.ext_seq < p.min_ext):
                continue
            if p.gate == GATE_NONE:
                self._send(p, stored.ext_seq, stored.timestamp, now, stored.data)
            elif gated:
                if p.gate == GATE_CLOSED:
                    self._drop(p, stored.ext_seq, len(stored.data))
                else:
                    self._send(p, stored.ext_seq, stored.timestamp, now, stored.data)

    def _send(self, p: _Player, ext: int, ts: int, now: float, data: bytes) -> None:
        out = bytearray(data)
        out[1] = (out[1] & 0x80) | (p.pt & 0x7F)
        out[2:4] = ((ext - p.seq_delta) & 0xFFFF).to_bytes(2, "big")
        out[4:8] = ((ts + p.ts_delta) & 0xFFFFFFFF).to_bytes(4, "big")
        out[8:12] = p.ssrc.to_bytes(4, "big")
        step = math.floor(now / SEND_STEP)
        if p.count and step != p.step:
            if len(p.marks) == SEND_MARKS:
                del p.marks[0]
            p.marks.append((p.last_at, p.count, p.bytes))
        p.step, p.last_at = step, now
        p.count += 1
        p.bytes += len(out)
        p.octets += len(out) - 12
        if p.count == 1 or ext > p.last_ext:  # the highest sent since the last take: what the track catches up to
            p.last_ext, p.last_ts, p.last_arrival = ext, ts, now
        self._dirty |= p.mode
        c = self._counters
        c["packets_out"] += 1
        c["bytes_out"] += len(out)
        if self.output is None:
            self._out.append((0, bytes(out), p.addr))
            return
        for attempt in (0, 1):
            try:
                self.output.sendto(out, p.addr)
                return
            except (BlockingIOError, InterruptedError):
                c["unsent"] += 1
                return
            except OSError:  # tried once more: the error may be an earlier datagram's, pending (IP_RECVERR)
                if attempt:
                    c["unsent"] += 1


class Reader:
    """A publisher track socket's callback for the event loop (`loop.add_reader(fd, reader)`): it
    pumps the socket with the clock's time and calls `slow(event, now)` only for a datagram that
    needs Python (the caller then pumps on until EV_NONE). A wake-up whose datagrams the fast path
    handled alone calls nothing else."""

    __slots__ = ("_clock", "_slow", "fast", "sock")

    def __init__(self, fast: FastTrack, sock: socket.socket, clock, slow) -> None:
        self.fast, self.sock, self._clock, self._slow = fast, sock, clock, slow

    def __call__(self) -> None:
        now = self._clock()
        event = self.fast.pump(self.sock, now)
        while event == EV_AGAIN:  # a datagram came in after `now`: again, with the time read afresh
            now = self._clock()
            event = self.fast.pump(self.sock, now)
        if event != EV_NONE:
            self._slow(event, now)
