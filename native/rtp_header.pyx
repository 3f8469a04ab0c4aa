# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""RTP/RTCP header parsing and in-place rewriting: the compiled fast path (sfu.rtp._header_c).

Same API, behaviour and error messages as sfu/rtp/_header_py.py, which is the readable
specification (layout diagrams, rules, messages); the tests run both and compare them.
The parsing itself is the C-level code in rtp_header.pxd, shared with other Cython modules.

Speed: bytes and bytearray are read through their internal pointer, other objects through
the buffer protocol into a Py_buffer on the C stack; parsing allocates nothing but the
RtpHeader it returns (from a free list), and rewrite_rtp writes bytes in place.
"""

cimport cython
from cpython.buffer cimport (
    PyBUF_FULL_RO,
    PyBuffer_IsContiguous,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from cpython.bytearray cimport (
    PyByteArray_AS_STRING,
    PyByteArray_CheckExact,
    PyByteArray_GET_SIZE,
)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.number cimport PyNumber_Index
from libc.stdint cimport uint8_t, uint16_t, uint32_t

from rtp_header cimport (
    RTP_ERR_CSRC_TRUNCATED,
    RTP_ERR_EXTENSION_HEADER_TRUNCATED,
    RTP_ERR_EXTENSION_TRUNCATED,
    RTP_ERR_PADDING_TOO_LONG,
    RTP_ERR_PADDING_ZERO,
    RTP_ERR_TOO_SHORT,
    RTP_ERR_VERSION,
    RTP_OK,
    rtp_fields,
    rtp_is_rtcp,
    rtp_parse,
    rtp_read_u16,
    rtp_rewrite,
)

# One exception class for both implementations, so `except RtpParseError` works whichever
# one sfu.rtp.header selected.
from sfu.rtp._header_py import RtpParseError

__all__ = [
    "RtpHeader",
    "RtpParseError",
    "is_rtcp",
    "parse_rtcp_compound",
    "parse_rtp",
    "rewrite_rtp",
]

cdef object _MAX_U32 = 0xFFFFFFFF
cdef object _MAX_U16 = 0xFFFF
cdef object _MAX_PT = 0x7F


@cython.final
@cython.freelist(32)
cdef class RtpHeader:
    """The parsed RTP header of one packet (RFC 3550 §5.1). Version is always 2."""

    cdef readonly bint marker
    cdef readonly int payload_type
    cdef readonly int sequence_number
    cdef readonly uint32_t timestamp
    cdef readonly uint32_t ssrc
    cdef readonly int csrc_count
    cdef readonly bint has_extension
    cdef readonly int extension_profile
    cdef readonly Py_ssize_t header_length
    cdef readonly Py_ssize_t payload_length
    cdef readonly int padding_length

    def __init__(
        self,
        *,
        bint marker,
        int payload_type,
        int sequence_number,
        uint32_t timestamp,
        uint32_t ssrc,
        int csrc_count,
        bint has_extension,
        int extension_profile,
        Py_ssize_t header_length,
        Py_ssize_t payload_length,
        int padding_length,
    ):
        self.marker = marker
        self.payload_type = payload_type
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrc_count = csrc_count
        self.has_extension = has_extension
        self.extension_profile = extension_profile
        self.header_length = header_length
        self.payload_length = payload_length
        self.padding_length = padding_length

    def __repr__(self):
        return (
            f"RtpHeader(marker={self.marker!r}, payload_type={self.payload_type!r}, "
            f"sequence_number={self.sequence_number!r}, timestamp={self.timestamp!r}, "
            f"ssrc={self.ssrc!r}, csrc_count={self.csrc_count!r}, "
            f"has_extension={self.has_extension!r}, "
            f"extension_profile={self.extension_profile!r}, "
            f"header_length={self.header_length!r}, payload_length={self.payload_length!r}, "
            f"padding_length={self.padding_length!r})"
        )


cdef RtpHeader _new_header(const rtp_fields* f):
    cdef RtpHeader h = RtpHeader.__new__(RtpHeader)
    h.marker = f.marker
    h.payload_type = f.payload_type
    h.sequence_number = f.sequence_number
    h.timestamp = f.timestamp
    h.ssrc = f.ssrc
    h.csrc_count = f.csrc_count
    h.has_extension = f.has_extension
    h.extension_profile = f.extension_profile
    h.header_length = f.header_length
    h.payload_length = f.payload_length
    h.padding_length = f.padding_length
    return h


cdef object _rtp_error(int code, const rtp_fields* f):
    """The RtpParseError for an rtp_parse/rtp_rewrite result (messages as in _header_py)."""
    cdef str message
    if code == RTP_ERR_TOO_SHORT:
        message = f"RTP packet too short: {f.length} bytes, need at least 12"
    elif code == RTP_ERR_VERSION:
        message = f"RTP version must be 2, got {f.version}"
    elif code == RTP_ERR_CSRC_TRUNCATED:
        message = (
            f"RTP CSRC list truncated: {f.csrc_count} CSRCs need {f.header_length} bytes, "
            f"packet has {f.length}"
        )
    elif code == RTP_ERR_EXTENSION_HEADER_TRUNCATED:
        message = (
            f"RTP extension header truncated: need {f.header_length + 4} bytes, "
            f"packet has {f.length}"
        )
    elif code == RTP_ERR_EXTENSION_TRUNCATED:
        message = (
            f"RTP extension truncated: {f.extension_words} words need {f.header_length} bytes, "
            f"packet has {f.length}"
        )
    elif code == RTP_ERR_PADDING_ZERO:
        message = "RTP padding flag set but padding count is 0"
    elif code == RTP_ERR_PADDING_TOO_LONG:
        message = (
            f"RTP padding count {f.padding_length} exceeds payload length "
            f"{f.length - f.header_length}"
        )
    else:  # pragma: no cover - rtp_parse returns no other codes
        message = f"RTP parse error {code}"
    return RtpParseError(message)


cdef inline bint _acquire(object data, Py_buffer* view, const unsigned char** p,
                          Py_ssize_t* n, bint pin=False) except -1:
    """Point *p/*n at the bytes of data. True when view was filled and must be released.

    A bytearray is read through its internal pointer unless pin is set: callers that run
    Python code (allocations, hence possibly the garbage collector) while they still read
    *p must pin, so that the buffer export stops the bytearray from being resized.
    """
    if PyBytes_CheckExact(data):
        p[0] = <const unsigned char*>PyBytes_AS_STRING(data)
        n[0] = PyBytes_GET_SIZE(data)
        return False
    if not pin and PyByteArray_CheckExact(data):
        p[0] = <const unsigned char*>PyByteArray_AS_STRING(data)
        n[0] = PyByteArray_GET_SIZE(data)
        return False
    try:
        PyObject_GetBuffer(data, view, PyBUF_FULL_RO)
    except TypeError:
        raise TypeError(
            f"expected a C-contiguous bytes-like object, got {type(data).__name__}"
        ) from None
    if not PyBuffer_IsContiguous(view, b'C'):
        PyBuffer_Release(view)
        raise TypeError(f"expected a C-contiguous bytes-like object, got {type(data).__name__}")
    p[0] = <const unsigned char*>view.buf
    n[0] = view.len
    return True


cdef inline bint _acquire_writable(object buf, Py_buffer* view, unsigned char** p,
                                   Py_ssize_t* n) except -1:
    """Like _acquire, for a writable buffer (bytes are refused)."""
    if PyByteArray_CheckExact(buf):
        p[0] = <unsigned char*>PyByteArray_AS_STRING(buf)
        n[0] = PyByteArray_GET_SIZE(buf)
        return False
    try:
        PyObject_GetBuffer(buf, view, PyBUF_FULL_RO)
    except TypeError:
        raise _not_writable(buf) from None
    if view.readonly or not PyBuffer_IsContiguous(view, b'C'):
        PyBuffer_Release(view)
        raise _not_writable(buf)
    p[0] = <unsigned char*>view.buf
    n[0] = view.len
    return True


cdef object _not_writable(object buf):
    return TypeError(
        "rewrite_rtp needs a writable C-contiguous bytes-like object "
        f"(bytearray or writable memoryview), got {type(buf).__name__}"
    )


cdef uint32_t _in_range(str name, object value, object maximum) except? 0xFFFFFFFF:
    cdef object number = PyNumber_Index(value)  # TypeError for non-integers
    if number < 0 or number > maximum:
        raise ValueError(f"{name} must be in 0..{maximum}, got {number}")
    return <uint32_t>number


def parse_rtp(data):
    """Parse and validate the RTP header of ``data``; raise RtpParseError if malformed."""
    cdef Py_buffer view
    cdef const unsigned char* p = NULL
    cdef Py_ssize_t n = 0
    cdef rtp_fields f
    cdef bint release = _acquire(data, &view, &p, &n)
    cdef int code = rtp_parse(p, n, &f)
    if release:
        PyBuffer_Release(&view)
    if code != RTP_OK:
        raise _rtp_error(code, &f)
    return _new_header(&f)


def is_rtcp(data):
    """RFC 5761 demultiplexing: True for RTCP (packet types 192..223), False for RTP."""
    cdef Py_buffer view
    cdef const unsigned char* p = NULL
    cdef Py_ssize_t n = 0
    cdef bint release = _acquire(data, &view, &p, &n)
    cdef bint result = rtp_is_rtcp(p, n)
    if release:
        PyBuffer_Release(&view)
    return result


def rewrite_rtp(buf, ssrc, sequence_number, timestamp, payload_type):
    """Overwrite SSRC, sequence number, timestamp and payload type in place.

    The marker bit and every other byte stay as they are. Arguments are checked first
    (ValueError/TypeError), then the buffer (TypeError), then the packet (RtpParseError
    for fewer than 12 bytes or version != 2).
    """
    cdef uint32_t c_ssrc = _in_range("ssrc", ssrc, _MAX_U32)
    cdef uint16_t c_sequence_number = <uint16_t>_in_range(
        "sequence_number", sequence_number, _MAX_U16)
    cdef uint32_t c_timestamp = _in_range("timestamp", timestamp, _MAX_U32)
    cdef uint8_t c_payload_type = <uint8_t>_in_range("payload_type", payload_type, _MAX_PT)
    cdef Py_buffer view
    cdef unsigned char* p = NULL
    cdef Py_ssize_t n = 0
    cdef rtp_fields f
    cdef bint release = _acquire_writable(buf, &view, &p, &n)
    cdef int code = rtp_rewrite(p, n, c_ssrc, c_sequence_number, c_timestamp, c_payload_type)
    if code == RTP_ERR_VERSION:
        f.version = p[0] >> 6
    if release:
        PyBuffer_Release(&view)
    if code != RTP_OK:
        f.length = n
        raise _rtp_error(code, &f)


def parse_rtcp_compound(data):
    """Split a compound RTCP packet into ``(packet_type, count_or_fmt, length_in_bytes)``.

    ``length_in_bytes`` includes the 4-byte header. Any packet type may come first;
    versions and lengths are validated (see _header_py for the reasoning).
    """
    cdef Py_buffer view
    cdef const unsigned char* p = NULL
    cdef Py_ssize_t n = 0
    cdef bint release = _acquire(data, &view, &p, &n, True)  # the loop allocates
    cdef Py_ssize_t offset = 0
    cdef Py_ssize_t left, length
    cdef unsigned char first
    cdef list packets = []
    try:
        if n < 4:
            raise RtpParseError(f"RTCP packet too short: {n} bytes, need at least 4")
        while offset < n:
            left = n - offset
            if left < 4:
                raise RtpParseError(
                    f"RTCP header truncated at offset {offset}: {left} bytes left, need 4"
                )
            first = p[offset]
            if (first >> 6) != 2:
                raise RtpParseError(
                    f"RTCP version must be 2 at offset {offset}, got {first >> 6}"
                )
            length = 4 * (<Py_ssize_t>rtp_read_u16(p + offset + 2) + 1)
            if length > left:
                raise RtpParseError(
                    f"RTCP packet at offset {offset} declares {length} bytes, only {left} left"
                )
            packets.append((p[offset + 1], first & 0x1F, length))
            offset += length
    finally:
        if release:
            PyBuffer_Release(&view)
    return packets
