"""L3 catch-up: what a node that fell behind pays to release several frames at once.

An L3 node releases each frame at its own time; after a stall of its event loop (a GC pause, a
slow call, the machine taking its core) several frames are due at once, and how fast it sends
them decides how long its L3 players wait. In this process, on a virtual clock, the Router alone
(as bench/nacks.py): one VP8 track (each frame one packet of ~1.1 kB, held 0.1 s), N L3 players
whose fast path sends on a real loopback socket (to one sink socket that nobody reads: the
kernel drops what overflows it, after the send), then rounds of K frames that arrive 1 ms apart
and are released by one timer call, all due. Timed: the process time of that call. Figures: us
per round and per datagram, and the UDP GSO sends the fast path made (a player's datagrams of
several frames in one send).

    python bench/catchup.py [--players 1000] [--frames 1,2,4,8] [--rounds 40] [--sfu-root DIR] [--json FILE]
    sfu bench catchup ...   (the same)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import struct
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import counts, print_table  # noqa: E402
from inproc import import_node_from  # noqa: E402

VP8_KEY = bytes([0x10, 0x00, 0x00, 0x00, 0x9D, 0x01, 0x2A]) + bytes(1100)


def run(n: int, k: int, rounds: int) -> dict:
    from inproc import PUB, vp8_router

    times = []
    with vp8_router() as (router, tid, sink, _):
        for i in range(n):
            router.add_player(1, "s", f"p{i}", {"video": sink}, l3=True)
        fast = router.track(tid).fast
        seq, now, gso = 0, 1.0, 0
        for r in range(rounds + 5):  # (the first 5: the timeline starts, the players' first frames)
            for _ in range(k):
                router.on_datagram(tid, struct.pack("!BBHII", 0x80, 0x80 | 96, seq & 0xFFFF, 3000 * seq, 0x5EED)
                                   + VP8_KEY, PUB, now)
                seq += 1
                now += 0.001
            now = max(now, router.next_timer()) + 0.11  # every frame of the round due
            gso0 = fast.gso_sends
            t0 = time.process_time()
            while (due := router.next_timer()) is not None and due <= now:
                router.on_timer(now)
            if r >= 5:
                times.append(time.process_time() - t0)
                gso += fast.gso_sends - gso0
            now += 0.01
        released = router.track(tid).counters["frames_released"]
    if released != (rounds + 5) * k:
        raise RuntimeError(f"{released} frames released, not {(rounds + 5) * k}")
    per_round = statistics.median(times)
    return {"n": n, "frames": k, "rounds": rounds, "us_per_round": per_round * 1e6,
            "us_per_datagram": per_round * 1e6 / (n * k), "gso_sends_per_round": gso / rounds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sfu bench catchup", description=__doc__.split("\n\n")[0])
    p.add_argument("--players", type=int, default=1000, help="L3 players N (default 1000)")
    p.add_argument("--frames", type=counts, default=[1, 2, 4, 8], help="frames released at once K (default 1,2,4,8)")
    p.add_argument("--rounds", type=int, default=40, help="rounds timed per K (default 40)")
    p.add_argument("--sfu-root", type=Path, default=ROOT, help="the checkout whose node code runs (default: this one)")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    args = p.parse_args(argv)
    ks = args.frames
    if args.players < 1 or args.rounds < 1:
        p.error("--players and --rounds must be >= 1")
    root = args.sfu_root.resolve()
    import_node_from(root, p.error)
    run(10, 2, 3)  # warm-up: imports, caches (not measured)
    rows = [run(args.players, k, args.rounds) for k in ks]
    print(f"node code: {root}")
    print_table(("N", "frames at once", "us per round", "us per datagram", "GSO sends per round"),
                [(str(r["n"]), str(r["frames"]), f"{r['us_per_round']:,.0f}", f"{r['us_per_datagram']:.2f}",
                  f"{r['gso_sends_per_round']:,.0f}") for r in rows])
    if args.json:
        report = {"machine": {"python": platform.python_version(), "node_source": str(root)},
                  "settings": {"players": args.players, "frames": ks, "rounds": args.rounds}, "results": rows}
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
