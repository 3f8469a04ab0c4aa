"""The Router with the compiled FastTrack and with the Python reference, on the same run: every
datagram it sends must be the same, in the same order (SDK publisher → 5% loss → node → SDK
players, RTC and L3, on a virtual clock; tests/media/test_l3_under_loss.py's scenario)."""

import hashlib
import random

import pytest

from sfu.media import _fastpath_c, _fastpath_py, router, track
from tests.media.test_l3_under_loss import run


def outputs(monkeypatch, fast_track) -> tuple:
    monkeypatch.setattr(track, "FastTrack", fast_track)
    monkeypatch.setattr(router.secrets, "randbits", random.Random(7).getrandbits)  # the same SSRCs both times
    digest = hashlib.sha256()
    count = 0
    on_datagram, on_timer = router.Router.on_datagram, router.Router.on_timer

    def record(out):
        nonlocal count
        for key, data, addr in out:
            digest.update(repr((key, addr)).encode() + data)
            count += 1
        return out

    monkeypatch.setattr(router.Router, "on_datagram", lambda self, *a: record(on_datagram(self, *a)))
    monkeypatch.setattr(router.Router, "on_timer", lambda self, *a: record(on_timer(self, *a)))
    result = run(2, loss=0.05, jitter=0.005)
    monkeypatch.undo()
    return result, count, digest.hexdigest()


def test_the_router_sends_the_same_datagrams_with_either_fast_path(monkeypatch):
    py = outputs(monkeypatch, _fastpath_py.FastTrack)
    c = outputs(monkeypatch, _fastpath_c.FastTrack)
    assert py[1] > 1000  # the run really sent things
    assert py == c
