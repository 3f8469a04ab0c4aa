"""HTTP play sessions: what the node's once-a-second liveness check costs as they grow.

A player that plays from our SDP (ffmpeg, GStreamer) is an HTTP API session, and the node checks
every second whether each session still stands (kicked out, token expired, publisher idle, player
gone: sfu/http_api.py `tick`). That check runs on the event loop that forwards the media: whatever
it costs, every packet that comes in meanwhile waits for it, so its longest call is a stall of the
media, once a second, at every N.

In this process: a real node (`sfu.node.Node`, on uvloop, loopback) with one publisher and N HTTP
play sessions made through its HTTP API, as ffmpeg players would be; `--gone G` of them reported
unreachable (ICMP port unreachable, as the node's error queue would hand them over, fed to its
reachability records at each tick). Timed: the process time of the node's `tick` (the call its
keepalive makes each second), `--ticks` times per N, the node's own keepalive stopped meanwhile.
Figures: us per tick (median) and its longest call, and us per session.

    python bench/liveness.py [--players 100,1000,3000] [--gone 0] [--ticks 30] [--sfu-root DIR] [--json FILE]
    sfu bench liveness ...   (the same)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import print_table  # noqa: E402
from inproc import import_node_from  # noqa: E402

APP_ID = 424243
SECRET = "livenessbench0123456789abcdef012"  # 32 characters


async def run(n: int, gone: int, ticks: int) -> dict:
    import aiohttp

    from sfu.config import AppConfig, Config, NodeConfig, SessionConfig
    from sfu.node import Node
    from sfu.token import generate_token04

    config = Config(apps=(AppConfig(APP_ID, SECRET, max_users_per_room=n + 10, max_players_per_stream=n + 10),),
                    node=NodeConfig(host="127.0.0.1", port=0),
                    session=SessionConfig(rtp_idle_timeout=3600.0, rtp_unreachable_timeout=3600.0))
    node = Node(config)
    await node.start()
    try:
        await node.http_api.stop()  # its own keepalive: the bench makes the calls it would

        async def post(http, path: str, user: str, body: dict) -> dict:
            token = generate_token04(APP_ID, user, SECRET, 3600, "", now=time.time())
            async with http.post(node.http_url + path, json={"app_id": APP_ID, "room_id": "r", "user_id": user,
                                                             "stream_id": "s", **body},
                                 headers={"Authorization": "Bearer " + token}) as r:
                if r.status != 201:
                    raise RuntimeError(f"POST {path} for {user}: {r.status} {await r.text()}")
                return await r.json()

        addrs = [("127.0.0.1", 20000 + 2 * i) for i in range(n)]  # (nothing is sent: nothing published)
        async with aiohttp.ClientSession() as http:
            await post(http, "/api/v1/publish", "cam", {"tracks": [{"kind": "video", "codec": "VP8", "payload_type": 96}]})
            for i, (host, port) in enumerate(addrs):
                await post(http, "/api/v1/play", f"p{i}", {"mode": "rtc", "tracks": [
                    {"kind": "video", "host": host, "port": port}]})
        if len(node.http_api.sessions) != n + 1:
            raise RuntimeError(f"{len(node.http_api.sessions)} sessions, not {n + 1}")
        loop = asyncio.get_running_loop()
        reachability = node.endpoint.reachability
        times = []
        for _ in range(ticks):
            now = loop.time()
            for addr in addrs[:gone]:  # (a report a tick: within the gap, so their runs go on)
                reachability.report(addr, node.endpoint.clock())
            t0 = time.process_time()
            node.http_api.tick(now)
            times.append(time.process_time() - t0)
        if len(node.http_api.sessions) != n + 1:
            raise RuntimeError("a session ended during the bench")
    finally:
        await node.stop()
    per_tick = statistics.median(times)
    return {"n": n, "gone": gone, "ticks": ticks, "us_per_tick": per_tick * 1e6, "longest_ms": max(times) * 1e3,
            "us_per_session": per_tick * 1e6 / n}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sfu bench liveness", description=__doc__.split("\n\n")[0])
    p.add_argument("--players", default="100,1000,3000", help="HTTP play sessions N (default 100,1000,3000)")
    p.add_argument("--gone", type=int, default=0, help="of them, reported unreachable (default 0)")
    p.add_argument("--ticks", type=int, default=30, help="liveness checks timed per N (default 30)")
    p.add_argument("--sfu-root", type=Path, default=ROOT, help="the checkout whose node code runs (default: this one)")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    args = p.parse_args(argv)
    try:
        counts = [int(x) for x in args.players.split(",") if x.strip()]
    except ValueError:
        p.error(f"--players: whole numbers separated by commas, got {args.players!r}")
    if not counts or any(c < 1 for c in counts) or args.ticks < 1 or not 0 <= args.gone <= min(counts):
        p.error("--players must be >= 1, --ticks >= 1, 0 <= --gone <= the smallest N")
    root = args.sfu_root.resolve()
    import_node_from(root, p.error)
    import uvloop

    async def all_runs() -> list[dict]:
        await run(10, min(args.gone, 10), 3)  # warm-up: imports, caches (not measured)
        return [await run(n, args.gone, args.ticks) for n in counts]

    rows = uvloop.run(all_runs())
    print(f"node code: {root}")
    print_table(("N", "gone", "us per tick (median)", "longest ms", "us per session"),
                [(str(r["n"]), str(r["gone"]), f"{r['us_per_tick']:,.0f}", f"{r['longest_ms']:.2f}",
                  f"{r['us_per_session']:.2f}") for r in rows])
    if args.json:
        report = {"machine": {"python": platform.python_version(), "node_source": str(root)},
                  "settings": {"players": counts, "gone": args.gone, "ticks": args.ticks}, "results": rows}
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
