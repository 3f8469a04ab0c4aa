"""H.264 RTP payloads (RFC 6184, packetization mode 1): access units to payloads and back.

Packetizer rules (input: one access unit in Annex B byte-stream form, as libx264 gives it):

- NAL units are split at start codes (``00 00 01`` or ``00 00 00 01``); trailing zero bytes of
  a unit belong to the next start code and are dropped. Access unit delimiters (type 9) are
  dropped: the RTP timestamp and marker already delimit access units.
- The last SPS (7) and PPS (8) seen are remembered. An access unit that holds an IDR slice (5)
  is sent as ``SPS, PPS, then its other units``: its own parameter sets if it had them, else the
  remembered ones. So every IDR can be decoded by a player that joins at it. An IDR with no
  parameter set ever seen is sent as it is.
- A unit of at most ``max_payload`` bytes is one single-NAL-unit payload (§5.6). A larger one is
  cut into FU-A fragments (§5.8): ``FU indicator = F|NRI of the unit | 28``, ``FU header =
  S|E|0|type``, then a slice of the unit without its one-byte header; the fewest fragments of at
  most ``max_payload`` bytes, of near-equal size; S on the first, E on the last.
- The caller sets the RTP marker on the last payload of the access unit.

``depacketize_h264(payloads)`` turns the payloads of one access unit (single NAL units, STAP-A,
FU-A) back into Annex B with 4-byte start codes. A FU-A run that does not start with S or end
with E, or a malformed payload, raises ``PayloadError``.
"""

from __future__ import annotations

from sfu.media.codecs import PayloadError

__all__ = ["H264Packetizer", "depacketize_h264", "split_annexb"]

SPS, PPS, IDR, AUD = 7, 8, 5, 9
_START = b"\x00\x00\x00\x01"


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without start codes (bytes before the first start code are ignored)."""
    units = []
    n = len(data)
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = n if nxt < 0 else nxt
        unit = data[start:end]
        if nxt >= 0:
            unit = unit.rstrip(b"\x00")  # the zero of a 4-byte start code (and trailing_zero_8bits)
        if unit:
            units.append(unit)
        i = nxt
    return units


def _split(data: bytes, room: int) -> list[bytes]:
    count = -(-len(data) // room)
    base, extra = divmod(len(data), count)
    chunks, pos = [], 0
    for i in range(count):
        size = base + (1 if i < extra else 0)
        chunks.append(data[pos:pos + size])
        pos += size
    return chunks


class H264Packetizer:
    def __init__(self, max_payload: int = 1200) -> None:
        if max_payload < 3:
            raise ValueError(f"max_payload must be at least 3 (FU-A headers and one byte), got {max_payload}")
        self.max_payload = max_payload
        self.sps: bytes | None = None
        self.pps: bytes | None = None

    def packetize(self, access_unit: bytes) -> list[bytes]:
        units = [u for u in split_annexb(access_unit) if u[0] & 0x1F != AUD]
        if not units:
            raise ValueError("H.264 access unit holds no NAL unit")
        types = [u[0] & 0x1F for u in units]
        for unit, t in zip(units, types):
            if t == SPS:
                self.sps = unit
            elif t == PPS:
                self.pps = unit
        if IDR in types:
            params = [u for u in (self.sps, self.pps) if u is not None]
            units = params + [u for u, t in zip(units, types) if t not in (SPS, PPS)]
        payloads: list[bytes] = []
        for unit in units:
            if len(unit) <= self.max_payload:
                payloads.append(unit)
                continue
            head = unit[0]
            indicator = bytes((head & 0xE0 | 28,))
            chunks = _split(unit[1:], self.max_payload - 2)
            last = len(chunks) - 1
            for i, chunk in enumerate(chunks):
                fu = (0x80 if i == 0 else 0) | (0x40 if i == last else 0) | (head & 0x1F)
                payloads.append(indicator + bytes((fu,)) + chunk)
        return payloads


def depacketize_h264(payloads: list[bytes]) -> bytes:
    out = bytearray()
    fragment: bytearray | None = None
    for p in payloads:
        if not p:
            raise PayloadError("H.264 payload is empty")
        t = p[0] & 0x1F
        if t == 28:
            if len(p) < 2:
                raise PayloadError("H.264 FU-A truncated: the FU header is missing")
            fu = p[1]
            if fu & 0x80:
                if fragment is not None:
                    raise PayloadError("H.264 FU-A: a new fragmented unit starts before the last one ended")
                fragment = bytearray((p[0] & 0xE0 | fu & 0x1F,))
            elif fragment is None:
                raise PayloadError("H.264 FU-A: a fragment without its start")
            fragment += p[2:]
            if fu & 0x40:
                out += _START + fragment
                fragment = None
            continue
        if fragment is not None:
            raise PayloadError("H.264 FU-A: a fragmented unit did not end")
        if t == 24:
            pos = 1
            while pos < len(p):
                if pos + 2 > len(p):
                    raise PayloadError("H.264 STAP-A truncated: a unit size is cut off")
                size = p[pos] << 8 | p[pos + 1]
                pos += 2
                if size == 0 or pos + size > len(p):
                    raise PayloadError(f"H.264 STAP-A: bad unit size {size}")
                out += _START + p[pos:pos + size]
                pos += size
        elif 1 <= t <= 23:
            out += _START + p
        else:
            raise PayloadError(f"H.264 NAL unit type {t} is not supported in packetization mode 1")
    if fragment is not None:
        raise PayloadError("H.264 FU-A: a fragmented unit did not end")
    return bytes(out)
