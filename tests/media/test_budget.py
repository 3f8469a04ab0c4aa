"""LatencyBudget (sfu.media.budget) on a virtual clock: what is dropped, and the delay of what is sent."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.media import _budget_c, _budget_py
from sfu.media.budget import Decision

SEND, DROP, SKIP = Decision.SEND, Decision.DROP, Decision.SKIP_TO_KEYFRAME
IMPLS = {"py": _budget_py.LatencyBudget, "c": _budget_c.LatencyBudget}


@pytest.fixture(params=sorted(IMPLS), scope="module")
def LatencyBudget(request):  # noqa: N802 (the class under test: the reference and the compiled one)
    return IMPLS[request.param]


# A 1 Mbit/s stream: 30 fps video with a keyframe every 2 s (4x a delta frame), 50 fps Opus.
FPS, GOP, AUDIO_FPS, AUDIO_BYTES = 30, 60, 50, 160
VIDEO_BPS = 1_000_000 - AUDIO_FPS * AUDIO_BYTES * 8
DELTA_BYTES = round(VIDEO_BPS / 8 * GOP / FPS / (GOP - 1 + 4))
KEY_BYTES = 4 * DELTA_BYTES
PLI_DELAY = 0.1  # a keyframe request reaches the publisher and its answer comes back


@dataclass
class Run:
    """What the simulated player got: every offer and, per sent frame, its delay on a FIFO path."""

    budget: LatencyBudget
    offers: list = field(default_factory=list)  # (now, kind, keyframe, droppable, size, decision)
    sent_delays: list = field(default_factory=list)  # (now, kind, delay)

    def decisions(self, kind: str | None = None, start: float = 0.0, end: float = 1e9) -> list[Decision]:
        return [o[5] for o in self.offers if (kind is None or o[1] == kind) and start <= o[0] < end]


def simulate(LatencyBudget, path_bps, duration: float, *, droppable_every: int = 4, age: float = 0.0,
             budget_s: float = 0.4) -> Run:
    """Offer the stream to a budget (of class `LatencyBudget`); `path_bps(now)` is both the path's rate and the estimate given.

    The path is modelled on its own here (a FIFO queue drained at the path rate), so the test
    checks the budget's promise against an independent model, not against itself.
    """
    budget = LatencyBudget(budget_s)
    run = Run(budget)
    events = [(i / AUDIO_FPS, "audio", i) for i in range(int(duration * AUDIO_FPS))]
    events += [(i / FPS, "video", i) for i in range(int(duration * FPS))]
    events.sort(key=lambda e: (e[0], e[1]))
    queued, last = 0.0, 0.0
    next_key, frames_since_key = 0.0, 0
    for now, kind, _ in events:
        rate = path_bps(now)
        queued = max(queued - (now - last) * rate / 8, 0.0)
        last = now
        keyframe = droppable = False
        if kind == "audio":
            size = AUDIO_BYTES
        else:
            keyframe = now >= next_key
            if keyframe:
                next_key, frames_since_key = now + GOP / FPS, 0
            frames_since_key += 1
            droppable = not keyframe and frames_since_key % droppable_every == 0
            size = KEY_BYTES if keyframe else DELTA_BYTES
        decision = budget.offer(kind, keyframe, droppable, size, now - age, now, rate)
        run.offers.append((now, kind, keyframe, droppable, size, decision))
        if decision is SEND:
            queued += size
            run.sent_delays.append((now, kind, queued * 8 / rate + age))
        if budget.take_keyframe_needed():
            next_key = min(next_key, now + PLI_DELAY)
    return run


def capped_then_recovered(now: float) -> float:
    return 600_000 if now < 30.0 else 2_000_000


# RTC (sent on arrival) and L3 (held 100 ms first, so 0.1 s less of the budget for the queue; a
# keyframe is 0.2 s of this path, so with one keyframe request a second, less video fits)
@pytest.mark.parametrize("age, used", [(0.0, 0.85), (0.1, 0.4)])
def test_a_capped_path_keeps_every_sent_frame_within_the_budget(LatencyBudget, age: float, used: float) -> None:
    run = simulate(LatencyBudget, capped_then_recovered, 40.0, age=age)
    assert max(delay for _, _, delay in run.sent_delays) <= 0.4 + 1e-9
    audio = run.decisions("audio")
    assert audio.count(SEND) == len(audio) == 40 * AUDIO_FPS
    assert run.budget.counters["dropped_audio"] == 0
    video = run.decisions("video", end=30.0)
    assert video.count(SKIP) >= 1
    assert video.count(DROP) > 0
    assert run.budget.counters["keyframes_requested"] >= 1
    # it drops what it must, not much more: the video sent uses what the path has left
    sent_bits = sum(o[4] * 8 for o in run.offers if o[1] == "video" and o[5] is SEND and 5 <= o[0] < 30)
    assert sent_bits / 25 >= used * (600_000 - AUDIO_FPS * AUDIO_BYTES * 8)
    # one slow player does not set the publisher's keyframe pace: at most one request a second
    # over the 30 s of congestion (the first at once)
    assert run.budget.counters["keyframes_requested"] <= 31
    # the path recovers: within a keyframe interval every frame flows again
    assert set(run.decisions("video", start=32.5)) == {SEND}


def test_droppable_frames_go_before_the_first_skip(LatencyBudget) -> None:
    run = simulate(LatencyBudget, capped_then_recovered, 30.0)
    video = [o for o in run.offers if o[1] == "video" and o[5] is not SEND]
    assert video[0][3] is True and video[0][5] is DROP  # the first frame to go is a droppable one
    first_skip = next(i for i, o in enumerate(video) if o[5] is SKIP)
    assert any(o[3] for o in video[:first_skip])


def test_droppable_frames_alone_absorb_a_small_shortfall(LatencyBudget) -> None:
    """Every other frame droppable (VP8 temporal layers) into 80 % of the stream's rate."""
    run = simulate(LatencyBudget, lambda now: 800_000, 30.0, droppable_every=2)
    c = run.budget.counters
    assert c["dropped_droppable"] > 0
    assert c["dropped_skip"] == c["keyframes_requested"] == c["dropped_audio"] == 0
    assert max(delay for _, _, delay in run.sent_delays) <= 0.4 + 1e-9


@pytest.mark.parametrize("path_bps", [2_000_000, 1_300_000])
def test_a_path_with_spare_capacity_drops_nothing(LatencyBudget, path_bps: int) -> None:
    run = simulate(LatencyBudget, lambda now: path_bps, 30.0)
    assert set(run.decisions()) == {SEND}
    assert run.budget.take_keyframe_needed() is False
    assert run.budget.counters["keyframes_requested"] == 0


def test_the_same_inputs_give_the_same_decisions(LatencyBudget) -> None:
    first = simulate(LatencyBudget, capped_then_recovered, 35.0)
    assert first.offers == simulate(LatencyBudget, capped_then_recovered, 35.0).offers


# ----- single rules ------------------------------------------------------------------------

RATE = 800_000  # 100 kB/s: 1 kB is 10 ms of queue


def fill(budget, seconds: float, now: float = 0.0) -> None:
    """Queue `seconds` of video at RATE: a small keyframe (5 ms), then one big frame."""
    assert budget.offer("video", True, False, 500, now, now, RATE) is SEND
    assert budget.offer("video", False, False, int(seconds * RATE / 8) - 500, now, now, RATE) is SEND


def test_a_droppable_frame_goes_at_half_the_limit_a_referenced_one_is_sent(LatencyBudget) -> None:
    budget = LatencyBudget(0.4)  # video limit 0.35, droppable limit 0.175
    fill(budget, 0.2)
    assert budget.offer("video", False, True, 1000, 0.0, 0.0, RATE) is DROP
    assert budget.offer("video", False, False, 1000, 0.0, 0.0, RATE) is SEND
    assert budget.counters["dropped_droppable"] == 1
    assert budget.take_keyframe_needed() is False


def test_over_the_limit_skips_to_the_next_keyframe_and_asks_for_it_once(LatencyBudget) -> None:
    budget = LatencyBudget(0.4)
    fill(budget, 0.34)
    assert budget.offer("video", False, False, 2000, 0.0, 0.0, RATE) is SKIP
    assert budget.skipping
    assert budget.take_keyframe_needed() is True
    assert budget.take_keyframe_needed() is False
    # even with the queue drained, nothing but a keyframe ends the skip
    for i in range(1, 10):
        assert budget.offer("video", False, False, 100, i, i * 0.1, RATE) is DROP
    assert budget.queued_bytes == 0
    assert budget.offer("video", True, False, 5000, 1.0, 1.0, RATE) is SEND
    assert not budget.skipping
    assert budget.offer("video", False, False, 1000, 1.04, 1.04, RATE) is SEND
    assert budget.counters["dropped_skip"] == 10
    assert budget.counters["keyframes_requested"] == 1


def test_a_long_skip_asks_again_every_two_seconds(LatencyBudget) -> None:
    budget = LatencyBudget(0.4, rerequest_s=2.0)
    fill(budget, 0.34)
    assert budget.offer("video", False, False, 2000, 0.0, 0.0, RATE) is SKIP
    assert budget.take_keyframe_needed() is True
    asked = []
    for i in range(1, 151):  # 5 s of frames, no keyframe comes
        now = i / 30
        budget.offer("video", False, False, 1000, now, now, RATE)
        if budget.take_keyframe_needed():
            asked.append(round(now, 3))
    assert asked == [2.0, 4.0]


def test_no_request_while_the_queue_has_no_room_for_a_keyframe_nor_within_a_second(LatencyBudget) -> None:
    budget = LatencyBudget(0.4)
    assert budget.offer("video", True, False, 20_000, 0.0, 0.0, RATE) is SEND  # a keyframe of 0.2 s
    assert budget.offer("video", False, False, 10_000, 0.0, 0.0, RATE) is SEND
    assert budget.offer("video", False, False, 12_000, 0.05, 0.05, RATE) is SKIP  # 0.25 + 0.12 s
    assert budget.take_keyframe_needed() is False  # a keyframe now would be 0.45 s late: dropped
    assert budget.offer("video", False, False, 1000, 0.1, 0.1, RATE) is DROP
    assert budget.take_keyframe_needed() is False  # still 0.4 s
    assert budget.offer("video", False, False, 1000, 0.167, 0.167, RATE) is DROP
    assert budget.take_keyframe_needed() is True  # 0.133 s queued: a 0.2 s keyframe fits
    assert budget.offer("video", True, False, 20_000, 0.25, 0.25, RATE) is SEND
    budget.on_time(1.0)
    assert budget.offer("video", False, False, 40_000, 1.0, 1.0, RATE) is SKIP  # again: a 0.4 s frame
    for now in (1.067, 1.1, 1.133):
        assert budget.offer("video", False, False, 1000, now, now, RATE) is DROP
        assert budget.take_keyframe_needed() is False  # a second has not passed since the last
    assert budget.offer("video", False, False, 1000, 1.2, 1.2, RATE) is DROP
    assert budget.take_keyframe_needed() is True
    assert budget.counters["keyframes_requested"] == 2


def test_a_keyframe_too_big_for_the_budget_goes_when_no_video_is_queued(LatencyBudget) -> None:
    budget = LatencyBudget(0.4)
    assert budget.offer("video", True, False, 60_000, 0.0, 0.0, RATE) is SEND  # 0.6 s on its own
    assert budget.counters["oversized_keyframes"] == 1
    assert budget.offer("video", False, False, 1000, 0.033, 0.033, RATE) is SKIP
    assert budget.offer("video", True, False, 60_000, 0.3, 0.3, RATE) is DROP  # video still queued
    assert budget.take_keyframe_needed() is False  # no room for another one yet
    assert budget.offer("video", False, False, 1000, 0.633, 0.633, RATE) is DROP
    assert budget.take_keyframe_needed() is True  # the queue has drained
    assert budget.offer("video", True, False, 60_000, 0.7, 0.7, RATE) is SEND
    assert not budget.skipping


def test_audio_is_judged_without_the_video_queued_ahead_of_it(LatencyBudget) -> None:
    budget = LatencyBudget(0.4)
    fill(budget, 0.34)
    assert budget.offer("video", False, False, 2000, 0.0, 0.0, RATE) is SKIP
    assert budget.offer("audio", True, False, 160, 0.0, 0.0, RATE) is SEND
    # audio goes only when it would be late with no video at all: here it waited 0.45 s already
    assert budget.offer("audio", True, False, 160, -0.45, 0.0, RATE) is DROP
    assert budget.counters == {"sent_audio": 1, "sent_video": 2, "dropped_droppable": 0, "dropped_skip": 1,
                               "dropped_audio": 1, "keyframes_requested": 1, "oversized_keyframes": 0,
                               "resent": 0, "resends_refused": 0, "player_requests": 0, "player_requests_refused": 0}


def test_frames_already_late_are_dropped_though_the_queue_is_empty(LatencyBudget) -> None:
    budget = LatencyBudget(0.4)
    fill(budget, 0.01)
    budget.on_time(1.0)
    assert budget.queued_bytes == 0
    assert budget.offer("video", False, True, 1000, 0.6, 1.0, RATE) is DROP
    assert budget.offer("video", False, False, 1000, 0.6, 1.0, RATE) is SKIP
    assert budget.last_delay == pytest.approx(0.41)


def test_on_time_drains_the_queue_at_the_last_rate(LatencyBudget) -> None:
    budget = LatencyBudget(0.4)
    fill(budget, 0.3)  # 30 kB
    budget.on_time(0.1)
    assert budget.queued_bytes == pytest.approx(20_000)
    assert budget.queue_delay() == pytest.approx(0.2)
    budget.on_time(0.05)  # time going backwards drains nothing
    assert budget.queued_bytes == pytest.approx(20_000)
    budget.on_time(1.0)
    assert budget.queued_bytes == 0 and budget.queue_delay() == 0


def test_bad_input_does_not_crash_it(LatencyBudget) -> None:
    budget = LatencyBudget(0.4)
    with pytest.raises(ValueError):
        budget.offer("data", False, False, 10, 0.0, 0.0, RATE)
    with pytest.raises(ValueError):
        LatencyBudget(0.1, audio_reserve_s=0.2)
    assert budget.offer("audio", True, False, -5, 0.0, 0.0, RATE) is SEND
    assert budget.offer("video", True, False, 100, 5.0, 0.0, 0) is SEND  # rate 0, capture in the future
    assert budget.offer("video", False, False, 100, 0.0, 0.0, -1) is SKIP


offers = st.lists(st.tuples(st.sampled_from(["audio", "video"]), st.booleans(), st.booleans(),
                            st.integers(0, 100_000), st.floats(0, 0.5), st.floats(0, 0.2),
                            st.floats(50_000, 5_000_000)), max_size=200)


@settings(max_examples=50, deadline=None)
@given(offers)
def test_every_offer_is_counted_once_and_sent_video_keeps_to_its_limit(LatencyBudget, items) -> None:
    budget = LatencyBudget(0.4)
    now = 0.0
    sent_over = 0
    for kind, keyframe, droppable, size, age, step, rate in items:
        now += step
        oversized = budget.counters["oversized_keyframes"]
        decision = budget.offer(kind, keyframe, droppable, size, now - age, now, rate)
        if decision is SEND and budget.last_delay > (budget.budget_s if kind == "audio" else budget.video_limit):
            sent_over += 1
            assert kind == "video" and budget.counters["oversized_keyframes"] == oversized + 1
    c = budget.counters
    assert sum(c[k] for k in ("sent_audio", "sent_video", "dropped_droppable", "dropped_skip",
                              "dropped_audio")) == len(items)
    assert sent_over == c["oversized_keyframes"]


def test_bytes_sent_without_an_offer_count_against_later_frames(LatencyBudget) -> None:
    budget = LatencyBudget(0.4)
    assert budget.offer("video", True, False, 1200, 0.0, 0.0, RATE) is SEND  # RTC: a keyframe's first packet
    for _ in range(24):
        budget.add_bytes("video", 1200, 0.0)  # its other packets
    assert budget.queued_bytes == 30_000
    budget.add_bytes("audio", 5000, 0.0)  # e.g. retransmissions
    assert budget.offer("video", False, True, 1000, 0.0, 0.0, RATE) is DROP  # 0.36 s: over half the limit
    assert budget.offer("video", False, False, 1000, 0.0, 0.0, RATE) is SKIP  # and over the limit
    with pytest.raises(ValueError):
        budget.add_bytes("data", 10, 0.0)
