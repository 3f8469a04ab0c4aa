"""The shared socket's backlog under a full send buffer, in a network namespace of this process's
own: tests/media/test_shared_backlog.py starts it with `unshare -n` and reads one JSON line.

On plain loopback a UDP send never finds the socket's buffer full: the kernel hands each datagram
to its receiver at once and frees the buffer. Here loopback sits behind a token-bucket qdisc that
passes RATE and holds the rest, as a real network interface's queue does, so a burst from the
node's Python side fills the buffer and has to wait in the endpoint's backlog.

    python -m tests.media.netns_backlog COUNT BACKLOG

sends COUNT datagrams (each numbered in its first 4 bytes) in one burst through a real
MediaEndpoint on uvloop, with the endpoint's BACKLOG set to BACKLOG, and prints what a receiver
got, in the order it got it, with the endpoint's counts.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys

from pathlib import Path

import uvloop

from sfu.media import endpoint as endpoint_module
from sfu.media.endpoint import MediaEndpoint
from sfu.media.router import SHARED, Router

RATE = "200mbit"  # what the qdisc passes: ~20k datagrams/s of this size
SIZE = 1200
WAIT = 60.0  # seconds, at most, for the burst to drain
SO_RCVBUFFORCE = 33  # <asm-generic/socket.h> (not in Python's socket module): above rmem_max, as root


def kernel_dropped() -> int:
    """Datagrams the kernel dropped on this namespace's loopback after the node had sent them: its
    receive backlog full (the device's rx_dropped: a slow softirq on a busy machine), or the qdisc
    (its drops)."""
    rx = int(Path("/sys/class/net/lo/statistics/rx_dropped").read_text())
    qdisc = subprocess.run(["tc", "-s", "qdisc", "show", "dev", "lo"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"dropped (\d+)", qdisc)
    return rx + (int(match.group(1)) if match else 0)


async def run(count: int) -> dict:
    loop = asyncio.get_running_loop()
    endpoint = MediaEndpoint(Router(), "127.0.0.1", (41000, 41009))
    await endpoint.start()
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 256 << 20)  # the whole burst (root, as unshare needs)
    rx.setblocking(False)
    got: list[int] = []
    expected = [count]  # what can arrive: the burst less what the endpoint counted unsent
    done = asyncio.Event()

    def on_read() -> None:
        while True:
            try:
                data = rx.recv(4096)
            except BlockingIOError:
                break
            got.append(int.from_bytes(data[:4], "big"))
        if len(got) >= expected[0]:
            done.set()

    loop.add_reader(rx.fileno(), on_read)
    dest = rx.getsockname()
    pad = bytes(SIZE - 4)
    endpoint.send([(SHARED, i.to_bytes(4, "big") + pad, dest) for i in range(count)])
    unsent, backlogged = endpoint.unsent, endpoint.counters["backlogged"]
    expected[0] = count - unsent
    on_read()
    await asyncio.wait_for(done.wait(), WAIT)
    endpoint.send([(SHARED, count.to_bytes(4, "big") + pad, dest)])  # the backlog is empty: this goes at once
    after = endpoint.counters["backlogged"]
    expected[0] += 1
    done.clear()
    on_read()
    await asyncio.wait_for(done.wait(), WAIT)
    loop.remove_reader(rx.fileno())
    rx.close()
    await endpoint.stop()
    return {"received": got, "unsent": unsent, "unsent_after": endpoint.unsent, "backlogged": backlogged,
            "backlogged_after": after, "kernel_dropped": kernel_dropped()}


def main() -> None:
    count, backlog = int(sys.argv[1]), int(sys.argv[2])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", RATE, "burst", "64kb",
                    "limit", "256mb"], check=True)
    endpoint_module.BACKLOG = backlog
    print(json.dumps(uvloop.run(run(count))))


if __name__ == "__main__":
    main()
