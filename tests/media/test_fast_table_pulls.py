"""When Python brings players up to what the fast path sent them (sfu/media/track.py, "the fast
table"): only the players it is about to judge or read, not every player of the track on every
packet it handles.

- A keyframe (a packet the fast path leaves to Python) on a track whose RTC players are all in the
  fast table without a gate runs nothing per player in Python: with 1000 players that pull stalled
  forwarding ~4 ms per keyframe.
- A player's receiver report reads how many packets the node sent it, the fast path's included.
"""

import struct

import pytest

from sfu.media import _fastpath_c, _fastpath_py, player, track
from sfu.media.congestion import PlayerCongestion
from sfu.media.router import SHARED, Router, TrackSpec
from tests.media.rtp import VP8_DELTA, VP8_KEY, rtp

PUB = ("127.0.0.1", 5000)
VIDEO_ONLY = (TrackSpec("video", "VP8", 96),)


@pytest.fixture(params=[_fastpath_py.FastTrack, _fastpath_c.FastTrack], ids=["py", "c"])
def fast_track(request, monkeypatch):
    monkeypatch.setattr(track, "FastTrack", request.param)


def rr(ssrc: int, highest: int) -> bytes:
    """A receiver report from `ssrc` with one block about `ssrc` (the stream the node sends it)."""
    return struct.pack("!BBHI", 0x81, 201, 7, ssrc) + struct.pack("!IIIIII", ssrc, 0, highest, 0, 0, 0)


def test_a_keyframe_pulls_no_player_the_fast_path_serves(fast_track, monkeypatch):
    router = Router()
    (video,) = router.add_publisher(1, "s", VIDEO_ONLY)
    players = [("127.0.0.1", 7000 + i) for i in range(50)]
    for i, addr in enumerate(players):
        router.add_player(1, "s", f"p{i}", {"video": addr})
    router.on_datagram(video, rtp(1, 3000, 7, VP8_KEY), PUB, 0.0)  # every player starts: the table loads
    out = [router.on_datagram(video, rtp(seq, 6000, 7, VP8_DELTA, marker=False), PUB, 0.01) for seq in (2, 3)]
    assert all(len(o) == len(players) for o in out)  # the fast path forwards
    absorbed = []
    absorb = player.PlayerTrack.absorb_fast
    monkeypatch.setattr(player.PlayerTrack, "absorb_fast", lambda self, *a: absorbed.append(self) or absorb(self, *a))
    out = router.on_datagram(video, rtp(4, 9000, 7, VP8_KEY), PUB, 0.04)  # a keyframe: Python's
    assert sorted(addr for _, _, addr in out) == sorted(players)
    assert absorbed == []


def test_a_receiver_report_counts_what_the_fast_path_sent(fast_track, monkeypatch):
    router = Router()
    (video,) = router.add_publisher(1, "s", VIDEO_ONLY)
    addr = ("127.0.0.1", 7000)
    ssrcs, _ = router.add_player(1, "s", "p", {"video": addr})
    ssrc = ssrcs["video"]
    seen = []
    on_report = PlayerCongestion.on_receiver_report
    monkeypatch.setattr(PlayerCongestion, "on_receiver_report",
                        lambda self, block, now, *facts: seen.append(facts[2]) or on_report(self, block, now, *facts))
    got = 0
    for seq in range(1, 6):  # a keyframe, then a frame in five packets
        ts = 3000 if seq == 1 else 6000
        out = router.on_datagram(video, rtp(seq, ts, 7, VP8_KEY if seq == 1 else VP8_DELTA, marker=seq in (1, 5)), PUB,
                                 seq * 0.001)
        got += sum(1 for key, _, a in out if key == SHARED and a == addr)
    router.on_datagram(SHARED, rr(ssrc, 5), addr, 0.01)  # its path is measured from now: it gets a gate
    for seq in range(6, 11):  # the next frame: its first packet judged in Python, the rest by its gate
        out = router.on_datagram(video, rtp(seq, 9000, 7, VP8_DELTA, marker=seq == 10), PUB, 0.02 + seq * 0.001)
        got += sum(1 for key, _, a in out if key == SHARED and a == addr)
    router.on_datagram(SHARED, rr(ssrc, 10), addr, 0.05)
    assert got == 10
    assert seen == [5, 10]
