"""SDK publisher → node → SDK players, with 5% random loss on the publisher's uplink, on a virtual clock.

Every part is the real one (the SDK's sans-IO publisher and player tracks, the node's Router, the
seeded NetEm between them); only the clock is virtual and the frames are synthetic VP8 (a real
keyframe header, random bytes behind it), so the run is exact and repeatable.
"""

import random

import pytest

from sfu.client.media.player_track import PlayerTrack as SdkPlayer
from sfu.client.media.publisher_track import PublisherTrack as SdkPublisher
from sfu.media.codecs import Codec
from sfu.media.netem import NetEm
from sfu.media.router import SHARED, Router, TrackSpec

PUB = ("127.0.0.1", 5000)
FPS, SECONDS, GOP = 30, 10, 60


def vp8_frame(rng: random.Random, key: bool) -> bytes:
    size = rng.randint(6000, 9000) if key else rng.randint(1500, 3500)
    if key:  # frame tag (P=0: key, show_frame), start code, 640x360
        return bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01]) + rng.randbytes(size)
    return bytes([0x11, 0x02, 0x00]) + rng.randbytes(size)


ROLES = (("l3a", True), ("l3b", True), ("rtc", False))


def run(seed: int, loss: float, jitter: float, roles: tuple = ROLES, feedback: bool = True):
    """`roles`: (player name, is L3); without `feedback` the players send no RTCP (their paths stay unmeasured)."""
    rng = random.Random(seed)
    router = Router()
    (video,) = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96),))
    uplink = NetEm(seed, loss=loss, delay=0.010, jitter=jitter)
    publisher = SdkPublisher(Codec.VP8, 96, ssrc=0x1234)
    players = {}
    for name, l3 in roles:
        addr = ("127.0.0.1", 6000 + len(players))
        ssrcs, _ = router.add_player(1, "s1", name, {"video": addr}, l3=l3)
        players[addr] = (name, SdkPlayer("video", ssrcs["video"], Codec.VP8))
    now, frame_no, frames_sent = 0.0, 0, 0
    end = SECONDS + 2.0
    while now < end:
        candidates = [frame_no / FPS if frame_no < FPS * SECONDS else None, uplink.next_timer(), router.next_timer()]
        candidates += [p.next_timer() for _, p in players.values()]
        now = min(t for t in candidates if t is not None) if any(c is not None for c in candidates) else end
        if now >= end:
            break
        if frame_no < FPS * SECONDS and frame_no / FPS <= now:
            key = frame_no % GOP == 0 or publisher.take_keyframe_request()  # as the SDK's encoder does on PLI
            for packet in publisher.send_frame(vp8_frame(rng, key), frame_no * 3000, now):
                uplink.send(packet, now)
            frame_no += 1
            frames_sent += 1
        outs = []
        for packet in uplink.poll(now):
            outs += router.on_datagram(video, packet, PUB, now)
        if (t := router.next_timer()) is not None and t <= now:
            outs += router.on_timer(now)
        for _, player in players.values():
            if (t := player.next_timer()) is not None and t <= now:
                player.poll(now, 1.8e9 + now)
        while outs:
            key, data, addr = outs.pop(0)
            if key == video:  # feedback toward the publisher: answered over the lossy uplink
                for packet in publisher.on_rtcp(data, now):
                    uplink.send(packet, now)
            else:
                players[addr][1].on_datagram(data, now, 1.8e9 + now)
        for addr, (_, player) in players.items():
            for rtcp in player.take_rtcp() if feedback else ():
                outs += router.on_datagram(SHARED, rtcp, addr, now)
        for key, data, addr in outs:
            if key == video:
                for packet in publisher.on_rtcp(data, now):
                    uplink.send(packet, now)
            else:
                players[addr][1].on_datagram(data, now, 1.8e9 + now)
    results = {name: player.frames_complete for name, player in players.values()}
    return frames_sent, results, uplink.counters


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_l3_players_get_at_least_99_percent_of_frames_complete_at_5_percent_uplink_loss(seed):
    sent, complete, netem = run(seed, loss=0.05, jitter=0.005)
    assert netem["lost"] > 0.03 * netem["sent"]  # the loss really happened
    for name in ("l3a", "l3b"):
        assert complete[name] >= 0.99 * sent, (name, complete, sent, netem)
    assert complete["l3a"] == complete["l3b"]  # one repair for both, the same frames released


def test_clean_uplink_delivers_every_frame_to_every_player():
    sent, complete, _ = run(7, loss=0.0, jitter=0.0)
    assert complete == {"l3a": sent, "l3b": sent, "rtc": sent}
