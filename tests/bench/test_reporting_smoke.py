"""bench/reporting.py runs through `sfu bench reporting` (a smoke test of the script, not a
measurement): the JSON's shape, and what must hold whatever the machine's speed: the reporting
players' paths are measured and the silent ones' are not, both got every datagram, and the
reporting players' datagrams went from the compiled fast path (docs/media.md, "the fast table"):
only their start from Python, as a silent player's."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_reporting_writes_the_json_and_shows_where_the_datagrams_went(tmp_path):
    out = tmp_path / "reporting.json"
    proc = subprocess.run(
        [sys.executable, "-m", "sfu", "bench", "reporting", "--players", "10", "--rounds", "1", "--seconds", "1",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reporting / silent" in proc.stdout  # the table
    rows = {r["mode"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {"rtc", "l3"}
    packets = 3 * 30  # 1 s at 30 frames/s, 3 packets each
    for mode, row in rows.items():
        silent, reporting = row["silent"], row["reporting"]
        assert silent["datagrams_out"] == reporting["datagrams_out"] == 10 * packets, mode
        assert (silent["measured_players"], reporting["measured_players"]) == (0, 10)
        # a player's start goes from Python (RTC: the frame's first packet; L3: the timeline's first
        # frame), then everything from the compiled fast path
        assert silent["python_datagrams"] == 10 * (1 if mode == "rtc" else 3), mode
        # a reporting player is gated in the fast path: only its start goes from Python, as a
        # silent player's
        assert reporting["python_datagrams"] == silent["python_datagrams"], mode
        assert silent["us_per_datagram"] > 0 and row["ratio"] > 0


def test_reporting_rtc_players_beside_an_l3_one_stay_in_the_fast_path(tmp_path):
    """With an L3 player on the track every packet comes to Python (its L3 timeline takes each):
    the gated RTC players' packets still go from the compiled fast path, as their gates say, not
    one by one from Python (`--l3-beside`)."""
    out = tmp_path / "reporting.json"
    proc = subprocess.run(
        [sys.executable, "-m", "sfu", "bench", "reporting", "--players", "10", "--modes", "rtc", "--rounds", "1",
         "--seconds", "1", "--l3-beside", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads(out.read_text())["results"]
    silent, reporting = row["silent"], row["reporting"]
    assert silent["datagrams_out"] == reporting["datagrams_out"] == 11 * 3 * 30
    assert reporting["measured_players"] == 10
    assert reporting["python_datagrams"] == silent["python_datagrams"]  # the starts only
