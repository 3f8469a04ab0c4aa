"""RTP/RTCP header parsing and in-place rewriting: the pure-Python reference.

This module is the readable specification. ``native/rtp_header.pyx`` (built as
``sfu.rtp._header_c``) is the fast path and must behave identically: same fields, same
exception types, same messages. ``sfu.rtp.header`` picks one of the two.

RTP fixed header (RFC 3550 §5.1)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           timestamp                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           synchronization source (SSRC) identifier            |
    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
    |       contributing source (CSRC) identifiers: CC x 32 bits    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |   extension profile (X=1)     |   extension length (words)    |
    |               extension: length x 32 bits                     |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           payload ...                         |
    |                               | padding (P=1) ... | pad count |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Header extensions (RFC 3550 §5.3.1; RFC 8285, which obsoletes RFC 5285): profile 0xBEDE
carries one-byte elements, 0x1000-0x100F two-byte elements. Only the outer length is
validated here; the elements themselves (e.g. abs-capture-time) are not interpreted, because
the router passes them through untouched.

Layout: ``header_length = 12 + 4*CC (+ 4 + 4*extension_length if X)``; the payload is
``data[header_length : header_length + payload_length]``; the last ``padding_length``
bytes are padding.

Validation rules, checked in this order; the first failure raises ``RtpParseError`` with
the message shown (``n`` is the packet length)::

    n < 12                               "RTP packet too short: {n} bytes, need at least 12"
    V != 2                               "RTP version must be 2, got {V}"
    12 + 4*CC > n                        "RTP CSRC list truncated: {CC} CSRCs need {12+4*CC} bytes, packet has {n}"
    X and header + 4 > n                 "RTP extension header truncated: need {header+4} bytes, packet has {n}"
    X and header + 4 + 4*words > n       "RTP extension truncated: {words} words need {total} bytes, packet has {n}"
    P and pad count == 0                 "RTP padding flag set but padding count is 0"
    P and pad count > n - header         "RTP padding count {pad} exceeds payload length {n-header}"

RTP/RTCP demultiplexing on one port (RFC 5761 §4): RTCP packet types 192..223 put 64..95
into the low seven bits of the second byte, where RTP would have its payload type; RTP
payload types 64..95 are therefore not used on a muxed port.

Compound RTCP (RFC 3550 §6.1): packets back to back, each a 4-byte header
``V=2 | P | count/FMT (5 bits) | PT (8 bits) | length (16 bits, words minus one)``.
RFC 3550 appendix A.2 also wants the first packet to be SR or RR and padding only in the
last packet; we are lenient on both, because reduced-size RTCP (RFC 5506, which browsers
negotiate) sends a lone PLI, NACK or transport-cc feedback packet, and the packet
handlers look at the types anyway. Versions and lengths are always validated.

Inputs are any C-contiguous bytes-like object (bytes, bytearray, memoryview, ...); anything
else raises ``TypeError``. ``rewrite_rtp`` needs a writable one (bytearray, writable
memoryview) and checks its integer arguments (``ValueError`` when out of range).
"""

from __future__ import annotations

import operator
import struct

__all__ = [
    "RtpHeader",
    "RtpParseError",
    "is_rtcp",
    "parse_rtcp_compound",
    "parse_rtp",
    "rewrite_rtp",
]

RTP_HEADER_LENGTH = 12
RTCP_HEADER_LENGTH = 4

_SEQ_TS_SSRC = struct.Struct("!HII")  # bytes 2..11 of the fixed header
_EXTENSION_HEADER = struct.Struct("!HH")  # profile, length in 32-bit words
_RTCP_HEADER = struct.Struct("!BBH")  # V/P/count, packet type, length in words minus one


class RtpParseError(ValueError):
    """Malformed RTP or RTCP packet.

    Shared by both implementations (``sfu.rtp._header_c`` raises this very class), so
    ``except RtpParseError`` works whichever one ``sfu.rtp.header`` selected.
    """


class RtpHeader:
    """The parsed RTP header of one packet (RFC 3550 §5.1). Version is always 2."""

    __slots__ = (
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

    marker: bool
    payload_type: int  # 0..127
    sequence_number: int  # 0..65535, not widened here
    timestamp: int  # 0..2**32-1
    ssrc: int  # 0..2**32-1
    csrc_count: int  # 0..15
    has_extension: bool
    extension_profile: int  # 0 when has_extension is False
    header_length: int  # offset of the payload: fixed header, CSRCs and extension
    payload_length: int  # excluding padding
    padding_length: int  # 0 when the P bit is clear

    def __init__(
        self,
        *,
        marker: bool,
        payload_type: int,
        sequence_number: int,
        timestamp: int,
        ssrc: int,
        csrc_count: int,
        has_extension: bool,
        extension_profile: int,
        header_length: int,
        payload_length: int,
        padding_length: int,
    ) -> None:
        self.marker = marker
        self.payload_type = payload_type
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrc_count = csrc_count
        self.has_extension = has_extension
        self.extension_profile = extension_profile
        self.header_length = header_length
        self.payload_length = payload_length
        self.padding_length = padding_length

    def __repr__(self) -> str:
        return (
            f"RtpHeader(marker={self.marker!r}, payload_type={self.payload_type!r}, "
            f"sequence_number={self.sequence_number!r}, timestamp={self.timestamp!r}, "
            f"ssrc={self.ssrc!r}, csrc_count={self.csrc_count!r}, "
            f"has_extension={self.has_extension!r}, "
            f"extension_profile={self.extension_profile!r}, "
            f"header_length={self.header_length!r}, payload_length={self.payload_length!r}, "
            f"padding_length={self.padding_length!r})"
        )


def _readable(data: object) -> bytes | bytearray | memoryview:
    """``data`` as something indexable by byte, or TypeError."""
    if type(data) is bytes or type(data) is bytearray:
        return data
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        view = None
    if view is None or not view.c_contiguous:
        raise TypeError(f"expected a C-contiguous bytes-like object, got {type(data).__name__}")
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    return view


def _writable(buf: object) -> bytearray | memoryview:
    """``buf`` as a writable byte view, or TypeError."""
    if type(buf) is bytearray:
        return buf
    try:
        view = memoryview(buf)  # type: ignore[arg-type]
    except TypeError:
        view = None
    if view is None or view.readonly or not view.c_contiguous:
        raise TypeError(
            "rewrite_rtp needs a writable C-contiguous bytes-like object "
            f"(bytearray or writable memoryview), got {type(buf).__name__}"
        )
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    return view


def _in_range(name: str, value: object, maximum: int) -> int:
    number = operator.index(value)  # TypeError for non-integers
    if number < 0 or number > maximum:
        raise ValueError(f"{name} must be in 0..{maximum}, got {number}")
    return number


def parse_rtp(data: bytes | bytearray | memoryview) -> RtpHeader:
    """Parse and validate the RTP header of ``data``; raise RtpParseError if malformed."""
    data = _readable(data)
    n = len(data)
    if n < RTP_HEADER_LENGTH:
        raise RtpParseError(f"RTP packet too short: {n} bytes, need at least 12")
    first = data[0]
    version = first >> 6
    if version != 2:
        raise RtpParseError(f"RTP version must be 2, got {version}")

    csrc_count = first & 0x0F
    header_length = RTP_HEADER_LENGTH + 4 * csrc_count
    if header_length > n:
        raise RtpParseError(
            f"RTP CSRC list truncated: {csrc_count} CSRCs need {header_length} bytes, "
            f"packet has {n}"
        )

    has_extension = bool(first & 0x10)
    extension_profile = 0
    if has_extension:
        if header_length + 4 > n:
            raise RtpParseError(
                f"RTP extension header truncated: need {header_length + 4} bytes, packet has {n}"
            )
        extension_profile, words = _EXTENSION_HEADER.unpack_from(data, header_length)
        header_length += 4 + 4 * words
        if header_length > n:
            raise RtpParseError(
                f"RTP extension truncated: {words} words need {header_length} bytes, "
                f"packet has {n}"
            )

    padding_length = 0
    if first & 0x20:
        padding_length = data[n - 1]
        if padding_length == 0:
            raise RtpParseError("RTP padding flag set but padding count is 0")
        if padding_length > n - header_length:
            raise RtpParseError(
                f"RTP padding count {padding_length} exceeds payload length {n - header_length}"
            )

    second = data[1]
    sequence_number, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
    return RtpHeader(
        marker=bool(second & 0x80),
        payload_type=second & 0x7F,
        sequence_number=sequence_number,
        timestamp=timestamp,
        ssrc=ssrc,
        csrc_count=csrc_count,
        has_extension=has_extension,
        extension_profile=extension_profile,
        header_length=header_length,
        payload_length=n - header_length - padding_length,
        padding_length=padding_length,
    )


def is_rtcp(data: bytes | bytearray | memoryview) -> bool:
    """RFC 5761 demultiplexing: True for RTCP (packet types 192..223), False for RTP.

    Looks at the second byte only; the version is not checked, and anything shorter than
    two bytes is not RTCP.
    """
    data = _readable(data)
    return len(data) >= 2 and 64 <= (data[1] & 0x7F) <= 95


def rewrite_rtp(
    buf: bytearray | memoryview,
    ssrc: int,
    sequence_number: int,
    timestamp: int,
    payload_type: int,
) -> None:
    """Overwrite SSRC, sequence number, timestamp and payload type in place.

    The marker bit and every other byte (CSRCs, extensions, payload, padding) stay as
    they are. Arguments are checked first (ValueError/TypeError), then the buffer
    (TypeError), then the packet (RtpParseError for fewer than 12 bytes or version != 2).
    """
    ssrc = _in_range("ssrc", ssrc, 0xFFFFFFFF)
    sequence_number = _in_range("sequence_number", sequence_number, 0xFFFF)
    timestamp = _in_range("timestamp", timestamp, 0xFFFFFFFF)
    payload_type = _in_range("payload_type", payload_type, 0x7F)
    view = _writable(buf)
    n = len(view)
    if n < RTP_HEADER_LENGTH:
        raise RtpParseError(f"RTP packet too short: {n} bytes, need at least 12")
    version = view[0] >> 6
    if version != 2:
        raise RtpParseError(f"RTP version must be 2, got {version}")
    view[1] = (view[1] & 0x80) | payload_type
    _SEQ_TS_SSRC.pack_into(view, 2, sequence_number, timestamp, ssrc)


def parse_rtcp_compound(data: bytes | bytearray | memoryview) -> list[tuple[int, int, int]]:
    """Split a compound RTCP packet into ``(packet_type, count_or_fmt, length_in_bytes)``.

    ``length_in_bytes`` includes the packet's 4-byte header. Any packet type may come
    first (see the module docstring); versions and lengths are validated.
    """
    data = _readable(data)
    n = len(data)
    if n < RTCP_HEADER_LENGTH:
        raise RtpParseError(f"RTCP packet too short: {n} bytes, need at least 4")
    packets = []
    offset = 0
    while offset < n:
        left = n - offset
        if left < RTCP_HEADER_LENGTH:
            raise RtpParseError(
                f"RTCP header truncated at offset {offset}: {left} bytes left, need 4"
            )
        first, packet_type, words = _RTCP_HEADER.unpack_from(data, offset)
        version = first >> 6
        if version != 2:
            raise RtpParseError(f"RTCP version must be 2 at offset {offset}, got {version}")
        length = 4 * (words + 1)
        if length > left:
            raise RtpParseError(
                f"RTCP packet at offset {offset} declares {length} bytes, only {left} left"
            )
        packets.append((packet_type, first & 0x1F, length))
        offset += length
    return packets
