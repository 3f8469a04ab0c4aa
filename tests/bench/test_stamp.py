"""The load tools' stamp: rtp_gen writes each packet's send time and its frame's first send time;
rtp_sink --hold-us measures latency past a frame's release (its first send + the hold), counting a
packet that came before it as early. On loopback, with packets the test writes itself."""

from __future__ import annotations

import json
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from harness import build_tools  # noqa: E402

MAGIC = 0x53465542
STAMP_OFF = 16


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    return build_tools(tmp_path_factory.mktemp("tools"), ("rtp_gen", "rtp_sink"))


def udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def test_rtp_gen_stamps_each_packet_with_its_frames_first_send(tools):
    rx, tx = udp(), udp()
    try:
        count, per_frame = 20, 4  # 5 frames; batches of 3 packets: frames straddle batches
        out = subprocess.run([tools["rtp_gen"], "--fd", str(tx.fileno()), "--dest", "127.0.0.1:%d" % rx.getsockname()[1],
                              "--rate", "2000", "--count", str(count), "--batch", "3", "--run", "7",
                              "--frame-packets", str(per_frame), "--max-seconds", "5"],
                             pass_fds=[tx.fileno()], capture_output=True, text=True, timeout=15, check=True)
        assert json.loads(out.stdout)["sent"] == count
        rx.settimeout(5)
        stamps = []
        for _ in range(count):  # all queued on the socket already: the generator has exited
            p = rx.recv(2048)
            magic, run, idx, sent, first = struct.unpack_from("<IIIQQ", p, 12 + STAMP_OFF)
            assert (magic, run) == (MAGIC, 7)
            stamps.append((idx, sent, first, p[1] >> 7, struct.unpack_from("!I", p, 4)[0]))
    finally:
        rx.close()
        tx.close()
    assert [s[0] for s in stamps] == list(range(count))
    for idx, sent, first, marker, ts in stamps:
        head = stamps[idx - idx % per_frame]
        assert first == head[1]  # the send time of its frame's first packet
        assert ts == head[4] and marker == (idx % per_frame == per_frame - 1)
        assert first <= sent
    assert len({s[2] for s in stamps}) == count // per_frame  # one per frame, distinct


def packet(idx: int, run: int, sent_ns: int, first_ns: int) -> bytes:
    head = struct.pack("!BBHII", 0x80, 96, idx, 1000, 0x1234)
    return head + bytes(STAMP_OFF) + struct.pack("<IIIQQ", MAGIC, run, idx, sent_ns, first_ns) + bytes(40)


def sink(tools, sock, count: int, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([tools["rtp_sink"], "--fds", str(sock.fileno()), "--run", "9", "--count", str(count),
                             "--drain-ms", "2000", "--max-drain-s", "5", "--deadline-s", "20", *extra],
                            pass_fds=[sock.fileno()], stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    assert ready and proc.stdout.readline().strip() == "READY"
    return proc


def finish(proc: subprocess.Popen) -> dict:
    proc.send_signal(signal.SIGUSR1)  # every packet is queued: it stops once it has read them all
    out, _ = proc.communicate(timeout=20)
    return json.loads(out.strip().splitlines()[-1])


def measured(tools, count: int, extra: tuple[str, ...], datagrams) -> dict:
    """The sink's result for the `count` datagrams `datagrams(now)` sent to it once it is ready (`now`:
    CLOCK_MONOTONIC ns, the sink's clock, read just before)."""
    rx, tx = udp(), udp()
    try:
        proc = sink(tools, rx, count, *extra)
        for d in datagrams(time.monotonic_ns()):
            tx.sendto(d, rx.getsockname())
        return finish(proc)
    finally:
        rx.close()
        tx.close()


def test_rtp_sink_measures_past_the_release_and_counts_early_packets(tools):
    # the sink reads at once, but a busy machine may make it later by a few ms: bounds leave 30 ms
    r = measured(tools, 3, ("--hold-us", "100000", "--late-us", "50000"), lambda now: [
        # its frame's first packet sent 105 ms ago: released 5 ms ago; sent itself 101 ms ago
        packet(0, 9, now - 101_000_000, now - 105_000_000),
        # its frame's first packet sent 20 ms ago: arrives ~80 ms before the release
        packet(1, 9, now - 20_000_000, now - 20_000_000),
        # released 60 ms ago: late past a 50 ms bound
        packet(2, 9, now - 159_000_000, now - 160_000_000)])
    assert r["received"] == 3 and r["hold_us"] == 100000
    assert r["early"] == 1
    assert 50_000 < r["early_max_us"] <= 80_000  # 80 ms early, less the time to the sink's read
    assert r["late"] == 1  # only the one 60 ms past its release
    # past release: 0 (the early one, clamped), ~5 ms, ~60 ms; total (receipt - send): ~20, ~101, ~159 ms
    assert r["min_us"] >= 5_000
    assert 5_000 <= r["p50_us"] < 35_000
    assert 60_000 <= r["max_us"] < 90_000
    # (past 65.5 ms the histogram's buckets are 64 us wide: a figure is its bucket's floor)
    assert 101_000 - 64 <= r["total_p50_us"] < 131_000
    assert 159_000 - 64 <= r["total_max_us"] < 189_000


def test_rtp_sink_without_a_hold_measures_receipt_minus_send(tools):
    r = measured(tools, 2, ("--late-us", "50000"), lambda now: [packet(0, 9, now - 3_000_000, now - 150_000_000),
                                                              packet(1, 9, now - 70_000_000, now - 150_000_000)])
    assert r["received"] == 2 and r["hold_us"] == 0 and r["early"] == 0
    # the frame's first send plays no part
    assert 3_000 <= r["min_us"] < 33_000 and 70_000 - 64 <= r["max_us"] < 100_000
    assert r["late"] == 1  # past 50 ms: only the second
    assert (r["total_p50_us"], r["total_max_us"]) == (r["p50_us"], r["max_us"])


def test_rtp_sink_measures_to_the_kernel_timestamp_not_to_its_own_read(tools):
    rx, tx = udp(), udp()
    try:
        proc = sink(tools, rx, 2, "--late-us", "50000")
        proc.send_signal(signal.SIGSTOP)  # the sink off its core, as on a busy load core
        try:
            for i in range(2):
                now = time.monotonic_ns()
                tx.sendto(packet(i, 9, now - 2_000_000, now - 2_000_000), rx.getsockname())
            time.sleep(0.2)  # (not a wait for anything: how long the sink stays away is the scenario)
        finally:
            proc.send_signal(signal.SIGCONT)
        r = finish(proc)
    finally:
        rx.close()
        tx.close()
    assert r["received"] == 2 and r["unstamped"] == 0
    # each reached its socket ~2 ms after its send: the 200 ms the sink was away are not the target's
    assert 2_000 <= r["min_us"] and r["max_us"] < 30_000 and r["late"] == 0
    assert r["sink_wait_max_us"] >= 190_000  # ... and they are reported apart
