"""RTP and RTCP packet handling."""

from .header import (
    IMPLEMENTATION,
    RtpHeader,
    RtpParseError,
    is_rtcp,
    parse_rtcp_compound,
    parse_rtp,
    rewrite_rtp,
)

__all__ = [
    "IMPLEMENTATION",
    "RtpHeader",
    "RtpParseError",
    "is_rtcp",
    "parse_rtcp_compound",
    "parse_rtp",
    "rewrite_rtp",
]
