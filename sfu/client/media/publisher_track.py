"""PublisherTrack: one outgoing track of the SDK's publisher, as a sans-IO core.

Frames in (already encoded), RTP packets out; RTCP feedback in, retransmissions and keyframe
requests out; sender reports on demand. It never reads a clock (``now`` is monotonic seconds,
``wallclock`` Unix seconds, both passed in) and never touches a socket: the IO shell
(``sfu.client.media.publisher``) sends what it returns.

Rules:

- Numbering. Sequence numbers count up by one per packet from ``first_seq`` (widened to 64 bits
  internally: ``ext_seq``; the wire carries ``ext_seq & 0xFFFF``). The caller gives each frame
  its RTP timestamp (90 kHz video, 48 kHz audio, from its pacing schedule); all packets of a
  frame share it.
- Packets. ``send_frame`` packetizes with the codec's payload format (``payload.packetizer_for``,
  at most ``max_payload`` bytes each). Video: the marker is on the last packet of the frame, and
  every packet carries abs-capture-time (extension id 3, ``rtp.ABS_CAPTURE_TIME_ID``) when
  ``capture_ntp`` is given. Audio (Opus): one packet per frame; the marker is on the first
  packet of the stream only (RFC 3550 §5.1, the start of a talkspurt; we never stop talking).
- History. Every packet sent is stored in a ``RetransmissionBuffer`` by ext_seq.
- RTCP in (``on_rtcp``; whatever arrives on the track's socket is about this track, so the media
  SSRC of feedback is not checked). Malformed RTCP is counted and ignored; never raises.
  * NACK: each 16-bit seq is widened to the latest ext_seq at or below the newest sent with
    those low bits; a packet still held and not resent within the last RTT is returned to be
    sent again, unchanged (same seq, timestamp, SSRC: RFC 4588 RTX is not used).
  * PLI, and FIR whose command sequence number differs from the last FIR's: a keyframe is
    requested; ``take_keyframe_request()`` reads and clears it (several requests before the
    next frame are one keyframe).
  * RR: a report block about our SSRC with LSR ≠ 0 gives the RTT when ``wallclock`` is passed
    (RFC 3550 §6.4.1: now - LSR - DLSR); the RTT paces resends.
- Sender report (``sender_report``): SR (NTP time of ``wallclock``, the RTP time extrapolated
  from the last frame sent, packet and payload-octet counts) + SDES CNAME; None before the first
  packet.

Counters (``counters`` dict): frames, keyframes, packets, octets (payload bytes), nack_packets,
nacked (seqs asked), resent, resend_missed (not held, too old, or resent too recently), plis,
firs, keyframe_requests, rtcp_malformed.
"""

from __future__ import annotations

from sfu.media.codecs import Codec, PayloadError, inspect_payload
from sfu.media.retransmission import RetransmissionBuffer
from sfu.rtp.rtcp import (Fir, Nack, Pli, ReceiverReport, RtcpParseError, Sdes, SenderReport, compact_ntp,
                          ntp_from_unix, parse_rtcp, serialize)

from .payload import packetizer_for
from .rtp import ABS_CAPTURE_TIME_ID, abs_capture_time, build_rtp

__all__ = ["PublisherTrack"]


class PublisherTrack:
    def __init__(self, codec: Codec, payload_type: int, ssrc: int, first_seq: int = 0, *,
                 max_payload: int = 1200, history: RetransmissionBuffer | None = None,
                 cname: str = "sfu-client") -> None:
        self.codec = codec
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.cname = cname
        self.clock_rate = codec.clock_rate
        self._packetizer = packetizer_for(codec, max_payload)
        self._next = first_seq & 0xFFFF  # ext_seq of the next packet
        self.history = history if history is not None else RetransmissionBuffer(max_packets=2048, max_age=2.0,
                                                                                default_rtt=0.05)
        self.rtt = 0.0  # seconds; 0 = unknown
        self._keyframe_requested = False
        self._last_fir: int | None = None
        self._last_frame: tuple[int, float] | None = None  # (RTP timestamp, now) of the last frame sent
        self.counters: dict[str, int] = dict.fromkeys((
            "frames", "keyframes", "packets", "octets", "nack_packets", "nacked", "resent", "resend_missed",
            "plis", "firs", "keyframe_requests", "rtcp_malformed"), 0)

    # -- media out ------------------------------------------------------------------------------

    def send_frame(self, frame: bytes, timestamp: int, now: float, capture_ntp: int | None = None) -> list[bytes]:
        """The RTP packets of one encoded frame (rules above)."""
        payloads = self._packetizer.packetize(frame)
        video = self.codec.is_video
        ext = {ABS_CAPTURE_TIME_ID: abs_capture_time(capture_ntp)} if video and capture_ntp is not None else None
        last = len(payloads) - 1
        packets = []
        for i, payload in enumerate(payloads):
            marker = i == last if video else self.counters["packets"] == 0
            packet = build_rtp(self.payload_type, self._next, timestamp, self.ssrc, payload,
                               marker=marker, extensions=ext)
            self.history.store(self._next, packet, now)
            self._next += 1
            self.counters["packets"] += 1
            self.counters["octets"] += len(payload)
            packets.append(packet)
        self.counters["frames"] += 1
        if video and self._is_keyframe(payloads[0]):
            self.counters["keyframes"] += 1
        self._last_frame = (timestamp & 0xFFFFFFFF, now)
        return packets

    def _is_keyframe(self, payload: bytes) -> bool:
        try:
            return inspect_payload(self.codec, payload).keyframe
        except PayloadError:
            return False

    @property
    def next_seq(self) -> int:
        """The 16-bit sequence number the next packet will carry."""
        return self._next & 0xFFFF

    # -- feedback in ----------------------------------------------------------------------------

    def on_rtcp(self, data: bytes, now: float, wallclock: float | None = None) -> list[bytes]:
        """Handle one (compound) RTCP packet; returns the packets to send again."""
        try:
            packets = parse_rtcp(data)
        except (RtcpParseError, TypeError):
            self.counters["rtcp_malformed"] += 1
            return []
        resend: list[bytes] = []
        for p in packets:
            if isinstance(p, Nack):
                self.counters["nack_packets"] += 1
                resend += self._answer_nack(p.lost, now)
            elif isinstance(p, Pli):
                self.counters["plis"] += 1
                self._request_keyframe()
            elif isinstance(p, Fir):
                self.counters["firs"] += 1
                for _, seq_nr in p.entries[:1]:
                    if seq_nr != self._last_fir:
                        self._last_fir = seq_nr
                        self._request_keyframe()
            elif isinstance(p, (ReceiverReport, SenderReport)) and wallclock is not None:
                self._measure_rtt(p.reports, wallclock)
        return resend

    def _answer_nack(self, lost: list[int], now: float) -> list[bytes]:
        newest = self._next - 1
        out = []
        for seq in lost:
            self.counters["nacked"] += 1
            ext = newest - ((newest - seq) & 0xFFFF)
            packet = self.history.get(ext, now)
            if packet is not None and self.history.resend_allowed(ext, now, self.rtt):
                out.append(packet)
                self.counters["resent"] += 1
            else:
                self.counters["resend_missed"] += 1
        return out

    def _request_keyframe(self) -> None:
        self._keyframe_requested = True
        self.counters["keyframe_requests"] += 1

    def _measure_rtt(self, reports, wallclock: float) -> None:
        for block in reports:
            if block.ssrc == self.ssrc and block.lsr:
                delay = (compact_ntp(ntp_from_unix(wallclock)) - block.lsr - block.dlsr) & 0xFFFFFFFF
                if delay < 0x80000000:  # not negative (clock steps, bogus reports)
                    self.rtt = delay / 65536

    @property
    def keyframe_requested(self) -> bool:
        return self._keyframe_requested

    def take_keyframe_request(self) -> bool:
        requested, self._keyframe_requested = self._keyframe_requested, False
        return requested

    # -- reports out ----------------------------------------------------------------------------

    def sender_report(self, now: float, wallclock: float) -> bytes | None:
        if self._last_frame is None:
            return None
        timestamp, at = self._last_frame
        rtp_time = (timestamp + round((now - at) * self.clock_rate)) & 0xFFFFFFFF
        sr = SenderReport(self.ssrc, ntp_from_unix(wallclock), rtp_time, self.counters["packets"] & 0xFFFFFFFF,
                          self.counters["octets"] & 0xFFFFFFFF)
        return serialize([sr, Sdes.cname(self.ssrc, self.cname)])
