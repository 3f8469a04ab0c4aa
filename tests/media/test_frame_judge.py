"""FrameJudge: a player track's frame decisions on its path's budget, and the loops that judge a
track's gated players together (sfu/media/_budget_py.py), in both implementations; the compiled one
against the reference on identical random inputs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.media import _budget_c, _budget_py
from sfu.media.congestion import PlayerCongestion

IMPLS = {"py": _budget_py, "c": _budget_c}


@pytest.fixture(params=sorted(IMPLS))
def impl(request):
    return IMPLS[request.param]


def judge_on(impl, kind: str = "video", bps: float = 8_000_000, budget_s: float = 0.4):
    congestion = PlayerCongestion(start_bps=bps)
    return impl.FrameJudge(impl.LatencyBudget(budget_s), congestion, kind), congestion


def test_a_frame_is_judged_with_the_last_frame_s_size_and_queued_as_it_comes(impl) -> None:
    judge, _ = judge_on(impl)
    assert judge.frame_ts is None and judge.frame_send
    assert judge.judge(1000, 1200, True, False, 0.0) is True
    assert (judge.frame_ts, judge.frame_counted) == (1000, 1200)
    assert judge.budget.queued_bytes == 1200  # what the offer queued
    judge.account(1200, 0.0)  # its first packet: counted already
    assert judge.budget.queued_bytes == 1200
    judge.account(3000, 0.0)  # two more packets of it
    assert judge.budget.queued_bytes == 3000 and judge.frame_counted == 3000
    # the next frame, 100 bytes in its first packet: expected to be the last one's size
    assert judge.judge(4000, 100, False, False, 0.0) is True
    assert judge.last_frame_bytes == 3000 and judge.frame_counted == 3000
    assert judge.budget.queued_bytes == 6000
    judge.account(2000, 0.0)  # smaller than expected: nothing more queued
    assert judge.budget.queued_bytes == 6000 and judge.frame_bytes == 2000


def test_a_frame_that_does_not_go_queues_nothing_and_tells_congestion_control(impl) -> None:
    # 100 kbit/s: a 10 kB keyframe alone is sent (nothing queued), the next 10 kB frame is not
    judge, congestion = judge_on(impl, bps=100_000)
    assert judge.judge(1, 10_000, True, False, 0.0) is True
    assert not congestion.limited(0.0)
    assert judge.judge(2, 10_000, False, False, 0.0) is False
    assert congestion.limited(0.0)
    queued = judge.budget.queued_bytes
    judge.account(30_000, 0.0)
    assert judge.budget.queued_bytes == queued and judge.frame_bytes == 30_000
    assert judge.budget.counters["dropped_skip"] == 1


def test_audio_never_tells_congestion_control_and_each_packet_is_a_frame(impl) -> None:
    judge, congestion = judge_on(impl, kind="audio", bps=100_000, budget_s=0.1)
    assert judge.new_frame(5) and judge.judge(5, 160, False, False, 0.0)
    assert judge.new_frame(5)  # the same timestamp: still a frame of its own
    assert not judge.judge(5, 10_000, False, False, 0.0)  # 0.8 s of queue at 100 kbit/s
    assert not congestion.limited(0.0)


def test_a_whole_frame_is_decided_and_queued_whole(impl) -> None:
    judge, congestion = judge_on(impl, bps=100_000)
    assert judge.decide(True, 5000, False, 0.0) is True
    assert judge.budget.queued_bytes == 5000 and judge.frame_ts is None
    assert judge.decide(False, 5000, True, 0.0) is False  # droppable, over half the limit
    assert judge.budget.counters["dropped_droppable"] == 1 and congestion.limited(0.0)


def test_the_loops_say_whose_decision_changed(impl) -> None:
    fast, _ = judge_on(impl)
    slow, _ = judge_on(impl, bps=100_000)
    audio, _ = judge_on(impl, kind="audio")
    judges = [fast, slow, audio]
    assert impl.new_frame_for_all(judges, 10)
    assert impl.judge_frames(judges, 10, 10_000, True, False, 0.0) == []  # all go, as before
    assert not impl.new_frame_for_all(judges, 10) and not impl.new_frame_for_all([slow], 10)
    assert impl.new_frame_for_all([audio], 10) and impl.new_frame_for_all(judges, 11)
    assert impl.judge_frames(judges, 11, 10_000, False, False, 0.0) == [1]  # the slow path's is dropped
    assert [j.frame_send for j in judges] == [True, False, True]
    impl.account_frames(judges, 11, 20_000, 0.0)
    assert (fast.frame_counted, slow.frame_counted) == (20_000, 10_000)
    assert (fast.frame_bytes, slow.frame_bytes) == (20_000, 20_000)
    impl.account_frames(judges, 99, 50_000, 0.0)  # another frame: none is on it
    assert fast.frame_bytes == 20_000
    assert impl.decide_frames(judges, True, 10_000, False, 1.0) == [1]  # its queue drained: a keyframe goes again
    assert impl.decide_frames([], True, 1, False, 0.5) == [] and impl.judge_frames([], 1, 1, True, False, 0.0) == []


def test_keyframes_needed_are_taken_from_every_budget_once(impl) -> None:
    judges = [judge_on(impl, bps=100_000)[0] for _ in range(3)]
    for judge in judges[:2]:  # two paths start skipping, and want a keyframe once there is room for one
        assert judge.judge(1, 3000, True, False, 0.0)
        assert not judge.judge(2, 3000, False, False, 0.0)
        assert not judge.budget.take_keyframe_needed()  # (a 3 kB keyframe would not fit yet)
        assert not judge.judge(3, 3000, False, False, 0.2)
    assert impl.take_keyframes_needed(judges) == 2
    assert impl.take_keyframes_needed(judges) == 0  # taken
    assert not any(j.budget.take_keyframe_needed() for j in judges)


def test_both_refuse_an_unknown_kind(impl) -> None:
    for bad in ("data", None, 3):
        with pytest.raises(ValueError, match="kind"):
            impl.FrameJudge(impl.LatencyBudget(), PlayerCongestion(), bad)


# ----- the compiled one against the reference ----------------------------------------------------

TIMESTAMPS = st.integers(0, 3)  # few, so that frames repeat and the loops skip some judges
OPS = st.one_of(
    st.tuples(st.just("judge_frames"), TIMESTAMPS, st.integers(0, 30_000), st.booleans(), st.booleans(),
              st.floats(0.0, 0.2)),
    st.tuples(st.just("account_frames"), TIMESTAMPS, st.integers(0, 80_000), st.floats(0.0, 0.2)),
    st.tuples(st.just("decide_frames"), st.booleans(), st.integers(0, 60_000), st.booleans(), st.floats(0.0, 0.2)),
    st.tuples(st.just("new_frame_for_all"), TIMESTAMPS),
    st.tuples(st.just("take_keyframes_needed"),),
    st.tuples(st.just("judge"), st.integers(0, 5), TIMESTAMPS, st.integers(0, 30_000), st.booleans(), st.booleans(),
              st.floats(0.0, 0.2)),
    st.tuples(st.just("account"), st.integers(0, 5), st.integers(0, 80_000), st.floats(-0.05, 0.2)),
    st.tuples(st.just("decide"), st.integers(0, 5), st.booleans(), st.integers(0, 60_000), st.booleans(),
              st.floats(0.0, 0.2)),
    st.tuples(st.just("remb"), st.integers(0, 5), st.sampled_from([50_000, 300_000, 2_000_000])),
)
PATHS = st.lists(st.tuples(st.sampled_from(["audio", "video"]), st.sampled_from([150_000, 700_000, 4_000_000]),
                           st.floats(0.1, 0.8)), min_size=1, max_size=6)


def state(judge, congestion, now: float) -> tuple:
    b = judge.budget
    return (judge.frame_ts, judge.frame_send, judge.frame_bytes, judge.frame_counted, judge.last_frame_bytes,
            b.queued_bytes, b.skipping, b.last_delay, b.counters, congestion.limited(now), congestion.estimate_bps)


@settings(max_examples=300, deadline=None)
@given(PATHS, st.lists(OPS, max_size=200))
def test_the_compiled_judges_decide_as_the_reference(paths, ops) -> None:
    sides = []
    for impl in (_budget_py, _budget_c):
        congestions = [PlayerCongestion(start_bps=bps) for _, bps, _ in paths]
        judges = [impl.FrameJudge(impl.LatencyBudget(budget_s), c, kind)
                  for (kind, _, budget_s), c in zip(paths, congestions)]
        sides.append((impl, judges, congestions))
    now = 0.0
    for op in ops:
        name, outs = op[0], []
        if name in ("judge_frames", "decide_frames", "judge", "decide"):
            now += op[-1]
        for impl, judges, congestions in sides:
            one = judges[op[1] % len(judges)] if name in ("judge", "account", "decide", "remb") else None
            if name == "judge_frames":
                out = impl.judge_frames(judges, op[1], op[2], op[3], op[4], now)
            elif name == "account_frames":
                out = impl.account_frames(judges, op[1], op[2], now + op[3])
            elif name == "decide_frames":
                out = impl.decide_frames(judges, op[1], op[2], op[3], now)
            elif name == "new_frame_for_all":
                out = impl.new_frame_for_all(judges, op[1])
            elif name == "take_keyframes_needed":
                out = impl.take_keyframes_needed(judges)
            elif name == "judge":
                out = one.judge(op[2], op[3], op[4], op[5], now)
            elif name == "account":
                out = one.account(op[2], now + op[3])
            elif name == "decide":
                out = one.decide(op[2], op[3], op[4], now)
            else:
                out = congestions[op[1] % len(judges)].on_remb(op[2], now)
            outs.append((out, [state(j, c, now) for j, c in zip(judges, congestions)]))
        assert outs[1] == outs[0], op
