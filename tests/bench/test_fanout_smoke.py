"""bench/fanout.py runs end to end (a smoke test of the harness, not a performance assertion).

Builds the C generator, sink and relay, starts a node (RTC, and L3 with its fixed hold), and checks
the JSON it writes: its shape, a C relay ceiling above zero, a node that forwarded something, and
L3's latency measured past each frame's release next to its total.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RESULT_KEYS = {"n", "mode", "max_output_pps", "ceiling_pps", "ratio", "p50_us", "p99_us", "cpu_us_per_packet",
               "rss_bytes_per_player"}


def test_fanout_quick_writes_the_json_schema(tmp_path):
    out = tmp_path / "fanout.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fanout.py"), "--quick", "--players", "1,10", "--modes", "rtc,l3",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())

    assert set(report) >= {"results", "ceiling", "gstreamer", "machine"}
    results = report["results"]
    assert [(r["n"], r["mode"]) for r in results] == [(1, "rtc"), (1, "l3"), (10, "rtc"), (10, "l3")]
    for r in results:
        assert set(r) >= RESULT_KEYS, set(RESULT_KEYS) - set(r)
        assert r["max_output_pps"] > 0, r
        assert r["ceiling_pps"] > 0, r
        assert r["ratio"] == pytest.approx(r["max_output_pps"] / r["ceiling_pps"], rel=1e-3)
        for key in ("p50_us", "p99_us", "cpu_us_per_packet"):
            assert isinstance(r[key], (int, float)) and r[key] >= 0, (key, r)
        assert r["p99_us"] > 0 and r["cpu_us_per_packet"] > 0, r
        # (an L3 p50 past release is 0 when most packets came before their frame's release: `early`)
        assert r["p50_us"] > 0 or (r["mode"] == "l3" and r["early"] > 0), r
        assert isinstance(r["rss_bytes_per_player"], (int, float))
        assert isinstance(r["early"], int) and r["early"] >= 0
        if r["mode"] == "rtc":  # latency is receipt - send: the total
            assert r["hold_us"] == 0
            assert (r["total_p50_us"], r["total_p99_us"]) == (r["p50_us"], r["p99_us"])
        else:  # each frame held 100 ms ([l3] min_delay = max_delay = 0.1): p50/p99 are past that release
            assert r["hold_us"] == 100_000
            assert r["total_p50_us"] > 90_000 and r["total_p99_us"] >= r["total_p50_us"]
            assert r["p50_us"] < r["total_p50_us"] - 50_000 and r["p99_us"] < r["total_p99_us"] - 50_000

    ceiling = report["ceiling"]["results"]
    assert [c["n"] for c in ceiling] == [1, 10]
    assert all(c["max_output_pps"] > 0 for c in ceiling)
    # the relay gives each player its own SSRC and a contiguous numbering, as the node does
    assert all(c["rewrite_errors"] == 0 and c["distinct_ssrcs"] == c["n"] for c in ceiling)

    gst = report["gstreamer"]
    assert isinstance(gst["available"], bool)
    if not gst["available"]:
        assert gst["status"] == "n/a"
    assert report["machine"]["cpu"] and report["machine"]["pinning"]

    assert "max out pps" in proc.stdout and "past each frame's release" in proc.stdout  # the table
    # --quick: one latency run per row, whose figures are the row's
    for r in results:
        (run,) = r["detail"]["latency_steps"]
        assert r["detail"]["latency_runs"] == 1 and (run["p50_us"], run["p99_us"]) == (r["p50_us"], r["p99_us"])
        # and one at the ceiling's latency rate: the same input rate as the ceiling's own figures
        (run,) = r["detail"]["latency_steps_at_ceiling_rate"]
        c = {c["n"]: c for c in ceiling}[r["n"]]
        assert r["ceiling_latency_input_pps"] == c["latency_input_pps"] > 0
        assert r["detail"]["latency_input_pps_at_ceiling_rate"] == c["latency_input_pps"]
        assert (run["p50_us"], run["p99_us"]) == (r["p50_us_at_ceiling_rate"], r["p99_us_at_ceiling_rate"])
        assert r["ratios"]["p99_at_ceiling_rate"] == pytest.approx(r["p99_us_at_ceiling_rate"] / c["p99_us"], rel=1e-3)
        # how busy each target's core was in its half-max run: that run's own reading
        (run,) = r["detail"]["latency_steps"]
        assert r["busy"] == pytest.approx(run["target_cpu_util"], abs=1e-3) and 0 < r["busy"] <= 1.05
        (run,) = c["latency_steps"]
        assert r["ceiling_busy"] == pytest.approx(run["target_cpu_util"], abs=1e-3) and 0 < r["ceiling_busy"] <= 1.05
    assert "at ceiling's rate" in proc.stdout and "node/ceiling [4]" in proc.stdout


def test_latency_figures_are_medians_of_the_runs_that_measured_them():
    sys.path.insert(0, str(ROOT / "bench"))
    from fanout import _median

    assert _median([3.0, 1.0, 2.0]) == 2.0
    assert _median([5.0, None, 1.0]) == 1.0  # (an even count: the lower middle, a real reading)
    assert _median([None, 24_000.0, 1_800.0, 2_000.0]) == 2_000.0  # one stalled run does not decide
    assert _median([None]) is None and _median([]) is None
