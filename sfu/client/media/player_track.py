"""PlayerTrack: one incoming track of the SDK's player, as a sans-IO core.

Datagrams in (RTP from the node, RTCP such as a sender report), frames and RTCP out. It never
reads a clock: ``now`` is monotonic seconds, ``wallclock`` Unix seconds, both passed in. After
every input (``on_datagram``, ``poll``) the IO shell drains ``take_frames()`` and
``take_rtcp()`` (send each RTCP packet to the node's media address) and re-arms one timer at
``next_timer()``.

Rules:

- Ingress. RTP whose SSRC is not the track's ``ssrc`` (the one the play reply gave) is counted
  (``foreign``) and ignored, as are datagrams that do not parse (``malformed``). The sequence
  number is widened once (``sfu.rtp.seq.SeqUnwrapper``); a packet seen already (within the
  last 4096) is a duplicate. ``packets`` counts the packets kept; ``lost()`` is RFC 3550's
  cumulative loss: expected (highest - first + 1) minus kept, never below 0.
- Codec (video). The play reply's codec when the node gives one; otherwise read from the
  first packet: a first byte with F=0 and NAL type 1-9, 24 (STAP-A) or 28 (FU-A) is H.264,
  anything else VP8 (VP8 descriptors from libwebrtc, ffmpeg, GStreamer and this SDK set X,
  which H.264 forbids; the bytes VP8 gives without X are undefined or reserved NAL types).
- Audio (Opus): every packet is a frame, returned at once.
- Video: payload flags come from ``sfu.media.codecs.inspect_payload`` (a payload it rejects
  still counts as received, for loss and NACK, but joins no frame); frames from
  ``FrameAssembler`` (released the moment they are complete, in order; an H.264 start is
  certain when its first NAL unit is SPS or an access unit delimiter). Each frame returned is
  depacketized (``data``; None if that fails, counted in ``depacketize_errors``), with
  ``latency`` = wallclock when it became complete minus its abs-capture-time (id 3), when the
  packets carry one.
- NACK (video only). Gaps go through ``sfu.media.nack.NackGenerator`` (given up after
  ``max_wait``, when the assembler stops waiting); each ``poll`` that yields seqs sends one
  ``Nack`` with sender and media SSRC = the track's ``ssrc`` (the node sends us media with it).
- PLI. When the assembler needs a keyframe (a frame dropped or skipped), the NACK generator
  gave up in a loss storm, or the caller asks (``request_keyframe``: its decoder failed), a
  ``Pli`` goes out at once; until a keyframe is returned, again every ``pli_interval`` as long as
  packets keep arriving.
- Reports. ``receiver_report(now)`` is an RR with sender SSRC ``ssrc`` and, once packets
  arrived, one report block (fraction lost since the last report, cumulative loss, extended
  highest seq, interarrival jitter in timestamp units, LSR/DLSR of the last SR received).

Counters: packets, duplicates, foreign, malformed, payload_errors, depacketize_errors,
frames (returned), keyframes (returned), nack_packets, nacked (seqs), plis.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sfu.media.codecs import Codec, PayloadError, inspect_payload
from sfu.media.nack import NackGenerator
from sfu.media.packet import MediaPacket
from sfu.rtp.header import RtpParseError, is_rtcp, parse_rtp
from sfu.rtp.rtcp import (Nack, Pli, ReceiverReport, ReportBlock, RtcpParseError, SenderReport, compact_ntp,
                          parse_rtcp, serialize)
from sfu.rtp.seq import SeqUnwrapper

from .assembler import FrameAssembler
from .payload import depacketize
from .rtp import header_extensions, read_abs_capture_time, unix_from_ntp

__all__ = ["PlayerTrack", "ReceivedFrame", "sniff_video_codec"]

_SEEN = 4096


@dataclass(slots=True)
class ReceivedFrame:
    kind: str  # "audio" | "video"
    codec: Codec
    timestamp: int
    keyframe: bool
    data: bytes | None  # the codec's frame (VP8 frame, H.264 Annex B access unit, Opus packet)
    completed_at: float  # monotonic seconds
    capture_ntp: int | None
    latency: float | None  # seconds, from abs-capture-time


def sniff_video_codec(payload: bytes) -> Codec:
    """VP8 or H.264 from the first byte of a payload (rule in the module docstring)."""
    b = payload[0] if payload else 0x80
    if not b & 0x80 and (1 <= b & 0x1F <= 9 or b & 0x1F in (24, 28)):
        return Codec.H264
    return Codec.VP8


def _h264_certain_start(payload: bytes) -> bool:
    t = payload[0] & 0x1F
    if t == 24 and len(payload) > 3:
        t = payload[3] & 0x1F
    return t in (7, 9)


class PlayerTrack:
    def __init__(self, kind: str, ssrc: int, codec: Codec | None = None, *, max_wait: float = 0.25,
                 pli_interval: float = 0.3, rtt: float = 0.05) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")
        self.kind = kind
        self.ssrc = ssrc
        self.codec = Codec.OPUS if kind == "audio" else codec
        self.max_wait = max_wait
        self.pli_interval = pli_interval
        self.rtt = rtt
        self._seq = SeqUnwrapper()
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self._first: int | None = None
        self._highest: int | None = None
        self._expected_prior = 0
        self._received_prior = 0
        self._jitter = 0.0  # timestamp units
        self._transit: float | None = None
        self._sr: tuple[int, float] | None = None  # (compact NTP of the last SR, now it arrived)
        self._assembler: FrameAssembler | None = None
        self._nack: NackGenerator | None = None
        self._captures: dict[int, int] = {}  # RTP timestamp -> abs-capture-time of a pending frame
        self._frames: list[ReceivedFrame] = []
        self._rtcp: list[bytes] = []
        self._last_pli: float | None = None
        self._packet_since_pli = False
        self._asked = False  # request_keyframe() was called and no keyframe was returned since
        self.first_keyframe_at: float | None = None  # `now` the first keyframe became complete
        self.latencies: deque[float] = deque(maxlen=100_000)
        self.counters: dict[str, int] = dict.fromkeys((
            "packets", "duplicates", "foreign", "malformed", "payload_errors", "depacketize_errors",
            "frames", "keyframes", "nack_packets", "nacked", "plis"), 0)
        if self.codec is not None:
            self._setup_video()

    def _setup_video(self) -> None:
        if self.kind != "video" or self._assembler is not None:
            return
        self._assembler = FrameAssembler(unambiguous_start=self.codec is not Codec.H264, max_wait=self.max_wait)
        self._nack = NackGenerator(max_age=self.max_wait, reorder_delay=0.005, default_rtt=self.rtt)

    # -- inputs -------------------------------------------------------------------------------

    def on_datagram(self, data: bytes, now: float, wallclock: float) -> None:
        if len(data) < 8:
            self.counters["malformed"] += 1
            return
        if is_rtcp(data):
            self._on_rtcp(data, now)
            return
        try:
            header = parse_rtp(data)
        except RtpParseError:
            self.counters["malformed"] += 1
            return
        if header.ssrc != self.ssrc:
            self.counters["foreign"] += 1
            return
        ext = self._seq.unwrap(header.sequence_number)
        if ext in self._seen:
            self.counters["duplicates"] += 1
            return
        self._remember(ext)
        self._account(ext, header.timestamp, now)
        start = header.header_length
        payload = bytes(data[start:start + header.payload_length])
        if self.kind == "audio":
            self._emit_audio(payload, header.timestamp, now)
            return
        if self.codec is None:
            self.codec = sniff_video_codec(payload)
            self._setup_video()
        self._packet_since_pli = True
        try:
            info = inspect_payload(self.codec, payload)
        except PayloadError:
            self.counters["payload_errors"] += 1
            self._nack.on_packet(ext, now)
            self._after_input(now, wallclock)
            return
        self._nack.on_packet(ext, now, is_keyframe=info.keyframe)
        if header.timestamp not in self._captures:
            capture = read_abs_capture_time(header_extensions(data, header))
            if capture is not None:
                self._captures[header.timestamp] = capture
        packet = MediaPacket(ext, header.timestamp, header.marker, info.keyframe, info.frame_start, now, payload)
        certain = self.codec is Codec.H264 and info.frame_start and _h264_certain_start(payload)
        self._emit_video(self._assembler.push(packet, now, certain_start=certain), now, wallclock)
        self._after_input(now, wallclock)

    def poll(self, now: float, wallclock: float) -> None:
        if self._assembler is None:
            return
        lost = self._nack.poll(now, self.rtt)
        if lost:
            self._rtcp.append(serialize([Nack(self.ssrc, self.ssrc, [s & 0xFFFF for s in lost])]))
            self.counters["nack_packets"] += 1
            self.counters["nacked"] += len(lost)
        self._emit_video(self._assembler.poll(now), now, wallclock)
        self._after_input(now, wallclock)

    def _on_rtcp(self, data: bytes, now: float) -> None:
        try:
            packets = parse_rtcp(data)
        except RtcpParseError:
            self.counters["malformed"] += 1
            return
        for p in packets:
            if isinstance(p, SenderReport):
                self._sr = (compact_ntp(p.ntp_time), now)

    def _remember(self, ext: int) -> None:
        self._seen.add(ext)
        self._seen_order.append(ext)
        if len(self._seen_order) > _SEEN:
            self._seen.discard(self._seen_order.popleft())

    def _account(self, ext: int, timestamp: int, now: float) -> None:
        self.counters["packets"] += 1
        if self._first is None:
            self._first = self._highest = ext
        else:
            self._first = min(self._first, ext)
            self._highest = max(self._highest, ext)
        clock = self.codec.clock_rate if self.codec is not None else 90000
        transit = now * clock - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < clock:  # a jump of a second or more is a restart, not jitter
                self._jitter += (d - self._jitter) / 16
        self._transit = transit

    def _emit_audio(self, payload: bytes, timestamp: int, now: float) -> None:
        if not payload:
            self.counters["payload_errors"] += 1
            return
        self.counters["frames"] += 1
        self.counters["keyframes"] += 1
        self._frames.append(ReceivedFrame("audio", Codec.OPUS, timestamp, True, payload, now, None, None))

    def _emit_video(self, assembled, now: float, wallclock: float) -> None:
        for a in assembled:
            f = a.frame
            try:
                data = depacketize(self.codec, [p.data for p in f.packets])
            except PayloadError:
                data = None
                self.counters["depacketize_errors"] += 1
            capture = self._captures.pop(f.timestamp, None)
            latency = None
            if capture is not None:
                latency = wallclock - (now - a.completed_at) - unix_from_ntp(capture)
                self.latencies.append(latency)
            self.counters["frames"] += 1
            if f.keyframe:
                self._asked = False
                self.counters["keyframes"] += 1
                if self.first_keyframe_at is None:
                    self.first_keyframe_at = a.completed_at
            self._frames.append(ReceivedFrame("video", self.codec, f.timestamp, f.keyframe, data, a.completed_at,
                                              capture, latency))
        if len(self._captures) > 2 * self._assembler.pending + 16:  # forget dropped and skipped frames' captures
            self._captures = {ts: c for ts, c in self._captures.items() if self._assembler.holds(ts)}

    def _after_input(self, now: float, wallclock: float) -> None:
        needed = self._assembler.take_keyframe_needed() | self._nack.take_keyframe_needed()
        if needed:
            self._send_pli(now)
        elif (self._waiting() and self._last_pli is not None and self._packet_since_pli
              and now >= self._last_pli + self.pli_interval):  # as next_timer sums it
            self._send_pli(now)

    def _waiting(self) -> bool:
        return self._assembler.waiting_for_keyframe or self._asked

    def request_keyframe(self, now: float) -> None:
        """Send a PLI now (e.g. the decoder failed on a frame), and again until a keyframe comes."""
        self._asked = True
        self._send_pli(now)

    def _send_pli(self, now: float) -> None:
        self._rtcp.append(serialize([Pli(self.ssrc, self.ssrc)]))
        self.counters["plis"] += 1
        self._last_pli = now
        self._packet_since_pli = False

    # -- outputs ------------------------------------------------------------------------------

    def take_frames(self) -> list[ReceivedFrame]:
        frames, self._frames = self._frames, []
        return frames

    def take_rtcp(self) -> list[bytes]:
        rtcp, self._rtcp = self._rtcp, []
        return rtcp

    def next_timer(self) -> float | None:
        if self._assembler is None:
            return None
        times = [t for t in (self._nack.next_timer(), self._assembler.next_timer()) if t is not None]
        if self._waiting() and self._last_pli is not None and self._packet_since_pli:
            # only when poll would act on it: a PLI is repeated once packets flow again
            times.append(self._last_pli + self.pli_interval)
        return min(times) if times else None

    @property
    def frames_dropped(self) -> int:
        return self._assembler.counters["frames_dropped"] if self._assembler else 0

    @property
    def frames_complete(self) -> int:
        if self.kind == "audio":
            return self.counters["frames"]
        return self._assembler.counters["frames_complete"] if self._assembler else 0

    def lost(self) -> int:
        if self._first is None:
            return 0
        return max(0, self._highest - self._first + 1 - self.counters["packets"])

    def receiver_report(self, now: float) -> bytes:
        blocks = []
        if self._first is not None:
            expected = self._highest - self._first + 1
            received = self.counters["packets"]
            expected_interval = expected - self._expected_prior
            lost_interval = expected_interval - (received - self._received_prior)
            self._expected_prior, self._received_prior = expected, received
            fraction = (lost_interval << 8) // expected_interval if expected_interval > 0 and lost_interval > 0 else 0
            cumulative = max(-(1 << 23), min(expected - received, (1 << 23) - 1))
            lsr, dlsr = 0, 0
            if self._sr is not None:
                lsr, dlsr = self._sr[0], min(int((now - self._sr[1]) * 65536), 0xFFFFFFFF)
            blocks.append(ReportBlock(self.ssrc, min(fraction, 255), cumulative, self._highest & 0xFFFFFFFF,
                                      int(self._jitter) & 0xFFFFFFFF, lsr, dlsr))
        return serialize([ReceiverReport(self.ssrc, blocks)])
