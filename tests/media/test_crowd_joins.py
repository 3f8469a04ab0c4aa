"""A crowd joins between two packets: each player gets the cached GOP at once, then every packet
after it exactly once, in order, from the fast path as from Python; a crowd that leaves gets
nothing more (the track reloads its fast table once, at the next packet, for all of them:
sfu/media/track.py, "Deferred reloads")."""

from itertools import count

import pytest

from sfu.media.router import SHARED, Router, TrackSpec
from sfu.rtp.rtcp import Remb, serialize
from tests.media.rtp import VP8_DELTA, VP8_KEY, fields, rtcp_rr, rtp

PUB = ("127.0.0.1", 5000)
VIDEO_ONLY = (TrackSpec("video", "VP8", 96),)
CROWD = 40


@pytest.mark.parametrize("l3", [False, True], ids=["rtc", "l3"])
def test_every_player_of_a_crowd_gets_the_gop_then_each_packet_once(l3) -> None:
    ids = count(0x1000)
    router = Router(new_ssrc=lambda: next(ids))
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    got: dict[tuple, list[int]] = {}

    def take(out) -> None:
        for key, data, addr in out:
            if key == SHARED:
                got.setdefault(addr, []).append(fields(data)[2])  # the timestamp: which input packet

    def feed(seq: int, at: float) -> None:
        while (t := router.next_timer()) is not None and t <= at:
            take(router.on_timer(t))
        take(router.on_datagram(video, rtp(seq, 3000 * seq, 7, VP8_KEY if seq % 30 == 0 else VP8_DELTA), PUB, at))

    for seq in range(0, 10):
        feed(seq, seq / 30)
    addrs = [("127.0.0.1", 7000 + i) for i in range(CROWD)]
    for i, addr in enumerate(addrs):  # all between two packets
        _, out = router.add_player(1, "s1", f"p{i}", {"video": addr}, l3=l3, now=10 / 30)
        take(out)
    for seq in range(10, 70):
        feed(seq, seq / 30)
    end = 70 / 30 + 1.0
    while (t := router.next_timer()) is not None and t <= end:
        take(router.on_timer(t))
    # the RTC GOP is what the ring had (0-9); L3's what the timeline had released (a 100 ms+ hold)
    for addr in addrs:
        stamps = [ts // 3000 for ts in got.get(addr, [])]
        start = stamps[0]
        assert start == 0, (addr, stamps[:5])
        assert stamps == list(range(70)), addr  # each once, in order, nothing missed


def test_a_crowd_whose_first_reports_come_at_once_is_gated_and_judged(l3=False) -> None:
    """RTC players that report as they join (an SDK player's first RR marks its path measured): each
    gets a gate where it is in the table, and its own budget decides from then on: a player whose
    path takes 100 kbit/s (its REMB: the least an estimate goes) loses frames, the others get every packet."""
    ids = count(0x1000)
    router = Router(new_ssrc=lambda: next(ids))
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    got: dict[tuple, list[int]] = {}

    def take(out) -> None:
        for key, data, addr in out:
            if key == SHARED:
                got.setdefault(addr, []).append(fields(data)[2] // 3000)

    def feed(seq: int, at: float) -> None:
        while (t := router.next_timer()) is not None and t <= at:
            take(router.on_timer(t))
        body = (VP8_KEY if seq % 30 == 0 else VP8_DELTA) + bytes(1200)  # 290 kbit/s
        take(router.on_datagram(video, rtp(seq, 3000 * seq, 7, body), PUB, at))

    for seq in range(0, 10):
        feed(seq, seq / 30)
    addrs = [("127.0.0.1", 7000 + i) for i in range(CROWD)]
    ssrcs = []
    for i, addr in enumerate(addrs):
        kinds, out = router.add_player(1, "s1", f"p{i}", {"video": addr}, now=10 / 30)
        ssrcs.append(kinds["video"])
        take(out)  # the cached GOP
    feed(10, 10 / 30)  # in the table now, ungated
    slow = addrs[5]
    for ssrc, addr in zip(ssrcs, addrs):  # their first reports, between two packets: gated where they are
        packets = [Remb(ssrc, 20_000, [7])] if addr == slow else []
        take(router.on_datagram(SHARED, serialize(packets) if packets else rtcp_rr(ssrc), addr, 10.5 / 30))
    for seq in range(11, 70):
        feed(seq, seq / 30)
    for addr in addrs:
        if addr != slow:
            assert got[addr] == list(range(70)), addr
    assert got[slow][:11] == list(range(11)) and len(got[slow]) < 40  # its budget dropped frames


@pytest.mark.parametrize("l3", [False, True], ids=["rtc", "l3"])
def test_a_crowd_that_leaves_between_two_packets_gets_nothing_more(l3) -> None:
    ids = count(0x1000)
    router = Router(new_ssrc=lambda: next(ids))
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    got: dict[tuple, list[tuple[float, int]]] = {}

    def take(out, at: float) -> None:
        for key, data, addr in out:
            if key == SHARED:
                got.setdefault(addr, []).append((at, fields(data)[2] // 3000))

    def feed(seq: int, at: float) -> None:
        while (t := router.next_timer()) is not None and t <= at:
            take(router.on_timer(t), t)
        take(router.on_datagram(video, rtp(seq, 3000 * seq, 7, VP8_KEY if seq % 30 == 0 else VP8_DELTA), PUB, at), at)

    addrs = [("127.0.0.1", 7000 + i) for i in range(CROWD)]
    for i, addr in enumerate(addrs):
        take(router.add_player(1, "s1", f"p{i}", {"video": addr}, l3=l3)[1], 0.0)
    for seq in range(0, 40):
        feed(seq, seq / 30)
    left_at = 39.5 / 30
    leaving = addrs[::2]
    for i in range(0, CROWD, 2):
        router.remove_player(1, "s1", f"p{i}")
    for seq in range(40, 80):
        feed(seq, seq / 30)
    end = 80 / 30 + 1.0
    while (t := router.next_timer()) is not None and t <= end:
        take(router.on_timer(t), t)
    for addr in addrs:
        stamps = [ts for _, ts in got[addr]]
        if addr in leaving:
            assert all(at < left_at for at, _ in got[addr]) and stamps == list(range(len(stamps))), addr
        else:
            assert stamps == list(range(80)), addr
