"""Tiny RTP/RTCP packet builders for tests (independent of the code under test)."""

import struct


def rtp(seq: int, ts: int, ssrc: int, payload: bytes = b"\x10\x00payload", pt: int = 96, marker: bool = False,
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
