"""Build RTP packets with RFC 8285 header extensions, read the extensions back, abs-capture-time.

The node parses headers with ``sfu.rtp.header`` and passes extensions through untouched; the SDK
is the end that writes and reads them.

Rules:

- ``build_rtp`` writes the RFC 3550 fixed header (V=2, no padding, no CSRCs) and, when
  ``extensions`` is given, the RFC 8285 one-byte form: profile ``0xBEDE``, then per element a
  byte ``id << 4 | (len - 1)`` and ``len`` data bytes, ids 1-14, 1-16 bytes each, elements in
  the given order, zero-padded to a 32-bit boundary. Out-of-range values raise ``ValueError``.
- ``header_extensions(packet, header)`` returns ``{id: data}`` for the one-byte (``0xBEDE``) and
  two-byte (``0x100X``) forms; padding bytes (id 0) are skipped, id 15 in the one-byte form ends
  the list (RFC 8285 §4.2), an element running past the extension block ends it too (what came
  before is kept). Other profiles give ``{}``. It never raises on a header from ``parse_rtp``.
- abs-capture-time (http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time) is carried
  with id ``ABS_CAPTURE_TIME_ID`` = 3 (docs/protocol.md, "Media conventions"): the 8-byte
  absolute capture timestamp, a 64-bit NTP time (UQ32.32 seconds since 1900). The optional
  8-byte estimated capture clock offset is never written and ignored when read.
"""

from __future__ import annotations

import struct

from sfu.rtp.header import RtpHeader
from sfu.rtp.rtcp import NTP_UNIX_OFFSET

__all__ = [
    "ABS_CAPTURE_TIME_ID", "ABS_CAPTURE_TIME_URI", "abs_capture_time", "build_rtp", "header_extensions",
    "read_abs_capture_time", "unix_from_ntp",
]

ABS_CAPTURE_TIME_ID = 3
ABS_CAPTURE_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"

_FIXED = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


def build_rtp(payload_type: int, sequence_number: int, timestamp: int, ssrc: int, payload: bytes, *,
              marker: bool = False, extensions: dict[int, bytes] | None = None) -> bytes:
    """One RTP packet (rules above)."""
    if not 0 <= payload_type <= 127:
        raise ValueError(f"payload_type must be in 0..127, got {payload_type}")
    first = 0x90 if extensions else 0x80
    head = _FIXED.pack(first, (0x80 if marker else 0) | payload_type, sequence_number & 0xFFFF,
                       timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)
    if not extensions:
        return head + payload
    body = bytearray()
    for ext_id, data in extensions.items():
        if not 1 <= ext_id <= 14:
            raise ValueError(f"one-byte header extension ids are 1-14, got {ext_id}")
        if not 1 <= len(data) <= 16:
            raise ValueError(f"one-byte header extension data is 1-16 bytes, got {len(data)} for id {ext_id}")
        body.append(ext_id << 4 | (len(data) - 1))
        body += data
    body += bytes(-len(body) % 4)
    return head + _EXT_HEADER.pack(0xBEDE, len(body) // 4) + bytes(body) + payload


def header_extensions(packet: bytes | bytearray | memoryview, header: RtpHeader) -> dict[int, bytes]:
    """The header extension elements of a parsed packet, ``{id: data}`` (rules above)."""
    if not header.has_extension:
        return {}
    start = 12 + 4 * header.csrc_count + 4
    end = header.header_length
    profile = header.extension_profile
    out: dict[int, bytes] = {}
    pos = start
    if profile == 0xBEDE:
        while pos < end:
            b = packet[pos]
            if b == 0:
                pos += 1
                continue
            ext_id, length = b >> 4, (b & 0x0F) + 1
            if ext_id == 15 or pos + 1 + length > end:
                break
            out[ext_id] = bytes(packet[pos + 1:pos + 1 + length])
            pos += 1 + length
    elif profile & 0xFFF0 == 0x1000:
        while pos < end:
            ext_id = packet[pos]
            if ext_id == 0:
                pos += 1
                continue
            if pos + 2 > end:
                break
            length = packet[pos + 1]
            if pos + 2 + length > end:
                break
            out[ext_id] = bytes(packet[pos + 2:pos + 2 + length])
            pos += 2 + length
    return out


def abs_capture_time(ntp64: int) -> bytes:
    """The abs-capture-time element data: the 64-bit NTP capture timestamp, big-endian."""
    return struct.pack("!Q", ntp64 & 0xFFFFFFFFFFFFFFFF)


def read_abs_capture_time(extensions: dict[int, bytes], ext_id: int = ABS_CAPTURE_TIME_ID) -> int | None:
    """The NTP capture timestamp from a packet's extensions, or None (absent or shorter than 8 bytes)."""
    data = extensions.get(ext_id)
    if data is None or len(data) < 8:
        return None
    return struct.unpack_from("!Q", data)[0]


def unix_from_ntp(ntp64: int) -> float:
    """Unix seconds for a 64-bit NTP timestamp (the inverse of ``sfu.rtp.rtcp.ntp_from_unix`` until 2036)."""
    return (ntp64 >> 32) - NTP_UNIX_OFFSET + (ntp64 & 0xFFFFFFFF) / 2**32
