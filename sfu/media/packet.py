"""The records the media plane passes between its parts.

A `MediaPacket` is an RTP packet as the ingress left it: parsed once, its sequence number widened
to 64 bits (`ext_seq`), its payload inspected for the codec's frame boundaries. The RTP timestamp
stays the 32-bit value from the wire; a part that compares timestamps does so modulo 2**32.

A frame is the packets that share one RTP timestamp. It is complete when it has a packet that
starts it (`frame_start`), a packet that ends it (`marker`) and every sequence number between the
two. Audio: every packet is a whole frame (ingress sets keyframe, frame_start and marker).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class MediaPacket:
    ext_seq: int
    timestamp: int  # 32-bit RTP timestamp as on the wire
    marker: bool  # this packet ends its frame
    keyframe: bool  # this packet starts a keyframe
    frame_start: bool  # this packet starts its frame
    arrival: float  # monotonic seconds when it arrived at the node
    data: bytes  # the whole RTP packet
    is_retransmission: bool = False  # came back as the answer to a NACK (RTX or same SSRC)
    droppable: bool = False  # nothing depends on its frame (codecs.FrameInfo.droppable)


@dataclass(slots=True)
class Frame:
    timestamp: int
    first_ext_seq: int
    last_ext_seq: int
    packets: list[MediaPacket]  # in ext_seq order
    keyframe: bool
    first_arrival: float  # arrival of the first of its packets to arrive
