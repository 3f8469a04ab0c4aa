"""RTCP packets: parse a compound packet into dataclasses, and build one back, byte-exact.

Covers what a media node needs (RFC 3550 SR/RR/SDES/BYE, RFC 4585 generic NACK and PLI,
RFC 5104 FIR, draft-alvestrand-rmcat-remb REMB, the transport-cc feedback header); any
other packet comes back as ``Unknown`` and is never an error.

Every packet starts with ``V=2 | P | count/FMT (5) | PT (8) | length (16, words minus one)``.
Packets are laid back to back (RFC 3550 §6.1); like ``sfu.rtp._header_py`` we accept any type
first and padding in any packet, because reduced-size RTCP (RFC 5506) sends lone feedback.

Representation rules:

- Typed packets (SR, RR, BYE, NACK, PLI, FIR, REMB) hold their fields; the P-bit padding is
  validated and dropped, and ``serialize`` writes them without it. Bytes after the report
  blocks of an SR/RR (profile-specific extensions) are kept in ``extension``.
- Pass-through packets (``Sdes``, ``TransportCc``, ``Unknown``) keep ``raw``: the whole packet
  as received, header and padding included; ``serialize`` writes ``raw`` verbatim.
- NACK (RFC 4585 §6.2.1): ``lost`` is unpacked in wire order (PID, then BLP bits from the
  lowest). Packing is greedy in the given order, modulo 2**16: a seq within 1..16 after the
  current PID sets a BLP bit, anything else opens a new PID. So ascending lists (also across
  65535 → 0) round-trip exactly; values must be 16-bit (mask ext_seqs first).
- REMB bitrate is ``mantissa << exponent``; ``serialize`` picks the smallest exponent (as
  libwebrtc does), so a REMB built that way round-trips byte-exact.
- Report-block ``cumulative_lost`` is a signed 24-bit number (RFC 3550 §6.4.1, A.3);
  ``reference_time`` of transport-cc is signed 24-bit too (units of 64 ms).
- BYE ``reason`` is ``None`` when absent; it is decoded as UTF-8 with ``surrogateescape`` so
  any bytes round-trip.

Validation, in order, per packet at byte ``offset``; the first failure raises
``RtcpParseError`` (``n`` = packet length in bytes without its padding)::

    input < 4 bytes       "RTCP packet too short: {len} bytes, need at least 4"
    < 4 bytes left        "RTCP header truncated at offset {offset}: {left} bytes left, need 4"
    V != 2                "RTCP version must be 2 at offset {offset}, got {V}"
    length > left         "RTCP packet at offset {offset} declares {length} bytes, only {left} left"
    P, last byte 0        "RTCP padding flag set but padding count is 0 at offset {offset}"
    P, count > length-4   "RTCP padding count {pad} exceeds body length {length-4} at offset {offset}"
    SR (RR alike)         "RTCP SR at offset {offset} truncated: {rc} report blocks need {need} bytes,
                           packet has {n}"
    BYE SSRCs             "RTCP BYE at offset {offset} truncated: {sc} SSRCs need {need} bytes,
                           packet has {n}"
    BYE reason            "RTCP BYE at offset {offset} truncated: reason of {len} bytes needs {need}
                           bytes, packet has {n}"
    PT 205/206, n < 12    "RTCP feedback at offset {offset} too short: {n} bytes, need at least 12"
    NACK FCI % 4          "RTCP NACK at offset {offset} has a partial FCI: {fci} bytes is not a
                           multiple of 4"
    FIR FCI % 8           "RTCP FIR at offset {offset} has a partial entry: {fci} bytes is not a
                           multiple of 8"
    REMB, n < 20          "RTCP REMB at offset {offset} too short: {n} bytes, need at least 20"
    REMB SSRC list        "RTCP REMB at offset {offset} truncated: {num} SSRCs need {need} bytes,
                           packet has {n}"
    transport-cc, n < 20  "RTCP transport-cc at offset {offset} too short: {n} bytes, need at least 20"

Extra bytes after a PLI header, after a BYE reason's word, or in a FIR entry's reserved
field are ignored. Input is any bytes-like object (TypeError otherwise). ``serialize`` raises
ValueError for values that do not fit their fields.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

__all__ = [
    "Bye", "Fir", "Nack", "Pli", "ReceiverReport", "Remb", "ReportBlock", "RtcpParseError",
    "Sdes", "SenderReport", "TransportCc", "Unknown", "compact_ntp", "ntp_from_unix",
    "pack_nack", "parse_rtcp", "serialize", "unpack_nack",
]

SR, RR, SDES, BYE, APP, RTPFB, PSFB = 200, 201, 202, 203, 204, 205, 206
FMT_NACK, FMT_TRANSPORT_CC = 1, 15  # RTPFB
FMT_PLI, FMT_FIR, FMT_AFB = 1, 4, 15  # PSFB
NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01

_HEADER = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IIIIII")
_SR_INFO = struct.Struct("!IQIII")
_FEEDBACK = struct.Struct("!II")


class RtcpParseError(ValueError):
    """Malformed RTCP input; the message says which packet (by offset) and why."""


@dataclass(slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # 0..255, fixed point /256
    cumulative_lost: int  # signed 24-bit
    highest_seq: int  # extended highest sequence number received
    jitter: int
    lsr: int  # middle 32 bits of the last SR's NTP time (compact_ntp)
    dlsr: int  # delay since last SR, 1/65536 s


@dataclass(slots=True)
class SenderReport:
    ssrc: int
    ntp_time: int  # 64-bit NTP
    rtp_time: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)
    extension: bytes = b""


@dataclass(slots=True)
class ReceiverReport:
    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)
    extension: bytes = b""


@dataclass(slots=True)
class Sdes:
    raw: bytes  # the whole packet

    @classmethod
    def cname(cls, ssrc: int, cname: str) -> Sdes:
        """One chunk with one CNAME item (RFC 3550 §6.5.1), null-terminated and word-aligned."""
        text = cname.encode()
        if len(text) > 255:
            raise ValueError(f"CNAME too long: {len(text)} bytes, at most 255")
        chunk = struct.pack("!IBB", ssrc, 1, len(text)) + text
        chunk += bytes(4 - len(chunk) % 4)  # at least one null octet ends the item list
        return cls(_HEADER.pack(0x81, SDES, len(chunk) // 4) + chunk)


@dataclass(slots=True)
class Bye:
    ssrcs: list[int]
    reason: str | None = None


@dataclass(slots=True)
class Nack:
    sender_ssrc: int
    media_ssrc: int
    lost: list[int]  # 16-bit sequence numbers


@dataclass(slots=True)
class Pli:
    sender_ssrc: int
    media_ssrc: int


@dataclass(slots=True)
class Fir:
    sender_ssrc: int
    entries: list[tuple[int, int]]  # (ssrc, command sequence number 0..255)
    media_ssrc: int = 0  # RFC 5104 §4.3.1.2: SHALL be 0


@dataclass(slots=True)
class Remb:
    sender_ssrc: int
    bitrate_bps: int
    ssrcs: list[int]
    media_ssrc: int = 0  # the draft: SHALL be 0


@dataclass(slots=True)
class TransportCc:
    sender_ssrc: int
    media_ssrc: int
    base_seq: int
    status_count: int
    reference_time: int  # signed 24-bit, multiples of 64 ms
    fb_pkt_count: int
    raw: bytes  # the whole packet


@dataclass(slots=True)
class Unknown:
    packet_type: int
    fmt: int
    raw: bytes  # the whole packet


def ntp_from_unix(seconds: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point since 1900, wrapping in 2036) for Unix time."""
    whole = math.floor(seconds)
    fraction = round((seconds - whole) * 2**32)
    if fraction >= 2**32:
        whole, fraction = whole + 1, 0
    return (((whole + NTP_UNIX_OFFSET) & 0xFFFFFFFF) << 32) | fraction


def compact_ntp(ntp64: int) -> int:
    """The middle 32 bits of an NTP timestamp: what LSR carries (RFC 3550 §6.4.1)."""
    return (ntp64 >> 16) & 0xFFFFFFFF


def pack_nack(lost: list[int]) -> list[tuple[int, int]]:
    """Greedy PID/BLP packing of 16-bit sequence numbers, in the given order."""
    items: list[list[int]] = []
    for seq in lost:
        if not 0 <= seq <= 0xFFFF:
            raise ValueError(f"NACK sequence number must be in 0..65535, got {seq}")
        if items:
            distance = (seq - items[-1][0]) & 0xFFFF
            if 1 <= distance <= 16:
                items[-1][1] |= 1 << (distance - 1)
                continue
        items.append([seq, 0])
    return [(pid, blp) for pid, blp in items]


def unpack_nack(items: list[tuple[int, int]]) -> list[int]:
    """Sequence numbers named by PID/BLP pairs, in wire order."""
    lost = []
    for pid, blp in items:
        lost.append(pid)
        lost.extend((pid + bit + 1) & 0xFFFF for bit in range(16) if blp >> bit & 1)
    return lost


# -- parsing ---------------------------------------------------------------------------------


def _signed24(value: int) -> int:
    return value - (1 << 24) if value & 0x800000 else value


def _blocks(body: bytes, start: int, count: int) -> list[ReportBlock]:
    blocks = []
    for i in range(count):
        ssrc, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(body, start + 24 * i)
        blocks.append(ReportBlock(ssrc, lost >> 24, _signed24(lost & 0xFFFFFF), highest, jitter, lsr, dlsr))
    return blocks


def _report(name: str, fixed: int, count: int, body: bytes, offset: int) -> int:
    need = fixed + 24 * count
    if len(body) < need:
        raise RtcpParseError(
            f"RTCP {name} at offset {offset} truncated: {count} report blocks need {need + 4} bytes, "
            f"packet has {len(body) + 4}"
        )
    return need


def _parse_one(packet_type: int, count: int, body: bytes, raw: bytes, offset: int) -> object:
    n = len(body) + 4
    if packet_type == SR:
        end = _report("SR", 24, count, body, offset)
        return SenderReport(*_SR_INFO.unpack_from(body), _blocks(body, 24, count), body[end:])
    if packet_type == RR:
        end = _report("RR", 4, count, body, offset)
        return ReceiverReport(int.from_bytes(body[:4], "big"), _blocks(body, 4, count), body[end:])
    if packet_type == SDES:
        return Sdes(raw)
    if packet_type == BYE:
        need = 4 * count
        if len(body) < need:
            raise RtcpParseError(
                f"RTCP BYE at offset {offset} truncated: {count} SSRCs need {need + 4} bytes, packet has {n}"
            )
        ssrcs = list(struct.unpack_from(f"!{count}I", body))
        reason = None
        if len(body) > need:
            size = body[need]
            if need + 1 + size > len(body):
                raise RtcpParseError(
                    f"RTCP BYE at offset {offset} truncated: reason of {size} bytes needs "
                    f"{need + 5 + size} bytes, packet has {n}"
                )
            reason = body[need + 1 : need + 1 + size].decode("utf-8", "surrogateescape")
        return Bye(ssrcs, reason)
    if (packet_type, count) not in _FEEDBACK_TYPES:
        return Unknown(packet_type, count, raw)

    if n < 12:
        raise RtcpParseError(f"RTCP feedback at offset {offset} too short: {n} bytes, need at least 12")
    sender, media = _FEEDBACK.unpack_from(body)
    fci = body[8:]
    kind = (packet_type, count)
    if kind == (RTPFB, FMT_NACK):
        if len(fci) % 4:
            raise RtcpParseError(
                f"RTCP NACK at offset {offset} has a partial FCI: {len(fci)} bytes is not a multiple of 4"
            )
        pairs = struct.unpack(f"!{len(fci) // 2}H", fci)
        return Nack(sender, media, unpack_nack(list(zip(pairs[::2], pairs[1::2]))))
    if kind == (RTPFB, FMT_TRANSPORT_CC):
        if n < 20:
            raise RtcpParseError(
                f"RTCP transport-cc at offset {offset} too short: {n} bytes, need at least 20"
            )
        base_seq, status_count, word = struct.unpack_from("!HHI", fci)
        return TransportCc(sender, media, base_seq, status_count, _signed24(word >> 8), word & 0xFF, raw)
    if kind == (PSFB, FMT_PLI):
        return Pli(sender, media)
    if kind == (PSFB, FMT_FIR):
        if len(fci) % 8:
            raise RtcpParseError(
                f"RTCP FIR at offset {offset} has a partial entry: {len(fci)} bytes is not a multiple of 8"
            )
        entries = [(ssrc, word >> 24) for ssrc, word in struct.iter_unpack("!II", fci)]
        return Fir(sender, entries, media)
    # PSFB application layer feedback: REMB, or something else we pass through
    if fci[:4] != b"REMB":
        return Unknown(packet_type, count, raw)
    if n < 20:
        raise RtcpParseError(f"RTCP REMB at offset {offset} too short: {n} bytes, need at least 20")
    num, word = fci[4], int.from_bytes(fci[5:8], "big")
    need = 20 + 4 * num
    if n < need:
        raise RtcpParseError(
            f"RTCP REMB at offset {offset} truncated: {num} SSRCs need {need} bytes, packet has {n}"
        )
    ssrcs = list(struct.unpack_from(f"!{num}I", fci, 8))
    return Remb(sender, (word & 0x3FFFF) << (word >> 18), ssrcs, media)


_FEEDBACK_TYPES = {
    (RTPFB, FMT_NACK), (RTPFB, FMT_TRANSPORT_CC), (PSFB, FMT_PLI), (PSFB, FMT_FIR), (PSFB, FMT_AFB),
}


def parse_rtcp(data: bytes | bytearray | memoryview) -> list:
    """Parse a (compound) RTCP packet into a list of packet objects; see the module rules."""
    data = memoryview(data).cast("B").tobytes() if not isinstance(data, bytes) else data
    if len(data) < 4:
        raise RtcpParseError(f"RTCP packet too short: {len(data)} bytes, need at least 4")
    packets = []
    offset = 0
    while offset < len(data):
        left = len(data) - offset
        if left < 4:
            raise RtcpParseError(f"RTCP header truncated at offset {offset}: {left} bytes left, need 4")
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        if first >> 6 != 2:
            raise RtcpParseError(f"RTCP version must be 2 at offset {offset}, got {first >> 6}")
        length = 4 * (words + 1)
        if length > left:
            raise RtcpParseError(f"RTCP packet at offset {offset} declares {length} bytes, only {left} left")
        raw = data[offset : offset + length]
        padding = 0
        if first & 0x20:
            padding = raw[-1]
            if padding == 0:
                raise RtcpParseError(f"RTCP padding flag set but padding count is 0 at offset {offset}")
            if padding > length - 4:
                raise RtcpParseError(
                    f"RTCP padding count {padding} exceeds body length {length - 4} at offset {offset}"
                )
        body = raw[4 : length - padding]
        packets.append(_parse_one(packet_type, first & 0x1F, body, raw, offset))
        offset += length
    return packets


# -- serializing -----------------------------------------------------------------------------


def _pack_blocks(blocks: list[ReportBlock]) -> bytes:
    out = []
    for b in blocks:
        if not -(1 << 23) <= b.cumulative_lost < 1 << 23:
            raise ValueError(f"cumulative_lost must be a signed 24-bit number, got {b.cumulative_lost}")
        if not 0 <= b.fraction_lost <= 255:
            raise ValueError(f"fraction_lost must be in 0..255, got {b.fraction_lost}")
        lost = b.fraction_lost << 24 | (b.cumulative_lost & 0xFFFFFF)
        out.append(_BLOCK.pack(b.ssrc, lost, b.highest_seq, b.jitter, b.lsr, b.dlsr))
    return b"".join(out)


def _count(name: str, items: list) -> int:
    if len(items) > 31:
        raise ValueError(f"{name}: at most 31 items fit the 5-bit count, got {len(items)}")
    return len(items)


def _pack_one(p: object) -> tuple[int, int, bytes]:
    """(count or FMT, packet type, body) of a typed packet."""
    if isinstance(p, SenderReport):
        info = _SR_INFO.pack(p.ssrc, p.ntp_time, p.rtp_time, p.packet_count, p.octet_count)
        return _count("SR report blocks", p.reports), SR, info + _pack_blocks(p.reports) + p.extension
    if isinstance(p, ReceiverReport):
        body = struct.pack("!I", p.ssrc) + _pack_blocks(p.reports) + p.extension
        return _count("RR report blocks", p.reports), RR, body
    if isinstance(p, Bye):
        body = struct.pack(f"!{len(p.ssrcs)}I", *p.ssrcs)
        if p.reason is not None:
            text = p.reason.encode("utf-8", "surrogateescape")
            if len(text) > 255:
                raise ValueError(f"BYE reason too long: {len(text)} bytes, at most 255")
            body += bytes([len(text)]) + text + bytes(-(len(text) + 1) % 4)
        return _count("BYE SSRCs", p.ssrcs), BYE, body
    if isinstance(p, Nack):
        fci = b"".join(struct.pack("!HH", pid, blp) for pid, blp in pack_nack(p.lost))
        return FMT_NACK, RTPFB, _FEEDBACK.pack(p.sender_ssrc, p.media_ssrc) + fci
    if isinstance(p, Pli):
        return FMT_PLI, PSFB, _FEEDBACK.pack(p.sender_ssrc, p.media_ssrc)
    if isinstance(p, Fir):
        fci = b"".join(struct.pack("!IB3x", ssrc, seq_nr) for ssrc, seq_nr in p.entries)
        return FMT_FIR, PSFB, _FEEDBACK.pack(p.sender_ssrc, p.media_ssrc) + fci
    if isinstance(p, Remb):
        if p.bitrate_bps < 0:
            raise ValueError(f"REMB bitrate must be >= 0, got {p.bitrate_bps}")
        exponent = max(0, p.bitrate_bps.bit_length() - 18)
        if exponent > 63:
            raise ValueError(f"REMB bitrate too large: {p.bitrate_bps}")
        if len(p.ssrcs) > 255:
            raise ValueError(f"REMB lists at most 255 SSRCs, got {len(p.ssrcs)}")
        word = exponent << 18 | p.bitrate_bps >> exponent
        fci = b"REMB" + struct.pack(f"!BBH{len(p.ssrcs)}I", len(p.ssrcs), word >> 16, word & 0xFFFF, *p.ssrcs)
        return FMT_AFB, PSFB, _FEEDBACK.pack(p.sender_ssrc, p.media_ssrc) + fci
    raise TypeError(f"not an RTCP packet object: {type(p).__name__}")


def serialize(packets: list) -> bytes:
    """Build a compound RTCP packet from packet objects, in the given order."""
    out = []
    for p in packets:
        if isinstance(p, (Sdes, TransportCc, Unknown)):
            raw = bytes(p.raw)
            if len(raw) < 4 or len(raw) % 4 or 4 * (int.from_bytes(raw[2:4], "big") + 1) != len(raw):
                raise ValueError(f"{type(p).__name__}.raw is not one whole RTCP packet ({len(raw)} bytes)")
            out.append(raw)
            continue
        try:
            count, packet_type, body = _pack_one(p)
            if len(body) % 4:
                raise ValueError(f"{type(p).__name__} body is {len(body)} bytes, not a whole number of words")
            out.append(_HEADER.pack(0x80 | count, packet_type, len(body) // 4) + body)
        except struct.error as exc:
            raise ValueError(f"cannot serialize {type(p).__name__}: {exc}") from exc
    return b"".join(out)
