"""RTP/RTCP header parsing: picks the compiled implementation or the Python reference.

``sfu.rtp._header_c`` (built from native/rtp_header.pyx) or the pure-Python reference
``sfu.rtp._header_py``, picked by sfu/_native.py's rule: ``SFU_NO_EXTENSIONS`` forces Python;
a missing or broken build is an error, never a silent fallback.
"""

from sfu._native import select

__all__ = [
    "IMPLEMENTATION",
    "RtpHeader",
    "RtpParseError",
    "is_rtcp",
    "parse_rtcp_compound",
    "parse_rtp",
    "rewrite_rtp",
]

_impl, IMPLEMENTATION = select("sfu.rtp._header_c", "sfu.rtp._header_py", "the compiled RTP header parser")
RtpHeader, RtpParseError, is_rtcp = _impl.RtpHeader, _impl.RtpParseError, _impl.is_rtcp
parse_rtcp_compound, parse_rtp, rewrite_rtp = _impl.parse_rtcp_compound, _impl.parse_rtp, _impl.rewrite_rtp
