"""HTTP players: what the node's periodic work costs its event loop as they grow.

A player that plays from our SDP (ffmpeg, GStreamer) is an HTTP API session. Two things the node
does now and then walk what it has of them: once a second it checks every HTTP session (kicked
out, token expired, publisher idle, player gone: sfu/http_api.py `tick`), and each Prometheus
scrape reads the media totals (`GET /metrics`: sfu/metrics.py). Both run on the event loop that
forwards the media: whatever one costs, every packet that comes in meanwhile waits for it, so its
longest call is a stall of the media.

In this process: a real node (`sfu.node.Node`, on uvloop, loopback) with one VP8 publisher and N
HTTP play sessions (RTC, or L3 with `--mode l3`) made through its HTTP API, each to a socket of its
own; media flows between the timed calls (30 packets at 200/s from a socket that sends as the
publisher, so each player has sends the node has not yet looked at). `--gone G` of the players are
reported unreachable before each check (ICMP port unreachable, as the node's error queue would hand
them over), with a timeout far longer than the run. Timed, `--calls` times per N, each after its
media: the process time of the node's `tick` (the call its keepalive makes each second; the
keepalive itself stopped) and of `NodeMetrics.render` (the body of `GET /metrics`). Figures: us per
call (median) and the longest call of each.

    python bench/periodic.py [--players 100,1000,3000] [--mode rtc] [--gone 0] [--calls 20] [--sfu-root DIR] [--json FILE]
    sfu bench periodic ...   (the same)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import statistics
import struct
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import counts, print_table, raise_fd_limit  # noqa: E402
from inproc import import_node_from  # noqa: E402

APP_ID = 424243
SECRET = "periodicbench0123456789abcdef012"  # 32 characters
VP8_KEYFRAME = bytes([0x10, 0x00, 0x00, 0x00, 0x9D, 0x01, 0x2A]) + bytes(1100)  # (each packet a whole frame)


def _drain(socks: list[socket.socket]) -> None:
    for s in socks:
        try:
            while True:
                s.recv(2048)
        except BlockingIOError:
            pass


async def run(n: int, mode: str, gone: int, calls: int) -> dict:
    import aiohttp

    from sfu.config import AppConfig, Config, NodeConfig, SessionConfig
    from sfu.node import Node
    from sfu.token import generate_token04

    config = Config(apps=(AppConfig(APP_ID, SECRET, max_users_per_room=n + 10, max_players_per_stream=n + 10),),
                    node=NodeConfig(host="127.0.0.1", port=0),
                    session=SessionConfig(rtp_idle_timeout=3600.0, rtp_unreachable_timeout=3600.0))
    sinks = []
    node = Node(config)
    await node.start()
    try:
        await node.http_api.stop()  # its own keepalive: the bench makes the calls it would
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            sinks.append(s)

        async def post(http, path: str, user: str, body: dict) -> dict:
            token = generate_token04(APP_ID, user, SECRET, 3600, "", now=time.time())
            async with http.post(node.http_url + path, json={"app_id": APP_ID, "room_id": "r", "user_id": user,
                                                             "stream_id": "s", **body},
                                 headers={"Authorization": "Bearer " + token}) as r:
                if r.status != 201:
                    raise RuntimeError(f"POST {path} for {user}: {r.status} {await r.text()}")
                return await r.json()

        async with aiohttp.ClientSession() as http:
            pub = await post(http, "/api/v1/publish", "cam",
                             {"tracks": [{"kind": "video", "codec": "VP8", "payload_type": 96}]})
            for i, s in enumerate(sinks):
                await post(http, "/api/v1/play", f"p{i}", {"mode": mode, "tracks": [
                    {"kind": "video", "host": "127.0.0.1", "port": s.getsockname()[1]}]})
        if len(node.http_api.sessions) != n + 1:
            raise RuntimeError(f"{len(node.http_api.sessions)} sessions, not {n + 1}")
        media = ("127.0.0.1", pub["tracks"][0]["port"])
        loop = asyncio.get_running_loop()
        reachability = node.endpoint.reachability
        gone_addrs = [s.getsockname() for s in sinks[:gone]]
        ticks, scrapes, seq = [], [], 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as publisher:
            for _ in range(calls + 1):  # (the first call of each: not timed, the players' first sends)
                for _ in range(30):
                    publisher.sendto(struct.pack("!BBHII", 0x80, 0x80 | 96, seq & 0xFFFF, 3000 * seq, 0x5EED)
                                     + VP8_KEYFRAME, media)
                    seq += 1
                    await asyncio.sleep(0.005)
                _drain(sinks)
                for addr in gone_addrs:  # (within the gap each time: their runs go on)
                    reachability.report(addr, node.endpoint.clock())
                t0 = time.process_time()
                node.http_api.tick(loop.time())
                t1 = time.process_time()
                node.metrics.render()
                t2 = time.process_time()
                ticks.append(t1 - t0)
                scrapes.append(t2 - t1)
        if len(node.http_api.sessions) != n + 1:
            raise RuntimeError("a session ended during the bench")
        for _ in range(100):  # (L3 holds the last frames up to its target delay: 2 s at most)
            sent = node.router.counters["packets_out"]
            if sent >= n * 30 * calls:
                break
            await asyncio.sleep(0.02)
        else:
            raise RuntimeError(f"the node sent {sent} packets, not one per player and packet")
    finally:
        await node.stop()
        for s in sinks:
            s.close()
    ticks, scrapes = ticks[1:], scrapes[1:]
    return {"n": n, "mode": mode, "gone": gone, "calls": calls,
            "us_per_tick": statistics.median(ticks) * 1e6, "tick_longest_ms": max(ticks) * 1e3,
            "us_per_scrape": statistics.median(scrapes) * 1e6, "scrape_longest_ms": max(scrapes) * 1e3}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sfu bench periodic", description=__doc__.split("\n\n")[0])
    p.add_argument("--players", type=counts, default=[100, 1000, 3000], help="HTTP play sessions N (default 100,1000,3000)")
    p.add_argument("--mode", choices=("rtc", "l3"), default="rtc", help="the players' mode (default rtc)")
    p.add_argument("--gone", type=int, default=0, help="of them, reported unreachable (default 0)")
    p.add_argument("--calls", type=int, default=20, help="calls of each timed per N (default 20)")
    p.add_argument("--sfu-root", type=Path, default=ROOT, help="the checkout whose node code runs (default: this one)")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    args = p.parse_args(argv)
    players = args.players
    if args.calls < 1 or not 0 <= args.gone <= min(players):
        p.error("--calls must be >= 1, and 0 <= --gone <= the smallest N")
    root = args.sfu_root.resolve()
    import_node_from(root, p.error)
    raise_fd_limit(max(players) + 256)
    import uvloop

    async def all_runs() -> list[dict]:
        await run(10, args.mode, min(args.gone, 10), 2)  # warm-up: imports, caches (not measured)
        return [await run(n, args.mode, args.gone, args.calls) for n in players]

    rows = uvloop.run(all_runs())
    print(f"node code: {root}")
    print_table(("N", "mode", "gone", "us per tick (median)", "tick longest ms", "us per scrape (median)",
                 "scrape longest ms"),
                [(str(r["n"]), r["mode"], str(r["gone"]), f"{r['us_per_tick']:,.0f}", f"{r['tick_longest_ms']:.2f}",
                  f"{r['us_per_scrape']:,.0f}", f"{r['scrape_longest_ms']:.2f}") for r in rows])
    if args.json:
        report = {"machine": {"python": platform.python_version(), "node_source": str(root)},
                  "settings": {"players": players, "mode": args.mode, "gone": args.gone, "calls": args.calls},
                  "results": rows}
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
