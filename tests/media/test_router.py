"""The Router core, sans-IO: binding, latching, dropping and per-player rewriting."""

from itertools import count

import pytest

from sfu.media.router import Router
from tests.media.rtp import fields, rtcp_rr, rtp

PUB = ("127.0.0.1", 5000)
P1 = ("127.0.0.1", 6001)
P2 = ("127.0.0.1", 6002)


@pytest.fixture
def router():
    ids = count(0x1000)
    return Router(new_ssrc=lambda: next(ids))


def test_fan_out_rewrites_ssrc_per_player_and_keeps_the_rest(router):
    s = router.publisher(1, "s1")
    a = router.player(1, "s1", "sa")
    b = router.player(1, "s1", "sb")
    assert len({s, a, b}) == 3
    assert router.on_datagram(rtcp_rr(a), P1) == [] and router.on_datagram(rtcp_rr(b), P2) == []
    pkt = rtp(100, 9000, s, b"\x90\x80frame", ext=b"\x51\x00\x01\x02\x03\x04\x05\x00")
    out = router.on_datagram(pkt, PUB)
    assert [addr for _, addr in out] == [P1, P2]
    for (data, _), ssrc in zip(out, (a, b)):
        assert fields(data) == (96, 100, 9000, ssrc)
        assert data[12:] == pkt[12:]  # extension and payload untouched
    assert router.counters["packets_out"] == 2


def test_player_without_latched_address_gets_nothing(router):
    s = router.publisher(1, "s1")
    router.player(1, "s1", "sa")
    assert router.on_datagram(rtp(1, 1, s), PUB) == []


def test_unbound_source_unknown_ssrc_and_malformed_are_dropped_and_counted(router):
    s = router.publisher(1, "s1")
    a = router.player(1, "s1", "sa")
    router.on_datagram(rtcp_rr(a), P1)
    assert len(router.on_datagram(rtp(1, 1, s), PUB)) == 1  # latches PUB
    assert router.on_datagram(rtp(2, 1, s), ("127.0.0.1", 5999)) == []
    assert router.on_datagram(rtp(2, 1, 0xDEAD), PUB) == []
    assert router.on_datagram(b"\x40" + bytes(20), PUB) == []  # version 1
    assert router.on_datagram(b"\x80\x60\x00", PUB) == []  # truncated
    assert router.on_datagram(bytes([0x8F, 96]) + bytes(10), PUB) == []  # 15 CSRCs past the end
    assert router.dropped == {"malformed": 3, "unknown_ssrc": 1, "unbound_source": 1}
    assert len(router.on_datagram(rtp(3, 1, s), PUB)) == 1  # the bound source still flows


def test_sequence_numbers_continue_across_a_publisher_restart(router):
    s = router.publisher(1, "s1")
    a = router.player(1, "s1", "sa")
    router.on_datagram(rtcp_rr(a), P1)
    seqs = [fields(router.on_datagram(rtp(q, 0, s), PUB)[0][0])[1] for q in (65534, 65535, 0)]
    assert seqs == [65534, 65535, 0]
    router.end_stream(1, "s1")
    s2 = router.publisher(1, "s1")
    assert s2 != s
    assert router.on_datagram(rtp(1, 0, s), PUB) == []  # the old SSRC is gone
    seqs = [fields(router.on_datagram(rtp(q, 0, s2), ("127.0.0.1", 5555))[0][0])[1] for q in (777, 778)]
    assert seqs == [1, 2]


def test_removed_player_stops_and_frees_its_ssrc(router):
    s = router.publisher(1, "s1")
    a = router.player(1, "s1", "sa")
    router.on_datagram(rtcp_rr(a), P1)
    router.remove_player(1, "s1", "sa")
    assert router.on_datagram(rtp(1, 0, s), PUB) == []
    assert router.on_datagram(rtcp_rr(a), P1) == [] and router.dropped["unknown_ssrc"] == 1


def test_streams_are_per_app(router):
    s = router.publisher(1, "s1")
    a = router.player(2, "s1", "sa")  # same stream id, another AppID
    router.on_datagram(rtcp_rr(a), P1)
    assert router.on_datagram(rtp(1, 0, s), PUB) == []
