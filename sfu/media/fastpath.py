"""The per-packet path of a publisher track (FastTrack): the compiled one, or the Python reference.

``sfu.media._fastpath_c`` (built from native/fastpath.pyx) or ``sfu.media._fastpath_py`` (the
spec), picked by sfu/_native.py's rule (``SFU_NO_EXTENSIONS``; a missing build is an error).
"""

from sfu._native import select
from sfu.media._fastpath_py import (
    COUNTERS,
    EV_AGAIN,
    EV_NONE,
    EV_RTCP,
    EV_RTP,
    F_DROPPABLE,
    F_DUPLICATE,
    F_FRAME_START,
    F_KEYFRAME,
    F_LATE,
    F_MARKER,
    GATE_CLOSED,
    GATE_NONE,
    GATE_OPEN,
    MODE_L3,
    MODE_RTC,
)

__all__ = ["COUNTERS", "EV_AGAIN", "EV_NONE", "EV_RTCP", "EV_RTP", "F_DROPPABLE", "F_DUPLICATE", "F_FRAME_START", "F_KEYFRAME", "F_LATE",
           "F_MARKER", "dont_fragment", "GATE_CLOSED", "GATE_NONE", "GATE_OPEN", "IMPLEMENTATION", "MODE_L3", "MODE_RTC", "FastTrack", "Reader"]

_impl, IMPLEMENTATION = select("sfu.media._fastpath_c", "sfu.media._fastpath_py", "the compiled media fast path")
FastTrack, Reader, dont_fragment = _impl.FastTrack, _impl.Reader, _impl.dont_fragment
