"""PlayerTrack (sans-IO), wired to a PublisherTrack in memory: frames, latency, NACK repair, PLI, RR."""

from __future__ import annotations

import pytest

from sfu.client.media.player_track import PlayerTrack, sniff_video_codec
from sfu.client.media.publisher_track import PublisherTrack
from sfu.media.codecs import Codec
from sfu.rtp.header import parse_rtp
from sfu.rtp.rtcp import Nack, Pli, ReceiverReport, SenderReport, compact_ntp, ntp_from_unix, parse_rtcp, serialize

SSRC = 0xCAFE0001  # the node sends the player's media with this SSRC (from the play reply)
WALL = 1_700_000_000.0
VP8_KEY = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01])


def vp8_frame(i: int, size: int = 2000) -> bytes:
    return (VP8_KEY if i % 30 == 0 else b"\x01") + bytes([i % 256]) * (size - 10 + (i % 30 != 0) * 9)


class Pair:
    """A publisher track whose packets reach a player track after `delay` seconds (the node in between
    only rewrites the SSRC, as in RTC mode)."""

    def __init__(self, codec: Codec = Codec.VP8, delay: float = 0.004) -> None:
        self.pub = PublisherTrack(codec, 96, 0x1234, first_seq=65500)
        self.player = PlayerTrack("video" if codec.is_video else "audio", SSRC, codec)
        self.delay = delay
        self.sent: dict[int, bytes] = {}

    def packets(self, i: int, now: float, frame: bytes | None = None) -> list[bytes]:
        out = []
        for p in self.pub.send_frame(frame if frame is not None else vp8_frame(i), 3000 * i, now,
                                     capture_ntp=ntp_from_unix(WALL + now)):
            rewritten = bytearray(p)
            rewritten[8:12] = SSRC.to_bytes(4, "big")
            out.append(bytes(rewritten))
            self.sent[parse_rtp(p).sequence_number] = p
        return out

    def deliver(self, packets: list[bytes], now: float) -> list:
        for p in packets:
            self.player.on_datagram(p, now + self.delay, WALL + now + self.delay)
        return self.player.take_frames()


def test_frames_arrive_whole_with_their_latency() -> None:
    pair = Pair()
    frames = []
    for i in range(5):
        frames += pair.deliver(pair.packets(i, i / 30), i / 30)
    assert [f.timestamp for f in frames] == [3000 * i for i in range(5)]
    assert [f.data for f in frames] == [vp8_frame(i) for i in range(5)]
    assert frames[0].keyframe and not any(f.keyframe for f in frames[1:])
    assert all(f.latency == pytest.approx(0.004, abs=1e-4) for f in frames)
    assert list(pair.player.latencies) == [f.latency for f in frames]
    assert pair.player.first_keyframe_at == pytest.approx(0.004)
    assert pair.player.frames_complete == 5 and pair.player.lost() == 0
    assert pair.player.take_rtcp() == []  # nothing to ask for


def test_a_lost_packet_is_nacked_and_the_answer_completes_the_frame() -> None:
    pair = Pair()
    pair.deliver(pair.packets(0, 0.0), 0.0)
    second = pair.packets(1, 1 / 30)
    lost = second.pop(0)
    assert pair.deliver(second, 1 / 30) == []
    pair.player.poll(0.1, WALL + 0.1)
    (nack_bytes,) = pair.player.take_rtcp()
    (nack,) = parse_rtcp(nack_bytes)
    assert isinstance(nack, Nack) and nack.sender_ssrc == nack.media_ssrc == SSRC
    assert nack.lost == [parse_rtp(lost).sequence_number]
    # the node relays it to the publisher (media SSRC translated); the publisher resends
    resent = pair.pub.on_rtcp(serialize([Nack(0, 0x1234, nack.lost)]), now=0.1)
    assert [parse_rtp(p).sequence_number for p in resent] == nack.lost
    out = pair.deliver([lost], 0.1)
    assert [f.timestamp for f in out] == [3000] and out[0].data == vp8_frame(1)
    assert pair.player.counters["nack_packets"] == 1 and pair.player.lost() == 0


def test_an_unrepaired_loss_sends_a_pli_and_repeats_it_until_a_keyframe() -> None:
    pair = Pair()
    pair.deliver(pair.packets(0, 0.0), 0.0)
    pair.deliver(pair.packets(1, 0.033)[1:], 0.033)  # its first packet is lost for good
    t = 0.033
    plis = []
    for i in range(2, 30):
        t = i / 30
        pair.deliver(pair.packets(i, t), t)
        pair.player.poll(t + 0.005, WALL + t)
        plis += [p for raw in pair.player.take_rtcp() for p in parse_rtcp(raw) if isinstance(p, Pli)]
    assert len(plis) >= 2  # once when the frame was given up, then every pli_interval
    assert all(p.sender_ssrc == p.media_ssrc == SSRC for p in plis)
    assert pair.player.frames_dropped == 1
    key = pair.deliver(pair.packets(30, 1.0), 1.0)
    assert [f.keyframe for f in key] == [True]
    pair.player.poll(2.0, WALL + 2)
    assert not [p for raw in pair.player.take_rtcp() for p in parse_rtcp(raw) if isinstance(p, Pli)]
    assert pair.player.counters["plis"] == len(plis)


def test_a_keyframe_asked_for_by_the_decoder_is_asked_again_until_it_comes() -> None:
    pair = Pair()
    pair.deliver(pair.packets(0, 0.0), 0.0)
    pair.player.request_keyframe(0.01)  # e.g. the decoder rejected frame 0
    plis = len(pair.player.take_rtcp())
    for i in range(1, 20):
        t = i / 30
        pair.deliver(pair.packets(i, t), t)
        pair.player.poll(t, WALL + t)
        plis += len(pair.player.take_rtcp())
    assert plis == 1 + int((19 / 30 - 0.01) / 0.3)  # at once, then every pli_interval (0.3 s)
    assert [f.keyframe for f in pair.deliver(pair.packets(30, 1.0), 1.0)] == [True]
    pair.player.take_rtcp()  # a repeat may fall due while the keyframe is arriving
    pair.player.poll(2.0, WALL + 2)
    assert pair.player.take_rtcp() == [] and pair.player.next_timer() is None


def test_receiver_report() -> None:
    pair = Pair()  # sequence numbers from 65500
    (rr,) = parse_rtcp(pair.player.receiver_report(0.0))
    assert isinstance(rr, ReceiverReport) and rr.ssrc == SSRC and rr.reports == []  # the latching RR
    packets = []
    for i in range(20):
        packets += pair.packets(i, i / 30)
    del packets[3]
    pair.deliver(packets, 0.0)
    sr = SenderReport(SSRC, ntp_from_unix(WALL), 0, 0, 0)
    pair.player.on_datagram(serialize([sr]), 0.2, WALL + 0.2)
    (rr,) = parse_rtcp(pair.player.receiver_report(0.5))
    (block,) = rr.reports
    assert block.ssrc == SSRC and block.cumulative_lost == 1
    assert block.fraction_lost == 256 // len(packets + [b""])
    assert block.highest_seq & 0xFFFF == parse_rtp(packets[-1]).sequence_number
    assert block.highest_seq >> 16 == 1  # one wrap: 65500 + 40 packets passes 65535
    assert block.lsr == compact_ntp(sr.ntp_time) and block.dlsr == int(0.3 * 65536)
    (rr,) = parse_rtcp(pair.player.receiver_report(1.5))
    assert rr.reports[0].fraction_lost == 0 and rr.reports[0].cumulative_lost == 1


def test_foreign_duplicate_and_malformed_datagrams() -> None:
    pair = Pair()
    packets = pair.packets(0, 0.0)
    other = bytearray(packets[0])
    other[8:12] = (5).to_bytes(4, "big")
    pair.deliver([bytes(other), b"\x00" * 4, b"\x40" * 20] + packets + packets[:1], 0.0)
    c = pair.player.counters
    assert (c["foreign"], c["malformed"], c["duplicates"], c["packets"]) == (1, 2, 1, len(packets))


def test_h264_through_the_cores() -> None:
    sps, pps = bytes([0x67, 0x42, 0xC0, 0x1E, 1, 2]), bytes([0x68, 0xCE, 0x3C, 0x80])
    idr = bytes([0x65]) + bytes(range(1, 256)) * 10
    p_slice = bytes([0x41]) + bytes(range(1, 200))
    au = b"".join(b"\x00\x00\x00\x01" + u for u in (sps, pps, idr))
    pair = Pair(Codec.H264)
    out = pair.deliver(pair.packets(0, 0.0, au), 0.0)
    out += pair.deliver(pair.packets(1, 0.033, b"\x00\x00\x00\x01" + p_slice), 0.033)
    assert [f.keyframe for f in out] == [True, False]
    assert out[0].data == au and out[1].data == b"\x00\x00\x00\x01" + p_slice


def test_audio_every_packet_is_a_frame() -> None:
    pub = PublisherTrack(Codec.OPUS, 111, 1)
    player = PlayerTrack("audio", SSRC)
    for i in range(3):
        for p in pub.send_frame(b"\xfc" + bytes([i]), 960 * i, i * 0.02):
            p = p[:8] + SSRC.to_bytes(4, "big") + p[12:]
            player.on_datagram(p, i * 0.02, WALL)
    frames = player.take_frames()
    assert [f.data for f in frames] == [b"\xfc\x00", b"\xfc\x01", b"\xfc\x02"] and player.frames_complete == 3


def test_codec_sniffing() -> None:
    assert sniff_video_codec(bytes([0x90, 0x80])) is Codec.VP8
    assert sniff_video_codec(bytes([0x10, 0x00])) is Codec.VP8
    assert sniff_video_codec(bytes([0x00])) is Codec.VP8
    for first in (0x67, 0x68, 0x65, 0x41, 0x7C, 0x5C, 0x18, 0x09):
        assert sniff_video_codec(bytes([first, 0])) is Codec.H264
    player = PlayerTrack("video", SSRC)  # no codec given: learnt from the first packet
    pair = Pair(Codec.H264)
    au = b"\x00\x00\x00\x01" + bytes([0x67, 1, 2]) + b"\x00\x00\x00\x01" + bytes([0x68, 1]) \
        + b"\x00\x00\x00\x01" + bytes([0x65]) + bytes(100)
    for p in pair.packets(0, 0.0, au):
        player.on_datagram(p, 0.0, WALL)
    assert player.codec is Codec.H264 and [f.keyframe for f in player.take_frames()] == [True]
