"""LatencyBudget (per player: what to drop so that its media is never later than a budget): the
compiled one, or the Python reference. The rules are written in sfu/media/_budget_py.py.

``sfu.media._budget_c`` (built from native/budget.pyx) is used unless ``SFU_NO_EXTENSIONS`` is set
to a non-empty value other than ``"0"``, which forces ``sfu.media._budget_py`` (the spec). A missing
or broken build is an error, never a silent fallback.
"""

import os

from sfu.media._budget_py import Decision

__all__ = ["IMPLEMENTATION", "Decision", "LatencyBudget"]

if os.environ.get("SFU_NO_EXTENSIONS", "") not in ("", "0"):
    from sfu.media._budget_py import LatencyBudget

    IMPLEMENTATION = "py"
else:
    try:
        from sfu.media._budget_c import LatencyBudget
    except ImportError as exc:
        raise ImportError(
            f"sfu.media._budget_c, the compiled latency budget, could not be imported ({exc}). "
            "Rebuild the extensions with `pip install -e .` (or `python setup.py build_ext --inplace`), "
            "or set SFU_NO_EXTENSIONS=1 to use the pure-Python implementation."
        ) from exc

    IMPLEMENTATION = "c"
