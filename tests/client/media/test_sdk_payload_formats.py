"""VP8 (RFC 7741) and H.264 (RFC 6184) packetizers of the SDK: bytes, sizes, round trips, markers."""

from __future__ import annotations

import pytest

from sfu.client.media.h264 import H264Packetizer, depacketize_h264, split_annexb
from sfu.client.media.publisher_track import PublisherTrack
from sfu.client.media.vp8 import Vp8Packetizer, depacketize_vp8
from sfu.media.codecs import Codec, PayloadError, inspect_payload
from sfu.rtp.header import parse_rtp

VP8_KEY = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01])  # P=0, start code, 640x360


# ----- VP8 ---------------------------------------------------------------------------------------

def test_vp8_descriptor_bytes() -> None:
    p = Vp8Packetizer(max_payload=1200, picture_id=0x1234)
    frame = VP8_KEY + bytes(2500)
    payloads = p.packetize(frame)
    assert len(payloads) == 3
    assert payloads[0][:4] == bytes.fromhex("90 80 92 34")  # X, S, PID 0; I; M + 15-bit picture id
    assert payloads[1][:4] == payloads[2][:4] == bytes.fromhex("80 80 92 34")
    assert p.packetize(b"\x01")[0][:4] == bytes.fromhex("90 80 92 35")  # the next frame: picture id + 1


def test_vp8_picture_id_wraps_at_15_bits() -> None:
    p = Vp8Packetizer(picture_id=0x7FFF)
    assert p.packetize(b"\x01")[0][2:4] == bytes.fromhex("ff ff")
    assert p.packetize(b"\x01")[0][2:4] == bytes.fromhex("80 00")


@pytest.mark.parametrize("size", [1, 1196, 1197, 2392, 2393, 10_000])
def test_vp8_sizes_bound_and_balance(size: int) -> None:
    payloads = Vp8Packetizer(1200).packetize(bytes(range(256)) * (size // 256) + bytes(size % 256))
    assert all(len(x) <= 1200 for x in payloads)
    assert len(payloads) == -(-size // 1196)
    assert max(map(len, payloads)) - min(map(len, payloads)) <= 1


def test_vp8_round_trip_and_inspection() -> None:
    frame = VP8_KEY + bytes(range(256)) * 20
    payloads = Vp8Packetizer().packetize(frame)
    assert depacketize_vp8(payloads) == frame
    infos = [inspect_payload(Codec.VP8, x) for x in payloads]
    assert infos[0].keyframe and infos[0].frame_start
    assert not any(i.frame_start for i in infos[1:])
    inter = Vp8Packetizer().packetize(b"\x01" + bytes(50))  # P=1: an inter frame
    assert not inspect_payload(Codec.VP8, inter[0]).keyframe and inspect_payload(Codec.VP8, inter[0]).frame_start


def test_vp8_depacketizes_other_descriptor_forms() -> None:
    assert depacketize_vp8([b"\x10abc", b"\x00de"]) == b"abcde"  # no X
    assert depacketize_vp8([bytes([0x90, 0xE0, 0x05, 0x07, 0x40]) + b"z"]) == b"z"  # I (7-bit), L, T
    with pytest.raises(PayloadError):
        depacketize_vp8([bytes([0x90, 0x80])])


# ----- H.264 -------------------------------------------------------------------------------------

SPS = bytes([0x67, 0x42, 0xC0, 0x1E]) + bytes(range(1, 9))
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
SEI = bytes([0x06, 0x05, 0x01, 0xAA, 0x80])


def idr(size: int) -> bytes:
    return bytes([0x65]) + bytes((i * 7 + 1) % 251 + 1 for i in range(size - 1))


def annexb(*units: bytes, four: bool = True) -> bytes:
    return b"".join((b"\x00\x00\x00\x01" if four else b"\x00\x00\x01") + u for u in units)


def test_split_annexb_both_start_code_lengths() -> None:
    data = annexb(SPS, PPS) + annexb(idr(10), four=False)
    assert split_annexb(data) == [SPS, PPS, idr(10)]


def test_h264_single_nal_units_and_fu_a_round_trip() -> None:
    big = idr(3000)
    payloads = H264Packetizer(1200).packetize(annexb(SPS, PPS, big))
    assert payloads[0] == SPS and payloads[1] == PPS
    fragments = payloads[2:]
    assert len(fragments) == 3 and all(len(f) <= 1200 for f in fragments)
    assert [f[0] for f in fragments] == [0x65 & 0xE0 | 28] * 3  # FU indicator: NRI of the unit, type 28
    assert [f[1] for f in fragments] == [0x85, 0x05, 0x45]  # S|type 5, type 5, E|type 5
    assert b"".join(f[2:] for f in fragments) == big[1:]
    assert depacketize_h264(payloads) == annexb(SPS, PPS, big)
    infos = [inspect_payload(Codec.H264, x) for x in payloads]
    assert [i.keyframe for i in infos] == [True, True, True, False, False]


def test_h264_sps_pps_before_every_idr() -> None:
    p = H264Packetizer()
    first = p.packetize(annexb(SPS, PPS, SEI, idr(100)))
    assert first == [SPS, PPS, SEI, idr(100)]
    inter = bytes([0x41, 0x9A, 0x02])
    assert p.packetize(annexb(inter)) == [inter]  # no parameter sets before an inter frame
    assert p.packetize(annexb(idr(50))) == [SPS, PPS, idr(50)]  # an IDR without them gets the last ones
    assert p.packetize(annexb(bytes([0x09, 0xF0]), idr(50))) == [SPS, PPS, idr(50)]  # AUD dropped


def test_h264_depacketizes_stap_a_and_rejects_broken_fragments() -> None:
    stap = bytes([0x18]) + len(SPS).to_bytes(2, "big") + SPS + len(PPS).to_bytes(2, "big") + PPS
    assert depacketize_h264([stap, idr(5)]) == annexb(SPS, PPS, idr(5))
    with pytest.raises(PayloadError):
        depacketize_h264([bytes([0x7C, 0x05]) + b"middle"])  # no start
    with pytest.raises(PayloadError):
        depacketize_h264([bytes([0x7C, 0x85]) + b"start"])  # no end


# ----- markers, through the track ----------------------------------------------------------------

@pytest.mark.parametrize("codec, frame", [(Codec.VP8, VP8_KEY + bytes(3000)), (Codec.H264, annexb(SPS, PPS, idr(3000)))])
def test_marker_on_the_last_packet_of_each_frame(codec: Codec, frame: bytes) -> None:
    track = PublisherTrack(codec, 96, 0xABC, first_seq=65534)
    packets = track.send_frame(frame, 1000, 0.0, capture_ntp=1)
    packets += track.send_frame(frame, 4000, 0.033, capture_ntp=2)
    headers = [parse_rtp(p) for p in packets]
    assert [h.sequence_number for h in headers] == [(65534 + i) & 0xFFFF for i in range(len(packets))]
    per_frame = len(packets) // 2
    assert [h.marker for h in headers] == ([False] * (per_frame - 1) + [True]) * 2
    assert [h.timestamp for h in headers] == [1000] * per_frame + [4000] * per_frame
    assert all(len(p) - h.header_length <= 1200 for p, h in zip(packets, headers))


def test_opus_marker_only_on_the_first_packet() -> None:
    track = PublisherTrack(Codec.OPUS, 111, 7)
    packets = [track.send_frame(b"\xfc\x01\x02", 960 * i, i * 0.02)[0] for i in range(3)]
    assert [parse_rtp(p).marker for p in packets] == [True, False, False]
    assert not any(parse_rtp(p).has_extension for p in packets)
