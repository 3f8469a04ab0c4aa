"""NackGenerator: the node's receiver side toward a publisher; gaps in ext_seq become NACKs.

A sans-IO core (see docs/media.md): ``now`` is monotonic seconds and ``rtt`` seconds, both
passed in; the caller sends what ``poll`` returns (16-bit seqs are ``ext_seq & 0xFFFF``, packed
by ``sfu.rtp.rtcp.Nack``) and re-arms one timer at ``next_timer()``. Sequence numbers are the
extended (64-bit) ones from the ingress unwrapper, so there is no wrap-around here.

Rules:

- The first packet sets the highest ext_seq seen. A packet above it reveals a gap: every ext_seq
  in between becomes *missing*, noted at ``now``. So does a packet below the lowest ext_seq seen
  (the stream's first packets reordered: the first to arrive was not the first sent), for the
  ext_seqs between the two, unless that gap would overflow ``max_list`` (then it is ignored). A packet at or below it fills a gap if it was
  missing (``recovered`` if it had been NACKed, ``reordered`` if not) and is ignored otherwise.
- A retransmission above the highest seen (RTX racing ahead of the original stream) does not
  move the highest: it is remembered so that the gap that reveals it later skips it (mediasoup).
- ``poll(now, rtt)`` returns the missing ext_seqs to NACK now, ascending. A missing seq is
  asked the first time once it has been missing for ``reorder_delay`` (0: at once), then again
  whenever ``max(rtt, min_interval)`` has passed since its last ask (``rtt <= 0`` means
  unknown: ``default_rtt``). It is asked at most ``max_retries`` times in all (as mediasoup's
  MaxNackRetries); one interval after its last ask, or once missing for ``max_age`` seconds,
  it is given up (``given_up``).
- A packet flagged ``is_keyframe`` (the first packet of a keyframe) makes every missing seq
  below it pointless: they are forgotten (``forgotten``), and a gap it reveals is not
  recorded at all. Flag only the keyframe's first packet, or its own lost packets would be
  forgotten too. With ``keyframe_clears=False`` (a receiver that still releases the frames
  before a keyframe, as the node's L3 jitter buffer does) older gaps stay, and the gap a
  keyframe reveals is recorded like any other unless it would overflow ``max_list``: then it
  and every older gap are forgotten (the keyframe restarts the stream: no storm, no keyframe
  wanted).
- If the missing list would grow past ``max_list`` (a loss storm, or a jump far ahead not
  landing on a keyframe), all missing seqs are forgotten (``forgotten``, ``storms``) and
  ``keyframe_needed`` turns True; ``take_keyframe_needed()`` reads and resets it.
- ``next_timer()`` is the earliest time at which ``poll`` has something to do (an ask or a
  give-up), computed with the last ``rtt`` given to ``poll``; None when nothing is missing. It is
  kept between the inputs that can move it (a seq missing or found, ``poll``, a new reorder delay),
  so asking after every packet costs nothing while gaps wait.
- Reorder delay from jitter: with ``reorder_factor`` > 0, ``set_jitter(j)`` (seconds, e.g. the
  L3 jitter buffer's per-packet arrival jitter) sets ``reorder_delay = min(reorder_factor * j,
  max_reorder_delay)``: a path that spreads packets by tens of milliseconds reorders them, and
  a NACK for each would double the publisher's uplink for nothing. It applies to every seq not
  asked yet; 0 (the default) keeps ``reorder_delay`` as given.

Counters (``counters`` dict): nacked (seqs asked a first time), retries (asks after the
first), recovered, reordered, given_up, forgotten, storms.
"""

from __future__ import annotations

import math

__all__ = ["NackGenerator"]


class _Missing:
    __slots__ = ("since", "sent_at", "tries")

    def __init__(self, since: float) -> None:
        self.since = since
        self.sent_at = 0.0
        self.tries = 0


class NackGenerator:
    """Gaps in a publisher's ext_seqs → NACK lists, retried every ~RTT (rules above)."""

    def __init__(
        self,
        max_age: float = 1.0,
        max_retries: int = 10,
        max_list: int = 1000,
        *,
        reorder_delay: float = 0.0,
        min_interval: float = 0.02,
        default_rtt: float = 0.1,
        reorder_factor: float = 0.0,
        max_reorder_delay: float = 0.05,
        keyframe_clears: bool = True,
    ) -> None:
        if max_retries < 1 or max_list < 1:
            raise ValueError("max_retries and max_list must be >= 1")
        if reorder_factor < 0 or max_reorder_delay < 0:
            raise ValueError("reorder_factor and max_reorder_delay must be >= 0")
        self.reorder_factor = reorder_factor
        self.max_reorder_delay = max_reorder_delay
        self.keyframe_clears = keyframe_clears
        self.max_age = max_age
        self.max_retries = max_retries
        self.max_list = max_list
        self.reorder_delay = reorder_delay
        self.min_interval = min_interval
        self.default_rtt = default_rtt
        self._rtt = default_rtt
        self._highest: int | None = None
        self._lowest: int | None = None
        self._missing: dict[int, _Missing] = {}  # ascending ext_seq (insertion order)
        self._early: set[int] = set()  # retransmissions seen above _highest
        self._due: float | None = None  # next_timer(), unless _due_stale (the inputs that move it set that)
        self._due_stale = True
        self._keyframe_needed = False
        self.counters = {
            "nacked": 0, "retries": 0, "recovered": 0, "reordered": 0,
            "given_up": 0, "forgotten": 0, "storms": 0,
        }

    @property
    def missing(self) -> list[int]:
        """The ext_seqs currently missing, ascending."""
        return list(self._missing)

    @property
    def keyframe_needed(self) -> bool:
        return self._keyframe_needed

    def take_keyframe_needed(self) -> bool:
        needed, self._keyframe_needed = self._keyframe_needed, False
        return needed

    def set_jitter(self, jitter: float) -> None:
        """The path's arrival jitter (seconds): the reorder delay follows it when reorder_factor > 0."""
        if self.reorder_factor > 0:
            delay = min(self.reorder_factor * max(jitter, 0.0), self.max_reorder_delay)
            if delay != self.reorder_delay:
                self.reorder_delay = delay
                self._due_stale = True

    def on_packet(
        self, ext_seq: int, now: float, *, is_keyframe: bool = False, is_retransmission: bool = False
    ) -> None:
        highest = self._highest
        if highest is None:
            self._highest = self._lowest = ext_seq
        elif ext_seq < self._lowest:
            if len(self._missing) + self._lowest - ext_seq - 1 <= self.max_list:
                self._missing.update((seq, _Missing(now)) for seq in range(ext_seq + 1, self._lowest))
                self._missing = dict(sorted(self._missing.items()))  # ascending ext_seq
                self._due_stale = True
            self._lowest = ext_seq
        elif ext_seq <= highest:
            item = self._missing.pop(ext_seq, None)
            if item is not None:
                self.counters["recovered" if item.tries else "reordered"] += 1
                self._due_stale = True
        elif is_retransmission:
            if ext_seq - highest <= self.max_list:
                self._early.add(ext_seq)
        else:
            gap = ext_seq - highest - 1
            if is_keyframe and (self.keyframe_clears or len(self._missing) + gap > self.max_list):
                self._forget_below(ext_seq)  # the gap before a keyframe is as pointless as older ones
            elif len(self._missing) + gap > self.max_list:
                self._storm()
            elif gap:
                for seq in range(highest + 1, ext_seq):
                    if seq not in self._early:
                        self._missing[seq] = _Missing(now)
                self._due_stale = True
            self._highest = ext_seq
            if self._early:
                self._early = {seq for seq in self._early if seq > ext_seq}
        if is_keyframe and self._missing and self.keyframe_clears:
            self._forget_below(ext_seq)

    def advance_to(self, ext_seq: int) -> None:
        """Every ext_seq up to ``ext_seq`` arrived in order (seen by the fast path, which calls
        nothing per packet): the same state as ``on_packet`` for each of them, none a keyframe."""
        if self._highest is None or ext_seq > self._highest:
            self._highest = ext_seq
            if self._early:
                self._early = {seq for seq in self._early if seq > ext_seq}

    def poll(self, now: float, rtt: float) -> list[int]:
        self._rtt = rtt if rtt > 0 else self.default_rtt
        self._due_stale = True
        if not self._missing:
            return []
        interval = max(self._rtt, self.min_interval)
        counters = self.counters
        asks = []
        done = []
        for seq, item in self._missing.items():
            # compare with the same sums next_timer() returns, so a timer fired at its deadline
            # always acts (now - a >= b can be false at now == a + b in floating point)
            if now >= item.since + self.max_age:
                done.append(seq)
            elif item.tries == 0:
                if now >= item.since + self.reorder_delay:
                    item.tries, item.sent_at = 1, now
                    counters["nacked"] += 1
                    asks.append(seq)
            elif now >= item.sent_at + interval:
                if item.tries >= self.max_retries:
                    done.append(seq)
                else:
                    item.tries += 1
                    item.sent_at = now
                    counters["retries"] += 1
                    asks.append(seq)
        for seq in done:
            del self._missing[seq]
        counters["given_up"] += len(done)
        return asks

    def next_timer(self) -> float | None:
        if not self._missing:
            return None
        if self._due_stale:
            interval = max(self._rtt, self.min_interval)
            due = math.inf
            for item in self._missing.values():
                ask = item.sent_at + interval if item.tries else item.since + self.reorder_delay
                due = min(due, ask, item.since + self.max_age)
            self._due, self._due_stale = due, False
        return self._due

    def _forget_below(self, ext_seq: int) -> None:
        old = [seq for seq in self._missing if seq < ext_seq]
        for seq in old:
            del self._missing[seq]
        self.counters["forgotten"] += len(old)
        self._due_stale = True

    def _storm(self) -> None:
        self.counters["forgotten"] += len(self._missing)
        self.counters["storms"] += 1
        self._missing.clear()
        self._early.clear()
        self._due_stale = True
        self._keyframe_needed = True
