"""What the benches that time the Router itself, in their own process, share (reporting.py,
joins.py, nacks.py): a Router with one VP8 publisher track whose fast path sends on a real loopback
socket, a receiver report to mark a player's path measured, and the node's code taken from another
checkout (`--sfu-root`: two commits side by side in one session).

The node's modules are imported inside the functions, so that `import_node_from` can pick the
checkout first.
"""

from __future__ import annotations

import contextlib
import importlib
import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

PUB = ("127.0.0.2", 5000)  # the publisher's address (the first to send binds the track)


def rr(sender_ssrc: int) -> bytes:
    """An RTCP receiver report with no report block: enough to say the player reports."""
    return struct.pack("!BBHI", 0x80, 201, 1, sender_ssrc)


@contextlib.contextmanager
def vp8_router(new_ssrc=None) -> Iterator[tuple]:
    """(router, track id, the sink's address, the sending socket): a Router whose L3 hold is fixed
    (every frame released 100 ms after its first packet, as in bench/fanout.py), with one VP8
    publisher track whose fast path sends on a real loopback socket; the players are meant to be
    sent to the sink, one socket that nobody reads (the kernel drops what overflows it, after the
    send). `new_ssrc`: the Router's, default 0x10000 and up."""
    from sfu.media.router import Router, TrackSpec
    from sfu.media.track import MediaSettings

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sink.bind(("127.0.0.1", 0))
        router = Router(MediaSettings(l3_min_delay=0.1, l3_max_delay=0.1),
                        new_ssrc=new_ssrc or iter(range(0x10000, 0x7FFFFFFF)).__next__)
        (tid,) = router.add_publisher(1, "s", (TrackSpec("video", "VP8", 96),))
        router.track(tid).fast.output = out
        yield router, tid, sink.getsockname(), out
    finally:
        sink.close()
        out.close()


def import_node_from(root: Path, error) -> None:
    """The node's code (the `sfu` package) from the checkout at `root` from now on, in this process.
    What was imported of it before (bench/streams.py imports this checkout's) is forgotten.
    `error(message)` (argparse's) for a directory that is no checkout; exits when the code would not
    come from it."""
    root = root.resolve()
    if not (root / "sfu" / "media" / "router.py").exists():
        error(f"--sfu-root: no sfu checkout at {root}")
    importlib.import_module("streams")  # (it puts this checkout on sys.path and imports its sfu)
    for name in [m for m in sys.modules if m == "sfu" or m.startswith("sfu.")]:
        del sys.modules[name]
    if str(root) in sys.path:
        sys.path.remove(str(root))
    sys.path.insert(0, str(root))
    router = importlib.import_module("sfu.media.router")
    if not router.__file__.startswith(str(root) + "/"):
        raise SystemExit(f"the node code came from {router.__file__}, not {root}")
