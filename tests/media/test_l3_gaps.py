"""Gaps in the L3 timeline (sfu/media/track.py, `_l3_send`): when the jitter buffer drops a frame, the
fast table's L3 players get the next released frame from the fast path, which closes the gap in their
numbering (`send_frame(..., skip)`), and the track logs the gap for their rewriters (`skip_gaps`).
That must send every L3 player exactly what Python sends when it handles each frame for each player
itself (every L3 player kept out of the fast table), with the table reloaded from the rewriters now
and then (a reload after a wrong catch-up would renumber). SDK publisher → heavy seeded uplink loss →
node → SDK L3 players, on a virtual clock: tests/media/test_l3_under_loss.py's scenario."""

import random
from collections import defaultdict

import pytest

from sfu.media import _fastpath_c, _fastpath_py, router, track
from tests.media.test_l3_under_loss import run

L3_ONLY = (("l3a", True), ("l3b", True), ("l3c", True))


def outputs(monkeypatch, fast_track, fast_table: bool, seed: int) -> tuple:
    monkeypatch.setattr(track, "FastTrack", fast_track)
    monkeypatch.setattr(router.secrets, "randbits", random.Random(7).getrandbits)  # the same SSRCs each run
    if not fast_table:
        fast_mode = track.PublisherTrack._fast_mode
        monkeypatch.setattr(track.PublisherTrack, "_fast_mode", lambda self, p: 0 if p.l3 else fast_mode(self, p))
    per_player: dict = defaultdict(list)
    routers, timers, fast_frames = [], [0], [0]
    on_datagram, on_timer = router.Router.on_datagram, router.Router.on_timer
    send_frame = track.PublisherTrack._l3_send

    def record(out):
        for key, data, addr in out:
            per_player[addr].append(data)
        return out

    def datagram(self, *a):
        if self not in routers:
            routers.append(self)
        return record(on_datagram(self, *a))

    def timer(self, *a):
        timers[0] += 1
        if timers[0] % 7 == 0:
            for t in self.tracks():
                t._push()  # reload the table from the rewriters: must change nothing
        return record(on_timer(self, *a))

    def l3_send(self, frame, now, more=False):
        fast_frames[0] += bool(self._l3) and not self._l3_python
        return send_frame(self, frame, now, more)

    monkeypatch.setattr(router.Router, "on_datagram", datagram)
    monkeypatch.setattr(router.Router, "on_timer", timer)
    monkeypatch.setattr(track.PublisherTrack, "_l3_send", l3_send)
    result = run(seed, loss=0.25, jitter=0.0, roles=L3_ONLY, feedback=False)  # unmeasured paths: the fast table
    (r,) = routers
    (t,) = r.tracks()
    dropped = t.jitter.counters["frames_dropped_incomplete"] + t.jitter.counters["frames_dropped_dependency"]
    monkeypatch.undo()
    return (result, dict(per_player), t.jitter.counters["frames_released"]), dropped, fast_frames[0]


@pytest.mark.parametrize("fast_track", [_fastpath_py.FastTrack, _fastpath_c.FastTrack], ids=["py", "c"])
@pytest.mark.parametrize("seed", [1, 2])
def test_fast_l3_players_skip_dropped_frames_as_python_players_do(monkeypatch, fast_track, seed):
    fast, dropped, fast_frames = outputs(monkeypatch, fast_track, True, seed)
    slow, _, slow_fast_frames = outputs(monkeypatch, fast_track, False, seed)
    assert dropped >= 10  # the timeline really had gaps
    assert fast_frames > 100 and slow_fast_frames == 0  # ... and each run sent the way it should
    assert sum(len(d) for d in fast[1].values()) > 1000
    assert fast == slow
