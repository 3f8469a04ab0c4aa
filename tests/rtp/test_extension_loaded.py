"""The compiled RTP header module is built and selected; a broken build fails loudly.

These tests fail, rather than skip, when the build did not produce sfu.rtp._header_c.
Only SFU_NO_EXTENSIONS changes what is expected of the selector.
"""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys

import pytest

FORCED_PYTHON = os.environ.get("SFU_NO_EXTENSIONS", "") not in ("", "0")


def test_selector_picks_the_compiled_module() -> None:
    from sfu.rtp import header

    expected = "py" if FORCED_PYTHON else "c"
    assert header.IMPLEMENTATION == expected
    module = importlib.import_module(f"sfu.rtp._header_{expected}")
    assert header.parse_rtp is module.parse_rtp
    assert header.RtpHeader is module.RtpHeader


def test_package_reexports_the_selected_module() -> None:
    import sfu.rtp
    from sfu.rtp import header

    for name in header.__all__:
        assert getattr(sfu.rtp, name) is getattr(header, name)


def test_compiled_module_is_an_extension_module() -> None:
    import sfu.rtp._header_c as compiled

    assert isinstance(compiled.__loader__, importlib.machinery.ExtensionFileLoader)
    assert compiled.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    if sys.platform != "win32":
        assert compiled.__file__.endswith(".so")


def run_python(code: str, no_extensions: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SFU_NO_EXTENSIONS"}
    if no_extensions is not None:
        env["SFU_NO_EXTENSIONS"] = no_extensions
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "c"), ("", "c"), ("0", "c"), ("1", "py"), ("yes", "py")],
)
def test_environment_variable_forces_python(value: str | None, expected: str) -> None:
    result = run_python("import sfu.rtp; print(sfu.rtp.IMPLEMENTATION)", value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_missing_build_is_an_error_not_a_fallback() -> None:
    code = (
        "import sys\n"
        "sys.modules['sfu.rtp._header_c'] = None  # as if the build had not produced it\n"
        "try:\n"
        "    import sfu.rtp.header\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('imported', sfu.rtp.header.IMPLEMENTATION)\n"
    )
    result = run_python(code, None)
    assert result.returncode == 0, result.stderr
    message = result.stdout
    assert "sfu.rtp._header_c" in message
    assert "pip install -e ." in message
    assert "SFU_NO_EXTENSIONS=1" in message
    assert not message.startswith("imported")
