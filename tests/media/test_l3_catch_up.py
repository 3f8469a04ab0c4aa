"""An L3 node that fell behind releases several frames at once (sfu/media/track.py, `_release`): the
fast path's fan-out sends each player's datagrams of all of them together (one UDP GSO send a
player), and every released frame reaches every player at its release, not at some later flush,
alone or with others. A real Router whose fast path sends on loopback to real player sockets; the
clock is virtual (each frame is held exactly 0.1 s)."""

import struct

from sfu.media.router import Router, TrackSpec
from sfu.media.track import MediaSettings
from tests.media.loopback import player_sockets

PUB = ("127.0.0.2", 5000)
VP8_KEY = bytes([0x10, 0x00, 0x00, 0x00, 0x9D, 0x01, 0x2A])


def packet(seq: int) -> bytes:
    """A whole VP8 keyframe in one packet, its payload marked with its number."""
    return struct.pack("!BBHII", 0x80, 0x80 | 96, seq, 3000 * seq, 0x5EED) + VP8_KEY + bytes([seq]) * 1000


def test_frames_released_together_reach_every_player_together_and_at_once():
    # (what was released is on its way: a frame left queued never comes)
    with player_sockets(4, timeout=2) as (players, out):
        router = Router(MediaSettings(l3_min_delay=0.1, l3_max_delay=0.1))
        (tid,) = router.add_publisher(1, "s", (TrackSpec("video", "VP8", 96),))
        fast = router.track(tid).fast
        fast.output = out

        def send(outs):
            for _, data, addr in outs:  # (what Python sends itself: the timeline's first frame)
                out.sendto(data, addr)

        def release(now):
            while (due := router.next_timer()) is not None and due <= now:
                send(router.on_timer(now) + fast.take_out())

        def frames_received(count):
            return [[p.recv(2048)[-1] for _ in range(count)] for p in players]

        for i, p in enumerate(players):
            send(router.add_player(1, "s", f"p{i}", {"video": p.getsockname()}, l3=True)[1])
        send(router.on_datagram(tid, packet(0), PUB, 1.0))
        release(1.1)  # the first frame: the timeline starts
        send(router.on_datagram(tid, packet(1), PUB, 1.2))
        release(1.3)  # one frame alone, the one before it numbered 0
        assert frames_received(2) == [[0, 1]] * len(players)
        sends = fast.gso_sends
        for k, seq in enumerate(range(2, 6)):  # four frames, then all four due at once
            send(router.on_datagram(tid, packet(seq), PUB, 1.4 + 0.001 * k))
        release(1.6)
        assert frames_received(4) == [[2, 3, 4, 5]] * len(players)
        assert fast.gso_sends - sends == len(players)  # each player's four in one send
        for p in players:
            p.settimeout(0.05)
            try:
                extra = p.recv(2048)
            except TimeoutError:
                extra = None
            assert extra is None
