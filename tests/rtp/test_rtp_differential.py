"""Differential tests: the compiled parser must agree with the Python reference.

The same random input goes into both; the outcome must be identical: the same fields
(and field types), or the same exception type and message. Rewrites must leave identical
bytes behind.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.rtp import _header_c as c
from sfu.rtp import _header_py as py

FIELDS = (
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

EXAMPLES = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def normalise(result):
    if isinstance(result, (py.RtpHeader, c.RtpHeader)):
        return ("RtpHeader", tuple((getattr(result, f), type(getattr(result, f))) for f in FIELDS))
    return result


def outcome(function, *args):
    try:
        result = function(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome under test
        return ("raised", type(exc), str(exc))
    return ("returned", normalise(result))


def same_outcome(name: str, *args) -> tuple:
    expected = outcome(getattr(py, name), *args)
    actual = outcome(getattr(c, name), *args)
    assert actual == expected, (name, args)
    return expected


# --- strategies ----------------------------------------------------------------------------


@st.composite
def rtp_packets(draw) -> bytes:
    """Mostly valid RTP packets, sometimes bent: wrong version, bad padding, truncation."""
    version = draw(st.sampled_from([2, 2, 2, 2, 2, 2, 0, 1, 3]))
    marker = draw(st.booleans())
    payload_type = draw(st.integers(0, 127))
    csrcs = draw(st.lists(st.integers(0, 2**32 - 1), max_size=15))
    extension = draw(st.none() | st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)))
    payload = draw(st.binary(max_size=60))
    padding = draw(st.none() | st.integers(1, 40))
    pad_count = draw(st.sampled_from([None, None, None, 0, 255]) | st.integers(0, 80))

    first = version << 6 | (padding is not None) << 5 | (extension is not None) << 4 | len(csrcs)
    data = struct.pack(
        "!BBHII",
        first,
        marker << 7 | payload_type,
        draw(st.integers(0, 0xFFFF)),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.integers(0, 2**32 - 1)),
    )
    data += b"".join(struct.pack("!I", csrc) for csrc in csrcs)
    if extension is not None:
        profile, body = extension
        body += bytes(-len(body) % 4)
        words = len(body) // 4
        if draw(st.integers(0, 9)) == 0:
            words = draw(st.integers(0, 0xFFFF))  # a lying length
        data += struct.pack("!HH", profile, words) + body
    data += payload
    if padding is not None:
        data += bytes(padding - 1) + bytes([padding if pad_count is None else pad_count])
    if draw(st.integers(0, 4)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


@st.composite
def rtcp_compounds(draw) -> bytes:
    """Compound RTCP packets, sometimes with a bad version, a lying length or truncated."""
    data = b""
    for _ in range(draw(st.integers(1, 5))):
        body = draw(st.binary(max_size=40))
        body += bytes(-len(body) % 4)
        words = len(body) // 4
        version = draw(st.sampled_from([2, 2, 2, 2, 2, 2, 2, 2, 1, 3]))
        if draw(st.integers(0, 14)) == 0:
            words = draw(st.integers(0, 0xFFFF))
        data += struct.pack(
            "!BBH",
            version << 6 | draw(st.booleans()) << 5 | draw(st.integers(0, 31)),
            draw(st.integers(192, 223) | st.integers(0, 255)),
            words,
        )
        data += body
    if draw(st.integers(0, 5)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


any_packet = st.binary(max_size=80) | rtp_packets() | rtcp_compounds()


@st.composite
def buffers(draw, data: st.SearchStrategy[bytes] = any_packet):
    """The same bytes as bytes, bytearray, memoryview or a memoryview into a larger buffer."""
    raw = draw(data)
    kind = draw(st.sampled_from(["bytes", "bytearray", "memoryview", "slice"]))
    if kind == "bytes":
        return raw
    if kind == "bytearray":
        return bytearray(raw)
    if kind == "memoryview":
        return memoryview(raw)
    before = draw(st.binary(max_size=8))
    return memoryview(before + raw + draw(st.binary(max_size=8)))[len(before) : len(before) + len(raw)]


# --- properties ----------------------------------------------------------------------------


@EXAMPLES
@given(st.binary(max_size=100))
def test_random_bytes(data: bytes) -> None:
    for name in ("parse_rtp", "is_rtcp", "parse_rtcp_compound"):
        same_outcome(name, data)


@EXAMPLES
@given(buffers(rtp_packets()))
def test_structured_rtp(data) -> None:
    same_outcome("parse_rtp", data)
    same_outcome("is_rtcp", data)


@EXAMPLES
@given(buffers(rtcp_compounds()))
def test_structured_rtcp(data) -> None:
    same_outcome("parse_rtcp_compound", data)
    same_outcome("is_rtcp", data)


@EXAMPLES
@given(buffers())
def test_any_buffer_kind(data) -> None:
    for name in ("parse_rtp", "is_rtcp", "parse_rtcp_compound"):
        same_outcome(name, data)


def field_values(bits: int) -> st.SearchStrategy[int]:
    """Mostly in range for a ``bits``-wide field, sometimes just outside it."""
    top = 2**bits - 1
    return st.integers(0, top) | st.sampled_from([-1, top + 1, 2**64])


@EXAMPLES
@given(
    any_packet,
    st.sampled_from(["bytearray", "memoryview", "slice", "bytes"]),
    field_values(32),
    field_values(16),
    field_values(32),
    field_values(7),
)
def test_random_rewrites(raw: bytes, kind: str, ssrc, sequence_number, timestamp, payload_type):
    def make():
        # a fresh, identical buffer per implementation; returns (buffer, what to compare)
        if kind == "bytes":
            return raw, lambda: raw
        if kind == "bytearray":
            buf = bytearray(raw)
            return buf, lambda: bytes(buf)
        arena = bytearray(b"\xaa" * 3 + raw + b"\x55" * 3)
        view = memoryview(arena) if kind == "memoryview" else memoryview(arena)[3 : 3 + len(raw)]
        return view, lambda: bytes(arena)

    args = (ssrc, sequence_number, timestamp, payload_type)
    py_buf, py_bytes = make()
    c_buf, c_bytes = make()
    expected = outcome(py.rewrite_rtp, py_buf, *args)
    assert outcome(c.rewrite_rtp, c_buf, *args) == expected
    assert c_bytes() == py_bytes()
    if expected[0] == "returned":
        # a successful rewrite of a valid packet is visible to both parsers alike
        assert outcome(c.parse_rtp, c_bytes()) == outcome(py.parse_rtp, py_bytes())


@EXAMPLES
@given(rtp_packets())
def test_rewrite_then_parse_agree_with_the_arguments(raw: bytes) -> None:
    before = outcome(py.parse_rtp, raw)
    for module in (py, c):
        buf = bytearray(raw)
        if outcome(module.rewrite_rtp, buf, 0x11223344, 0x5566, 0x778899AA, 0x42)[0] != "returned":
            continue
        after = outcome(module.parse_rtp, buf)
        assert after[0] == before[0]
        if after[0] == "returned":
            header = module.parse_rtp(buf)
            assert (header.ssrc, header.sequence_number, header.timestamp, header.payload_type) == (
                0x11223344,
                0x5566,
                0x778899AA,
                0x42,
            )
            assert buf[12:] == raw[12:]


def test_header_repr_matches() -> None:
    data = bytes.fromhex("b1ff ffff ffffffff ffffffff cafebabe bede0001 10010000 0102 0002")
    assert repr(c.parse_rtp(data)) == repr(py.parse_rtp(data))
