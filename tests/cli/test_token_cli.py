"""`sfu token` prints a token that the node's verifier accepts with the claims asked for."""

import subprocess
import sys
import time

import pytest

from sfu.token import verify_token
from tests.conftest import APP_ID, SECRET


def run(*args):
    return subprocess.run([sys.executable, "-m", "sfu", "token", *args], capture_output=True, text=True, timeout=30)


def test_token_with_room_privileges_and_stream_list():
    r = run("--app-id", str(APP_ID), "--secret", SECRET, "--user-id", "alice", "--room-id", "room1",
            "--stream-id", "a", "--stream-id", "b", "--ttl", "120")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("04")
    now = time.time()
    claims = verify_token(token, secret=SECRET, app_id=APP_ID, user_id="alice", room_id="room1", now=now)
    assert claims.room_id == "room1" and claims.can_publish and claims.stream_id_list == ("a", "b")
    assert abs(claims.expire - (now + 120)) < 5
    assert claims.allows_publish("a") and not claims.allows_publish("c")


def test_no_publish():
    r = run("--app-id", str(APP_ID), "--secret", SECRET, "--user-id", "bob", "--no-publish")
    claims = verify_token(r.stdout.strip(), secret=SECRET, app_id=APP_ID, user_id="bob", room_id="x", now=time.time())
    assert claims.can_login and not claims.can_publish


@pytest.mark.parametrize("args, fragment", [
    (["--app-id", "1", "--secret", "short", "--user-id", "u"], "32 characters"),
    (["--app-id", "1", "--secret", SECRET, "--user-id", "u", "--ttl", "0"], "--ttl"),
    (["--app-id", "0", "--secret", SECRET, "--user-id", "u"], "app_id"),
])
def test_bad_arguments(args, fragment):
    r = run(*args)
    assert r.returncode == 2 and fragment in r.stderr
