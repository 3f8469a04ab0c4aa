"""A packet of an earlier frame that reaches the node late (a repair, a reorder) goes to a measured
RTC player as its frame went: it completes a frame the budget sent, and never makes the budget
judge again. It used to be taken for a new frame: the budget judged it, which decided afresh for
the frame then being forwarded, so players got frames cut short (2 of their 3 packets; 15-26 of
~195 frames in 10 s here).

On a virtual clock: a VP8 stream of 3-packet frames, every other one droppable; a path taking about
two thirds of it (REMB), so the budget drops frames; and now and then a frame's last packet held
back until the next frame has begun. The player is gated in the fast table, or (with an L3 player on
the track, which brings every packet to Python) served packet by packet."""

from __future__ import annotations

import random
from collections import Counter
from itertools import count

import pytest

from sfu.media.router import SHARED, Router, TrackSpec
from sfu.media.track import MediaSettings
from sfu.rtp.rtcp import Remb, serialize
from tests.media.rtp import VP8_DELTA, VP8_KEY, fields, rtcp_rr, rtp

PUB = ("127.0.0.1", 5000)
PLAYER, L3_PLAYER = ("127.0.0.1", 6001), ("127.0.0.1", 6002)
BODY = bytes(900)
PACKETS = 3


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("path", ["fast table", "python"])
def test_a_late_packet_goes_as_its_frame_went(path, seed) -> None:
    rng = random.Random(seed)
    ids = count(0x1000)
    router = Router(MediaSettings(), new_ssrc=lambda: next(ids))
    (video,) = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96),))
    ssrc = router.add_player(1, "s1", "rtc", {"video": PLAYER}, l3=False)[0]["video"]
    if path == "python":
        router.add_player(1, "s1", "l3", {"video": L3_PLAYER}, l3=True)
    track = router.track(video)
    got: Counter = Counter()  # RTP timestamp -> packets the player got of that frame
    late: set[int] = set()  # the frames whose last packet came late

    def take(out) -> None:
        got.update(fields(d)[2] for key, d, addr in out if key == SHARED and addr == PLAYER and d[1] & 0x7F == 96)

    seq, held = 0, None
    droppable = b"\x30" + VP8_DELTA[1:]
    for f in range(300):
        now = f / 30
        if f == 5:
            router.on_datagram(SHARED, rtcp_rr(ssrc), PLAYER, now)
            router.on_datagram(SHARED, serialize([Remb(ssrc, 400_000, [ssrc])]), PLAYER, now)
        first = VP8_KEY if f % 60 == 0 else droppable if f % 2 else VP8_DELTA
        for k in range(PACKETS):
            head = first if k == 0 else b"\x20" if first is droppable else b"\x00"
            datagram = rtp(seq, 3000 * f, 7, head + BODY, marker=k == PACKETS - 1)
            seq += 1
            if held is None and k == PACKETS - 1 and f % 60 != 0 and rng.random() < 0.15:
                held = datagram  # comes after the next frame's first two packets
                late.add(3000 * f)
                continue
            take(router.on_datagram(video, datagram, PUB, now + 0.002 * k))
            if held is not None and k == 1 and int.from_bytes(held[4:8], "big") != 3000 * f:
                take(router.on_datagram(video, held, PUB, now + 0.002 * k + 0.001))
                held = None
        while (t := router.next_timer()) is not None and t <= now + 0.02:
            take(router.on_timer(t))
        take(track.fast.take_out())

    (player,) = [p for p in track.players if p.ssrc == ssrc]
    if path == "fast table":
        assert player.gated and player.fast
    budget = player.path.budget.counters
    assert budget["dropped_droppable"] + budget["dropped_skip"] >= 30 and len(late) >= 20  # it is put to the test
    cut = {ts: n for ts, n in got.items() if n != PACKETS}
    # a frame it got is whole, or is the late packet alone of a frame its budget dropped (the hole
    # that packet left in its numbering would have brought it by NACK anyway)
    assert all(n == 1 and ts in late for ts, n in cut.items()), cut
    # every frame sent whole whose last packet came late got it
    assert sum(1 for ts in late if got[ts] == PACKETS) >= len(late) // 3
