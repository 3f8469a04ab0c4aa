"""The per-packet path of a publisher track (FastTrack): the compiled one, or the Python reference.

``sfu.media._fastpath_c`` (built from native/fastpath.pyx) is used unless ``SFU_NO_EXTENSIONS``
is set to a non-empty value other than ``"0"``, which forces ``sfu.media._fastpath_py`` (the
spec). A missing or broken build is an error, never a silent fallback.
"""

import os

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

if os.environ.get("SFU_NO_EXTENSIONS", "") not in ("", "0"):
    from sfu.media._fastpath_py import FastTrack, Reader, dont_fragment

    IMPLEMENTATION = "py"
else:
    try:
        from sfu.media._fastpath_c import FastTrack, Reader, dont_fragment
    except ImportError as exc:
        raise ImportError(
            f"sfu.media._fastpath_c, the compiled media fast path, could not be imported ({exc}). "
            "Rebuild the extensions with `pip install -e .` (or `python setup.py build_ext --inplace`), "
            "or set SFU_NO_EXTENSIONS=1 to use the pure-Python implementation."
        ) from exc

    IMPLEMENTATION = "c"
