"""`sfu rtp-publish` / `rtp-play` / `rtp-stop` against a real node, and the ffmpeg line they print."""

import asyncio
import shlex
import sys

from tests.conftest import APP_ID, make_token
from tests.e2e.ffmpeg import ffmpeg


async def run(*args):
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "sfu", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(), err.decode()


def common(node, user):
    return ["--server", node.http_url, "--token", make_token(user), "--app-id", str(APP_ID),
            "--room-id", "room1", "--user-id", user, "--stream-id", "s1"]


async def test_publish_play_stop_and_the_printed_ffmpeg_line_works(node, tmp_path):
    rc, out, err = await run("rtp-publish", *common(node, "cam"), "--audio", "none")
    assert rc == 0, err
    session = out.split("session_id: ")[1].split()[0]
    line = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("ffmpeg ")][0]
    cmd = shlex.split(line)
    assert cmd[0] == "ffmpeg" and "-payload_type" in cmd
    sdp = tmp_path / "play.sdp"
    rc, out, err = await run("rtp-play", *common(node, "viewer"), "--mode", "rtc", "--video-port", "47030",
                             "--sdp", str(sdp))
    assert rc == 0, err
    assert "m=video 47030 RTP/AVP 96" in sdp.read_text()
    # the printed publish line, bounded to 30 frames, delivers media to the node
    cmd = [ffmpeg(), "-hide_banner", "-loglevel", "error"] + cmd[1:]
    cmd.insert(cmd.index("-map"), "-frames:v")
    cmd.insert(cmd.index("-map"), "30")
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL)
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    (track,) = node.router.tracks()
    assert track.counters["packets"] >= 30
    rc, out, err = await run("rtp-stop", "--server", node.http_url, session)
    assert rc == 0 and "ended" in out
    rc, out, err = await run("rtp-stop", "--server", node.http_url, session)
    assert rc == 1 and "404" in err and "SESSION_NOT_FOUND" in err


async def test_errors_are_reported(node):
    rc, out, err = await run("rtp-publish", *common(node, "cam")[:2], "--token", "04bad", *common(node, "cam")[4:])
    assert rc == 1 and "401" in err and "TOKEN_INVALID" in err
