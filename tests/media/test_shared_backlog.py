"""What the node sends from Python (RTCP, the keyframe cache's GOP to a new player,
retransmissions) goes out on the shared socket at once, or, when its send buffer is full, waits in
the endpoint's backlog and goes in order when the buffer takes it again; beyond the backlog's bound
it is counted unsent (sfu/media/endpoint.py).

A full send buffer needs a link slower than the node: loopback frees the buffer at once. So each
case runs in a network namespace of its own (`unshare -n`, as root), loopback behind a token-bucket
qdisc (tests/media/netns_backlog.py; `.ci/run` installs iproute2 for `ip` and `tc`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COUNT = 20_000  # one burst: ~24 MB, three times what the socket's 4 MiB (doubled) buffer holds


def burst(backlog: int) -> dict:
    for tool in ("unshare", "ip", "tc"):
        assert shutil.which(tool), f"{tool} is needed for this test (.ci/run installs it)"
    assert os.geteuid() == 0, "a network namespace of the test's own needs root"
    run = subprocess.run(["unshare", "-n", sys.executable, "-m", "tests.media.netns_backlog", str(COUNT), str(backlog)],
                         cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def arrived_as_sent(out: dict, sent: list[int]) -> None:
    """The receiver got `sent` in order, but for what the kernel dropped on loopback after the node
    had handed it over, and counted (a full receive backlog when the machine is busy: the node
    cannot lose those, nor see them)."""
    received = out["received"]
    assert received == sorted(set(received)) and set(received) <= set(sent)  # in order, none twice, no stranger
    assert len(sent) - len(received) == out["kernel_dropped"] <= len(sent) // 100


def test_a_burst_that_fills_the_send_buffer_waits_and_arrives_whole_and_in_order() -> None:
    out = burst(65_536)
    assert out["backlogged"] > COUNT // 4  # most of the burst waited: the buffer was full
    assert out["unsent"] == out["unsent_after"] == 0
    # all of it, in order, then a datagram sent once the backlog was empty, which went at once
    arrived_as_sent(out, list(range(COUNT + 1)))
    assert out["backlogged_after"] == out["backlogged"]


def test_past_the_backlog_s_bound_sends_are_counted_unsent_and_the_rest_keep_their_order() -> None:
    out = burst(100)
    assert out["backlogged"] == 100
    assert 0 < out["unsent"] == out["unsent_after"] < COUNT
    # what went at once and what waited: the head of the burst, in order; then the one sent after
    arrived_as_sent(out, list(range(COUNT - out["unsent"])) + [COUNT])
