"""LatencyBudget (per player: what to drop so that its media is never later than a budget) and
FrameJudge (a player track's frame decisions on it, and the loops over a track's players): the
compiled one (``sfu.media._budget_c``, built from native/budget.pyx), or the Python reference
(``sfu.media._budget_py``, where the rules are written), picked by sfu/_native.py's rule.
"""

from sfu._native import select
from sfu.media._budget_py import Decision

__all__ = ["IMPLEMENTATION", "Decision", "FrameJudge", "LatencyBudget", "account_frames", "decide_frames",
           "judge_frames", "new_frame_for_all",
           "take_keyframes_needed"]

_impl, IMPLEMENTATION = select("sfu.media._budget_c", "sfu.media._budget_py", "the compiled latency budget")
LatencyBudget = _impl.LatencyBudget
FrameJudge = _impl.FrameJudge
judge_frames = _impl.judge_frames
account_frames = _impl.account_frames
decide_frames = _impl.decide_frames
new_frame_for_all = _impl.new_frame_for_all
take_keyframes_needed = _impl.take_keyframes_needed
