"""What the Router sends RTC players around losses, on a virtual clock (sfu/media/track.py):
- a duplicate from the publisher (a resend of a packet that had come) is not forwarded again;
- players that lost the same packet each get it resent (the RTT throttle is per player);
- a receiver report's path loss leaves out what the node sent after the player made it (in
  flight), so packets repaired upstream and forwarded at that moment are no loss of the path."""

from sfu.media.router import SHARED, Router, TrackSpec
from sfu.rtp.rtcp import Nack, ReceiverReport, ReportBlock, serialize
from tests.media.rtp import VP8_DELTA, VP8_KEY, fields, rtp

PUB = ("127.0.0.2", 5000)
A, B = ("127.0.0.1", 7000), ("127.0.0.1", 7002)
SSRC = 0x1234


def setup():
    router = Router()
    (tid,) = router.add_publisher(1, "s", (TrackSpec("video", "VP8", 96),))
    ssrcs = {}
    for name, addr in (("a", A), ("b", B)):
        s, _ = router.add_player(1, "s", name, {"video": addr}, now=0.0)
        ssrcs[addr] = s["video"]
    return router, tid, ssrcs


def to(out: list, addr: tuple) -> list[int]:
    return [fields(data)[1] for key, data, a in out if key == 0 and a == addr and data[1] & 0x7F == 96]


def test_a_duplicate_from_the_publisher_is_not_forwarded_again() -> None:
    router, tid, _ = setup()
    out = router.on_datagram(tid, rtp(0, 0, SSRC, VP8_KEY), PUB, 0.0)
    out += router.on_datagram(tid, rtp(2, 6000, SSRC, VP8_DELTA), PUB, 0.066)
    out += router.on_datagram(tid, rtp(1, 3000, SSRC, VP8_DELTA), PUB, 0.07)  # late: fills the hole
    assert len(to(out, A)) == len(to(out, B)) == 3
    again = router.on_datagram(tid, rtp(1, 3000, SSRC, VP8_DELTA), PUB, 0.1)  # the publisher's resend, needless
    assert to(again, A) == to(again, B) == []


def test_players_that_lost_the_same_packet_each_get_it_resent() -> None:
    router, tid, ssrcs = setup()
    out = router.on_datagram(tid, rtp(0, 0, SSRC, VP8_KEY), PUB, 0.0)
    out += router.on_datagram(tid, rtp(1, 3000, SSRC, VP8_DELTA), PUB, 0.033)
    for addr in (A, B):
        seq = to(out, addr)[-1]  # packet 1, as this player numbers it: lost on its path
        nack = serialize([Nack(0x99, ssrcs[addr], [seq])])
        resent = router.on_datagram(SHARED, nack, addr, 0.05)
        assert to(resent, addr) == [seq]


def test_packets_sent_after_a_report_was_made_are_not_the_paths_loss() -> None:
    router, tid, ssrcs = setup()
    (track,) = router.tracks()

    def frames(first: int, last: int) -> None:  # 30 fps, one packet a frame
        for i in range(first, last + 1):
            router.on_datagram(tid, rtp(i, i * 3000, SSRC, VP8_KEY if i == 0 else VP8_DELTA), PUB, i / 30)

    def report(highest: int, lost: int, fraction: float, at: float) -> None:
        block = ReportBlock(ssrcs[A], round(fraction * 256), lost, highest, 0, 0, 0)
        router.on_datagram(SHARED, serialize([ReceiverReport(ssrcs[A], [block])]), A, at)  # (its own SSRC)

    frames(0, 39)
    report(39, 0, 0.0, 1.34)  # its first report: all 40 it was sent so far came
    frames(46, 59)  # 40-45 lost upstream
    # at 2.0 the node gets 40-45 back from the publisher (its NACKs answered) and forwards them,
    # at the same instant the player's report arrives, made before they could reach it
    for i in range(40, 46):
        router.on_datagram(tid, rtp(i, i * 3000, SSRC, VP8_DELTA), PUB, 2.0)
    report(59, 6, 6 / 20, 2.0)  # 20 more numbers, 6 of them not (yet) come: upstream's loss
    (a,) = [p for p in track.players if p.addr == A]
    assert a.packets_sent == 60
    cc = a.path.congestion
    assert cc.counters["reports"] == 2 and cc.counters["upstream_loss"] == 1, cc.counters
    assert cc.counters["decreases"] == 0 and cc.last_loss == 0.0
