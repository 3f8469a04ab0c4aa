"""What bench scripts share: the C load tools, core pinning, /proc readings, one measured step, the rate search.

A *step* sends `count` RTP packets at a fixed input rate through a target (the node, the C relay,
GStreamer) to N players and reads back what the players got (`StepRunner.run`). `search` finds the
highest input rate whose step passes (`Step.passed`). Nothing here knows what the target is: it
gives its PID (CPU, memory) and the UDP address to send to.
"""

from __future__ import annotations

import math
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
C_TOOLS = ("rtp_gen", "rtp_sink", "c_relay")
LOSS_BUDGET = 0.005  # lost + late, as a fraction of the packets the players should have got
MAX_FRAME_PACKETS = 8  # packets in a video frame at high rates (smaller frames at low rates: see frame_packets)
FRAME_SPAN = 0.004  # seconds a frame's packets may span at a step's pacing, as a sender's pacer would


# ----- processes ---------------------------------------------------------------------------------

def _die_with_parent() -> None:
    """In a child before exec: SIGTERM it when this script dies, even by SIGKILL (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


class Procs:
    """Every process a bench starts, so that each is ended by its own PID, and only those; each also
    gets SIGTERM from the kernel if the bench itself dies first."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []

    def start(self, argv: list[str], **kw) -> subprocess.Popen:
        p = subprocess.Popen(argv, preexec_fn=_die_with_parent, **kw)
        self._procs.append(p)
        return p

    def end(self, p: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
        if p.poll() is None:
            p.send_signal(sig)  # Popen signals its own child's PID, nothing else
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if p in self._procs:
            self._procs.remove(p)

    def end_all(self) -> None:
        for p in list(self._procs):
            self.end(p, timeout=3.0)


def build_tools(out_dir: Path, names: tuple[str, ...] = C_TOOLS) -> dict[str, str]:
    """gcc -O2 each bench/<name>.c into out_dir; returns name -> executable path."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise SystemExit("bench: needs gcc (or cc) to build the C load tools and relay")
    paths = {}
    for name in names:
        exe = out_dir / name
        subprocess.run([gcc, "-O2", "-Wall", "-o", str(exe), str(HERE / f"{name}.c")], check=True,
                       capture_output=True, text=True, timeout=120)
        paths[name] = str(exe)
    return paths


def raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# ----- pinning -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pinning:
    """Load tools (generator, sink, this script) on `load_cpu`; the target alone on `target_cpu`."""

    load_cpu: int | None
    target_cpu: int | None
    usable: tuple[int, ...] = ()  # the cores this script could use before it pinned itself

    @classmethod
    def choose(cls) -> Pinning:
        cpus = tuple(sorted(os.sched_getaffinity(0)))
        if len(cpus) < 2:
            return cls(None, None, cpus)
        return cls(cpus[0], cpus[1], cpus)

    def _prefix(self, cpu: int | None) -> list[str]:
        if cpu is None:
            return []
        taskset = shutil.which("taskset")
        if taskset is None:
            raise SystemExit("bench: needs taskset (util-linux) to pin processes to cores")
        return [taskset, "-c", str(cpu)]

    def load(self) -> list[str]:
        return self._prefix(self.load_cpu)

    def target(self) -> list[str]:
        return self._prefix(self.target_cpu)

    def pin_self(self) -> None:
        if self.load_cpu is not None:
            os.sched_setaffinity(0, {self.load_cpu})

    def describe(self) -> str:
        if self.load_cpu is None:
            return "not pinned (fewer than 2 cores available)"
        return (f"target (node, C relay or GStreamer) alone on core {self.target_cpu}; generator, sink "
                f"and this script on core {self.load_cpu} (taskset)")


# ----- /proc -------------------------------------------------------------------------------------

_TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def sched(pid: int) -> tuple[int, int]:
    """(CPU time, time runnable but waiting for a core) of every thread of `pid` so far, in ns
    (/proc/PID/task/*/schedstat; without it, CPU time from /proc/PID/stat and no waiting time)."""
    cpu = wait = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    run, delay, _ = f.read().split()
                cpu, wait = cpu + int(run), wait + int(delay)
            except (FileNotFoundError, ProcessLookupError):
                pass  # a thread that ended
        if cpu:
            return cpu, wait
    except FileNotFoundError:
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int((int(fields[11]) + int(fields[12])) * _TICK_NS), 0  # utime + stime


def core_times(cpu: int | None) -> tuple[int, int, int] | None:
    """(task time, irq + softirq time, total) of one core so far, in ticks (/proc/stat). Task time
    (user, nice, system, steal) is what processes ran there; irq and softirq include the kernel's
    work on loopback to deliver what the target sends, which its own CPU time leaves out."""
    if cpu is None:
        return None
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:9]]
                tasks, irq = v[0] + v[1] + v[2] + v[7], v[5] + v[6]
                return tasks, irq, tasks + irq + v[3] + v[4]
    return None


def rss_bytes(pid: int) -> int:
    """Resident anonymous memory (RssAnon: heap and arenas; file-backed pages such as shared libraries,
    which come and go with what was touched, left out)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no RssAnon for {pid}")


def udp_sockets() -> dict[int, tuple[int, int, int]]:
    """inode -> (local port, rx_queue bytes, drops) for every IPv4 UDP socket (/proc/net/udp)."""
    out = {}
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            parts = line.split()
            port = int(parts[1].rsplit(":", 1)[1], 16)
            rxq = int(parts[4].split(":")[1], 16)
            out[int(parts[9])] = (port, rxq, int(parts[12]))
    return out


def inode_of_port(port: int) -> int | None:
    for inode, (p, _, _) in udp_sockets().items():
        if p == port:
            return inode
    return None


def wait_for_port(port: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if inode_of_port(port) is not None:
            return True
        time.sleep(0.05)
    return False


# ----- sockets -----------------------------------------------------------------------------------

def udp_socket(rcvbuf: int = 8 << 20) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE: past rmem_max when allowed
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind(("127.0.0.1", 0))
    return s


class Players:
    """N player sockets, bound once and handed to each sink run, so the players' ports never change."""

    def __init__(self, n: int) -> None:
        self.socks = [udp_socket() for _ in range(n)]
        self.ports = [s.getsockname()[1] for s in self.socks]
        self.fds = [s.fileno() for s in self.socks]
        self.inodes = {os.fstat(fd).st_ino for fd in self.fds}

    def __len__(self) -> int:
        return len(self.socks)

    def drops(self, table: dict[int, tuple[int, int, int]]) -> int:
        return sum(table[i][2] for i in self.inodes if i in table)

    def close(self) -> None:
        for s in self.socks:
            s.close()


class Generator:
    """One publisher: a socket bound once (a node latches its first source address), paced by rtp_gen."""

    def __init__(self, tools: dict[str, str], pinning: Pinning, size: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.tools, self.pinning, self.size = tools, pinning, size
        self.next = 0  # the global packet number: sequence numbers and frames continue across steps

    def argv(self, dest: tuple[str, int], rate: float, count: int, run: int, max_seconds: float) -> list[str]:
        batch = max(1, min(64, int(rate / 2000)))  # batches >= 0.5 ms apart; 1 packet at low rates
        return [*self.pinning.load(), self.tools["rtp_gen"], "--fd", str(self.sock.fileno()),
                "--dest", f"{dest[0]}:{dest[1]}", "--rate", f"{rate:.3f}", "--count", str(count),
                "--max-seconds", f"{max_seconds:.3f}", "--size", str(self.size), "--batch", str(batch),
                "--run", str(run), "--first", str(self.next), "--frame-packets", str(frame_packets(rate))]

    def prime(self, dest: tuple[str, int], frames: int = 2) -> None:
        """A few whole frames, the first a keyframe at a stream's start, stamped for no run: a node latches
        the publisher's address and caches a keyframe; a new player starts from it."""
        count = frames * frame_packets(1000.0)
        subprocess.run(self.argv(dest, 1000.0, count, 0, 5.0), pass_fds=[self.sock.fileno()], check=True,
                       capture_output=True, timeout=15, preexec_fn=_die_with_parent)
        self.next += count

    def close(self) -> None:
        self.sock.close()


# ----- one step ----------------------------------------------------------------------------------

def frame_packets(rate: float) -> int:
    """Packets per frame at `rate`: up to 8, and few enough that a frame's packets leave within 4 ms
    (a real sender's pacer sends a frame in a few ms; spread over longer, an L3 node would rightly
    find it incomplete at its release time)."""
    return max(1, min(MAX_FRAME_PACKETS, int(rate * FRAME_SPAN)))


def whole_frames(count: float, per_frame: int) -> int:
    """`count` packets rounded up to whole frames (an L3 node holds a frame until its last packet)."""
    return max(1, math.ceil(count / per_frame)) * per_frame


@dataclass
class Settings:
    step_s: float  # a step's nominal length
    max_step_s: float  # its hard bound in send time
    min_count: int  # fewest input packets in a step
    max_out_per_step: int  # most output packets in a step (bounds time and the sink's bitmap)
    bisect_steps: int  # bisections after the bracket: its factor 2 becomes 2 ** (1 / 2 ** bisect_steps)
    resolution: float  # ... and they stop once the best pass and the lowest failure are closer than this ratio
    retries: int  # a failed step is run again this many times; it passes if any run passes
    disturbed_repeats: int  # ... and this many more while other processes visibly took the cores
    max_steps: int  # bound on the search's rates tried (growing, shrinking and bisecting together)
    latency_s: float
    latency_runs: int  # latency runs at half the max rate (undisturbed ones); each figure is their median
    drain_ms: float
    start_out_pps: float
    min_in_pps: float
    max_in_pps: float
    late_ms: float
    size: int

    def count_for(self, in_rate: float, n: int) -> int:
        count = max(self.min_count, round(in_rate * self.step_s))
        count = min(count, int(in_rate * self.max_step_s), self.max_out_per_step // max(n, 1))
        return whole_frames(count, frame_packets(in_rate))


# FULL: 6 bisections leave the limit between rates 2 ** (1 / 64) = 1.1 % apart (4 left 4.4 %: one
# step then decided 0.88x or 0.92x); 2 rates more per search. Bracketing takes at most ~9 rates
# (5 to 1280 input packets/s at N = 1000), so a search stays within ~15 of max_steps
FULL = Settings(step_s=1.0, max_step_s=4.0, min_count=40, max_out_per_step=3_000_000, bisect_steps=6, resolution=1.01,
                retries=2, disturbed_repeats=3, max_steps=20, latency_s=3.0, latency_runs=5, drain_ms=200, start_out_pps=4000, min_in_pps=5,
                max_in_pps=2_000_000, late_ms=20.0, size=1200)
QUICK = Settings(step_s=0.25, max_step_s=1.0, min_count=20, max_out_per_step=400_000, bisect_steps=1, resolution=1.02,
                 retries=0, disturbed_repeats=0, max_steps=10, latency_s=0.5, latency_runs=1, drain_ms=100, start_out_pps=4000, min_in_pps=10,
                 max_in_pps=2_000_000, late_ms=20.0, size=1200)


@dataclass
class Step:
    in_pps: float  # asked for
    sent: int
    achieved_in_pps: float
    expected: int  # sent x players
    received: int
    late: int
    loss: float  # (expected - received) / expected
    late_frac: float
    late_threshold_us: float
    out_pps: float  # received / the generator's send time
    hold_us: float  # the target's hold per frame (an L3 node's fixed target delay), else 0: latencies are past it
    min_us: float
    p50_us: float  # receipt - send; with a hold, receipt - (the frame's first send + hold): past its release
    p99_us: float
    total_p50_us: float  # receipt - send, the hold included (= p50_us without one)
    total_p99_us: float
    early: int  # packets that arrived before their frame's release (with a hold; the target must not)
    early_max_us: float  # ... the earliest, that long before
    q1_p50_us: float
    q4_p50_us: float
    growth_us: float  # q4_p50 - q1_p50: the latency added during the step
    queue_growth: bool
    target_cpu_ns: int  # the target process's CPU time (all threads) from the start of sending to the end of the step
    target_cpu_util: float  # ... over the send interval
    cpu_us_per_packet: float | None  # target_cpu_ns / received
    core_util: float | None  # the target's core busy (softirq included) over the send interval; None unpinned
    core_us_per_packet: float | None  # the target core's busy time / received
    intruder_util: float | None  # other processes' share of the target's core over the send interval (should be ~0)
    load_intruder_util: float | None  # ... of the load core (besides generator, sink and this script)
    load_cpu_util: float  # generator + sink CPU time over wall time: near 1 means the load core was full
    target_wait_ms: float  # the target runnable but not running (another task had its core: ksoftirqd, or an intruder)
    load_wait_ms: float  # the same for generator + sink
    sink_drops: int  # packets the players' sockets dropped (the sink too slow: not the target's fault)
    ingress_drops: int  # packets the target's ingress socket dropped (the target too slow)
    rewrite_errors: int  # per player: SSRC changes + sequence-number jumps (a node that drops a frame renumbers)
    keyframe_requests: int  # PLI/FIR the generator got (and answered with a keyframe)
    distinct_ssrcs: int
    generator_bound: bool
    passed: bool
    attempt: int = 0  # 0, or n for the n-th repeat of a failed step
    # how long datagrams waited in the players' sockets for the sink (its read - the kernel's timestamp,
    # which latency is measured to): the load core's delay, not the target's
    sink_wait_p99_us: float = 0.0
    unstamped: int = 0  # datagrams without a kernel timestamp (their receipt is the read's time)

    @property
    def disturbed(self) -> bool:
        """Other processes took >= 5 % of the target's core or >= 10 % of the load core."""
        return (self.intruder_util or 0) >= 0.05 or (self.load_intruder_util or 0) >= 0.10

    def brief(self) -> dict:
        return {**{k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()},
                "disturbed": self.disturbed}


class StepRunner:
    def __init__(self, tools: dict[str, str], pinning: Pinning, procs: Procs, settings: Settings) -> None:
        self.tools, self.pinning, self.procs, self.settings = tools, pinning, procs, settings
        self._run = int(time.time()) & 0xFFFF0000

    def run(self, gen: Generator, players: Players, dest: tuple[str, int], target_pid: int,
            ingress_port: int | None, in_rate: float, count: int | None = None, late_us: float | None = None,
            hold_us: float | None = None) -> Step:
        """`count` packets (default: `Settings.count_for`) at `in_rate`; late = later than `late_us`
        (default: `Settings.late_ms`). `hold_us`: the target holds each frame this long after its first
        packet arrives (an L3 node with a fixed target delay); latency (and lateness) is then measured
        past that release: receipt - the frame's first packet's send - hold."""
        s = self.settings
        n = len(players)
        count = whole_frames(count or s.count_for(in_rate, n), frame_packets(in_rate))
        late_us = s.late_ms * 1000 if late_us is None else late_us
        self._run += 1
        send_s = count / in_rate
        sink = self.procs.start(
            [*self.pinning.load(), self.tools["rtp_sink"], "--fds", ",".join(map(str, players.fds)),
             "--run", str(self._run), "--count", str(count), "--late-us", f"{late_us:.0f}",
             "--drain-ms", str(s.drain_ms), "--max-drain-s", "3", "--deadline-s", f"{send_s * 2 + 10:.1f}",
             *(["--hold-us", f"{hold_us:.0f}"] if hold_us else [])],
            pass_fds=players.fds, stdout=subprocess.PIPE, text=True)
        try:
            ready, _, _ = select.select([sink.stdout], [], [], 15)
            if not ready or sink.stdout.readline().strip() != "READY":
                raise RuntimeError("rtp_sink did not start")
            ingress = inode_of_port(ingress_port) if ingress_port else None
            before = udp_sockets()
            children0, self0 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
            lcore0 = core_times(self.pinning.load_cpu)
            core0, (cpu0, wait0), t0 = core_times(self.pinning.target_cpu), sched(target_pid), time.monotonic()
            gen_out = subprocess.run(gen.argv(dest, in_rate, count, self._run, s.max_step_s * 1.5 + 1),
                                     pass_fds=[gen.sock.fileno()], capture_output=True, text=True,
                                     preexec_fn=_die_with_parent,
                                     timeout=s.max_step_s * 1.5 + 10, check=True)
            core_mid, (cpu_mid, _), t_mid = core_times(self.pinning.target_cpu), sched(target_pid), time.monotonic()
            g = _json_line(gen_out.stdout)
            gen.next = g["next"]
            sink.send_signal(signal.SIGUSR1)
            out, _ = sink.communicate(timeout=send_s * 2 + 20)
            r = _json_line(out)
        finally:
            self.procs.end(sink, signal.SIGKILL)
        core1, (cpu1, wait1) = core_times(self.pinning.target_cpu), sched(target_pid)
        after = udp_sockets()
        # generator + sink CPU (both exited and waited for now) over the send interval: the sink's
        # drain after it is idle waiting
        children1, self1 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
        lcore1, t1 = core_times(self.pinning.load_cpu), time.monotonic()
        load_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
        self_cpu = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
        load_intruder = (max(0.0, (lcore1[0] - lcore0[0]) * _TICK_NS / 1e9 - load_cpu - self_cpu) / (t1 - t0)
                         if lcore0 else None)
        send_wall = max(t_mid - t0, 1e-6)
        sent, expected, received = g["sent"], g["sent"] * n, r["received"]
        loss = (expected - received) / expected if expected else 1.0
        late_frac = r["late"] / expected if expected else 0.0
        growth = r["q4_p50_us"] - r["q1_p50_us"] if r["q1_p50_us"] >= 0 and r["q4_p50_us"] >= 0 else 0.0
        queue_growth = growth > max(2000.0, 0.5 * max(r["q1_p50_us"], 0))
        gen_bound = g["achieved_pps"] < 0.95 * in_rate
        ing = 0
        if ingress is not None and ingress in before and ingress in after:
            ing = after[ingress][2] - before[ingress][2]
        cpu = cpu1 - cpu0
        return Step(
            in_pps=in_rate, sent=sent, achieved_in_pps=g["achieved_pps"], expected=expected, received=received,
            late=r["late"], loss=loss, late_frac=late_frac, late_threshold_us=late_us,
            out_pps=received / g["elapsed_s"] if g["elapsed_s"] > 0 else 0.0,
            hold_us=r["hold_us"], min_us=r["min_us"], p50_us=r["p50_us"], p99_us=r["p99_us"],
            total_p50_us=r["total_p50_us"], total_p99_us=r["total_p99_us"], early=r["early"],
            early_max_us=r["early_max_us"], q1_p50_us=r["q1_p50_us"], q4_p50_us=r["q4_p50_us"],
            growth_us=growth, queue_growth=queue_growth, target_cpu_ns=cpu,
            target_cpu_util=(cpu_mid - cpu0) / 1e9 / send_wall,
            cpu_us_per_packet=cpu / 1000 / received if received else None,
            core_util=(_busy(core_mid) - _busy(core0)) / max(core_mid[2] - core0[2], 1) if core0 else None,
            core_us_per_packet=(_busy(core1) - _busy(core0)) * _TICK_NS / 1000 / received if core0 and received else None,
            intruder_util=max(0.0, (core_mid[0] - core0[0]) * _TICK_NS / 1e9 / send_wall - (cpu_mid - cpu0) / 1e9 / send_wall)
            if core0 else None,
            load_intruder_util=load_intruder,
            load_cpu_util=min(load_cpu / send_wall, 1.0),
            target_wait_ms=(wait1 - wait0) / 1e6, load_wait_ms=(g.get("wait_ns", 0) + r.get("wait_ns", 0)) / 1e6,
            sink_drops=players.drops(after) - players.drops(before), ingress_drops=ing,
            rewrite_errors=r["ssrc_changes"] + r["seq_errors"], distinct_ssrcs=r["distinct_ssrcs"],
            keyframe_requests=g.get("keyframe_requests", 0),
            generator_bound=gen_bound, sink_wait_p99_us=r.get("sink_wait_p99_us", 0.0), unstamped=r.get("unstamped", 0),
            passed=expected > 0 and loss + late_frac < LOSS_BUDGET and not queue_growth,
        )


def _busy(core: tuple[int, int, int]) -> int:
    return core[0] + core[1]


def _json_line(text: str) -> dict:
    import json

    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON in tool output: {text[-300:]!r}")


# ----- the search --------------------------------------------------------------------------------

@dataclass
class SearchResult:
    best: Step | None
    steps: list[Step] = field(default_factory=list)
    limited_by: str = "target"  # or another answer of `blame`, or "search bound"


def search(step: Callable[[float], Step], n: int, settings: Settings, start_out_pps: float | None = None,
           log: Callable[[str], None] = lambda s: None) -> SearchResult:
    """The highest input rate whose step passes: double until a step fails, halve until one passes,
    then bisect (geometric midpoints) between the best pass and the lowest failure, `bisect_steps`
    times or until they are within `resolution` of each other. A failed step is repeated
    `settings.retries` times (a shared machine has hiccups that are not the target's).

    Bounded: at most `settings.max_steps` rates, each tried at most 1 + retries + disturbed_repeats
    times, each try bounded in packets and seconds.
    """
    s = settings
    min_in = s.min_in_pps
    rate = max(min_in, min(s.max_in_pps, (start_out_pps or s.start_out_pps) / n))
    res = SearchResult(None)
    lo: float | None = None
    hi: float | None = None

    def do(r: float) -> Step:
        repeats = disturbed = 0
        for attempt in range(1 + s.retries + s.disturbed_repeats):
            st = step(r)
            st.attempt = attempt
            res.steps.append(st)
            log_step(st, attempt)
            if st.passed or (st.received == 0 and not st.disturbed):
                break  # (nothing arrived at all: the target is not forwarding, a repeat will not say more)
            if st.disturbed and disturbed < s.disturbed_repeats:
                disturbed += 1  # another process took the cores: this try says nothing about the target
            elif repeats < s.retries:
                repeats += 1
            else:
                break
        if st.passed and (res.best is None or st.out_pps > res.best.out_pps):
            res.best = st
        return st

    def log_step(st: Step, attempt: int) -> None:
        r = st.in_pps
        log(f"    in {r:>10.1f} pps  out {st.out_pps:>10.0f} pps  loss {st.loss:.4f}  late {st.late_frac:.4f}  "
            f"p50 {st.p50_us:>7.0f} us{' past release' if st.hold_us else ''}  growth {st.growth_us:>7.0f} us  "
            f"{f'early {st.early}  ' if st.early else ''}busy: target {st.target_cpu_util:.2f} "
            f"its core {st.core_util if st.core_util is not None else float('nan'):.2f} "
            f"load {st.load_cpu_util:.2f}  others: {_f(st.intruder_util)} {_f(st.load_intruder_util)}  "
            f"waited: target {st.target_wait_ms:.0f} ms load {st.load_wait_ms:.0f} ms  "
            f"drops: in {st.ingress_drops} out {st.sink_drops}  "
            f"{'pass' if st.passed else 'FAIL'}{'  (generator-bound)' if st.generator_bound else ''}"
            f"{'  (disturbed)' if st.disturbed else ''}{f'  (repeat)' if attempt else ''}")

    # grow or shrink to bracket the limit
    tried = 0
    while tried < s.max_steps:
        tried += 1
        st = do(rate)
        if st.passed:
            lo = rate
            if st.generator_bound:
                res.limited_by = "generator"
                return res
            if hi is not None:
                break
            if rate >= s.max_in_pps:
                res.limited_by = "search bound"
                return res
            rate = min(s.max_in_pps, rate * 2)
        else:
            hi = rate
            if lo is not None:
                break
            if rate <= min_in:
                return res  # not even the slowest rate passes
            rate = max(min_in, rate / 2)
    # bisect
    for _ in range(s.bisect_steps):
        if lo is None or hi is None or tried >= s.max_steps or hi / lo < s.resolution:
            break
        mid = math.sqrt(lo * hi)
        tried += 1
        if do(mid).passed:
            lo = mid
        else:
            hi = mid
    # who failed first above the best pass: the target, or the load tools
    above = [st for st in res.steps if not st.passed and (res.best is None or st.in_pps > res.best.in_pps)]
    if above:
        res.limited_by = blame(min(above, key=lambda st: st.in_pps))
    return res


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def blame(st: Step) -> str:
    """Why a step failed: "other processes" (they took the cores, `Step.disturbed`), "generator" (it
    could not send at the rate), "sink" (the players' sockets
    overflowed), "load core" (generator and sink kept their core >= 85 % busy while the target's
    had room: their reading of latency is in doubt), "target's choice" (it dropped whole frames
    with CPU to spare: a policy such as a per-player rate limit, not its capacity), else "target"."""
    if st.disturbed:
        return "other processes"
    if st.generator_bound:
        return "generator"
    if st.sink_drops and st.sink_drops >= 0.5 * (st.expected - st.received):
        return "sink"
    target = st.core_util if st.core_util is not None else st.target_cpu_util
    if st.load_cpu_util >= 0.85 and target < 0.85:
        return "load core"
    if target < 0.85 and st.rewrite_errors and not st.ingress_drops:
        return "target's choice"  # it dropped frames with CPU to spare: a rate limit, not its capacity
    return "target"


def print_table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A plain text table on stdout: a header and rows of strings, columns padded to fit."""
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(head)]
    print(" | ".join(c.ljust(w) for c, w in zip(head, widths)))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)))


def counts(text: str) -> list[int]:
    """argparse type: a comma-separated list of whole numbers >= 1 (player or stream counts)."""
    import argparse

    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not out or any(n < 1 for n in out):
        raise argparse.ArgumentTypeError(f"counts must be >= 1, got {text!r}")
    return out


def median_run(runs: list[dict], key: str) -> dict:
    """The run whose `key` is the median of the runs' (the upper middle of an even count)."""
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]
