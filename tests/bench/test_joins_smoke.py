"""bench/joins.py runs through `sfu bench joins` (a smoke test of the script, not a measurement): the
table, the JSON's shape, a row per bucket of joins and mode, and a clear error for a checkout that
is not one."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sfu", "bench", "joins", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_joins_writes_a_row_per_bucket_and_mode(tmp_path):
    out = tmp_path / "joins.json"
    proc = bench("--players", "60", "--buckets", "20,40", "--seconds", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "all us/join" in proc.stdout and "phase" in proc.stdout and f"node code: {ROOT}" in proc.stdout
    rows = json.loads(out.read_text())["results"]
    assert [(r["mode"], r["first"], r["last"]) for r in rows] == [
        (mode, first, last) for mode in ("rtc", "l3") for first, last in ((1, 20), (21, 40), (41, 60))]
    for r in rows:
        assert r["join_us"] > 0 and r["all_us_per_join"] >= r["join_us"] and r["longest_ms"] > 0
    assert [r["x_first"] for r in rows if r["first"] == 1] == [1.0, 1.0]


def test_joins_refuses_a_root_without_the_node(tmp_path):
    proc = bench("--sfu-root", str(tmp_path))
    assert proc.returncode == 2 and "no sfu checkout" in proc.stderr
