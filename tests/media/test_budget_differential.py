"""The compiled LatencyBudget (native/budget.pyx) against the reference (sfu/media/_budget_py.py):
identical random inputs into both, identical outputs and state required, exactly (the same
arithmetic on the same doubles)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.media import _budget_c, _budget_py, budget

KINDS = st.sampled_from(["audio", "video"])
TIMES = st.floats(-0.05, 0.3)  # steps of the clock (sometimes backwards)
SIZES = st.one_of(st.integers(-100, 120_000), st.floats(-10.0, 60_000.0))
RATES = st.one_of(st.floats(-1000.0, 8_000_000.0), st.sampled_from([0, 1, 300_000, 800_000]))

# offers the size of a share of a second at their rate, so that the queue lives near the limits
SHARES = st.floats(0.0, 0.2)
OPS = st.one_of(
    st.tuples(st.just("offer"), KINDS, st.booleans(), st.booleans(), SIZES, st.floats(-0.1, 0.6), TIMES, RATES),
    st.tuples(st.just("offer_share"), KINDS, st.booleans(), st.booleans(), SHARES, st.floats(0.0, 0.3),
              st.floats(0.0, 0.1), st.sampled_from([300_000.0, 1_000_000.0, 2_500_000.0])),
    st.tuples(st.just("add_bytes"), KINDS, SIZES, TIMES),
    st.tuples(st.just("offer_resend"), SIZES, TIMES),
    st.tuples(st.just("on_time"), TIMES),
    st.tuples(st.just("set_path_delay"), st.one_of(st.none(), st.floats(-0.1, 0.5))),
    st.tuples(st.just("allow_keyframe_request"), TIMES),
    st.tuples(st.just("take_keyframe_needed"),),
)
CONFIGS = st.tuples(st.floats(0.1, 1.0), st.floats(0.0, 0.09), st.floats(0.05, 1.0), st.floats(0.0, 2.0),
                    st.floats(0.0, 3.0))


def state(b) -> tuple:
    return (b.queued_bytes, b.skipping, b.last_delay, b.path_delay, b.queue_delay(), b.counters, b.budget_s,
            b.video_limit, b.droppable_limit, b.request_interval_s, b.rerequest_s)


def apply(b, op: tuple, now: float) -> tuple[object, float]:
    name = op[0]
    if name in ("offer", "offer_share"):
        _, kind, keyframe, droppable, size, age, step, rate = op
        if name == "offer_share":
            size = round(size * rate / 8)
        now += step
        return b.offer(kind, keyframe, droppable, size, now - age, now, rate), now
    if name == "add_bytes":
        _, kind, size, step = op
        now += step
        return b.add_bytes(kind, size, now), now
    if name == "offer_resend":
        _, size, step = op
        now += step
        return b.offer_resend(size, now), now
    if name in ("on_time", "allow_keyframe_request"):
        now += op[1]
        return getattr(b, name)(now), now
    if name == "set_path_delay":
        return b.set_path_delay(op[1]), now
    return b.take_keyframe_needed(), now


@settings(max_examples=400, deadline=None)
@given(CONFIGS, st.lists(OPS, max_size=300))
def test_the_compiled_budget_decides_as_the_reference(config, ops) -> None:
    budget_s, reserve, droppable_at, interval, rerequest = config
    kwargs = dict(audio_reserve_s=reserve, droppable_at=droppable_at, request_interval_s=interval,
                  rerequest_s=rerequest)
    py, c = _budget_py.LatencyBudget(budget_s, **kwargs), _budget_c.LatencyBudget(budget_s, **kwargs)
    assert state(c) == state(py)
    now_py = now_c = 0.0
    for op in ops:
        out_py, now_py = apply(py, op, now_py)
        out_c, now_c = apply(c, op, now_c)
        assert out_c == out_py and type(out_c) is type(out_py), op
        assert state(c) == state(py), op


@pytest.mark.parametrize("kwargs", [dict(audio_reserve_s=0.5), dict(audio_reserve_s=-0.1), dict(droppable_at=0.0),
                                    dict(droppable_at=1.5), dict(audio_reserve_s=math.nan)])
def test_both_refuse_the_same_configurations(kwargs) -> None:
    for impl in (_budget_py.LatencyBudget, _budget_c.LatencyBudget):
        with pytest.raises(ValueError):
            impl(0.4, **kwargs)


def test_both_refuse_an_unknown_frame_kind() -> None:
    for impl in (_budget_py.LatencyBudget, _budget_c.LatencyBudget):
        b = impl()
        for bad in ("data", None, 3):
            with pytest.raises(ValueError, match="frame_kind"):
                b.offer(bad, False, False, 10, 0.0, 0.0, 1e6)
            with pytest.raises(ValueError, match="frame_kind"):
                b.add_bytes(bad, 10, 0.0)


def test_the_selector_takes_the_compiled_one_unless_told() -> None:
    # a broken build must fail here, not fall back quietly (tests/rtp/test_extension_loaded.py: the same
    # for the RTP header)
    forced = os.environ.get("SFU_NO_EXTENSIONS", "") not in ("", "0")
    assert budget.IMPLEMENTATION == ("py" if forced else "c")
    assert budget.LatencyBudget is (_budget_py if forced else _budget_c).LatencyBudget
    assert budget.Decision is _budget_py.Decision
    env = {k: v for k, v in os.environ.items() if k != "SFU_NO_EXTENSIONS"}
    code = "import sfu.media.budget as b; print(b.IMPLEMENTATION)"
    for value, expected in ((None, "c"), ("0", "c"), ("1", "py")):
        run_env = env if value is None else {**env, "SFU_NO_EXTENSIONS": value}
        run = subprocess.run([sys.executable, "-c", code], env=run_env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0 and run.stdout.strip() == expected, run.stderr
    missing = subprocess.run([sys.executable, "-c", "import sys; sys.modules['sfu.media._budget_c'] = None; " + code],
                             env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "SFU_NO_EXTENSIONS=1" in missing.stderr


# A stream like a publisher's (30 fps video with keyframes, 50 fps audio, retransmissions, the
# player's own keyframe requests) into a path whose rate changes: the budget spends its time near
# its limits, skipping and asking for keyframes, which random single operations rarely reach.
SEGMENTS = st.lists(st.tuples(st.floats(0.2, 3.0), st.sampled_from([150_000, 400_000, 700_000, 1_200_000, 3_000_000])),
                    min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(CONFIGS, SEGMENTS, st.integers(2, 8), st.integers(10, 90), st.floats(0.0, 0.15), st.floats(0.0, 0.3),
       st.randoms(use_true_random=False))
def test_the_compiled_budget_follows_a_congested_stream_as_the_reference(
        config, segments, droppable_every, gop, age, answer_delay, rnd) -> None:
    budget_s, reserve, droppable_at, interval, rerequest = config
    kwargs = dict(audio_reserve_s=reserve, droppable_at=droppable_at, request_interval_s=interval,
                  rerequest_s=rerequest)
    py, c = _budget_py.LatencyBudget(budget_s, **kwargs), _budget_c.LatencyBudget(budget_s, **kwargs)
    events = []
    start = 0.0
    for seconds, rate in segments:
        events += [(start + i / 30, "video", rate) for i in range(int(seconds * 30))]
        events += [(start + i / 50, "audio", rate) for i in range(int(seconds * 50))]
        start += seconds
    events.sort(key=lambda e: (e[0], e[1]))
    next_key, since_key = 0.0, 0
    for now, kind, rate in events:
        delta = round(700_000 / 8 / 30 * rnd.uniform(0.5, 1.5))
        if kind == "audio":
            args = ("audio", True, False, 160, now - age, now, rate)
        else:
            keyframe = now >= next_key
            if keyframe:
                next_key, since_key = now + gop / 30, 0
            since_key += 1
            args = ("video", keyframe, since_key % droppable_every == 0, delta * (5 if keyframe else 1), now - age, now,
                    rate * rnd.uniform(0.8, 1.2))
        assert c.offer(*args) is py.offer(*args)
        extra = rnd.random()
        if extra < 0.15:
            assert c.offer_resend(1200, now) == py.offer_resend(1200, now)
        elif extra < 0.3:
            c.add_bytes(kind, 1100, now)
            py.add_bytes(kind, 1100, now)
        elif extra < 0.33:
            assert c.allow_keyframe_request(now) == py.allow_keyframe_request(now)
        elif extra < 0.36:
            d = rnd.choice([None, 0.0, 0.05, 0.2])
            c.set_path_delay(d)
            py.set_path_delay(d)
        needed = c.take_keyframe_needed()
        assert needed == py.take_keyframe_needed()
        if needed:
            next_key = min(next_key, now + answer_delay)
        assert state(c) == state(py)
