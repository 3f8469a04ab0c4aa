"""One publisher track: ingress, repair, caches, the L3 timeline, and the fan-out to its players.

Per packet (`on_rtp`): widen the sequence number; inspect the payload (keyframe? frame start?);
keep it for retransmission; feed the NACK generator (gaps toward the publisher), the RTC
keyframe cache and the L3 jitter buffer; forward it at once to every RTC player.
Per timer (`on_timer`): release due L3 frames to every L3 player at the same instant (and into
the L3 keyframe cache); NACK what is missing; request a keyframe when the jitter buffer or the
NACK generator needs one or a player asked, aggregated and rate-limited.
A player that starts gets its mode's cached GOP at once, then follows live.
"""

from __future__ import annotations

from dataclasses import dataclass

from sfu.media.codecs import Codec, PayloadError, inspect_payload
from sfu.media.jitter import JitterBuffer
from sfu.media.keyframe_cache import KeyframeCache
from sfu.media.keyframe_request import KeyframeRequester
from sfu.media.nack import NackGenerator
from sfu.media.packet import MediaPacket
from sfu.media.player import Addr, PlayerTrack
from sfu.media.retransmission import RetransmissionBuffer
from sfu.media.rtt import RttEstimator
from sfu.rtp.header import parse_rtp, rewrite_rtp
from sfu.rtp.rtcp import Nack, RtcpParseError, SenderReport, parse_rtcp, serialize
from sfu.rtp.seq import SeqUnwrapper

Out = tuple[int, bytes, Addr]  # (socket key to send from, datagram, destination)
SENDER_REPORT_INTERVAL = 1.0  # seconds between the translated sender reports each player gets


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
    nack_reorder_factor: float = 2.0  # NACK a gap after this many times the arrival jitter...
    nack_max_reorder_delay: float = 0.05  # ...at most this long
    nack_keyframe_clears: bool = False  # a keyframe does not cancel older repairs: L3 still releases those frames
    keyframe_min_interval: float = 0.5
    keyframe_congestion_interval: float = 3.0  # a congested player's keyframe waits this long after the last
    retransmission_packets: int = 4096
    retransmission_age: float = 2.0


class PublisherTrack:
    def __init__(self, track_id: int, key: tuple[int, str], spec: TrackSpec, epoch: int, node_ssrc: int,
                 settings: MediaSettings) -> None:
        self.track_id = track_id
        self.key = key
        self.spec = spec
        self.epoch = epoch
        self.node_ssrc = node_ssrc  # the node's SSRC in feedback toward this publisher
        self.settings = settings
        self.codec = Codec.from_name(spec.codec)
        self.video = self.codec.is_video
        self.addr: Addr | None = None
        self.media_ssrc: int | None = None
        self.last_packet: float | None = None
        self.unwrapper = SeqUnwrapper()
        self.history = RetransmissionBuffer(settings.retransmission_packets, settings.retransmission_age, settings.rtt)
        self.nack = NackGenerator(default_rtt=settings.rtt, reorder_factor=settings.nack_reorder_factor,
                                  max_reorder_delay=settings.nack_max_reorder_delay,
                                  keyframe_clears=settings.nack_keyframe_clears)
        self.rtt = RttEstimator(settings.rtt)  # toward the publisher, from NACK turnaround
        self.requester = KeyframeRequester(settings.keyframe_min_interval,
                                           reason_intervals={"congestion": settings.keyframe_congestion_interval})
        self.jitter = JitterBuffer(spec.clock_rate, min_delay=settings.l3_min_delay,
                                   max_delay=settings.l3_max_delay, audio=not self.video,
                                   repair_quantile=settings.l3_repair_quantile, rtt_floor=settings.rtt,
                                   repair_rounds=settings.l3_repair_rounds)
        self.jitter.set_rtt(settings.rtt)
        self.rtc_cache = KeyframeCache() if self.video else None
        self.l3_cache = KeyframeCache() if self.video else None
        self.players: list[PlayerTrack] = []
        self.sender_report: SenderReport | None = None  # the publisher's last, and when it came
        self.sender_report_at = 0.0
        self.next_sender_reports: float | None = None
        self.counters = {"packets": 0, "bad_payload": 0, "nacks_sent": 0, "plis_sent": 0,
                         "retransmissions": 0, "frames_released": 0, "sender_reports": 0}

    # ----- ingress -------------------------------------------------------------------------

    def on_rtp(self, data: bytes, header, now: float) -> list[Out]:
        self.counters["packets"] += 1
        self.last_packet = now
        self.media_ssrc = header.ssrc
        highest = self.unwrapper.highest
        ext = self.unwrapper.unwrap(header.sequence_number)
        late = highest is not None and ext <= highest
        droppable = False
        if self.video:
            start = header.header_length
            try:
                info = inspect_payload(self.codec, memoryview(data)[start:start + header.payload_length])
                keyframe, frame_start, droppable = info.keyframe, info.frame_start, info.droppable
            except PayloadError:
                self.counters["bad_payload"] += 1
                keyframe = frame_start = False
        else:
            keyframe = frame_start = True
        packet = MediaPacket(ext, header.timestamp, header.marker or not self.video, keyframe, frame_start, now,
                             data, late, droppable)
        self.history.store(ext, data, now)
        if late:
            self.rtt.on_packet(ext, now)
        self.nack.on_packet(ext, now, is_keyframe=keyframe and frame_start, is_retransmission=late)
        if keyframe and frame_start:
            self.requester.on_keyframe(now)
        if self.rtc_cache is not None:
            self.rtc_cache.push(packet)
        self.jitter.push(packet, now)
        out: list[Out] = []
        pt = self.spec.payload_type
        for p in self.players:
            if p.l3 or p.addr is None:
                continue
            if not p.started:
                out += self._start(p, now)
                continue
            if not p.admit(packet, now):
                continue
            data_out = p.packet(packet, pt, self.spec.clock_rate)
            if data_out is not None:
                p.sent(len(data_out), now)
                out.append((0, data_out, p.addr))
        self._congestion_keyframes(now)
        return out

    def _congestion_keyframes(self, now: float) -> None:
        for p in self.players:
            if p.path is not None and p.path.budget.take_keyframe_needed():
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
        """SR translation: the publisher's NTP/RTP time pair, carried to now, in each player's numbering."""
        sr = self.sender_report
        self.next_sender_reports = now + SENDER_REPORT_INTERVAL
        out: list[Out] = []
        elapsed = now - self.sender_report_at
        ntp = (sr.ntp_time + round(elapsed * 2**32)) & 0xFFFFFFFFFFFFFFFF
        rtp_in = (sr.rtp_time + round(elapsed * self.spec.clock_rate)) & 0xFFFFFFFF
        for p in self.players:
            if p.addr is None or not p.started or p.timestamps is None:
                continue
            report = SenderReport(p.ssrc, ntp, p.timestamp(rtp_in, now, self.spec.clock_rate),
                                  p.packets_sent & 0xFFFFFFFF, p.octets_sent & 0xFFFFFFFF)
            p.report_clock.sent(ntp, now)
            out.append((0, serialize([report]), p.addr))
        self.counters["sender_reports"] += len(out)
        return out

    # ----- players ---------------------------------------------------------------------------

    def attach(self, player: PlayerTrack) -> None:
        player.follow(self.epoch)
        self.players.append(player)

    def detach(self, player: PlayerTrack) -> None:
        if player in self.players:
            self.players.remove(player)

    def _start(self, p: PlayerTrack, now: float) -> list[Out]:
        """A player's first frame: its mode's cached GOP at once (or, for audio, simply go live)."""
        if not self.video:
            p.started = True
            return []
        cache = self.l3_cache if p.l3 else self.rtc_cache
        packets = cache.snapshot() if cache.has_keyframe else []
        if not packets:
            self.requester.request(now, "player_start")
            return []
        p.started = True
        out = []
        for packet in packets:
            p.skip_to(packet.ext_seq)
            data = p.packet(packet, self.spec.payload_type, self.spec.clock_rate)
            if data is not None:
                out.append((0, data, p.addr))
        return out

    def start_player(self, p: PlayerTrack, now: float) -> list[Out]:
        """Called when a player's address becomes known (or at once when it was given)."""
        return [] if p.started else self._start(p, now)

    def on_player_nack(self, p: PlayerTrack, lost: list[int], now: float) -> list[Out]:
        out = []
        for seq16 in lost:
            ext = p.rewriter.original(seq16)
            if ext is None or not self.history.resend_allowed(ext, now, p.rtt or self.settings.rtt):
                continue
            data = self.history.get(ext, now)
            if data is None or not p.admit_resend(len(data), now):
                continue
            seq = p.rewriter.rewrite(ext)  # the same number it had: the numbering does not move
            if seq is None:
                continue
            buf = bytearray(data)
            h = parse_rtp(buf)
            ts = p.timestamp(h.timestamp, now, self.spec.clock_rate)  # the offset is fixed: the same as first sent
            rewrite_rtp(buf, p.ssrc, seq, ts, h.payload_type if p.payload_type is None else p.payload_type)
            out.append((0, bytes(buf), p.addr))
            p.retransmissions += 1
            self.counters["retransmissions"] += 1
        return out

    # ----- timers ----------------------------------------------------------------------------

    def next_timer(self) -> float | None:
        times = [t for t in (self.jitter.next_timer(), self.nack.next_timer(), self.requester.next_timer(),
                             self.next_sender_reports) if t is not None]
        return min(times) if times else None

    def on_timer(self, now: float) -> list[Out]:
        out: list[Out] = []
        pt = self.spec.payload_type
        for released in self.jitter.poll(now):
            frame = released.frame
            self.counters["frames_released"] += 1
            if self.l3_cache is not None:
                for packet in frame.packets:
                    self.l3_cache.push(packet)
            for p in self.players:
                if not p.l3 or p.addr is None:
                    continue
                if not p.started:
                    out += self._start(p, now)
                    continue
                if not p.admit_frame(frame, now):
                    continue  # the next frame it gets closes the gap in its numbering
                p.skip_to(frame.first_ext_seq)
                for packet in frame.packets:
                    data = p.packet(packet, pt, self.spec.clock_rate)
                    if data is not None:
                        p.sent(len(data), now)
                        out.append((0, data, p.addr))
        self._congestion_keyframes(now)
        if self.jitter.take_keyframe_needed() | self.nack.take_keyframe_needed():
            self.requester.request(now, "repair")
        if self.next_sender_reports is not None and now >= self.next_sender_reports:
            out += self._sender_reports(now)
        # every timer is consumed, with or without a publisher to send to, so none stays due
        self.nack.set_jitter(self.jitter.packet_jitter)
        lost = self.nack.poll(now, self.rtt.retry_interval)
        self.jitter.set_rtt(self.rtt.retry_interval, self.nack.reorder_delay)
        send_pli = self.requester.poll(now)
        if self.addr is None or self.media_ssrc is None:
            return out  # nothing has arrived yet: nothing to repair, no one to ask
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
