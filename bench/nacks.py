"""Players that ask for repairs: what one player's NACK costs the node as the players grow.

Every player on a lossy path sends NACKs (the SDK's players do, and most WebRTC-era receivers), a
few a second each. A NACK concerns one player: its cost should not grow with the others; if it
does, a thousand players that each NACK a few times a second cost the node the square of that.

In this process, on a virtual clock, the Router alone (as bench/joins.py): one VP8 track, 30
frames/s of 3 packets of ~1.1 kB, N RTC players started before the measurement, the fast path
sans-IO (what it sends is read back, not put on a socket: the NACKs name what the player was
really sent). At each frame one player, drawn with a fixed seed, NACKs the first packet it was sent
of the frame before. Timed: the process time of the Router's call that takes the NACK (and
answers it with a retransmission). Figures: us per NACK, as a ratio to the smallest N's in the same
run, and the retransmissions sent (every NACK is answered: its packet is in the history).

    python bench/nacks.py [--players 100,1000,3000] [--seconds 5] [--sfu-root DIR] [--json FILE]
    sfu bench nacks ...   (the same)
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import struct
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import print_table  # noqa: E402
from inproc import import_node_from  # noqa: E402


def run(n: int, seconds: float) -> dict:
    from inproc import PUB
    from streams import build

    from sfu.media.router import SHARED, Router, TrackSpec
    from sfu.rtp.rtcp import Nack, serialize

    media = [(at, data) for at, _, data in build(1, seconds + 1.0, 3, 1100)]
    ssrcs = iter(range(0x10000, 0x7FFFFFFF))
    router = Router(new_ssrc=ssrcs.__next__)
    (tid,) = router.add_publisher(1, "s", (TrackSpec("video", "VP8", 96),))
    fast = router.track(tid).fast
    fast.output = None  # sans-IO: take_out() gives what it sent
    addrs = [("127.0.0.1", 20000 + i) for i in range(n)]
    by_addr: dict[tuple, int] = {}
    for i, addr in enumerate(addrs):
        by_addr[addr] = router.add_player(1, "s", f"p{i}", {"video": addr})[0]["video"]
    rnd = random.Random(1)
    clock = time.process_time
    cpu, nacks, last_ts = 0.0, 0, None
    first_seq: dict[tuple, int] = {}  # the frame before's first packet, per player: what a NACK names
    current: dict[tuple, int] = {}
    retransmissions = 0
    for at, data in media:
        while (due := router.next_timer()) is not None and due <= at:
            router.on_timer(due)
        ts = struct.unpack_from("!I", data, 4)[0]
        if ts != last_ts:
            if last_ts is not None and at >= 1.0 and first_seq:
                addr = rnd.choice(addrs)
                seq = first_seq.get(addr)
                if seq is not None:
                    ssrc = by_addr[addr]
                    t0 = clock()
                    out = router.on_datagram(SHARED, serialize([Nack(ssrc, ssrc, [seq])]), addr, at)
                    cpu += clock() - t0
                    nacks += 1
                    retransmissions += sum(1 for _, _, a in out if a == addr)
            first_seq, current, last_ts = current, {}, ts
        out = router.on_datagram(tid, data, PUB, at) + fast.take_out()
        for _key, d, addr in out:
            if addr not in current and len(d) > 12:
                current[addr] = struct.unpack_from("!H", d, 2)[0]
    return {"n": n, "nacks": nacks, "retransmissions": retransmissions, "us_per_nack": cpu / max(nacks, 1) * 1e6}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sfu bench nacks", description=__doc__.split("\n\n")[0])
    p.add_argument("--players", default="100,1000,3000", help="player counts N (default 100,1000,3000)")
    p.add_argument("--seconds", type=float, default=5.0, help="virtual seconds of NACKs per N (default 5)")
    p.add_argument("--sfu-root", type=Path, default=ROOT, help="the checkout whose node code runs (default: this one)")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    args = p.parse_args(argv)
    try:
        counts = [int(x) for x in args.players.split(",") if x.strip()]
    except ValueError:
        p.error(f"--players: whole numbers separated by commas, got {args.players!r}")
    if not counts or any(c < 1 for c in counts) or args.seconds <= 0:
        p.error("--players must be >= 1, --seconds > 0")
    root = args.sfu_root.resolve()
    import_node_from(root, p.error)
    run(10, 1.0)  # warm-up: imports, caches (not measured)
    rows = [run(n, args.seconds) for n in counts]
    base = rows[0]["us_per_nack"]
    for r in rows:
        r["x_first"] = r["us_per_nack"] / base
    print(f"node code: {root}")
    print_table(("N", "NACKs", "retransmissions", "us per NACK", "x first N"),
                [(str(r["n"]), str(r["nacks"]), str(r["retransmissions"]), f"{r['us_per_nack']:,.0f}",
                  f"{r['x_first']:.2f}x") for r in rows])
    if args.json:
        report = {"machine": {"python": platform.python_version(), "node_source": str(root)},
                  "settings": {"players": counts, "seconds": args.seconds}, "results": rows}
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
