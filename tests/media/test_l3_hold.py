"""Held packets (sfu/media/track.py, "Held packets"): while a track's players are all L3 ones, the fast
path keeps the next packets of the newest frame and the track feeds them to the jitter buffer later.
That must change nothing: the same run with holding and with it off sends the same datagrams in the
same order and ends with the same counters, with either fast path, while far fewer packets reach
Python one by one. (SDK publisher → seeded uplink loss and reordering → node → SDK L3 players, on a
virtual clock: tests/media/test_l3_under_loss.py's scenario.)"""

import hashlib
import random
import socket
import struct

import pytest

from sfu.media import _fastpath_c, _fastpath_py, router, track
from sfu.media.router import Router, TrackSpec
from tests.media.recording import record_outputs
from tests.media.rtp import rtp
from tests.media.test_l3_under_loss import run

L3_ONLY = (("l3a", True), ("l3b", True), ("l3c", True))


def outputs(monkeypatch, fast_track, hold: bool, **scenario) -> tuple:
    monkeypatch.setattr(track, "FastTrack", fast_track)
    monkeypatch.setattr(router.secrets, "randbits", random.Random(7).getrandbits)  # the same SSRCs each run
    if not hold:
        monkeypatch.setattr(track.PublisherTrack, "_set_hold", lambda self: None)  # hold stays 0
    recorded, slow = record_outputs(monkeypatch), 0
    on_rtp = track.PublisherTrack.on_rtp

    def rtp(self, now):
        nonlocal slow
        slow += 1
        return on_rtp(self, now)

    monkeypatch.setattr(track.PublisherTrack, "on_rtp", rtp)
    result = run(**scenario, roles=L3_ONLY)
    (r,) = recorded.routers
    totals = r.totals()
    (t,) = r.tracks()
    state = (t.counters, t.jitter.counters, t.nack.counters, t.requester.counters, t.rtt.counters, t.jitter.target_delay,
             r.counters, r.dropped, totals)
    monkeypatch.undo()
    return (result, recorded.count, recorded.digest, repr(state)), slow


@pytest.mark.parametrize("fast_track", [_fastpath_py.FastTrack, _fastpath_c.FastTrack], ids=["py", "c"])
@pytest.mark.parametrize("scenario", [dict(seed=1, loss=0.05, jitter=0.0),  # lost packets, no reordering
                                      dict(seed=2, loss=0.05, jitter=0.0, feedback=False),  # unmeasured: the fast table
                                      dict(seed=3, loss=0.02, jitter=0.004)],  # reordered too
                         ids=["loss", "loss-unmeasured", "loss-reorder"])
def test_holding_packets_for_the_jitter_buffer_changes_nothing(monkeypatch, fast_track, scenario):
    held, slow_held = outputs(monkeypatch, fast_track, True, **scenario)
    plain, slow_plain = outputs(monkeypatch, fast_track, False, **scenario)
    assert held[1] > 1000  # the run really sent things
    assert held == plain
    assert slow_held < 0.9 * slow_plain, (slow_held, slow_plain)  # and packets really were held


class QueuedSocket:
    """A publisher socket for the reference `pump`: datagrams queued with the kernel time they arrived."""

    def __init__(self) -> None:
        self.queue: list[tuple[bytes, float]] = []

    def recvmsg(self, size, ancillary_size):
        if not self.queue:
            raise BlockingIOError
        data, stamp = self.queue.pop(0)
        sec = int(stamp)
        return data, [(socket.SOL_SOCKET, _fastpath_py.SO_TIMESTAMPNS, struct.pack("@qq", sec, round((stamp - sec) * 1e9)))], \
            0, ("127.0.0.1", 5000)


def pumped(monkeypatch, hold: bool) -> tuple:
    """VP8 frames of 1-6 packets 4 ms apart at 30 fps (3 % come 40-80 ms late, as retransmissions do),
    read by `Router.pump` when the node gets round to it (up to 40 ms after they arrived), timers at their
    deadlines; each output with the time it was sent."""
    monkeypatch.setattr(track, "FastTrack", _fastpath_py.FastTrack)
    loop = [0.0]  # the loop's clock; the kernel's (wall) clock is 1000 s ahead of it
    monkeypatch.setattr(_fastpath_py.time, "clock_gettime_ns", lambda clock: round((loop[0] + 1000.0) * 1e9))
    if not hold:
        monkeypatch.setattr(track.PublisherTrack, "_set_hold", lambda self: None)
    rng = random.Random(5)
    r = Router(new_ssrc=iter(range(1, 1000)).__next__)
    (tid,) = r.add_publisher(1, "s", (TrackSpec("video", "VP8", 96),))
    for i in range(3):
        r.add_player(1, "s", f"p{i}", {"video": ("127.0.0.1", 7000 + i)}, l3=True)
    arrivals, seq = [], 100
    for frame in range(300):  # a keyframe every 60 frames, each frame's first packet starts it
        count = rng.randint(1, 6)
        for i in range(count):
            payload = (b"\x10\x10\x00\x00\x9d\x01\x2a\x40\x01\xf0\x00" if frame % 60 == 0 else b"\x10\x11\x00\x00") \
                if i == 0 else b"\x00"
            at = frame / 30 + i * 0.004 + (rng.uniform(0.04, 0.08) if rng.random() < 0.03 else 0.0)
            arrivals.append((at, rtp(seq & 0xFFFF, frame * 3000, 0x77, payload + bytes(40), marker=i == count - 1)))
            seq += 1
    arrivals.sort(key=lambda a: a[0])
    sock, digest, sent = QueuedSocket(), hashlib.sha256(), 0

    def send(out, now):
        nonlocal sent
        for key, data, addr in out:
            digest.update(repr((round(now, 9), key, addr)).encode() + data)
            sent += 1

    next_read = 0.0
    while arrivals or sock.queue:
        due = r.next_timer()
        now = min(t for t in (arrivals[0][0] if arrivals else None, next_read, due) if t is not None)
        if due is not None and due <= now:
            send(r.on_timer(due), due)
        elif arrivals and arrivals[0][0] <= now:
            sock.queue.append((arrivals.pop(0)[1], 1000.0 + now))
        else:  # the node gets round to the socket: whatever waited there, read now
            loop[0] = now
            r.pump(tid, sock, now, lambda out: send(out, now))
            next_read = now + rng.choice([0.001, 0.005, 0.02, 0.04])
    while (due := r.next_timer()) is not None:
        send(r.on_timer(due), due)
    (t,) = r.tracks()
    state = (t.jitter.counters, list(t.jitter.needed_delays), t.jitter.target_delay, t.nack.counters, r.totals())
    return sent, digest.hexdigest(), repr(state)


def test_held_packets_go_to_the_jitter_buffer_at_the_time_pump_read_them(monkeypatch):
    """Through `pump`, a packet's arrival (the kernel's) is earlier than the time the track is told (the
    read): a held packet reaches the jitter buffer with its read time, as if the track had seen it."""
    held = pumped(monkeypatch, True)
    monkeypatch.undo()
    plain = pumped(monkeypatch, False)
    assert held[0] > 2000 and held == plain


def test_the_fast_path_holds_only_what_the_jitter_buffer_has_room_for_in_the_newest_frame():
    r = Router(new_ssrc=iter(range(1, 1000)).__next__)
    (tid,) = r.add_publisher(1, "s", (TrackSpec("video", "VP8", 96),))
    r.add_player(1, "s", "a", {"video": ("127.0.0.1", 7000)}, l3=True)
    t = r.track(tid)
    key = b"\x10\x10\x00\x00\x9d\x01\x2a\x40\x01\xf0\x00" + bytes(40)
    r.on_datagram(tid, rtp(1, 3000, 0x77, key, marker=False), ("127.0.0.1", 5000), 0.0)
    assert t.fast.hold == t.jitter.room(3000) == t.jitter.max_packets - 1 > 0  # the newest frame is pending
    r.on_datagram(tid, rtp(2, 3000, 0x77, b"\x00" + bytes(40)), ("127.0.0.1", 5000), 0.001)  # held
    assert t.jitter.counters["packets"] == 1  # waiting in the fast path (which counts it against hold)
    r.on_timer(r.next_timer())  # fed first, then released: no frame of that timestamp pending any more
    assert t.jitter.counters["packets"] == 2 and t.jitter.counters["frames_released"] == 1
    assert t.jitter.room(3000) == 0 and t.fast.hold == 0
    r.on_datagram(tid, rtp(3, 6000, 0x77, b"\x10\x11\x00\x00" + bytes(40)), ("127.0.0.1", 5000), 0.04)
    assert t.fast.hold > 0
    r.add_player(1, "s", "rtc", {"video": ("127.0.0.1", 7001)})  # an RTC player wants every packet here
    assert t.fast.hold == 0


def test_the_next_packets_of_a_frame_the_jitter_buffer_never_saw_are_not_held():
    """The newest frame began before the L3 timeline did (no keyframe in the ring to seed it with): its
    next packet starts a frame in the jitter buffer (and its release timer), so it cannot wait."""
    r = Router(new_ssrc=iter(range(1, 1000)).__next__)
    (tid,) = r.add_publisher(1, "s", (TrackSpec("video", "VP8", 96),))
    r.on_datagram(tid, rtp(1, 3000, 0x77, b"\x10\x11\x00\x00" + bytes(40), marker=False), ("127.0.0.1", 5000), 0.0)
    r.add_player(1, "s", "a", {"video": ("127.0.0.1", 7000)}, l3=True, now=0.001)
    t = r.track(tid)
    assert t.fast.hold == 0
    r.on_datagram(tid, rtp(2, 3000, 0x77, b"\x00" + bytes(40)), ("127.0.0.1", 5000), 0.002)
    assert t.jitter.counters["packets"] == 1 and t.jitter.next_timer() is not None  # a frame, and its timer
