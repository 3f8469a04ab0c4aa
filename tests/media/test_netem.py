"""NetEm: the seeded sans-IO network emulator (sfu/media/netem.py). Time is stepped by hand."""

from __future__ import annotations

import struct

import pytest

from sfu.media.netem import NetEm


def numbered(i: int, size: int = 8) -> bytes:
    return struct.pack("!I", i) + bytes(size - 4)


def number(packet: bytes) -> int:
    return struct.unpack("!I", packet[:4])[0]


def run(net: NetEm, n: int, interval: float, size: int = 8) -> list[tuple[float, int]]:
    """Send n numbered packets every `interval` s, polling at every timer; (arrival, number) pairs."""
    arrivals: list[tuple[float, int]] = []
    for i in range(n):
        now = i * interval
        # deliver everything due before this send, at its exact time
        while (t := net.next_timer()) is not None and t <= now:
            arrivals.extend((t, number(p)) for p in net.poll(t))
        net.send(numbered(i, size), now)
    while (t := net.next_timer()) is not None:
        arrivals.extend((t, number(p)) for p in net.poll(t))
    return arrivals


def test_perfect_link_delivers_at_once_in_order():
    net = NetEm(1)
    net.send(b"a", 1.0)
    net.send(b"b", 1.0)
    assert net.next_timer() == 1.0
    assert net.poll(1.0) == [b"a", b"b"]
    assert net.next_timer() is None
    assert net.counters == {"sent": 2, "lost": 0, "duplicated": 0, "dropped_queue": 0, "delivered": 2}


def test_fixed_delay_and_timer():
    net = NetEm(1, delay=0.05)
    net.send(b"a", 1.0)
    net.send(b"b", 1.01)
    assert net.next_timer() == pytest.approx(1.05)
    assert net.poll(1.049) == []
    assert net.poll(1.05) == [b"a"]
    assert net.in_flight == 1
    assert net.next_timer() == pytest.approx(1.06)
    assert net.poll(2.0) == [b"b"]


def test_deterministic_for_a_seed():
    settings = dict(loss=0.1, burst_loss=(0.02, 0.3), delay=0.02, jitter=0.01, duplicate=0.05,
                    rate_bps=2e6, queue_limit_bytes=20_000)
    a = run(NetEm(42, **settings), 3000, 0.002, size=600)
    b = run(NetEm(42, **settings), 3000, 0.002, size=600)
    c = run(NetEm(43, **settings), 3000, 0.002, size=600)
    assert a == b
    assert a != c


def test_random_loss_rate_over_100k_packets():
    net = NetEm(7, loss=0.05)
    for i in range(100_000):
        net.send(b"x", 0.0)
    delivered = net.poll(0.0)
    assert net.counters["lost"] + len(delivered) == 100_000
    assert net.counters["lost"] / 100_000 == pytest.approx(0.05, abs=0.003)  # σ ≈ 0.0007


def test_burst_loss_mean_burst_length():
    p_gb, p_bg = 0.01, 0.25
    net = NetEm(11, burst_loss=(p_gb, p_bg))
    n = 100_000
    for i in range(n):
        net.send(numbered(i), 0.0)
    got = {number(p) for p in net.poll(0.0)}
    bursts, run_length = [], 0
    for i in range(n):
        if i in got:
            if run_length:
                bursts.append(run_length)
            run_length = 0
        else:
            run_length += 1
    assert sum(bursts) / len(bursts) == pytest.approx(1 / p_bg, rel=0.1)  # ≈ 4 packets
    assert net.counters["lost"] / n == pytest.approx(p_gb / (p_gb + p_bg), rel=0.1)  # ≈ 3.8 %
    # and the losses do come in bursts: random loss at this rate would average ~1.04
    assert sum(bursts) / len(bursts) > 3


def test_burst_loss_combines_with_random_loss():
    net = NetEm(3, loss=0.1, burst_loss=(0.0, 1.0))  # never enters Bad: only random loss
    for _ in range(20_000):
        net.send(b"x", 0.0)
    assert net.counters["lost"] / 20_000 == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("reorder", [True, False])
def test_jitter_stays_within_bounds(reorder):
    delay, jitter = 0.05, 0.02
    net = NetEm(5, delay=delay, jitter=jitter, reorder=reorder)
    interval = 0.005
    arrivals = run(net, 5000, interval)
    assert len(arrivals) == 5000
    latencies = [t - i * interval for t, i in arrivals]
    assert min(latencies) >= delay - jitter - 1e-9
    assert max(latencies) <= delay + jitter + 1e-9
    # the jitter is really there (with reorder=False a packet held behind a late one arrives
    # late too, so the spread leans to the top of the range)
    assert max(latencies) - min(latencies) > 1.5 * jitter
    order = [i for _, i in arrivals]
    if reorder:
        assert order != sorted(order)  # 5 ms apart with ±20 ms jitter: overtaking happens
    else:
        assert order == sorted(order)


def test_no_reordering_even_with_jitter_larger_than_delay():
    net = NetEm(9, delay=0.001, jitter=0.05, reorder=False)
    arrivals = run(net, 2000, 0.0005)
    assert [i for _, i in arrivals] == list(range(2000))
    assert all(t >= i * 0.0005 for t, i in arrivals)  # never before it was sent


def test_jitter_never_delivers_before_send():
    net = NetEm(9, delay=0.0, jitter=0.05)
    arrivals = run(net, 2000, 0.001)
    assert all(t >= i * 0.001 for t, i in arrivals)


def test_serialisation_delay_at_the_rate():
    # 1250 bytes at 1 Mbit/s take 10 ms each; a burst of 5 at t=0 leaves the link 10 ms apart
    net = NetEm(1, rate_bps=1e6, delay=0.02)
    for i in range(5):
        net.send(numbered(i, 1250), 0.0)
    times = []
    while (t := net.next_timer()) is not None:
        times.append(t)
        net.poll(t)
    assert times == pytest.approx([0.03, 0.04, 0.05, 0.06, 0.07])


def test_queue_limit_tail_drops():
    # the packet being serialised counts: 2 x 1250 fit in 2500 bytes, the rest are dropped
    net = NetEm(1, rate_bps=1e6, queue_limit_bytes=2500)
    for i in range(5):
        net.send(numbered(i, 1250), 0.0)
    assert net.counters["dropped_queue"] == 3
    # after 10 ms one packet has left: room for one more
    net.send(numbered(5, 1250), 0.01)
    assert net.counters["dropped_queue"] == 3
    assert [number(p) for p in net.poll(1.0)] == [0, 1, 5]


def test_rate_cap_throughput():
    # offer 2 Mbit/s to a 1 Mbit/s link with a 25 kB queue for 10 s
    rate, size, interval, seconds = 1e6, 1250, 0.005, 10.0
    net = NetEm(1, rate_bps=rate, queue_limit_bytes=25_000)
    arrivals = run(net, int(seconds / interval), interval, size=size)
    within = [t for t, _ in arrivals if t <= seconds]
    throughput = len(within) * size * 8 / seconds
    assert throughput == pytest.approx(rate, rel=0.02)
    assert net.counters["dropped_queue"] == pytest.approx(net.counters["sent"] / 2, rel=0.02)
    # queueing delay never exceeds the queue drained at the rate
    assert max(t - i * interval for t, i in arrivals) <= 25_000 * 8 / rate + 1e-9


def test_rate_below_capacity_adds_only_serialisation():
    net = NetEm(1, rate_bps=1e6)
    arrivals = run(net, 1000, 0.02, size=1250)  # 0.5 Mbit/s offered
    assert all(t - i * 0.02 == pytest.approx(0.01) for t, i in arrivals)


def test_duplication():
    net = NetEm(13, duplicate=0.1)
    n = 20_000
    for i in range(n):
        net.send(numbered(i), 0.0)
    got = [number(p) for p in net.poll(0.0)]
    assert len(got) == n + net.counters["duplicated"]
    assert net.counters["duplicated"] / n == pytest.approx(0.1, abs=0.01)
    assert net.counters["delivered"] == len(got)
    counts: dict[int, int] = {}
    for i in got:
        counts[i] = counts.get(i, 0) + 1
    assert set(counts) == set(range(n)) and set(counts.values()) == {1, 2}


def test_duplicate_copies_get_their_own_jitter():
    net = NetEm(2, delay=0.05, jitter=0.02, duplicate=1.0)
    net.send(b"a", 0.0)
    first = net.next_timer()
    net.poll(first)
    second = net.next_timer()
    assert second is not None and second != first
    assert net.poll(1.0) == [b"a"]


def test_lost_packets_are_not_duplicated():
    net = NetEm(4, loss=1.0, duplicate=1.0)
    net.send(b"a", 0.0)
    assert net.counters["lost"] == 1 and net.counters["duplicated"] == 0
    assert net.next_timer() is None


@pytest.mark.parametrize("kwargs", [
    dict(loss=1.5), dict(loss=-0.1), dict(duplicate=2.0), dict(burst_loss=(0.1, 1.1)),
    dict(delay=-1.0), dict(jitter=-0.1), dict(rate_bps=0), dict(queue_limit_bytes=1000),
    dict(rate_bps=1e6, queue_limit_bytes=0),
])
def test_invalid_settings(kwargs):
    with pytest.raises(ValueError):
        NetEm(1, **kwargs)
