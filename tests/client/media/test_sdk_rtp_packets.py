"""sfu.client.media.rtp: RTP building, RFC 8285 header extensions, abs-capture-time bytes."""

from __future__ import annotations

import struct

import pytest

from sfu.client.media.rtp import (ABS_CAPTURE_TIME_ID, abs_capture_time, build_rtp, header_extensions,
                                  read_abs_capture_time, unix_from_ntp)
from sfu.rtp.header import parse_rtp
from sfu.rtp.rtcp import ntp_from_unix


def test_plain_packet_bytes() -> None:
    packet = build_rtp(96, 0x1234, 0xDEADBEEF, 0x01020304, b"xy", marker=True)
    assert packet == bytes.fromhex("80e0 1234 deadbeef 01020304") + b"xy"


def test_abs_capture_time_extension_bytes() -> None:
    ntp = 0x0123456789ABCDEF
    packet = build_rtp(96, 1, 2, 3, b"P", extensions={ABS_CAPTURE_TIME_ID: abs_capture_time(ntp)})
    # X bit; profile BEDE, 3 words: id 3 / len-1 = 7, the 8 NTP bytes, 3 bytes of padding
    assert packet[:12] == bytes.fromhex("9060 0001 00000002 00000003")
    assert packet[12:28] == bytes.fromhex("bede 0003 37 0123456789abcdef 000000")
    assert packet[28:] == b"P"
    header = parse_rtp(packet)
    assert header.header_length == 28 and header.extension_profile == 0xBEDE
    assert read_abs_capture_time(header_extensions(packet, header)) == ntp


def test_several_one_byte_elements_and_padding_round_trip() -> None:
    ext = {1: b"\x01", 3: abs_capture_time(5), 14: bytes(range(16))}
    packet = build_rtp(111, 9, 9, 9, b"opus", extensions=ext)
    header = parse_rtp(packet)
    assert header_extensions(packet, header) == ext
    assert (header.header_length - 16) % 4 == 0


def test_two_byte_form_and_unknown_profiles_are_read() -> None:
    body = bytes([0, 3, 8]) + abs_capture_time(77) + bytes([7, 0])  # padding, id 3 len 8, id 7 len 0
    body += bytes(-len(body) % 4)
    packet = struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + struct.pack("!HH", 0x1000, len(body) // 4) + body
    header = parse_rtp(packet + b"x")
    assert header_extensions(packet + b"x", header) == {3: abs_capture_time(77), 7: b""}
    other = struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + struct.pack("!HH", 0xABCD, 1) + b"abcd" + b"x"
    assert header_extensions(other, parse_rtp(other)) == {}


def test_a_truncated_element_ends_the_list_without_raising() -> None:
    body = bytes([0x10, 0xAA, 0x3F, 1, 2])  # id 1 ok; id 3 claims 16 bytes, only 2 remain
    body += bytes(-len(body) % 4)
    packet = struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + struct.pack("!HH", 0xBEDE, len(body) // 4) + body
    assert header_extensions(packet, parse_rtp(packet)) == {1: b"\xaa"}


@pytest.mark.parametrize("ext", [{0: b"x"}, {15: b"x"}, {1: b""}, {1: bytes(17)}])
def test_invalid_one_byte_elements_are_refused(ext) -> None:
    with pytest.raises(ValueError):
        build_rtp(96, 1, 2, 3, b"p", extensions=ext)


def test_ntp_round_trip() -> None:
    t = 1_700_000_000.123456
    assert abs(unix_from_ntp(ntp_from_unix(t)) - t) < 1e-6
