"""KeyframeRequester: players' keyframe requests, aggregated and rate-limited toward one publisher.

A sans-IO core (see docs/media.md): ``now`` is monotonic seconds passed in. One per publisher
video track. Players (and the L3 jitter buffer, and the NACK generator after a loss storm) call
``request``; the IO shell calls ``poll`` after every input and at ``next_timer()``, and when
``poll`` says so sends ``packet(sender_ssrc, media_ssrc)`` to the publisher.

Rules:

- At most one request goes to the publisher per ``min_interval`` seconds. A request when none
  has been sent for ``min_interval`` goes out at the next ``poll``; one arriving inside the
  interval is remembered (*pending*) and goes out when the interval ends. Requests arriving
  while one is pending are folded into it (``suppressed``): 100 players asking at once cost
  one PLI.
- ``on_keyframe(now)`` (a keyframe from the publisher began) cancels the pending request (it
  counts as ``suppressed`` too) and any retry: the players get that keyframe instead.
- Retry: if no keyframe has begun ``retry_after`` seconds after a request went out (the PLI or
  the keyframe may have been lost), the request is repeated once (``retries``); ``None``
  disables this. ``retry_after`` is never shorter than ``min_interval``.
- Slow reasons: a request whose reason has an interval in ``reason_intervals`` (the node gives
  ``congestion`` 3 s: a player whose path cannot carry the stream wants a keyframe to restart
  from, but its wish must not set the publisher's keyframe pace for everyone) is not due before
  that interval has passed since the last keyframe began (``on_keyframe``); until then it is
  pending, and a keyframe that begins meanwhile (the publisher's own, every GOP) answers it.
  A request of another reason is due as above.
- The request is a PLI (RFC 4585 §6.3.1) unless ``use_fir`` is set because the publisher
  negotiated only ``ccm fir``; then a FIR (RFC 5104 §4.3.1) whose command sequence number
  goes up by one for each new request and stays the same for a repetition (a retry).

Counters (``counters`` dict): requested, sent (retries included), suppressed, retries. At any
time ``requested == sent - retries + suppressed + (1 if pending else 0)``. ``reasons`` counts
requests by the ``reason`` given.
"""

from __future__ import annotations

from sfu.rtp.rtcp import Fir, Pli

__all__ = ["KeyframeRequester"]


class KeyframeRequester:
    """Aggregates and rate-limits keyframe requests toward a publisher (rules above)."""

    def __init__(
        self, min_interval: float = 0.5, *, use_fir: bool = False, retry_after: float | None = 1.0,
        reason_intervals: dict[str, float] | None = None,
    ) -> None:
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0, got {min_interval}")
        self.min_interval = min_interval
        self.use_fir = use_fir
        self.retry_after = None if retry_after is None else max(retry_after, min_interval)
        self.reason_intervals = dict(reason_intervals or {})
        self._last_keyframe: float | None = None
        self._pending_since: float | None = None  # when the pending request is due
        self._last_sent: float | None = None
        self._retry_at: float | None = None  # set after a new request is sent, until a keyframe
        self._fir_seq = -1
        self.counters = {"requested": 0, "sent": 0, "suppressed": 0, "retries": 0}
        self.reasons: dict[str, int] = {}

    @property
    def pending(self) -> bool:
        return self._pending_since is not None

    @property
    def kind(self) -> str:
        return "fir" if self.use_fir else "pli"

    def request(self, now: float, reason: str = "player") -> None:
        self.counters["requested"] += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        due = now
        slow = self.reason_intervals.get(reason)
        if slow is not None and self._last_keyframe is not None:
            due = max(now, self._last_keyframe + slow)
        if self._pending_since is None:
            self._pending_since = due
        else:
            self.counters["suppressed"] += 1
            self._pending_since = min(self._pending_since, due)

    def on_keyframe(self, now: float) -> None:
        self._last_keyframe = now
        if self._pending_since is not None:
            self._pending_since = None
            self.counters["suppressed"] += 1
        self._retry_at = None

    def _interval_over(self, now: float) -> bool:
        return self._last_sent is None or now >= self._last_sent + self.min_interval  # as next_timer sums it

    def poll(self, now: float) -> bool:
        """True when a request should be sent to the publisher now (then build it with ``packet``)."""
        if self._pending_since is not None and now >= self._pending_since and self._interval_over(now):
            self._pending_since = None
            self._fir_seq = (self._fir_seq + 1) % 256
            self._retry_at = None if self.retry_after is None else now + self.retry_after
        elif self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            self.counters["retries"] += 1
        else:
            return False
        self._last_sent = now
        self.counters["sent"] += 1
        return True

    def next_timer(self) -> float | None:
        due = self._retry_at
        if self._pending_since is not None:
            pending = self._pending_since if self._last_sent is None \
                else max(self._pending_since, self._last_sent + self.min_interval)
            if due is None or pending < due:
                due = pending
        return due

    def packet(self, sender_ssrc: int, media_ssrc: int) -> Pli | Fir:
        """The RTCP request for the publisher's ``media_ssrc``: PLI, or FIR with the current seq nr."""
        if self.use_fir:
            return Fir(sender_ssrc, [(media_ssrc, max(self._fir_seq, 0))])
        return Pli(sender_ssrc, media_ssrc)
