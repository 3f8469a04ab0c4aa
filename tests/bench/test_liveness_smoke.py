"""bench/liveness.py runs through `sfu bench liveness` (a smoke test of the script, not a measurement):
the JSON's shape, and what holds whatever the machine's speed: every session made through the HTTP
API still stands after the timed checks (the script fails otherwise), the gone ones included (their
runs are far shorter than the timeout it sets)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_liveness_ticks_are_timed_and_the_json_written(tmp_path):
    out = tmp_path / "liveness.json"
    proc = subprocess.run([sys.executable, "-m", "sfu", "bench", "liveness", "--players", "5,20", "--gone", "3",
                           "--ticks", "3", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "us per tick" in proc.stdout
    rows = json.loads(out.read_text())["results"]
    assert [(r["n"], r["gone"], r["ticks"]) for r in rows] == [(5, 3, 3), (20, 3, 3)]
    for r in rows:
        assert r["us_per_tick"] > 0 and r["longest_ms"] * 1000 >= r["us_per_tick"]
