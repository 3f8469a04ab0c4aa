# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""FastTrack compiled: the per-packet path of one publisher track (sfu.media._fastpath_c).

The rules are those of sfu/media/_fastpath_py.py, the reference; tests feed both the same inputs
and require the same outputs. What this one adds is the IO: `pump` reads with recvmmsg into the
track's own buffers and the fan-out sends with sendmmsg from the shared socket, every message an
iovec pair (the player's rewritten 12-byte header, then the rest of the packet straight from the
ring), so a packet on the steady path makes no Python object and no per-player copy.

`pump` reads each datagram into a receive buffer of RX_SIZE bytes, and what a longer one carries
beyond that (up to 64 KiB in all: any UDP datagram) into an overflow buffer of its own, a second
iovec. The overflow buffers are allocated but never touched by datagrams that fit, so the memory
they take is only that of the long datagrams that came; a long one is joined before it is handled.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport EAGAIN, EINTR, EINVAL, EIO, ENOPROTOOPT, errno
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.math cimport floor
from libc.string cimport memcpy, memmove, memset
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec

from rtp_header cimport RTP_OK, rtp_fields, rtp_is_rtcp, rtp_parse, rtp_read_u16, rtp_write_u16, rtp_write_u32

from sfu.media._fastpath_py import COUNTERS, SEND_STEP as _SEND_STEP, StoredPacket
from sfu.media.jitter import _DISCONTINUITY as JITTER_DISCONTINUITY  # interarrival_jitter's rule
from sfu.media.packet import MediaPacket
from sfu.media.codecs import Codec


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    struct sockaddr:
        sa_family_t sa_family
    struct sockaddr_storage:
        sa_family_t ss_family
    struct iovec:
        void* iov_base
        size_t iov_len
    struct msghdr:
        void* msg_name
        socklen_t msg_namelen
        iovec* msg_iov
        size_t msg_iovlen
        void* msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    struct cmsghdr:
        size_t cmsg_len
        int cmsg_level
        int cmsg_type
    cmsghdr* CMSG_FIRSTHDR(msghdr* m)
    cmsghdr* CMSG_NXTHDR(msghdr* m, cmsghdr* c)
    unsigned char* CMSG_DATA(cmsghdr* c)
    size_t CMSG_SPACE(size_t length)
    size_t CMSG_LEN(size_t length)
    int SOL_SOCKET, SO_TIMESTAMPNS, SCM_TIMESTAMPNS
    int setsockopt(int fd, int level, int name, const void* value, socklen_t length)
    int recvmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, void* timeout)
    int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags)
    int AF_INET, AF_INET6, MSG_DONTWAIT, MSG_TRUNC

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr
    struct in6_addr:
        unsigned char s6_addr[16]
    struct sockaddr_in:
        sa_family_t sin_family
        uint16_t sin_port
        in_addr sin_addr
    struct sockaddr_in6:
        sa_family_t sin6_family
        uint16_t sin6_port
        uint32_t sin6_flowinfo
        in6_addr sin6_addr
        uint32_t sin6_scope_id

cdef extern from "<netinet/in.h>" nogil:
    int IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO

cdef extern from *:
    """
    #include <netinet/udp.h>
    #ifndef UDP_SEGMENT
    #define UDP_SEGMENT 103
    #endif
    #ifndef SOL_UDP
    #define SOL_UDP 17
    #endif
    """
    int SOL_UDP, UDP_SEGMENT

cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int af, const char* src, void* dst)
    const char* inet_ntop(int af, const void* src, char* dst, socklen_t size)
    uint16_t htons(uint16_t)
    uint16_t ntohs(uint16_t)


cdef double SEND_STEP = _SEND_STEP  # (the reference's: a player's send marks, take_player_stats)

DEF RX_BATCH = 64        # datagrams per recvmmsg (the reference's RECV_BATCH)
DEF RX_SIZE = 2048       # bytes per receive buffer
DEF RX_MAX = 65536       # bytes per datagram, with its overflow buffer (more than any UDP datagram holds)
DEF TX_BATCH = 1024      # messages per sendmmsg (UIO_MAXIOV): the send queue's least capacity
DEF TX_PACKETS = 8       # ... and it holds this many packets for every player (GSO groups them)
DEF TX_MAX = 16384       # ... up to this many messages
DEF RX_CONTROL = 64      # bytes of ancillary data per received datagram (its kernel timestamp)
DEF GSO_SEGMENTS = 64    # datagrams per UDP GSO send (the kernel's UDP_MAX_SEGMENTS, at least)
DEF GSO_BYTES = 60000    # bytes per UDP GSO send (under the 64 KiB of one IP packet)
DEF GSO_CONTROL = 32     # bytes of ancillary data per send: CMSG_SPACE(2), the segment size
DEF SEND_MARKS = 16      # a player's send marks kept between takes (the reference's SEND_MARKS)
DEF CLOCKS_BRACKET_NS = 5000  # a monotonic-realtime offset read across a longer gap is not taken (pump)

cdef enum:
    EV_NONE = 0
    EV_RTP = 1
    EV_RTCP = 2
    EV_AGAIN = 3
    F_MARKER = 1
    F_KEYFRAME = 2
    F_FRAME_START = 4
    F_DROPPABLE = 8
    F_LATE = 16
    F_DUPLICATE = 32
    MODE_RTC = 1
    MODE_L3 = 2
    GATE_NONE = -1
    GATE_CLOSED = 0
    GATE_OPEN = 1
    C_OPUS = 0
    C_VP8 = 1
    C_VP9 = 2
    C_H264 = 3
    C_AV1 = 4
    BAD_PAYLOAD = -1

cdef enum:  # counter indices, the order of COUNTERS
    K_PACKETS_IN, K_BYTES_IN, K_PACKETS_OUT, K_BYTES_OUT, K_MALFORMED, K_UNBOUND, K_BAD_PAYLOAD, K_UNSENT, \
        K_RTP_PACKETS, K_COUNT

assert K_COUNT == len(COUNTERS)
cdef double _DISCONTINUITY = JITTER_DISCONTINUITY


ctypedef struct slot_t:
    bint used
    int64_t ext
    uint32_t ts
    int flags
    double arrival
    Py_ssize_t length
    Py_ssize_t cap
    unsigned char* data


ctypedef struct mark_t:  # where a player's sends crossed a step of the clock (take_player_stats)
    double at
    int64_t count
    int64_t nbytes


ctypedef struct player_t:
    sockaddr_storage addr
    socklen_t addrlen
    uint32_t ssrc
    uint8_t pt
    int mode
    int gate
    bint has_min
    int64_t min_ext
    int64_t seq_delta
    uint32_t ts_delta
    int64_t count
    int64_t nbytes
    int64_t octets
    int64_t last_ext
    uint32_t last_ts
    double last_arrival
    int64_t drops
    int64_t drop_bytes
    int64_t drop_first
    int64_t drop_last
    int64_t step  # the SEND_STEP of the clock of the last send (the reference's marks)
    double last_at  # the time of the last send
    int nmarks  # its marks (in the track's mark table, SEND_MARKS at its slot's place)
    int gso_group  # while a flush groups the queue: 1 + its open group, 0 for none


# ----- payload inspection: the rules of sfu/media/codecs.py, flags or BAD_PAYLOAD ------------------

cdef inline int _flags(bint keyframe, bint frame_start, bint droppable) noexcept nogil:
    # codecs._info: droppable only when not a keyframe
    return (F_KEYFRAME if keyframe else 0) | (F_FRAME_START if frame_start else 0) \
        | (F_DROPPABLE if droppable and not keyframe else 0)


cdef int _vp8(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef int b0, x
    cdef Py_ssize_t pos = 1
    cdef bint non_reference, frame_start, keyframe
    if n == 0:
        return BAD_PAYLOAD
    b0 = p[0]
    non_reference = (b0 & 0x20) != 0
    frame_start = (b0 & 0x10) != 0 and (b0 & 0x07) == 0
    if b0 & 0x80:
        if n < 2:
            return BAD_PAYLOAD
        x = p[1]
        pos = 2
        if x & 0x80:
            if pos >= n:
                return BAD_PAYLOAD
            if p[pos] & 0x80:
                if pos + 1 >= n:
                    return BAD_PAYLOAD
                pos += 1
            pos += 1
        if x & 0x40:
            if pos >= n:
                return BAD_PAYLOAD
            pos += 1
        if x & 0x30:
            if pos >= n:
                return BAD_PAYLOAD
            pos += 1
    if pos >= n:
        return BAD_PAYLOAD
    keyframe = frame_start and not (p[pos] & 0x01)
    if keyframe:
        if n - pos < 10:
            return BAD_PAYLOAD
        if p[pos + 3] != 0x9D or p[pos + 4] != 0x01 or p[pos + 5] != 0x2A:
            return BAD_PAYLOAD
    return _flags(keyframe, frame_start, non_reference)


cdef Py_ssize_t _vp9_skip_ss(const unsigned char* p, Py_ssize_t n, Py_ssize_t pos) noexcept nogil:
    cdef int head, n_g, i, refs
    cdef Py_ssize_t need
    if pos >= n:
        return -1
    head = p[pos]
    pos += 1
    if head & 0x10:
        need = ((head >> 5) + 1) * 4
        if pos + need > n:
            return -1
        pos += need
    if head & 0x08:
        if pos >= n:
            return -1
        n_g = p[pos]
        pos += 1
        for i in range(n_g):
            if pos >= n:
                return -1
            refs = (p[pos] >> 2) & 0x03
            pos += 1 + refs
            if pos > n:
                return -1
    return pos


cdef int _vp9(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef int b0, sid = 0, count
    cdef bint has_pid, inter, has_layers, flexible, begins, has_ss, more
    cdef Py_ssize_t pos = 1
    if n == 0:
        return BAD_PAYLOAD
    b0 = p[0]
    has_pid, inter, has_layers, flexible = (b0 & 0x80) != 0, (b0 & 0x40) != 0, (b0 & 0x20) != 0, (b0 & 0x10) != 0
    begins, has_ss = (b0 & 0x08) != 0, (b0 & 0x02) != 0
    if has_pid:
        if pos >= n:
            return BAD_PAYLOAD
        if p[pos] & 0x80:
            if pos + 1 >= n:
                return BAD_PAYLOAD
            pos += 1
        pos += 1
    if has_layers:
        if pos >= n:
            return BAD_PAYLOAD
        sid = (p[pos] >> 1) & 0x07
        pos += 1
        if not flexible:
            if pos >= n:
                return BAD_PAYLOAD
            pos += 1
    if flexible and inter:
        if not has_pid:
            return BAD_PAYLOAD
        count = 1
        while True:
            if count > 3:
                return BAD_PAYLOAD
            if pos >= n:
                return BAD_PAYLOAD
            more = (p[pos] & 0x01) != 0
            pos += 1
            if not more:
                break
            count += 1
    if has_ss:
        pos = _vp9_skip_ss(p, n, pos)
        if pos < 0:
            return BAD_PAYLOAD
    if pos >= n:
        return BAD_PAYLOAD
    return _flags(begins and not inter and sid == 0, begins, False)


cdef inline bint _h264_key(int nal_type) noexcept nogil:
    return nal_type == 5 or nal_type == 7 or nal_type == 8


cdef int _h264(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef int head, nal_type, fu, inner, count = 0, size
    cdef bint start, end, keyframe = False, droppable = True
    cdef Py_ssize_t pos
    if n == 0:
        return BAD_PAYLOAD
    head = p[0]
    nal_type = head & 0x1F
    if 1 <= nal_type <= 23:
        return _flags(_h264_key(nal_type), True, not (head & 0x60))
    if nal_type == 24:  # STAP-A
        pos = 1
        while pos < n:
            count += 1
            if pos + 2 > n:
                return BAD_PAYLOAD
            size = rtp_read_u16(p + pos)
            pos += 2
            if size == 0 or pos + size > n:
                return BAD_PAYLOAD
            head = p[pos]
            nal_type = head & 0x1F
            if not 1 <= nal_type <= 23:
                return BAD_PAYLOAD
            keyframe = keyframe or _h264_key(nal_type)
            droppable = droppable and not (head & 0x60)
            pos += size
        if count == 0:
            return BAD_PAYLOAD
        return _flags(keyframe, True, droppable)
    if nal_type == 28:  # FU-A
        if n < 2:
            return BAD_PAYLOAD
        fu = p[1]
        start, end, inner = (fu & 0x80) != 0, (fu & 0x40) != 0, fu & 0x1F
        if start and end:
            return BAD_PAYLOAD
        if not 1 <= inner <= 23:
            return BAD_PAYLOAD
        return _flags(start and _h264_key(inner), start, not (head & 0x60))
    return BAD_PAYLOAD


cdef Py_ssize_t _av1_skip(const unsigned char* p, Py_ssize_t n, Py_ssize_t pos) noexcept nogil:
    cdef uint32_t byte
    cdef int64_t size = 0
    cdef int i
    for i in range(8):
        if pos >= n:
            return -1
        byte = p[pos]
        pos += 1
        size |= (<int64_t>(byte & 0x7F)) << (7 * i)
        if not byte & 0x80:
            break
    else:
        return -1
    if pos + size > n:
        return -1
    return pos + size


cdef int _av1(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef int head, w, element
    cdef bint continues, new_sequence
    cdef Py_ssize_t pos = 1
    if n == 0:
        return BAD_PAYLOAD
    head = p[0]
    continues, new_sequence, w = (head & 0x80) != 0, (head & 0x08) != 0, (head >> 4) & 0x03
    if new_sequence and continues:
        return BAD_PAYLOAD
    if w == 0:
        if pos >= n:
            return BAD_PAYLOAD
        while pos < n:
            pos = _av1_skip(p, n, pos)
            if pos < 0:
                return BAD_PAYLOAD
    else:
        for element in range(1, w):
            if pos >= n:
                return BAD_PAYLOAD
            pos = _av1_skip(p, n, pos)
            if pos < 0:
                return BAD_PAYLOAD
    return _flags(new_sequence, not continues, False)


cdef int _inspect(int codec, const unsigned char* p, Py_ssize_t n) noexcept nogil:
    if codec == C_VP8:
        return _vp8(p, n)
    if codec == C_VP9:
        return _vp9(p, n)
    if codec == C_H264:
        return _h264(p, n)
    if codec == C_AV1:
        return _av1(p, n)
    return F_KEYFRAME | F_FRAME_START if n > 0 else BAD_PAYLOAD


def dont_fragment(sock):
    """Set DF on an IPv4 UDP socket's datagrams (IP_MTU_DISCOVER = IP_PMTUDISC_DO): media is sized
    for the path and never fragmented, and the kernel skips picking an IP ID per datagram."""
    cdef int value = IP_PMTUDISC_DO
    if setsockopt(sock.fileno(), IPPROTO_IP, IP_MTU_DISCOVER, &value, sizeof(value)) != 0:
        raise OSError(errno, "setsockopt(IP_MTU_DISCOVER) failed")


def inspect_flags(str codec, bytes payload):
    """The fast path's payload inspection (for the differential tests): its flags, or None when
    the payload does not parse."""
    cdef int r = _inspect(_CODECS[Codec.from_name(codec)], <const unsigned char*>PyBytes_AS_STRING(payload),
                          PyBytes_GET_SIZE(payload))
    return None if r == BAD_PAYLOAD else r


_CODECS = {Codec.OPUS: C_OPUS, Codec.VP8: C_VP8, Codec.VP9: C_VP9, Codec.H264: C_H264, Codec.AV1: C_AV1}


# ----- addresses -----------------------------------------------------------------------------------

cdef int _to_sockaddr(object addr, sockaddr_storage* out, socklen_t* length) except -1:
    """A Python socket address tuple into *out."""
    cdef sockaddr_in* v4 = <sockaddr_in*>out
    cdef sockaddr_in6* v6 = <sockaddr_in6*>out
    cdef bytes host = addr[0].encode("ascii")
    cdef int port = addr[1]
    memset(out, 0, sizeof(sockaddr_storage))
    if b":" not in host:
        v4.sin_family = AF_INET
        v4.sin_port = htons(port)
        if inet_pton(AF_INET, host, &v4.sin_addr) != 1:
            raise ValueError(f"not an IPv4 address: {addr[0]!r}")
        length[0] = sizeof(sockaddr_in)
    else:
        v6.sin6_family = AF_INET6
        v6.sin6_port = htons(port)
        if len(addr) > 2:
            v6.sin6_flowinfo = addr[2]
            v6.sin6_scope_id = addr[3]
        if inet_pton(AF_INET6, host, &v6.sin6_addr) != 1:
            raise ValueError(f"not an IPv6 address: {addr[0]!r}")
        length[0] = sizeof(sockaddr_in6)
    return 0


cdef object _from_sockaddr(sockaddr_storage* sa):
    cdef char text[64]
    cdef sockaddr_in* v4 = <sockaddr_in*>sa
    cdef sockaddr_in6* v6 = <sockaddr_in6*>sa
    if sa.ss_family == AF_INET:
        inet_ntop(AF_INET, &v4.sin_addr, text, sizeof(text))
        return (text.decode("ascii"), ntohs(v4.sin_port))
    inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof(text))
    return (text.decode("ascii"), ntohs(v6.sin6_port), v6.sin6_flowinfo, v6.sin6_scope_id)


cdef inline bint _same_addr(sockaddr_storage* a, sockaddr_storage* b) noexcept nogil:
    cdef sockaddr_in* a4 = <sockaddr_in*>a
    cdef sockaddr_in* b4 = <sockaddr_in*>b
    cdef sockaddr_in6* a6 = <sockaddr_in6*>a
    cdef sockaddr_in6* b6 = <sockaddr_in6*>b
    cdef int i
    if a.ss_family != b.ss_family:
        return False
    if a.ss_family == AF_INET:
        return a4.sin_port == b4.sin_port and a4.sin_addr.s_addr == b4.sin_addr.s_addr
    if a6.sin6_port != b6.sin6_port or a6.sin6_flowinfo != b6.sin6_flowinfo or a6.sin6_scope_id != b6.sin6_scope_id:
        return False
    for i in range(16):
        if a6.sin6_addr.s6_addr[i] != b6.sin6_addr.s6_addr[i]:
            return False
    return True


# ----- the FastTrack -------------------------------------------------------------------------------

cdef int _fill_player(player_t* p, entry) except -1:
    """A table entry (load_players) into `p`; 1 if it has a gate."""
    addr, ssrc, pt, seq_delta, ts_delta, mode = entry[:6]
    p.gate = entry[6] if len(entry) > 6 else GATE_NONE
    p.has_min = len(entry) > 7 and entry[7] is not None
    p.min_ext = entry[7] if p.has_min else 0
    _to_sockaddr(addr, &p.addr, &p.addrlen)
    p.ssrc = ssrc
    p.pt = pt
    p.seq_delta = seq_delta
    p.ts_delta = ts_delta & 0xFFFFFFFF
    p.mode = mode
    return p.gate != GATE_NONE


cdef class FastTrack:
    cdef readonly object codec
    cdef readonly bint video
    cdef readonly Py_ssize_t size
    cdef readonly double max_age
    cdef int _codec
    cdef slot_t* _ring
    cdef bint _has_newest
    cdef int64_t _newest
    cdef int64_t _newest_ts
    cdef Py_ssize_t _gated
    cdef bint _bound
    cdef sockaddr_storage _bound_addr
    cdef object _bound_obj
    cdef bint _has_ssrc
    cdef uint32_t _ssrc
    cdef bint _has_arrival
    cdef double _last_arrival
    cdef readonly int clock_rate
    cdef readonly double packet_jitter
    cdef bint _has_jitter_last
    cdef double _jitter_arrival
    cdef uint32_t _jitter_ts
    cdef readonly int64_t last_ext
    cdef readonly int last_flags
    cdef public object gop_start
    cdef public bint fast_ok
    cdef public Py_ssize_t hold
    cdef list _held
    cdef object _output
    cdef int _fd
    cdef player_t* _players
    cdef mark_t* _marks  # SEND_MARKS per player, by slot: apart from the table the fan-out walks
    cdef double _step_now  # the time the step below is for (`_send`: one division per batch, not per packet)
    cdef int64_t _step
    cdef Py_ssize_t _nplayers
    cdef int _dirty
    cdef list _addr_objs
    cdef list _out
    cdef list _tx_refs  # the packets queued messages point into, from send_frame(flush=False): until the flush
    cdef int64_t _counters[K_COUNT]
    cdef readonly object slow_data
    cdef readonly object slow_addr
    cdef readonly object slow_prev
    # receive buffers (pump)
    cdef unsigned char* _rx
    cdef unsigned char* _rx_over  # the overflow buffers, RX_MAX - RX_SIZE bytes each
    cdef unsigned char* _rx_joined  # a long datagram in one piece (RX_MAX bytes, made at the first)
    cdef mmsghdr _rx_msgs[RX_BATCH]
    cdef iovec _rx_iov[RX_BATCH][2]
    cdef sockaddr_storage _rx_addr[RX_BATCH]
    cdef unsigned char _rx_control[RX_BATCH][RX_CONTROL]
    cdef int64_t _rx_stamp[RX_BATCH]  # kernel timestamps (CLOCK_REALTIME ns), 0: none
    cdef int _rx_count
    cdef int _rx_pos
    cdef bint _rx_kept  # the datagram at _rx_pos was left once already (EV_AGAIN)
    cdef bint _monotonic  # enable_timestamps(monotonic=)
    cdef double _base_t  # _clock_base's last good base: a CLOCK_MONOTONIC time (s) ...
    cdef int64_t _base_wall  # ... and CLOCK_REALTIME (ns) at that instant
    # send queue
    cdef mmsghdr* _tx_msgs
    cdef iovec* _tx_iov
    cdef unsigned char* _tx_hdr
    cdef int _tx_count
    cdef int _tx_cap  # messages the queue (and the grouping arrays) hold: _tx_reserve
    cdef int* _tx_player  # the player of each queued message
    cdef slot_t* _tx_slot  # the packet queued last, and how many packets the queue holds: with one,
    cdef int _tx_packets   # no player has two messages and a flush does not try to group them
    # UDP GSO (segmentation offload): a flush sends a player's consecutive datagrams of one size
    # (the last may be shorter) as one message the kernel cuts up: one route lookup and one
    # socket buffer for the lot. What arrives is the same datagrams.
    cdef bint _gso
    cdef readonly int64_t gso_sends  # messages sent with a segment size, since start
    cdef int* _g_ints  # one block for the int arrays below
    cdef int* _tx_group  # each queued message's group
    cdef int* _g_first   # per group: its first message, segments, segment size, bytes, closed, fill position
    cdef int* _g_count
    cdef int* _g_size
    cdef int* _g_bytes
    cdef int* _g_closed
    cdef int* _g_pos
    cdef mmsghdr* _g_msgs
    cdef iovec* _g_iov
    cdef unsigned char* _g_control

    def __cinit__(self, str codec, Py_ssize_t size=4096, double max_age=2.0):
        self._ring = NULL
        self._players = NULL
        self._rx = NULL
        self._rx_over = NULL
        self._rx_joined = NULL
        self._tx_msgs = NULL
        self._tx_iov = NULL
        self._tx_hdr = NULL
        self._tx_player = NULL
        self._tx_slot = NULL
        self._tx_packets = 0
        self._g_ints = NULL
        self._g_msgs = NULL
        self._g_iov = NULL
        self._g_control = NULL

    def __init__(self, str codec, Py_ssize_t size=4096, double max_age=2.0):
        if size < 128 or size & (size - 1):
            raise ValueError(f"ring size must be a power of two >= 128, got {size}")
        self.codec = Codec.from_name(codec)
        self.video = self.codec.is_video
        self._codec = _CODECS[self.codec]
        self.size = size
        self.max_age = max_age
        self._ring = <slot_t*>calloc(size, sizeof(slot_t))
        self._rx = <unsigned char*>malloc(RX_BATCH * RX_SIZE)
        self._rx_over = <unsigned char*>malloc(RX_BATCH * (RX_MAX - RX_SIZE))  # (untouched: not resident)
        if self._ring == NULL or self._rx == NULL or self._rx_over == NULL:
            raise MemoryError()
        self._tx_cap = 0
        self._tx_reserve(TX_BATCH)
        self._gso = True
        self.gso_sends = 0
        cdef int i
        for i in range(RX_BATCH):
            self._rx_iov[i][0].iov_base = self._rx + i * RX_SIZE
            self._rx_iov[i][0].iov_len = RX_SIZE
            self._rx_iov[i][1].iov_base = self._rx_over + i * (RX_MAX - RX_SIZE)
            self._rx_iov[i][1].iov_len = RX_MAX - RX_SIZE
        self._has_newest = False
        self.clock_rate = self.codec.clock_rate
        self.packet_jitter = 0.0
        self._has_jitter_last = False
        self._newest_ts = -1
        self._gated = 0
        self._bound = False
        self._bound_obj = None
        self._has_ssrc = False
        self._has_arrival = False
        self.last_ext = 0
        self.last_flags = 0
        self.gop_start = None
        self.fast_ok = False
        self.hold = 0
        self._held = []
        self._output = None
        self._fd = -1
        self._nplayers = 0
        self._dirty = 0
        self._addr_objs = []
        self._out = []
        self._tx_refs = []
        memset(self._counters, 0, sizeof(self._counters))
        self.slow_data = None
        self.slow_addr = None
        self.slow_prev = None
        self._rx_count = 0
        self._rx_pos = 0
        self._rx_kept = False
        self._monotonic = False
        self._base_t = 0.0
        self._base_wall = 0
        self._tx_count = 0

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self._ring != NULL:
            for i in range(self.size):
                free(self._ring[i].data)
            free(self._ring)
        free(self._players)
        free(self._marks)
        free(self._rx)
        free(self._rx_over)
        free(self._rx_joined)
        self._tx_free()

    # ----- properties (the reference's attributes) -----------------------------------------------

    @property
    def newest(self):
        return self._newest if self._has_newest else None

    @property
    def bound(self):
        return self._bound_obj

    @bound.setter
    def bound(self, addr):
        if addr is None:
            self._bound = False
            self._bound_obj = None
            return
        cdef socklen_t length
        _to_sockaddr(addr, &self._bound_addr, &length)
        self._bound = True
        self._bound_obj = tuple(addr)

    @property
    def newest_timestamp(self):
        return self._newest_ts if self._has_newest else None

    @property
    def ssrc(self):
        return self._ssrc if self._has_ssrc else None

    @property
    def last_arrival(self):
        return self._last_arrival if self._has_arrival else None

    @property
    def output(self):
        return self._output

    @output.setter
    def output(self, sock):
        self._flush()
        self._output = sock
        self._fd = -1 if sock is None else sock.fileno()

    @property
    def gso(self):
        """Whether a flush sends a player's datagrams of one size together with UDP GSO (on by
        default; off for good once the kernel refuses it, e.g. a kernel older than 4.18)."""
        return self._gso

    @gso.setter
    def gso(self, bint on):
        self._flush()
        self._gso = on

    # ----- control ---------------------------------------------------------------------------

    cdef void _tx_free(self) noexcept:
        free(self._tx_msgs)
        free(self._tx_iov)
        free(self._tx_hdr)
        free(self._tx_player)
        free(self._g_ints)
        free(self._g_msgs)
        free(self._g_iov)
        free(self._g_control)

    cdef int _tx_reserve(self, int cap) except -1:
        # The send queue and the grouping arrays, for `cap` messages (grown, never shrunk). Only
        # with the queue empty: queued messages point into these arrays.
        if cap <= self._tx_cap:
            return 0
        cdef mmsghdr* msgs = <mmsghdr*>calloc(cap, sizeof(mmsghdr))
        cdef iovec* iov = <iovec*>calloc(2 * cap, sizeof(iovec))
        cdef unsigned char* hdr = <unsigned char*>malloc(12 * cap)
        cdef int* player = <int*>calloc(cap, sizeof(int))
        cdef int* ints = <int*>calloc(7 * cap, sizeof(int))
        cdef mmsghdr* g_msgs = <mmsghdr*>calloc(cap, sizeof(mmsghdr))
        cdef iovec* g_iov = <iovec*>calloc(2 * cap, sizeof(iovec))
        cdef unsigned char* g_control = <unsigned char*>calloc(cap, GSO_CONTROL)
        if msgs == NULL or iov == NULL or hdr == NULL or player == NULL or ints == NULL or g_msgs == NULL \
                or g_iov == NULL or g_control == NULL:
            free(msgs)
            free(iov)
            free(hdr)
            free(player)
            free(ints)
            free(g_msgs)
            free(g_iov)
            free(g_control)
            raise MemoryError()
        self._tx_free()
        self._tx_msgs, self._tx_iov, self._tx_hdr, self._tx_player = msgs, iov, hdr, player
        self._g_ints, self._g_msgs, self._g_iov, self._g_control = ints, g_msgs, g_iov, g_control
        self._tx_group = ints
        self._g_first = ints + cap
        self._g_count = ints + 2 * cap
        self._g_size = ints + 3 * cap
        self._g_bytes = ints + 4 * cap
        self._g_closed = ints + 5 * cap
        self._g_pos = ints + 6 * cap
        self._tx_cap = cap
        return 0

    @property
    def send_queue_capacity(self):
        """Messages one flush may hold: at least TX_BATCH, else TX_PACKETS per player (up to TX_MAX),
        so that a flush can give each player several packets, which GSO then sends as one message."""
        return self._tx_cap

    def load_players(self, list entries):
        cdef Py_ssize_t n = len(entries), i
        cdef player_t* players = <player_t*>calloc(n if n else 1, sizeof(player_t))
        cdef mark_t* marks = <mark_t*>malloc((n if n else 1) * SEND_MARKS * sizeof(mark_t))
        cdef Py_ssize_t gated = 0
        if players == NULL or marks == NULL:
            free(players)
            free(marks)
            raise MemoryError()
        try:
            for i in range(n):
                gated += _fill_player(&players[i], entries[i])
        except BaseException:
            free(players)
            free(marks)
            raise
        self._flush()  # queued messages point at the old table's addresses
        self._tx_reserve(min(TX_MAX, max(TX_BATCH, TX_PACKETS * n)))
        free(self._players)
        free(self._marks)
        self._players = players
        self._marks = marks
        self._nplayers = n
        self._gated = gated
        self._dirty = 0
        self._addr_objs = [tuple(e[0]) for e in entries]

    def append_players(self, list entries):
        cdef Py_ssize_t k = len(entries), n = self._nplayers + k, i
        if not k:
            return
        cdef player_t* added = <player_t*>calloc(k, sizeof(player_t))
        cdef player_t* players
        cdef mark_t* marks
        cdef Py_ssize_t gated = 0
        if added == NULL:
            raise MemoryError()
        try:
            for i in range(k):  # (all converted first: a bad entry changes nothing)
                gated += _fill_player(&added[i], entries[i])
            addr_objs = [tuple(e[0]) for e in entries]
        except BaseException:
            free(added)
            raise
        self._flush()  # queued messages point at the table's addresses, which may move
        players = <player_t*>realloc(self._players, n * sizeof(player_t))
        if players == NULL:
            free(added)
            raise MemoryError()
        self._players = players
        marks = <mark_t*>realloc(self._marks, n * SEND_MARKS * sizeof(mark_t))
        if marks == NULL:
            free(added)
            raise MemoryError()
        self._marks = marks
        memcpy(&self._players[self._nplayers], added, k * sizeof(player_t))
        free(added)
        self._nplayers = n
        self._gated += gated
        self._addr_objs += addr_objs
        self._tx_reserve(min(TX_MAX, max(TX_BATCH, TX_PACKETS * n)))

    def remove_player(self, Py_ssize_t slot):
        if not 0 <= slot < self._nplayers:
            raise IndexError(slot)
        cdef player_t* p = &self._players[slot]
        if p.gate != GATE_NONE:
            self._gated -= 1
        p.gate = GATE_NONE
        p.mode = 0

    def compact(self):
        cdef Py_ssize_t i, j = 0
        self._flush()  # queued messages point at the table's addresses, which move
        kept = []
        for i in range(self._nplayers):
            if self._players[i].mode == 0:
                continue
            if j != i:
                self._players[j] = self._players[i]
                memcpy(self._marks + j * SEND_MARKS, self._marks + i * SEND_MARKS, SEND_MARKS * sizeof(mark_t))
            kept.append(i)
            j += 1
        self._addr_objs = [self._addr_objs[i] for i in kept]
        self._nplayers = j
        return kept

    def add_gate(self, Py_ssize_t slot, int gate):
        if not 0 <= slot < self._nplayers:
            raise IndexError(slot)
        cdef player_t* p = &self._players[slot]
        if p.gate != GATE_NONE or gate == GATE_NONE:
            raise ValueError("add_gate gives an ungated player a gate")
        p.gate = gate
        self._gated += 1

    def set_gate(self, Py_ssize_t slot, int gate, seq_delta=None):
        if not 0 <= slot < self._nplayers:
            raise IndexError(slot)
        cdef player_t* p = &self._players[slot]
        if (p.gate == GATE_NONE) != (gate == GATE_NONE):
            raise ValueError("set_gate cannot make a player gated or ungated: load the table")
        p.gate = gate
        if seq_delta is not None:
            p.seq_delta = seq_delta

    def take_player_stats(self, int mode=0, Py_ssize_t first=0, last=None):
        cdef Py_ssize_t i
        cdef player_t* p
        cdef int modes = mode if mode else (MODE_RTC | MODE_L3)
        cdef Py_ssize_t end = self._nplayers if last is None else min(<Py_ssize_t>last, self._nplayers)
        if first < 0:
            first = 0
        if not self._dirty & modes:
            return []
        if first == 0 and end == self._nplayers:
            self._dirty &= ~modes  # the others (a range) may still have something
        cdef int k
        cdef mark_t* m
        stats = []
        for i in range(first, end):
            p = &self._players[i]
            if (p.count or p.drops) and (p.mode & modes):
                m = self._marks + i * SEND_MARKS
                marks = tuple([(m[k].at, m[k].count, m[k].nbytes) for k in range(p.nmarks)]) if p.nmarks else ()
                stats.append((i, p.count, p.nbytes, p.octets, p.last_ext, p.last_ts, p.last_arrival,
                              p.drops, p.drop_bytes, p.drop_first, p.drop_last, marks))
                p.count = p.nbytes = p.octets = p.drops = p.drop_bytes = 0
                p.nmarks = 0
        return stats

    def take_counters(self):
        values = tuple([self._counters[i] for i in range(K_COUNT)])
        memset(self._counters, 0, sizeof(self._counters))
        return values

    def take_out(self):
        out = self._out
        self._out = []
        return out

    def take_held(self):
        held = self._held
        self._held = []
        return held

    # ----- the ring --------------------------------------------------------------------------

    cdef slot_t* _find(self, int64_t ext) noexcept:
        cdef slot_t* s = &self._ring[ext & (self.size - 1)]
        return s if s.used and s.ext == ext else NULL

    def packet(self, int64_t ext_seq, now=None):
        cdef slot_t* s = self._find(ext_seq)
        if s == NULL:
            return None
        if now is not None and <double>now - s.arrival > self.max_age:
            return None
        return StoredPacket(s.ext, s.ts, s.flags, s.arrival, PyBytes_FromStringAndSize(<char*>s.data, s.length))

    def gop(self, Py_ssize_t max_packets, Py_ssize_t max_bytes):
        cdef int64_t ext, start
        cdef Py_ssize_t total = 0
        cdef slot_t* s
        if self.gop_start is None or not self._has_newest:
            return []
        start = self.gop_start
        if self._newest - start >= min(self.size, max_packets):
            return []
        out = []
        for ext in range(start, self._newest + 1):
            s = self._find(ext)
            if s == NULL:
                continue
            total += s.length
            if total > max_bytes:
                return []
            out.append(StoredPacket(s.ext, s.ts, s.flags, s.arrival, PyBytes_FromStringAndSize(<char*>s.data, s.length)))
        return out

    cdef int _store(self, int64_t ext, uint32_t ts, int flags, double now, const unsigned char* data,
                    Py_ssize_t n) except -1:
        cdef slot_t* s
        cdef Py_ssize_t i
        cdef unsigned char* buf
        if self._has_newest and ext <= self._newest - self.size:
            return 0
        if self._has_newest and ext - self._newest >= self.size:
            for i in range(self.size):
                self._ring[i].used = False
        if not self._has_newest or ext > self._newest:
            self._newest = ext
            self._newest_ts = ts
            self._has_newest = True
        s = &self._ring[ext & (self.size - 1)]
        if s.cap < n:
            buf = <unsigned char*>realloc(s.data, n if n > 1500 else 1500)
            if buf == NULL:
                raise MemoryError()
            s.data = buf
            s.cap = n if n > 1500 else 1500
        memcpy(s.data, data, n)
        s.used = True
        s.ext = ext
        s.ts = ts
        s.flags = flags
        s.arrival = now
        s.length = n
        return 0

    # ----- the ingress -------------------------------------------------------------------------

    cdef int _ingest(self, const unsigned char* data, Py_ssize_t n, sockaddr_storage* sa, object addr,
                     double now, double read_at) except -1:
        """One datagram that arrived at `now`, handed over at `read_at`; `sa` is its source (and `addr`
        the same as a tuple, or None: made when needed)."""
        cdef rtp_fields h
        cdef int64_t ext, hi
        cdef bint has_hi
        cdef uint16_t d
        cdef int flags, info
        cdef bint new_frame, held
        cdef socklen_t length
        cdef Py_ssize_t i
        cdef player_t* p
        cdef slot_t* s
        self._counters[K_PACKETS_IN] += 1
        self._counters[K_BYTES_IN] += n
        if n < 8:
            self._counters[K_MALFORMED] += 1
            return EV_NONE
        if rtp_is_rtcp(data, n):
            self.slow_data = PyBytes_FromStringAndSize(<const char*>data, n)
            self.slow_addr = addr if addr is not None else _from_sockaddr(sa)
            return EV_RTCP
        if self._bound and not _same_addr(sa, &self._bound_addr):
            self._counters[K_UNBOUND] += 1
            return EV_NONE
        if rtp_parse(data, n, &h) != RTP_OK:
            self._counters[K_MALFORMED] += 1
            return EV_NONE
        if not self._bound:
            self._bound_addr = sa[0]
            self._bound = True
            self._bound_obj = addr if addr is not None else _from_sockaddr(sa)
        self._ssrc = h.ssrc
        self._has_ssrc = True
        self._last_arrival = now
        self._has_arrival = True
        has_hi = self._has_newest
        hi = self._newest
        if not has_hi:
            ext = h.sequence_number
        else:
            d = <uint16_t>(h.sequence_number - <uint16_t>hi)
            ext = hi + d if d < 0x8000 else hi + d - 0x10000
        flags = F_MARKER if h.marker else 0
        if self.video:
            info = _inspect(self._codec, data + h.header_length, h.payload_length)
            if info == BAD_PAYLOAD:
                self._counters[K_BAD_PAYLOAD] += 1
            else:
                flags |= info
        else:
            flags |= F_MARKER | F_KEYFRAME | F_FRAME_START
        if has_hi and ext <= hi:
            flags |= F_LATE
            if self._find(ext) != NULL:
                flags |= F_DUPLICATE  # the ring has it: it keeps the first copy (and its arrival)
        else:
            self._sample_jitter(now, h.timestamp)
        new_frame = <int64_t>h.timestamp != self._newest_ts  # the newest packet's before this one
        if self._tx_count and (not has_hi or ext != hi + 1):
            self._flush()  # queued messages point into the ring: a jump could land on their slots
        if not (flags & F_DUPLICATE):
            self._store(ext, h.timestamp, flags, now, data, n)
        self._counters[K_RTP_PACKETS] += 1
        self.last_ext = ext
        self.last_flags = flags
        held = not self.fast_ok and self.hold > len(self._held) and not new_frame and not (flags & F_FRAME_START)
        if not (self.fast_ok or held) or not has_hi or ext != hi + 1 or \
                (self.video and (flags & (F_KEYFRAME | F_FRAME_START)) == (F_KEYFRAME | F_FRAME_START)) or \
                (self._gated and new_frame):
            self.slow_prev = hi if has_hi else None
            return EV_RTP
        if held:
            self._held.append((MediaPacket(ext, h.timestamp, (flags & F_MARKER) != 0, (flags & F_KEYFRAME) != 0,
                                           (flags & F_FRAME_START) != 0, now,
                                           PyBytes_FromStringAndSize(<const char*>data, n), False,
                                           (flags & F_DROPPABLE) != 0), read_at))
        s = self._find(ext)
        for i in range(self._nplayers):
            p = &self._players[i]
            if p.mode != MODE_RTC:
                continue
            if p.gate == GATE_CLOSED:  # its budget dropped this frame: no gap in its numbering
                self._drop(p, ext, n)
            else:
                self._send(i, s, now)
        return EV_NONE

    cdef inline void _drop(self, player_t* p, int64_t ext, Py_ssize_t n) noexcept:
        """A packet a closed gate keeps from the player: its numbering closes over it."""
        p.seq_delta += 1
        if not p.drops:
            p.drop_first = ext
        p.drops += 1
        p.drop_bytes += n
        p.drop_last = ext
        self._dirty |= p.mode

    cdef void _sample_jitter(self, double now, uint32_t ts) noexcept:
        cdef int64_t dts
        cdef double d
        if self._has_jitter_last:
            dts = <int64_t>(<uint32_t>(ts - self._jitter_ts))
            if dts >= 0x80000000:
                dts -= 0x100000000
            d = (now - self._jitter_arrival) - <double>dts / self.clock_rate
            if d < 0:
                d = -d
            if d < _DISCONTINUITY:
                self.packet_jitter += (d - self.packet_jitter) / 16
        self._has_jitter_last = True
        self._jitter_arrival = now
        self._jitter_ts = ts

    def ingest(self, bytes data, addr, double now):
        cdef sockaddr_storage sa
        cdef socklen_t length
        cdef int event
        _to_sockaddr(addr, &sa, &length)
        event = self._ingest(<const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), &sa,
                             tuple(addr), now, now)
        self._flush()
        return event

    def enable_timestamps(self, sock, bint monotonic=False):
        """Have the kernel stamp each datagram `sock` receives (SO_TIMESTAMPNS): `pump` then takes a
        packet's arrival from when it reached the socket, not from when the node got round to it.

        `monotonic`: the `now` given to `pump` is CLOCK_MONOTONIC time (`time.monotonic()`, the
        node's media clock). The pump then turns a stamp with the two clocks' offset, read by
        itself, so an arrival does not depend on when the caller read `now` (it may have lost the
        CPU since). Without it (a virtual clock in tests), `now` is taken as the time of the call."""
        cdef int on = 1
        if setsockopt(sock.fileno(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) != 0:
            raise OSError(errno, "setsockopt(SO_TIMESTAMPNS) failed")
        self._monotonic = monotonic

    cdef void _clock_base(self, double now):
        # (_base_t, _base_wall): a time on the caller's clock and CLOCK_REALTIME at that instant, so
        # a kernel stamp k is at _base_t + (k - _base_wall) / 1e9 on the caller's clock. Monotonic:
        # the realtime read bracketed by two monotonic ones at most CLOCKS_BRACKET_NS apart (else
        # the last good base stays; the first time, the last reading); otherwise `now` and the
        # realtime clock read now.
        cdef timespec a, w, b
        cdef int64_t an, bn
        cdef int k
        if not self._monotonic:
            clock_gettime(CLOCK_REALTIME, &w)
            self._base_t = now
            self._base_wall = <int64_t>w.tv_sec * 1000000000 + w.tv_nsec
            return
        for k in range(3):
            clock_gettime(CLOCK_MONOTONIC, &a)
            clock_gettime(CLOCK_REALTIME, &w)
            clock_gettime(CLOCK_MONOTONIC, &b)
            an = <int64_t>a.tv_sec * 1000000000 + a.tv_nsec
            bn = <int64_t>b.tv_sec * 1000000000 + b.tv_nsec
            if bn - an < CLOCKS_BRACKET_NS or (k == 2 and self._base_wall == 0):
                self._base_t = ((an + bn) // 2) * 1e-9
                self._base_wall = <int64_t>w.tv_sec * 1000000000 + w.tv_nsec
                return

    def pump(self, sock, double now):
        """Read from `sock` (recvmmsg, non-blocking) until a datagram needs the caller (its event),
        or the socket is drained or RX_BATCH were read since the call (EV_NONE). A datagram's
        arrival is its kernel timestamp (`enable_timestamps`) on the caller's clock (`now` is the
        caller's time for this call); without one, `now`.

        A datagram stamped after `now` (the caller read its clock, then lost the CPU; or it came in
        while the pump ran) is kept, and EV_AGAIN returned: the caller calls again, with a fresh
        `now`, on the same socket. That call handles the datagrams the last one read and left, and
        reads nothing more, so a caller that pumps on after EV_AGAIN ends. (If its `now` is still
        earlier, the datagram's arrival is `now`: an arrival is never later than the `now` it is
        handled at.)"""
        return self._pump(sock.fileno(), now)

    cdef int _pump(self, int fd, double now) except -1:
        # A recvmmsg that returned fewer datagrams than asked for found the socket drained: once
        # they are handled the call ends, without a read that would most likely find nothing (the
        # event loop is level-triggered: it calls again for what came since). One system call less
        # per wake-up. A call that starts with datagrams a former one read and left (after an event
        # or EV_AGAIN) handles only those: so a call reads the socket once at most, and a caller
        # pumping on after EV_AGAIN (with a `now` read after these datagrams came) ends.
        cdef int i, r, event, budget = RX_BATCH
        cdef bint drained = self._rx_pos < self._rx_count
        cdef mmsghdr* m
        cdef cmsghdr* c
        cdef timespec* stamp
        cdef int64_t k
        cdef double arrival
        cdef unsigned char* data
        self._clock_base(now)
        while budget > 0:
            if self._rx_pos >= self._rx_count:
                if drained:
                    break
                for i in range(RX_BATCH):
                    m = &self._rx_msgs[i]
                    memset(m, 0, sizeof(mmsghdr))
                    m.msg_hdr.msg_name = &self._rx_addr[i]
                    m.msg_hdr.msg_namelen = sizeof(sockaddr_storage)
                    m.msg_hdr.msg_iov = self._rx_iov[i]
                    m.msg_hdr.msg_iovlen = 2
                    m.msg_hdr.msg_control = self._rx_control[i]
                    m.msg_hdr.msg_controllen = RX_CONTROL
                r = recvmmsg(fd, self._rx_msgs, budget, MSG_DONTWAIT, NULL)
                if r <= 0:
                    if r < 0 and errno != EAGAIN and errno != EINTR:
                        budget -= 1  # e.g. an ICMP error reported on the socket: go on reading
                        continue
                    break
                self._rx_count = r
                self._rx_pos = 0
                drained = r < budget
                budget -= r
                for i in range(r):
                    k = 0
                    m = &self._rx_msgs[i]
                    c = CMSG_FIRSTHDR(&m.msg_hdr)
                    while c != NULL:
                        if c.cmsg_level == SOL_SOCKET and c.cmsg_type == SCM_TIMESTAMPNS:
                            stamp = <timespec*>CMSG_DATA(c)
                            k = <int64_t>stamp.tv_sec * 1000000000 + stamp.tv_nsec
                            break
                        c = CMSG_NXTHDR(&m.msg_hdr, c)
                    self._rx_stamp[i] = k
            while self._rx_pos < self._rx_count:
                i = self._rx_pos
                arrival = now
                if self._rx_stamp[i]:
                    arrival = self._base_t + (self._rx_stamp[i] - self._base_wall) * 1e-9
                    if arrival > now:
                        if not self._rx_kept:  # came in after `now`: left for a call with a fresh one
                            self._rx_kept = True
                            self._flush()
                            return EV_AGAIN
                        arrival = now
                self._rx_kept = False
                self._rx_pos += 1
                m = &self._rx_msgs[i]
                if m.msg_hdr.msg_flags & MSG_TRUNC:
                    self._counters[K_PACKETS_IN] += 1
                    self._counters[K_BYTES_IN] += m.msg_len
                    self._counters[K_MALFORMED] += 1
                    continue
                data = self._rx + i * RX_SIZE
                if m.msg_len > RX_SIZE:  # a long datagram: its head here, the rest in its overflow buffer
                    if self._rx_joined == NULL:
                        self._rx_joined = <unsigned char*>malloc(RX_MAX)
                        if self._rx_joined == NULL:
                            raise MemoryError()
                    memcpy(self._rx_joined, data, RX_SIZE)
                    memcpy(self._rx_joined + RX_SIZE, self._rx_over + i * (RX_MAX - RX_SIZE), m.msg_len - RX_SIZE)
                    data = self._rx_joined
                event = self._ingest(data, m.msg_len, &self._rx_addr[i], None, arrival, now)
                if event != EV_NONE:
                    self._flush()
                    return event
        self._flush()
        return EV_NONE

    # ----- the fan-out -------------------------------------------------------------------------

    def send_frame(self, list packets, double now, int64_t skip=0, bint flush=True):
        cdef Py_ssize_t i, k, n = len(packets)
        cdef slot_t tmp
        cdef slot_t* slots = <slot_t*>malloc((n if n else 1) * sizeof(slot_t))
        cdef bytes data
        if slots == NULL:
            raise MemoryError()
        refs = []
        try:
            for k in range(n):
                packet = packets[k]
                data = packet.data
                refs.append(data)
                slots[k].ext = packet.ext_seq
                slots[k].ts = packet.timestamp
                slots[k].data = <unsigned char*>PyBytes_AS_STRING(data)
                slots[k].length = PyBytes_GET_SIZE(data)
            if skip:
                for i in range(self._nplayers):
                    if self._players[i].mode == MODE_L3:
                        self._players[i].seq_delta += skip
            for k in range(n):  # packet by packet, each to every L3 player (as the RTC fan-out does)
                for i in range(self._nplayers):
                    if self._players[i].mode == MODE_L3:
                        if self._players[i].gate == GATE_CLOSED:  # its budget dropped this frame
                            self._drop(&self._players[i], slots[k].ext, slots[k].length)
                        else:
                            self._send(i, &slots[k], now)
            if flush:
                self._flush()  # the messages point into `refs`
            else:  # more frames to come: their sends and these go out together (GSO groups a player's)
                self._tx_refs.extend(refs)  # (kept until the flush)
                self._tx_slot = NULL  # (`slots` is freed: its addresses stand for no packet any more)
        finally:
            free(slots)

    def forward(self, double now, bint gated=False):
        cdef slot_t* s = self._find(self.last_ext)
        cdef Py_ssize_t i
        cdef player_t* p
        if s == NULL:
            return
        for i in range(self._nplayers):
            p = &self._players[i]
            if p.mode != MODE_RTC or (p.has_min and s.ext < p.min_ext):
                continue
            if p.gate == GATE_NONE:
                self._send(i, s, now)
            elif gated:
                if p.gate == GATE_CLOSED:
                    self._drop(p, s.ext, s.length)
                else:
                    self._send(i, s, now)
        self._flush()

    cdef int _send(self, Py_ssize_t i, slot_t* s, double now) except -1:
        cdef player_t* p = &self._players[i]
        cdef unsigned char* hdr
        cdef mmsghdr* m
        cdef iovec* iov
        cdef mark_t* mk
        if s.length < 12:
            return 0
        if self._tx_count == self._tx_cap:
            self._flush()
        hdr = self._tx_hdr + 12 * self._tx_count
        memcpy(hdr, s.data, 12)
        hdr[1] = (hdr[1] & 0x80) | (p.pt & 0x7F)
        rtp_write_u16(hdr + 2, <uint16_t>((s.ext - p.seq_delta) & 0xFFFF))
        rtp_write_u32(hdr + 4, <uint32_t>(s.ts + p.ts_delta))
        rtp_write_u32(hdr + 8, p.ssrc)
        if now != self._step_now:
            self._step_now = now
            self._step = <int64_t>floor(now / SEND_STEP)
        if p.count and self._step != p.step:
            mk = self._marks + i * SEND_MARKS
            if p.nmarks == SEND_MARKS:
                memmove(mk, mk + 1, (SEND_MARKS - 1) * sizeof(mark_t))
                p.nmarks -= 1
            mk[p.nmarks].at = p.last_at
            mk[p.nmarks].count = p.count
            mk[p.nmarks].nbytes = p.nbytes
            p.nmarks += 1
        p.step = self._step
        p.last_at = now
        p.count += 1
        p.nbytes += s.length
        p.octets += s.length - 12
        if p.count == 1 or s.ext > p.last_ext:  # the highest sent since the last take
            p.last_ext = s.ext
            p.last_ts = s.ts
            p.last_arrival = now
        self._dirty |= p.mode
        self._counters[K_PACKETS_OUT] += 1
        self._counters[K_BYTES_OUT] += s.length
        if self._fd < 0:
            out = PyBytes_FromStringAndSize(NULL, s.length)
            memcpy(PyBytes_AS_STRING(out), hdr, 12)
            memcpy(PyBytes_AS_STRING(out) + 12, s.data + 12, s.length - 12)
            self._out.append((0, out, self._addr_objs[i]))
            return 0
        iov = &self._tx_iov[2 * self._tx_count]
        iov[0].iov_base = hdr
        iov[0].iov_len = 12
        iov[1].iov_base = s.data + 12
        iov[1].iov_len = s.length - 12
        self._tx_player[self._tx_count] = i
        if s != self._tx_slot:
            self._tx_slot = s
            self._tx_packets += 1
        m = &self._tx_msgs[self._tx_count]
        m.msg_hdr.msg_name = &p.addr
        m.msg_hdr.msg_namelen = p.addrlen
        m.msg_hdr.msg_iov = iov
        m.msg_hdr.msg_iovlen = 2
        m.msg_hdr.msg_control = NULL
        m.msg_hdr.msg_controllen = 0
        m.msg_hdr.msg_flags = 0
        self._tx_count += 1
        return 0

    cdef void _flush(self) noexcept:
        self._flush_queue()
        if self._tx_refs:
            self._tx_refs.clear()  # (sent: the kernel has copied them)

    cdef void _flush_queue(self) noexcept:
        cdef int n = self._tx_count, groups
        cdef bint several = self._tx_packets > 1
        self._tx_count = 0
        self._tx_packets = 0
        self._tx_slot = NULL
        if n == 0:
            return
        if self._gso and several:
            groups = self._group(n)
            if groups < n:
                self._send_groups(n, groups)
                return
        self._send_plain(self._tx_msgs, n)

    cdef void _send_plain(self, mmsghdr* msgs, int n) noexcept:
        cdef int sent = 0, r
        cdef bint again = False
        while sent < n:
            r = sendmmsg(self._fd, msgs + sent, n - sent, MSG_DONTWAIT)
            if r > 0:
                sent += r
                again = False
            elif r < 0 and errno == EINTR:
                continue
            elif r < 0 and (errno == EAGAIN):
                self._counters[K_UNSENT] += n - sent  # the send buffer is full: UDP drops
                break
            elif not again:
                again = True  # an earlier datagram's error pending on the socket (IP_RECVERR): once more
            else:
                self._counters[K_UNSENT] += 1  # this one failed (e.g. an unreachable address): skip it
                sent += 1
                again = False

    cdef int _group(self, int n) noexcept:
        """Groups the n queued messages for UDP GSO: a player's messages in queue order, while they
        have one size (a shorter one ends a group), up to GSO_SEGMENTS and GSO_BYTES. Lays each group
        out as one message in _g_msgs (with its segment size when it has more than one) and returns
        how many there are; n when no two messages could go together (then nothing is laid out)."""
        cdef int j, g, ng = 0, length, count
        cdef player_t* p
        cdef mmsghdr* m
        cdef mmsghdr* first
        cdef cmsghdr* c
        cdef uint16_t size
        for j in range(n):
            p = &self._players[self._tx_player[j]]
            length = 12 + <int>self._tx_iov[2 * j + 1].iov_len
            g = p.gso_group - 1
            if g >= 0 and not self._g_closed[g] and length <= self._g_size[g] \
                    and self._g_count[g] < GSO_SEGMENTS and self._g_bytes[g] + length <= GSO_BYTES:
                self._g_count[g] += 1
                self._g_bytes[g] += length
                self._g_closed[g] = length < self._g_size[g]
            else:
                g = ng
                ng += 1
                self._g_first[g] = j
                self._g_count[g] = 1
                self._g_size[g] = length
                self._g_bytes[g] = length
                self._g_closed[g] = 0
                p.gso_group = g + 1
            self._tx_group[j] = g
        for j in range(n):
            self._players[self._tx_player[j]].gso_group = 0
        if ng == n:
            return n
        count = 0
        for g in range(ng):
            self._g_pos[g] = count
            count += 2 * self._g_count[g]
        for j in range(n):  # each group's iovec pairs together, in queue order
            g = self._tx_group[j]
            self._g_iov[self._g_pos[g]] = self._tx_iov[2 * j]
            self._g_iov[self._g_pos[g] + 1] = self._tx_iov[2 * j + 1]
            self._g_pos[g] += 2
        for g in range(ng):
            m = &self._g_msgs[g]
            first = &self._tx_msgs[self._g_first[g]]
            count = self._g_count[g]
            m.msg_hdr.msg_name = first.msg_hdr.msg_name
            m.msg_hdr.msg_namelen = first.msg_hdr.msg_namelen
            m.msg_hdr.msg_iov = &self._g_iov[self._g_pos[g] - 2 * count]
            m.msg_hdr.msg_iovlen = 2 * count
            m.msg_hdr.msg_flags = 0
            if count > 1:
                m.msg_hdr.msg_control = self._g_control + g * GSO_CONTROL
                m.msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t))
                c = CMSG_FIRSTHDR(&m.msg_hdr)
                c.cmsg_level = SOL_UDP
                c.cmsg_type = UDP_SEGMENT
                c.cmsg_len = CMSG_LEN(sizeof(uint16_t))
                size = <uint16_t>self._g_size[g]
                memcpy(CMSG_DATA(c), &size, sizeof(uint16_t))
            else:
                m.msg_hdr.msg_control = NULL
                m.msg_hdr.msg_controllen = 0
        return ng

    cdef void _send_groups(self, int n, int ng) noexcept:
        cdef int sent = 0, r, j, k, g
        cdef bint again = False
        while sent < ng:
            r = sendmmsg(self._fd, self._g_msgs + sent, ng - sent, MSG_DONTWAIT)
            if r > 0:
                for g in range(sent, sent + r):
                    self.gso_sends += self._g_count[g] > 1
                sent += r
                again = False
            elif r < 0 and errno == EINTR:
                continue
            elif r < 0 and errno == EAGAIN:
                for g in range(sent, ng):  # the send buffer is full: UDP drops
                    self._counters[K_UNSENT] += self._g_count[g]
                return
            elif not again:
                # an earlier datagram's error pending on the socket (IP_RECVERR: an ICMP report; it
                # may read ENOPROTOOPT, which is no verdict on GSO): once more
                again = True
            elif self._g_count[sent] > 1 and (errno == EIO or errno == EINVAL or errno == ENOPROTOOPT):
                # the kernel, or the route's device, refuses GSO: no more of it on this track; the
                # groups not sent go datagram by datagram (their messages, in queue order)
                self._gso = False
                k = 0
                for j in range(n):
                    if self._tx_group[j] >= sent:
                        self._tx_msgs[k] = self._tx_msgs[j]
                        k += 1
                self._send_plain(self._tx_msgs, k)
                return
            else:
                self._counters[K_UNSENT] += self._g_count[sent]  # (e.g. an unreachable address): skip it
                sent += 1
                again = False


# ----- the event loop's reader ---------------------------------------------------------------------

cdef class Reader:
    """A publisher track socket's callback for the event loop (`loop.add_reader(fd, reader)`): it
    pumps the socket with the clock's time and calls `slow(event, now)` only for a datagram that
    needs Python (the caller then pumps on until EV_NONE). A wake-up whose datagrams the fast path
    handled alone runs no Python code."""
    cdef readonly FastTrack fast
    cdef readonly object sock
    cdef object _clock
    cdef object _slow
    cdef int _fd

    def __init__(self, FastTrack fast, sock, clock, slow):
        self.fast = fast
        self.sock = sock
        self._fd = sock.fileno()
        self._clock = clock
        self._slow = slow

    def __call__(self):
        cdef double now = self._clock()
        cdef int event = self.fast._pump(self._fd, now)
        while event == EV_AGAIN:  # a datagram came in after `now`: again, with the time read afresh
            now = self._clock()
            event = self.fast._pump(self._fd, now)
        if event != EV_NONE:
            self._slow(event, now)
