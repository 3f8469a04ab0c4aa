"""SDK publisher → node → SDK players through bench/l3_qoe.py's hardest uplink, on a virtual clock:
5 % random loss and 30 ± 30 ms of delay (uniform: packets reorder), feedback back over 30 ms.

Every part is the real one (the SDK's sans-IO publisher and player tracks, the node's Router with
its default MediaSettings, seeded NetEms both ways); only the clock is virtual and the frames are
synthetic VP8 of the bench's sizes (keyframes ~10 kB, others ~3 kB: 3-9 packets). The figures of
bench/README.md that the node owns, checked where they are exact and repeatable: L3 players get
>= 99.5 % of the frames complete after the first 3 s (the bench's warm-up), every L3 player the
same frames at the same instants; the node measures the real round trip to the publisher and
does not NACK most packets that were only late.
"""

from __future__ import annotations

import random

import pytest

from sfu.client.media.player_track import PlayerTrack as SdkPlayer
from sfu.client.media.publisher_track import PublisherTrack as SdkPublisher
from sfu.media.codecs import Codec
from sfu.media.netem import NetEm
from sfu.media.router import SHARED, Router, TrackSpec

PUB = ("127.0.0.1", 5000)
FPS, SECONDS, GOP, WARMUP = 30, 20, 60, 3.0
WALL = 1.8e9


def vp8_frame(rng: random.Random, key: bool) -> bytes:
    size = rng.randint(9000, 12000) if key else rng.randint(2500, 4000)
    if key:  # frame tag (P=0: key, show_frame), start code, 640x360
        return bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01]) + rng.randbytes(size)
    return bytes([0x11, 0x02, 0x00]) + rng.randbytes(size)


def run(seed: int, up: dict, back: dict):
    rng = random.Random(seed)
    router = Router()
    (video,) = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96),))
    uplink, backlink = NetEm(seed, **up), NetEm(seed + 1000, **back)
    publisher = SdkPublisher(Codec.VP8, 96, ssrc=0x1234)
    players = {}
    for name, l3 in (("l3a", True), ("l3b", True), ("rtc", False)):
        addr = ("127.0.0.1", 6000 + len(players))
        ssrcs, _ = router.add_player(1, "s1", name, {"video": addr}, l3=l3)
        players[addr] = (name, SdkPlayer("video", ssrcs["video"], Codec.VP8))
    got: dict[str, dict[int, float]] = {name: {} for name, _ in players.values()}
    sent: dict[int, float] = {}  # RTP timestamp -> when the frame was sent
    now, frame_no, end = 0.0, 0, SECONDS + 2.0
    while True:
        times = [frame_no / FPS if frame_no < FPS * SECONDS else None, uplink.next_timer(), backlink.next_timer(),
                 router.next_timer(), *(p.next_timer() for _, p in players.values())]
        times = [t for t in times if t is not None]
        now = min(times) if times else end
        if now >= end:
            break
        if frame_no < FPS * SECONDS and frame_no / FPS <= now:
            key = frame_no % GOP == 0 or publisher.take_keyframe_request()  # as the SDK's encoder does on PLI
            sent[frame_no * 3000] = now
            for packet in publisher.send_frame(vp8_frame(rng, key), frame_no * 3000, now):
                uplink.send(packet, now)
            frame_no += 1
        outs = []
        for packet in uplink.poll(now):
            outs += router.on_datagram(video, packet, PUB, now)
        for packet in backlink.poll(now):  # feedback reaches the publisher; its answers ride the uplink
            for answer in publisher.on_rtcp(packet, now):
                uplink.send(answer, now)
        if (t := router.next_timer()) is not None and t <= now:
            outs += router.on_timer(now)
        for _, player in players.values():
            if (t := player.next_timer()) is not None and t <= now:
                player.poll(now, WALL + now)
        while outs:  # players' feedback is answered at once (their links are clean)
            more = []
            for key_, data, addr in outs:
                if key_ == video:
                    backlink.send(data, now)
                else:
                    players[addr][1].on_datagram(data, now, WALL + now)
            for addr, (name, player) in players.items():
                for rtcp in player.take_rtcp():
                    more += router.on_datagram(SHARED, rtcp, addr, now)
                for f in player.take_frames():
                    got[name][f.timestamp] = f.completed_at
            outs = more
    return router.tracks()[0], sent, got, uplink.counters


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_l3_keeps_995_per_mille_of_frames_complete_and_in_sync_at_5_percent_loss_and_30ms_jitter(seed):
    track, sent, got, uplink = run(seed, dict(loss=0.05, delay=0.030, jitter=0.030), dict(delay=0.030))
    assert uplink["lost"] > 0.04 * uplink["sent"]  # the loss really happened
    window = [ts for ts, t in sent.items() if t >= WARMUP]
    for name in ("l3a", "l3b"):
        complete = sum(ts in got[name] for ts in window)
        assert complete >= 0.995 * len(window), (name, complete, len(window), track.jitter.counters)
    # one timeline: both L3 players got the same frames at the same instants
    assert got["l3a"] == got["l3b"]
    # the repair the node did: the round trip it measured is the real one (30 + U(0, 60) ms, mean 60)...
    assert 0.045 <= track.rtt.srtt <= 0.075, track.rtt.stats()
    # ...and it waited out most reordering before asking: of the gaps that late packets filled,
    # most were filled before their NACK went (reordered), few after (twice: NACKed for nothing)
    nacked_late = track.rtt.counters["twice"]
    assert nacked_late < 3 * uplink["lost"], (track.rtt.stats(), uplink)
    assert track.nack.counters["reordered"] > 2 * nacked_late
    # and the repair it needs fits under the L3 bound (MediaSettings.l3_max_delay, which keeps the
    # end-to-end latency under 400 ms) without reaching it
    assert track.jitter.target_delay < track.jitter.max_delay


def test_a_clean_uplink_delivers_every_frame_with_a_short_target() -> None:
    track, sent, got, _ = run(7, {}, {})
    assert all(len(frames) == len(sent) for frames in got.values())
    assert track.nack.counters["nacked"] == 0
    assert track.jitter.target_delay < 0.15  # two assumed repair rounds and a margin, no more
