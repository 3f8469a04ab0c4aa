"""Which of the node's destinations say they are not there: ICMP errors for the datagrams it sent.

A player that plays over the HTTP API (ffmpeg, GStreamer reading an SDP) sends the node nothing at
all, so nothing the node receives tells it the player is gone. What is left is what the player's
host says when a datagram reaches a port nobody listens on any more: ICMP port unreachable (or
its network: host or network unreachable). The shared media socket asks the kernel for these
errors (IP_RECVERR, sfu/media/endpoint.py) and hands each one here, with the destination of the
datagram it is about. Sans-IO: no clock, no socket.

Rules:

1. `report(addr, now)`: a datagram the node sent to `addr` came back unreachable. A destination's
   *run* starts at its first report; each report within `gap` seconds of the one before continues
   it; a longer pause (the node sent it nothing, or it listened again) starts a new run.
   Hosts rate-limit ICMP (Linux: about one a second to each peer, 1000 a second in all), so
   `gap` must span a few of those intervals; 3 s does.
2. `unreachable_for(addr, now)`: how long the destination's run has lasted, from its first report
   to its last (what the reports bear out: a destination that listens again sends none, and its
   run must not grow by itself), if it still runs (its last report within `gap` of `now`); 0.0
   otherwise, and for a destination never reported. `unreachable(now)`: the same for every
   destination whose run still runs, by its one spelling (`destination(addr)`), so that a caller
   with many destinations asks about the few reported, not each of its own (nothing reported is
   the usual case, and asking costs nothing then).
3. What is remembered is bounded: `expire(now)` forgets the runs that ended, and at most
   `max_entries` destinations are kept (a new one pushes out the one reported longest ago), since
   the errors name whatever destination an ICMP message says.
4. `parse_error(ancillary, name)` reads one message of the socket's error queue (what
   `socket.recvmsg(..., MSG_ERRQUEUE)` returns): the destination and the error, or None for what
   is not an ICMP error (a local error, such as a datagram too long for the path MTU).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections import OrderedDict
from dataclasses import dataclass

GAP = 3.0  # seconds: reports further apart than this are two runs (rule 1)
MAX_ENTRIES = 4096

IP_RECVERR = 11  # <linux/in.h>: the socket option, and the control message's type
IPV6_RECVERR = 25  # <linux/in6.h>
SO_EE_ORIGIN_ICMP = 2  # <linux/errqueue.h>: the error came in an ICMP (ICMPv6) message
SO_EE_ORIGIN_ICMP6 = 3
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err: errno, origin, type, code, pad, info, data


@dataclass(frozen=True, slots=True)
class Unreachable:
    """One ICMP error for a datagram the node sent (rule 4)."""

    addr: tuple  # the datagram's destination, as the socket module spells addresses
    errno: int  # what the kernel made of it: ECONNREFUSED for port unreachable, EHOSTUNREACH, ...
    icmp_type: int
    icmp_code: int


def parse_error(ancillary: list[tuple[int, int, bytes]], name) -> Unreachable | None:
    """Rule 4: the error queue's message (its control messages and its `msg_name`, the destination
    of the datagram the error is about) as an Unreachable, or None when it is no ICMP error."""
    for level, kind, data in ancillary:
        if (level, kind) not in ((socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR)):
            continue
        if len(data) < _EXTENDED_ERR.size:
            return None
        err, origin, icmp_type, icmp_code, _, _, _ = _EXTENDED_ERR.unpack_from(data)
        if origin not in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6) or not isinstance(name, tuple):
            return None
        return Unreachable(name[:2], err, icmp_type, icmp_code)
    return None


def destination(addr: tuple) -> tuple:
    """A destination as one spelling: (the address compressed, the port)."""
    try:
        return ipaddress.ip_address(addr[0]).compressed, addr[1]
    except ValueError:
        return tuple(addr[:2])


class Reachability:
    """Runs of unreachable reports per destination (module rules)."""

    def __init__(self, gap: float = GAP, max_entries: int = MAX_ENTRIES) -> None:
        if gap <= 0 or max_entries < 1:
            raise ValueError("gap must be > 0 and max_entries >= 1")
        self.gap = gap
        self.max_entries = max_entries
        self._runs: OrderedDict[tuple, list[float]] = OrderedDict()  # addr -> [run start, last report], oldest report first
        self.counters = {"reports": 0, "runs": 0}

    def __len__(self) -> int:
        return len(self._runs)

    def report(self, addr: tuple, now: float) -> None:
        """Rule 1."""
        self.counters["reports"] += 1
        addr = destination(addr)
        run = self._runs.pop(addr, None)
        if run is None or now - run[1] > self.gap:
            run = [now, now]
            self.counters["runs"] += 1
        else:
            run[1] = max(run[1], now)
        self._runs[addr] = run  # the most recently reported last
        if len(self._runs) > self.max_entries:
            self._runs.popitem(last=False)

    def unreachable_for(self, addr: tuple, now: float) -> float:
        """Rule 2."""
        if not self._runs:
            return 0.0
        run = self._runs.get(destination(addr))
        if run is None or now - run[1] > self.gap:
            return 0.0
        return run[1] - run[0]

    def unreachable(self, now: float) -> dict[tuple, float]:
        """Rule 2 for every destination whose run still runs: how long it has lasted, by destination."""
        return {addr: run[1] - run[0] for addr, run in self._runs.items() if now - run[1] <= self.gap}

    def expire(self, now: float) -> None:
        """Rule 3: forget the runs that ended (their last report more than `gap` ago)."""
        runs = self._runs
        while runs:
            addr, run = next(iter(runs.items()))
            if now - run[1] <= self.gap:
                break
            del runs[addr]
