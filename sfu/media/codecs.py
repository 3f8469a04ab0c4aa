"""Per-codec RTP payload inspection: does this packet start a frame, a keyframe, a droppable frame?

The router never decodes media; it looks at the first bytes of each RTP payload (the payload
descriptor or NAL/aggregation header) to learn what it needs for keyframe caching, L3 frame
assembly and congestion drops. ``inspect_payload(codec, payload)`` returns a ``FrameInfo``:

- ``frame_start``: this packet carries the first bytes of a frame.
- ``keyframe``: this packet starts a frame that decodes with no earlier frame (so
  ``keyframe`` implies ``frame_start``; the other packets of that frame report ``False`` and are
  recognised by their RTP timestamp).
- ``decodable_alone``: the same as ``keyframe``; kept as its own name because that is the
  property the keyframe cache and the latency budget ask about.
- ``droppable``: the codec says no other frame depends on this one, so it can be skipped
  without breaking decoding. Only where the payload format signals it; otherwise ``False``
  (dropping a referenced frame corrupts the picture until the next keyframe, so we never guess).
- ``temporal_id`` / ``spatial_id``: layer indices when the descriptor carries them, else None.

Rules per codec (each case is tested with byte-exact payloads in tests/media/test_codecs.py):

**VP8** (RFC 7741 §4.2 descriptor, §4.3 payload header)::

    |X|R|N|S|R| PID |   X: extension byte follows; N: non-reference frame; S: partition start
    |I|L|T|K| RSV   |   (X) I: picture id, L: TL0PICIDX, T: TID, K: KEYIDX follow
    |M| PictureID   |   (I) M=1: 15-bit picture id, one more byte
    |   TL0PICIDX   |   (L)
    |TID|Y| KEYIDX  |   (T or K)
    |Size0|H| VER |P|   payload header, first packet of a frame only; P=0: key frame

  frame start = S and PID == 0; keyframe = frame start and P == 0, and then the payload must
  hold the 10-byte key frame header (RFC 6386 §9.1: 3-byte frame tag, start code 9d 01 2a,
  width and height; libwebrtc's depacketizer requires the same); droppable = N (and not a key
  frame); temporal_id = TID when T is set.

**VP9** (RFC 9628 §4.2)::

    |I|P|L|F|B|E|V|Z|   P: inter-picture predicted; B: begins a frame; F: flexible mode
    |M| PICTURE ID  |   (I) M=1: one more byte
    | TID |U| SID |D|   (L)
    |   TL0PICIDX   |   (L and not F)
    | P_DIFF      |N|   (F and P) up to 3 times, N: another follows
    | SS ...        |   (V) N_S|Y|G|-|-|-, (N_S+1) x 4 bytes if Y, N_G if G, N_G x (T|U|R|-|-, R bytes)

  frame start = B; keyframe = B and P == 0 and (SID == 0 when L is present). droppable is
  always False: RFC 9628 has no "nothing references this frame" flag. Z only says the frame is
  not used for *inter-layer* prediction, which leaves temporal prediction open, and a
  single-layer encoder may set Z on every frame; U and the SS group description need state
  across packets. ``temporal_id``/``spatial_id`` are reported so a stateful caller can decide.
  P_DIFF without a picture id, or more than 3 of them, is an error (as in libwebrtc).

**H.264** (RFC 6184 §5.2-5.8; packetization modes 0 and 1, which is what WebRTC, ffmpeg and
GStreamer send). NAL header ``|F|NRI|Type|``:

  - single NAL unit (types 1-23): frame start always; keyframe for IDR slice (5), SPS (7) and
    PPS (8), because SPS/PPS are sent right before an IDR; droppable = NRI == 0.
  - STAP-A (24, §5.7.1): ``16-bit size, NAL unit`` repeated to the end; each unit must be a
    single NAL type 1-23 and non-empty; frame start; keyframe if any unit is 5, 7 or 8;
    droppable if every unit has NRI == 0.
  - FU-A (28, §5.8): ``FU indicator, |S|E|R|Type|``; frame start = S; keyframe = S and the
    fragmented type is 5, 7 or 8; droppable = NRI == 0; S and E together is an error (§5.8).
  - STAP-B, MTAP16, MTAP24, FU-B (25-27, 29) belong to interleaved mode, which we do not
    support: error. Type 0, 30, 31 are undefined: error.

  H.264 has no frame boundary in the RTP payload: a picture may be several slices (several
  NAL units) and the first NAL unit of an access unit cannot be told apart from the next
  slice of the same picture by looking at one packet. So every NAL unit start is reported as
  a potential frame start; callers group by RTP timestamp (and the marker bit for the end).
  A key frame is likewise any packet starting an IDR slice or SPS/PPS. keyframe ⇒ not
  droppable (an IDR has NRI > 0 anyway).

**AV1** (AV1 RTP payload format, aomediacodec.github.io/av1-rtp-spec §4.4)::

    |Z|Y| W |N|-|-|-|   Z: first OBU element continues one from the previous packet;
                        Y: last continues in the next; W: element count (0 = each has a
                        leb128 size); N: first packet of a new coded video sequence

  frame start = not Z (libwebrtc's reading; a frame made of several tile-group OBUs in
  separate packets is reported as several starts: best effort); keyframe = N (libwebrtc
  does the same; key frames that do not begin a new sequence are not detected); N with Z is
  an error (a sequence cannot begin with a fragment). Elements are walked to validate the
  leb128 sizes (at most 8 bytes, within the packet). droppable False: dependency
  information is in the dependency-descriptor header extension, not the payload.

**Opus** (RFC 7587): every packet is a whole frame: keyframe, frame start, decodable alone;
never droppable (audio is dropped last, by a policy, not by this function). An empty payload
is an error (RFC 6716 §3.4 R1: a packet has at least the TOC byte).

Errors: ``PayloadError`` (a ``ValueError``) with a message naming the codec and what is
wrong. Any bytes in → a ``FrameInfo`` or a ``PayloadError``; nothing else (fuzzed with
Hypothesis). Payloads are ``bytes``, ``bytearray`` or a ``memoryview`` (read in place).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Codec", "FrameInfo", "PayloadError", "inspect_payload"]


class PayloadError(ValueError):
    """The payload descriptor (or NAL/aggregation header) is truncated or invalid."""


class Codec(enum.Enum):
    """Codecs the router recognises; values are the SDP encoding names (RFC 8866 ``a=rtpmap``)."""

    VP8 = "VP8"
    VP9 = "VP9"
    H264 = "H264"
    AV1 = "AV1"
    OPUS = "opus"

    @classmethod
    def from_name(cls, name: str) -> Codec:
        """The codec for an SDP encoding name, case-insensitively (``"h264"``, ``"OPUS"``)."""
        for codec in cls:
            if codec.value.lower() == name.lower():
                return codec
        raise ValueError(f"unsupported codec {name!r}")

    @property
    def is_video(self) -> bool:
        return self is not Codec.OPUS

    @property
    def clock_rate(self) -> int:
        """RTP clock rate: 90 kHz for video (RFC 7741, 9628, 6184, AV1), 48 kHz for Opus (RFC 7587)."""
        return 48000 if self is Codec.OPUS else 90000


@dataclass(frozen=True, slots=True)
class FrameInfo:
    keyframe: bool
    frame_start: bool
    decodable_alone: bool
    droppable: bool
    temporal_id: int | None = None
    spatial_id: int | None = None


@lru_cache(maxsize=None)
def _info(keyframe: bool, frame_start: bool, droppable: bool,
          temporal_id: int | None = None, spatial_id: int | None = None) -> FrameInfo:
    # A few hundred distinct values at most: share them instead of allocating per packet.
    return FrameInfo(keyframe, frame_start, keyframe, droppable and not keyframe, temporal_id, spatial_id)


def inspect_payload(codec: Codec, payload: bytes | bytearray | memoryview) -> FrameInfo:
    """What one RTP payload of ``codec`` says about its frame; ``PayloadError`` if malformed."""
    if isinstance(payload, memoryview) and (payload.format != "B" or payload.ndim != 1):
        payload = payload.cast("B")
    try:
        inspect = _INSPECTORS[codec]
    except KeyError:
        raise TypeError(f"inspect_payload needs a Codec, got {codec!r}") from None
    return inspect(payload)


# ----- VP8 ---------------------------------------------------------------------------------------

_VP8_START_CODE = b"\x9d\x01\x2a"


def _vp8(p) -> FrameInfo:
    n = len(p)
    if n == 0:
        raise PayloadError("VP8 payload is empty")
    b0 = p[0]
    non_reference = bool(b0 & 0x20)
    frame_start = bool(b0 & 0x10) and (b0 & 0x07) == 0
    pos = 1
    tid = None
    if b0 & 0x80:  # X
        if n < 2:
            raise PayloadError("VP8 descriptor truncated: X is set but the extension byte is missing")
        x = p[1]
        pos = 2
        if x & 0x80:  # I
            if pos >= n:
                raise PayloadError("VP8 descriptor truncated: I is set but the picture id is missing")
            if p[pos] & 0x80:  # M: 15-bit picture id
                if pos + 1 >= n:
                    raise PayloadError("VP8 descriptor truncated: M is set but the second picture id byte is missing")
                pos += 1
            pos += 1
        if x & 0x40:  # L
            if pos >= n:
                raise PayloadError("VP8 descriptor truncated: L is set but TL0PICIDX is missing")
            pos += 1
        if x & 0x30:  # T or K
            if pos >= n:
                raise PayloadError("VP8 descriptor truncated: T or K is set but the TID/KEYIDX byte is missing")
            if x & 0x20:
                tid = p[pos] >> 6
            pos += 1
    if pos >= n:
        raise PayloadError(f"VP8 payload has no data after the {pos}-byte descriptor")
    keyframe = frame_start and not (p[pos] & 0x01)
    if keyframe:
        if n - pos < 10:
            raise PayloadError(f"VP8 key frame header truncated: need 10 bytes, got {n - pos}")
        if bytes(p[pos + 3:pos + 6]) != _VP8_START_CODE:
            raise PayloadError(f"VP8 key frame start code must be 9d 01 2a, got {bytes(p[pos + 3:pos + 6]).hex(' ')}")
    return _info(keyframe, frame_start, non_reference, tid)


# ----- VP9 ---------------------------------------------------------------------------------------

def _vp9(p) -> FrameInfo:
    n = len(p)
    if n == 0:
        raise PayloadError("VP9 payload is empty")
    b0 = p[0]
    has_pid, inter, has_layers, flexible = b0 & 0x80, b0 & 0x40, b0 & 0x20, b0 & 0x10
    begins, has_ss = bool(b0 & 0x08), b0 & 0x02
    pos = 1
    if has_pid:
        if pos >= n:
            raise PayloadError("VP9 descriptor truncated: I is set but the picture id is missing")
        if p[pos] & 0x80:
            if pos + 1 >= n:
                raise PayloadError("VP9 descriptor truncated: M is set but the second picture id byte is missing")
            pos += 1
        pos += 1
    tid = sid = None
    if has_layers:
        if pos >= n:
            raise PayloadError("VP9 descriptor truncated: L is set but the layer indices are missing")
        tid, sid = p[pos] >> 5, (p[pos] >> 1) & 0x07
        pos += 1
        if not flexible:
            if pos >= n:
                raise PayloadError("VP9 descriptor truncated: L is set in non-flexible mode but TL0PICIDX is missing")
            pos += 1
    if flexible and inter:
        if not has_pid:
            raise PayloadError("VP9 descriptor invalid: P_DIFF present (F and P set) without a picture id")
        for count in range(1, 4):
            if pos >= n:
                raise PayloadError(f"VP9 descriptor truncated: P_DIFF {count} is missing")
            more = p[pos] & 0x01
            pos += 1
            if not more:
                break
        else:
            raise PayloadError("VP9 descriptor invalid: more than 3 P_DIFF reference indices")
    if has_ss:
        pos = _vp9_skip_ss(p, pos)
    if pos >= n:
        raise PayloadError(f"VP9 payload has no data after the {pos}-byte descriptor")
    keyframe = begins and not inter and not sid
    return _info(keyframe, begins, False, tid, sid)


def _vp9_skip_ss(p, pos: int) -> int:
    n = len(p)
    if pos >= n:
        raise PayloadError("VP9 scalability structure truncated: the N_S|Y|G byte is missing")
    head = p[pos]
    pos += 1
    if head & 0x10:  # Y: a width and a height (16 bits each) per spatial layer
        need = ((head >> 5) + 1) * 4
        if pos + need > n:
            raise PayloadError(f"VP9 scalability structure truncated: {(head >> 5) + 1} resolutions need {need} bytes, "
                               f"{n - pos} left")
        pos += need
    if head & 0x08:  # G: picture group description
        if pos >= n:
            raise PayloadError("VP9 scalability structure truncated: G is set but N_G is missing")
        n_g = p[pos]
        pos += 1
        for i in range(n_g):
            if pos >= n:
                raise PayloadError(f"VP9 scalability structure truncated: picture {i + 1} of {n_g} is missing")
            refs = (p[pos] >> 2) & 0x03
            pos += 1 + refs
            if pos > n:
                raise PayloadError(f"VP9 scalability structure truncated: picture {i + 1} of {n_g} needs {refs} P_DIFF bytes")
    return pos


# ----- H.264 -------------------------------------------------------------------------------------

_H264_KEY_TYPES = frozenset((5, 7, 8))  # IDR slice, SPS, PPS
_H264_INTERLEAVED = {25: "STAP-B", 26: "MTAP16", 27: "MTAP24", 29: "FU-B"}


def _h264(p) -> FrameInfo:
    n = len(p)
    if n == 0:
        raise PayloadError("H.264 payload is empty")
    head = p[0]
    nal_type = head & 0x1F
    if 1 <= nal_type <= 23:
        return _info(nal_type in _H264_KEY_TYPES, True, not (head & 0x60))
    if nal_type == 24:
        return _h264_stap_a(p)
    if nal_type == 28:
        if n < 2:
            raise PayloadError("H.264 FU-A truncated: the FU header is missing")
        fu = p[1]
        start, end, inner = bool(fu & 0x80), fu & 0x40, fu & 0x1F
        if start and end:
            raise PayloadError("H.264 FU-A invalid: start and end bits both set")
        if not 1 <= inner <= 23:
            raise PayloadError(f"H.264 FU-A invalid: fragmented NAL unit type {inner}, must be 1-23")
        return _info(start and inner in _H264_KEY_TYPES, start, not (head & 0x60))
    if nal_type in _H264_INTERLEAVED:
        raise PayloadError(f"H.264 {_H264_INTERLEAVED[nal_type]} (type {nal_type}) needs interleaved mode, "
                           "which is not supported")
    raise PayloadError(f"H.264 NAL unit type {nal_type} is undefined")


def _h264_stap_a(p) -> FrameInfo:
    n = len(p)
    pos = 1
    count = 0
    keyframe = False
    droppable = True
    while pos < n:
        count += 1
        if pos + 2 > n:
            raise PayloadError(f"H.264 STAP-A truncated: size of NAL unit {count} is cut off")
        size = (p[pos] << 8) | p[pos + 1]
        pos += 2
        if size == 0:
            raise PayloadError(f"H.264 STAP-A invalid: NAL unit {count} has size 0")
        if pos + size > n:
            raise PayloadError(f"H.264 STAP-A truncated: NAL unit {count} needs {size} bytes, {n - pos} left")
        head = p[pos]
        nal_type = head & 0x1F
        if not 1 <= nal_type <= 23:
            raise PayloadError(f"H.264 STAP-A invalid: NAL unit {count} has type {nal_type}, only 1-23 can be aggregated")
        keyframe = keyframe or nal_type in _H264_KEY_TYPES
        droppable = droppable and not (head & 0x60)
        pos += size
    if count == 0:
        raise PayloadError("H.264 STAP-A has no NAL units")
    return _info(keyframe, True, droppable)


# ----- AV1 ---------------------------------------------------------------------------------------

def _av1(p) -> FrameInfo:
    n = len(p)
    if n == 0:
        raise PayloadError("AV1 payload is empty: the aggregation header is missing")
    head = p[0]
    continues, new_sequence, w = head & 0x80, bool(head & 0x08), (head >> 4) & 0x03
    if new_sequence and continues:
        raise PayloadError("AV1 aggregation header invalid: N (new coded video sequence) with Z (continued OBU)")
    pos = 1
    if w == 0:
        if pos >= n:
            raise PayloadError("AV1 payload has no OBU elements")
        element = 0
        while pos < n:
            element += 1
            pos = _av1_skip_element(p, pos, element)
    else:
        for element in range(1, w):
            if pos >= n:
                raise PayloadError(f"AV1 payload truncated: W={w} OBU elements, element {element} is missing")
            pos = _av1_skip_element(p, pos, element)
        # the last element has no size: it runs to the end of the packet
    return _info(new_sequence, not continues, False)


def _av1_skip_element(p, pos: int, element: int) -> int:
    n = len(p)
    size = 0
    for i in range(8):
        if pos >= n:
            raise PayloadError(f"AV1 OBU element {element} truncated: its leb128 size is cut off")
        byte = p[pos]
        pos += 1
        size |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            break
    else:
        raise PayloadError(f"AV1 OBU element {element} invalid: leb128 size longer than 8 bytes")
    if pos + size > n:
        raise PayloadError(f"AV1 OBU element {element} truncated: needs {size} bytes, {n - pos} left")
    return pos + size


# ----- Opus --------------------------------------------------------------------------------------

_OPUS_FRAME = FrameInfo(True, True, True, False)


def _opus(p) -> FrameInfo:
    if len(p) == 0:
        raise PayloadError("Opus payload is empty: a packet has at least the TOC byte")
    return _OPUS_FRAME


_INSPECTORS = {Codec.VP8: _vp8, Codec.VP9: _vp9, Codec.H264: _h264, Codec.AV1: _av1, Codec.OPUS: _opus}
