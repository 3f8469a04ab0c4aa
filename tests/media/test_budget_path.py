"""LatencyBudget rules 9-11: the path's own queue, retransmissions, and a player's own keyframe requests."""

from __future__ import annotations

import pytest

from sfu.media import _budget_c, _budget_py
from sfu.media.budget import Decision

SEND, DROP, SKIP = Decision.SEND, Decision.DROP, Decision.SKIP_TO_KEYFRAME
IMPLS = {"py": _budget_py.LatencyBudget, "c": _budget_c.LatencyBudget}


@pytest.fixture(params=sorted(IMPLS), scope="module")
def LatencyBudget(request):  # noqa: N802 (the class under test: the reference and the compiled one)
    return IMPLS[request.param]
RATE = 800_000  # 100 kB/s


def test_the_paths_queue_counts_in_every_frames_delay(LatencyBudget) -> None:
    budget = LatencyBudget(0.4)  # video limit 0.35 s
    assert budget.offer("video", True, False, 1000, 0.0, 0.0, RATE) is SEND
    budget.on_time(1.0)  # drained
    budget.set_path_delay(0.30)
    assert budget.offer("video", False, False, 1000, 1.0, 1.0, RATE) is SEND  # 0.30 + 0.01 s
    assert budget.last_delay == pytest.approx(0.31)
    budget.set_path_delay(0.36)
    assert budget.offer("video", False, False, 1000, 1.0, 1.0, RATE) is SKIP  # the path alone is over
    assert budget.offer("audio", True, False, 160, 1.0, 1.0, RATE) is SEND  # audio: 0.36 s < 0.4
    budget.set_path_delay(0.45)
    assert budget.offer("audio", True, False, 160, 1.0, 1.0, RATE) is DROP
    budget.set_path_delay(None)
    assert budget.path_delay == 0.0


def test_a_retransmission_goes_only_while_the_queue_has_room_for_it(LatencyBudget) -> None:
    budget = LatencyBudget(0.4)  # droppable limit: half of 0.35 s
    assert budget.offer_resend(1200, 0.0)  # no rate known yet, no path delay: nothing to hold it back
    budget.offer("video", False, False, 10_000, 0.0, 0.0, RATE)  # 0.1 s queued
    assert budget.offer_resend(1200, 0.0)
    assert budget.queued_bytes == pytest.approx(1200 + 10_000 + 1200)  # a resend sent is queued
    budget.offer("video", False, False, 5000, 0.0, 0.0, RATE)  # 0.17 s queued
    assert not budget.offer_resend(1200, 0.0)
    budget.on_time(0.1)  # 10 kB drained
    assert budget.offer_resend(1200, 0.1)
    budget.set_path_delay(0.2)
    assert not budget.offer_resend(100, 0.1)
    assert budget.counters["resent"] == 3 and budget.counters["resends_refused"] == 2


def test_a_players_own_keyframe_requests_are_paced_and_not_passed_on_while_skipping(LatencyBudget) -> None:
    budget = LatencyBudget(0.4, request_interval_s=1.0)
    assert budget.allow_keyframe_request(0.0)
    assert not budget.allow_keyframe_request(0.5)
    assert budget.allow_keyframe_request(1.0)
    budget.offer("video", False, False, 50_000, 1.0, 1.0, RATE)  # 0.5 s of video: over the limit
    assert budget.skipping
    assert not budget.allow_keyframe_request(5.0)  # the budget asks itself when a keyframe has room
    assert budget.counters["player_requests"] == 2 and budget.counters["player_requests_refused"] == 2
