"""The Router: DESIGN.md §2-3's media plane as a sans-IO core.

Rules:
- A stream has publisher tracks (at most one audio and one video), each a `PublisherTrack`
  (sfu/media/track.py: repair, caches, the L3 timeline, fan-out). Each has its own node ports
  (socket key = its track id; an even port and the next, for RTCP without rtcp-mux): whatever
  arrives there belongs to that track, whatever its SSRC (stock tools pick their own). The first
  RTP packet latches the source address; RTP from any other address, and RTCP from another
  host, are dropped (`unbound_source`).
- A player has one `PlayerTrack` per kind, with a node-assigned SSRC and its mode (RTC: forwarded
  at once; L3: released on the track's shared timeline). Media leaves from the shared socket (key
  `SHARED`) to the player track's address: given up front (the HTTP API), or latched when the
  player sends an RTCP or RTP packet whose sender SSRC is its track's SSRC to the shared socket.
  A player's NACKs are answered from the track's retransmission history, its PLI/FIR join the
  track's aggregated keyframe requests, its receiver reports and REMB feed its path's congestion
  estimate, and its latency budget (sfu/media/budget.py) decides per frame what it is sent: it
  drops frames nothing depends on first, then skips to the next keyframe, audio last. Anything else on the shared socket is dropped
  (`unknown_ssrc`).
- A player track may expect a codec (`add_player(codecs=)`: an HTTP player's SDP named it before
  the stream was published). It is never given a publisher track of another codec: it stays
  detached, and the pair is reported once (`take_codec_mismatches()`) for its owner to end.
- Datagrams that do not parse are dropped (`malformed`). Nothing raises on bad input.
- Outputs are (socket key to send from, datagram, destination); `next_timer()`/`on_timer(now)`
  drive the L3 releases, NACKs and keyframe requests. `next_timer()` is the earliest of the
  tracks' `next_timer()`, kept between calls: every call into a track (a datagram or an event for
  it, a timer, a player joining, leaving or sending it RTCP) marks it (`_touch`), and only marked
  tracks are asked again. A packet the fast path keeps to itself moves no timer. `on_timer(now)`
  calls only the tracks whose time has come (earliest first), so a wake-up costs what is due, not
  what the node carries: the tracks' deadlines are kept in a heap.
"""

from __future__ import annotations

import heapq
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from sfu.media.fastpath import EV_AGAIN, EV_NONE, EV_RTP
from sfu.media.jitter import StreamTarget
from sfu.media.player import Addr, PlayerPath, PlayerTrack
from sfu.media.totals import MediaTotals
from sfu.media.track import MediaSettings, Out, PublisherTrack, TrackSpec
from sfu.rtp.header import RtpParseError, is_rtcp, parse_rtp
from sfu.rtp.rtcp import Fir, Nack, Pli, ReceiverReport, Remb, RtcpParseError, parse_rtcp

SHARED = 0  # the key of the shared socket; publisher tracks have keys >= 1
KINDS = ("audio", "video")
DEFAULT_TRACKS = (TrackSpec("audio", "opus", 111), TrackSpec("video", "VP8", 96))

__all__ = ["DEFAULT_TRACKS", "KINDS", "SHARED", "Addr", "CodecMismatch", "MediaSettings", "Router", "TrackSpec"]


@dataclass(frozen=True, slots=True)
class CodecMismatch:
    """A player track that expects one codec, and the stream's publisher track of that kind has another."""

    app_id: int
    stream_id: str
    session_id: str
    kind: str
    expected: str
    published: str


def _takes(player: PlayerTrack, spec: TrackSpec) -> bool:
    return player.codec is None or player.codec == spec.codec


@dataclass(slots=True)
class _Stream:
    tracks: dict[str, PublisherTrack] = field(default_factory=dict)  # by kind
    players: dict[str, dict[str, PlayerTrack]] = field(default_factory=dict)  # session -> kind -> track


class Router:
    def __init__(self, settings: MediaSettings | None = None,
                 new_ssrc: Callable[[], int] = lambda: secrets.randbits(32) or 1) -> None:
        self.settings = settings or MediaSettings()
        self._streams: dict[tuple[int, str], _Stream] = {}
        self._tracks: dict[int, PublisherTrack] = {}
        self._player_ssrcs: dict[int, tuple[PlayerTrack, tuple[int, str]]] = {}
        self._new_ssrc = new_ssrc
        self._next_track = 1
        self._epochs = 0
        self._counters: dict[str, int] = {"packets_in": 0, "bytes_in": 0, "packets_out": 0, "bytes_out": 0,
                                         "nacks_received": 0, "keyframe_requests_received": 0, "unsent": 0}
        self._dropped: dict[str, int] = {"malformed": 0, "unknown_ssrc": 0, "unbound_source": 0}
        self.ended = MediaTotals()  # the counters of tracks and players that ended, kept for the totals
        self._timers: dict[int, float] = {}  # track id -> its next_timer() when last asked (None: left out)
        self._touched: set[int] = set()  # tracks called into since: their next_timer() may have moved
        self._heap: list[tuple[float, int]] = []  # (deadline, track id): each of _timers, and stale entries
        self._mismatches: list[CodecMismatch] = []

    @property
    def counters(self) -> dict[str, int]:
        """Node-wide traffic counters: packets/bytes in and out, NACKs and keyframe requests
        received, unsent. What the tracks' fast paths counted since is folded in first."""
        self._absorb_all()
        return self._counters

    @property
    def dropped(self) -> dict[str, int]:
        """Datagrams dropped at ingress, by reason (malformed, unknown_ssrc, unbound_source)."""
        self._absorb_all()
        return self._dropped

    # ----- the control side ------------------------------------------------------------------

    def add_publisher(self, app_id: int, stream_id: str, specs: tuple[TrackSpec, ...]) -> list[int]:
        """Register a stream's publisher tracks; returns their track ids (the IO layer opens ports)."""
        key = (app_id, stream_id)
        stream = self._streams.setdefault(key, _Stream())
        if stream.tracks:
            raise ValueError(f"stream {stream_id!r} already has a publisher")
        kinds = [s.kind for s in specs]
        if not specs or len(set(kinds)) != len(kinds) or not set(kinds) <= set(KINDS):
            raise ValueError(f"tracks must be at most one audio and one video, got {kinds}")
        self._epochs += 1
        ids = []
        shared = StreamTarget()  # one L3 target delay for the stream's tracks: they leave in lip sync
        for spec in specs:
            track = PublisherTrack(self._next_track, key, spec, self._epochs, self._assign(), self.settings, shared)
            self._next_track += 1
            self._tracks[track.track_id] = track
            stream.tracks[spec.kind] = track
            ids.append(track.track_id)
            self._touch(track)
            for session_id, kinds_of in stream.players.items():
                if spec.kind in kinds_of:
                    self._attach(key, session_id, track, kinds_of[spec.kind])
        return ids

    def _attach(self, key: tuple[int, str], session_id: str, track: PublisherTrack, player: PlayerTrack) -> None:
        if _takes(player, track.spec):
            track.attach(player)
        else:
            self._mismatches.append(CodecMismatch(key[0], key[1], session_id, player.kind, player.codec or "",
                                                  track.spec.codec))

    def take_codec_mismatches(self) -> list[CodecMismatch]:
        """The player tracks left detached since the last call, because their stream's publisher track
        has another codec than they expect (module rules)."""
        out, self._mismatches = self._mismatches, []
        return out

    def publisher_tracks(self, app_id: int, stream_id: str) -> list[tuple[int, TrackSpec]]:
        stream = self._streams.get((app_id, stream_id))
        return [(t.track_id, t.spec) for t in stream.tracks.values()] if stream else []

    def add_player(self, app_id: int, stream_id: str, session_id: str, addrs: dict[str, Addr] | None = None,
                   payload_types: dict[str, int] | None = None, *, l3: bool = False,
                   now: float = 0.0, codecs: dict[str, str] | None = None) -> tuple[dict[str, int], list[Out]]:
        """A player's tracks (one per kind): kind -> the SSRC it receives with, and what to send at once.

        `payload_types` maps a kind to the payload type the player expects (default: the publisher's);
        `codecs` a kind to the codec it takes (default: any; module rules), set when its tracks are made.
        """
        key = (app_id, stream_id)
        stream = self._streams.setdefault(key, _Stream())
        tracks = stream.players.get(session_id)
        if tracks is None:
            tracks = stream.players[session_id] = {}
            path = PlayerPath()
            for kind in KINDS:
                pt = tracks[kind] = PlayerTrack(kind, self._assign(), l3, path=path, codec=(codecs or {}).get(kind))
                if kind in stream.tracks:  # a stream being published: its first frame is timed
                    pt.play_at = now
                self._player_ssrcs[pt.ssrc] = (pt, key)
                if kind in stream.tracks:
                    self._touch(stream.tracks[kind])
                    self._attach(key, session_id, stream.tracks[kind], pt)
        out: list[Out] = []
        for kind, pt in (payload_types or {}).items():
            tracks[kind].payload_type = pt
        for kind, addr in (addrs or {}).items():
            tracks[kind].addr = addr
            track = self._track_of(tracks[kind], key)
            if track is not None:
                self._touch(track)
                out += track.start_player(tracks[kind], now)
        return {kind: p.ssrc for kind, p in tracks.items()}, self._count(out)

    def end_stream(self, app_id: int, stream_id: str) -> list[int]:
        """The publisher is gone; returns the track ids whose ports the IO layer closes."""
        key = (app_id, stream_id)
        stream = self._streams.get(key)
        if stream is None:
            return []
        ids = [t.track_id for t in stream.tracks.values()]
        for tid in ids:
            track = self._tracks.pop(tid)
            self._touch(track)  # gone: its timers leave with it
            track.close()
            self._player_ssrcs.pop(track.node_ssrc, None)
            self._absorb(track)
            self.ended.retire_track(track)
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
                self._touch(stream.tracks[kind])
                stream.tracks[kind].detach(pt)
        self.ended.retire_player(tracks.values())
        if not stream.players and not stream.tracks:
            del self._streams[key]

    def last_packet(self, app_id: int, stream_id: str) -> float | None:
        """When the stream's publisher last sent media (None: never)."""
        stream = self._streams.get((app_id, stream_id))
        times = [t.last_packet for t in stream.tracks.values() if t.last_packet is not None] if stream else []
        return max(times) if times else None

    def track(self, track_id: int) -> PublisherTrack | None:
        track = self._tracks.get(track_id)
        if track is not None:
            self._absorb(track)
        return track

    def tracks(self) -> list[PublisherTrack]:
        """The live publisher tracks, their counters up to date."""
        self._absorb_all()
        return list(self._tracks.values())

    # ----- for metrics: totals that never go down, and samples drained once -----------------

    def totals(self) -> dict[str, int]:
        """Node-wide media totals over live and ended tracks and players (sfu/media/totals.py)."""
        self._absorb_all()
        for track in self._tracks.values():
            self._touch(track)
            track.catch_up()  # what the fast path held for its jitter buffer counts too
            track.sync_drops()  # and what the fast path dropped for its players (their closed gates)
        players = [p.values() for s in self._streams.values() for p in s.players.values()]
        return self.ended.totals(self._tracks.values(), players)

    def take_delay_samples(self) -> list[float]:
        """L3 buffer delays (seconds) since the last call, all tracks."""
        return self.ended.take_delay_samples(self._tracks.values())

    def take_first_frame_samples(self) -> list[tuple[str, float]]:
        """(mode, seconds from play request to first keyframe packet sent) since the last call."""
        return self.ended.take_first_frame_samples(self._tracks.values())

    def _assign(self) -> int:
        while (ssrc := self._new_ssrc()) in self._player_ssrcs:
            pass
        self._player_ssrcs[ssrc] = None  # reserved; replaced by its owner
        return ssrc

    def _count(self, out: list[Out]) -> list[Out]:
        if not out:
            return out
        self._counters["packets_out"] += len(out)
        self._counters["bytes_out"] += sum(len(d) for _, d, _ in out)
        return out

    # ----- the media side ----------------------------------------------------------------------

    def on_datagram(self, socket_key: int, data: bytes, addr: Addr, now: float) -> list[Out]:
        """One datagram in on a socket; the datagrams to send."""
        if socket_key == SHARED:
            self._counters["packets_in"] += 1
            self._counters["bytes_in"] += len(data)
            if len(data) < 8:
                self._dropped["malformed"] += 1
                return []
            return self._count(self._on_shared(data, addr, now))
        track = self._tracks.get(socket_key)
        if track is None:  # a port being closed
            self._counters["packets_in"] += 1
            self._counters["bytes_in"] += len(data)
            self._dropped["unknown_ssrc"] += 1
            return []
        event = track.fast.ingest(data, addr, now)
        slow = self._count(self._on_event(track, event, now)) if event != EV_NONE else []
        out = track.fast.take_out()  # what the fast path sent (sans-IO: it has no socket)
        out += slow
        self._absorb(track)
        return out

    def pump(self, socket_key: int, sock, now: float, send: Callable[[list[Out]], None],
             clock: Callable[[], float] | None = None) -> None:
        """The IO shell's way in: read what waits on a publisher track's socket. The fast path
        sends its own datagrams (its track's `fast.output` is set); `send` gets the others as
        they come, so the order toward each player holds. With `clock`, each read after the
        first is timed afresh (Python's work in between takes time: a datagram's arrival is
        converted from its kernel timestamp against the time of the read)."""
        track = self._tracks.get(socket_key)
        if track is not None:
            self._drain(track, track.fast.pump(sock, now), sock, now, send, clock)

    def resume(self, socket_key: int, event: int, sock, now: float, send: Callable[[list[Out]], None],
               clock: Callable[[], float] | None = None) -> None:
        """`pump`, after the track's fast path (a `Reader`) returned `event` from the socket at
        `now`: the event is handled, then the socket read on until the fast path needs Python no more."""
        track = self._tracks.get(socket_key)
        if track is not None:
            self._drain(track, event, sock, now, send, clock)

    def _drain(self, track: PublisherTrack, event: int, sock, now: float, send: Callable[[list[Out]], None],
               clock: Callable[[], float] | None) -> None:
        fast = track.fast
        while event != EV_NONE:
            if event != EV_AGAIN:  # (EV_AGAIN: a datagram came in after `now`; read it with a fresh one)
                out = self._on_event(track, event, now)
                if out:
                    send(self._count(out))
            if clock is not None:
                now = clock()
            event = fast.pump(sock, now)
        self._absorb(track)

    def _on_event(self, track: PublisherTrack, event: int, now: float) -> list[Out]:
        self._touched.add(track.track_id)
        if event == EV_RTP:
            return track.on_rtp(now)
        # RTCP may come from another port of the bound host: senders without rtcp-mux (ffmpeg,
        # GStreamer) send it from a second socket
        bound, addr = track.addr, track.fast.slow_addr
        if bound is not None and addr[0] != bound[0]:
            self._dropped["unbound_source"] += 1
            return []
        track.on_rtcp(track.fast.slow_data, now)
        return []

    def _absorb_all(self) -> None:
        for track in self._tracks.values():
            self._absorb(track)

    def _absorb(self, track: PublisherTrack) -> None:
        """Fold what the track's fast path counted into the Router's and the track's counters
        (done when Python handles the track, and before anyone reads them)."""
        (packets_in, bytes_in, packets_out, bytes_out, malformed, unbound, bad_payload, unsent,
         rtp_packets) = track.fast.take_counters()
        c = self._counters
        c["packets_in"] += packets_in
        c["bytes_in"] += bytes_in
        c["packets_out"] += packets_out
        c["bytes_out"] += bytes_out
        c["unsent"] += unsent
        self._dropped["malformed"] += malformed
        self._dropped["unbound_source"] += unbound
        track.counters["bad_payload"] += bad_payload
        track.counters["packets"] += rtp_packets

    def _on_shared(self, data: bytes, addr: Addr, now: float) -> list[Out]:
        if not is_rtcp(data):
            try:
                ssrc = parse_rtp(data).ssrc
            except RtpParseError:
                self._dropped["malformed"] += 1
                return []
            return self._latch(ssrc, addr, now)
        try:
            packets = parse_rtcp(data)
        except RtcpParseError:
            self._dropped["malformed"] += 1
            return []
        ssrc = int.from_bytes(data[4:8], "big")  # the sender SSRC of the first packet
        out = self._latch(ssrc, addr, now)
        for packet in packets:
            if isinstance(packet, (ReceiverReport, Remb)):
                entry = self._player_ssrcs.get(packet.ssrc if isinstance(packet, ReceiverReport) else packet.sender_ssrc)
                if entry is not None and entry[0].path is not None:
                    if not entry[0].path.measured:  # its budget judges each frame now: out of the fast tables
                        entry[0].path.measured = True
                        stream = self._streams.get(entry[1])
                        for track in stream.tracks.values() if stream else ():
                            self._touch(track)
                            track.refresh(entry[0].path)
                    cc = entry[0].path.congestion
                    if isinstance(packet, Remb):
                        cc.on_remb(packet.bitrate_bps, now)
                    else:
                        for block in packet.reports[:1]:  # one path: the first block speaks for it
                            cc.on_receiver_report(block, now, *self._report_facts(block, now))
                            entry[0].path.budget.set_path_delay(cc.queue_delay)
                continue
            if isinstance(packet, (Nack, Pli, Fir)):
                media_ssrc = packet.entries[0][0] if isinstance(packet, Fir) and packet.entries else \
                    getattr(packet, "media_ssrc", 0)
                entry = self._player_ssrcs.get(media_ssrc) or self._player_ssrcs.get(packet.sender_ssrc)
                if entry is None:
                    continue
                player, key = entry
                track = self._track_of(player, key)
                if track is None:
                    continue
                self._touch(track)
                if isinstance(packet, Nack):
                    self._counters["nacks_received"] += 1
                    out += track.on_player_nack(player, packet.lost, now)
                else:
                    self._counters["keyframe_requests_received"] += 1
                    path = player.path
                    if path is None or not path.measured or path.budget.allow_keyframe_request(now):
                        track.requester.request(now, "player_pli")
        return out

    def _report_facts(self, block, now: float) -> tuple[float | None, float | None, int | None, tuple | None]:
        """For a player's report block: the round trip (from when the node sent the SR it echoes), the
        average size of the packets the node sent it on that SSRC, how many it had been sent a round
        trip ago (strictly before: the report could not have seen later ones), and its first packet's
        sequence number and when it went (a first report's interval starts there)."""
        entry = self._player_ssrcs.get(block.ssrc)
        if not entry:
            return None, None, None, None
        p, key = entry
        track = self._track_of(p, key)
        if track is not None:
            track.sync(p)  # what the fast path sent it counts too
        size = 12 + p.octets_sent / p.packets_sent if p.packets_sent else None
        rtt = p.report_clock.rtt(block, now)
        start = None if p.first_sent_at is None else (p.rewriter.initial, p.first_sent_at)
        # what it had been sent when it made the report: not what was still on the way (one round trip)
        return rtt, size, p.packets_sent_before(now - (rtt or 0.0)), start

    def _latch(self, ssrc: int, addr: Addr, now: float) -> list[Out]:
        entry = self._player_ssrcs.get(ssrc)
        if entry is None:
            self._dropped["unknown_ssrc"] += 1
            return []
        player, key = entry
        if player.addr == addr:
            return []
        player.addr = addr
        track = self._track_of(player, key)
        if track is None:
            return []
        self._touch(track)
        return track.start_player(player, now)

    def _track_of(self, player: PlayerTrack, key) -> PublisherTrack | None:
        """The publisher track a player (of the stream `key`) plays, if the stream has it now (of a codec
        the player takes)."""
        stream = self._streams.get(key)
        track = stream.tracks.get(player.kind) if stream else None
        return track if track is not None and _takes(player, track.spec) else None

    def _touch(self, track: PublisherTrack) -> None:
        """The track is being called into: its next_timer() is asked again at the next next_timer()."""
        self._touched.add(track.track_id)

    def next_timer(self) -> float | None:
        touched, timers, heap = self._touched, self._timers, self._heap
        if touched:
            tracks = self._tracks
            for tid in touched:
                track = tracks.get(tid)
                new = track.next_timer() if track is not None else None
                if new is None:
                    timers.pop(tid, None)
                elif timers.get(tid) != new:
                    timers[tid] = new
                    heapq.heappush(heap, (new, tid))  # the former entry, if any, is stale now
            touched.clear()
            if len(heap) > 2 * len(timers) + 64:  # stale entries that never came to the top
                heap[:] = [(t, tid) for tid, t in timers.items()]
                heapq.heapify(heap)
        while heap and timers.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def on_timer(self, now: float) -> list[Out]:
        """Every track whose next_timer() is due at `now`, earliest first (the others are not called)."""
        self.next_timer()  # the tracks called into since: their deadlines afresh
        heap, timers, tracks = self._heap, self._timers, self._tracks
        due: list[PublisherTrack] = []
        while heap and heap[0][0] <= now:
            deadline, tid = heapq.heappop(heap)
            if timers.get(tid) == deadline:  # (not stale, and not a second entry of the same deadline)
                del timers[tid]
                due.append(tracks[tid])
        out: list[Out] = []
        for track in due:
            self._touched.add(track.track_id)
            slow = self._count(track.on_timer(now))
            out += track.fast.take_out()  # the fast table's L3 players (sans-IO)
            out += slow
            self._absorb(track)
        return out
