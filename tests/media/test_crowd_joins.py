"""A crowd joins between two packets: each player gets the cached GOP at once, then every packet
after it exactly once, in order, from the fast path as from Python; a crowd whose first reports
come at once is gated and judged; a crowd that leaves gets nothing more (the track reloads its
fast table once, at the next packet or timer, for all of them: sfu/media/track.py, "Deferred
reloads")."""

from itertools import count

import pytest

from sfu.media.router import SHARED, Router, TrackSpec
from sfu.rtp.rtcp import Remb, serialize
from tests.media.rtp import VP8_DELTA, VP8_KEY, fields, rtcp_rr, rtp

PUB = ("127.0.0.1", 5000)
VIDEO_ONLY = (TrackSpec("video", "VP8", 96),)
CROWD = 40
ADDRS = [("127.0.0.1", 7000 + i) for i in range(CROWD)]


class Stream:
    """A Router with one VP8 stream, fed a packet a frame (frame n: timestamp 3000 n; a keyframe every
    30; `pad` bytes more each), and what it sent each address: (when, frame number)."""

    def __init__(self, pad: int = 0) -> None:
        ids = count(0x1000)
        self.router = Router(new_ssrc=lambda: next(ids))
        (self.video,) = self.router.add_publisher(1, "s1", VIDEO_ONLY)
        self.pad = bytes(pad)
        self.got: dict[tuple, list[tuple[float, int]]] = {}

    def take(self, out, at: float) -> None:
        for key, data, addr in out:
            if key == SHARED:
                self.got.setdefault(addr, []).append((at, fields(data)[2] // 3000))

    def timers(self, until: float) -> None:
        while (t := self.router.next_timer()) is not None and t <= until:
            self.take(self.router.on_timer(t), t)

    def feed(self, frames: range) -> None:
        for n in frames:
            at = n / 30
            self.timers(at)
            body = (VP8_KEY if n % 30 == 0 else VP8_DELTA) + self.pad
            self.take(self.router.on_datagram(self.video, rtp(n, 3000 * n, 7, body), PUB, at), at)

    def frames(self, addr) -> list[int]:
        return [n for _, n in self.got.get(addr, [])]


@pytest.mark.parametrize("l3", [False, True], ids=["rtc", "l3"])
def test_every_player_of_a_crowd_gets_the_gop_then_each_packet_once(l3) -> None:
    s = Stream()
    s.feed(range(0, 10))
    for i, addr in enumerate(ADDRS):  # all between two packets
        s.take(s.router.add_player(1, "s1", f"p{i}", {"video": addr}, l3=l3, now=10 / 30)[1], 10 / 30)
    s.feed(range(10, 70))
    s.timers(70 / 30 + 1.0)
    # the RTC GOP is what the ring had (0-9); L3's what the timeline had released (a 100 ms+ hold)
    for addr in ADDRS:
        assert s.frames(addr) == list(range(70)), addr  # each once, in order, nothing missed


@pytest.mark.parametrize("l3", [False, True], ids=["rtc", "l3"])
def test_a_crowd_whose_first_reports_come_at_once_is_gated_and_judged(l3) -> None:
    """Players that report as they join (an SDK player's first RR marks its path measured): each
    gets a gate where it is in the table, and its own budget decides from then on: a player whose
    path takes 100 kbit/s (its REMB: the least an estimate goes) loses frames, the others get every
    packet."""
    s = Stream(pad=1200)  # ~290 kbit/s
    s.feed(range(0, 10))
    ssrcs = []
    for i, addr in enumerate(ADDRS):
        kinds, out = s.router.add_player(1, "s1", f"p{i}", {"video": addr}, l3=l3, now=10 / 30)
        ssrcs.append(kinds["video"])
        s.take(out, 10 / 30)  # the cached GOP
    s.feed(range(10, 20))  # in the table now, ungated (L3: started by the timeline's next release)
    assert all(s.frames(addr) for addr in ADDRS)
    slow = ADDRS[5]
    for ssrc, addr in zip(ssrcs, ADDRS):  # their first reports, between two packets: gated where they are
        report = serialize([Remb(ssrc, 20_000, [7])]) if addr == slow else rtcp_rr(ssrc)
        s.take(s.router.on_datagram(SHARED, report, addr, 19.5 / 30), 19.5 / 30)
    s.feed(range(20, 80))
    s.timers(80 / 30 + 1.0)
    for addr in ADDRS:
        if addr != slow:
            assert s.frames(addr) == list(range(80)), addr
    got = s.frames(slow)
    assert got == sorted(set(got)) and got[0] == 0 and len(got) < 50  # its budget dropped frames


@pytest.mark.parametrize("l3", [False, True], ids=["rtc", "l3"])
def test_a_crowd_that_leaves_between_two_packets_gets_nothing_more(l3) -> None:
    s = Stream()
    for i, addr in enumerate(ADDRS):
        s.take(s.router.add_player(1, "s1", f"p{i}", {"video": addr}, l3=l3)[1], 0.0)
    s.feed(range(0, 40))
    left_at = 39.5 / 30
    leaving = ADDRS[::2]
    for i in range(0, CROWD, 2):
        s.router.remove_player(1, "s1", f"p{i}")
    s.feed(range(40, 80))
    s.timers(80 / 30 + 1.0)
    for addr in ADDRS:
        if addr in leaving:
            assert all(at < left_at for at, _ in s.got[addr]), addr
            assert s.frames(addr) == list(range(len(s.frames(addr)))), addr
        else:
            assert s.frames(addr) == list(range(80)), addr


@pytest.mark.parametrize("l3", [False, True], ids=["rtc", "l3"])
def test_most_of_a_measured_crowd_leaves_and_those_left_keep_their_own_budgets(l3) -> None:
    """Three in four leave between two packets: past half of them the table is compacted (the
    others move down) and the later leavers still leave; those left get every packet but the
    slow one, whose budget (its gate, moved with it) still drops frames."""
    s = Stream(pad=1200)
    ssrcs = []
    for i, addr in enumerate(ADDRS):
        kinds, out = s.router.add_player(1, "s1", f"p{i}", {"video": addr}, l3=l3)
        ssrcs.append(kinds["video"])
        s.take(out, 0.0)
    s.feed(range(0, 10))
    slow = ADDRS[7]
    for ssrc, addr in zip(ssrcs, ADDRS):
        report = serialize([Remb(ssrc, 20_000, [7])]) if addr == slow else rtcp_rr(ssrc)
        s.take(s.router.on_datagram(SHARED, report, addr, 9.5 / 30), 9.5 / 30)
    s.feed(range(10, 40))
    left_at = 39.5 / 30
    staying = ADDRS[3::4]
    for i, addr in enumerate(ADDRS):
        if addr not in staying:
            s.router.remove_player(1, "s1", f"p{i}")
    s.feed(range(40, 90))
    s.timers(90 / 30 + 1.0)
    for addr in ADDRS:
        if addr not in staying:
            assert all(at < left_at for at, _ in s.got.get(addr, [])), addr
        elif addr != slow:
            assert s.frames(addr) == list(range(90)), addr
    got = s.frames(slow)
    assert got == sorted(set(got)) and 60 in got and len(got) < 50  # (the keyframe after the leave: still its)
