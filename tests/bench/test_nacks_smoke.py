"""bench/nacks.py runs through `sfu bench nacks` (a smoke test of the script, not a measurement): the
JSON's shape, and what holds whatever the machine's speed: every NACK is answered with its
retransmission."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_nacks_are_answered_and_the_json_written(tmp_path):
    out = tmp_path / "nacks.json"
    proc = subprocess.run([sys.executable, "-m", "sfu", "bench", "nacks", "--players", "5,20", "--seconds", "1",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "us per NACK" in proc.stdout
    rows = json.loads(out.read_text())["results"]
    assert [r["n"] for r in rows] == [5, 20]
    for r in rows:
        assert r["nacks"] >= 25 and r["retransmissions"] == r["nacks"] and r["us_per_nack"] > 0
    assert rows[0]["x_first"] == 1.0
