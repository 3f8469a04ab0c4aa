"""Fan-out: one publisher to N players over plain RTP, the node against a C relay measured in the same run.

For each N and mode (RTC, L3): the highest output rate the node sustains (lost + late packets under
0.5 %, no queue growth), latency p50/p99 at half that rate, node CPU per output packet, node memory
per player; the same figures for bench/c_relay.c (the ceiling) and, where installed, for GStreamer's
`udpsrc ! multiudpsink`. Method: bench/README.md.

    python bench/fanout.py [--players 1,10,100,500,1000] [--modes rtc,l3] [--quick] [--json FILE]
    sfu bench fanout ...   (the same)
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness import (FULL, QUICK, Generator, Pinning, Players, Procs, SearchResult, Settings, Step, counts,  # noqa: E402
                     StepRunner, build_tools, raise_fd_limit, rss_bytes, search, wait_for_port)

PLAYERS = (1, 10, 100, 500, 1000)
MODES = ("rtc", "l3")
APP_ID = 424242
SECRET = "fanoutbench0123456789abcdef01234"  # 32 characters
ROOM, STREAM = "bench-room", "bench-stream"
# The L3 node's target delay, fixed ([l3] min_delay = max_delay): each frame is released exactly this
# long after its first packet arrived, so the sink measures L3's latency past that release
L3_HOLD_S = 0.1
# The node's latency is measured at half its own maximum (the figure) and at the ceiling's
# latency rate (half the relay's maximum): the same offered load as the relay's own figure, so the
# two p99s compare like with like. Its figures' keys end in this.
AT_CEILING_RATE = "_at_ceiling_rate"


# ----- targets: what the generator sends to and the players receive from -----------------------

class NodeTarget:
    """`python -m sfu serve` with a config for the bench; one publisher and N players via the HTTP API."""

    label = "node"

    def __init__(self, mode: str, procs: Procs, pinning: Pinning, tmp: Path, root: Path) -> None:
        self.mode, self.procs, self.pinning, self.tmp, self.root = mode, procs, pinning, tmp, root
        self.hold_us = L3_HOLD_S * 1e6 if mode == "l3" else 0.0  # each frame's hold: latency is measured past it
        self.proc: subprocess.Popen | None = None
        self.http: http.client.HTTPConnection | None = None
        self.ingress: tuple[str, int] | None = None
        self.log_path = tmp / f"node-{mode}.log"
        self.log_problems: list[str] = []  # warnings, errors and tracebacks the node logged

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> None:
        base = random.randrange(42000, 59000, 2)
        cfg = self.tmp / f"node-{self.mode}.toml"
        cfg.write_text(
            f'[[apps]]\napp_id = {APP_ID}\nsecret = "{SECRET}"\nmax_players_per_stream = 2000\n'
            f'max_users_per_room = 5000\n\n[node]\nhost = "127.0.0.1"\nrtp_ports = "{base}-{base + 199}"\n\n'
            f'[session]\nrtp_idle_timeout = 3600.0\n'
            + (f'\n[l3]\nmin_delay = {L3_HOLD_S}\nmax_delay = {L3_HOLD_S}\n' if self.mode == "l3" else ""),
            encoding="utf-8")
        log_path = self.log_path
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(self.root), os.environ.get("PYTHONPATH")]))}
        with open(log_path, "w") as log:
            self.proc = self.procs.start(
                [*self.pinning.target(), sys.executable, "-m", "sfu", "serve", "--config", str(cfg), "--port", "0"],
                cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        port = None
        end = time.monotonic() + 30
        while port is None and time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited at start: {log_path.read_text()[-2000:]}")
            for line in log_path.read_text().splitlines():
                if line.strip().startswith("HTTP:"):
                    port = int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
            time.sleep(0.05)
        if port is None:
            raise RuntimeError(f"node did not report its HTTP port: {log_path.read_text()[-2000:]}")
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=15)

    def _post(self, path: str, user_id: str, body: dict) -> dict:
        from sfu.token import generate_token04

        token = generate_token04(APP_ID, user_id, SECRET, 3600, "", now=time.time())
        self.http.request("POST", path, body=json.dumps(body),
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        resp = self.http.getresponse()
        data = resp.read()
        if resp.status != 201:
            raise RuntimeError(f"POST {path} for {user_id}: {resp.status} {data[:300]!r}")
        return json.loads(data)

    def publish(self) -> tuple[str, int]:
        r = self._post("/api/v1/publish", "publisher", {
            "app_id": APP_ID, "room_id": ROOM, "user_id": "publisher", "stream_id": STREAM,
            "tracks": [{"kind": "video", "codec": "VP8", "payload_type": 96}]})
        (t,) = [t for t in r["tracks"] if t["kind"] == "video"]
        self.ingress = (t["host"], t["port"])
        return self.ingress

    def add_players(self, ports: list[int]) -> None:
        for i, port in enumerate(ports):
            self._post("/api/v1/play", f"player-{i}", {
                "app_id": APP_ID, "room_id": ROOM, "user_id": f"player-{i}", "stream_id": STREAM,
                "mode": self.mode, "tracks": [{"kind": "video", "host": "127.0.0.1", "port": port}]})

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        if self.proc is not None:
            self.procs.end(self.proc)
        if self.log_path.exists():
            problems = [line.rstrip() for line in self.log_path.read_text(errors="replace").splitlines()
                        if any(w in line for w in ("WARNING", "ERROR", "CRITICAL", "Traceback", "Error:"))]
            self.log_problems = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])


class RelayTarget:
    """bench/c_relay.c: the ceiling."""

    label = "c_relay"
    hold_us = 0.0

    def __init__(self, exe: str, procs: Procs, pinning: Pinning, tmp: Path) -> None:
        self.exe, self.procs, self.pinning, self.tmp = exe, procs, pinning, tmp
        self.proc: subprocess.Popen | None = None
        self.ingress: tuple[str, int] | None = None
        self.rss_for_players: tuple[int, int] | None = None  # RssAnon before and after loading the destinations

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, ports: list[int]) -> None:
        dests = self.tmp / f"dests-{len(ports)}.txt"
        dests.write_text("".join(f"127.0.0.1 {p}\n" for p in ports))
        self.proc = self.procs.start([*self.pinning.target(), self.exe, "--dests", str(dests), "--max-seconds", "1800"],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().split()  # PORT p RSS before after
        if len(line) != 5 or line[0] != "PORT":
            raise RuntimeError(f"c_relay did not start: {line!r}")
        self.ingress = ("127.0.0.1", int(line[1]))
        self.rss_for_players = (int(line[3]), int(line[4]))

    def stop(self) -> None:
        if self.proc is not None:
            self.procs.end(self.proc)
            self.proc.stdout.close()


class GstTarget:
    """gst-launch-1.0 udpsrc ! multiudpsink: a stock duplicator (it rewrites nothing per player)."""

    label = "gstreamer"
    hold_us = 0.0

    def __init__(self, exe: str, procs: Procs, pinning: Pinning) -> None:
        self.exe, self.procs, self.pinning = exe, procs, pinning
        self.proc: subprocess.Popen | None = None
        self.ingress: tuple[str, int] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, ports: list[int]) -> None:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a free port (gst binds it just after)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        clients = ",".join(f"127.0.0.1:{p}" for p in ports)
        self.proc = self.procs.start(
            [*self.pinning.target(), self.exe, "-q", "udpsrc", "address=127.0.0.1", f"port={port}",
             "buffer-size=4194304", "!", "multiudpsink", f"clients={clients}", "sync=false", "async=false"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        if not wait_for_port(port, 15) or self.proc.poll() is not None:
            raise RuntimeError("gst-launch-1.0 did not start")
        self.ingress = ("127.0.0.1", port)

    def stop(self) -> None:
        if self.proc is not None:
            self.procs.end(self.proc, sig=signal.SIGINT)  # SIGINT: gst-launch's clean stop


# ----- measuring one target at one N ------------------------------------------------------------

class Live:
    """A target measured at one N: started, searched, then paused (SIGSTOP) between its latency runs,
    which alternate with the other targets' (`Bench.latency_rounds`)."""

    def __init__(self, key: str, target, gen: Generator, out: dict) -> None:
        self.key, self.target, self.gen, self.out = key, target, gen, out
        self.rate: float | None = out.get("latency_input_pps")  # half the max input rate; None: nothing passed
        # its latency runs: the suffix of their figures' keys in `out` -> their input rate
        self.rates: dict[str, float] = {"": self.rate} if self.rate else {}
        self.runs: dict[str, list[Step]] = {}
        self.paused = False

    def also_at(self, suffix: str, rate: float) -> None:
        """Latency runs at another input rate too, their figures under keys ending in `suffix`."""
        if self.rate:  # (a target whose search found nothing has no latency run at all)
            self.rates[suffix] = rate

    def pause(self) -> None:
        """A stopped process takes no CPU on the target core while another target is measured there."""
        if not self.paused and self.target.proc.poll() is None:
            os.kill(self.target.pid, signal.SIGSTOP)
            os.waitpid(self.target.pid, os.WUNTRACED)  # (our child) returns once it has stopped
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            if self.target.proc.poll() is None:
                os.kill(self.target.pid, signal.SIGCONT)
                os.waitpid(self.target.pid, os.WCONTINUED)

    def stop(self) -> None:
        self.resume()  # (a stopped process would hold a SIGTERM until continued)
        self.gen.close()
        self.target.stop()


class Bench:
    def __init__(self, settings: Settings, procs: Procs, pinning: Pinning, tools: dict[str, str], tmp: Path,
                 sfu_root: Path, verbose: bool) -> None:
        self.s, self.procs, self.pinning, self.tools, self.tmp = settings, procs, pinning, tools, tmp
        self.sfu_root = sfu_root
        self.runner = StepRunner(tools, pinning, procs, settings)
        self.verbose = verbose
        self._baseline_rss: dict[str, int] = {}
        self._last_max: dict[str, float] = {}  # target label -> max output pps at the previous N
        self.node_log_problems: dict[str, list[str]] = {}  # "<mode>-<N>" -> lines

    def log(self, msg: str) -> None:
        if self.verbose:
            print(msg, file=sys.stderr, flush=True)

    def _warm(self, gen: Generator, players: Players, target) -> Step:
        """Three frames at a low rate through the new players: checks the path, gives the unloaded latency."""
        rate = max(20.0, min(1000.0, 4000.0 / len(players)))
        st = self.runner.run(gen, players, target.ingress, target.pid, target.ingress[1], rate, count=24,
                             hold_us=target.hold_us)
        if st.received < st.expected:
            self.log(f"    warm-up: {st.expected - st.received} of {st.expected} packets did not arrive")
        return st

    def _search(self, key: str, target, gen: Generator, players: Players) -> dict:
        """The search for the maximum (late = more than `late_ms` after the send; past each frame's
        release for a target with a hold: L3); sets the rate the latency runs use, half the maximum."""
        n = len(players)
        start = 0.5 * self._last_max[key] if self._last_max.get(key) else None
        late_us, hold = self.s.late_ms * 1000, target.hold_us

        def step(rate: float) -> Step:
            return self.runner.run(gen, players, target.ingress, target.pid, target.ingress[1], rate, late_us=late_us,
                                   hold_us=hold)

        res: SearchResult = search(step, n, self.s, start, self.log)
        best = res.best
        out = {"max_output_pps": round(best.out_pps, 1) if best else 0.0,
               "input_pps": round(best.in_pps, 2) if best else 0.0,
               "limited_by": res.limited_by, "late_threshold_us": round(late_us),
               "cpu_us_per_packet_at_max": _r(best.cpu_us_per_packet) if best else None,
               "p50_us": None, "p99_us": None, "hold_us": round(hold), "total_p50_us": None, "total_p99_us": None,
               "early": sum(st.early for st in res.steps), "cpu_us_per_packet": None, "core_us_per_packet": None,
               "latency_input_pps": round(best.in_pps / 2, 2) if best else None,
               "rewrite_errors": sum(st.rewrite_errors for st in res.steps),
               "disturbed_steps": sum(st.disturbed for st in res.steps),
               "distinct_ssrcs": max((st.distinct_ssrcs for st in res.steps), default=0),
               "steps": [st.brief() for st in res.steps]}
        if best:
            self._last_max[key] = best.out_pps
        return out

    def _latency_run(self, live: Live, suffix: str, players: Players) -> None:
        """One undisturbed latency run at the live target's rate for `suffix` (a disturbed one is
        repeated: latency and CPU readings suffer most from intruders), after a warm-up that lets a
        target just continued catch up with its timers."""
        target, hold, late_us = live.target, live.target.hold_us, self.s.late_ms * 1000
        n, rate = len(players), live.rates[suffix]
        count = max(self.s.min_count, min(round(rate * self.s.latency_s), self.s.max_out_per_step // n))
        self._warm(live.gen, players, target)
        for attempt in range(1 + self.s.disturbed_repeats):  # bounded
            lat = self.runner.run(live.gen, players, target.ingress, target.pid, target.ingress[1], rate,
                                  count=count, late_us=late_us, hold_us=hold)
            live.out["early"] += lat.early
            again = lat.disturbed and attempt < self.s.disturbed_repeats
            past = (f" past release (hold {hold / 1000:.0f} ms; total p50 {lat.total_p50_us:.0f} us  "
                    f"p99 {lat.total_p99_us:.0f} us; early {lat.early})") if hold else ""
            self.log(f"    {live.key} latency at {rate:.1f} pps in{suffix.replace('_', ' ')}: p50 {lat.p50_us:.0f} us  "
                     f"p99 {lat.p99_us:.0f} us{past}  loss {lat.loss:.4f}  cpu {lat.cpu_us_per_packet or 0:.2f} us/packet"
                     f"{'  (disturbed by other processes: again)' if again else ''}")
            if not again:
                live.runs.setdefault(suffix, []).append(lat)
                return

    def latency_rounds(self, lives: list[Live], players: Players) -> None:
        """Latency and CPU at each target's rates (half its own maximum; `Live.also_at`),
        `latency_runs` rounds with one run per target and rate each, in turn (the order rotating from
        round to round). A p99 over a few seconds is decided by rare stalls of a few ms that hit every
        target alike (on this kind of machine, the virtual CPUs stop now and then); runs of the
        targets alternating within minutes see the same stalls, runs minutes apart need not. Only
        the measured target runs: the others are stopped (SIGSTOP)."""
        measured = [(lv, suffix) for lv in lives for suffix in lv.rates]
        for lv in lives:
            lv.pause()
        for rnd in range(self.s.latency_runs):
            k = rnd % len(measured) if measured else 0
            for lv, suffix in measured[k:] + measured[:k]:
                lv.resume()
                try:
                    self._latency_run(lv, suffix, players)
                finally:
                    lv.pause()
        for lv in lives:
            lv.resume()
            for suffix, runs in lv.runs.items():
                figures = dict(p50_us=_median(r.p50_us for r in runs), p99_us=_median(r.p99_us for r in runs),
                               total_p50_us=_median(r.total_p50_us for r in runs),
                               total_p99_us=_median(r.total_p99_us for r in runs),
                               cpu_us_per_packet=_r(_median(r.cpu_us_per_packet for r in runs)),
                               core_us_per_packet=_r(_median(r.core_us_per_packet for r in runs)),
                               busy=_r(_median(r.target_cpu_util for r in runs)),
                               latency_runs=len(runs), latency_steps=[r.brief() for r in runs],
                               latency_input_pps=round(lv.rates[suffix], 2))
                lv.out.update({key + suffix: value for key, value in figures.items()})

    def node(self, mode: str, players: Players) -> Live:
        """A node in `mode` with the N players, searched; its latency runs are left to `latency_rounds`."""
        n = len(players)
        self.log(f"  node, {mode}, N={n}")
        target = NodeTarget(mode, self.procs, self.pinning, self.tmp, self.sfu_root)
        gen = Generator(self.tools, self.pinning, self.s.size)
        live = None
        try:
            target.start()
            dest = target.publish()
            gen.prime(dest)  # the node latches the publisher's address and caches a keyframe
            time.sleep(0.3)
            before = rss_bytes(target.pid)
            target.add_players(players.ports)
            warm = self._warm(gen, players, target)
            time.sleep(0.3)
            after = rss_bytes(target.pid)
            # L3 holds each frame L3_HOLD_S by design ([l3] min = max delay): its latency, and what
            # counts as late, is measured past each frame's release
            out = self._search(f"node-{mode}", target, gen, players)
            out["unloaded_min_us"] = warm.min_us  # (past release in L3)
            out["early"] += warm.early
            out["rss_bytes_per_player"] = round((after - before) / n, 1)
            out["rss_bytes"] = {"before_players": before, "after_players": after}
            live = Live(f"node-{mode}", target, gen, out)
            return live
        finally:
            if live is None:
                gen.close()
                target.stop()
                self._node_problems(target, n)

    def _node_problems(self, target: NodeTarget, n: int) -> None:
        """What a stopped node logged (warnings, errors, tracebacks), kept for the report."""
        if target.log_problems:
            self.log("    the node logged:\n      " + "\n      ".join(target.log_problems))
            self.node_log_problems[f"{target.mode}-{n}"] = target.log_problems

    def _baseline(self, key: str, make) -> int:
        """RSS of the same program with no destination, after a few packets: what is not per player."""
        if key not in self._baseline_rss:
            target = make()
            gen = Generator(self.tools, self.pinning, self.s.size)
            try:
                target.start([])
                gen.prime(target.ingress)
                time.sleep(0.3)
                self._baseline_rss[key] = rss_bytes(target.pid)
            finally:
                gen.close()
                target.stop()
        return self._baseline_rss[key]

    def other(self, key: str, make, players: Players) -> Live:
        """A program that forwards to the N players (the relay, GStreamer), searched."""
        n = len(players)
        self.log(f"  {key}, N={n}")
        target = make()
        gen = Generator(self.tools, self.pinning, self.s.size)
        live = None
        try:
            target.start(players.ports)
            self._warm(gen, players, target)
            time.sleep(0.3)
            if getattr(target, "rss_for_players", None):  # measured in the process, around adding players
                before, after = target.rss_for_players
            else:  # the same program started with no player
                before, after = self._baseline(key, make), rss_bytes(target.pid)
            out = self._search(key, target, gen, players)
            out["rss_bytes_per_player"] = round((after - before) / n, 1)
            out["rss_bytes"] = {"before_players": before, "after_players": after}
            live = Live(key, target, gen, out)
            return live
        finally:
            if live is None:
                gen.close()
                target.stop()

    def measure(self, players: Players, modes: list[str], relay_make, gst_make=None) -> tuple[dict, dict | None, dict]:
        """Everything at one N: the relay (ceiling), GStreamer if given, the node in each mode. Each is
        searched on its own; GStreamer's latency runs follow its search; the relay's and the node's
        alternate (`latency_rounds`), so that their latency ratios compare like with like. The node
        has latency runs at half its own maximum and at the relay's rate (AT_CEILING_RATE).
        Returns (relay, gstreamer or None, {mode: node})."""
        n = len(players)
        lives: list[Live] = []
        try:
            relay = self.other("c_relay", relay_make, players)
            lives.append(relay)
            relay.pause()
            gst = None
            if gst_make is not None:
                g = self.other("gstreamer", gst_make, players)
                try:
                    self.latency_rounds([g], players)
                finally:
                    g.stop()
                gst = g.out
            nodes = {}
            for mode in modes:
                nodes[mode] = self.node(mode, players)
                lives.append(nodes[mode])
                nodes[mode].pause()
                if relay.rate:  # the ceiling's load too: latency compared at the same input rate
                    nodes[mode].also_at(AT_CEILING_RATE, relay.rate)
            self.latency_rounds(lives, players)
            return relay.out, gst, {m: lv.out for m, lv in nodes.items()}
        finally:
            for lv in lives:
                lv.stop()
                if isinstance(lv.target, NodeTarget):
                    self._node_problems(lv.target, n)


def _median(values) -> float | None:
    """The median of the values that are not None (the lower middle of an even count: a reading that
    was measured), None without any."""
    vals = sorted(v for v in values if v is not None)
    return vals[(len(vals) - 1) // 2] if vals else None


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)


def _ratio(a: float | None, b: float | None) -> float | None:
    return float(f"{a / b:.4g}") if a is not None and b not in (None, 0) else None


# ----- report ------------------------------------------------------------------------------------

def machine_info(pinning: Pinning, gst: str | None, sfu_root: Path) -> dict:
    def first_line(cmd: list[str]) -> str | None:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None

    model = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        from importlib.metadata import version

        uvloop_version = version("uvloop")
    except Exception:
        uvloop_version = None
    try:
        from sfu.rtp.header import IMPLEMENTATION as rtp_impl
    except ImportError:
        rtp_impl = None
    git = first_line(["git", "-C", str(sfu_root), "rev-parse", "--short", "HEAD"]) if (sfu_root / ".git").exists() else None
    dirty = subprocess.run(["git", "-C", str(sfu_root), "status", "--porcelain", "--", "sfu", "native"],
                           capture_output=True, text=True).stdout if git else ""
    return {
        "cpu": model, "cpus_online": os.cpu_count(), "cpus_usable": len(pinning.usable),
        "kernel": platform.release(), "python": platform.python_version(), "uvloop": uvloop_version,
        "rtp_header_impl": rtp_impl, "gcc": first_line(["gcc", "--version"]), "gstreamer": gst,
        "rmem_max": int(Path("/proc/sys/net/core/rmem_max").read_text()),
        "pinning": pinning.describe(), "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "node_source": str(sfu_root), "node_git": f"{git}{' + uncommitted changes' if dirty.strip() else ''}" if git else None,
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _fmt(v: float | None, ref: float | None, unit: str = "", nd: int = 0) -> str:
    if v is None:
        return "n/a"
    s = f"{v:,.{nd}f}{unit}"
    r = _ratio(v, ref)
    return f"{s} ({r:.2f}x)" if r is not None else s


def _busy(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def table(report: dict) -> str:
    ceil = {c["n"]: c for c in report["ceiling"]["results"]}
    gst = {g["n"]: g for g in report["gstreamer"].get("results") or []}
    head = ("N", "mode", "max out pps (x ceiling)", "ceiling pps", "p50 us (x) [1]", "p99 us (x) [1]",
            "p99 us at ceiling's rate (x) [3]", "busy [1] node/ceiling [4]", "total p50/p99 us [2]",
            "CPU us/pkt (x)", "RSS B/player (x)", "GStreamer pps (x)")
    rows = [head]
    for r in report["results"]:
        c = ceil.get(r["n"], {})
        g = gst.get(r["n"])
        rows.append((str(r["n"]), r["mode"], _fmt(r["max_output_pps"], c.get("max_output_pps")),
                     _fmt(c.get("max_output_pps"), None) + ("*" if c.get("limited_by") not in (None, "target") else ""),
                     _fmt(r["p50_us"], c.get("p50_us")), _fmt(r["p99_us"], c.get("p99_us")),
                     _fmt(r.get("p99_us" + AT_CEILING_RATE), c.get("p99_us")),
                     f"{_busy(r.get('busy'))}/{_busy(c.get('busy'))}",
                     f"{_fmt(r.get('total_p50_us'), None)}/{_fmt(r.get('total_p99_us'), None)}"
                     if r.get("total_p50_us") is not None else "n/a",
                     _fmt(r["cpu_us_per_packet"], c.get("cpu_us_per_packet"), nd=2),
                     _fmt(r["rss_bytes_per_player"], c.get("rss_bytes_per_player")),
                     _fmt(g["max_output_pps"], c.get("max_output_pps")) if g else "n/a"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    holds = sorted({r["hold_us"] for r in report["results"] if r.get("hold_us")})
    hold = "/".join(f"{h / 1000:g}" for h in holds) or f"{L3_HOLD_S * 1000:g}"
    notes = ["(x) = the node's figure / the C relay's at the same N: for pps higher is better, for the rest lower is.",
             f"[1] latency at half the max rate. L3: past each frame's release (the node holds every frame {hold} ms "
             "after its first packet arrives, [l3] min_delay = max_delay): receipt - the frame's first send - the "
             "hold. RTC and the ceiling: receipt - send.",
             "[2] receipt - send, the hold included (L3's total; the same as [1] for RTC).",
             "[3] the node's p99 as [1], at the ceiling's input rate (half the ceiling's max): the same offered "
             "load as the ceiling's own figure. [1] puts each target at half its own max, more load for a faster one.",
             "[4] the share of its core each target was busy in its [1] runs (CPU time / wall, median): a node "
             "that is faster than the relay only because it sends a player several packets at once (UDP GSO) "
             "keeps up at half its max only by doing so, near 1, where the relay is about half busy.",
             "* = what stopped the ceiling's search was not the relay (the load tools, or other processes on "
             "the machine): it is a lower bound. Method and caveats: bench/README.md."]
    notes += [f"! {r['mode']} at N = {r['n']}: {r['early']} packets arrived before their frame's release"
              for r in report["results"] if r.get("early")]
    return "\n".join(lines + notes)


# ----- main --------------------------------------------------------------------------------------

def _modes(text: str) -> list[str]:
    out = [m.strip().lower() for m in text.split(",") if m.strip()]
    if not out or any(m not in MODES for m in out):
        raise argparse.ArgumentTypeError(f"modes are {', '.join(MODES)}; got {text!r}")
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sfu bench fanout", description=__doc__.split("\n\n")[0])
    p.add_argument("--players", type=counts, default=list(PLAYERS), help="player counts N (default 1,10,100,500,1000)")
    p.add_argument("--modes", type=_modes, default=list(MODES), help="play modes (default rtc,l3)")
    p.add_argument("--quick", action="store_true", help="short steps and fewer of them (a smoke run, not a measurement)")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    p.add_argument("--late-ms", type=float, default=20.0,
                   help="a packet later than this counts as lost (default 20; in L3, past its frame's release)")
    p.add_argument("--sfu-root", type=Path, default=ROOT,
                   help="run the node from this source tree (default: the checkout holding bench/)")
    p.add_argument("--size", type=int, default=1200, help="RTP packet size in bytes (default 1200)")
    p.add_argument("--no-gstreamer", action="store_true", help="skip GStreamer even if gst-launch-1.0 is installed")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    return p.parse_args(argv)


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that end what we started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    base = QUICK if args.quick else FULL
    settings = Settings(**{**base.__dict__, "late_ms": args.late_ms, "size": args.size})
    pinning = Pinning.choose()
    pinning.pin_self()
    raise_fd_limit(max(args.players) + 256)
    gst = None if args.no_gstreamer else shutil.which("gst-launch-1.0")
    procs = Procs()
    report: dict = {"results": [], "ceiling": {}, "gstreamer": {}, "machine": {}}
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sfu-bench-") as tmp_s:
        tmp = Path(tmp_s)
        try:
            tools = build_tools(tmp)
            gst_version = None
            if gst:
                gst_version = subprocess.run([gst, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
            report["machine"] = machine_info(pinning, gst_version, args.sfu_root.resolve())
            bench = Bench(settings, procs, pinning, tools, tmp, args.sfu_root.resolve(), verbose=not args.quiet)
            ceiling, gst_results = [], []
            for n in args.players:
                players = Players(n)
                try:
                    c, g, nodes = bench.measure(
                        players, args.modes, lambda: RelayTarget(tools["c_relay"], procs, pinning, tmp),
                        (lambda: GstTarget(gst, procs, pinning)) if gst else None)
                    ceiling.append({"n": n, **c})
                    if g is not None:
                        gst_results.append({"n": n, **g, "ratio": _ratio(g["max_output_pps"], c["max_output_pps"])})
                    for mode in args.modes:
                        r = nodes[mode]
                        report["results"].append({
                            "n": n, "mode": mode, "max_output_pps": r["max_output_pps"],
                            "ceiling_pps": c["max_output_pps"], "ratio": _ratio(r["max_output_pps"], c["max_output_pps"]),
                            "p50_us": r["p50_us"], "p99_us": r["p99_us"], "cpu_us_per_packet": r["cpu_us_per_packet"],
                            # at the ceiling's latency rate: the same input rate as the ceiling's p50/p99
                            "p50_us_at_ceiling_rate": r.get("p50_us" + AT_CEILING_RATE),
                            "p99_us_at_ceiling_rate": r.get("p99_us" + AT_CEILING_RATE),
                            "latency_input_pps": r.get("latency_input_pps"),
                            "ceiling_latency_input_pps": c.get("latency_input_pps"),
                            "rss_bytes_per_player": r["rss_bytes_per_player"],
                            # the share of its core each target was busy in its half-max latency runs
                            "busy": r.get("busy"), "ceiling_busy": c.get("busy"),
                            # p50/p99 are past each frame's release when hold_us > 0 (L3); total: receipt - send
                            "hold_us": r["hold_us"], "total_p50_us": r["total_p50_us"],
                            "total_p99_us": r["total_p99_us"], "early": r["early"],
                            "ratios": {"p50": _ratio(r["p50_us"], c["p50_us"]), "p99": _ratio(r["p99_us"], c["p99_us"]),
                                       "p99_at_ceiling_rate": _ratio(r.get("p99_us" + AT_CEILING_RATE), c["p99_us"]),
                                       "cpu": _ratio(r["cpu_us_per_packet"], c["cpu_us_per_packet"]),
                                       "core": _ratio(r["core_us_per_packet"], c["core_us_per_packet"]),
                                       "rss": _ratio(r["rss_bytes_per_player"], c["rss_bytes_per_player"])},
                            "detail": r})
                finally:
                    players.close()
        finally:
            procs.end_all()
    report["ceiling"] = {"tool": "bench/c_relay.c (recvmmsg, per-destination SSRC/seq rewrite, sendmmsg)",
                         "results": ceiling}
    report["gstreamer"] = ({"available": True, "pipeline": "udpsrc ! multiudpsink (no per-player rewrite)",
                            "results": gst_results} if gst else
                           {"available": False, "status": "n/a",
                            "reason": "skipped (--no-gstreamer)" if args.no_gstreamer else "gst-launch-1.0 not installed",
                            "results": []})
    report["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    report["machine"]["seconds"] = round(time.monotonic() - t_start, 1)
    report["settings"] = {**settings.__dict__, "quick": args.quick, "loss_budget": 0.005}
    report["node_log_problems"] = bench.node_log_problems
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
