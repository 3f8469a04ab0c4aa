"""bench/fanout.py's latency rounds: the targets' latency runs alternate, the order rotating each
round, and only the target being measured runs (the others are stopped with SIGSTOP).

The targets are real processes (`sleep`), their state read from /proc while each run is under way;
the step runner is replaced by one that records what it was asked to run and answers with readings.
"""

import signal
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import fanout  # noqa: E402
from harness import FULL, Procs, Settings  # noqa: E402


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


class _Target:
    hold_us = 0.0

    def __init__(self, procs: Procs, port: int) -> None:
        self.proc = procs.start(["sleep", "60"])
        self.ingress = ("127.0.0.1", port)
        self.stopped = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(5)  # a process left stopped would hold the SIGTERM and this would time out
        self.stopped = True


class _Gen:
    closed = False

    def close(self) -> None:
        self.closed = True


class _Runner:
    """Records each run: the target's PID, its count, and the state of every target at that moment."""

    def __init__(self, pids: list[int], p99s: dict[int, list[float]]) -> None:
        self.pids, self.p99s, self.calls, self.rates = pids, p99s, [], []

    def run(self, gen, players, dest, pid, port, rate, count=None, late_us=None, hold_us=None):
        states = {p: _state(p) for p in self.pids}
        self.calls.append((pid, count, states))
        if count != 24:
            self.rates.append((pid, rate))
        p99 = self.p99s[pid].pop(0) if count != 24 else 1.0  # (24 packets: a warm-up)
        brief = {"p99_us": p99}
        return types.SimpleNamespace(p50_us=p99 / 10, p99_us=p99, total_p50_us=p99 / 10, total_p99_us=p99,
                                     early=0, loss=0.0, cpu_us_per_packet=2.0, core_us_per_packet=2.5,
                                     target_cpu_util=p99 / 10_000,  # (a busier run: a longer p99, here)
                                     disturbed=False, received=24 * len(players), expected=24 * len(players),
                                     min_us=1.0, brief=lambda: brief)


def test_latency_runs_alternate_between_targets_with_the_others_stopped(tmp_path):
    procs = Procs()
    settings = Settings(**{**FULL.__dict__, "latency_runs": 3})
    bench = fanout.Bench(settings, procs, pinning=None, tools={}, tmp=tmp_path, sfu_root=ROOT, verbose=False)
    try:
        targets = [_Target(procs, 5000 + i) for i in range(3)]
        lives = [fanout.Live(f"t{i}", t, _Gen(), {"latency_input_pps": 100.0, "early": 0})
                 for i, t in enumerate(targets)]
        pids = [t.pid for t in targets]
        p99s = {pid: [1000.0 * (i + 1) + r for r in (30, 10, 20)] for i, pid in enumerate(pids)}
        bench.runner = _Runner(pids, p99s)

        bench.latency_rounds(lives, players=list(range(10)))

        measured = [(pid, states) for pid, count, states in bench.runner.calls if count != 24]
        a, b, c = pids
        assert [pid for pid, _ in measured] == [a, b, c, b, c, a, c, a, b]
        for pid, _, states in bench.runner.calls:  # warm-ups too
            assert states[pid] != "T", states
            assert all(states[o] == "T" for o in pids if o != pid), states
        assert all(_state(p) != "T" for p in pids)  # all continued at the end
        for i, lv in enumerate(lives):  # the median of each target's three runs, all kept
            assert lv.out["p99_us"] == 1000.0 * (i + 1) + 20
            assert lv.out["busy"] == round((1000.0 * (i + 1) + 20) / 10_000, 3)  # the same run's reading
            assert lv.out["latency_runs"] == 3 and len(lv.out["latency_steps"]) == 3
        for lv in lives:
            lv.pause()
        lives[0].stop()  # continues a stopped target before ending it
        assert targets[0].stopped and lives[0].gen.closed
    finally:
        for lv in lives:
            lv.resume()
        procs.end_all()


def test_a_target_measured_at_a_second_rate_takes_its_turns_in_the_rotation(tmp_path):
    """`Live.also_at`: the node's runs at the ceiling's rate are turns of their own in each round, at
    that rate, and their figures go under keys with the suffix; the own rate's stay as they were."""
    procs = Procs()
    settings = Settings(**{**FULL.__dict__, "latency_runs": 3})
    bench = fanout.Bench(settings, procs, pinning=None, tools={}, tmp=tmp_path, sfu_root=ROOT, verbose=False)
    try:
        relay, node = _Target(procs, 5000), _Target(procs, 5001)
        lives = [fanout.Live("relay", relay, _Gen(), {"latency_input_pps": 100.0, "early": 0}),
                 fanout.Live("node", node, _Gen(), {"latency_input_pps": 150.0, "early": 0})]
        lives[1].also_at(fanout.AT_CEILING_RATE, 100.0)
        bench.runner = _Runner([relay.pid, node.pid], {relay.pid: [10.0, 30.0, 20.0],
                                                       node.pid: [300.0, 100.0, 200.0, 120.0, 110.0, 130.0]})

        bench.latency_rounds(lives, players=list(range(10)))

        r, n = relay.pid, node.pid
        assert bench.runner.rates == [(r, 100.0), (n, 150.0), (n, 100.0),
                         (n, 150.0), (n, 100.0), (r, 100.0),
                         (n, 100.0), (r, 100.0), (n, 150.0)]
        out = lives[1].out
        # own rate: runs 1, 3, 6 (300, 200, 130); the ceiling's: runs 2, 4, 5 (100, 120, 110)
        assert out["p99_us"] == 200.0 and out["latency_input_pps"] == 150.0 and out["latency_runs"] == 3
        assert out["p99_us" + fanout.AT_CEILING_RATE] == 110.0
        assert out["busy"] == 0.02 and out["busy" + fanout.AT_CEILING_RATE] == 0.011  # each rate's own runs
        assert out["latency_input_pps" + fanout.AT_CEILING_RATE] == 100.0
        assert out["latency_runs" + fanout.AT_CEILING_RATE] == 3
        assert lives[0].out["p99_us"] == 20.0 and "p99_us" + fanout.AT_CEILING_RATE not in lives[0].out
    finally:
        procs.end_all()


def test_a_target_whose_search_found_nothing_gets_no_latency_run(tmp_path):
    procs = Procs()
    bench = fanout.Bench(Settings(**{**FULL.__dict__, "latency_runs": 2}), procs, pinning=None, tools={},
                         tmp=tmp_path, sfu_root=ROOT, verbose=False)
    try:
        targets = [_Target(procs, 5000 + i) for i in range(2)]
        lives = [fanout.Live("ok", targets[0], _Gen(), {"latency_input_pps": 100.0, "early": 0}),
                 fanout.Live("none", targets[1], _Gen(), {"latency_input_pps": None, "early": 0, "p99_us": None})]
        bench.runner = _Runner([t.pid for t in targets], {targets[0].pid: [5.0, 7.0]})
        bench.latency_rounds(lives, players=[0])
        assert {pid for pid, _, _ in bench.runner.calls} == {targets[0].pid}
        assert lives[0].out["p99_us"] == 5.0 and lives[1].out["p99_us"] is None
        assert _state(targets[1].pid) != "T"
    finally:
        procs.end_all()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
