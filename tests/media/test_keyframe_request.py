"""KeyframeRequester (sfu.media.keyframe_request) on a virtual clock: aggregation, rate limit, cancel."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfu.media.keyframe_request import KeyframeRequester
from sfu.rtp.rtcp import Fir, Pli


def sends(requester: KeyframeRequester, times) -> list[float]:
    return [t for t in times if requester.poll(t)]


def test_nothing_to_do_when_nobody_asks() -> None:
    requester = KeyframeRequester()
    assert requester.poll(0.0) is False
    assert requester.next_timer() is None


def test_hundred_players_asking_at_once_cost_one_pli() -> None:
    requester = KeyframeRequester()
    for player in range(100):
        requester.request(10.0, reason="new_player")
    assert requester.next_timer() == 10.0
    assert requester.poll(10.0) is True
    assert requester.poll(10.0) is False
    assert requester.packet(sender_ssrc=1, media_ssrc=0xABC) == Pli(1, 0xABC)
    assert requester.counters == {"requested": 100, "sent": 1, "suppressed": 99, "retries": 0}
    assert requester.reasons == {"new_player": 100}


def test_rate_limit_defers_a_request_to_the_end_of_the_interval() -> None:
    requester = KeyframeRequester(min_interval=0.5, retry_after=None)
    requester.request(0.0)
    assert requester.poll(0.0)
    requester.request(0.125, reason="loss")
    assert requester.pending
    assert requester.poll(0.125) is False
    assert requester.next_timer() == 0.5
    assert sends(requester, [0.25, 0.375, 0.5, 0.625]) == [0.5]
    requester.request(0.75)  # 0.25 after the last one: waits until 1.0
    assert requester.next_timer() == 1.0
    assert sends(requester, [0.75, 0.875, 1.0]) == [1.0]
    requester.request(2.0)  # long after: at once
    assert requester.poll(2.0)
    assert requester.counters == {"requested": 4, "sent": 4, "suppressed": 0, "retries": 0}


def test_min_interval_is_configurable() -> None:
    requester = KeyframeRequester(min_interval=2.0, retry_after=None)
    sent = []
    for step in range(50):  # a player asking every 125 ms for 6.25 s
        now = step * 0.125
        requester.request(now)
        if requester.poll(now):
            sent.append(now)
    assert sent == [0.0, 2.0, 4.0, 6.0]


def test_keyframe_arrival_cancels_the_pending_request() -> None:
    requester = KeyframeRequester(min_interval=0.5)
    requester.request(0.0)
    assert requester.poll(0.0)
    requester.request(0.125)
    requester.request(0.25)
    requester.on_keyframe(0.3125)  # the keyframe asked for at 0.0 arrives
    assert not requester.pending
    assert requester.next_timer() is None
    assert sends(requester, [0.5, 1.0, 2.0]) == []
    assert requester.counters == {"requested": 3, "sent": 1, "suppressed": 2, "retries": 0}


def test_retry_once_when_no_keyframe_comes() -> None:
    requester = KeyframeRequester(min_interval=0.5, retry_after=1.0)
    requester.request(0.0)
    assert requester.poll(0.0)
    assert requester.next_timer() == 1.0
    assert sends(requester, [0.5, 0.875, 1.0, 2.0, 3.0]) == [1.0]  # once, not forever
    assert requester.next_timer() is None
    assert requester.counters["retries"] == 1 and requester.counters["sent"] == 2


def test_keyframe_cancels_the_retry_and_retry_after_none_disables_it() -> None:
    requester = KeyframeRequester(retry_after=1.0)
    requester.request(0.0)
    requester.poll(0.0)
    requester.on_keyframe(0.25)
    assert sends(requester, [1.0, 2.0]) == []
    silent = KeyframeRequester(retry_after=None)
    silent.request(0.0)
    silent.poll(0.0)
    assert silent.next_timer() is None
    assert sends(silent, [1.0, 2.0]) == []


def test_retry_after_is_never_shorter_than_min_interval() -> None:
    requester = KeyframeRequester(min_interval=0.5, retry_after=0.125)
    requester.request(0.0)
    requester.poll(0.0)
    assert requester.next_timer() == 0.5


def test_fir_when_the_publisher_negotiated_only_fir() -> None:
    requester = KeyframeRequester(use_fir=True, retry_after=1.0)
    assert requester.kind == "fir"
    requester.request(0.0)
    assert requester.poll(0.0)
    assert requester.packet(1, 0xABC) == Fir(1, [(0xABC, 0)])
    assert requester.poll(1.0)  # a repetition keeps its sequence number
    assert requester.packet(1, 0xABC) == Fir(1, [(0xABC, 0)])
    requester.request(2.0)  # a new request increments it
    assert requester.poll(2.0)
    assert requester.packet(1, 0xABC) == Fir(1, [(0xABC, 1)])
    assert KeyframeRequester().kind == "pli"


def test_fir_sequence_number_wraps_at_256() -> None:
    requester = KeyframeRequester(min_interval=0.0, use_fir=True, retry_after=None)
    for i in range(257):
        requester.request(float(i))
        assert requester.poll(float(i))
    assert requester.packet(1, 2) == Fir(1, [(2, 0)])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        KeyframeRequester(min_interval=-1.0)


events = st.lists(
    st.tuples(st.integers(0, 40), st.sampled_from(["request", "keyframe", "poll"])),
    max_size=60,
).map(sorted)


@given(events, st.sampled_from([0.25, 0.5, 1.0]), st.sampled_from([None, 0.5, 1.0, 2.0]))
def test_rate_limit_and_bookkeeping_hold_for_any_event_order(events, min_interval, retry_after) -> None:
    requester = KeyframeRequester(min_interval=min_interval, retry_after=retry_after)
    sent_at = []
    for tick, event in events:
        now = tick * 0.125
        if event == "request":
            requester.request(now)
        elif event == "keyframe":
            requester.on_keyframe(now)
        else:
            timer = requester.next_timer()
            if requester.poll(now):
                assert timer is not None and timer <= now  # never before its timer
                sent_at.append(now)
            else:
                assert timer is None or timer > now  # never late once the timer is due
        c = requester.counters
        assert c["requested"] == c["sent"] - c["retries"] + c["suppressed"] + requester.pending
        if requester.pending:
            assert requester.next_timer() is not None  # a pending request is never forgotten
    assert all(b - a >= min_interval for a, b in zip(sent_at, sent_at[1:]))


def test_a_slow_reason_waits_its_interval_after_the_last_keyframe() -> None:
    req = KeyframeRequester(0.5, reason_intervals={"congestion": 2.0})
    req.on_keyframe(10.0)  # the publisher's own keyframe (its GOP)
    req.request(10.5, "congestion")
    assert req.pending and req.next_timer() == 12.0
    assert not req.poll(11.9)
    assert req.poll(12.0)  # two seconds after the last keyframe: asked
    req.on_keyframe(12.1)
    req.request(12.5, "congestion")
    req.on_keyframe(14.0)  # the next GOP keyframe answers it: no extra keyframe for anyone
    assert not req.pending and not req.poll(20.0)
    assert req.counters["sent"] == 1


def test_a_fast_reason_is_not_held_back_by_a_slow_one() -> None:
    req = KeyframeRequester(0.5, reason_intervals={"congestion": 2.0})
    req.on_keyframe(0.0)
    req.request(0.1, "congestion")  # due at 2.0
    req.request(0.2, "player_start")  # a new player: due now
    assert req.poll(0.2)
    assert req.counters["suppressed"] == 1
