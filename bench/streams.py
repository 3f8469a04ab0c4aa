"""Many streams on one node: what the Router's Python costs per input packet as the number of
streams M grows, against the same Router with a timer that calls every track at each wake-up (how
it was until the tracks' deadlines went into a heap). Sans-IO, on a virtual clock, in this process:
no sockets, so the figure is the media plane's own work (a wake-up's Python), not the kernel's.

Each stream: one VP8 track, 30 frames/s of `--packets` packets (a keyframe every 60 frames),
`--players` L3 players (every frame released on the stream's timeline: a timer each), the streams'
frames evenly out of phase. Inputs are built before the timed loop; the loop hands the Router each
packet at its time and fires its timer at each deadline (on_timer at the deadline, as the endpoint
does), and only the Router calls are timed. Each M runs both routers `--rounds` times, alternating, and
keeps each one's median run.

    python bench/streams.py [--streams 1,10,50,200] [--seconds 2] [--min-packets 6000] [--rounds 3]
                            [--players 2] [--packets 3] [--reference-max 200] [--json FILE]
    sfu bench streams ...   (the same)

Figures: us of CPU per input packet (process time of the Router calls / packets in), and its ratio to
M = 1 in the same run (1.0: a stream costs the same however many others there are).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import struct
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from harness import counts, median_run, print_table  # noqa: E402

from sfu.media.router import Router, TrackSpec  # noqa: E402

VP8 = (TrackSpec("video", "VP8", 96),)
FPS = 30
GOP = 60
# each packet's VP8 payload descriptor (and a keyframe's start), before its body
VP8_KEY = b"\x10\x10\x00\x00\x9d\x01\x2a\x40\x01\xf0\x00"
VP8_DELTA = b"\x10\x11\x00\x00"
VP8_MORE = b"\x00"


class EveryTrackRouter(Router):
    """The reference: a wake-up calls every track's on_timer(), due or not (and so asks every track
    for its next deadline after it)."""

    def on_timer(self, now: float) -> list:
        out: list = []
        for track in self.tracks():
            self._touch(track)
            out += track.on_timer(now)
            out += track.fast.take_out()
        return out


def build(m: int, seconds: float, packets: int, body: int = 1000) -> list[tuple[float, int, bytes]]:
    """(time, stream index, datagram) for every packet of every stream, in time order; `body` bytes
    of payload after each packet's VP8 descriptor."""
    key_payload, delta_payload, more_payload = (head + bytes(body) for head in (VP8_KEY, VP8_DELTA, VP8_MORE))
    out = []
    for s in range(m):
        phase = s / m / FPS
        seq = 0
        for f in range(math.ceil(seconds * FPS)):
            at = phase + f / FPS
            key = f % GOP == 0
            for i in range(packets):
                payload = (key_payload if key else delta_payload) if i == 0 else more_payload
                marker = 0x80 if i == packets - 1 else 0
                data = struct.pack("!BBHII", 0x80, marker | 96, seq & 0xFFFF, f * 3000, 0x1000 + s) + payload
                out.append((at + i * 0.0005, s, data))
                seq += 1
    out.sort(key=lambda e: (e[0], e[1]))
    return out


def run(router_cls: type[Router], m: int, players: int, inputs: list) -> dict:
    router = router_cls(new_ssrc=iter(range(0x10000, 0x7FFFFFFF)).__next__)
    tids = []
    for s in range(m):
        (tid,) = router.add_publisher(1, f"s{s}", VP8)
        tids.append(tid)
        for p in range(players):
            router.add_player(1, f"s{s}", f"p{s}-{p}", {"video": ("127.0.0.1", 20000 + (s * players + p) % 40000)},
                              l3=True, now=0.0)
    addrs = [("127.0.0.2", 5000 + s) for s in range(m)]
    wakeups = track_calls = 0
    on_timer = type(router.tracks()[0]).on_timer

    def counted(track, now):
        nonlocal track_calls
        track_calls += 1
        return on_timer(track, now)

    for t in router.tracks():
        t.on_timer = counted.__get__(t)  # counts the tracks a wake-up calls
    out_packets = 0
    cpu = 0.0
    clock = time.process_time
    for at, s, data in inputs:
        while (due := router.next_timer()) is not None and due <= at:
            t0 = clock()
            out = router.on_timer(due)
            cpu += clock() - t0
            out_packets += len(out)
            wakeups += 1
        t0 = clock()
        out = router.on_datagram(tids[s], data, addrs[s], at)
        cpu += clock() - t0
        out_packets += len(out)
    released = sum(t.counters["frames_released"] for t in router.tracks())
    return {"packets_in": len(inputs), "packets_out": out_packets, "wakeups": wakeups, "track_calls": track_calls,
            "frames_released": released, "us_per_packet": cpu / len(inputs) * 1e6}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sfu bench streams", description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=counts, default=[1, 10, 50, 200], help="stream counts M (default 1,10,50,200)")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="virtual seconds of media per stream, at least (default 2; fewer streams run longer, "
                        "to --min-packets)")
    p.add_argument("--min-packets", type=int, default=6000, help="input packets per run, at least (default 6000)")
    p.add_argument("--rounds", type=int, default=3,
                   help="runs of each router per M, alternating; the median is taken (default 3)")
    p.add_argument("--players", type=int, default=2, help="L3 players per stream (default 2)")
    p.add_argument("--packets", type=int, default=3, help="packets per frame (default 3)")
    p.add_argument("--reference-max", type=int, default=200,
                   help="run the every-track reference up to this M (its cost grows with M squared; default 200)")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    args = p.parse_args(argv)
    if args.players < 1 or args.packets < 1 or args.seconds <= 0 or args.rounds < 1:
        p.error("--players, --packets and --rounds must be >= 1, --seconds > 0")
    run(Router, 2, args.players, build(2, 1.0, args.packets))  # warm-up: imports, caches (not measured)
    rows = []
    base: dict[str, float] = {}
    for m in args.streams:
        seconds = max(args.seconds, args.min_packets / (m * FPS * args.packets))
        inputs = build(m, seconds, args.packets)
        row = {"streams": m, "seconds": seconds, "players_per_stream": args.players,
               "input_pps": round(m * FPS * args.packets)}
        labels = [("heap", Router)] + ([("every_track", EveryTrackRouter)] if m <= args.reference_max else [])
        row["every_track"] = None
        runs: dict[str, list[dict]] = {label: [] for label, _ in labels}
        for _ in range(args.rounds):
            for label, cls in labels:
                r = run(cls, m, args.players, inputs)
                assert r["frames_released"] > 0, "the L3 timelines released nothing"
                runs[label].append(r)
        for label, _ in labels:
            r = median_run(runs[label], "us_per_packet")
            r["us_per_packet_runs"] = [round(x["us_per_packet"], 2) for x in runs[label]]
            base.setdefault(label, r["us_per_packet"])
            r["x_one_stream"] = r["us_per_packet"] / base[label]
            row[label] = r
        ref = row["every_track"]
        row["every_track_over_heap"] = ref["us_per_packet"] / row["heap"]["us_per_packet"] if ref else None
        rows.append(row)
        print(f"M={m}: heap {row['heap']['us_per_packet']:.1f} us/pkt"
              + (f", every track {ref['us_per_packet']:.1f} us/pkt" if ref else ""), file=sys.stderr, flush=True)
    head = ("M", "input pps", "us/pkt (x M=1)", "track calls/wake-up", "every track: us/pkt (x M=1)",
            "track calls/wake-up", "every track / heap")
    lines = []
    for row in rows:
        h, e = row["heap"], row["every_track"]
        lines.append((str(row["streams"]), f"{row['input_pps']:,}",
                      f"{h['us_per_packet']:.1f} ({h['x_one_stream']:.2f}x)", f"{h['track_calls'] / h['wakeups']:.2f}",
                      f"{e['us_per_packet']:.1f} ({e['x_one_stream']:.2f}x)" if e else "-",
                      f"{e['track_calls'] / e['wakeups']:.2f}" if e else "-",
                      f"{row['every_track_over_heap']:.2f}x" if e else "-"))
    print_table(head, lines)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "results": rows, "settings": {"seconds": args.seconds, "players": args.players, "packets": args.packets,
                                          "fps": FPS, "gop": GOP},
            "machine": {"python": platform.python_version(), "platform": platform.platform()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
