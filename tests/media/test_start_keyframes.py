"""A player's start when the cache cannot give it a whole GOP (sfu/media/track.py, `_start`), and a
keyframe request made before the publisher's first packet. On a virtual clock.

- A GOP longer than the keyframe cache holds: a new player gets the keyframe alone at once (a first
  picture, timed as its first frame), then nothing until the next keyframe, which is asked for at
  once; that keyframe starts it, numbered right after the one it was shown. The same in RTC and L3
  (where the L3 cache overflowed, and where the GOP was too long to seed the timeline at all).
- A request made before the publisher's first packet goes as a PLI with that packet, not
  `keyframe_min_interval` later.
"""

import pytest

from sfu.media.router import Router, TrackSpec
from sfu.media.track import MediaSettings
from sfu.rtp.rtcp import Pli, parse_rtcp
from tests.media.rtp import VP8_DELTA, VP8_KEY, fields, rtp

PUBLISHER = ("127.0.0.2", 5000)
EARLY, LATE = ("127.0.0.1", 7000), ("127.0.0.1", 7002)
SSRC = 0x1234
FPS, PER_FRAME = 30, 3
CACHE = 64  # packets: a GOP of 60 frames (180 packets) does not fit
CONT = b"\x00" + bytes(20)  # a VP8 packet continuing a frame (S=0)


class Run:
    """One publisher video track, frames of PER_FRAME packets at FPS; timers fired when due, as the
    node's endpoint fires them. `out` holds (time, key, datagram, address)."""

    def __init__(self) -> None:
        self.router = Router(MediaSettings(keyframe_cache_packets=CACHE))
        (self.tid,) = self.router.add_publisher(1, "s", (TrackSpec("video", "VP8", 96),))
        (self.track,) = self.router.tracks()
        self.now = 0.0
        self.seq = 0
        self.out: list[tuple[float, int, bytes, tuple]] = []

    def until(self, at: float) -> None:
        while (due := self.router.next_timer()) is not None and due <= at:
            self.now = max(self.now, due)
            self.keep(self.router.on_timer(self.now))
        self.now = max(self.now, at)

    def keep(self, out: list) -> None:
        self.out += [(self.now, key, data, addr) for key, data, addr in out]

    def frames(self, first: int, last: int, keyframes: set[int]) -> None:
        for f in range(first, last + 1):
            for k in range(PER_FRAME):
                self.until(f / FPS)
                payload = (VP8_KEY if f in keyframes else VP8_DELTA) if k == 0 else CONT
                self.keep(self.router.on_datagram(
                    self.tid, rtp(self.seq, f * 3000, SSRC, payload, marker=k == PER_FRAME - 1), PUBLISHER, self.now))
                self.seq += 1

    def play(self, name: str, addr: tuple, l3: bool) -> None:
        _, out = self.router.add_player(1, "s", name, {"video": addr}, l3=l3, now=self.now)
        self.keep(out)

    def to(self, addr: tuple) -> list[tuple[float, int, int]]:
        """(time, timestamp, seq) of what went to `addr`, in order (its numbering)."""
        got = []
        for at, key, data, a in self.out:
            if key == 0 and a == addr and data[1] & 0x7F == 96:
                _, seq, ts, _ = fields(data)
                got.append((at, ts, seq))
        return got

    def plis(self) -> list[float]:
        return [at for at, key, data, _ in self.out if key != 0 for p in parse_rtcp(data) if isinstance(p, Pli)]


def join_then_next_keyframe(run: Run, l3: bool) -> None:
    """A player joins now, on GOP 0 (frame 0 its keyframe, too long for the cache): deltas 60-64,
    then a keyframe at 65. It gets frame 0's keyframe alone at once, then frame 65 on."""
    join = run.now
    del run.out[:]
    run.play("late", LATE, l3)
    run.frames(60, 64, set())
    run.frames(65, 70, {65})
    run.until(3.0)
    got = run.to(LATE)
    shown = [g for g in got if g[0] == join]
    assert len(shown) == PER_FRAME  # the keyframe alone, at once
    assert {g[1] - shown[0][1] for g in shown} == {0}  # one frame's packets
    assert [g[2] for g in shown] == [(shown[0][2] + i) & 0xFFFF for i in range(PER_FRAME)]
    rest = got[PER_FRAME:]
    assert rest, "the next keyframe never started the player"
    assert rest[0][0] >= 65 / FPS  # nothing between the keyframe shown and the next one
    assert rest[0][2] == (shown[-1][2] + 1) & 0xFFFF  # numbered right after what it was shown
    assert rest[0][1] - shown[0][1] == 65 * 3000  # its timestamps run on
    assert run.track.counters["keyframes_alone"] >= 1
    plis = run.plis()
    assert plis and plis[0] == join  # the next keyframe was asked for at once
    assert run.router.take_first_frame_samples()[-1][1] == 0.0  # its first frame: the one shown at once


@pytest.mark.parametrize("l3", [False, True])
def test_a_gop_longer_than_the_cache_shows_its_keyframe_then_waits_for_the_next(l3: bool) -> None:
    run = Run()
    run.play("first", EARLY, l3)  # an L3 player runs the timeline (its cache overflows); RTC: the ring's
    run.frames(0, 59, {0})
    run.until(2.0)
    if l3:
        assert run.track.l3_cache.counters["overflows"] >= 1
    join_then_next_keyframe(run, l3)
    early = sorted({ts for _, ts, _ in run.to(EARLY)})  # the player that was there goes on: every frame
    assert len(early) >= 71 - 60 and all(b - a == 3000 for a, b in zip(early, early[1:]))


def test_an_l3_timeline_that_cannot_seed_shows_the_rings_keyframe() -> None:
    run = Run()
    run.frames(0, 59, {0})  # no player: the ring alone has the GOP, too long to seed the timeline
    join_then_next_keyframe(run, True)


def test_a_gop_that_fits_starts_the_player_whole() -> None:
    run = Run()
    run.frames(0, 9, {0})  # 30 packets: within the cache
    del run.out[:]
    run.play("late", LATE, False)
    got = run.to(LATE)
    assert len(got) == 10 * PER_FRAME and run.plis() == []
    assert run.track.counters["keyframes_alone"] == 0


def test_a_request_before_the_publishers_first_packet_goes_with_that_packet() -> None:
    run = Run()
    run.play("p", EARLY, False)  # no cache: the player asks for a keyframe, with no one to ask yet
    run.until(0.2)
    assert run.plis() == []
    run.frames(6, 6, set())  # the publisher's first packets: not a keyframe (t = 0.2)
    run.until(0.3)
    assert run.plis() == [0.2]
