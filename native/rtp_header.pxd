# cython: language_level=3
"""C-level RTP header API, shared by sfu.rtp._header_c and other Cython modules.

The rules, the layout and the exact error messages are specified in
sfu/rtp/_header_py.py. Everything here is C only (a struct, error codes and inline
nogil functions) and is compiled into each module that cimports it, so a cimport costs
no runtime import. A module in native/ uses it as::

    from rtp_header cimport rtp_fields, rtp_parse, RTP_OK

    cdef rtp_fields f
    if rtp_parse(p, n, &f) != RTP_OK:
        ...                      # drop and count; f holds what was read before the error
    payload = p + f.header_length

and so parses a packet with no allocation and without the GIL.

Why the cdef class RtpHeader is not declared here: Cython looks up a module's own .pxd by
its qualified name (sfu/rtp/_header_c.pxd), not by the .pyx file name, so this file is not
the .pxd of sfu.rtp._header_c. A cdef class declared here would be imported at runtime
from a module named "rtp_header", which does not exist, and every cimport of this file
would then fail at import time. Sharing the RtpHeader type with other Cython modules
needs the declarations in sfu/rtp/_header_c.pxd (aiohttp's reader_c.pxd layout).
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t

# Results of rtp_parse / rtp_rewrite; the Python messages are in _header_py.py.
cdef enum:
    RTP_OK = 0
    RTP_ERR_TOO_SHORT = 1             # fewer than 12 bytes
    RTP_ERR_VERSION = 2               # V != 2
    RTP_ERR_CSRC_TRUNCATED = 3        # CSRC list runs past the end
    RTP_ERR_EXTENSION_HEADER_TRUNCATED = 4
    RTP_ERR_EXTENSION_TRUNCATED = 5   # extension body runs past the end
    RTP_ERR_PADDING_ZERO = 6          # P set, pad count 0
    RTP_ERR_PADDING_TOO_LONG = 7      # pad count larger than what follows the header


ctypedef struct rtp_fields:
    Py_ssize_t length                 # bytes in the packet
    int version
    bint marker
    int payload_type
    uint16_t sequence_number
    uint32_t timestamp
    uint32_t ssrc
    int csrc_count
    bint has_extension
    uint16_t extension_profile        # 0 without an extension
    int extension_words               # extension length in 32-bit words
    Py_ssize_t header_length          # offset of the payload
    Py_ssize_t payload_length         # excluding padding
    int padding_length


cdef inline uint16_t rtp_read_u16(const unsigned char* p) noexcept nogil:
    return <uint16_t>((<uint16_t>p[0] << 8) | p[1])


cdef inline uint32_t rtp_read_u32(const unsigned char* p) noexcept nogil:
    return ((<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16)
            | (<uint32_t>p[2] << 8) | <uint32_t>p[3])


cdef inline void rtp_write_u16(unsigned char* p, uint16_t value) noexcept nogil:
    p[0] = <unsigned char>(value >> 8)
    p[1] = <unsigned char>value


cdef inline void rtp_write_u32(unsigned char* p, uint32_t value) noexcept nogil:
    p[0] = <unsigned char>(value >> 24)
    p[1] = <unsigned char>(value >> 16)
    p[2] = <unsigned char>(value >> 8)
    p[3] = <unsigned char>value


cdef inline int rtp_parse(const unsigned char* p, Py_ssize_t n, rtp_fields* out) noexcept nogil:
    """Parse the RTP header in p[0:n] into *out; return RTP_OK or an RTP_ERR_* code.

    On error, *out holds the fields read up to the failed check (enough to format the
    message): length always; version from RTP_ERR_VERSION on; csrc_count and
    header_length (12 + 4*CC, plus the extension once its header is read) after that;
    extension_words for RTP_ERR_EXTENSION_TRUNCATED; padding_length for the padding
    errors.
    """
    cdef unsigned char first
    cdef Py_ssize_t header_length
    out.length = n
    if n < 12:
        return RTP_ERR_TOO_SHORT
    first = p[0]
    out.version = first >> 6
    if out.version != 2:
        return RTP_ERR_VERSION
    out.csrc_count = first & 0x0F
    header_length = 12 + 4 * out.csrc_count
    out.header_length = header_length
    if header_length > n:
        return RTP_ERR_CSRC_TRUNCATED
    out.has_extension = (first & 0x10) != 0
    out.extension_profile = 0
    out.extension_words = 0
    if out.has_extension:
        if header_length + 4 > n:
            return RTP_ERR_EXTENSION_HEADER_TRUNCATED
        out.extension_profile = rtp_read_u16(p + header_length)
        out.extension_words = rtp_read_u16(p + header_length + 2)
        header_length += 4 + 4 * <Py_ssize_t>out.extension_words
        out.header_length = header_length
        if header_length > n:
            return RTP_ERR_EXTENSION_TRUNCATED
    out.padding_length = 0
    if first & 0x20:
        out.padding_length = p[n - 1]
        if out.padding_length == 0:
            return RTP_ERR_PADDING_ZERO
        if out.padding_length > n - header_length:
            return RTP_ERR_PADDING_TOO_LONG
    out.marker = (p[1] & 0x80) != 0
    out.payload_type = p[1] & 0x7F
    out.sequence_number = rtp_read_u16(p + 2)
    out.timestamp = rtp_read_u32(p + 4)
    out.ssrc = rtp_read_u32(p + 8)
    out.payload_length = n - header_length - out.padding_length
    return RTP_OK


cdef inline bint rtp_is_rtcp(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """RFC 5761 demultiplexing: RTCP packet types 192..223 (second byte & 0x7F in 64..95)."""
    cdef unsigned char low
    if n < 2:
        return False
    low = p[1] & 0x7F
    return 64 <= low <= 95


cdef inline int rtp_rewrite(unsigned char* p, Py_ssize_t n, uint32_t ssrc,
                            uint16_t sequence_number, uint32_t timestamp,
                            uint8_t payload_type) noexcept nogil:
    """Overwrite SSRC, sequence number, timestamp and PT (7 bits) in place, keeping the marker.

    Returns RTP_OK, RTP_ERR_TOO_SHORT or RTP_ERR_VERSION (buffer untouched on error).
    """
    if n < 12:
        return RTP_ERR_TOO_SHORT
    if (p[0] >> 6) != 2:
        return RTP_ERR_VERSION
    p[1] = (p[1] & 0x80) | (payload_type & 0x7F)
    rtp_write_u16(p + 2, sequence_number)
    rtp_write_u32(p + 4, timestamp)
    rtp_write_u32(p + 8, ssrc)
    return RTP_OK
