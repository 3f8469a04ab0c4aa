"""RTP/RTCP header parsing and rewriting, run against both implementations (``rtp_impl``).

The packets are written out by hand in the shape browsers, ffmpeg and mixers send them;
each comment says what the bytes mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sfu.rtp import _header_py

FIELDS = (
    "marker",
    "payload_type",
    "sequence_number",
    "timestamp",
    "ssrc",
    "csrc_count",
    "has_extension",
    "extension_profile",
    "header_length",
    "payload_length",
    "padding_length",
)


def fields(header) -> dict:
    return {name: getattr(header, name) for name in FIELDS}


def hexbytes(text: str) -> bytes:
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


@dataclass(frozen=True)
class Captured:
    name: str
    data: bytes
    fields: dict
    payload: bytes


# Chrome VP8 keyframe start: one-byte header extensions (RFC 8285 §4.2) carrying
# transport-wide-cc (id 3) and abs-capture-time (id 5, 8-byte NTP capture timestamp).
ABS_CAPTURE_TIME_ELEMENT = hexbytes("57 e91c6b3a 80000000")
VP8_PAYLOAD = hexbytes(
    """
    90 80 9234              # VP8 descriptor: X S, I, 15-bit picture id 0x1234
    504200 9d012a 8002 e001 # keyframe tag, start code, 640x480
    0047088585889984880202
    """
)
VP8 = Captured(
    "vp8-one-byte-extensions",
    hexbytes(
        """
        90 e0 1a2b              # V=2 X=1 CC=0 | M=1 PT=96 | seq 6699
        5f3e8c10                # timestamp
        3d6e9a12                # SSRC
        bede 0003               # one-byte extension profile, 3 words
        31 002a                 # id 3 (transport-wide-cc), 2 bytes
        57 e91c6b3a80000000     # id 5 (abs-capture-time), 8 bytes
        """
    )
    + VP8_PAYLOAD,
    dict(
        marker=True,
        payload_type=96,
        sequence_number=0x1A2B,
        timestamp=0x5F3E8C10,
        ssrc=0x3D6E9A12,
        csrc_count=0,
        has_extension=True,
        extension_profile=0xBEDE,
        header_length=28,
        payload_length=len(VP8_PAYLOAD),
        padding_length=0,
    ),
    VP8_PAYLOAD,
)

# Chrome Opus: ssrc-audio-level (id 1) padded to a word, then a hybrid fullband frame.
OPUS_PAYLOAD = hexbytes("78 0be4c55c4397d21f40b3906b2e940a")
OPUS = Captured(
    "opus-audio-level",
    hexbytes(
        """
        90 6f 4d2c              # V=2 X=1 | M=0 PT=111 | seq 19756
        0001e240                # timestamp 123456
        7a1bc3d4                # SSRC
        bede 0001               # one-byte extensions, 1 word
        10 aa 0000              # id 1 (audio level: voice, -42 dBov), 2 bytes padding
        """
    )
    + OPUS_PAYLOAD,
    dict(
        marker=False,
        payload_type=111,
        sequence_number=0x4D2C,
        timestamp=123456,
        ssrc=0x7A1BC3D4,
        csrc_count=0,
        has_extension=True,
        extension_profile=0xBEDE,
        header_length=20,
        payload_length=len(OPUS_PAYLOAD),
        padding_length=0,
    ),
    OPUS_PAYLOAD,
)

# ffmpeg-style Opus: no extension at all.
FFMPEG_OPUS_PAYLOAD = hexbytes("fc ff fe")
FFMPEG_OPUS = Captured(
    "opus-plain",
    hexbytes("80 6f 0001 00000000 1d2c3b4a") + FFMPEG_OPUS_PAYLOAD,
    dict(
        marker=False,
        payload_type=111,
        sequence_number=1,
        timestamp=0,
        ssrc=0x1D2C3B4A,
        csrc_count=0,
        has_extension=False,
        extension_profile=0,
        header_length=12,
        payload_length=3,
        padding_length=0,
    ),
    FFMPEG_OPUS_PAYLOAD,
)

# An audio mixer's PCMU packet naming its two contributing sources.
PCMU_PAYLOAD = bytes([0xD5] * 8)
MIXED = Captured(
    "pcmu-two-csrcs",
    hexbytes(
        """
        82 80 0007              # V=2 CC=2 | M=1 PT=0 | seq 7
        00000320                # timestamp 800
        11223344                # SSRC (the mixer)
        aaaaaaaa bbbbbbbb       # CSRCs
        """
    )
    + PCMU_PAYLOAD,
    dict(
        marker=True,
        payload_type=0,
        sequence_number=7,
        timestamp=800,
        ssrc=0x11223344,
        csrc_count=2,
        has_extension=False,
        extension_profile=0,
        header_length=20,
        payload_length=8,
        padding_length=0,
    ),
    PCMU_PAYLOAD,
)

# VP8 with 4 bytes of padding (P=1, pad count in the last byte).
PADDED = Captured(
    "vp8-padded",
    hexbytes("a0 60 0100 00000bb8 3d6e9a12 10 0001020304 000000 04"),
    dict(
        marker=False,
        payload_type=96,
        sequence_number=0x0100,
        timestamp=3000,
        ssrc=0x3D6E9A12,
        csrc_count=0,
        has_extension=False,
        extension_profile=0,
        header_length=12,
        payload_length=6,
        padding_length=4,
    ),
    hexbytes("10 0001020304"),
)

# A padding-only bandwidth probe on the RTX stream (PT 97): 32 bytes of padding, no payload.
PROBE = Captured(
    "rtx-padding-only-probe",
    hexbytes("a0 61 002a 12345678 0a0b0c0d") + bytes(31) + b"\x20",
    dict(
        marker=False,
        payload_type=97,
        sequence_number=42,
        timestamp=0x12345678,
        ssrc=0x0A0B0C0D,
        csrc_count=0,
        has_extension=False,
        extension_profile=0,
        header_length=12,
        payload_length=0,
        padding_length=32,
    ),
    b"",
)

# Two-byte header extensions (RFC 8285 §4.3): abs-capture-time as id 5, length 8.
TWO_BYTE = Captured(
    "two-byte-extensions",
    hexbytes(
        """
        90 60 0001 00000064 01020304
        1000 0003               # two-byte profile (appbits 0), 3 words
        05 08 e91c6b3a80000000  # id 5, 8 bytes
        0000                    # padding to the word
        6162
        """
    ),
    dict(
        marker=False,
        payload_type=96,
        sequence_number=1,
        timestamp=100,
        ssrc=0x01020304,
        csrc_count=0,
        has_extension=True,
        extension_profile=0x1000,
        header_length=28,
        payload_length=2,
        padding_length=0,
    ),
    b"ab",
)

# Everything at once: CSRC, extension and padding.
KITCHEN_SINK = Captured(
    "csrc-extension-padding",
    hexbytes(
        """
        b1 ff ffff ffffffff ffffffff  # V=2 P X CC=1 | M=1 PT=127 | all-ones fields
        cafebabe                      # CSRC
        bede 0001 10 01 0000          # one-byte extension, 1 word
        0102 0002                     # payload, then 2 bytes padding
        """
    ),
    dict(
        marker=True,
        payload_type=127,
        sequence_number=0xFFFF,
        timestamp=0xFFFFFFFF,
        ssrc=0xFFFFFFFF,
        csrc_count=1,
        has_extension=True,
        extension_profile=0xBEDE,
        header_length=24,
        payload_length=2,
        padding_length=2,
    ),
    hexbytes("0102"),
)

CAPTURED = [VP8, OPUS, FFMPEG_OPUS, MIXED, PADDED, PROBE, TWO_BYTE, KITCHEN_SINK]
captured = pytest.mark.parametrize("packet", CAPTURED, ids=[p.name for p in CAPTURED])
buffer_kinds = pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "slice"])


def as_kind(data: bytes, kind: str):
    """``data`` as bytes, bytearray, a memoryview, or a memoryview into a larger buffer."""
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    return memoryview(b"\xee" * 7 + data + b"\xee" * 5)[7 : 7 + len(data)]


# --- parse_rtp -----------------------------------------------------------------------------


@captured
@buffer_kinds
def test_parse_captured_packet(rtp_impl, packet: Captured, kind: str) -> None:
    header = rtp_impl.parse_rtp(as_kind(packet.data, kind))
    assert fields(header) == packet.fields
    assert type(header.marker) is bool and type(header.has_extension) is bool
    start = header.header_length
    assert packet.data[start : start + header.payload_length] == packet.payload
    assert start + header.payload_length + header.padding_length == len(packet.data)


def test_header_extension_bytes_are_where_the_header_says(rtp_impl) -> None:
    header = rtp_impl.parse_rtp(VP8.data)
    extension = VP8.data[12 + 4 * header.csrc_count + 4 : header.header_length]
    assert ABS_CAPTURE_TIME_ELEMENT in extension


def test_parse_accepts_non_byte_formats(rtp_impl) -> None:
    import array

    words = array.array("B", VP8.data)
    assert fields(rtp_impl.parse_rtp(words)) == VP8.fields
    assert fields(rtp_impl.parse_rtp(memoryview(bytearray(VP8.data)).cast("c"))) == VP8.fields


def test_header_repr_lists_all_fields(rtp_impl) -> None:
    text = repr(rtp_impl.parse_rtp(MIXED.data))
    assert text == repr(_header_py.parse_rtp(MIXED.data))
    assert text.startswith("RtpHeader(marker=True, payload_type=0, sequence_number=7,")


def test_compiled_header_is_read_only() -> None:
    from sfu.rtp import _header_c  # the reference header is a plain slotted object

    header = _header_c.parse_rtp(OPUS.data)
    with pytest.raises(AttributeError):
        header.ssrc = 1


def test_header_constructor(rtp_impl) -> None:
    header = rtp_impl.RtpHeader(**VP8.fields)
    assert fields(header) == VP8.fields


def test_both_implementations_raise_the_same_error_class(rtp_impl) -> None:
    assert rtp_impl.RtpParseError is _header_py.RtpParseError
    assert issubclass(rtp_impl.RtpParseError, ValueError)


MALFORMED = [
    pytest.param(b"", "RTP packet too short: 0 bytes, need at least 12", id="empty"),
    pytest.param(VP8.data[:11], "RTP packet too short: 11 bytes, need at least 12", id="short"),
    pytest.param(b"\x40" + VP8.data[1:], "RTP version must be 2, got 1", id="version-1"),
    pytest.param(b"\x00" + VP8.data[1:], "RTP version must be 2, got 0", id="version-0"),
    pytest.param(b"\xd0" + VP8.data[1:], "RTP version must be 2, got 3", id="version-3"),
    pytest.param(
        MIXED.data[:19], "RTP CSRC list truncated: 2 CSRCs need 20 bytes, packet has 19",
        id="csrc-truncated",
    ),
    pytest.param(
        b"\x8f" + bytes(31), "RTP CSRC list truncated: 15 CSRCs need 72 bytes, packet has 32",
        id="csrc-15",
    ),
    pytest.param(
        VP8.data[:14], "RTP extension header truncated: need 16 bytes, packet has 14",
        id="extension-header-truncated",
    ),
    pytest.param(
        VP8.data[:12], "RTP extension header truncated: need 16 bytes, packet has 12",
        id="extension-header-missing",
    ),
    pytest.param(
        VP8.data[:27], "RTP extension truncated: 3 words need 28 bytes, packet has 27",
        id="extension-truncated",
    ),
    pytest.param(
        VP8.data[:14] + b"\xff\xff" + bytes(8),
        "RTP extension truncated: 65535 words need 262156 bytes, packet has 24",
        id="extension-huge",
    ),
    pytest.param(
        PADDED.data[:-1] + b"\x00", "RTP padding flag set but padding count is 0",
        id="padding-zero",
    ),
    pytest.param(
        PADDED.data[:-1] + b"\x0b", "RTP padding count 11 exceeds payload length 10",
        id="padding-too-long",
    ),
    pytest.param(
        hexbytes("a0 60 0001 00000000 00000001"),
        "RTP padding count 1 exceeds payload length 0",
        id="padding-no-room",
    ),
    pytest.param(
        hexbytes("b0 60 0001 00000000 00000001 bede 0000"),
        "RTP padding flag set but padding count is 0",
        id="padding-in-extension",
    ),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED)
@buffer_kinds
def test_parse_rejects_malformed_packet(rtp_impl, data: bytes, message: str, kind: str) -> None:
    with pytest.raises(rtp_impl.RtpParseError) as raised:
        rtp_impl.parse_rtp(as_kind(data, kind))
    assert str(raised.value) == message


def test_padding_exactly_filling_the_payload_is_valid(rtp_impl) -> None:
    header = rtp_impl.parse_rtp(PADDED.data[:-1] + b"\x0a")
    assert (header.payload_length, header.padding_length) == (0, 10)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("80e0", id="str"),
        pytest.param(None, id="none"),
        pytest.param(12, id="int"),
        pytest.param(memoryview(VP8.data)[::2], id="strided"),
    ],
)
def test_parse_rejects_non_buffers(rtp_impl, data) -> None:
    with pytest.raises(TypeError) as raised:
        rtp_impl.parse_rtp(data)
    assert str(raised.value) == (
        f"expected a C-contiguous bytes-like object, got {type(data).__name__}"
    )


# --- rewrite_rtp ---------------------------------------------------------------------------


@captured
def test_rewrite_changes_only_the_four_fields(rtp_impl, packet: Captured) -> None:
    buf = bytearray(packet.data)
    rtp_impl.rewrite_rtp(buf, 0xDEADBEEF, 0xBEEF, 0x01020304, 100)
    assert fields(rtp_impl.parse_rtp(buf)) == {
        **packet.fields,
        "ssrc": 0xDEADBEEF,
        "sequence_number": 0xBEEF,
        "timestamp": 0x01020304,
        "payload_type": 100,
    }
    assert buf[0] == packet.data[0]
    assert buf[1] & 0x80 == packet.data[1] & 0x80  # marker kept
    assert buf[2:12] == bytes.fromhex("beef 01020304 deadbeef")
    assert buf[12:] == packet.data[12:]  # CSRCs, extensions, payload and padding untouched


@captured
def test_rewrite_back_restores_the_exact_bytes(rtp_impl, packet: Captured) -> None:
    buf = bytearray(packet.data)
    original = rtp_impl.parse_rtp(packet.data)
    rtp_impl.rewrite_rtp(buf, 1, 2, 3, 4)
    assert buf != packet.data
    rtp_impl.rewrite_rtp(
        buf, original.ssrc, original.sequence_number, original.timestamp, original.payload_type
    )
    assert buf == packet.data


def test_rewrite_keeps_abs_capture_time(rtp_impl) -> None:
    buf = bytearray(VP8.data)
    rtp_impl.rewrite_rtp(buf, 7, 7, 7, 101)
    assert ABS_CAPTURE_TIME_ELEMENT in buf[16:28]
    assert buf[28:] == VP8_PAYLOAD


@pytest.mark.parametrize("marker", [False, True])
def test_rewrite_keeps_the_marker_bit(rtp_impl, marker: bool) -> None:
    buf = bytearray(FFMPEG_OPUS.data)
    buf[1] = (0x80 if marker else 0) | 111
    for payload_type in (0, 96, 127):
        rtp_impl.rewrite_rtp(buf, 1, 1, 1, payload_type)
        header = rtp_impl.parse_rtp(buf)
        assert (header.marker, header.payload_type) == (marker, payload_type)


def test_rewrite_in_a_slice_of_a_receive_buffer(rtp_impl) -> None:
    arena = bytearray(b"\xee" * 5 + OPUS.data + b"\xee" * 9)
    view = memoryview(arena)[5 : 5 + len(OPUS.data)]
    rtp_impl.rewrite_rtp(view, 0x01010101, 0x0202, 0x03030303, 0x04)
    assert arena[:5] == b"\xee" * 5 and arena[-9:] == b"\xee" * 9
    assert arena[5:17] == bytes.fromhex("90 04 0202 03030303 01010101")
    assert arena[17 : 5 + len(OPUS.data)] == OPUS.data[12:]


def test_rewrite_accepts_the_extreme_values(rtp_impl) -> None:
    buf = bytearray(FFMPEG_OPUS.data)
    rtp_impl.rewrite_rtp(buf, 0xFFFFFFFF, 0xFFFF, 0xFFFFFFFF, 127)
    assert buf[1:12] == bytes.fromhex("7f ffff ffffffff ffffffff")
    rtp_impl.rewrite_rtp(buf, 0, 0, 0, 0)
    assert buf[1:12] == bytes(11)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "RTP packet too short: 0 bytes, need at least 12", id="empty"),
        pytest.param(VP8.data[:11], "RTP packet too short: 11 bytes, need at least 12", id="short"),
        pytest.param(b"\x40" + VP8.data[1:], "RTP version must be 2, got 1", id="version"),
    ],
)
def test_rewrite_rejects_malformed_packet(rtp_impl, data: bytes, message: str) -> None:
    buf = bytearray(data)
    with pytest.raises(rtp_impl.RtpParseError) as raised:
        rtp_impl.rewrite_rtp(buf, 1, 2, 3, 4)
    assert str(raised.value) == message
    assert buf == data


def test_rewrite_does_not_validate_beyond_the_fixed_header(rtp_impl) -> None:
    buf = bytearray(MIXED.data[:13])  # CSRC list truncated, but the fixed header is there
    rtp_impl.rewrite_rtp(buf, 1, 2, 3, 4)
    assert buf[1:12] == bytes.fromhex("84 0002 00000003 00000001")


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((-1, 0, 0, 0), ValueError, "ssrc must be in 0..4294967295, got -1"),
        ((2**32, 0, 0, 0), ValueError, "ssrc must be in 0..4294967295, got 4294967296"),
        ((0, 65536, 0, 0), ValueError, "sequence_number must be in 0..65535, got 65536"),
        ((0, -1, 0, 0), ValueError, "sequence_number must be in 0..65535, got -1"),
        ((0, 0, 2**64, 0), ValueError,
         "timestamp must be in 0..4294967295, got 18446744073709551616"),
        ((0, 0, 0, 128), ValueError, "payload_type must be in 0..127, got 128"),
        ((0, 0, 0, 1.0), TypeError, "'float' object cannot be interpreted as an integer"),
        (("1", 0, 0, 0), TypeError, "'str' object cannot be interpreted as an integer"),
    ],
)
def test_rewrite_rejects_out_of_range_values(rtp_impl, args, error, message) -> None:
    buf = bytearray(VP8.data)
    with pytest.raises(error) as raised:
        rtp_impl.rewrite_rtp(buf, *args)
    assert type(raised.value) is error
    assert str(raised.value) == message
    assert buf == VP8.data


@pytest.mark.parametrize(
    "buf",
    [
        pytest.param(VP8.data, id="bytes"),
        pytest.param(memoryview(VP8.data), id="read-only-memoryview"),
        pytest.param(memoryview(bytearray(VP8.data * 2))[::2], id="strided"),
        pytest.param(None, id="none"),
    ],
)
def test_rewrite_needs_a_writable_buffer(rtp_impl, buf) -> None:
    with pytest.raises(TypeError) as raised:
        rtp_impl.rewrite_rtp(buf, 1, 2, 3, 4)
    assert str(raised.value) == (
        "rewrite_rtp needs a writable C-contiguous bytes-like object "
        f"(bytearray or writable memoryview), got {type(buf).__name__}"
    )


# --- is_rtcp -------------------------------------------------------------------------------

SR = hexbytes(
    """
    80 c8 0006              # V=2 RC=0 | SR | 6 words
    3d6e9a12                # sender SSRC
    e91c6b3a 80000000       # NTP timestamp
    5f3e8c10                # RTP timestamp
    0000012c 000493e0       # packet count 300, octet count 300000
    """
)
SDES = hexbytes(
    """
    81 ca 0006 3d6e9a12     # SDES, one chunk
    01 10 3472 48 56 7a 33 6e 52 66 42 39 54 32 4b 78 71  # CNAME, 16 chars
    00 00                   # end of items, pad to the word
    """
)
RR = hexbytes(
    """
    81 c9 0007 00000001     # RR, one report block, from SSRC 1
    3d6e9a12 00 000000      # about SSRC, fraction lost 0, cumulative 0
    00011a2b 00000012       # extended highest seq, jitter
    6b3a8000 00001000       # LSR, DLSR
    """
)
PLI = hexbytes("81 ce 0002 00000001 3d6e9a12")  # PSFB FMT=1
NACK = hexbytes("81 cd 0003 00000001 3d6e9a12 1a2b 0005")  # RTPFB FMT=1, PID, BLP
REMB = hexbytes("8f ce 0005 00000001 00000000 52454d42 01 0a3d09 3d6e9a12")  # PSFB FMT=15
BYE = hexbytes("81 cb 0001 3d6e9a12")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(SR, id="SR"),
        pytest.param(RR, id="RR"),
        pytest.param(SDES, id="SDES"),
        pytest.param(BYE, id="BYE"),
        pytest.param(PLI, id="PLI"),
        pytest.param(NACK, id="NACK"),
        pytest.param(REMB, id="REMB"),
        pytest.param(SR + SDES, id="compound"),
        pytest.param(b"\x80\xc0", id="type-192"),
        pytest.param(b"\x80\xdf", id="type-223"),
        pytest.param(b"\x80\x40", id="rtp-pt-64-reserved"),
        pytest.param(b"\x80\x5f", id="rtp-pt-95-reserved"),
    ],
)
@buffer_kinds
def test_is_rtcp_true(rtp_impl, data: bytes, kind: str) -> None:
    assert rtp_impl.is_rtcp(as_kind(data, kind)) is True


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(VP8.data, id="PT96-marker"),
        pytest.param(b"\x80\x60" + VP8.data[2:], id="PT96"),
        pytest.param(OPUS.data, id="PT111"),
        pytest.param(b"\x80\xef" + OPUS.data[2:], id="PT111-marker"),
        pytest.param(KITCHEN_SINK.data, id="PT127-marker"),
        pytest.param(b"\x80\x7f" + VP8.data[2:], id="PT127"),
        pytest.param(MIXED.data, id="PT0"),
        pytest.param(b"\x80\x3f", id="PT63"),
        pytest.param(b"\x80\xbf", id="type-191"),
        pytest.param(b"\x80\xe0", id="type-224"),
        pytest.param(b"\x80", id="one-byte"),
        pytest.param(b"", id="empty"),
    ],
)
@buffer_kinds
def test_is_rtcp_false(rtp_impl, data: bytes, kind: str) -> None:
    assert rtp_impl.is_rtcp(as_kind(data, kind)) is False


def test_is_rtcp_rejects_non_buffers(rtp_impl) -> None:
    with pytest.raises(TypeError, match="^expected a C-contiguous bytes-like object, got str$"):
        rtp_impl.is_rtcp("\x80\xc8")


# --- parse_rtcp_compound -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(SR + SDES, [(200, 0, 28), (202, 1, 28)], id="SR+SDES"),
        pytest.param(RR + SDES + BYE, [(201, 1, 32), (202, 1, 28), (203, 1, 8)], id="RR+SDES+BYE"),
        pytest.param(RR + PLI, [(201, 1, 32), (206, 1, 12)], id="RR+PLI"),
        pytest.param(
            RR + NACK + REMB, [(201, 1, 32), (205, 1, 16), (206, 15, 24)], id="RR+NACK+REMB"
        ),
        pytest.param(PLI, [(206, 1, 12)], id="reduced-size-PLI"),
        pytest.param(REMB, [(206, 15, 24)], id="reduced-size-REMB"),
        pytest.param(hexbytes("80 c9 0000"), [(201, 0, 4)], id="empty-RR"),
    ],
)
@buffer_kinds
def test_parse_rtcp_compound(rtp_impl, data: bytes, expected, kind: str) -> None:
    assert rtp_impl.parse_rtcp_compound(as_kind(data, kind)) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "RTCP packet too short: 0 bytes, need at least 4", id="empty"),
        pytest.param(SR[:3], "RTCP packet too short: 3 bytes, need at least 4", id="short"),
        pytest.param(
            SR + SDES[:2], "RTCP header truncated at offset 28: 2 bytes left, need 4",
            id="trailing-bytes",
        ),
        pytest.param(
            SR[:27], "RTCP packet at offset 0 declares 28 bytes, only 27 left", id="first-truncated"
        ),
        pytest.param(
            RR + PLI[:11], "RTCP packet at offset 32 declares 12 bytes, only 11 left",
            id="second-truncated",
        ),
        pytest.param(
            b"\x40" + SR[1:], "RTCP version must be 2 at offset 0, got 1", id="version-first"
        ),
        pytest.param(
            SR + b"\xc1" + SDES[1:], "RTCP version must be 2 at offset 28, got 3",
            id="version-second",
        ),
        pytest.param(
            SR + VP8.data, "RTCP packet at offset 28 declares 26800 bytes, only 53 left",
            id="rtp-appended",
        ),
    ],
)
@buffer_kinds
def test_parse_rtcp_compound_rejects(rtp_impl, data: bytes, message: str, kind: str) -> None:
    with pytest.raises(rtp_impl.RtpParseError) as raised:
        rtp_impl.parse_rtcp_compound(as_kind(data, kind))
    assert str(raised.value) == message
