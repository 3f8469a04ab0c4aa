"""Per-codec payload formats, picked by ``Codec``: packetizers for the publisher, depacketize for the player.

A packetizer turns one encoded frame into the RTP payloads of that frame, in order (the marker
goes on the last). Opus (RFC 7587): one frame, one payload, as it is.
"""

from __future__ import annotations

from sfu.media.codecs import Codec

from .h264 import H264Packetizer, depacketize_h264
from .vp8 import Vp8Packetizer, depacketize_vp8

__all__ = ["OpusPacketizer", "depacketize", "packetizer_for"]


class OpusPacketizer:
    def __init__(self, max_payload: int = 1200) -> None:
        self.max_payload = max_payload

    def packetize(self, frame: bytes) -> list[bytes]:
        if not frame:
            raise ValueError("Opus frame is empty")
        if len(frame) > self.max_payload:
            raise ValueError(f"Opus frame of {len(frame)} bytes exceeds max_payload {self.max_payload}")
        return [frame]


def packetizer_for(codec: Codec, max_payload: int = 1200):
    if codec is Codec.VP8:
        return Vp8Packetizer(max_payload)
    if codec is Codec.H264:
        return H264Packetizer(max_payload)
    if codec is Codec.OPUS:
        return OpusPacketizer(max_payload)
    raise ValueError(f"the SDK does not packetize {codec.value}")


def depacketize(codec: Codec, payloads: list[bytes]) -> bytes:
    """One frame's payloads back into the codec's frame (VP8 frame, H.264 Annex B access unit, Opus packet)."""
    if codec is Codec.VP8:
        return depacketize_vp8(payloads)
    if codec is Codec.H264:
        return depacketize_h264(payloads)
    return b"".join(bytes(p) for p in payloads)
