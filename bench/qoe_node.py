"""The node for bench/l3_qoe.py: `sfu.node.Node` on uvloop, as `sfu serve --config` runs it, in a
process of its own. On SIGUSR1 it writes what its media cores counted (router, publisher tracks:
jitter buffer, NACK generator, keyframe requests; players' paths) as JSON to `--stats` (written
aside, then renamed: the file appears whole); SIGTERM/SIGINT stop it. The bench reads the
counters there, finer-grained than /metrics (per track and per player path).

    python bench/qoe_node.py --config node.toml --stats stats.json [--sfu-root DIR]
    (prints one JSON line {"ws_url": ..., "pid": ...} once listening; --sfu-root: import the node
    from that source tree, e.g. an exported older commit, to compare)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _quantiles(values: list[float]) -> dict | None:
    if not values:
        return None
    s = sorted(values)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return {"n": len(s), "min": s[0], "p50": pick(0.5), "p99": pick(0.99), "max": s[-1]}


def media_stats(router) -> dict:
    tracks = []
    for t in router.tracks():
        j = t.jitter
        entry = {
            "kind": t.spec.kind, "counters": dict(t.counters), "jitter_buffer": dict(j.counters),
            "target_delay_s": j.target_delay, "release_target_s": j.release_target, "jitter_s": j.jitter, "rtt_s": j.rtt,
            "release_delay_s": _quantiles(j.take_delay_samples()),
            "nack": dict(t.nack.counters), "keyframe_requests": dict(t.requester.counters),
            "keyframe_request_reasons": dict(t.requester.reasons),
        }
        rtt = getattr(t, "rtt", None)  # a measured RTT toward the publisher, where the node has one
        if rtt is not None and hasattr(rtt, "stats"):
            entry["rtt_estimate"] = rtt.stats()
        reorder = getattr(t.nack, "reorder_delay", None)
        if reorder is not None:
            entry["nack_reorder_delay_s"] = reorder
        players = []
        for p in t.players:
            path = p.path
            players.append({
                "l3": p.l3, "packets_sent": p.packets_sent, "retransmissions": p.retransmissions,
                "budget": dict(path.budget.counters) if path else None,
                "estimate_bps": path.congestion.estimate_bps if path else None,
                "congestion": dict(path.congestion.counters) if path else None,
            })
        entry["players"] = players
        tracks.append(entry)
    return {"router": dict(router.counters), "dropped": dict(router.dropped), "tracks": tracks}


async def run(config_path: str, stats_path: str) -> int:
    from sfu.config import load_config
    from sfu.node import Node

    node = Node(load_config(config_path))
    await node.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def dump() -> None:
        tmp = Path(stats_path + ".tmp")
        tmp.write_text(json.dumps(media_stats(node.router), indent=1, default=str) + "\n")
        tmp.replace(stats_path)

    loop.add_signal_handler(signal.SIGUSR1, dump)
    print(json.dumps({"ws_url": node.ws_url, "pid": os.getpid()}), flush=True)
    await stop.wait()
    await node.stop()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--sfu-root", default=str(ROOT))
    args = p.parse_args()
    sys.path.insert(0, str(Path(args.sfu_root).resolve()))
    import uvloop

    return uvloop.run(run(args.config, args.stats))


if __name__ == "__main__":
    sys.exit(main())
