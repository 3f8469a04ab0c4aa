"""Reachability (sfu/media/reachability.py's rules): runs of ICMP reports per destination, on a
virtual clock; and parse_error on what a real error queue holds."""

import errno
import select
import socket
import struct

import pytest

from sfu.media.reachability import IP_RECVERR, IPV6_RECVERR, Reachability, Unreachable, destination, parse_error

A, B = ("127.0.0.1", 5004), ("127.0.0.1", 5006)


def test_a_run_lasts_from_its_first_report_to_its_last_while_they_come_within_the_gap():
    r = Reachability(gap=3.0)
    assert r.unreachable_for(A, 0.0) == 0.0  # never reported
    r.report(A, 10.0)
    assert r.unreachable_for(A, 10.0) == 0.0
    r.report(A, 12.5)
    assert r.unreachable_for(A, 12.5) == 2.5
    assert r.unreachable_for(A, 15.0) == 2.5  # no report since: the run does not grow by itself
    r.report(A, 15.4)
    assert r.unreachable_for(A, 15.4) == pytest.approx(5.4)
    assert r.unreachable_for(B, 15.4) == 0.0  # another destination
    assert r.counters == {"reports": 3, "runs": 1}


def test_a_pause_longer_than_the_gap_ends_the_run_and_the_next_report_starts_another():
    r = Reachability(gap=3.0)
    r.report(A, 10.0)
    r.report(A, 12.0)
    assert r.unreachable_for(A, 15.0) == 2.0
    assert r.unreachable_for(A, 15.01) == 0.0  # nothing for longer than the gap: it listens again
    r.report(A, 15.5)  # the pause was 3.5 s: a new run
    r.report(A, 16.0)
    assert r.unreachable_for(A, 16.0) == 0.5
    assert r.counters["runs"] == 2


def test_one_address_in_two_spellings_is_one_destination():
    r = Reachability()
    r.report(("0:0:0:0:0:0:0:1", 5004), 1.0)
    r.report(("::1", 5004), 2.0)
    assert r.unreachable_for(("::1", 5004), 2.0) == 1.0
    assert r.unreachable_for(("::1", 5005), 2.0) == 0.0


def test_ended_runs_are_forgotten_and_the_entries_are_bounded():
    r = Reachability(gap=3.0, max_entries=3)
    for port in range(10):
        r.report(("127.0.0.1", port), float(port))
    r.report(("127.0.0.1", 9), 9.5)
    assert len(r) == 3  # the newest three
    assert r.unreachable_for(("127.0.0.1", 9), 9.5) == 0.5
    assert r.unreachable_for(("127.0.0.1", 0), 9.5) == 0.0
    r.expire(11.5)  # port 7's last report was 4.5 s ago, 8's 3.5 s, 9's 2 s
    assert len(r) == 1
    assert r.unreachable_for(("127.0.0.1", 9), 11.5) == 0.5


def test_every_destination_whose_run_still_runs_by_its_one_spelling():
    r = Reachability(gap=3.0)
    assert r.unreachable(0.0) == {}  # nothing reported
    r.report(("0:0:0:0:0:0:0:1", 5004), 1.0)
    r.report(A, 2.0)
    r.report(("::1", 5004), 3.0)
    r.report(A, 4.5)
    assert r.unreachable(5.0) == {("::1", 5004): 2.0, A: 2.5}
    assert r.unreachable(6.1) == {A: 2.5}  # the other's last report was 3.1 s ago: it listens again
    assert all(r.unreachable_for(d, 6.1) == t for d, t in r.unreachable(6.1).items())
    assert destination(("0:0:0:0:0:0:0:1", 5004)) == ("::1", 5004) == destination(("::1", 5004))
    assert r.unreachable(7.6) == {}


def test_a_run_reported_again_moves_behind_the_others_for_expiry():
    r = Reachability(gap=3.0)
    r.report(A, 0.0)
    r.report(B, 1.0)
    r.report(A, 2.0)  # A is now the most recent
    r.expire(4.5)  # B's last report was 3.5 s ago
    assert len(r) == 1 and r.unreachable_for(A, 4.5) == 2.0


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Reachability(gap=0)
    with pytest.raises(ValueError):
        Reachability(max_entries=0)


def _err(errno_: int, origin: int, icmp_type: int = 3, icmp_code: int = 3) -> bytes:
    return struct.pack("=IBBBBII", errno_, origin, icmp_type, icmp_code, 0, 0, 0) + bytes(16)


def test_parse_error_takes_icmp_errors_only():
    icmp = [(socket.IPPROTO_IP, IP_RECVERR, _err(errno.ECONNREFUSED, 2))]
    assert parse_error(icmp, ("127.0.0.1", 5004)) == Unreachable(("127.0.0.1", 5004), errno.ECONNREFUSED, 3, 3)
    icmp6 = [(socket.IPPROTO_IPV6, IPV6_RECVERR, _err(errno.ECONNREFUSED, 3, 1, 4))]
    assert parse_error(icmp6, ("::1", 5004, 0, 0)) == Unreachable(("::1", 5004), errno.ECONNREFUSED, 1, 4)
    local = [(socket.IPPROTO_IP, IP_RECVERR, _err(errno.EMSGSIZE, 1))]  # SO_EE_ORIGIN_LOCAL
    assert parse_error(local, ("127.0.0.1", 5004)) is None
    assert parse_error([(socket.IPPROTO_IP, IP_RECVERR, b"\x00" * 8)], ("127.0.0.1", 5004)) is None  # short
    assert parse_error([(socket.SOL_SOCKET, 29, b"\x00" * 16)], ("127.0.0.1", 5004)) is None  # not an error
    assert parse_error([], ("127.0.0.1", 5004)) is None


def test_parse_error_reads_what_a_loopback_port_unreachable_leaves_on_the_error_queue():
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.bind(("127.0.0.1", 0))
        sender.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        sender.setblocking(False)
        gone.bind(("127.0.0.1", 0))
        dest = gone.getsockname()
        gone.close()  # nobody listens there now
        sender.sendto(b"x" * 100, dest)
        poll = select.poll()
        poll.register(sender, select.POLLERR)  # the error queue holds something
        assert poll.poll(2000), "no ICMP error came back"
        _, ancillary, _, name = sender.recvmsg(1, 512, socket.MSG_ERRQUEUE)
        assert parse_error(ancillary, name) == Unreachable(dest, errno.ECONNREFUSED, 3, 3)
    finally:
        sender.close()
