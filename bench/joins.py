"""A crowd joins a live stream: what each join costs the node as the crowd grows.

A popular stream going live, or a room that fills at once: thousands of play requests in a few
seconds, while the node forwards to those already there. A join should cost the same whatever the
crowd; a cost that grows with the players already there makes a crowd's cost grow with its square,
and a join that holds the event loop stalls forwarding to everyone.

In this process, on a virtual clock, the Router alone (as bench/reporting.py): one VP8 track, 30
frames/s of 3 packets of ~1.1 kB (a keyframe every 60), the fast path sending on a real loopback
socket to one sink that nobody reads. `--players` players of one mode join with their address (an
HTTP play request, or an SDK player's first RTCP), evenly over `--seconds` of media. Timed: the
process time of the Router's calls (the joins, the media and the timers in between), per bucket of
joins (the 1st to the 100th, ..., in the buckets `--buckets` bounds). Figures:

- join us: CPU of the join calls (with `--reporting`, and of the player's first receiver report,
  which marks its path measured: every SDK player sends one), per join;
- all us/join: CPU of every call in the bucket's stretch of media, joins and media, per join (the
  media's own cost grows with the players present too: the ratio column shows how much);
- x first: `all us/join` as a ratio to the first bucket's, in the same run;
- longest call ms: the longest single call in the bucket: the longest the event loop is held.

With `--leave` the crowd then leaves as it came (the first to join, the first to leave), over as
many seconds: rows of phase "leave", the same figures per leave.

    python bench/joins.py [--players 3000] [--modes rtc,l3] [--seconds 10] [--buckets 100,500,1000,2000]
                          [--reporting] [--leave] [--sfu-root DIR] [--json FILE]
    sfu bench joins ...   (the same)

`--sfu-root` runs another checkout's node code (built in place) with this script: a side-by-side
figure of two commits in one session.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import print_table  # noqa: E402
from inproc import import_node_from  # noqa: E402

FPS_PACKETS = 3
BODY = 1100


def run(n: int, mode: str, seconds: float, bounds: list[int], reporting: bool = False,
        leave: bool = False) -> list[dict]:
    from inproc import PUB, rr, vp8_router
    from streams import build  # (bench/streams.py)

    from sfu.media.router import SHARED

    media = [(at, data) for at, _, data in build(1, seconds * (2 if leave else 1) + 2.0, FPS_PACKETS, BODY)]
    with vp8_router() as (router, tid, dest, out_sock):
        clock = time.process_time
        state = {"cpu": 0.0, "join": 0.0, "longest": 0.0}
        sendto = out_sock.sendto

        def timed(call, *args, join: bool = False):
            t0 = clock()
            result = out = call(*args)
            if isinstance(out, tuple):
                out = out[1]
            for _key, data, addr in out:
                try:
                    sendto(data, addr)
                except OSError:
                    pass
            took = clock() - t0
            state["cpu"] += took
            state["longest"] = max(state["longest"], took)
            if join:
                state["join"] += took
            return result

        k = 0

        def media_until(t: float) -> None:
            nonlocal k
            while k < len(media) and media[k][0] <= t:
                at, data = media[k]
                while (due := router.next_timer()) is not None and due <= at:
                    timed(router.on_timer, due)
                timed(router.on_datagram, tid, data, PUB, at)
                k += 1

        media_until(1.0)  # the stream is live, its keyframe cached, before the crowd
        rows: list[dict] = []
        for phase in ("join", "leave") if leave else ("join",):
            first, last_n = None, 0
            for i in range(n):
                at = 1.0 + seconds * (i / n + (phase == "leave"))
                media_until(at)
                if phase == "leave":  # the first to join, the first to leave
                    timed(lambda: router.remove_player(1, "s", f"p{i}") or [], join=True)
                else:
                    ids, _ = timed(lambda: router.add_player(1, "s", f"p{i}", {"video": dest}, l3=mode == "l3",
                                                             now=at), join=True)
                    if reporting:  # its first receiver report: its path is measured, its budget judges each frame
                        timed(router.on_datagram, SHARED, rr(ids["video"]), dest, at, join=True)
                if i + 1 in bounds or i + 1 == n:
                    calls = i + 1 - last_n
                    row = {"n": n, "mode": mode, "phase": phase, "first": last_n + 1, "last": i + 1,
                           "join_us": state["join"] / calls * 1e6, "all_us_per_join": state["cpu"] / calls * 1e6,
                           "longest_ms": state["longest"] * 1e3}
                    first = first or row["all_us_per_join"]
                    row["x_first"] = row["all_us_per_join"] / first
                    rows.append(row)
                    state.update(cpu=0.0, join=0.0, longest=0.0)
                    last_n = i + 1
        return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sfu bench joins", description=__doc__.split("\n\n")[0])
    p.add_argument("--players", type=int, default=3000, help="players that join (default 3000)")
    p.add_argument("--modes", default="rtc,l3", help="play modes (default rtc,l3)")
    p.add_argument("--seconds", type=float, default=10.0, help="virtual seconds the crowd joins over (default 10)")
    p.add_argument("--buckets", default="100,500,1000,2000",
                   help="where the buckets of joins end (default 100,500,1000,2000)")
    p.add_argument("--reporting", action="store_true",
                   help="each player sends a receiver report as it joins (its path measured: an SDK player's)")
    p.add_argument("--leave", action="store_true",
                   help="then the crowd leaves as it came, over as many seconds (rows 'leave': per leave)")
    p.add_argument("--sfu-root", type=Path, default=ROOT, help="the checkout whose node code runs (default: this one)")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    args = p.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in ("rtc", "l3") for m in modes):
        p.error("--modes: rtc and/or l3")
    try:
        bounds = sorted({int(b) for b in args.buckets.split(",") if b.strip()})
    except ValueError:
        p.error(f"--buckets: whole numbers separated by commas, got {args.buckets!r}")
    if args.players < 1 or args.seconds <= 0 or any(b < 1 for b in bounds):
        p.error("--players and the buckets must be >= 1, --seconds > 0")
    root = args.sfu_root.resolve()
    import_node_from(root, p.error)
    run(50, modes[0], 1.0, [])  # warm-up: imports, caches (not measured)
    rows = []
    for mode in modes:
        rows += run(args.players, mode, args.seconds, bounds, args.reporting, args.leave)
    print(f"node code: {root}")
    print_table(("players", "mode", "phase", "join us", "all us/join", "x first", "longest call ms"),
                [(f"{r['first']}-{r['last']}", r["mode"], r["phase"], f"{r['join_us']:,.0f}",
                  f"{r['all_us_per_join']:,.0f}",
                  f"{r['x_first']:.2f}x", f"{r['longest_ms']:.2f}") for r in rows])
    if args.json:
        report = {"machine": {"python": platform.python_version(), "node_source": str(root)},
                  "settings": {"players": args.players, "seconds": args.seconds, "buckets": bounds,
                               "reporting": args.reporting, "leave": args.leave},
                  "results": rows}
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
