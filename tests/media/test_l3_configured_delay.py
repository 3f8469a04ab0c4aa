"""The node's [l3] config bounds the L3 target delay: min_delay = max_delay holds every frame for
exactly that long after its first packet arrived, whatever the jitter (the Router of a Node built
from the config, sans-IO on a virtual clock)."""

import random

import pytest

from sfu.config import config_from_dict
from sfu.media.router import SHARED, TrackSpec
from sfu.node import Node
from tests.media.rtp import VP8_DELTA, VP8_KEY, fields, rtp

PUB = ("127.0.0.1", 5000)
L3A, L3B = ("127.0.0.1", 6001), ("127.0.0.1", 6002)
VP8_MORE = b"\x00" + b"continued"  # a VP8 packet that does not start a frame
APP = {"app_id": 7, "secret": "0123456789abcdef0123456789abcdef"}


def releases(router, video, seed):
    """60 frames of 3 packets at 30 fps, each frame delayed by U(0, 30 ms) on the uplink (in order).
    Returns (timestamp -> first packet's arrival, [(timestamp, destination, release instant)])."""
    rng = random.Random(seed)
    first_arrival: dict[int, float] = {}
    arrivals = []
    seq = 0
    for i in range(60):
        ts = 3000 * i
        delay = rng.uniform(0, 0.030)
        for k in range(3):
            payload = (VP8_KEY if i == 0 else VP8_DELTA) if k == 0 else VP8_MORE
            at = i / 30 + 0.001 * k + delay
            if arrivals:
                at = max(at, arrivals[-1][0])  # one path: in order
            arrivals.append((at, rtp(seq, ts, 7, payload, marker=k == 2)))
            first_arrival.setdefault(ts, at)
            seq += 1
    out = []

    def timers(until):
        while (t := router.next_timer()) is not None and t <= until:
            out.extend((fields(d)[2], addr, t) for key, d, addr in router.on_timer(t) if key == SHARED)

    for at, data in arrivals:
        timers(at)
        out.extend((fields(d)[2], addr, at) for key, d, addr in router.on_datagram(video, data, PUB, at)
                   if key == SHARED)
    timers(10.0)
    return first_arrival, out


def node_router(l3: dict | None):
    raw = {"apps": [APP], "node": {"rtp_ports": "40000-40009"}}
    if l3 is not None:
        raw["l3"] = l3
    router = Node(config_from_dict(raw)).router
    (video,) = router.add_publisher(7, "s1", (TrackSpec("video", "VP8", 96),))
    router.add_player(7, "s1", "a", {"video": L3A}, l3=True)
    router.add_player(7, "s1", "b", {"video": L3B}, l3=True)
    return router, video


@pytest.mark.parametrize("hold", [0.04, 0.1, 0.25])
def test_a_fixed_l3_delay_from_the_config_holds_every_frame_exactly_that_long(hold):
    router, video = node_router({"min_delay": hold, "max_delay": hold})
    first_arrival, out = releases(router, video, seed=1)
    released: dict[int, set[float]] = {}
    for ts, addr, t in out:
        assert addr in (L3A, L3B)
        released.setdefault(ts, set()).add(t)
    assert set(released) == set(first_arrival)  # every frame, to both players
    assert sum(1 for ts, _, _ in out) == 2 * 3 * 60
    for ts, instants in released.items():
        (t,) = instants  # all its packets, to both players, at one instant
        assert t == pytest.approx(first_arrival[ts] + hold, abs=1e-9), ts


def test_without_the_section_the_delay_adapts_within_the_defaults():
    router, video = node_router(None)
    first_arrival, out = releases(router, video, seed=1)
    held = {round(t - first_arrival[ts], 9) for ts, _, t in out}
    assert len(held) > 1  # not one fixed hold: the target follows the jitter
    assert all(0.02 - 1e-9 <= h <= 0.35 + 1e-9 for h in held)
