"""The Router core, sans-IO: per-track binding, latching, dropping and per-player rewriting."""

from itertools import count

import pytest

from sfu.media.router import DEFAULT_TRACKS, SHARED, Router, TrackSpec
from tests.media.rtp import fields, rtcp_rr, rtp

PUB = ("127.0.0.1", 5000)
P1 = ("127.0.0.1", 6001)
P2 = ("127.0.0.1", 6002)
VIDEO_ONLY = (TrackSpec("video", "VP8", 96),)


@pytest.fixture
def router():
    ids = count(0x1000)
    return Router(new_ssrc=lambda: next(ids))


def test_fan_out_rewrites_ssrc_per_player_and_keeps_the_rest(router):
    audio, video = router.add_publisher(1, "s1", DEFAULT_TRACKS)
    a = router.add_player(1, "s1", "sa")
    b = router.add_player(1, "s1", "sb")
    assert len({a["video"], a["audio"], b["video"], b["audio"]}) == 4
    assert router.on_datagram(SHARED, rtcp_rr(a["video"]), P1, 0.0) == []
    assert router.on_datagram(SHARED, rtcp_rr(b["video"]), P2, 0.0) == []
    pkt = rtp(100, 9000, 0xABCDEF, b"\x90\x80frame", ext=b"\x51\x00\x01\x02\x03\x04\x05\x00")
    out = router.on_datagram(video, pkt, PUB, 1.0)
    assert [addr for _, addr in out] == [P1, P2]
    for (data, _), ssrc in zip(out, (a["video"], b["video"])):
        assert fields(data) == (96, 100, 9000, ssrc)
        assert data[12:] == pkt[12:]  # extension and payload untouched
    assert router.on_datagram(audio, rtp(7, 960, 0x55, pt=111), PUB, 1.0) == []  # audio not latched by anyone
    assert router.counters["packets_out"] == 2
    assert router.last_packet(1, "s1") == 1.0


def test_addresses_given_up_front(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    a = router.add_player(1, "s1", "sa", {"video": P1})
    out = router.on_datagram(video, rtp(1, 1, 0x77), PUB, 0.0)
    assert [(fields(d)[3], addr) for d, addr in out] == [(a["video"], P1)]


def test_player_waiting_for_a_stream_gets_it_when_it_is_published(router):
    a = router.add_player(1, "s1", "sa", {"video": P1})
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    assert len(router.on_datagram(video, rtp(1, 1, 0x77), PUB, 0.0)) == 1
    assert a["video"]


def test_unbound_source_unknown_ssrc_and_malformed_are_dropped_and_counted(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "sa", {"video": P1})
    assert len(router.on_datagram(video, rtp(1, 1, 0x77), PUB, 0.0)) == 1  # latches PUB
    assert router.on_datagram(video, rtp(2, 1, 0x77), ("127.0.0.1", 5999), 0.0) == []
    assert router.on_datagram(SHARED, rtp(2, 1, 0xDEAD), PUB, 0.0) == []
    assert router.on_datagram(video, b"\x40" + bytes(20), PUB, 0.0) == []  # version 1
    assert router.on_datagram(video, b"\x80\x60\x00", PUB, 0.0) == []  # truncated
    assert router.on_datagram(video, bytes([0x8F, 96]) + bytes(10), PUB, 0.0) == []  # 15 CSRCs past the end
    assert router.dropped == {"malformed": 3, "unknown_ssrc": 1, "unbound_source": 1}
    assert len(router.on_datagram(video, rtp(3, 1, 0x77), PUB, 0.0)) == 1  # the bound source still flows


def test_sequence_numbers_continue_across_a_publisher_restart(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "sa", {"video": P1})
    seqs = [fields(router.on_datagram(video, rtp(q, 0, 1), PUB, 0.0)[0][0])[1] for q in (65534, 65535, 0)]
    assert seqs == [65534, 65535, 0]
    assert router.end_stream(1, "s1") == [video]
    assert router.on_datagram(video, rtp(1, 0, 1), PUB, 0.0) == []  # its port is gone
    (video2,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    assert video2 != video
    seqs = [fields(router.on_datagram(video2, rtp(q, 0, 2), ("127.0.0.1", 5555), 0.0)[0][0])[1] for q in (777, 778)]
    assert seqs == [1, 2]


def test_removed_player_stops_and_frees_its_ssrc(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    a = router.add_player(1, "s1", "sa", {"video": P1})
    router.remove_player(1, "s1", "sa")
    assert router.on_datagram(video, rtp(1, 0, 1), PUB, 0.0) == []
    assert router.on_datagram(SHARED, rtcp_rr(a["video"]), P1, 0.0) == [] and router.dropped["unknown_ssrc"] == 1


def test_streams_are_per_app(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(2, "s1", "sa", {"video": P1})  # same stream id, another AppID
    assert router.on_datagram(video, rtp(1, 0, 1), PUB, 0.0) == []


def test_track_rules(router):
    with pytest.raises(ValueError):
        router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96), TrackSpec("video", "VP8", 97)))
    router.add_publisher(1, "s1", VIDEO_ONLY)
    with pytest.raises(ValueError):
        router.add_publisher(1, "s1", VIDEO_ONLY)


def test_player_payload_type_mapping(router):
    (video,) = router.add_publisher(1, "s1", (TrackSpec("video", "H264", 102),))
    router.add_player(1, "s1", "sa", {"video": P1}, {"video": 96})
    router.add_player(1, "s1", "sb", {"video": P2})
    out = router.on_datagram(video, rtp(1, 0, 1, pt=102), PUB, 0.0)
    assert [fields(d)[0] for d, _ in out] == [96, 102]


def test_rtcp_from_the_bound_source_or_its_next_port(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.on_datagram(video, rtp(1, 0, 1), PUB, 0.0)
    sr = bytes([0x80, 200, 0, 6]) + bytes(24)
    assert router.on_datagram(video, sr, PUB, 0.0) == []
    assert router.on_datagram(video, sr, ("127.0.0.1", PUB[1] + 1), 0.0) == []
    assert router.dropped["unbound_source"] == 0
    router.on_datagram(video, sr, ("127.0.0.1", PUB[1] + 2), 0.0)
    assert router.dropped["unbound_source"] == 1
