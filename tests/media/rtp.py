"""Tiny RTP/RTCP packet builders for tests (independent of the code under test)."""

import struct

# VP8 payloads (RFC 7741 descriptor S=1 PID=0, then the VP8 frame tag; a keyframe has the start code)
VP8_KEY = b"\x10" + bytes([0x10, 0x00, 0x00]) + b"\x9d\x01\x2a" + b"\x40\x01\xf0\x00" + b"keyframe"
VP8_DELTA = b"\x10" + bytes([0x11, 0x00, 0x00]) + b"delta"


def rtp(seq: int, ts: int, ssrc: int, payload: bytes = VP8_KEY, pt: int = 96, marker: bool = True,
        ext: bytes | None = None) -> bytes:
    b0 = 0x80 | (0x10 if ext is not None else 0)
    head = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
    if ext is not None:
        assert len(ext) % 4 == 0
        head += struct.pack("!HH", 0xBEDE, len(ext) // 4) + ext
    return head + payload


def rtcp_rr(sender_ssrc: int) -> bytes:
    return struct.pack("!BBHI", 0x80, 201, 1, sender_ssrc)


def fields(packet: bytes) -> tuple[int, int, int, int]:
    """(payload type, seq, timestamp, ssrc)"""
    _, b1, seq, ts, ssrc = struct.unpack("!BBHII", packet[:12])
    return b1 & 0x7F, seq, ts, ssrc
