"""bench/harness.py `search`: where it lands and how many rates it tries, against a made-up target
whose steps pass up to a known input rate (no process, no clock)."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from harness import FULL, QUICK, Step, search  # noqa: E402


def step_at(rate: float, limit: float, n: int) -> Step:
    """A step of a target that forwards everything up to `limit` input packets/s and nothing past it."""
    ok = rate <= limit
    blank = {f.name: (False if f.type == "bool" else 0) for f in dataclasses.fields(Step) if f.default is dataclasses.MISSING}
    return Step(**{**blank, "in_pps": rate, "sent": 100, "achieved_in_pps": rate, "expected": 100 * n,
                   "received": 100 * n if ok else 50 * n, "loss": 0.0 if ok else 0.5, "out_pps": rate * n,
                   "core_util": 1.0, "target_cpu_util": 1.0, "passed": ok})


def run(settings, limit: float, n: int, start_out: float | None = None):
    calls: list[float] = []

    def step(rate: float) -> Step:
        calls.append(rate)
        return step_at(rate, limit, n)

    return search(step, n, settings, start_out), calls


@pytest.mark.parametrize("n, limit", [(1, 331_870.0), (10, 60_836.0), (100, 6_352.8), (1000, 582.5), (500, 1_270.0)])
def test_full_settings_end_within_about_one_percent_of_the_limit(n, limit):
    res, calls = run(FULL, limit, n)
    assert res.best is not None and res.best.in_pps <= limit
    failed_above = min(r for r in calls if r > limit)
    assert failed_above / res.best.in_pps <= 2 ** (1 / 64) + 1e-9  # the last bracket: 1.1 %
    assert res.best.in_pps >= limit / 2 ** (1 / 64)
    assert res.limited_by == "target"
    rates = sorted(set(calls))
    assert len(rates) <= FULL.max_steps
    # every failed rate is tried 1 + retries times (no disturbance here); passes once
    assert len(calls) == len([r for r in rates if r <= limit]) + (1 + FULL.retries) * len([r for r in rates if r > limit])


def test_full_settings_from_the_previous_n_take_few_rates():
    res, calls = run(FULL, 60_000.0, 100, start_out=0.5 * 6_100_000)  # half the last maximum, above this one
    assert res.best.in_pps <= 60_000 and 60_000 / res.best.in_pps < 1.011
    assert len(set(calls)) <= 2 + FULL.bisect_steps


def test_the_bisection_stops_at_the_resolution():
    # bracket 30_000..60_000 (a pass then a failure); the 2 ** (1/64) resolution needs 6 bisections,
    # a coarser one fewer
    coarse = dataclasses.replace(FULL, resolution=1.05)
    _, fine_calls = run(FULL, 45_000.0, 1, start_out=30_000.0)
    _, coarse_calls = run(coarse, 45_000.0, 1, start_out=30_000.0)
    assert len(set(fine_calls)) == 2 + 6
    assert len(set(coarse_calls)) == 2 + math.ceil(math.log2(math.log(2) / math.log(1.05)))


def test_quick_settings_bisect_once():
    res, calls = run(QUICK, 60_836.0, 10)
    assert res.best is not None and res.best.in_pps <= 60_836.0
    rates = sorted(set(calls))
    lo = max(r for r in rates if r <= 60_836.0)
    hi = min(r for r in rates if r > 60_836.0)
    assert hi / lo == pytest.approx(math.sqrt(2))  # one bisection of a factor-2 bracket
