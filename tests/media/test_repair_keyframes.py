"""A keyframe the repair wants is asked for in the call that finds it wanted (sfu/media/track.py,
`_repair_keyframes`), so its request timer runs from then: a loss storm that a packet reveals (the
NACK generator gives up its whole list) moves the track's next timer to that packet's time, and a
frame the L3 timeline drops at its release sends the PLI with that release. Not at whatever call
into the track comes next (a timer of the node's, once, was any track's). On a virtual clock."""

from sfu.media.router import Router, TrackSpec
from sfu.rtp.rtcp import Pli, parse_rtcp
from tests.media.rtp import VP8_DELTA, VP8_KEY, rtp

PUBLISHER = ("127.0.0.2", 5000)
SSRC = 0x1234


def plis(out: list) -> int:
    return sum(isinstance(p, Pli) for key, data, addr in out if key != 0 for p in parse_rtcp(data))


def test_a_loss_storm_asks_for_a_keyframe_at_once() -> None:
    router = Router()
    (tid,) = router.add_publisher(1, "s", (TrackSpec("video", "VP8", 96),))
    router.add_player(1, "s", "p", {"video": ("127.0.0.1", 7000)}, now=0.0)  # RTC: no timeline timers
    out = router.on_datagram(tid, rtp(0, 0, SSRC, VP8_KEY), PUBLISHER, 0.0)
    out += router.on_timer(0.0)  # the player's start asked for a keyframe: the next may go 0.5 s later
    assert plis(out) == 0 and router.next_timer() is None
    router.on_datagram(tid, rtp(1, 3000, SSRC, VP8_DELTA), PUBLISHER, 0.6)
    router.on_datagram(tid, rtp(3001, 6000, SSRC, VP8_DELTA), PUBLISHER, 0.7)  # 2999 missing: a storm
    assert router.next_timer() == 0.7
    assert plis(router.on_timer(0.7)) == 1


def test_a_frame_dropped_at_its_release_asks_for_a_keyframe_in_the_same_call() -> None:
    router = Router()
    (tid,) = router.add_publisher(1, "s", (TrackSpec("video", "VP8", 96),))
    router.add_player(1, "s", "p", {"video": ("127.0.0.1", 7000)}, l3=True, now=0.0)
    (track,) = router.tracks()
    # (the player's start asked for a keyframe at 0, before the publisher's first packet: the next
    # request may go 0.5 s later)
    sent = [(0, rtp(0, 0, SSRC, VP8_KEY), 0.0),  # a keyframe, whole
            (1, rtp(1, 3000, SSRC, VP8_DELTA, marker=False), 0.633),  # a frame whose second packet is lost
            (3, rtp(3, 3000, SSRC, b"\x00" + bytes(20)), 0.634),
            (4, rtp(4, 6000, SSRC, VP8_DELTA), 0.666)]  # the next one: depends on the lost one
    out, now = [], 0.0
    for _seq, data, at in sent:
        while (due := router.next_timer()) is not None and due <= at:
            out += router.on_timer(due)
        out += router.on_datagram(tid, data, PUBLISHER, at)
        now = at
    assert plis(out) == 0
    dropped = track.jitter.counters["frames_dropped_incomplete"]
    calls: list[list] = []  # what each timer call sent, up to the frame's release
    while track.jitter.counters["frames_dropped_incomplete"] == dropped:
        due = router.next_timer()
        assert due is not None and due < 2.0 and len(calls) < 100
        now = max(now, due)
        calls.append(router.on_timer(now))
    assert [plis(o) for o in calls][-1] == 1  # with the release that broke the chain
    assert sum(plis(o) for o in calls) == 1
