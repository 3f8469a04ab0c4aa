"""The one rule for picking a compiled module (built from native/) or its pure-Python reference.

The compiled one is used unless the environment variable ``SFU_NO_EXTENSIONS`` is set to a non-empty
value other than ``"0"``, which forces the reference. A missing or broken build is an ImportError
that says how to rebuild, never a silent fallback: the Python path is an explicit choice.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def forced_python() -> bool:
    return os.environ.get("SFU_NO_EXTENSIONS", "") not in ("", "0")


def select(compiled: str, reference: str, what: str) -> tuple[ModuleType, str]:
    """(the module, "c" or "py"): `compiled` (a dotted name; `what` it is, for the error) unless
    Python is forced, then `reference`."""
    if forced_python():
        return importlib.import_module(reference), "py"
    try:
        return importlib.import_module(compiled), "c"
    except ImportError as exc:
        raise ImportError(
            f"{compiled}, {what}, could not be imported ({exc}). Rebuild the extensions with "
            "`pip install -e .` (or `python setup.py build_ext --inplace`), or set SFU_NO_EXTENSIONS=1 "
            "to use the pure-Python implementation."
        ) from exc
