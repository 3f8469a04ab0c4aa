"""LatencyBudget: what to drop toward one player so that its media is never later than a budget.
FrameJudge (at the end): a player track's frame-by-frame decisions on it.

The reference (the spec): native/budget.pyx compiles the same rules, and sfu.media.budget picks one.

A sans-IO core (docs/media.md): every input carries ``now`` (monotonic seconds); it never reads a
clock, never touches a socket, keeps plain ``counters``. One per player (all its tracks share
one path, so they share one queue). DESIGN.md §2, "Latency never accumulates".

The caller offers every frame before sending it::

    offer(frame_kind, keyframe, droppable, size_bytes, capture_or_first_arrival, now, send_rate_bps)

and gets a ``Decision``: SEND it, DROP it, or SKIP_TO_KEYFRAME (drop it and every video frame up
to the next keyframe; ``take_keyframe_needed()`` then says to ask the publisher for one).
``send_rate_bps`` is the player's congestion estimate (sfu/media/congestion.py).
``capture_or_first_arrival`` is when the frame could first have gone to this player: the arrival
of its first packet (RTC), its release time (L3: the shared target delay is chosen, not this
path's fault), or its capture time when known and the budget is meant end to end. RTC forwards
packets as they come: decide at a frame's first packet with the size expected (the last frame's
of the same kind) and queue the rest with ``add_bytes``; a frame once sent is sent whole.

Model: a virtual send queue, first in first out, the bytes of every frame sent, drained at the
rate in effect (the rate given with the previous offer; ``on_time(now)`` drains without
offering). A frame's expected delay is when its last byte would leave the queue, counted from
its capture (or its first packet's arrival at the node)::

    delay = (bytes ahead of it + its size) * 8 / send_rate_bps + (now - capture_or_first_arrival)

Rules, with ``video_limit = budget_s - audio_reserve_s`` (0.4 - 0.05 = 0.35 s by default):

1. Audio is judged as if no video were queued: ``delay`` counts only queued audio bytes. Over
   ``budget_s`` -> DROP (dropped_audio). So audio goes only when even an empty video queue
   could not bring it in time: it is dropped last. Video drops clear the queue in front of it.
   (Queued audio is counted whole, though in the FIFO some of it waits behind video: cautious.)
2. Video is judged on the whole queue and held to ``video_limit``; the reserve keeps room for
   the audio that follows it, so audio stays within ``budget_s`` behind it.
3. While skipping, video that is not a keyframe -> DROP (dropped_skip). A keyframe ends the
   skip if it fits (rule 5) or no video is queued (rule 7); otherwise it is dropped too and
   another keyframe is wanted.
4. A droppable video frame (nothing depends on it, FrameInfo.droppable) is dropped once its
   delay passes ``droppable_at * video_limit`` (half, by default): the cheap frames go early,
   before the queue gets near the point where a frame others depend on must go.
5. Any other video frame with ``delay <= video_limit`` -> SEND.
6. Otherwise -> SKIP_TO_KEYFRAME (dropped_skip): dropping a frame others depend on breaks the
   picture until the next keyframe, so every video frame up to it is dropped, and a keyframe
   is wanted.
7. A keyframe is sent, even over ``video_limit``, when no video is queued: nothing smaller can
   restart the picture, and waiting longer would not make it fit (oversized_keyframes).
8. Keyframe requests (keyframes_requested; ``take_keyframe_needed()``): a wanted keyframe is
   flagged once, but at most once per ``request_interval_s`` (1 s): a request makes the
   publisher send a big frame to every player, so one slow player must not set the pace. One
   wanted inside the interval is flagged at the first video frame offered after it. Nor is it
   flagged while the queue has no room for a keyframe the size of the last one (its delay,
   with this frame's age, over ``video_limit``): its answer would only be dropped. While a
   skip lasts, the request is flagged again every ``rerequest_s`` (2 s), in case it or its
   answer was lost. (The publisher side still aggregates and rate-limits: KeyframeRequester.)

9. The path's own queue. ``set_path_delay(seconds)``: what the network path to the player is
   measured to hold on top of its base delay (PlayerCongestion.queue_delay). It is added to
   every frame's delay in rules 1-7 until the next call: a bottleneck queue that filled before
   the estimate came down is drained by dropping (the virtual queue alone would think the
   media leaves at once).
10. Retransmissions (``offer_resend(size, now)``): a resend goes only when the queue, with it and
   the path's delay, stays within ``droppable_limit`` (``resent``; else ``resends_refused``):
   repairing an old frame must not push the new ones over the budget; one sent is queued.
11. The player's own keyframe requests (PLI/FIR; ``allow_keyframe_request(now)``): refused while
   skipping (rule 8 asks when a keyframe has room) and at most one per ``request_interval_s``
   otherwise (``player_requests``, ``player_requests_refused``): a player whose path loses
   frames must not make the publisher send keyframes to everyone several times a second.

Bad input never crashes it: a rate <= 0 counts as 1 bit/s, a negative size or age as 0, time
going backwards drains nothing. An unknown ``frame_kind`` is a ValueError.

Counters: sent_audio, sent_video, dropped_droppable, dropped_skip, dropped_audio,
keyframes_requested, oversized_keyframes, resent, resends_refused, player_requests,
player_requests_refused.
"""

from __future__ import annotations

import enum
from collections import deque

__all__ = ["Decision", "FrameJudge", "LatencyBudget", "account_frames", "decide_frames", "judge_frames",
           "new_frame_for_all", "take_keyframes_needed"]


class Decision(enum.Enum):
    SEND = "send"
    DROP = "drop"  # this frame only
    SKIP_TO_KEYFRAME = "skip_to_keyframe"  # this frame and all video up to the next keyframe


class LatencyBudget:
    """Per-player drop decisions that keep the expected delay within a budget (rules above).

    (Its inner loop runs per player and frame: kept lean. The queue is a deque of [is_audio, bytes
    still queued], with the totals per kind beside it.)"""

    def __init__(self, budget_s: float = 0.4, *, audio_reserve_s: float = 0.05, droppable_at: float = 0.5,
                 request_interval_s: float = 1.0, rerequest_s: float = 2.0) -> None:
        if not 0 <= audio_reserve_s < budget_s:
            raise ValueError("need 0 <= audio_reserve_s < budget_s")
        if not 0 < droppable_at <= 1:
            raise ValueError("need 0 < droppable_at <= 1")
        self.budget_s = budget_s
        self.video_limit = budget_s - audio_reserve_s
        self.droppable_limit = droppable_at * self.video_limit
        self.request_interval_s = request_interval_s
        self.rerequest_s = max(rerequest_s, request_interval_s)
        self._queue: deque[list] = deque()  # [is_audio, bytes still queued], oldest first
        self._audio = 0.0  # bytes still queued, per kind
        self._video = 0.0
        self._rate: float | None = None
        self._last: float | None = None
        self._skipping = False
        self._last_request: float | None = None
        self._wanted = False  # a keyframe is wanted and not yet flagged
        self._keyframe_bytes: int | None = None  # the size of the last keyframe offered
        self._keyframe_needed = False
        self.last_delay: float | None = None  # expected delay of the last frame offered
        self.path_delay = 0.0  # rule 9
        self._last_player_request: float | None = None
        self.counters = {"sent_audio": 0, "sent_video": 0, "dropped_droppable": 0, "dropped_skip": 0,
                         "dropped_audio": 0, "keyframes_requested": 0, "oversized_keyframes": 0, "resent": 0,
                         "resends_refused": 0, "player_requests": 0, "player_requests_refused": 0}

    # ----- outputs ---------------------------------------------------------------------------

    @property
    def queued_bytes(self) -> float:
        return self._audio + self._video

    @property
    def skipping(self) -> bool:
        """Waiting for a keyframe: video is being dropped."""
        return self._skipping

    def queue_delay(self) -> float:
        """Seconds the queued bytes take to leave at the current rate (0 before any rate)."""
        return self.queued_bytes * 8 / self._rate if self._rate else 0.0

    def take_keyframe_needed(self) -> bool:
        """True once per flagged request: the caller asks the publisher for a keyframe."""
        needed, self._keyframe_needed = self._keyframe_needed, False
        return needed

    # ----- inputs ----------------------------------------------------------------------------

    def on_time(self, now: float) -> None:
        """Drain the virtual queue up to ``now`` at the current rate."""
        last = self._last
        if last is None:
            self._last = now
        elif now > last:
            if self._rate and self._queue:
                self._drain((now - last) * self._rate / 8)
            self._last = now

    def set_path_delay(self, seconds: float | None) -> None:
        """Rule 9: the path's measured queue delay (None or negative: none)."""
        self.path_delay = max(0.0, seconds or 0.0)

    def offer_resend(self, size_bytes: int, now: float) -> bool:
        """Rule 10: whether a retransmission of ``size_bytes`` goes; queued when it does."""
        self.on_time(now)
        size = max(size_bytes, 0)
        rate = self._rate or 0.0
        delay = (self.queued_bytes + size) * 8 / rate + self.path_delay if rate else self.path_delay
        if delay > self.droppable_limit:
            self.counters["resends_refused"] += 1
            return False
        self.counters["resent"] += 1
        self._queue_bytes(False, size)
        return True

    def allow_keyframe_request(self, now: float) -> bool:
        """Rule 11: whether the player's own keyframe request goes on to the publisher."""
        last = self._last_player_request
        if self._skipping or (last is not None and now - last < self.request_interval_s):
            self.counters["player_requests_refused"] += 1
            return False
        self._last_player_request = now
        self.counters["player_requests"] += 1
        return True

    def add_bytes(self, frame_kind: str, size_bytes: int, now: float) -> None:
        """Queue bytes sent without an offer: later packets of a frame already sent (RTC decides
        at a frame's first packet), retransmissions. No decision: they are on the wire."""
        if frame_kind != "video" and frame_kind != "audio":
            raise ValueError(f"frame_kind must be 'audio' or 'video', not {frame_kind!r}")
        self.on_time(now)
        self._queue_bytes(frame_kind == "audio", max(size_bytes, 0))

    def offer(self, frame_kind: str, keyframe: bool, droppable: bool, size_bytes: int,
              capture_or_first_arrival: float, now: float, send_rate_bps: float) -> Decision:
        audio = frame_kind == "audio"
        if not audio and frame_kind != "video":
            raise ValueError(f"frame_kind must be 'audio' or 'video', not {frame_kind!r}")
        self.on_time(now)
        self._rate = rate = max(float(send_rate_bps), 1.0)
        size = size_bytes if size_bytes > 0 else 0
        age = now - capture_or_first_arrival
        age = (age if age > 0.0 else 0.0) + self.path_delay
        counters = self.counters
        if audio:
            delay = self.last_delay = (self._audio + size) * 8 / rate + age
            if delay > self.budget_s:
                counters["dropped_audio"] += 1
                return Decision.DROP
            counters["sent_audio"] += 1
            self._queue_bytes(True, size)
            return Decision.SEND
        delay = self.last_delay = (self._audio + self._video + size) * 8 / rate + age
        if keyframe:
            self._keyframe_bytes = size
            if delay <= self.video_limit or not self._video > 0.5:
                if delay > self.video_limit:
                    counters["oversized_keyframes"] += 1
                self._skipping = self._wanted = False
                counters["sent_video"] += 1
                self._queue_bytes(False, size)
                return Decision.SEND
        if self._skipping:
            counters["dropped_skip"] += 1
            self._wanted |= keyframe
            self._maybe_request(now, age, rate)
            return Decision.DROP
        if droppable and not keyframe and delay > self.droppable_limit:
            counters["dropped_droppable"] += 1
            return Decision.DROP
        if delay <= self.video_limit:
            counters["sent_video"] += 1
            self._queue_bytes(False, size)
            return Decision.SEND
        counters["dropped_skip"] += 1
        self._skipping = self._wanted = True
        self._maybe_request(now, age, rate)
        return Decision.SKIP_TO_KEYFRAME

    # ----- internals -------------------------------------------------------------------------

    def _queue_bytes(self, audio: bool, size: int) -> None:
        if size:
            self._queue.append([audio, float(size)])
            if audio:
                self._audio += size
            else:
                self._video += size

    def _maybe_request(self, now: float, age: float, rate: float) -> None:
        if self._video > 0.5 and self._keyframe_bytes is not None:
            if (self.queued_bytes + self._keyframe_bytes) * 8 / rate + age > self.video_limit:
                return  # a keyframe now would be dropped: wait until the queue has room for one
        since = None if self._last_request is None else now - self._last_request
        if since is None or (self._wanted and since >= self.request_interval_s) or since >= self.rerequest_s:
            self._keyframe_needed = True
            self._wanted = False
            self._last_request = now
            self.counters["keyframes_requested"] += 1

    def _drain(self, budget: float) -> None:
        queue = self._queue
        while budget > 0 and queue:
            entry = queue[0]
            take = min(budget, entry[1])
            entry[1] -= take
            budget -= take
            if entry[0]:
                self._audio -= take
            else:
                self._video -= take
            if entry[1] <= 1e-9:
                queue.popleft()
        if not queue:
            self._audio = self._video = 0.0


class FrameJudge:
    """One player track's decisions, frame by frame, on its path's budget (the path's `congestion`
    gives the rate: its ``estimate_bps``, and is told ``on_limited(now)`` when video is dropped).

    RTC forwards packets as they come, so a frame is judged at its first packet (`judge`), with the
    size expected: its first packet's, or the last frame's whole size if more. The budget then
    queues what the frame carries beyond that as it comes (`account`), if it was sent. L3 releases
    frames whole: each is judged with its whole size (`decide`). ``frame_send`` is the last
    decision: the frame in hand goes to the player or not at all.

    The track judges all its gated players together, in one call each (`new_frame_for_all`,
    `judge_frames`, `account_frames`, `decide_frames`, and `take_keyframes_needed` for its measured
    players): that is per player and frame, so it is compiled.
    """

    __slots__ = ("budget", "congestion", "kind", "frame_ts", "frame_send", "frame_bytes", "frame_counted",
                 "last_frame_bytes")

    def __init__(self, budget: LatencyBudget, congestion, kind: str) -> None:
        if kind != "audio" and kind != "video":
            raise ValueError(f"kind must be 'audio' or 'video', not {kind!r}")
        self.budget = budget
        self.congestion = congestion
        self.kind = kind
        self.frame_ts: int | None = None  # the frame being forwarded (RTC)
        self.frame_send = True  # and whether it goes
        self.frame_bytes = 0  # what it has carried so far (sent or dropped)
        self.frame_counted = 0  # what the budget has queued of it
        self.last_frame_bytes = 0  # the whole size of the frame before it

    def new_frame(self, timestamp: int) -> bool:
        """RTC: does a packet of this timestamp start a frame to judge? (Each audio packet is one.)"""
        return timestamp != self.frame_ts or self.kind == "audio"

    def judge(self, timestamp: int, first_size: int, keyframe: bool, droppable: bool, now: float) -> bool:
        """RTC: the frame whose first packet (`first_size` bytes) is in hand: does it go?"""
        if self.frame_ts is not None and self.frame_bytes:
            self.last_frame_bytes = self.frame_bytes
        self.frame_ts, self.frame_bytes = timestamp, 0
        expected = max(first_size, self.last_frame_bytes)
        decision = self.budget.offer(self.kind, keyframe, droppable, expected, now, now, self.congestion.estimate_bps)
        self.frame_send = decision is Decision.SEND
        self.frame_counted = expected
        if not self.frame_send and self.kind == "video":
            self.congestion.on_limited(now)
        return self.frame_send

    def account(self, size: int, at: float) -> None:
        """RTC: the frame in hand has carried `size` bytes so far (the last at `at`): the budget
        queues what it has not counted yet, if the frame is sent."""
        self.frame_bytes = size
        if self.frame_send and size > self.frame_counted:
            self.budget.add_bytes(self.kind, size - self.frame_counted, at)
            self.frame_counted = size

    def decide(self, keyframe: bool, size: int, droppable: bool, now: float) -> bool:
        """A whole frame of `size` bytes (L3: released at `now`): does it go? Its offer queues it whole."""
        decision = self.budget.offer(self.kind, keyframe, droppable, size, now, now, self.congestion.estimate_bps)
        self.frame_send = decision is Decision.SEND
        if not self.frame_send and self.kind == "video":
            self.congestion.on_limited(now)
        return self.frame_send


def take_keyframes_needed(judges: list[FrameJudge]) -> int:
    """``take_keyframe_needed()`` of each one's budget: how many said yes."""
    return sum(judge.budget.take_keyframe_needed() for judge in judges)


def new_frame_for_all(judges: list[FrameJudge], timestamp: int) -> bool:
    """Does a packet of `timestamp` start a frame for every one of them (`new_frame`)?"""
    return all(judge.new_frame(timestamp) for judge in judges)


def judge_frames(judges: list[FrameJudge], timestamp: int, first_size: int, keyframe: bool, droppable: bool,
                 now: float) -> list[int]:
    """`judge` for each, in order: the indexes of those whose decision changed."""
    return [i for i, judge in enumerate(judges)
            if judge.frame_send != judge.judge(timestamp, first_size, keyframe, droppable, now)]


def account_frames(judges: list[FrameJudge], timestamp: int, size: int, at: float) -> None:
    """`account` for each that is on the frame of `timestamp`."""
    for judge in judges:
        if judge.frame_ts == timestamp:
            judge.account(size, at)


def decide_frames(judges: list[FrameJudge], keyframe: bool, size: int, droppable: bool, now: float) -> list[int]:
    """`decide` for each, in order: the indexes of those whose decision changed."""
    return [i for i, judge in enumerate(judges) if judge.frame_send != judge.decide(keyframe, size, droppable, now)]
