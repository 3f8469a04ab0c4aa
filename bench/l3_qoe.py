"""L3 QoE under bad networks: one SDK publisher, RTC and L3 SDK players side by side, every one of
them behind its own seeded impairment proxy (bench/impair.py), per scenario: end-to-end latency,
complete frames, stalls, viewer-to-viewer sync, late joiners' first frame, and a capped player's
latency against its budget. Method: bench/README.md.

    python bench/l3_qoe.py [--scenarios clean,uplink_loss_jitter,...] [--seconds 15] [--players 10]
                           [--late 6] [--seed 1] [--quick] [--json FILE]
    sfu bench qoe ...   (the same)
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime
import json
import os
import platform
import random
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from harness import Procs, raise_fd_limit  # noqa: E402
from impair import ImpairedLink  # noqa: E402

from sfu.media.budget import LatencyBudget  # noqa: E402
from sfu.media.netem import NetEm  # noqa: E402

APP_ID = 515151
SECRET = "qoebench0123456789abcdef01234567"  # 32 characters
ROOM, STREAM = "qoe-room", "qoe-stream"
MODES = ("l3", "rtc")
STALL_S = 0.2  # no new frame for longer than this is a stall
BUDGET_S = LatencyBudget().budget_s  # a player's latency budget (the node's default)
TARGETS = {"complete_ratio": 0.995, "e2e_p99_ms": 400.0, "sync_p99_ms": 20.0, "first_frame_p99_ms": 50.0}
TARGET_SCENARIO = "uplink_loss_jitter"  # where the figures above apply (the "figures to reach")
FIRST_FRAME_TIMEOUT = 3.0  # a late joiner without a frame by then counts as a failure
assert len(SECRET) == 32


@dataclass(frozen=True)
class Scenario:
    """NetEm settings (sfu/media/netem.py keywords) per direction of each link; `impaired` adds one
    player per mode on a link of its own with `down`/`back` (node → player / player → node)."""

    name: str
    about: str
    uplink: dict = field(default_factory=dict)  # publisher → node
    uplink_back: dict = field(default_factory=dict)  # node → publisher (NACK, PLI)
    impaired: str | None = None  # "lossy" | "capped"
    down: dict = field(default_factory=dict)
    back: dict = field(default_factory=dict)


def scenarios(cap_bps: float, cap_queue_s: float) -> dict[str, Scenario]:
    return {s.name: s for s in (
        Scenario("clean", "no impairment anywhere"),
        Scenario("uplink_loss_jitter", "uplink: 5% random loss, 30±30 ms delay (uniform, reordering); back 30 ms",
                 uplink=dict(loss=0.05, delay=0.030, jitter=0.030), uplink_back=dict(delay=0.030)),
        Scenario("uplink_burst_loss", "uplink: 20% burst loss (Gilbert-Elliott, bursts of 5 on average), 20 ms; "
                 "back 20 ms", uplink=dict(burst_loss=(0.05, 0.2), delay=0.020), uplink_back=dict(delay=0.020)),
        Scenario("downlink_loss", "one player per mode: 2% random loss on its downlink, 20 ms each way",
                 impaired="lossy", down=dict(loss=0.02, delay=0.020), back=dict(delay=0.020)),
        Scenario("downlink_cap", f"one player per mode: downlink capped at {cap_bps / 1000:.0f} kbit/s "
                 f"(queue {cap_queue_s * 1000:.0f} ms), 20 ms each way", impaired="capped",
                 down=dict(rate_bps=cap_bps, queue_limit_bytes=max(1500, int(cap_bps / 8 * cap_queue_s)), delay=0.020),
                 back=dict(delay=0.020)),
    )}


# ----- the node, in a process of its own ----------------------------------------------------------

class NodeProc:
    """bench/qoe_node.py (sfu.node.Node on uvloop, as `sfu serve` runs it); counters on SIGUSR1."""

    def __init__(self, procs: Procs, tmp: Path, name: str, sfu_root: Path = ROOT) -> None:
        self.procs, self.tmp, self.name, self.sfu_root = procs, tmp, name, sfu_root
        self.proc: subprocess.Popen | None = None
        self.stats_path = tmp / f"node-{name}-stats.json"
        self.log_path = tmp / f"node-{name}.log"
        self.ws_url = ""

    def start(self) -> str:
        base = random.randrange(42000, 59000, 2)
        cfg = self.tmp / f"node-{self.name}.toml"
        cfg.write_text(f'[[apps]]\napp_id = {APP_ID}\nsecret = "{SECRET}"\n\n[node]\nhost = "127.0.0.1"\n'
                       f'rtp_ports = "{base}-{base + 199}"\n', encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(self.sfu_root), os.environ.get("PYTHONPATH")]))}
        with open(self.log_path, "w") as log:
            self.proc = self.procs.start([sys.executable, str(HERE / "qoe_node.py"), "--config", str(cfg),
                                          "--stats", str(self.stats_path), "--sfu-root", str(self.sfu_root)],
                                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"node did not start: {self.log_path.read_text()[-2000:]}")
        self.ws_url = json.loads(line)["ws_url"]
        return self.ws_url

    def cpu_seconds(self) -> float:
        fields_ = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")

    async def stats(self, timeout: float = 5.0) -> dict:
        self.stats_path.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)
        for _ in range(int(timeout / 0.02)):
            if self.stats_path.exists():
                return json.loads(self.stats_path.read_text())
            await asyncio.sleep(0.02)
        return {"error": "the node wrote no stats"}

    def stop(self) -> list[str]:
        if self.proc is not None:
            self.procs.end(self.proc)
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if any(w in line for w in ("WARNING", "ERROR", "Traceback"))][:20]


# ----- the clients --------------------------------------------------------------------------------

def token(user_id: str) -> str:
    from sfu.token import generate_token04, make_payload

    return generate_token04(APP_ID, user_id, SECRET, 3600, make_payload(), now=time.time())


async def engine_for(ws_url: str, user_id: str):
    from sfu.client import Engine, EngineProfile, RoomConfig, User

    engine = await Engine.create(EngineProfile(app_id=APP_ID, server=ws_url))
    await engine.login_room(ROOM, User(user_id), RoomConfig(token=token(user_id)))
    return engine


@dataclass(eq=False)
class Player:
    name: str
    mode: str
    role: str  # steady | lossy | capped | late
    link: ImpairedLink
    engine: object = None
    frames: dict = field(default_factory=dict)  # capture_ntp -> (completed_at, latency)
    audio: dict = field(default_factory=dict)  # RTP timestamp -> completed_at
    called_at: float | None = None
    first_frame_at: float | None = None

    def on_frame(self, f) -> None:
        if f.kind == "audio":
            self.audio.setdefault(f.timestamp, f.completed_at)
            return
        if f.kind != "video" or f.capture_ntp is None:
            return
        if self.first_frame_at is None:
            self.first_frame_at = f.completed_at
        self.frames.setdefault(f.capture_ntp, (f.completed_at, f.latency))

    async def play(self) -> None:
        from sfu.client import PlayerConfig, ResourceMode

        mode = ResourceMode.ONLY_L3 if self.mode == "l3" else ResourceMode.ONLY_RTC
        self.called_at = asyncio.get_running_loop().time()
        await self.engine.start_playing_stream(STREAM, PlayerConfig(resource_mode=mode, media_route=self.link.route,
                                                                     on_frame=self.on_frame))


class StreamLog:
    """The uplink's tap: what the publisher really sent, before any impairment."""

    def __init__(self, video_pt: int, audio_pt: int) -> None:
        self.video_pt, self.audio_pt = video_pt, audio_pt
        self.first_sent: dict[int, float] = {}  # capture_ntp -> when its first packet entered the uplink
        self.audio_sent: dict[int, float] = {}  # an audio frame's RTP timestamp -> when it entered the uplink
        self.keyframes: set[int] = set()  # capture_ntp of the keyframes
        self.bytes: list[tuple[float, int]] = []

    def tap(self, direction: str, data: bytes, now: float) -> None:
        from sfu.client.media.rtp import header_extensions, read_abs_capture_time
        from sfu.media.codecs import Codec, PayloadError, inspect_payload
        from sfu.rtp.header import RtpParseError, is_rtcp, parse_rtp

        if direction != "up" or is_rtcp(data):
            return
        try:
            h = parse_rtp(data)
        except RtpParseError:
            return
        self.bytes.append((now, len(data)))
        if h.payload_type == self.audio_pt:
            self.audio_sent.setdefault(h.timestamp, now)
        if h.payload_type == self.video_pt:
            capture = read_abs_capture_time(header_extensions(data, h))
            if capture is not None and capture not in self.first_sent:
                self.first_sent[capture] = now
            if capture is not None:
                try:
                    if inspect_payload(Codec.VP8, data[h.header_length:h.header_length + h.payload_length]).keyframe:
                        self.keyframes.add(capture)
                except PayloadError:
                    pass

    def window(self, t0: float, t1: float) -> list[int]:
        return [c for c, t in self.first_sent.items() if t0 <= t < t1]

    def av_offsets(self, p: Player, t0: float, t1: float) -> list[float]:
        """For each audio frame sent in [t0, t1) that `p` got: how much later than it the video frame
        sent nearest to it (within one video frame interval) reached `p`, both counted from when they
        entered the uplink (positive: video behind audio). One publisher: the player's audio
        timestamps are the publisher's (the node keeps its numbering)."""
        video = sorted((t, c) for c, t in self.first_sent.items() if c in p.frames)
        times = [t for t, _ in video]
        out = []
        for ts, sent in self.audio_sent.items():
            got = p.audio.get(ts)
            if got is None or not t0 <= sent < t1 or not times:
                continue
            i = bisect.bisect_left(times, sent)
            near = min((k for k in (i - 1, i) if 0 <= k < len(times)), key=lambda k: abs(times[k] - sent))
            if abs(times[near] - sent) > 0.034:
                continue
            sent_v, c = video[near]
            out.append((p.frames[c][0] - sent_v) - (got - sent))
        return out

    def kbps(self, t0: float, t1: float) -> float:
        return sum(n for t, n in self.bytes if t0 <= t < t1) * 8 / max(t1 - t0, 1e-9) / 1000


# ----- one scenario -------------------------------------------------------------------------------

async def run_scenario(sc: Scenario, args: argparse.Namespace, procs: Procs, tmp: Path, clip: str | None,
                       log) -> dict:
    from sfu.client import Engine, PublisherConfig
    from sfu.client.media.publisher import PAYLOAD_TYPES

    loop = asyncio.get_running_loop()
    seeds = random.Random(f"{args.seed}/{sc.name}")

    def link(up: dict, down: dict, tap=None) -> ImpairedLink:
        return ImpairedLink(NetEm(seeds.randrange(1 << 31), **up), NetEm(seeds.randrange(1 << 31), **down), tap=tap)

    node = NodeProc(procs, tmp, sc.name, args.sfu_root.resolve())
    ws_url = node.start()
    cpu0 = node.cpu_seconds()
    stream = StreamLog(PAYLOAD_TYPES["VP8"], PAYLOAD_TYPES["opus"])
    uplink = link(sc.uplink, sc.uplink_back, tap=stream.tap)
    players: list[Player] = []
    for mode in args.modes:
        players += [Player(f"{mode}-{i}", mode, "steady", link({}, {})) for i in range(args.players)]
        if sc.impaired:
            players.append(Player(f"{mode}-{sc.impaired}", mode, sc.impaired, link(sc.back, sc.down)))
    late = [Player(f"{args.modes[k % len(args.modes)]}-late-{k}", args.modes[k % len(args.modes)], "late",
                   link({}, {})) for k in range(args.late * len(args.modes))]
    publisher = None
    engines = []
    try:
        for p in players + late:
            p.engine = await engine_for(ws_url, p.name)
            engines.append(p.engine)
        await asyncio.gather(*(p.play() for p in players))  # all before the stream exists: it starts with a keyframe
        publisher = await engine_for(ws_url, "publisher")
        engines.append(publisher)
        await publisher.start_publishing_stream(STREAM, config=PublisherConfig(
            video_codec="VP8", source=clip, fps=args.fps, gop_seconds=args.gop, video_bitrate=args.video_kbps * 1000,
            media_route=uplink.route))
        started = loop.time()
        while loop.time() - started < 10 and not all(p.frames for p in players if p.role == "steady"):
            await asyncio.sleep(0.05)
        silent = [p.name for p in players if not p.frames]
        await asyncio.sleep(args.warmup)
        t0 = loop.time()
        t1 = t0 + args.seconds
        rusage0 = resource.getrusage(resource.RUSAGE_SELF)
        cpu_node0 = node.cpu_seconds()
        log(f"  {sc.name}: measuring {args.seconds:.0f} s ({len(players)} players, {len(late)} late joiners)"
            + (f"; no frame yet: {silent}" if silent else ""))

        async def late_join(k: int, p: Player) -> None:
            await asyncio.sleep(max(0.0, t0 + (k + 0.5) * args.seconds / max(1, len(late)) - loop.time()))
            await p.play()
            end = loop.time() + FIRST_FRAME_TIMEOUT
            while p.first_frame_at is None and loop.time() < end:
                await asyncio.sleep(0.01)
            await asyncio.sleep(min(1.0, max(0.0, t1 - loop.time())))
            await p.engine.stop_playing_stream(STREAM)

        await asyncio.gather(*(late_join(k, p) for k, p in enumerate(late)), asyncio.sleep(t1 - loop.time()))
        rusage1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu_node1 = node.cpu_seconds()
        await asyncio.sleep(args.drain)  # frames captured before t1 arrive
        pub_stats = publisher.get_publisher_stats().to_dict()
        node_stats = await node.stats()
    finally:
        await asyncio.gather(*(Engine.destroy(e) for e in engines), return_exceptions=True)
        for lk in [uplink] + [p.link for p in players + late]:
            lk.close()
        problems = node.stop()
    window = stream.window(t0, t1)
    warmup = stream.window(float("-inf"), t0)
    result = {
        "name": sc.name, "about": sc.about,
        "netem": {"uplink": sc.uplink, "uplink_back": sc.uplink_back, "impaired_down": sc.down or None,
                  "impaired_back": sc.back or None},
        "stream": {"frames_in_window": len(window), "kbps": round(stream.kbps(t0, t1), 1),
                   "keyframes_per_s": round(sum(c in stream.keyframes for c in window) / args.seconds, 2),
                   "uplink": {"up": dict(uplink.up.counters), "back": dict(uplink.down.counters)},
                   "publisher": {k: v for k, v in pub_stats.items() if k != "local_addresses"}},
        "results": measure(players, late, window, args, warmup, av=lambda p: stream.av_offsets(p, t0, t1)),
        "node": node_stats, "node_log_problems": problems,
        "cpu": {"node_s_per_s": round((cpu_node1 - cpu_node0) / args.seconds, 3),
                "bench_s_per_s": round((rusage1.ru_utime + rusage1.ru_stime - rusage0.ru_utime - rusage0.ru_stime)
                                       / args.seconds, 3),
                "node_startup_s": round(cpu0, 2), "loadavg": Path("/proc/loadavg").read_text().split()[:3]},
        "players_without_frames": silent,
    }
    for p in players:
        if p.role in ("lossy", "capped"):
            result.setdefault("impaired_links", {})[p.name] = {"down": dict(p.link.down.counters),
                                                               "back": dict(p.link.up.counters)}
    return result


# ----- the figures --------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))]


def dist_ms(values_s: list[float]) -> dict | None:
    if not values_s:
        return None
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50": round(pct(ms, 0.5), 1), "p95": round(pct(ms, 0.95), 1),
            "p99": round(pct(ms, 0.99), 1), "max": round(max(ms), 1)}


def stall_seconds(times: list[float], start: float, end: float) -> float:
    """Time with no new frame for longer than STALL_S (counted past that threshold), between `start` and
    `end` (the window's first and last frame at the steady players of the mode)."""
    times = [start, *sorted(t for t in times if start <= t <= end), end]
    return sum(max(0.0, b - a - STALL_S) for a, b in zip(times, times[1:]))


def behind(p: Player, steady: list[Player], frames: list[int]) -> list[float]:
    """How far behind the steady players of its mode `p` got each frame (its receipt - their median)."""
    out = []
    for c in frames:
        if c in p.frames:
            ref = [s.frames[c][0] for s in steady if c in s.frames]
            if ref:
                out.append(p.frames[c][0] - median(ref))
    return out


def measure(players: list[Player], late: list[Player], window: list[int], args, warmup: list[int],
            av=lambda p: []) -> list[dict]:
    out = []
    steady = {mode: [p for p in players if p.mode == mode and p.role == "steady"] for mode in args.modes}
    for mode in args.modes:
        seen = [p.frames[c][0] for p in steady[mode] for c in window if c in p.frames]
        start, end = (min(seen), max(seen)) if seen else (0.0, args.seconds)
        for role in ("steady", "lossy", "capped"):
            group = [p for p in players if p.mode == mode and p.role == role]
            if not group:
                continue
            lat, got, stalls = [], 0, []
            for p in group:
                mine = [p.frames[c] for c in window if c in p.frames]
                got += len(mine)
                lat += [x for _, x in mine if x is not None]
                stalls.append(stall_seconds([t for t, _ in mine], start, end) / max(end - start, 1e-9))
            r = {"mode": mode, "role": role, "players": len(group),
                 "e2e_ms": dist_ms(lat),
                 "complete_ratio": round(got / (len(window) * len(group)), 5) if window else None,
                 "stall_ratio": round(sum(stalls) / len(stalls), 5), "stall_ratio_max": round(max(stalls), 5)}
            if role == "steady":
                spreads = []
                for c in window:
                    times = [p.frames[c][0] for p in group if c in p.frames]
                    if len(times) >= 2:
                        spreads.append(max(times) - min(times))
                r["sync_spread_ms"] = dist_ms(spreads)
                offsets = [x for p in group for x in av(p)]
                r["av_offset_ms"] = dist_ms(offsets)  # video behind the audio sent with it (signed)
                r["av_offset_abs_ms"] = dist_ms([abs(x) for x in offsets])
                joiners = [p for p in late if p.mode == mode]
                firsts = [p.first_frame_at - p.called_at for p in joiners if p.first_frame_at is not None]
                r["late_joiners"] = len(joiners)
                r["first_frame_ms"] = dist_ms(firsts)
                r["first_frame_failures"] = len(joiners) - len(firsts)
            else:
                over = [x for p in group for x in behind(p, steady[mode], window)]
                r["behind_steady_ms"] = dist_ms(over)
                r["behind_steady_ms_warmup"] = dist_ms([x for p in group for x in behind(p, steady[mode], warmup)])
                r["budget_ms"] = BUDGET_S * 1000
                r["within_budget"] = bool(over) and max(over) <= BUDGET_S
            out.append(r)
    return out


def verdict(report: dict) -> dict:
    """The figures to reach (bench/README.md), read off the target scenario's L3 steady players."""
    sc = next((s for s in report["scenarios"] if s["name"] == TARGET_SCENARIO), None)
    if sc is None:
        return {"scenario": TARGET_SCENARIO, "run": False}
    r = next((r for r in sc["results"] if r["mode"] == "l3" and r["role"] == "steady"), None)
    if r is None:
        return {"scenario": TARGET_SCENARIO, "run": False}
    got = {"complete_ratio": r["complete_ratio"], "e2e_p99_ms": (r["e2e_ms"] or {}).get("p99"),
           "sync_p99_ms": (r["sync_spread_ms"] or {}).get("p99"), "first_frame_p99_ms": (r["first_frame_ms"] or {}).get("p99")}
    met = {k: v is not None and (v >= TARGETS[k] if k == "complete_ratio" else v <= TARGETS[k]) for k, v in got.items()}
    capped = [r for s in report["scenarios"] for r in s["results"] if r["role"] == "capped"]
    return {"scenario": TARGET_SCENARIO, "run": True, "targets": TARGETS, "got": got, "met": met,
            "capped_within_budget": {r["mode"]: r["within_budget"] for r in capped}}


# ----- output -------------------------------------------------------------------------------------

def _d(d: dict | None, keys=("p50", "p95", "p99")) -> str:
    return "/".join(f"{d[k]:.0f}" for k in keys) if d else "-"


def table(report: dict) -> str:
    head = ["scenario", "mode", "players", "e2e p50/p95/p99 ms", "complete %", "stall %", "sync p50/p99 ms",
            "A/V p50 (|p99|) ms", "late first frame p50/p99 ms", "behind steady p99/max ms (budget)", "keyframes/s"]
    rows = []
    for sc in report["scenarios"]:
        for r in sc["results"]:
            rows.append([
                sc["name"], r["mode"], f"{r['players']} {r['role']}", _d(r["e2e_ms"]),
                "-" if r["complete_ratio"] is None else f"{100 * r['complete_ratio']:.2f}",
                f"{100 * r['stall_ratio']:.2f}",
                _d(r.get("sync_spread_ms"), ("p50", "p99")) if r["role"] == "steady" else "",
                (f"{r['av_offset_ms']['p50']:.0f} ({r['av_offset_abs_ms']['p99']:.0f})"
                 if r["role"] == "steady" and r.get("av_offset_ms") else ""),
                (_d(r.get("first_frame_ms"), ("p50", "p99"))
                 + (f" ({r['first_frame_failures']} failed)" if r.get("first_frame_failures") else "")
                 if r["role"] == "steady" else ""),
                (f"{_d(r.get('behind_steady_ms'), ('p99', 'max'))} ({r['budget_ms']:.0f})" if r["role"] != "steady" else ""),
                f"{sc['stream']['keyframes_per_s']:.2f}",
            ])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = [" | ".join(str(x).ljust(w) for x, w in zip(head, widths)), "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in rows]
    v = report.get("verdict") or {}
    if v.get("run"):
        lines.append("")
        lines.append(f"figures at {v['scenario']} (L3): " + ", ".join(
            f"{k} {v['got'][k]} ({'met' if v['met'][k] else 'NOT met'}, target {'>=' if k == 'complete_ratio' else '<='} "
            f"{TARGETS[k]})" for k in TARGETS))
    if v.get("capped_within_budget"):
        lines.append("capped player within its budget: " + ", ".join(
            f"{m}: {'yes' if ok else 'NO'}" for m, ok in v["capped_within_budget"].items()))
    return "\n".join(lines)


def make_clip(tmp: Path, args) -> str | None:
    """`--source testsrc2`: ffmpeg's moving test pattern, rendered once (lossless enough, 4 s, looped by
    the SDK); `pattern`: the SDK's own test pattern (None)."""
    if args.source == "pattern":
        return None
    clip = tmp / "testsrc2.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={args.width}x{args.height}:rate={args.fps:g}", "-t", "4", "-c:v", "libx264",
                    "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p", str(clip)],
                   check=True, capture_output=True, timeout=120)
    return str(clip)


def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
            "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def parse_args(argv: list[str] | None, names: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sfu bench qoe", description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", default=",".join(names), help=f"comma-separated, from {','.join(names)}")
    p.add_argument("--modes", default="l3,rtc", help="player modes side by side (default l3,rtc)")
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per scenario (default 15)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of stream before measuring (default 3)")
    p.add_argument("--drain", type=float, default=1.5, help="seconds to wait for the window's last frames (1.5)")
    p.add_argument("--players", type=int, default=10, help="steady players per mode, clean downlinks (default 10)")
    p.add_argument("--late", type=int, default=6, help="late joiners per mode, spread over the window (default 6)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--source", choices=("testsrc2", "pattern"), default="testsrc2",
                   help="testsrc2: ffmpeg's test pattern rendered to a clip (default); pattern: the SDK's built-in")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--gop", type=float, default=2.0, help="keyframe interval, seconds (default 2)")
    p.add_argument("--video-kbps", type=int, default=800)
    p.add_argument("--cap-kbps", type=float, default=None,
                   help="the capped downlink's rate (default 60%% of the video bitrate + 32 kbit/s of audio)")
    p.add_argument("--cap-queue-ms", type=float, default=500.0, help="its bottleneck queue, ms at its rate (500)")
    p.add_argument("--sfu-root", type=Path, default=ROOT,
                   help="run the node from this source tree (default: this checkout; the clients always are)")
    p.add_argument("--quick", action="store_true", help="3 s windows, 1 s warm-up (a smoke run, not a measurement)")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.drain = min(args.seconds, 3.0), min(args.warmup, 1.0), min(args.drain, 1.0)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.modes or set(args.modes) - set(MODES):
        p.error(f"--modes: from {','.join(MODES)}")
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not args.scenarios or set(args.scenarios) - set(names):
        p.error(f"--scenarios: from {','.join(names)}")
    if args.players < 1 or args.late < 0 or args.seconds <= 0:
        p.error("need --players >= 1, --late >= 0, --seconds > 0")
    return args


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that end what we started


async def amain(args, catalogue: dict[str, Scenario], cap_bps: float) -> dict:
    procs = Procs()
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    report: dict = {"machine": machine_info(), "scenarios": []}
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sfu-qoe-") as tmp_s:
        tmp = Path(tmp_s)
        try:
            clip = make_clip(tmp, args)
            for name in args.scenarios:
                log(f"scenario {name}: {catalogue[name].about}")
                report["scenarios"].append(await run_scenario(catalogue[name], args, procs, tmp, clip, log))
        finally:
            procs.end_all()
    report["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    report["machine"]["seconds"] = round(time.monotonic() - t_start, 1)
    report["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                          if k not in ("json", "quiet")}
    report["settings"].update(cap_bps=cap_bps, budget_ms=BUDGET_S * 1000, stall_ms=STALL_S * 1000)
    report["verdict"] = verdict(report)
    return report


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminated)
    names = list(scenarios(1.0, 1.0))
    args = parse_args(argv, names)
    cap_bps = (args.cap_kbps if args.cap_kbps else 0.6 * (args.video_kbps + 32)) * 1000
    catalogue = scenarios(cap_bps, args.cap_queue_ms / 1000)
    n_players = len(args.modes) * (args.players + 1 + args.late)
    raise_fd_limit(16 * n_players + 256)
    import uvloop

    report = uvloop.run(amain(args, catalogue, cap_bps))
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
