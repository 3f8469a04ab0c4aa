"""bench/l3_qoe.py runs end to end through `sfu bench qoe` (a smoke test of the harness, not a measurement).

One short scenario with an impaired uplink (so the node's repair and the proxies really work), a
few players per mode and one late joiner each; checks the JSON: its shape, and numbers that are
sane (ordered percentiles, ratios in range, L3 holding frames longer than RTC, the node repairing).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RESULT_KEYS = {"mode", "role", "players", "e2e_ms", "complete_ratio", "stall_ratio", "stall_ratio_max"}
DIST_KEYS = {"n", "p50", "p95", "p99", "max"}


def check_dist(d: dict, low: float = 0.0, high: float = 5000.0) -> None:
    assert set(d) == DIST_KEYS, d
    assert d["n"] > 0 and low <= d["p50"] <= d["p95"] <= d["p99"] <= d["max"] <= high, d


def test_qoe_quick_writes_the_json_schema(tmp_path):
    out = tmp_path / "qoe.json"
    proc = subprocess.run(
        [sys.executable, "-m", "sfu", "bench", "qoe", "--quick", "--scenarios", "uplink_loss_jitter",
         "--players", "3", "--late", "1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())

    assert set(report) >= {"scenarios", "machine", "settings", "verdict"}
    (sc,) = report["scenarios"]
    assert sc["name"] == "uplink_loss_jitter"
    assert sc["netem"]["uplink"] == {"loss": 0.05, "delay": 0.03, "jitter": 0.03}
    assert sc["stream"]["frames_in_window"] >= 60  # ~3 s at 30 fps
    assert sc["stream"]["kbps"] > 100
    assert sc["stream"]["uplink"]["up"]["lost"] > 0  # the proxy dropped packets...
    video = [t for t in sc["node"]["tracks"] if t["kind"] == "video"]
    assert video and video[0]["nack"]["nacked"] > 0  # ...the node asked for them...
    assert sc["stream"]["publisher"]["packets_retransmitted"] > 0  # ...and the publisher resent them
    assert sc["players_without_frames"] == []

    results = {(r["mode"], r["role"]): r for r in sc["results"]}
    assert set(results) == {("l3", "steady"), ("rtc", "steady")}
    for r in results.values():
        assert set(r) >= RESULT_KEYS, set(RESULT_KEYS) - set(r)
        assert r["players"] == 3
        check_dist(r["e2e_ms"], low=1.0)
        assert 0.5 < r["complete_ratio"] <= 1.0, r
        assert 0.0 <= r["stall_ratio"] <= r["stall_ratio_max"] <= 1.0, r
        check_dist(r["sync_spread_ms"])
        assert r["late_joiners"] == 1
        assert r["first_frame_failures"] == 0 and r["first_frame_ms"]["n"] == 1
        check_dist(r["first_frame_ms"], low=0.1, high=3000.0)
        check_dist(r["av_offset_abs_ms"])  # audio and video frames were paired
        assert r["av_offset_ms"]["n"] == r["av_offset_abs_ms"]["n"] > 50
    # L3 holds every frame for its target delay (a repair round trip at least), RTC forwards at once
    assert results[("l3", "steady")]["e2e_ms"]["p50"] > results[("rtc", "steady")]["e2e_ms"]["p50"] + 30

    v = report["verdict"]
    assert v["run"] and v["scenario"] == "uplink_loss_jitter" and set(v["met"]) == set(v["targets"])
    assert "complete %" in proc.stdout and "uplink_loss_jitter" in proc.stdout  # the table
