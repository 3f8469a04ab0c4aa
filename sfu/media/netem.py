"""A seeded, sans-IO network emulator: one direction of a lossy, jittery, narrow link.

Tests and benchmarks put a ``NetEm`` between two cores (a publisher and the router, the router
and a player) and step time by hand, as str0m's ``crates/netem`` does; Linux ``tc netem`` is the
model for the knobs. It never reads a clock and never touches a socket:

- ``send(packet, now)`` puts a packet on the link at ``now`` (monotonic seconds);
- ``poll(now)`` returns the packets whose delivery time is ``<= now``, in delivery order
  (ties in the order they were sent);
- ``next_timer()`` is the earliest pending delivery time, or ``None``;
- ``counters``: ``sent`` (calls to ``send``), ``lost``, ``duplicated`` (extra copies made),
  ``dropped_queue`` (tail drops at the bottleneck), ``delivered`` (packets returned by ``poll``,
  copies included).

What happens to a packet, in order:

1. **Loss.** With ``burst_loss=(p_good_to_bad, p_bad_to_good)``, a two-state Gilbert-Elliott
   chain steps once per packet (first the transition, then the verdict): in the Bad state every
   packet is lost, so a burst lasts ``1 / p_bad_to_good`` packets on average and the long-run
   loss is ``p_gb / (p_gb + p_bg)``. ``loss`` is independent random loss on top (the loss of
   the Good state, or the whole model when ``burst_loss`` is None).
2. **Duplication.** A packet that survived is sent twice with probability ``duplicate``; each
   copy goes through the steps below on its own (its own queue slot, its own jitter).
3. **Bottleneck** (``rate_bps``): one FIFO link; a packet starts serialising when the previous
   one is done and takes ``8 * len / rate_bps`` seconds. ``queue_limit_bytes`` caps the bytes
   waiting or being serialised; a packet that would exceed it is dropped (tail drop). A queue
   limit needs a rate. ``set_rate`` changes both from then on (a path whose capacity changes):
   packets already on the link keep their times.
4. **Propagation**: ``delay`` plus a jitter drawn uniformly from ``[-jitter, +jitter]``,
   never earlier than the packet left the bottleneck. So, with no rate cap, every packet
   arrives within ``[delay - jitter, delay + jitter]`` of its send time.
5. **Reordering.** With ``reorder=True`` jitter may let a packet overtake an earlier one.
   With ``reorder=False`` a packet is held until the previous one is delivered (its delivery
   time is raised to the previous packet's), so the order is kept and the bounds above still
   hold.

Deterministic: one ``random.Random(seed)`` drives everything, so the same seed, settings and
inputs give the same outputs.
"""

from __future__ import annotations

import heapq
import random

__all__ = ["NetEm"]


def _probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    return float(value)


class NetEm:
    def __init__(
        self,
        seed: int,
        *,
        loss: float = 0.0,
        burst_loss: tuple[float, float] | None = None,
        delay: float = 0.0,
        jitter: float = 0.0,
        reorder: bool = True,
        duplicate: float = 0.0,
        rate_bps: float | None = None,
        queue_limit_bytes: int | None = None,
    ) -> None:
        self._loss = _probability("loss", loss)
        if burst_loss is not None:
            p_gb, p_bg = burst_loss
            burst_loss = (_probability("burst_loss p_good_to_bad", p_gb), _probability("burst_loss p_bad_to_good", p_bg))
        self._burst = burst_loss
        if delay < 0 or jitter < 0:
            raise ValueError(f"delay and jitter must be >= 0, got {delay} and {jitter}")
        self._delay = float(delay)
        self._jitter = float(jitter)
        self._reorder = reorder
        self._duplicate = _probability("duplicate", duplicate)
        self._rate: float | None = None
        self._queue_limit: int | None = None
        self.set_rate(rate_bps, queue_limit_bytes)

        self._rng = random.Random(seed)
        self._bad = False  # Gilbert-Elliott state
        self._link_free_at = float("-inf")  # when the bottleneck finishes its last packet
        self._last_delivery = float("-inf")  # for reorder=False
        self._pending: list[tuple[float, int, bytes]] = []  # heap of (delivery time, send order, packet)
        self._order = 0
        self.counters = {"sent": 0, "lost": 0, "duplicated": 0, "dropped_queue": 0, "delivered": 0}

    def set_rate(self, rate_bps: float | None, queue_limit_bytes: int | None = None) -> None:
        """The bottleneck from now on (rule 3); None: none. Packets already on the link keep their times."""
        if rate_bps is not None and rate_bps <= 0:
            raise ValueError(f"rate_bps must be > 0, got {rate_bps}")
        if queue_limit_bytes is not None:
            if rate_bps is None:
                raise ValueError("queue_limit_bytes needs rate_bps: without a bottleneck nothing queues")
            if queue_limit_bytes <= 0:
                raise ValueError(f"queue_limit_bytes must be > 0, got {queue_limit_bytes}")
        self._rate = rate_bps
        self._queue_limit = queue_limit_bytes

    # ----- input -------------------------------------------------------------------------------

    def send(self, packet: bytes, now: float) -> None:
        """Put ``packet`` on the link at ``now``."""
        self.counters["sent"] += 1
        if self._lost():
            self.counters["lost"] += 1
            return
        self._enqueue(packet, now)
        if self._duplicate and self._rng.random() < self._duplicate:
            self.counters["duplicated"] += 1
            self._enqueue(packet, now)

    def _lost(self) -> bool:
        rng = self._rng
        if self._burst is not None:
            p_gb, p_bg = self._burst
            if self._bad:
                if rng.random() < p_bg:
                    self._bad = False
            elif rng.random() < p_gb:
                self._bad = True
            if self._bad:
                return True
        return self._loss > 0.0 and rng.random() < self._loss

    def _enqueue(self, packet: bytes, now: float) -> None:
        departure = now
        if self._rate is not None:
            backlog = max(0.0, self._link_free_at - now) * self._rate / 8  # bytes still on the link
            if self._queue_limit is not None and backlog + len(packet) > self._queue_limit:
                self.counters["dropped_queue"] += 1
                return
            departure = max(now, self._link_free_at) + len(packet) * 8 / self._rate
            self._link_free_at = departure
        delivery = departure + self._delay
        if self._jitter:
            delivery = max(departure, delivery + self._rng.uniform(-self._jitter, self._jitter))
        if not self._reorder:
            delivery = max(delivery, self._last_delivery)
            self._last_delivery = delivery
        heapq.heappush(self._pending, (delivery, self._order, packet))
        self._order += 1

    # ----- output ------------------------------------------------------------------------------

    def poll(self, now: float) -> list[bytes]:
        """The packets delivered by ``now``, in delivery order."""
        out = []
        pending = self._pending
        while pending and pending[0][0] <= now:
            out.append(heapq.heappop(pending)[2])
        self.counters["delivered"] += len(out)
        return out

    def next_timer(self) -> float | None:
        """When the next packet is due, or None if nothing is in flight."""
        return self._pending[0][0] if self._pending else None

    @property
    def in_flight(self) -> int:
        """Packets on the link (sent, not lost or dropped, not yet polled)."""
        return len(self._pending)
