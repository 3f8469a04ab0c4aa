"""The `sfu` command: serve, token."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from sfu import __version__
from sfu.config import Config, ConfigError, default_state_file, dev_app, load_config, parse_port_range


def _serve(args: argparse.Namespace) -> int:
    try:
        if args.config:
            config = load_config(args.config)
            created = False
        else:
            app, created = dev_app(Path(args.state_file) if args.state_file else default_state_file())
            config = Config(apps=(app,))
        node_cfg = config.node
        if args.host is not None:
            node_cfg = replace(node_cfg, host=args.host)
        if args.port is not None:
            if not 0 <= args.port <= 65535:
                raise ConfigError(f"--port: must be 0-65535, got {args.port}")
            node_cfg = replace(node_cfg, port=args.port)
        if args.rtp_ports is not None:
            node_cfg = replace(node_cfg, rtp_ports=parse_port_range(args.rtp_ports, "--rtp-ports"))
        config = replace(config, node=node_cfg)
    except ConfigError as e:
        print(f"sfu: bad configuration: {e}", file=sys.stderr)
        return 2

    import uvloop

    code = uvloop.run(_run_node(config, dev=not args.config, created=created))
    # stopped: closing the loop restored the default SIGTERM action; a second SIGTERM while the
    # interpreter winds down must not turn a clean stop into death by signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return code


async def _run_node(config: Config, *, dev: bool, created: bool) -> int:
    from sfu.node import Node
    from sfu.token import generate_token04, make_payload

    node = Node(config)
    try:
        await node.start()
    except OSError as e:
        print(f"sfu: cannot listen on {config.node.host} (HTTP port {config.node.port}, RTP ports {config.node.rtp_ports[0]}-{config.node.rtp_ports[1]}): {e.strerror or e}", file=sys.stderr)
        return 1
    # What the node loaded to start (modules, the web app, its configuration) lives as long as it
    # does: frozen out of the cycle collector's way, a full collection scans only what came since
    # (on the bench, a full collection while forwarding took 16-17 ms before, under 1 ms after)
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    lines = [f"sfu {__version__} node running (uvloop)",
             f"  HTTP:      {node.http_url}   (health: {node.http_url}/healthz)",
             f"  WebSocket: {node.ws_url}",
             f"  RTP ports: {config.node.rtp_ports[0]}-{config.node.rtp_ports[1]}"]
    for app in config.apps:
        lines.append(f"  AppID:     {app.app_id}")
        if dev:
            lines.append(f"  Secret:    {app.secret}   ({'new' if created else 'reused'} development app)")
            tok = generate_token04(app.app_id, "test-user", app.secret, 24 * 3600, make_payload(), now=time.time())
            lines.append(f"  Token for user 'test-user' (24 h): {tok}")
    print("\n".join(lines), flush=True)
    await stop.wait()
    print("sfu: stopping (sessions told, sockets closed)", flush=True)
    await node.stop()
    return 0


def _token(args: argparse.Namespace) -> int:
    from sfu.token import generate_token04, make_payload

    if len(args.secret) != 32:
        print("sfu token: --secret must be exactly 32 characters", file=sys.stderr)
        return 2
    if args.ttl <= 0:
        print("sfu token: --ttl must be > 0", file=sys.stderr)
        return 2
    try:
        payload = make_payload(args.room_id, publish=args.publish, stream_ids=args.stream_id or None)
        print(generate_token04(args.app_id, args.user_id, args.secret, args.ttl, payload, now=time.time()))
    except ValueError as e:
        print(f"sfu token: {e}", file=sys.stderr)
        return 2
    return 0


BENCHES = {  # `sfu bench NAME` -> bench/<script>.py, and its help line
    "fanout": ("fanout", "one publisher to N players against a C relay"),
    "qoe": ("l3_qoe", "L3 and RTC players' QoE behind impaired links: latency, complete frames, sync, first frame"),
    "streams": ("streams", "the Router's Python per input packet as the number of streams grows (sans-IO)"),
    "reporting": ("reporting", "what a datagram to a player that sends RTCP reports costs, against a silent one"),
    "joins": ("joins", "what a join costs as a crowd of players joins a live stream (sans-IO)"),
    "nacks": ("nacks", "what one player's NACK costs as the players grow (sans-IO)"),
    "catchup": ("catchup", "what an L3 node that fell behind pays to release several frames at once (sans-IO)"),
    "periodic": ("periodic", "what the node's periodic work (HTTP sessions' check, a scrape) costs its event loop"),
}


def _bench(args: argparse.Namespace) -> int:
    """`sfu bench NAME ARGS...`: bench/<script>.py's main(ARGS) (bench/ is in a source checkout, not installed)."""
    import runpy

    script = Path(__file__).resolve().parent.parent / "bench" / f"{BENCHES[args.bench][0]}.py"
    if not script.is_file():
        print(f"sfu bench: {script} not found (benchmarks run from a source checkout)", file=sys.stderr)
        return 2
    return runpy.run_path(str(script), run_name="sfu_bench")["main"](args.argv)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sfu", description="Selective forwarding unit for ultra-low-latency live streaming.")
    p.add_argument("--version", action="version", version=f"sfu {__version__}")
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the node")
    s.add_argument("--config", help="TOML config file (without it: a development AppID kept in a state file)")
    s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="HTTP/WebSocket port (default 8080; 0 = any free port)")
    s.add_argument("--rtp-ports", help="UDP port range for media, e.g. 40000-40999")
    s.add_argument("--state-file", help="where the development AppID and secret are kept")
    s.set_defaults(func=_serve)

    t = sub.add_parser("token", help="print a '04' token")
    t.add_argument("--app-id", type=int, required=True)
    t.add_argument("--secret", required=True)
    t.add_argument("--user-id", required=True)
    t.add_argument("--room-id")
    t.add_argument("--publish", action=argparse.BooleanOptionalAction, default=True,
                   help="grant the publish privilege (default yes)")
    t.add_argument("--stream-id", action="append", help="limit publishing to this stream id (repeatable)")
    t.add_argument("--ttl", type=int, default=3600, help="seconds the token is valid (default 3600)")
    t.set_defaults(func=_token)

    from sfu.rtp_tools import add_parsers as add_rtp_commands  # rtp-publish, rtp-play, rtp-stop

    add_rtp_commands(sub)

    from sfu.client.media.cli import add_media_commands  # `publish`, `play` (heavy imports only when run)

    add_media_commands(sub)

    b = sub.add_parser("bench", help="run a benchmark from bench/ (bench/README.md)")
    benches = b.add_subparsers(dest="bench", required=True)
    for name, (_, about) in BENCHES.items():  # its arguments go to the script as they are
        benches.add_parser(name, prefix_chars="\0", add_help=False, help=about).add_argument("argv", nargs="*")
    b.set_defaults(func=_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)
