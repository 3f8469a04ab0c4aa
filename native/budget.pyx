# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False
"""LatencyBudget, compiled: the rules of sfu/media/_budget_py.py (the reference and the spec), the
same arithmetic in the same order on C doubles, so that both give the same decisions, counters and
delays for the same inputs (tests/media/test_budget_differential.py holds them together).

It runs per player and frame (every measured player's budget judges every frame), which is why it
is compiled, with FrameJudge (a player track's frame decisions on it) and the loops that judge a
track's gated players together. The virtual queue is a ring of (is_audio, bytes still queued) in C
arrays; "None" values of the reference are a flag beside a double.
"""

from libc.stdlib cimport free, malloc

from sfu.media._budget_py import Decision

cdef object SEND = Decision.SEND
cdef object DROP = Decision.DROP
cdef object SKIP_TO_KEYFRAME = Decision.SKIP_TO_KEYFRAME

DEF QUEUE_START = 16  # entries the ring starts with (it doubles when full)


cdef class LatencyBudget:
    """Per-player drop decisions that keep the expected delay within a budget (sfu/media/_budget_py.py)."""

    cdef readonly double budget_s, video_limit, droppable_limit, request_interval_s, rerequest_s
    cdef public double path_delay  # rule 9
    # the virtual queue: a ring of entries, oldest at _head
    cdef double* _q_bytes
    cdef unsigned char* _q_audio
    cdef Py_ssize_t _head, _count, _cap
    cdef double _audio, _video  # bytes still queued, per kind
    cdef double _rate  # 0: none yet (a rate given is at least 1)
    cdef bint _has_last
    cdef double _last
    cdef bint _skipping, _wanted, _keyframe_needed
    cdef bint _has_last_request
    cdef double _last_request
    cdef bint _has_keyframe_bytes
    cdef double _keyframe_bytes
    cdef bint _has_last_delay
    cdef double _last_delay
    cdef bint _has_last_player_request
    cdef double _last_player_request
    cdef long long c_sent_audio, c_sent_video, c_dropped_droppable, c_dropped_skip, c_dropped_audio
    cdef long long c_keyframes_requested, c_oversized_keyframes, c_resent, c_resends_refused
    cdef long long c_player_requests, c_player_requests_refused

    def __cinit__(self, *args, **kwargs):
        self._q_bytes = <double*>malloc(QUEUE_START * sizeof(double))
        self._q_audio = <unsigned char*>malloc(QUEUE_START)
        if self._q_bytes == NULL or self._q_audio == NULL:
            raise MemoryError()
        self._cap = QUEUE_START

    def __dealloc__(self):
        free(self._q_bytes)
        free(self._q_audio)

    def __init__(self, double budget_s=0.4, *, double audio_reserve_s=0.05, double droppable_at=0.5,
                 double request_interval_s=1.0, double rerequest_s=2.0):
        if not (0 <= audio_reserve_s and audio_reserve_s < budget_s):
            raise ValueError("need 0 <= audio_reserve_s < budget_s")
        if not (0 < droppable_at and droppable_at <= 1):
            raise ValueError("need 0 < droppable_at <= 1")
        self.budget_s = budget_s
        self.video_limit = budget_s - audio_reserve_s
        self.droppable_limit = droppable_at * self.video_limit
        self.request_interval_s = request_interval_s
        self.rerequest_s = rerequest_s if rerequest_s >= request_interval_s else request_interval_s  # max()
        self.path_delay = 0.0

    # ----- outputs ---------------------------------------------------------------------------

    @property
    def queued_bytes(self):
        return self._audio + self._video

    @property
    def skipping(self):
        """Waiting for a keyframe: video is being dropped."""
        return self._skipping

    @property
    def last_delay(self):
        """Expected delay of the last frame offered (None before any)."""
        return self._last_delay if self._has_last_delay else None

    @property
    def counters(self):
        return {"sent_audio": self.c_sent_audio, "sent_video": self.c_sent_video,
                "dropped_droppable": self.c_dropped_droppable, "dropped_skip": self.c_dropped_skip,
                "dropped_audio": self.c_dropped_audio, "keyframes_requested": self.c_keyframes_requested,
                "oversized_keyframes": self.c_oversized_keyframes, "resent": self.c_resent,
                "resends_refused": self.c_resends_refused, "player_requests": self.c_player_requests,
                "player_requests_refused": self.c_player_requests_refused}

    def queue_delay(self):
        """Seconds the queued bytes take to leave at the current rate (0 before any rate)."""
        return (self._audio + self._video) * 8 / self._rate if self._rate else 0.0

    def take_keyframe_needed(self):
        """True once per flagged request: the caller asks the publisher for a keyframe."""
        needed = self._keyframe_needed
        self._keyframe_needed = False
        return needed

    # ----- inputs ----------------------------------------------------------------------------

    cpdef on_time(self, double now):
        """Drain the virtual queue up to ``now`` at the current rate."""
        if not self._has_last:
            self._has_last = True
            self._last = now
        elif now > self._last:
            if self._rate and self._count:
                self._drain((now - self._last) * self._rate / 8)
            self._last = now

    def set_path_delay(self, seconds):
        """Rule 9: the path's measured queue delay (None or negative: none)."""
        cdef double s = 0.0 if seconds is None else float(seconds)
        self.path_delay = s if s > 0.0 else 0.0

    def offer_resend(self, double size_bytes, double now):
        """Rule 10: whether a retransmission of ``size_bytes`` goes; queued when it does."""
        self.on_time(now)
        cdef double size = 0 if 0 > size_bytes else size_bytes
        cdef double rate = self._rate
        cdef double delay = ((self._audio + self._video) + size) * 8 / rate + self.path_delay if rate \
            else self.path_delay
        if delay > self.droppable_limit:
            self.c_resends_refused += 1
            return False
        self.c_resent += 1
        self._queue_bytes(False, size)
        return True

    def allow_keyframe_request(self, double now):
        """Rule 11: whether the player's own keyframe request goes on to the publisher."""
        if self._skipping or (self._has_last_player_request
                              and now - self._last_player_request < self.request_interval_s):
            self.c_player_requests_refused += 1
            return False
        self._has_last_player_request = True
        self._last_player_request = now
        self.c_player_requests += 1
        return True

    cpdef add_bytes(self, frame_kind, double size_bytes, double now):
        """Queue bytes sent without an offer (RTC: later packets of a frame already sent;
        retransmissions). No decision: they are on the wire."""
        if frame_kind != "video" and frame_kind != "audio":
            raise ValueError(f"frame_kind must be 'audio' or 'video', not {frame_kind!r}")
        self.on_time(now)
        self._queue_bytes(frame_kind == "audio", 0 if 0 > size_bytes else size_bytes)

    cpdef offer(self, frame_kind, bint keyframe, bint droppable, double size_bytes,
                double capture_or_first_arrival, double now, double send_rate_bps):
        cdef bint audio = frame_kind == "audio"
        if not audio and frame_kind != "video":
            raise ValueError(f"frame_kind must be 'audio' or 'video', not {frame_kind!r}")
        self.on_time(now)
        cdef double rate = 1.0 if 1.0 > send_rate_bps else send_rate_bps  # max(rate, 1.0)
        self._rate = rate
        cdef double size = size_bytes if size_bytes > 0 else 0
        cdef double age = now - capture_or_first_arrival
        age = (age if age > 0.0 else 0.0) + self.path_delay
        cdef double delay
        self._has_last_delay = True
        if audio:
            delay = self._last_delay = (self._audio + size) * 8 / rate + age
            if delay > self.budget_s:
                self.c_dropped_audio += 1
                return DROP
            self.c_sent_audio += 1
            self._queue_bytes(True, size)
            return SEND
        delay = self._last_delay = (self._audio + self._video + size) * 8 / rate + age
        if keyframe:
            self._has_keyframe_bytes = True
            self._keyframe_bytes = size
            if delay <= self.video_limit or not self._video > 0.5:
                if delay > self.video_limit:
                    self.c_oversized_keyframes += 1
                self._skipping = self._wanted = False
                self.c_sent_video += 1
                self._queue_bytes(False, size)
                return SEND
        if self._skipping:
            self.c_dropped_skip += 1
            self._wanted = self._wanted or keyframe
            self._maybe_request(now, age, rate)
            return DROP
        if droppable and not keyframe and delay > self.droppable_limit:
            self.c_dropped_droppable += 1
            return DROP
        if delay <= self.video_limit:
            self.c_sent_video += 1
            self._queue_bytes(False, size)
            return SEND
        self.c_dropped_skip += 1
        self._skipping = self._wanted = True
        self._maybe_request(now, age, rate)
        return SKIP_TO_KEYFRAME

    # ----- internals -------------------------------------------------------------------------

    cdef int _queue_bytes(self, bint audio, double size) except -1:
        cdef Py_ssize_t i
        if size:
            if self._count == self._cap:
                self._grow()
            i = (self._head + self._count) % self._cap
            self._q_audio[i] = audio
            self._q_bytes[i] = size
            self._count += 1
            if audio:
                self._audio += size
            else:
                self._video += size
        return 0

    cdef int _grow(self) except -1:
        cdef Py_ssize_t cap = self._cap * 2, k, j
        cdef double* qb = <double*>malloc(cap * sizeof(double))
        cdef unsigned char* qa = <unsigned char*>malloc(cap)
        if qb == NULL or qa == NULL:
            free(qb)
            free(qa)
            raise MemoryError()
        for k in range(self._count):
            j = (self._head + k) % self._cap
            qb[k] = self._q_bytes[j]
            qa[k] = self._q_audio[j]
        free(self._q_bytes)
        free(self._q_audio)
        self._q_bytes, self._q_audio, self._cap, self._head = qb, qa, cap, 0
        return 0

    cdef void _maybe_request(self, double now, double age, double rate):
        cdef double since
        if self._video > 0.5 and self._has_keyframe_bytes:
            if ((self._audio + self._video) + self._keyframe_bytes) * 8 / rate + age > self.video_limit:
                return  # a keyframe now would be dropped: wait until the queue has room for one
        if (not self._has_last_request
                or (self._wanted and now - self._last_request >= self.request_interval_s)
                or now - self._last_request >= self.rerequest_s):
            self._keyframe_needed = True
            self._wanted = False
            self._has_last_request = True
            self._last_request = now
            self.c_keyframes_requested += 1

    cdef void _drain(self, double budget):
        cdef double entry, take
        while budget > 0 and self._count:
            entry = self._q_bytes[self._head]
            take = entry if entry < budget else budget  # min(budget, entry)
            entry -= take
            self._q_bytes[self._head] = entry
            budget -= take
            if self._q_audio[self._head]:
                self._audio -= take
            else:
                self._video -= take
            if entry <= 1e-9:
                self._head = (self._head + 1) % self._cap
                self._count -= 1
        if not self._count:
            self._audio = self._video = 0.0
            self._head = 0


cdef class FrameJudge:
    """One player track's decisions, frame by frame, on its path's budget (sfu/media/_budget_py.py)."""

    cdef readonly LatencyBudget budget
    cdef readonly object congestion
    cdef readonly str kind
    cdef bint _audio
    cdef bint _has_ts
    cdef long long _ts
    cdef public bint frame_send
    cdef public long long frame_bytes, frame_counted, last_frame_bytes

    def __init__(self, LatencyBudget budget not None, congestion, kind):
        if kind != "audio" and kind != "video":
            raise ValueError(f"kind must be 'audio' or 'video', not {kind!r}")
        self.budget = budget
        self.congestion = congestion
        self.kind = kind
        self._audio = kind == "audio"
        self._has_ts = False
        self.frame_send = True
        self.frame_bytes = self.frame_counted = self.last_frame_bytes = 0

    @property
    def frame_ts(self):
        return self._ts if self._has_ts else None

    @frame_ts.setter
    def frame_ts(self, value):
        self._has_ts = value is not None
        self._ts = value if value is not None else 0

    def new_frame(self, long long timestamp):
        return not self._has_ts or timestamp != self._ts or self._audio

    cpdef bint judge(self, long long timestamp, long long first_size, bint keyframe, bint droppable,
                     double now) except -1:
        if self._has_ts and self.frame_bytes:
            self.last_frame_bytes = self.frame_bytes
        self._has_ts = True
        self._ts = timestamp
        self.frame_bytes = 0
        cdef long long expected = first_size if first_size > self.last_frame_bytes else self.last_frame_bytes
        decision = self.budget.offer(self.kind, keyframe, droppable, <double>expected, now, now,
                                     self.congestion.estimate_bps)
        self.frame_send = decision is SEND
        self.frame_counted = expected
        if not self.frame_send and not self._audio:
            self.congestion.on_limited(now)
        return self.frame_send

    cpdef account(self, long long size, double at):
        self.frame_bytes = size
        if self.frame_send and size > self.frame_counted:
            self.budget.add_bytes(self.kind, <double>(size - self.frame_counted), at)
            self.frame_counted = size

    cpdef bint decide(self, bint keyframe, long long size, bint droppable, double now) except -1:
        decision = self.budget.offer(self.kind, keyframe, droppable, <double>size, now, now,
                                     self.congestion.estimate_bps)
        self.frame_send = decision is SEND
        if not self.frame_send and not self._audio:
            self.congestion.on_limited(now)
        return self.frame_send


def take_keyframes_needed(list judges not None):
    """``take_keyframe_needed()`` of each one's budget: how many said yes."""
    cdef Py_ssize_t i
    cdef FrameJudge judge
    cdef long n = 0
    for i in range(len(judges)):
        judge = <FrameJudge?>judges[i]
        if judge.budget._keyframe_needed:
            judge.budget._keyframe_needed = False
            n += 1
    return n


def new_frame_for_all(list judges not None, long long timestamp):
    """Does a packet of `timestamp` start a frame for every one of them (`new_frame`)?"""
    cdef Py_ssize_t i
    cdef FrameJudge judge
    for i in range(len(judges)):
        judge = <FrameJudge?>judges[i]
        if judge._has_ts and judge._ts == timestamp and not judge._audio:
            return False
    return True


cdef list _changed(list judges, bint whole, long long timestamp, long long size, bint keyframe, bint droppable,
                   double now):
    """`decide` (whole) or `judge` for each, in order: the indexes of those whose decision changed."""
    cdef Py_ssize_t i
    cdef FrameJudge judge
    cdef bint was, now_send
    changed = []
    for i in range(len(judges)):
        judge = <FrameJudge?>judges[i]
        was = judge.frame_send
        if whole:
            now_send = judge.decide(keyframe, size, droppable, now)
        else:
            now_send = judge.judge(timestamp, size, keyframe, droppable, now)
        if now_send != was:
            changed.append(i)
    return changed


def judge_frames(list judges not None, long long timestamp, long long first_size, bint keyframe, bint droppable,
                 double now):
    """`judge` for each, in order: the indexes of those whose decision changed."""
    return _changed(judges, False, timestamp, first_size, keyframe, droppable, now)


def account_frames(list judges not None, long long timestamp, long long size, double at):
    """`account` for each that is on the frame of `timestamp`."""
    cdef Py_ssize_t i
    cdef FrameJudge judge
    for i in range(len(judges)):
        judge = <FrameJudge?>judges[i]
        if judge._has_ts and judge._ts == timestamp:
            judge.account(size, at)


def decide_frames(list judges not None, bint keyframe, long long size, bint droppable, double now):
    """`decide` for each, in order: the indexes of those whose decision changed."""
    return _changed(judges, True, 0, size, keyframe, droppable, now)
