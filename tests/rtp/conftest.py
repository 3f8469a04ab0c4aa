"""Fixtures for the RTP header tests: every case runs against both implementations."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


@pytest.fixture(params=["py", "c"])
def rtp_impl(request: pytest.FixtureRequest) -> ModuleType:
    """``sfu.rtp._header_py`` or ``sfu.rtp._header_c``.

    The compiled module is imported directly, whatever SFU_NO_EXTENSIONS says, so a
    missing build fails the "c" cases instead of skipping them.
    """
    return importlib.import_module(f"sfu.rtp._header_{request.param}")
