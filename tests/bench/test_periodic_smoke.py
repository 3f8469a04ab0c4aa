"""bench/periodic.py runs through `sfu bench periodic` (a smoke test of the script, not a measurement):
the JSON's shape, and what holds whatever the machine's speed: every session made through the HTTP
API still stands after the timed calls, the gone ones included (their runs are far shorter than the
timeout it sets), and the node sent every player every packet (the script fails otherwise)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("mode", ["rtc", "l3"])
def test_ticks_and_scrapes_are_timed_and_the_json_written(tmp_path, mode):
    out = tmp_path / "periodic.json"
    proc = subprocess.run([sys.executable, "-m", "sfu", "bench", "periodic", "--players", "5,20", "--mode", mode,
                           "--gone", "3", "--calls", "2", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "us per scrape" in proc.stdout
    rows = json.loads(out.read_text())["results"]
    assert [(r["n"], r["mode"], r["gone"], r["calls"]) for r in rows] == [(5, mode, 3, 2), (20, mode, 3, 2)]
    for r in rows:
        assert 0 < r["us_per_tick"] <= r["tick_longest_ms"] * 1000
        assert 0 < r["us_per_scrape"] <= r["scrape_longest_ms"] * 1000
