"""A player whose address changes (its NAT binding moved: its RTCP comes from a new address) is sent
its media at the new address from the next packet on, by the fast path too, and no more at the old."""

from itertools import count

import pytest

from sfu.media.router import SHARED, Router, TrackSpec
from tests.media.rtp import VP8_DELTA, VP8_KEY, rtcp_rr, rtp

PUB = ("127.0.0.1", 5000)
OLD, NEW, OTHER = ("127.0.0.1", 6001), ("127.0.0.1", 6101), ("127.0.0.1", 6002)
VIDEO_ONLY = (TrackSpec("video", "VP8", 96),)


@pytest.mark.parametrize("l3", [False, True], ids=["rtc", "l3"])
def test_media_follows_a_player_to_its_new_address(l3) -> None:
    ids = count(0x1000)
    router = Router(new_ssrc=lambda: next(ids))
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    ssrc = router.add_player(1, "s1", "moving", l3=l3)[0]["video"]
    router.add_player(1, "s1", "staying", {"video": OTHER}, l3=l3)
    assert router.on_datagram(SHARED, rtcp_rr(ssrc), OLD, 0.0) == []  # latched
    sent: list[tuple[float, tuple]] = []

    def feed(seq: int, at: float) -> None:
        out = router.on_datagram(video, rtp(seq, 3000 * seq, 7, VP8_KEY if seq % 30 == 0 else VP8_DELTA), PUB, at)
        while (t := router.next_timer()) is not None and t <= at:
            out += router.on_timer(t)
        sent.extend((at, addr) for key, _, addr in out if key == SHARED)

    for seq in range(0, 60):
        feed(seq, seq / 30)
    moved_at = 60 / 30
    router.on_datagram(SHARED, rtcp_rr(ssrc), NEW, moved_at)  # from its new address
    for seq in range(60, 120):
        feed(seq, seq / 30 + 0.001)
    end = 121 / 30 + 2.0
    while (t := router.next_timer()) is not None and t <= end:
        sent.extend((t, addr) for key, _, addr in router.on_timer(t) if key == SHARED)
    to_old = [at for at, addr in sent if addr == OLD]
    to_new = [at for at, addr in sent if addr == NEW]
    assert to_old and max(to_old) < moved_at + 0.2  # (L3: what was released before it moved)
    assert len(to_new) >= 55  # all that came after, in either mode
    assert len([a for a in sent if a[1] == OTHER]) >= 115
