"""The Router with the compiled FastTrack and with the Python reference, on the same run: every
datagram it sends must be the same, in the same order (SDK publisher → 5% loss → node → SDK
players, RTC and L3, on a virtual clock; tests/media/test_l3_under_loss.py's scenario)."""

import random

from sfu.media import _fastpath_c, _fastpath_py, router, track
from tests.media.recording import record_outputs
from tests.media.test_l3_under_loss import run


def outputs(monkeypatch, fast_track) -> tuple:
    monkeypatch.setattr(track, "FastTrack", fast_track)
    monkeypatch.setattr(router.secrets, "randbits", random.Random(7).getrandbits)  # the same SSRCs both times
    recorded = record_outputs(monkeypatch)
    result = run(2, loss=0.05, jitter=0.005)
    monkeypatch.undo()
    return result, recorded.count, recorded.digest


def test_the_router_sends_the_same_datagrams_with_either_fast_path(monkeypatch):
    py = outputs(monkeypatch, _fastpath_py.FastTrack)
    c = outputs(monkeypatch, _fastpath_c.FastTrack)
    assert py[1] > 1000  # the run really sent things
    assert py == c
