"""bench/catchup.py runs through `sfu bench catchup` (a smoke test of the script, not a measurement): the
JSON's shape, and what holds whatever the machine's speed: every frame is released (the script fails
otherwise), one alone goes without GSO, and several at once go out as one GSO send per player."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_catch_up_rounds_are_timed_and_the_json_written(tmp_path):
    out = tmp_path / "catchup.json"
    proc = subprocess.run([sys.executable, "-m", "sfu", "bench", "catchup", "--players", "20", "--frames", "1,3",
                           "--rounds", "4", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "us per datagram" in proc.stdout
    rows = json.loads(out.read_text())["results"]
    assert [(r["n"], r["frames"], r["rounds"]) for r in rows] == [(20, 1, 4), (20, 3, 4)]
    assert [r["gso_sends_per_round"] for r in rows] == [0, 20]
    assert all(r["us_per_round"] > 0 for r in rows)
