"""LatencyBudget (per player: what to drop so that its media is never later than a budget): the
compiled one (``sfu.media._budget_c``, built from native/budget.pyx), or the Python reference
(``sfu.media._budget_py``, where the rules are written), picked by sfu/_native.py's rule.
"""

from sfu._native import select
from sfu.media._budget_py import Decision

__all__ = ["IMPLEMENTATION", "Decision", "LatencyBudget"]

_impl, IMPLEMENTATION = select("sfu.media._budget_c", "sfu.media._budget_py", "the compiled latency budget")
LatencyBudget = _impl.LatencyBudget
