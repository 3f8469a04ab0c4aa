"""PublisherTrack (sans-IO): NACKs answered from history, PLI/FIR → a keyframe, sender reports.

And the encoder half of "PLI → the next frame is a keyframe": a forced frame comes out as one.
"""

from __future__ import annotations

import pytest

from sfu.client.media.av_codecs import VideoEncoder
from sfu.client.media.publisher_track import PublisherTrack
from sfu.client.media.sources import TestPattern
from sfu.media.codecs import Codec, inspect_payload
from sfu.rtp.header import parse_rtp
from sfu.rtp.rtcp import (Fir, Nack, Pli, ReceiverReport, ReportBlock, Sdes, SenderReport, compact_ntp,
                          ntp_from_unix, parse_rtcp, serialize)

SSRC = 0x11223344


def sent(track: PublisherTrack, frames: int, size: int = 2000, now: float = 0.0) -> list[bytes]:
    out = []
    for i in range(frames):
        out += track.send_frame(b"\x01" + bytes(size - 1), 3000 * i, now + i / 30, capture_ntp=i)
    return out


def test_nack_is_answered_with_the_original_packets() -> None:
    track = PublisherTrack(Codec.VP8, 96, SSRC, first_seq=65530)
    packets = sent(track, 5)  # 2 packets per frame: seqs 65530 .. 3 (wrapping)
    by_seq = {parse_rtp(p).sequence_number: p for p in packets}
    nack = serialize([Nack(0x999, SSRC, [65535, 0, 2])])
    resent = track.on_rtcp(nack, now=0.2)
    assert resent == [by_seq[65535], by_seq[0], by_seq[2]]
    assert track.counters["nack_packets"] == 1 and track.counters["resent"] == 3


def test_nack_resends_once_per_rtt_and_not_what_is_not_held() -> None:
    track = PublisherTrack(Codec.VP8, 96, SSRC, first_seq=100)
    sent(track, 2)
    nack = serialize([Nack(1, SSRC, [101])])
    assert len(track.on_rtcp(nack, now=0.1)) == 1
    assert track.on_rtcp(nack, now=0.11) == []  # within the (default) RTT: suppressed
    assert len(track.on_rtcp(nack, now=0.2)) == 1
    assert track.on_rtcp(serialize([Nack(1, SSRC, [99, 500])]), now=0.2) == []  # never sent
    assert track.on_rtcp(nack, now=5.0) == []  # too old for the history
    assert track.counters["resend_missed"] == 4


def test_pli_requests_one_keyframe() -> None:
    track = PublisherTrack(Codec.VP8, 96, SSRC)
    assert not track.take_keyframe_request()
    track.on_rtcp(serialize([Pli(1, SSRC)]), now=0.0)
    track.on_rtcp(serialize([Pli(1, SSRC)]), now=0.01)
    assert track.keyframe_requested
    assert track.take_keyframe_request() is True
    assert track.take_keyframe_request() is False  # two PLIs before a frame: one keyframe
    assert track.counters["plis"] == 2


def test_fir_requests_a_keyframe_per_new_command_sequence_number() -> None:
    track = PublisherTrack(Codec.H264, 102, SSRC)
    track.on_rtcp(serialize([Fir(1, [(SSRC, 7)])]), now=0.0)
    assert track.take_keyframe_request()
    track.on_rtcp(serialize([Fir(1, [(SSRC, 7)])]), now=0.1)  # a repetition of the same request
    assert not track.take_keyframe_request()
    track.on_rtcp(serialize([Fir(1, [(SSRC, 8)])]), now=0.2)
    assert track.take_keyframe_request()


def test_malformed_rtcp_is_counted_not_raised() -> None:
    track = PublisherTrack(Codec.VP8, 96, SSRC)
    assert track.on_rtcp(b"\x80\xc9\x00\x09abcd", now=0.0) == []
    assert track.counters["rtcp_malformed"] == 1


def test_sender_report_and_rtt_from_a_receiver_report() -> None:
    track = PublisherTrack(Codec.VP8, 96, SSRC)
    assert track.sender_report(0.0, 1000.0) is None  # nothing sent yet
    packets = sent(track, 3, size=100, now=10.0)
    sr_bytes = track.sender_report(now=10.5, wallclock=1_700_000_000.0)
    sr, sdes = parse_rtcp(sr_bytes)
    assert isinstance(sr, SenderReport) and isinstance(sdes, Sdes)
    assert sr.ssrc == SSRC and sr.ntp_time == ntp_from_unix(1_700_000_000.0)
    last_ts, last_at = 6000, 10.0 + 2 / 30
    assert sr.rtp_time == last_ts + round((10.5 - last_at) * 90000)
    assert sr.packet_count == len(packets) and sr.octet_count == 3 * (100 + 4)  # RTP payloads: descriptor + frame
    lsr = compact_ntp(sr.ntp_time)
    rr = serialize([ReceiverReport(5, [ReportBlock(SSRC, 0, 0, 0, 0, lsr, 65536 // 10)])])
    track.on_rtcp(rr, now=10.7, wallclock=1_700_000_000.15)
    assert track.rtt == pytest.approx(0.05, abs=1e-3)


@pytest.mark.parametrize("codec", [Codec.VP8, Codec.H264])
def test_a_forced_frame_is_a_keyframe(codec: Codec) -> None:
    source = TestPattern(320, 180, 30)
    encoder = VideoEncoder(codec, 320, 180, 30, 300_000, gop_frames=300)
    track = PublisherTrack(codec, 96, SSRC)
    keys = []
    for i in range(8):
        if i == 5:
            track.on_rtcp(serialize([Pli(1, SSRC)]), now=i / 30)
        force = track.take_keyframe_request()
        for frame in encoder.encode(source.frame(i), force):
            packets = track.send_frame(frame.data, 3000 * i, i / 30, capture_ntp=i)
            first = parse_rtp(packets[0])
            keys.append(inspect_payload(codec, packets[0][first.header_length:]).keyframe)
    assert keys == [True, False, False, False, False, True, False, False]
