"""The media path: plain RTP in, RTC forwarding out, as a sans-IO core.

The seed of DESIGN.md §3's Router; the media issue grows it (L3 jitter buffer, keyframe cache,
NACK, RTCP translation, a Cython fan-out with sendmmsg) from the parts in docs/media.md.

Rules:
- A stream has publisher tracks (one per kind: audio, video). Each publisher track has its own
  node ports (`socket` key = its track id; an even port and the next, for RTCP without rtcp-mux):
  whatever arrives there belongs to that track, whatever its SSRC (stock tools pick their own). The
  first RTP packet latches the source address; RTP from any other address, and RTCP from other
  than that address or its port + 1, are dropped (`unbound_source`).
- A player has one player track per publisher kind, each with a node-assigned SSRC. Media leaves
  from the shared socket (key `SHARED`) to the player track's address: given up front (the HTTP
  API), or latched when the player sends an RTCP packet (a receiver report) or RTP packet whose
  sender SSRC is its track's SSRC to the shared socket. Anything else on the shared socket is
  dropped (`unknown_ssrc`).
- Each RTP packet is parsed once (the compiled parser, `sfu.rtp.header`), then copied per player
  and rewritten in place: the player track's SSRC, its payload type (when it asked for one), and a
  sequence number contiguous for that player from its first packet, across a publisher's restart.
- Datagrams that do not parse are dropped (`malformed`). Nothing raises on bad input.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from sfu.rtp.header import RtpParseError, is_rtcp, parse_rtp, rewrite_rtp

Addr = tuple  # (host, port) or (host, port, flowinfo, scope_id)
SHARED = 0  # the key of the shared socket; publisher tracks have keys >= 1

KINDS = ("audio", "video")


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """What a publisher declares for one track."""

    kind: str  # "audio" | "video"
    codec: str  # "opus" | "VP8" | "VP9" | "H264"
    payload_type: int

    @property
    def clock_rate(self) -> int:
        return 48000 if self.kind == "audio" else 90000


DEFAULT_TRACKS = (TrackSpec("audio", "opus", 111), TrackSpec("video", "VP8", 96))


@dataclass(slots=True)
class _PlayerTrack:
    ssrc: int
    addr: Addr | None = None
    payload_type: int | None = None  # None: the publisher's
    epoch: int = -1  # the publisher epoch its offset was set for
    seq_offset: int = 0
    last_out_seq: int | None = None


@dataclass(slots=True)
class _PublisherTrack:
    track_id: int
    key: tuple[int, str]
    spec: TrackSpec
    epoch: int
    addr: Addr | None = None
    packets: int = 0
    last_packet: float | None = None
    players: list[_PlayerTrack] = field(default_factory=list)


@dataclass(slots=True)
class _Stream:
    tracks: dict[str, _PublisherTrack] = field(default_factory=dict)  # by kind
    players: dict[str, dict[str, _PlayerTrack]] = field(default_factory=dict)  # session -> kind -> track


class Router:
    def __init__(self, new_ssrc: Callable[[], int] = lambda: secrets.randbits(32) or 1) -> None:
        self._streams: dict[tuple[int, str], _Stream] = {}
        self._tracks: dict[int, _PublisherTrack] = {}
        self._player_ssrcs: dict[int, _PlayerTrack] = {}
        self._new_ssrc = new_ssrc
        self._next_track = 1
        self._epochs = 0
        self.counters: dict[str, int] = {"packets_in": 0, "bytes_in": 0, "packets_out": 0, "bytes_out": 0}
        self.dropped: dict[str, int] = {"malformed": 0, "unknown_ssrc": 0, "unbound_source": 0}

    # ----- the control side ------------------------------------------------------------------

    def add_publisher(self, app_id: int, stream_id: str, specs: tuple[TrackSpec, ...]) -> list[int]:
        """Register a stream's publisher tracks; returns their track ids (the IO layer opens a port each)."""
        key = (app_id, stream_id)
        stream = self._streams.setdefault(key, _Stream())
        if stream.tracks:
            raise ValueError(f"stream {stream_id!r} already has a publisher")
        kinds = [s.kind for s in specs]
        if not specs or len(set(kinds)) != len(kinds) or not set(kinds) <= set(KINDS):
            raise ValueError(f"tracks must be at most one audio and one video, got {kinds}")
        self._epochs += 1
        ids = []
        for spec in specs:
            track = _PublisherTrack(self._next_track, key, spec, self._epochs)
            self._next_track += 1
            self._tracks[track.track_id] = track
            stream.tracks[spec.kind] = track
            ids.append(track.track_id)
        for kinds_of in stream.players.values():
            for kind, pt in kinds_of.items():
                if kind in stream.tracks:
                    stream.tracks[kind].players.append(pt)
        return ids

    def publisher_tracks(self, app_id: int, stream_id: str) -> list[tuple[int, TrackSpec]]:
        stream = self._streams.get((app_id, stream_id))
        return [(t.track_id, t.spec) for t in stream.tracks.values()] if stream else []

    def add_player(self, app_id: int, stream_id: str, session_id: str,
                   addrs: dict[str, Addr] | None = None,
                   payload_types: dict[str, int] | None = None) -> dict[str, int]:
        """A player's tracks (one per kind); returns kind -> the SSRC it receives with.

        `payload_types` maps a kind to the payload type the player expects (default: the publisher's).
        """
        key = (app_id, stream_id)
        stream = self._streams.setdefault(key, _Stream())
        tracks = stream.players.get(session_id)
        if tracks is None:
            tracks = stream.players[session_id] = {}
            for kind in KINDS:
                pt = tracks[kind] = _PlayerTrack(self._assign())
                self._player_ssrcs[pt.ssrc] = pt
                if kind in stream.tracks:
                    stream.tracks[kind].players.append(pt)
        for kind, addr in (addrs or {}).items():
            tracks[kind].addr = addr
        for kind, pt in (payload_types or {}).items():
            tracks[kind].payload_type = pt
        return {kind: pt.ssrc for kind, pt in tracks.items()}

    def end_stream(self, app_id: int, stream_id: str) -> list[int]:
        """The publisher is gone; returns the track ids whose ports the IO layer closes."""
        key = (app_id, stream_id)
        stream = self._streams.get(key)
        if stream is None:
            return []
        ids = [t.track_id for t in stream.tracks.values()]
        for tid in ids:
            del self._tracks[tid]
        stream.tracks.clear()
        if not stream.players:
            del self._streams[key]
        return ids

    def remove_player(self, app_id: int, stream_id: str, session_id: str) -> None:
        key = (app_id, stream_id)
        stream = self._streams.get(key)
        tracks = stream.players.pop(session_id, None) if stream else None
        if tracks is None:
            return
        for kind, pt in tracks.items():
            del self._player_ssrcs[pt.ssrc]
            if kind in stream.tracks:
                stream.tracks[kind].players.remove(pt)
        if not stream.players and not stream.tracks:
            del self._streams[key]

    def last_packet(self, app_id: int, stream_id: str) -> float | None:
        """When the stream's publisher last sent media (None: never)."""
        stream = self._streams.get((app_id, stream_id))
        times = [t.last_packet for t in stream.tracks.values() if t.last_packet is not None] if stream else []
        return max(times) if times else None

    def _assign(self) -> int:
        while (ssrc := self._new_ssrc()) in self._player_ssrcs:
            pass
        return ssrc

    # ----- the media side ----------------------------------------------------------------------

    def on_datagram(self, socket_key: int, data: bytes, addr: Addr, now: float) -> list[tuple[bytes, Addr]]:
        """One datagram in on a socket; the datagrams to send out from the shared socket."""
        self.counters["packets_in"] += 1
        self.counters["bytes_in"] += len(data)
        if len(data) < 8:
            self.dropped["malformed"] += 1
            return []
        if socket_key == SHARED:
            return self._on_shared(data, addr)
        track = self._tracks.get(socket_key)
        if track is None:  # a port being closed
            self.dropped["unknown_ssrc"] += 1
            return []
        if is_rtcp(data):
            # RTCP comes from the bound source, or from its port + 1 (senders without rtcp-mux)
            bound = track.addr
            if bound is not None and addr != bound and not (addr[0] == bound[0] and addr[1] == bound[1] + 1):
                self.dropped["unbound_source"] += 1
            return []  # sender reports: used by the media issue's SR translation
        if track.addr is not None and track.addr != addr:
            self.dropped["unbound_source"] += 1
            return []
        try:
            header = parse_rtp(data)
        except RtpParseError:
            self.dropped["malformed"] += 1
            return []
        if track.addr is None:
            track.addr = addr
        track.packets += 1
        track.last_packet = now
        out = []
        in_seq = header.sequence_number
        for p in track.players:
            if p.addr is None:
                continue
            if p.epoch != track.epoch:  # first packet for this player from this publisher: continue its numbering
                p.epoch = track.epoch
                p.seq_offset = 0 if p.last_out_seq is None else (p.last_out_seq + 1 - in_seq) & 0xFFFF
            seq = (in_seq + p.seq_offset) & 0xFFFF
            p.last_out_seq = seq
            buf = bytearray(data)
            rewrite_rtp(buf, p.ssrc, seq, header.timestamp,
                        header.payload_type if p.payload_type is None else p.payload_type)
            out.append((bytes(buf), p.addr))
        self.counters["packets_out"] += len(out)
        self.counters["bytes_out"] += len(out) * len(data)
        return out

    def _on_shared(self, data: bytes, addr: Addr) -> list[tuple[bytes, Addr]]:
        if is_rtcp(data):
            ssrc = int.from_bytes(data[4:8], "big")  # the sender SSRC of the first RTCP packet
        else:
            try:
                ssrc = parse_rtp(data).ssrc
            except RtpParseError:
                self.dropped["malformed"] += 1
                return []
        pt = self._player_ssrcs.get(ssrc)
        if pt is None:
            self.dropped["unknown_ssrc"] += 1
        else:
            pt.addr = addr
        return []
