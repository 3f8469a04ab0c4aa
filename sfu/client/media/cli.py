"""`sfu publish` and `sfu play`: the SDK's publisher and player from the command line.

    sfu publish --server ws://127.0.0.1:8080/ws --app-id N --token T --room-id R --user-id U \\
                --stream-id S [--codec VP8|H264] [--source FILE] [--duration SECONDS]
    sfu play    --server ws://127.0.0.1:8080/ws --app-id N --token T --room-id R --user-id U \\
                --stream-id S [--mode l3|rtc] [--decode] [--stats-json FILE] [--duration SECONDS]

Both run for `--duration` seconds, or until SIGINT/SIGTERM, then stop, log out and release the
engine. `publish` prints what it sent as one JSON line; `play` writes its PlayerStats as JSON to
`--stats-json` (plus a latency summary), or prints it when no file is given. Exit status: 0 done,
1 the engine refused (the error is printed), 2 bad arguments.

PyAV and numpy are imported only when one of these commands runs (registering them costs `sfu`
the import of the SDK package, i.e. aiohttp, which `sfu serve` loads anyway).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

__all__ = ["add_media_commands"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", required=True, help="the node's signalling URL, ws://HOST:PORT/ws")
    p.add_argument("--app-id", type=int, required=True)
    p.add_argument("--token", required=True, help="a '04' token for --user-id (see `sfu token`)")
    p.add_argument("--room-id", required=True)
    p.add_argument("--user-id", required=True)
    p.add_argument("--stream-id", required=True)
    p.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")


def add_media_commands(sub) -> None:
    """Register `publish` and `play` on the `sfu` command's sub-parsers."""
    p = sub.add_parser("publish", help="log in and publish a stream (test pattern or a media file) over RTP")
    _common(p)
    p.add_argument("--codec", default="VP8", choices=["VP8", "H264"], help="video codec (default VP8)")
    p.add_argument("--source", help="a media file to send, looped (default: a test pattern and a tone)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--bitrate", type=int, default=800_000, help="video bits per second (default 800000)")
    p.add_argument("--gop", type=float, default=2.0, help="seconds between keyframes (default 2)")
    p.add_argument("--no-audio", action="store_true", help="send video only")
    p.set_defaults(func=_publish)

    q = sub.add_parser("play", help="log in, play a stream and report what arrived (frames, loss, latency)")
    _common(q)
    q.add_argument("--mode", default="l3", choices=["l3", "rtc"], help="resource mode (default l3)")
    q.add_argument("--decode", action="store_true", help="decode the video with PyAV")
    q.add_argument("--stats-json", help="write the player's stats here at the end (default: print them)")
    q.set_defaults(func=_play)


def _publish(args: argparse.Namespace) -> int:
    return _run(_publish_main(args))


def _play(args: argparse.Namespace) -> int:
    return _run(_play_main(args))


def _run(coro) -> int:
    import uvloop

    return uvloop.run(coro)


async def _until_stopped(duration: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), duration)
    except TimeoutError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _session(args: argparse.Namespace, body) -> int:
    from sfu.client import Engine, EngineError, EngineProfile, RoomConfig, User

    if args.duration is not None and args.duration <= 0:
        print(f"sfu {args.command}: --duration must be > 0", file=sys.stderr)
        return 2
    try:
        engine = await Engine.create(EngineProfile(app_id=args.app_id, server=args.server))
    except EngineError as e:
        print(f"sfu {args.command}: {e}", file=sys.stderr)
        return 2
    try:
        await engine.login_room(args.room_id, User(args.user_id), RoomConfig(token=args.token))
        await body(engine)
        await engine.logout_room()
        return 0
    except EngineError as e:
        print(f"sfu {args.command}: {e}", file=sys.stderr)
        return 1
    finally:
        await Engine.destroy(engine)


async def _publish_main(args: argparse.Namespace) -> int:
    from sfu.client import PublisherConfig

    config = PublisherConfig(video_codec=args.codec, source=args.source, width=args.width, height=args.height,
                             fps=args.fps, gop_seconds=args.gop, video_bitrate=args.bitrate, audio=not args.no_audio)

    async def body(engine) -> None:
        await engine.start_publishing_stream(args.stream_id, config=config)
        await _until_stopped(args.duration)
        stats = engine.get_publisher_stats()
        await engine.stop_publishing_stream()
        print(json.dumps({"stream_id": args.stream_id, **stats.to_dict()}), flush=True)

    return await _session(args, body)


async def _play_main(args: argparse.Namespace) -> int:
    from sfu.client import PlayerConfig, ResourceMode

    mode = ResourceMode.ONLY_RTC if args.mode == "rtc" else ResourceMode.ONLY_L3

    async def body(engine) -> None:
        await engine.start_playing_stream(args.stream_id, PlayerConfig(resource_mode=mode, decode=args.decode))
        await _until_stopped(args.duration)
        await engine.stop_playing_stream(args.stream_id)
        stats = engine.get_player_stats(args.stream_id).to_dict()
        out = {"stream_id": args.stream_id, "mode": args.mode, **stats, "latency": _summary(stats["latencies"])}
        text = json.dumps(out, indent=1)
        if args.stats_json:
            Path(args.stats_json).write_text(text + "\n")
        else:
            print(text, flush=True)

    return await _session(args, body)


def _summary(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"count": len(ordered), "mean": sum(ordered) / len(ordered), "p50": pick(0.5), "p95": pick(0.95),
            "max": ordered[-1]}
