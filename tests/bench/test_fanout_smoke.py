"""bench/fanout.py runs end to end (a smoke test of the harness, not a performance assertion).

Builds the C generator, sink and relay, starts a node, and checks the JSON it writes: its shape,
a C relay ceiling above zero and a node that forwarded something.
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
        [sys.executable, str(ROOT / "bench" / "fanout.py"), "--quick", "--players", "1,10", "--modes", "rtc",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())

    assert set(report) >= {"results", "ceiling", "gstreamer", "machine"}
    results = report["results"]
    assert [(r["n"], r["mode"]) for r in results] == [(1, "rtc"), (10, "rtc")]
    for r in results:
        assert set(r) >= RESULT_KEYS, set(RESULT_KEYS) - set(r)
        assert r["max_output_pps"] > 0, r
        assert r["ceiling_pps"] > 0, r
        assert r["ratio"] == pytest.approx(r["max_output_pps"] / r["ceiling_pps"], rel=1e-3)
        for key in ("p50_us", "p99_us", "cpu_us_per_packet"):
            assert isinstance(r[key], (int, float)) and r[key] > 0, (key, r)
        assert isinstance(r["rss_bytes_per_player"], (int, float))

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

    assert "max out pps" in proc.stdout  # the table
