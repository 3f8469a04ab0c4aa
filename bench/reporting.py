"""Players that report on their path: what a datagram to a player that sends RTCP receiver reports
(every SDK player does, once a second) costs the node, against one to a player that never does
(bench/fanout.py's sinks: plain RTP receivers), side by side in one run, RTC and L3.

A player that reports has its path measured: its latency budget then decides, frame by frame, what
it is sent (docs/media.md, "the fast table"). An RTC one stays in the compiled fast path behind a
gate that Python sets at each frame's first packet; an L3 one too, behind a gate Python sets at each
released frame.

In this process, on a virtual clock for the Router, with the compiled fast path sending on a real
loopback UDP socket (to one sink socket that nobody reads: the kernel drops what overflows it,
after the send) and the Router's own outputs sent with `sendto`, as the node's endpoint does. One
VP8 track, 30 frames/s of `--packets` packets of ~1.1 kB (a keyframe every 60), N players of one
mode, all reporting or none (each reporting player sends one RR before the media, which marks its
path measured; the path stays clean, so the budget lets everything through). Timed: process time
of the Router calls and of sending what they return.

    python bench/reporting.py [--players 50,200,500] [--modes rtc,l3] [--seconds 3] [--rounds 3]
                              [--packets 3] [--l3-beside] [--json FILE]
    sfu bench reporting ...   (the same)

Figures: us of CPU per datagram out (timed CPU / datagrams the players were sent), silent and
reporting, and reporting / silent.
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
for _p in (str(HERE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from harness import counts, median_run, print_table  # noqa: E402
from inproc import PUB, rr, vp8_router  # noqa: E402
from streams import build  # noqa: E402

from sfu.media.router import SHARED  # noqa: E402

FPS, GOP = 30, 60
BODY = 1100  # payload bytes after each packet's VP8 descriptor


def inputs(seconds: float, packets: int) -> list[tuple[float, bytes]]:
    """(time, datagram) of one stream: bench/streams.py's."""
    return [(at, data) for at, _, data in build(1, seconds, packets, BODY)]


def run(n: int, mode: str, reporting: bool, media: list[tuple[float, bytes]], l3_beside: bool = False) -> dict:
    with vp8_router() as (router, tid, dest, out_sock):  # (a fixed L3 hold: 100 ms, as in bench/fanout.py)
        players = [router.add_player(1, "s", f"p{i}", {"video": dest}, l3=mode == "l3")[0]["video"] for i in range(n)]
        if l3_beside:  # one silent L3 player more: the track keeps an L3 timeline, so every packet comes to Python
            router.add_player(1, "s", "l3", {"video": dest}, l3=True)
        if reporting:
            for ssrc in players:
                router.on_datagram(SHARED, rr(ssrc), dest, 0.0)
        sendto = out_sock.sendto
        clock = time.process_time
        cpu, python_out = 0.0, 0

        def send(out: list) -> None:
            nonlocal python_out
            for _key, data, addr in out:
                try:
                    sendto(data, addr)
                except OSError:
                    pass
            python_out += len(out)

        for at, data in media:
            while (due := router.next_timer()) is not None and due <= at:
                t0 = clock()
                send(router.on_timer(due))
                cpu += clock() - t0
            t0 = clock()
            send(router.on_datagram(tid, data, PUB, at))
            cpu += clock() - t0
        end = media[-1][0] + 1.0
        while (due := router.next_timer()) is not None and due <= end:
            t0 = clock()
            send(router.on_timer(due))
            cpu += clock() - t0
        out = router.counters["packets_out"]  # (the compiled fast path's too; RTCP sender reports are a few)
        measured = sum(1 for t in router.tracks() for p in t.players if p.path is not None and p.path.measured)
        return {"datagrams_out": out, "python_datagrams": python_out, "measured_players": measured,
                "cpu_s": cpu, "us_per_datagram": cpu / max(out, 1) * 1e6}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sfu bench reporting", description=__doc__.split("\n\n")[0])
    p.add_argument("--players", type=counts, default=[50, 200, 500], help="player counts N (default 50,200,500)")
    p.add_argument("--modes", default="rtc,l3", help="play modes (default rtc,l3)")
    p.add_argument("--seconds", type=float, default=3.0, help="virtual seconds of media per run (default 3)")
    p.add_argument("--rounds", type=int, default=3,
                   help="runs of each kind per N and mode, alternating; the median is taken (default 3)")
    p.add_argument("--packets", type=int, default=3, help="packets per frame (default 3)")
    p.add_argument("--l3-beside", action="store_true",
                   help="one silent L3 player beside the N (a room of both modes: every packet comes to Python)")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    args = p.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in ("rtc", "l3") for m in modes):
        p.error("--modes: rtc and/or l3")
    if args.seconds <= 0 or args.rounds < 1 or args.packets < 1:
        p.error("--seconds must be > 0, --rounds and --packets >= 1")
    media = inputs(args.seconds, args.packets)
    run(2, "rtc", True, inputs(0.5, args.packets))  # warm-up: imports, caches (not measured)
    rows = []
    for n in args.players:
        for mode in modes:
            runs: dict[str, list[dict]] = {"silent": [], "reporting": []}
            for _ in range(args.rounds):
                for kind in runs:
                    r = run(n, mode, kind == "reporting", media, args.l3_beside)
                    runs[kind].append(r)
            row: dict = {"n": n, "mode": mode}
            for kind, rs in runs.items():
                med = median_run(rs, "us_per_datagram")
                med["us_per_datagram_runs"] = [round(x["us_per_datagram"], 3) for x in rs]
                row[kind] = med
            row["ratio"] = row["reporting"]["us_per_datagram"] / row["silent"]["us_per_datagram"]
            rows.append(row)
            print(f"N={n} {mode}: silent {row['silent']['us_per_datagram']:.2f} us/datagram, reporting "
                  f"{row['reporting']['us_per_datagram']:.2f}", file=sys.stderr, flush=True)
    head = ("N", "mode", "silent us/datagram", "reporting us/datagram", "reporting / silent",
            "datagrams sent from Python (reporting)")
    lines = [(str(r["n"]), r["mode"], f"{r['silent']['us_per_datagram']:.2f}", f"{r['reporting']['us_per_datagram']:.2f}",
              f"{r['ratio']:.2f}x", f"{r['reporting']['python_datagrams']:,} of {r['reporting']['datagrams_out']:,}")
             for r in rows]
    print_table(head, lines)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "results": rows, "settings": {"seconds": args.seconds, "rounds": args.rounds, "packets": args.packets,
                                          "fps": FPS, "gop": GOP},
            "machine": {"python": platform.python_version(), "platform": platform.platform()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
