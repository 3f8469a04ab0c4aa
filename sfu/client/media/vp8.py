"""VP8 RTP payloads (RFC 7741): split an encoded frame into payloads, and join them back.

Packetizer rules:

- Every payload starts with a 4-byte descriptor (§4.2): ``X=1, N=0, S, PID=0``; then ``I=1``
  and a 15-bit PictureID (``M=1``) that goes up by one per frame, modulo 2**15::

      first packet of a frame:   90 80 (80|pid>>8) (pid&ff)
      the others:                80 80 (80|pid>>8) (pid&ff)

  The whole frame is partition 0 (PID=0 everywhere is allowed by §4.2), so S marks exactly the
  first packet of a frame, which is what a receiver needs (``sfu.media.codecs`` reads it so).
- The frame is cut into the fewest payloads of at most ``max_payload`` bytes (descriptor
  included), of near-equal size (the first ones one byte longer when it does not divide).
- The caller sets the RTP marker on the last payload. An empty frame is a ``ValueError``.

``depacketize_vp8(payloads)`` strips each descriptor (any valid RFC 7741 form) and concatenates;
``PayloadError`` (from ``sfu.media.codecs``) for a truncated descriptor.
"""

from __future__ import annotations

from sfu.media.codecs import PayloadError

__all__ = ["Vp8Packetizer", "depacketize_vp8", "vp8_descriptor_length"]

_DESCRIPTOR = 4


def _split(data: bytes, room: int) -> list[bytes]:
    """``data`` in the fewest chunks of at most ``room`` bytes, sizes differing by at most one."""
    count = -(-len(data) // room)
    base, extra = divmod(len(data), count)
    chunks, pos = [], 0
    for i in range(count):
        size = base + (1 if i < extra else 0)
        chunks.append(data[pos:pos + size])
        pos += size
    return chunks


class Vp8Packetizer:
    def __init__(self, max_payload: int = 1200, picture_id: int = 0) -> None:
        if max_payload <= _DESCRIPTOR:
            raise ValueError(f"max_payload must exceed the {_DESCRIPTOR}-byte descriptor, got {max_payload}")
        self.max_payload = max_payload
        self.picture_id = picture_id & 0x7FFF  # of the next frame

    def packetize(self, frame: bytes) -> list[bytes]:
        if not frame:
            raise ValueError("VP8 frame is empty")
        pid = self.picture_id
        self.picture_id = (pid + 1) & 0x7FFF
        tail = bytes((0x80, 0x80 | pid >> 8, pid & 0xFF))
        chunks = _split(frame, self.max_payload - _DESCRIPTOR)
        return [(b"\x90" if i == 0 else b"\x80") + tail + chunk for i, chunk in enumerate(chunks)]


def vp8_descriptor_length(payload: bytes | memoryview) -> int:
    """Bytes taken by the payload descriptor at the start of ``payload``."""
    n = len(payload)
    if n == 0:
        raise PayloadError("VP8 payload is empty")
    if not payload[0] & 0x80:
        return 1
    if n < 2:
        raise PayloadError("VP8 descriptor truncated: X is set but the extension byte is missing")
    x, pos = payload[1], 2
    if x & 0x80:
        if pos >= n:
            raise PayloadError("VP8 descriptor truncated: I is set but the picture id is missing")
        pos += 2 if payload[pos] & 0x80 else 1
    if x & 0x40:
        pos += 1
    if x & 0x30:
        pos += 1
    if pos > n:
        raise PayloadError(f"VP8 descriptor truncated: needs {pos} bytes, payload has {n}")
    return pos


def depacketize_vp8(payloads: list[bytes]) -> bytes:
    return b"".join(bytes(p[vp8_descriptor_length(p):]) for p in payloads)
