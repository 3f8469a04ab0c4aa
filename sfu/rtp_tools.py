"""`sfu rtp-publish`, `sfu rtp-play`, `sfu rtp-stop`: the HTTP API for stock RTP tools, from a shell.

Each prints what to run next: the ffmpeg command line that publishes to the ports the node gave,
or that plays the SDP the node wrote.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import urllib.error
import urllib.request
from pathlib import Path

PAYLOAD_TYPES = {"VP8": 96, "VP9": 98, "H264": 102, "opus": 111}


def _call(method: str, url: str, token: str | None, body: dict | None) -> tuple[int, dict | None]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"message": raw.decode(errors="replace")}


def _fail(status: int, body: dict | None) -> int:
    body = body or {}
    print(f"sfu: HTTP {status}: {body.get('name', '')} {body.get('code', '')} {body.get('message', '')}".rstrip(),
          file=sys.stderr)
    return 1


def publish_command(tracks: list[dict], host_ports: dict[str, tuple[str, int]], source: str) -> list[str]:
    """The ffmpeg command line that sends `source` to the node's ports, one RTP output per track."""
    cmd = ["ffmpeg", "-re"]
    if source == "testsrc":
        cmd += ["-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440"]
        v_in, a_in = "0:v", "1:a"
    else:
        cmd += ["-stream_loop", "-1", "-i", source]
        v_in, a_in = "0:v:0", "0:a:0"
    for t in tracks:
        host, port = host_ports[t["kind"]]
        if t["kind"] == "video":
            codec = {"VP8": ["-c:v", "libvpx", "-deadline", "realtime", "-b:v", "1M", "-g", "60"],
                     "VP9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-b:v", "1M", "-g", "60"],
                     "H264": ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60",
                              "-bsf:v", "dump_extra"]}[t["codec"]]
            cmd += ["-map", v_in, *codec]
        else:
            cmd += ["-map", a_in, "-c:a", "libopus"]
        cmd += ["-payload_type", str(t["payload_type"]), "-f", "rtp", f"rtp://{host}:{port}?pkt_size=1200"]
    return cmd


def rtp_publish(args: argparse.Namespace) -> int:
    tracks = []
    if args.video != "none":
        tracks.append({"kind": "video", "codec": args.video, "payload_type": PAYLOAD_TYPES[args.video]})
    if args.audio != "none":
        tracks.append({"kind": "audio", "codec": "opus", "payload_type": PAYLOAD_TYPES["opus"]})
    if not tracks:
        print("sfu rtp-publish: nothing to publish (--video none --audio none)", file=sys.stderr)
        return 2
    status, body = _call("POST", args.server.rstrip("/") + "/api/v1/publish", args.token, {
        "app_id": args.app_id, "room_id": args.room_id, "user_id": args.user_id, "stream_id": args.stream_id,
        "tracks": tracks})
    if status != 201:
        return _fail(status, body)
    host_ports = {t["kind"]: (t["host"], t["port"]) for t in body["tracks"]}
    print(f"session_id: {body['session_id']}")
    print("publish with:")
    print("  " + shlex.join(publish_command(tracks, host_ports, args.source)))
    print(f"stop with: sfu rtp-stop --server {args.server} {body['session_id']}")
    return 0


def rtp_play(args: argparse.Namespace) -> int:
    tracks = []
    if args.video_port:
        tracks.append({"kind": "video", "host": args.host, "port": args.video_port})
    if args.audio_port:
        tracks.append({"kind": "audio", "host": args.host, "port": args.audio_port})
    if not tracks:
        print("sfu rtp-play: give --video-port and/or --audio-port", file=sys.stderr)
        return 2
    status, body = _call("POST", args.server.rstrip("/") + "/api/v1/play", args.token, {
        "app_id": args.app_id, "room_id": args.room_id, "user_id": args.user_id, "stream_id": args.stream_id,
        "mode": args.mode, "tracks": tracks})
    if status != 201:
        return _fail(status, body)
    Path(args.sdp).write_bytes(body["sdp"].encode())
    print(f"session_id: {body['session_id']}")
    print(f"SDP written to {args.sdp}; play with:")
    print("  " + shlex.join(["ffmpeg", "-protocol_whitelist", "file,udp,rtp", "-i", args.sdp, "-f", "sdl", "sfu"])
          + "   (or: ffplay -protocol_whitelist file,udp,rtp " + shlex.quote(args.sdp) + ")")
    print(f"stop with: sfu rtp-stop --server {args.server} {body['session_id']}")
    return 0


def rtp_stop(args: argparse.Namespace) -> int:
    status, body = _call("DELETE", args.server.rstrip("/") + f"/api/v1/sessions/{args.session_id}", None, None)
    if status != 204:
        return _fail(status, body)
    print(f"session {args.session_id} ended")
    return 0


def add_parsers(sub) -> None:
    def common(p):
        p.add_argument("--server", default="http://127.0.0.1:8080", help="the node's HTTP URL")
        p.add_argument("--token", required=True)
        p.add_argument("--app-id", type=int, required=True)
        p.add_argument("--room-id", required=True)
        p.add_argument("--user-id", required=True)
        p.add_argument("--stream-id", required=True)

    p = sub.add_parser("rtp-publish", help="open an RTP publish session; prints the ffmpeg command")
    common(p)
    p.add_argument("--video", choices=["VP8", "VP9", "H264", "none"], default="VP8")
    p.add_argument("--audio", choices=["opus", "none"], default="opus")
    p.add_argument("--source", default="testsrc", help="a media file, or 'testsrc' (default)")
    p.set_defaults(func=rtp_publish)

    p = sub.add_parser("rtp-play", help="open an RTP play session; writes the SDP, prints the ffmpeg command")
    common(p)
    p.add_argument("--mode", choices=["l3", "rtc"], default="l3")
    p.add_argument("--host", default="127.0.0.1", help="the address media is sent to")
    p.add_argument("--video-port", type=int)
    p.add_argument("--audio-port", type=int)
    p.add_argument("--sdp", default="play.sdp")
    p.set_defaults(func=rtp_play)

    p = sub.add_parser("rtp-stop", help="end an RTP publish or play session")
    p.add_argument("--server", default="http://127.0.0.1:8080")
    p.add_argument("session_id")
    p.set_defaults(func=rtp_stop)
