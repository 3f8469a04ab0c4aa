"""RTCP compound parse/serialize (sfu.rtp.rtcp): byte-exact round trips, NACK packing, errors."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.rtp.rtcp import (
    Bye,
    Fir,
    Nack,
    Pli,
    ReceiverReport,
    Remb,
    ReportBlock,
    RtcpParseError,
    Sdes,
    SenderReport,
    TransportCc,
    Unknown,
    compact_ntp,
    ntp_from_unix,
    pack_nack,
    parse_rtcp,
    serialize,
    unpack_nack,
)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# -- hand-built packets, byte-exact both ways -----------------------------------------------

# What Chrome sends every few seconds: an SR with one report block, then SDES with a
# 16-character CNAME (null-terminated, padded to a word).
CHROME_SR_SDES = h(
    "81c8000c 5d3a1b2c"  # V=2 RC=1 PT=200 length=12 words, SSRC
    "e8a12b3c 4d5e6f70"  # NTP timestamp
    "0012d687 000004d2 000f1206"  # RTP timestamp, packet count 1234, octet count 987654
    "11223344 0c000159 00010203 0000001b 2b3c4d5e 00008000"  # report block
    "81ca0006 5d3a1b2c 0110 78394671324c6b5030764e3773543377 0000"  # SDES CNAME
)


def test_chrome_sr_plus_sdes() -> None:
    sr, sdes = parse_rtcp(CHROME_SR_SDES)
    assert sr == SenderReport(
        ssrc=0x5D3A1B2C, ntp_time=0xE8A12B3C4D5E6F70, rtp_time=0x0012D687, packet_count=1234,
        octet_count=987654,
        reports=[ReportBlock(ssrc=0x11223344, fraction_lost=12, cumulative_lost=345, highest_seq=0x00010203,
                             jitter=27, lsr=0x2B3C4D5E, dlsr=0x8000)],
    )
    assert sdes == Sdes(CHROME_SR_SDES[52:])
    assert sdes == Sdes.cname(0x5D3A1B2C, "x9Fq2LkP0vN7sT3w")
    assert serialize([sr, sdes]) == CHROME_SR_SDES


def test_receiver_report_with_two_blocks_and_negative_cumulative_loss() -> None:
    data = h(
        "82c9000d 00000001"
        "aabbccdd 00000000 0002116f 00000005 00000000 00000000"
        "01020304 fffffffe 000003e8 00000064 deadbeef 00010000"  # cumulative lost -2 (duplicates)
    )
    (rr,) = parse_rtcp(data)
    assert rr == ReceiverReport(1, [
        ReportBlock(0xAABBCCDD, 0, 0, 135535, 5, 0, 0),
        ReportBlock(0x01020304, 255, -2, 1000, 100, 0xDEADBEEF, 65536),
    ])
    assert serialize([rr]) == data


def test_empty_rr_and_profile_extension_are_kept() -> None:
    data = h("80c90001 00000007")
    assert parse_rtcp(data) == [ReceiverReport(7, [])]
    extended = h("80c90002 00000007 cafebabe")
    (rr,) = parse_rtcp(extended)
    assert rr.extension == h("cafebabe")
    assert serialize([rr]) == extended


def test_generic_nack_pid_blp() -> None:
    data = h("81cd0003 00000001 12345678 0064 8005")  # PID 100, BLP bits 0, 2, 15
    (nack,) = parse_rtcp(data)
    assert nack == Nack(1, 0x12345678, [100, 101, 103, 116])
    assert serialize([nack]) == data


def test_pli() -> None:
    data = h("81ce0002 00000001 12345678")
    assert parse_rtcp(data) == [Pli(1, 0x12345678)]
    assert serialize([Pli(1, 0x12345678)]) == data


def test_fir_with_two_entries() -> None:
    data = h("84ce0006 00000001 00000000 12345678 07000000 9abcdef0 ff000000")
    assert parse_rtcp(data) == [Fir(1, [(0x12345678, 7), (0x9ABCDEF0, 255)])]
    assert serialize(parse_rtcp(data)) == data


def test_remb_mantissa_and_exponent() -> None:
    # Num SSRC 2, exponent 1, mantissa 0x3fb3b (260923): 521846 bps.
    data = h("8fce0006 00000001 00000000 52454d42 02 07fb3b 12345678 9abcdef0")
    (remb,) = parse_rtcp(data)
    assert remb == Remb(1, 0x3FB3B << 1, [0x12345678, 0x9ABCDEF0])
    assert remb.bitrate_bps == 521846
    assert serialize([remb]) == data


def test_remb_serialize_rounds_down_to_18_bit_mantissa() -> None:
    (remb,) = parse_rtcp(serialize([Remb(1, 1_000_003, [])]))
    assert remb.bitrate_bps == 1_000_000  # exponent 2: the two low bits are lost
    assert parse_rtcp(serialize([Remb(1, 0, [])]))[0].bitrate_bps == 0
    assert parse_rtcp(serialize([Remb(1, 0x3FFFF << 63, [])]))[0].bitrate_bps == 0x3FFFF << 63


def test_bye_with_and_without_reason() -> None:
    data = h("81cb0002 12345678 03627965")
    assert parse_rtcp(data) == [Bye([0x12345678], "bye")]
    assert serialize([Bye([0x12345678], "bye")]) == data
    plain = h("82cb0002 00000001 00000002")
    assert parse_rtcp(plain) == [Bye([1, 2], None)]
    assert serialize([Bye([1, 2])]) == plain
    empty_reason = h("80cb0001 00000000")
    assert parse_rtcp(empty_reason) == [Bye([], "")]
    assert serialize([Bye([], "")]) == empty_reason


def test_transport_cc_header_fields_and_raw() -> None:
    data = h("8fcd0005 00000001 12345678 0102 0003 fffffe05 2000 e000")  # reference time -2
    (tcc,) = parse_rtcp(data)
    assert tcc == TransportCc(1, 0x12345678, base_seq=0x0102, status_count=3, reference_time=-2, fb_pkt_count=5,
                              raw=data)
    assert serialize([tcc]) == data


@pytest.mark.parametrize("data, packet_type, fmt", [
    ("80cc0002 00000001 6e616d65", 204, 0),  # APP
    ("80cf0001 00000001", 207, 0),  # XR
    ("83cd0004 00000001 12345678 12345678 00000000", 205, 3),  # TMMBR
    ("8fce0004 00000001 00000000 676f6f67 00000000", 206, 15),  # AFB that is not REMB
])
def test_unknown_packets_pass_through(data: str, packet_type: int, fmt: int) -> None:
    raw = h(data)
    assert parse_rtcp(raw) == [Unknown(packet_type, fmt, raw)]
    assert serialize(parse_rtcp(raw)) == raw


def test_padding_is_dropped_from_typed_packets_and_kept_in_raw_ones() -> None:
    padded_rr = h("a0c90002 00000007 00000004")
    assert parse_rtcp(padded_rr) == [ReceiverReport(7, [])]
    assert serialize(parse_rtcp(padded_rr)) == h("80c90001 00000007")
    padded_app = h("a0cc0002 00000001 00000004")
    assert serialize(parse_rtcp(padded_app)) == padded_app


def test_compound_keeps_order_and_accepts_bytes_likes() -> None:
    data = CHROME_SR_SDES + h("81ce0002 00000001 12345678")
    for form in (data, bytearray(data), memoryview(data)):
        assert [type(p) for p in parse_rtcp(form)] == [SenderReport, Sdes, Pli]
    with pytest.raises(TypeError):
        parse_rtcp(12)  # type: ignore[arg-type]


# -- NACK packing -------------------------------------------------------------------------------


@pytest.mark.parametrize("lost, items", [
    ([7], [(7, 0)]),
    (list(range(1, 18)), [(1, 0xFFFF)]),  # a run of 17 fills one PID + BLP
    (list(range(1, 19)), [(1, 0xFFFF), (18, 0)]),
    ([0, 16], [(0, 0x8000)]),
    ([0, 17], [(0, 0), (17, 0)]),  # more than 16 apart: a new PID
    ([10, 30, 50, 51], [(10, 0), (30, 0), (50, 1)]),
    ([65534, 65535, 0, 1], [(65534, 0b111)]),  # wrap inside one BLP
    ([65535, 15], [(65535, 0x8000)]),
    ([65530, 20], [(65530, 0), (20, 0)]),
])
def test_nack_packing(lost: list[int], items: list[tuple[int, int]]) -> None:
    assert pack_nack(lost) == items
    assert unpack_nack(items) == lost
    assert parse_rtcp(serialize([Nack(1, 2, lost)])) == [Nack(1, 2, lost)]


def test_nack_packing_rejects_values_that_are_not_16_bit() -> None:
    with pytest.raises(ValueError, match="NACK sequence number must be in 0..65535, got 65536"):
        serialize([Nack(1, 2, [65536])])


# -- time helpers ---------------------------------------------------------------------------------


def test_ntp_helpers() -> None:
    assert ntp_from_unix(0.0) == 2_208_988_800 << 32
    assert ntp_from_unix(1.5) == (2_208_988_801 << 32) | 0x80000000
    assert ntp_from_unix(1.0 - 1e-12) == 2_208_988_801 << 32  # rounding carries into the seconds
    assert ntp_from_unix(2_085_978_496.0) == 0  # era 1 starts in February 2036
    assert compact_ntp(0xE8A12B3C4D5E6F70) == 0x2B3C4D5E


# -- errors -----------------------------------------------------------------------------------------

RR8 = "80c90001 00000001"


@pytest.mark.parametrize("data, message", [
    ("", "RTCP packet too short: 0 bytes, need at least 4"),
    ("80c9", "RTCP packet too short: 2 bytes, need at least 4"),
    (RR8 + "8000", "RTCP header truncated at offset 8: 2 bytes left, need 4"),
    ("40c90001 00000001", "RTCP version must be 2 at offset 0, got 1"),
    (RR8 + "00c90001 00000001", "RTCP version must be 2 at offset 8, got 0"),
    ("80c90002 00000001", "RTCP packet at offset 0 declares 12 bytes, only 8 left"),
    ("a0c90001 00000000", "RTCP padding flag set but padding count is 0 at offset 0"),
    ("a0c90001 00000009", "RTCP padding count 9 exceeds body length 4 at offset 0"),
    ("80c80001 00000001", "RTCP SR at offset 0 truncated: 0 report blocks need 28 bytes, packet has 8"),
    (RR8 + "81c90001 00000001", "RTCP RR at offset 8 truncated: 1 report blocks need 32 bytes, packet has 8"),
    ("82cb0001 00000001", "RTCP BYE at offset 0 truncated: 2 SSRCs need 12 bytes, packet has 8"),
    ("81cb0002 00000001 05616263",
     "RTCP BYE at offset 0 truncated: reason of 5 bytes needs 14 bytes, packet has 12"),
    ("81cd0001 00000001", "RTCP feedback at offset 0 too short: 8 bytes, need at least 12"),
    ("a1ce0002 00000001 00000004", "RTCP feedback at offset 0 too short: 8 bytes, need at least 12"),
    ("a1cd0004 00000001 00000002 00640000 00000002",
     "RTCP NACK at offset 0 has a partial FCI: 6 bytes is not a multiple of 4"),
    ("84ce0003 00000001 00000000 12345678",
     "RTCP FIR at offset 0 has a partial entry: 4 bytes is not a multiple of 8"),
    ("8fce0003 00000001 00000000 52454d42", "RTCP REMB at offset 0 too short: 16 bytes, need at least 20"),
    ("8fce0004 00000001 00000000 52454d42 02000001",
     "RTCP REMB at offset 0 truncated: 2 SSRCs need 28 bytes, packet has 20"),
    ("8fcd0003 00000001 00000002 00010002",
     "RTCP transport-cc at offset 0 too short: 16 bytes, need at least 20"),
])
def test_parse_errors(data: str, message: str) -> None:
    with pytest.raises(RtcpParseError) as info:
        parse_rtcp(h(data))
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("packet, message", [
    (ReceiverReport(1, [ReportBlock(1, 0, 0, 0, 0, 0, 0)] * 32), "at most 31 items"),
    (ReceiverReport(1, [ReportBlock(1, 0, 1 << 23, 0, 0, 0, 0)]), "signed 24-bit"),
    (ReceiverReport(1, [ReportBlock(1, 256, 0, 0, 0, 0, 0)]), "fraction_lost"),
    (ReceiverReport(1, [], b"\x00"), "not a whole number of words"),
    (Fir(1, [(2, 256)]), "cannot serialize Fir"),
    (Pli(-1, 0), "cannot serialize Pli"),
    (Bye([], "x" * 256), "BYE reason too long"),
    (Remb(1, -1, []), "REMB bitrate must be >= 0"),
    (Remb(1, 1 << 82, []), "REMB bitrate too large"),
    (Unknown(204, 0, h("80cc0002 00000001")), "Unknown.raw is not one whole RTCP packet"),
])
def test_serialize_errors(packet: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        serialize([packet])


def test_serialize_rejects_foreign_objects() -> None:
    with pytest.raises(TypeError, match="not an RTCP packet object: str"):
        serialize(["PLI"])


# -- properties ---------------------------------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
words = st.integers(0, 3).flatmap(lambda k: st.binary(min_size=4 * k, max_size=4 * k))
blocks = st.builds(ReportBlock, u32, u8, st.integers(-(1 << 23), (1 << 23) - 1), u32, u32, u32, u32)
block_lists = st.lists(blocks, max_size=31)


def _canonical_remb(bitrate: int) -> int:
    shift = max(0, bitrate.bit_length() - 18)
    return bitrate >> shift << shift


def _tcc(sender: int, media: int, base: int, count: int, ref: int, fb: int, rest: bytes) -> TransportCc:
    body = struct.pack("!IIHHI", sender, media, base, count, (ref & 0xFFFFFF) << 8 | fb) + rest
    return TransportCc(sender, media, base, count, ref, fb, struct.pack("!BBH", 0x8F, 205, len(body) // 4) + body)


def _unknown(packet_type: int, fmt: int, body: bytes, pad_words: int) -> Unknown:
    padding = b"\x00" * (4 * pad_words - 1) + bytes([4 * pad_words]) if pad_words else b""
    first = 0x80 | (0x20 if pad_words else 0) | fmt
    raw = struct.pack("!BBH", first, packet_type, (len(body) + len(padding)) // 4) + body + padding
    return Unknown(packet_type, fmt, raw)


packets = st.one_of(
    st.builds(SenderReport, u32, st.integers(0, 2**64 - 1), u32, u32, u32, block_lists, words),
    st.builds(ReceiverReport, u32, block_lists, words),
    st.builds(Sdes.cname, u32, st.text(max_size=60)),
    st.builds(Bye, st.lists(u32, max_size=31), st.none() | st.text(max_size=60)),
    st.builds(Nack, u32, u32, st.lists(u16, unique=True, max_size=60).map(sorted)),
    st.builds(Pli, u32, u32),
    st.builds(Fir, u32, st.lists(st.tuples(u32, u8), max_size=8), u32),
    st.builds(Remb, u32, st.integers(0, 2**70).map(_canonical_remb), st.lists(u32, max_size=8), u32),
    st.builds(_tcc, u32, u32, u16, u16, st.integers(-(1 << 23), (1 << 23) - 1), u8, words),
    st.builds(_unknown, st.sampled_from([192, 193, 204, 207, 210]), st.integers(0, 31), words, st.integers(0, 2)),
)


@given(st.lists(packets, min_size=1, max_size=6))
def test_generated_compounds_round_trip(objects: list) -> None:
    data = serialize(objects)
    parsed = parse_rtcp(data)
    assert parsed == objects
    assert serialize(parsed) == data


@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_rtcp_parse_error(data: bytes) -> None:
    try:
        parse_rtcp(data)
    except RtcpParseError:
        pass


@settings(max_examples=300)
@given(st.lists(packets, min_size=1, max_size=4), st.data())
def test_mutated_compounds_only_raise_rtcp_parse_error(objects: list, data: st.DataObject) -> None:
    """Damaged input raises RtcpParseError or parses into packets that serialize and re-parse alike."""
    packet = bytearray(serialize(objects))
    for _ in range(data.draw(st.integers(1, 4))):
        packet[data.draw(st.integers(0, len(packet) - 1))] = data.draw(u8)
    cut = data.draw(st.integers(0, len(packet)))
    try:
        parsed = parse_rtcp(bytes(packet[:cut]))
    except RtcpParseError:
        return
    assert parse_rtcp(serialize(parsed)) == parsed
