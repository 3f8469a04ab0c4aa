"""Router.next_timer() is kept between calls (only the tracks called into are asked again): after every
input it must be exactly the earliest of its tracks' own next_timer(), on a virtual clock.

A seeded run of everything that can move a track's timers: two streams (audio and video, then video
only) with RTC and L3 players joining (with an address, or latched later from their RTCP), leaving,
reporting (RR: measured paths; REMB), asking for lost packets and keyframes; publishers losing,
reordering and retransmitting packets, sending sender reports, ending and publishing again; the
timer fired at each deadline as the endpoint does.
"""

from __future__ import annotations

import random

import pytest

from sfu.media.router import SHARED, Router, TrackSpec
from sfu.rtp.rtcp import Nack, Pli, ReceiverReport, Remb, ReportBlock, SenderReport, serialize
from tests.media.rtp import VP8_DELTA, VP8_KEY, rtp

OPUS = b"\x78" + bytes(40)
STREAMS = {"s1": (TrackSpec("audio", "opus", 111), TrackSpec("video", "VP8", 96)),
           "s2": (TrackSpec("video", "VP8", 96),)}


def earliest(router: Router) -> float | None:
    times = [t for t in (track.next_timer() for track in router.tracks()) if t is not None]
    return min(times) if times else None


class Publisher:
    def __init__(self, rng: random.Random, router: Router, stream: str, port: int) -> None:
        self.rng, self.router, self.stream, self.addr = rng, router, stream, ("127.0.0.2", port)
        self.ids = dict(zip((s.kind for s in STREAMS[stream]), router.add_publisher(1, stream, STREAMS[stream])))
        self.seq = {kind: rng.randrange(65536) for kind in self.ids}
        self.frame = 0
        self.held: list[tuple[int, bytes]] = []  # reordered or lost: sent later, or never

    def send(self, now: float) -> None:
        """One frame of each kind: video 1-4 packets (a keyframe every 30 frames), audio one."""
        rng, key = self.rng, self.frame % 30 == 0
        for kind, tid in self.ids.items():
            count = 1 if kind == "audio" else rng.randint(1, 4)
            for i in range(count):
                payload = OPUS if kind == "audio" else (VP8_KEY if key else VP8_DELTA) if i == 0 else b"\x00" + bytes(30)
                data = rtp(self.seq[kind], self.frame * 3000, 0x50 + tid, payload, pt=111 if kind == "audio" else 96,
                           marker=i == count - 1)
                self.seq[kind] = (self.seq[kind] + 1) & 0xFFFF
                if rng.random() < 0.06:
                    self.held.append((tid, data))
                else:
                    yield tid, data, self.addr
        self.frame += 1
        while self.held and rng.random() < 0.4:  # late, or a retransmission
            tid, data = self.held.pop(rng.randrange(len(self.held)))
            if rng.random() < 0.7:
                yield tid, data, self.addr

    def sender_report(self):
        tid = self.rng.choice(list(self.ids.values()))
        return tid, serialize([SenderReport(0x50 + tid, (1 << 32) * self.frame, self.frame * 3000, self.frame, 100)]), \
            self.addr


@pytest.mark.parametrize("seed", range(3))
def test_next_timer_is_the_earliest_of_the_tracks_after_every_input(seed: int) -> None:
    rng = random.Random(seed)
    router = Router(new_ssrc=iter(range(0x1000, 0x100000)).__next__)
    publishers = {name: Publisher(rng, router, name, 5000 + 2 * i) for i, name in enumerate(STREAMS)}
    players: dict[str, tuple[str, dict[str, int], tuple]] = {}  # session -> (stream, kind -> ssrc, addr)
    now, steps, timers = 0.0, 0, 0

    tracks = {}  # every track there was, to count what their timelines did

    def check() -> None:
        nonlocal steps
        assert router.next_timer() == earliest(router), steps
        steps += 1
        tracks.update((t.track_id, t) for t in router.tracks())

    for tick in range(1500):
        now = tick / 60
        while (due := router.next_timer()) is not None and due <= now:
            router.on_timer(due)
            timers += 1
            check()
        op = rng.random()
        if op < 0.55:
            for pub in list(publishers.values()):
                for tid, data, addr in pub.send(now):
                    router.on_datagram(tid, data, addr, now)
                    check()
        elif op < 0.62 and len(players) < 12:
            session = f"p{tick}"
            stream = rng.choice(list(STREAMS))
            addr = ("127.0.0.1", 7000 + tick)
            ssrcs, _ = router.add_player(1, stream, session, {"video": addr} if rng.random() < 0.6 else None,
                                         l3=rng.random() < 0.6, now=now)
            players[session] = (stream, ssrcs, addr)
        elif op < 0.66 and players:
            session = rng.choice(list(players))
            stream = players.pop(session)[0]
            router.remove_player(1, stream, session)
        elif op < 0.85 and players:
            stream, ssrcs, addr = players[rng.choice(list(players))]
            ssrc = ssrcs["video"]
            packet = rng.choice([
                ReceiverReport(ssrc, [ReportBlock(ssrc, rng.randrange(40), 0, 0, 0, 0, 0)]),
                Nack(ssrc, ssrc, [rng.randrange(65536) for _ in range(3)]),
                Pli(ssrc, ssrc),
                Remb(ssrc, rng.choice([200_000, 5_000_000]), [ssrc]),
            ])
            router.on_datagram(SHARED, serialize([packet]), addr, now)  # the first one latches its address
        elif op < 0.9 and publishers:
            router.on_datagram(*rng.choice(list(publishers.values())).sender_report(), now)
        elif op < 0.92:
            name = rng.choice(list(STREAMS))
            if name in publishers:
                router.end_stream(1, name)
                del publishers[name]
            else:
                publishers[name] = Publisher(rng, router, name, 6000 + tick * 2)
                for stream, ssrcs, addr in list(players.values()):  # its waiting players punch a hole before any
                    if stream == name:  # media: those latched now have no first frame yet, and ask for one
                        router.on_datagram(SHARED, rtp(0, 0, ssrcs["video"], b""), addr, now)
                        check()
        check()
    assert steps > 3000 and timers > 300
    assert sum(t.counters["frames_released"] for t in tracks.values()) > 100  # the L3 timelines ran
    assert sum(t.counters["nacks_sent"] for t in tracks.values()) > 10  # and the repairs
    assert sum(t.counters["sender_reports"] for t in tracks.values()) > 10  # and the SR timers
