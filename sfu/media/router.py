"""The first media path: plain RTP in, RTC forwarding out, as a sans-IO core.

This is the seed of DESIGN.md §3's Router, small on purpose: the media issue grows it (L3
jitter buffer, keyframe cache, NACK, RTCP translation, a Cython fan-out with sendmmsg).

Rules:
- A publish gets a node-assigned SSRC; the publisher sends its RTP with it to the node's media
  port. The first packet latches the source address; packets with that SSRC from any other
  address are dropped (`unbound_source`), as are packets with an SSRC the node did not assign
  (`unknown_ssrc`) and packets that do not parse (`malformed`).
- A play gets a node-assigned SSRC too: the SSRC the node sends that player's media with. The
  player sends any RTP or RTCP packet carrying that SSRC (an RTCP receiver report, typically)
  from the address it wants media on; that latches its address.
- Each RTP packet is parsed once (the compiled parser, `sfu.rtp.header`), then copied per
  player and rewritten in place: the player's SSRC, and a sequence number that is contiguous
  for the player from its first packet, whichever publisher restart came between.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from sfu.rtp.header import RtpParseError, is_rtcp, parse_rtp, rewrite_rtp

Addr = tuple  # (host, port) or (host, port, flowinfo, scope_id)


@dataclass(slots=True)
class _Player:
    ssrc: int
    addr: Addr | None = None
    epoch: int = -1  # the publisher epoch its offset was set for
    seq_offset: int = 0
    last_out_seq: int | None = None


@dataclass(slots=True)
class _Publisher:
    ssrc: int
    epoch: int
    addr: Addr | None = None


@dataclass(slots=True)
class _Stream:
    publisher: _Publisher | None = None
    players: dict[str, _Player] = field(default_factory=dict)  # by session_id


class Router:
    def __init__(self, new_ssrc: Callable[[], int] = lambda: secrets.randbits(32) or 1) -> None:
        self._streams: dict[tuple[int, str], _Stream] = {}
        self._by_ssrc: dict[int, tuple[str, tuple[int, str], str | None]] = {}  # ssrc -> (role, stream key, session)
        self._new_ssrc = new_ssrc
        self._epochs = 0
        self.counters: dict[str, int] = {"packets_in": 0, "bytes_in": 0, "packets_out": 0, "bytes_out": 0}
        self.dropped: dict[str, int] = {"malformed": 0, "unknown_ssrc": 0, "unbound_source": 0}

    # ----- the control side (from signalling) ------------------------------------------------

    def _assign(self) -> int:
        while (ssrc := self._new_ssrc()) in self._by_ssrc:
            pass
        return ssrc

    def publisher(self, app_id: int, stream_id: str) -> int:
        """The SSRC the publisher of this stream must send with (assigned on first call)."""
        key = (app_id, stream_id)
        stream = self._streams.setdefault(key, _Stream())
        if stream.publisher is None:
            self._epochs += 1
            stream.publisher = _Publisher(self._assign(), self._epochs)
            self._by_ssrc[stream.publisher.ssrc] = ("publisher", key, None)
        return stream.publisher.ssrc

    def player(self, app_id: int, stream_id: str, session_id: str) -> int:
        """The SSRC this player receives the stream with (assigned on first call)."""
        key = (app_id, stream_id)
        stream = self._streams.setdefault(key, _Stream())
        p = stream.players.get(session_id)
        if p is None:
            p = stream.players[session_id] = _Player(self._assign())
            self._by_ssrc[p.ssrc] = ("player", key, session_id)
        return p.ssrc

    def end_stream(self, app_id: int, stream_id: str) -> None:
        key = (app_id, stream_id)
        stream = self._streams.get(key)
        if stream is None or stream.publisher is None:
            return
        del self._by_ssrc[stream.publisher.ssrc]
        stream.publisher = None
        if not stream.players:
            del self._streams[key]

    def remove_player(self, app_id: int, stream_id: str, session_id: str) -> None:
        key = (app_id, stream_id)
        stream = self._streams.get(key)
        p = stream.players.pop(session_id, None) if stream else None
        if p is None:
            return
        del self._by_ssrc[p.ssrc]
        if not stream.players and stream.publisher is None:
            del self._streams[key]

    def on_change(self, change) -> None:
        """A MediaChange from the room service."""
        if change.kind == "stream_ended":
            self.end_stream(change.app_id, change.stream_id)
        elif change.kind == "player_removed":
            self.remove_player(change.app_id, change.stream_id, change.session_id)

    # ----- the media side ----------------------------------------------------------------------

    def on_datagram(self, data: bytes, addr: Addr) -> list[tuple[bytes, Addr]]:
        """One datagram in; the datagrams to send out."""
        self.counters["packets_in"] += 1
        self.counters["bytes_in"] += len(data)
        if len(data) < 8:
            self.dropped["malformed"] += 1
            return []
        if is_rtcp(data):
            ssrc = int.from_bytes(data[4:8], "big")  # the sender's SSRC of the first RTCP packet
            entry = self._by_ssrc.get(ssrc)
            if entry is None:
                self.dropped["unknown_ssrc"] += 1
            elif entry[0] == "player":
                self._streams[entry[1]].players[entry[2]].addr = addr
            return []
        try:
            header = parse_rtp(data)
        except RtpParseError:
            self.dropped["malformed"] += 1
            return []
        entry = self._by_ssrc.get(header.ssrc)
        if entry is None:
            self.dropped["unknown_ssrc"] += 1
            return []
        role, key, session_id = entry
        stream = self._streams[key]
        if role == "player":  # a player's latch packet sent as RTP
            stream.players[session_id].addr = addr
            return []
        pub = stream.publisher
        if pub.addr is None:
            pub.addr = addr
        elif pub.addr != addr:
            self.dropped["unbound_source"] += 1
            return []
        out = []
        in_seq = header.sequence_number
        for p in stream.players.values():
            if p.addr is None:
                continue
            if p.epoch != pub.epoch:  # first packet for this player from this publisher: continue its numbering
                p.epoch = pub.epoch
                p.seq_offset = 0 if p.last_out_seq is None else (p.last_out_seq + 1 - in_seq) & 0xFFFF
            seq = (in_seq + p.seq_offset) & 0xFFFF
            p.last_out_seq = seq
            buf = bytearray(data)
            rewrite_rtp(buf, p.ssrc, seq, header.timestamp, header.payload_type)
            out.append((bytes(buf), p.addr))
        self.counters["packets_out"] += len(out)
        self.counters["bytes_out"] += len(out) * len(data)
        return out
