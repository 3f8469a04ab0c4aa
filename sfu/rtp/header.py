"""RTP/RTCP header parsing: picks the compiled implementation or the Python reference.

``sfu.rtp._header_c`` (built from native/rtp_header.pyx) is used unless the environment
variable ``SFU_NO_EXTENSIONS`` is set to a non-empty value other than ``"0"``, which forces
the pure-Python reference ``sfu.rtp._header_py``. A missing or broken build is an error,
never a silent fallback: the Python path is an explicit choice.
"""

import os

__all__ = [
    "IMPLEMENTATION",
    "RtpHeader",
    "RtpParseError",
    "is_rtcp",
    "parse_rtcp_compound",
    "parse_rtp",
    "rewrite_rtp",
]

if os.environ.get("SFU_NO_EXTENSIONS", "") not in ("", "0"):
    from ._header_py import (
        RtpHeader,
        RtpParseError,
        is_rtcp,
        parse_rtcp_compound,
        parse_rtp,
        rewrite_rtp,
    )

    IMPLEMENTATION = "py"
else:
    try:
        from ._header_c import (
            RtpHeader,
            RtpParseError,
            is_rtcp,
            parse_rtcp_compound,
            parse_rtp,
            rewrite_rtp,
        )
    except ImportError as exc:
        raise ImportError(
            f"sfu.rtp._header_c, the compiled RTP header parser, could not be imported ({exc}). "
            "Rebuild the extensions with `pip install -e .` (or `python setup.py build_ext "
            "--inplace`), or set SFU_NO_EXTENSIONS=1 to use the pure-Python implementation."
        ) from exc

    IMPLEMENTATION = "c"
