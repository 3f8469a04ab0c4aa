"""Router.next_timer() is kept between calls (only the tracks called into are asked again): after every
input it must be exactly the earliest of its tracks' own next_timer(), on a virtual clock; on_timer()
calls only the tracks due; and what a stream sends does not depend on the other streams.

A seeded run of everything that can move a track's timers: two streams (audio and video, then video
only) with RTC and L3 players joining (with an address, or latched later from their RTCP), leaving,
reporting (RR: measured paths; REMB), asking for lost packets and keyframes; publishers losing,
reordering and retransmitting packets, sending sender reports, ending and publishing again; the
timer fired at each deadline as the endpoint does.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from sfu.media.router import SHARED, Router, TrackSpec
from sfu.media.track import PublisherTrack
from sfu.rtp.rtcp import Nack, Pli, ReceiverReport, Remb, ReportBlock, SenderReport, serialize
from tests.media.rtp import VP8_DELTA, VP8_KEY, rtp

OPUS = b"\x78" + bytes(40)
STREAMS = {"s1": (TrackSpec("audio", "opus", 111), TrackSpec("video", "VP8", 96)),
           "s2": (TrackSpec("video", "VP8", 96),)}


def earliest(router: Router) -> float | None:
    times = [t for t in (track.next_timer() for track in router.tracks()) if t is not None]
    return min(times) if times else None


class Publisher:
    """A stream's publisher (its router None: a run without that stream, which draws the same numbers)."""

    def __init__(self, rng: random.Random, router: Router | None, stream: str, port: int) -> None:
        self.rng, self.router, self.stream, self.addr = rng, router, stream, ("127.0.0.2", port)
        kinds = [s.kind for s in STREAMS[stream]]
        self.ids = dict(zip(kinds, router.add_publisher(1, stream, STREAMS[stream]) if router else [0] * len(kinds)))
        self.ssrcs = {kind: 4 * port + i for i, kind in enumerate(kinds)}
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
                data = rtp(self.seq[kind], self.frame * 3000, self.ssrcs[kind], payload, pt=111 if kind == "audio" else 96,
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
        kind = self.rng.choice(list(self.ids))
        tid = self.ids[kind]
        return tid, serialize([SenderReport(self.ssrcs[kind], (1 << 32) * self.frame, self.frame * 3000, self.frame, 100)]), \
            self.addr


class Ssrcs:
    """The Router's `new_ssrc`: numbers from the range of the stream being called into (`stream`), so
    that a run without the other streams numbers the same."""

    def __init__(self) -> None:
        self.stream = ""
        self.next = {name: 0x10000 * (i + 1) for i, name in enumerate(STREAMS)}

    def __call__(self) -> int:
        self.next[self.stream] += 1
        return self.next[self.stream]


def run(seed: int, timers_of: Callable[[Router, float, float], list], check: Callable[[Router], None],
        only: set[str] | None = None) -> dict:
    """The seeded scenario (module doc), with `timers_of(router, now, last)` firing each timer that is
    due at `now` (returning what was sent; `last` is when the inputs before were given: a timer
    fires no earlier, as the clock never goes back) and `check` called after every input; returns
    what was sent, by (stream, socket: 0 or the publisher track's kind, destination), in order, and
    what the tracks did. With `only`, the other streams' inputs are left out (the same numbers drawn)."""
    rng = random.Random(seed)
    ssrcs_of = Ssrcs()
    router = Router(new_ssrc=ssrcs_of)

    def to(stream: str) -> Router | None:
        ssrcs_of.stream = stream
        return router if only is None or stream in only else None

    publishers = {name: Publisher(rng, to(name), name, 5000 + 2 * i) for i, name in enumerate(STREAMS)}
    players: dict[str, tuple[str, dict[str, int], tuple]] = {}  # session -> (stream, kind -> ssrc, addr)
    stream_at: dict[tuple, str] = {}  # a player's address -> its stream
    sent: dict[tuple, list[bytes]] = {}
    tracks = {}  # every track there was, to count what their timelines did
    last = 0.0

    def record(out: list) -> None:
        for key, data, addr in out:
            if key == SHARED:
                label = (stream_at[addr], 0)
            else:
                track = router.track(key)
                label = (track.key[1], track.spec.kind)
            sent.setdefault((*label, addr), []).append(data)

    def inputs_done() -> None:
        check(router)
        tracks.update((t.track_id, t) for t in router.tracks())

    for tick in range(1500):
        now = tick / 60
        record(timers_of(router, now, last))
        last = now
        op = rng.random()
        if op < 0.55:
            for pub in list(publishers.values()):
                for tid, data, addr in pub.send(now):
                    if to(pub.stream):
                        record(router.on_datagram(tid, data, addr, now))
                        inputs_done()
        elif op < 0.62 and len(players) < 12:
            session = f"p{tick}"
            stream = rng.choice(list(STREAMS))
            addr = ("127.0.0.1", 7000 + tick)
            given, l3 = rng.random() < 0.6, rng.random() < 0.6
            stream_at[addr] = stream
            ssrcs = {"video": 0}
            if to(stream):
                ssrcs, out = router.add_player(1, stream, session, {"video": addr} if given else None, l3=l3, now=now)
                record(out)
            players[session] = (stream, ssrcs, addr)
        elif op < 0.66 and players:
            session = rng.choice(list(players))
            stream = players.pop(session)[0]
            if to(stream):
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
            if to(stream):
                record(router.on_datagram(SHARED, serialize([packet]), addr, now))  # the first one latches its address
        elif op < 0.9 and publishers:
            pub = rng.choice(list(publishers.values()))
            report = pub.sender_report()
            if to(pub.stream):
                record(router.on_datagram(*report, now))
        elif op < 0.92:
            name = rng.choice(list(STREAMS))
            if name in publishers:
                if to(name):
                    router.end_stream(1, name)
                del publishers[name]
            else:
                publishers[name] = Publisher(rng, to(name), name, 6000 + tick * 2)
                for stream, ssrcs, addr in list(players.values()):  # its waiting players punch a hole before any
                    if stream == name and to(name):  # media: those latched now have no first frame yet, and ask for one
                        record(router.on_datagram(SHARED, rtp(0, 0, ssrcs["video"], b""), addr, now))
                        inputs_done()
        inputs_done()
    return {"sent": sent, "released": sum(t.counters["frames_released"] for t in tracks.values()),
            "nacks": sum(t.counters["nacks_sent"] for t in tracks.values()),
            "reports": sum(t.counters["sender_reports"] for t in tracks.values())}


def fire(router: Router, now: float, last: float) -> list:
    """The endpoint's way: on_timer() at each deadline (or, one already past, at once)."""
    out = []
    while (due := router.next_timer()) is not None and due <= now:
        out += router.on_timer(max(due, last))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_next_timer_is_the_earliest_of_the_tracks_after_every_input(seed: int) -> None:
    steps, timers = 0, 0

    def check(router: Router) -> None:
        nonlocal steps
        assert router.next_timer() == earliest(router), steps
        steps += 1

    def fire_checked(router: Router, now: float, last: float) -> list:
        nonlocal timers
        out = []
        while (due := router.next_timer()) is not None and due <= now:
            out += router.on_timer(max(due, last))
            timers += 1
            check(router)
        return out

    done = run(seed, fire_checked, check)
    assert steps > 3000 and timers > 300
    assert done["released"] > 100  # the L3 timelines ran
    assert done["nacks"] > 10  # and the repairs
    assert done["reports"] > 10  # and the SR timers


@pytest.mark.parametrize("seed", range(3))
def test_a_timer_calls_only_the_tracks_due(monkeypatch, seed: int) -> None:
    called: list[list[float | None]] = []  # per on_timer(), the deadline of each track it called
    on_timer = PublisherTrack.on_timer

    def spy(track: PublisherTrack, now: float) -> list:
        called[-1].append(track.next_timer())
        return on_timer(track, now)

    monkeypatch.setattr(PublisherTrack, "on_timer", spy)

    def fire_watched(router: Router, now: float, last: float) -> list:
        out = []
        while (due := router.next_timer()) is not None and due <= now:
            at = max(due, last)
            called.append([])
            out += router.on_timer(at)
            assert called[-1] and all(d is not None and d <= at for d in called[-1])
            assert all(t.next_timer() is None or t.next_timer() > at for t in router.tracks())  # none left due
        return out

    run(seed, fire_watched, lambda router: None)
    assert len(called) > 300
    assert sum(map(len, called)) < 1.3 * len(called)  # of two or three tracks, mostly one is due


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("stream", list(STREAMS))
def test_what_a_stream_sends_does_not_depend_on_the_other_streams(seed: int, stream: str) -> None:
    """The same inputs to a stream, with or without another stream's on the same Router (its
    publishers, players and timers): the same datagrams toward each destination, in the same order.
    (When a timer called every track, a stream's keyframe requests, repairs and sender reports
    moved with the other stream's deadlines.)"""
    both = run(seed, fire, lambda router: None)
    alone = run(seed, fire, lambda router: None, only={stream})
    mine = {key: data for key, data in both["sent"].items() if key[0] == stream}
    assert mine == alone["sent"]
    assert sum(map(len, mine.values())) > 300
