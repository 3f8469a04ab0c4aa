"""SeqUnwrapper / TimestampUnwrapper: widening wrapping RTP counters (sfu/rtp/seq.py).

Start points 0, 32767, 32768 and 65535 as in pion's pkg/nack/receive_log_test.go: the two
ends of the number space and the two sides of the half-range boundary.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.rtp.seq import SeqUnwrapper, TimestampUnwrapper

M16 = 1 << 16
M32 = 1 << 32


def unwrap_all(values, unwrapper=None):
    u = unwrapper or SeqUnwrapper()
    return [u.unwrap(v) for v in values]


@pytest.mark.parametrize("start", [0, 32767, 32768, 65535])
class TestSeqFromStartPoints:
    def test_first_maps_to_itself(self, start):
        assert SeqUnwrapper().unwrap(start) == start

    def test_forward_in_order(self, start):
        seqs = [(start + i) % M16 for i in range(200)]
        assert unwrap_all(seqs) == [start + i for i in range(200)]

    def test_forward_across_a_full_cycle(self, start):
        # steps of 1000 go round the 16-bit space more than twice
        seqs = [(start + 1000 * i) % M16 for i in range(150)]
        assert unwrap_all(seqs) == [start + 1000 * i for i in range(150)]

    def test_largest_forward_jump(self, start):
        assert unwrap_all([start, (start + 32767) % M16]) == [start, start + 32767]

    def test_backward_reordered(self, start):
        # 0 1 2 5 3 4 6: 3 and 4 arrive after 5
        order = [0, 1, 2, 5, 3, 4, 6]
        assert unwrap_all([(start + i) % M16 for i in order]) == [start + i for i in order]

    def test_backward_before_the_first(self, start):
        # the first packet seen is not the first sent: 10 then 7, 8, 9
        order = [10, 7, 8, 9, 11]
        out = unwrap_all([(start + i) % M16 for i in order])
        first = (start + 10) % M16  # maps to itself; the others relative to it
        assert out == [first + (i - 10) for i in order]

    def test_furthest_backward(self, start):
        # exactly half the range behind the highest is still read as behind
        hi = (start + 100) % M16
        u = SeqUnwrapper()
        u.unwrap(start)
        u.unwrap(hi)
        assert u.unwrap((hi - 32768) % M16) == start + 100 - 32768

    def test_duplicate(self, start):
        assert unwrap_all([start, start, (start + 1) % M16, start]) == [start, start, start + 1, start]

    def test_late_packet_does_not_move_the_reference(self, start):
        u = SeqUnwrapper()
        u.unwrap(start)
        u.unwrap((start + 30000) % M16)
        u.unwrap((start + 5) % M16)  # 29995 behind: backward
        # relative to the highest (start+30000), start+60000 is 30000 ahead: forward
        assert u.unwrap((start + 60000) % M16) == start + 60000
        assert u.highest == start + 60000


def test_wrap_forward_from_65535():
    assert unwrap_all([65534, 65535, 0, 1]) == [65534, 65535, 65536, 65537]


def test_wrap_backward_reordered_around_the_wrap():
    # 65535 arrives after 0 and 1
    assert unwrap_all([65533, 65534, 0, 1, 65535, 2]) == [65533, 65534, 65536, 65537, 65535, 65538]


def test_backward_across_a_wrap_before_the_first_goes_negative():
    assert unwrap_all([0, 65535, 65534, 1]) == [0, -1, -2, 1]
    assert -1 & 0xFFFF == 65535


def test_half_range_ahead_is_read_as_behind():
    # the tie rule: exactly 32768 ahead of the highest is 32768 behind
    assert unwrap_all([40000, 40000 + 32768 - M16]) == [40000, 40000 - 32768]
    assert unwrap_all([0, 32768]) == [0, -32768]


def test_many_wraps():
    u = SeqUnwrapper()
    x = 0
    for _ in range(10 * 65536 // 30001 + 1):
        assert u.unwrap(x % M16) == x
        x += 30001
    assert u.highest == x - 30001


def test_peek_does_not_record():
    u = SeqUnwrapper()
    assert u.peek(5) is None
    u.unwrap(65530)
    assert u.peek(3) == 65539
    assert u.peek(65000) == 65000
    assert u.highest == 65530
    assert u.unwrap(65531) == 65531


@pytest.mark.parametrize("bad", [-1, 65536, 1 << 20])
def test_out_of_range_seq_raises(bad):
    u = SeqUnwrapper()
    with pytest.raises(ValueError, match="16-bit"):
        u.unwrap(bad)
    u.unwrap(1)
    with pytest.raises(ValueError, match="16-bit"):
        u.peek(bad)


# ----- timestamps ------------------------------------------------------------------------------

@pytest.mark.parametrize("start", [0, (1 << 31) - 1, 1 << 31, M32 - 1])
def test_timestamp_start_points(start):
    u = TimestampUnwrapper()
    step = 3000  # one 30 fps frame at 90 kHz
    assert u.unwrap(start) == start
    assert u.unwrap((start + step) % M32) == start + step
    assert u.unwrap((start + 3 * step) % M32) == start + 3 * step
    assert u.unwrap((start + 2 * step) % M32) == start + 2 * step  # reordered (B-frame order)
    assert u.unwrap((start + (1 << 31) - 1) % M32) == start + (1 << 31) - 1  # largest forward jump


def test_timestamp_wrap():
    assert unwrap_all([M32 - 3000, 0, 3000, M32 - 1500], TimestampUnwrapper()) == [M32 - 3000, M32, M32 + 3000, M32 - 1500]


def test_timestamp_backward_before_first():
    assert unwrap_all([10, M32 - 10], TimestampUnwrapper()) == [10, -10]


def test_timestamp_out_of_range_raises():
    with pytest.raises(ValueError, match="32-bit"):
        TimestampUnwrapper().unwrap(M32)


# ----- properties ------------------------------------------------------------------------------

def _arrival_order(xs: list[int], delays: list[int]) -> list[int]:
    """Each x arrives at 'x + delay': a packet overtakes only packets less than `delay` ahead."""
    return [x for _, _, x in sorted((x + d, i, x) for i, (x, d) in enumerate(zip(xs, delays)))]


def _check_recovers(xs_arrival: list[int], bits: int) -> None:
    u = SeqUnwrapper() if bits == 16 else TimestampUnwrapper()
    mask = (1 << bits) - 1
    first_x = xs_arrival[0]
    first = u.unwrap(first_x & mask)
    for x in xs_arrival[1:]:
        assert u.unwrap(x & mask) - first == x - first_x


@given(start=st.integers(0, (1 << 63) - 1), steps=st.lists(st.integers(1, 32767), min_size=1, max_size=300))
def test_property_in_order_steps_below_half_range(start, steps):
    xs = [start]
    for s in steps:
        xs.append(xs[-1] + s)
    _check_recovers(xs, 16)


@settings(max_examples=150)
@given(
    start=st.integers(0, (1 << 63) - 1),
    data=st.lists(st.tuples(st.integers(1, 31768), st.integers(0, 999)), min_size=1, max_size=300),
)
def test_property_reordered_by_less_than_1000(start, data):
    # A step plus a reordering must stay below the half range: a packet that overtakes its
    # predecessor jumps ahead of the highest by (that step + < 1000), so steps go up to 31768.
    xs, delays = [start], [0]
    for step, delay in data:
        xs.append(xs[-1] + step)
        delays.append(delay)
    _check_recovers(_arrival_order(xs, delays), 16)


@settings(max_examples=50)
@given(
    start=st.integers(0, (1 << 63) - 1),
    data=st.lists(st.tuples(st.integers(1, (1 << 31) - 100_000), st.integers(0, 99_999)), min_size=1, max_size=200),
)
def test_property_timestamps_reordered(start, data):
    xs, delays = [start], [0]
    for step, delay in data:
        xs.append(xs[-1] + step)
        delays.append(delay)
    _check_recovers(_arrival_order(xs, delays), 32)
