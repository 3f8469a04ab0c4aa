"""A player whose path is measured (it reports: every SDK player) stays in its track's fast table
behind a gate: its latency budget judges each frame in Python (RTC: at the frame's first packet;
L3: each released frame), the compiled fast path sends the frame or closes the player's numbering
over it (docs/media.md, "the fast table").

On a virtual clock: a VP8 stream (for L3 with a lost packet the publisher never resends: a frame
the L3 timeline gives up, a gap in the timeline) and two players of one mode, one silent and one
that reports and whose REMB lets only part of the stream through, so its budget drops frames (a
closed gate), around the gap too. What must hold for the gated one, as for the silent one: its
numbering has no hole (dropped frames and the timeline's gap are closed over), and a NACK for a
packet it got is answered with the number it got it under."""

from __future__ import annotations

from itertools import count

import pytest

from sfu.media.router import SHARED, Router, TrackSpec
from sfu.media.track import MediaSettings
from sfu.rtp.rtcp import Nack, Remb, serialize
from tests.media.rtp import VP8_DELTA, VP8_KEY, fields, rtcp_rr, rtp

PUB = ("127.0.0.1", 5000)
SILENT, GATED = ("127.0.0.1", 6000), ("127.0.0.1", 6001)
BODY = bytes(1000)


@pytest.mark.parametrize("mode", ["l3", "rtc"])
def test_a_reporting_player_is_gated_in_the_fast_path_and_its_numbering_stays_whole(mode) -> None:
    l3 = mode == "l3"
    ids = count(0x1000)
    router = Router(MediaSettings(l3_min_delay=0.1, l3_max_delay=0.1, l3_late_repair=False),
                    new_ssrc=lambda: next(ids))
    (video,) = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96),))
    router.add_player(1, "s1", "silent", {"video": SILENT}, l3=l3)
    ssrc = router.add_player(1, "s1", "gated", {"video": GATED}, l3=l3)[0]["video"]
    track = router.track(video)
    got: dict = {SILENT: [], GATED: []}
    seq = 0

    def take(out) -> None:
        for key, data, addr in out:
            if key == SHARED and addr in got and data[1] & 0x7F == 96:
                got[addr].append((fields(data)[1], fields(data)[2], data[12:]))

    for f in range(90):  # 3 s at 30 frames/s, 3 packets a frame, a keyframe every second
        now = f / 30
        if f == 5:  # the gated player reports, and says its path takes ~200 kbit/s (REMB): about a third
            router.on_datagram(SHARED, rtcp_rr(ssrc), GATED, now)
            router.on_datagram(SHARED, serialize([Remb(ssrc, 200_000, [ssrc])]), GATED, now)
        for k in range(3):
            payload = ((VP8_KEY if f % 30 == 0 else VP8_DELTA) if k == 0 else b"\x00") + BODY
            if not (l3 and f == 40 and k == 1):  # lost, never resent: frame 40 is given up, 41-59 too
                take(router.on_datagram(video, rtp(seq, 3000 * f, 7, payload, marker=k == 2), PUB, now))
            seq += 1
        while (t := router.next_timer()) is not None and t <= now:
            take(router.on_timer(t))
    take(track.fast.take_out())  # (no socket here: the fast path leaves its datagrams to be taken)
    # (that its datagrams leave the compiled path, not Python, bench/reporting.py's smoke test shows)

    (gated,) = [p for p in track.players if p.ssrc == ssrc]
    assert gated.path.measured and gated.fast and gated.gated
    if l3:
        assert track.counters["frames_released"] > 0 and track.jitter.counters["frames_dropped_incomplete"] >= 1
    assert gated.path.budget.counters["dropped_skip"] + gated.path.budget.counters["dropped_droppable"] > 0
    silent_seqs = [s for s, _, _ in got[SILENT]]
    gated_seqs = [s for s, _, _ in got[GATED]]
    assert len(gated_seqs) < len(silent_seqs)  # its budget dropped frames...
    for seqs in (silent_seqs, gated_seqs):  # ...and no player's numbering has a hole
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    # a NACK for its last packet is answered under the number it got it with
    last_seq, last_ts, last_body = got[GATED][-1]
    out = router.on_datagram(SHARED, serialize([Nack(ssrc, ssrc, [last_seq])]), GATED, 3.0)
    resent = [(fields(d)[1], fields(d)[2], d[12:]) for key, d, addr in out if key == SHARED and addr == GATED]
    assert resent == [(last_seq, last_ts, last_body)]


@pytest.mark.parametrize("mode", ["l3", "rtc"])
@pytest.mark.parametrize("remb_bps", [500_000, 20_000_000], ids=["changing", "open"])
def test_gates_are_pulled_lazily_and_lose_nothing(remb_bps, mode) -> None:
    """The track pulls its gated players lazily (sfu/media/track.py, "Lazy pulls"): at each gate
    change, and all together at most every GATED_PULL_INTERVAL. Every other frame is droppable.
    "changing": a path that takes ~70 % of the stream, so the budget drops droppable frames here
    and there: the gate changes every few frames, and runs of sends span whole pull intervals.
    "open": a path that takes it all, so the gate never changes. Either way every packet the player
    got must be NACKable under the number it got it with, its numbering must stay whole, its counts
    and its send rate (dated by the pulls) must be what it was sent."""
    ids = count(0x1000)
    router = Router(MediaSettings(l3_min_delay=0.1, l3_max_delay=0.1, l3_late_repair=False),
                    new_ssrc=lambda: next(ids))
    (video,) = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96),))
    ssrc = router.add_player(1, "s1", "gated", {"video": GATED}, l3=mode == "l3")[0]["video"]
    track = router.track(video)
    got: list[tuple[float, int, bytes]] = []  # (when, seq, payload)

    def take(out, now: float) -> None:
        for key, data, addr in out:
            if key == SHARED and addr == GATED and data[1] & 0x7F == 96:
                got.append((now, fields(data)[1], data))

    seq, droppable = 0, b"\x30" + VP8_DELTA[1:]  # VP8 N bit: no frame depends on it
    for f in range(150):  # 5 s at 30 frames/s, 3 packets a frame, a keyframe every 2 s
        now = f / 30
        if f == 5:
            router.on_datagram(SHARED, rtcp_rr(ssrc), GATED, now)
            router.on_datagram(SHARED, serialize([Remb(ssrc, remb_bps, [ssrc])]), GATED, now)
        first = VP8_KEY if f % 60 == 0 else droppable if f % 2 else VP8_DELTA
        for k in range(3):
            head = first if k == 0 else b"\x20" if first is droppable else b"\x00"
            payload = head + seq.to_bytes(4, "big") + BODY  # each packet's own payload
            take(router.on_datagram(video, rtp(seq, 3000 * f, 7, payload, marker=k == 2), PUB, now), now)
            seq += 1
        while (t := router.next_timer()) is not None and t <= now:
            take(router.on_timer(t), t)
        take(track.fast.take_out(), now)  # (no socket here: the fast path leaves its datagrams to be taken)

    (gated,) = track.players
    assert gated.gated and gated.fast
    counters = gated.path.budget.counters
    assert counters["dropped_skip"] == 0
    assert counters["dropped_droppable"] >= 20 if remb_bps < 1_000_000 else counters["dropped_droppable"] == 0
    seqs = [s for _, s, _ in got]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # dropped frames closed over: no hole

    # its counts and its send rate (congestion control reads it at a report) are what it was sent
    router.totals()
    end = 149 / 30
    assert gated.packets_sent == len(got)
    recent = sum(len(d) for at, _, d in got if at > end - 1.0)
    assert gated.path.congestion.send_rate_bps(end) == pytest.approx(recent * 8, rel=0.12)

    # each packet of its last half second is resent under its number, with its own payload (one
    # NACK each, 20 ms apart, once its budget's queue has drained: resends must fit its path too)
    asked = [(s, d) for at, s, d in got if at > end - 0.5]
    assert len(asked) >= 20
    for i, (s, d) in enumerate(asked):
        out = router.on_datagram(SHARED, serialize([Nack(ssrc, ssrc, [s])]), GATED, end + 0.4 + 0.02 * i)
        assert [r for key, r, addr in out if key == SHARED and addr == GATED] == [d]


def _rtc_gated_run(remb_bps: int, with_l3_player: bool) -> tuple[list[int], dict]:
    """(the timestamps of what the gated player got, its budget's counters)"""
    ids = count(0x1000)
    router = Router(MediaSettings(l3_min_delay=0.1, l3_max_delay=0.1, l3_late_repair=False),
                    new_ssrc=lambda: next(ids))
    (video,) = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96),))
    ssrc = router.add_player(1, "s1", "gated", {"video": GATED}, l3=False)[0]["video"]
    if with_l3_player:  # the track then takes every packet into its L3 timeline: each comes to Python
        router.add_player(1, "s1", "l3", {"video": SILENT}, l3=True)
    track = router.track(video)
    got: list[int] = []

    def take(out) -> None:
        got.extend(fields(d)[2] for key, d, addr in out if key == SHARED and addr == GATED and d[1] & 0x7F == 96)

    seq, droppable = 0, b"\x30" + VP8_DELTA[1:]
    for f in range(150):
        now = f / 30
        if f == 5:
            router.on_datagram(SHARED, rtcp_rr(ssrc), GATED, now)
            router.on_datagram(SHARED, serialize([Remb(ssrc, remb_bps, [ssrc])]), GATED, now)
        first = VP8_KEY if f % 60 == 0 else droppable if f % 2 else VP8_DELTA
        n = 2 + f % 3  # frames of unequal sizes: the budget's guess (the last frame's size) is often wrong
        for k in range(n):
            head = first if k == 0 else b"\x20" if first is droppable else b"\x00"
            datagram = rtp(seq, 3000 * f, 7, head + BODY[:600 + 100 * k], marker=k == n - 1)
            take(router.on_datagram(video, datagram, PUB, now + 0.002 * k))
            seq += 1
        while (t := router.next_timer()) is not None and t <= now + 0.01:
            take(router.on_timer(t))
        take(track.fast.take_out())
    (gated,) = [p for p in track.players if p.ssrc == ssrc]
    assert gated.gated
    return got, dict(gated.path.budget.counters)


@pytest.mark.parametrize("remb_bps", [300_000, 500_000])
def test_an_rtc_gate_decides_as_the_python_path_does(remb_bps) -> None:
    """A gated RTC player's budget judges each frame at its first packet with the last frame's size
    and queues the rest of the frame as it goes (`PlayerTrack.admit`). Behind a gate the rest goes
    from the fast path, unseen by Python, and the track queues it from the ring at the next packet
    it sees (`PublisherTrack._account_frame`), without pulling the player (module rules: lazy
    pulls). The same stream with an L3 player on the track brings every packet to Python, where
    the gated player is served packet by packet: its budget must take the same decisions, frame
    for frame. (Before the track's accounting, it did not: 163 packets against 208 at 300 kbit/s.)"""
    table, table_counters = _rtc_gated_run(remb_bps, with_l3_player=False)
    python, python_counters = _rtc_gated_run(remb_bps, with_l3_player=True)
    assert table_counters["dropped_droppable"] + table_counters["dropped_skip"] > 0  # a path that drops
    assert table == python
    assert table_counters == python_counters


@pytest.mark.parametrize("mode", ["rtc", "l3"])
def test_many_gated_players_are_pulled_in_slices_each_within_the_interval(mode) -> None:
    """Gated players are pulled a slice at a time (sfu/media/track.py, "Lazy pulls": GATED_PULL_SLICES
    a GATED_PULL_INTERVAL), not all at once: yet what Python knows of each (its count of packets
    sent) is never staler than the interval, give or take one slice's period."""
    ids = count(0x1000)
    router = Router(MediaSettings(l3_min_delay=0.1, l3_max_delay=0.1, l3_late_repair=False),
                    new_ssrc=lambda: next(ids))
    (video,) = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96),))
    track = router.track(video)
    addrs = [("127.0.0.1", 7100 + i) for i in range(25)]
    ssrcs = [router.add_player(1, "s1", f"p{i}", {"video": a}, l3=mode == "l3")[0]["video"] for i, a in enumerate(addrs)]
    sent: dict[tuple, list[float]] = {a: [] for a in addrs}  # when each was sent a packet
    worst = 0.0
    seq = 0
    last_known: dict[int, int] = {}
    pulled_at: dict[int, float] = {}  # when Python's view of each last moved
    for f in range(150):  # 5 s at 30 frames/s, 3 packets a frame
        now = f / 30
        if f == 3:
            for ssrc, addr in zip(ssrcs, addrs):
                router.on_datagram(SHARED, rtcp_rr(ssrc), addr, now)  # measured: gated
        out = []
        for k in range(3):
            out += router.on_datagram(video, rtp(seq, 3000 * f, 7, (VP8_KEY if f % 60 == 0 else VP8_DELTA) + BODY,
                                                 marker=k == 2), PUB, now)
            seq += 1
        while (t := router.next_timer()) is not None and t <= now:
            out += router.on_timer(t)
        out += track.fast.take_out()
        for key, d, addr in out:
            if key == SHARED and addr in sent and d[1] & 0x7F == 96:
                sent[addr].append(now)
        if f >= 60:  # gated and steady: how stale is Python's view of each?
            for p in track.players:
                known = p.packets_sent
                if known != last_known.get(p.ssrc):
                    last_known[p.ssrc], pulled_at[p.ssrc] = known, now
                stale = now - sent[p.addr][known] if known < len(sent[p.addr]) else 0.0  # its oldest unknown
                worst = max(worst, stale)
    assert all(p.gated and p.fast for p in track.players)
    assert 0.0 < worst <= 1.0 + 0.1 + 1 / 30  # (0: never stale would mean a pull at every frame)
    assert len(set(pulled_at.values())) >= 8  # in slices: not all at one instant
