"""Malformed, oversized and out-of-order frames get a clear error and disturb nobody else."""

import json

import aiohttp
import pytest

from sfu.errors import ErrorCode


@pytest.mark.parametrize("frame, code, fragment", [
    ("{not json", ErrorCode.MALFORMED_MESSAGE, "not valid JSON"),
    ("[1, 2]", ErrorCode.MALFORMED_MESSAGE, "JSON object"),
    ('"text"', ErrorCode.MALFORMED_MESSAGE, "JSON object"),
    ('{"id": 1, "type": "heartbeat"}', ErrorCode.MALFORMED_MESSAGE, "'v'"),
    ('{"v": 2, "id": 1, "type": "heartbeat"}', ErrorCode.UNSUPPORTED_VERSION, "version 2"),
    ('{"v": 1, "type": "heartbeat"}', ErrorCode.MALFORMED_MESSAGE, "'id'"),
    ('{"v": 1, "id": -1, "type": "heartbeat"}', ErrorCode.MALFORMED_MESSAGE, "'id'"),
    ('{"v": 1, "id": 1}', ErrorCode.MALFORMED_MESSAGE, "'type'"),
    ('{"v": 1, "id": 1, "type": "dance"}', ErrorCode.UNKNOWN_MESSAGE_TYPE, "dance"),
    ('{"v": 1, "id": 1, "type": "login", "app_id": "1", "room_id": "r", "user": {"user_id": "u"}, "token": "t"}',
     ErrorCode.MALFORMED_MESSAGE, "'app_id' must be an integer"),
    ('{"v": 1, "id": 1, "type": "login", "app_id": 1, "room_id": "r", "user": {"user_id": 5}, "token": "t"}',
     ErrorCode.MALFORMED_MESSAGE, "user.user_id"),
    ('{"v": 1, "id": 1, "type": "login", "app_id": 1, "room_id": "r", "user": {}}',
     ErrorCode.MALFORMED_MESSAGE, "missing field 'token'"),
    ('{"v": 1, "id": 1, "type": "play", "stream_id": "s", "resource_mode": true}',
     ErrorCode.MALFORMED_MESSAGE, "'resource_mode' must be an integer"),
    ('{"v": 1, "id": 1, "type": "publish", "stream_id": "s"}', ErrorCode.PUBLISH_NOT_LOGGED_IN, ""),
    ('{"v": 1, "id": 1, "type": "heartbeat"}', ErrorCode.NOT_LOGGED_IN, ""),
    ('[' * 100000 + ']' * 100000, ErrorCode.MESSAGE_TOO_LARGE, "larger than"),
])
async def test_bad_frames_get_clear_errors(node, connect, frame, code, fragment):
    bystander = await connect(node)
    assert (await bystander.login("room1", "bystander", is_user_status_notify=True))["type"] == "reply"
    c = await connect(node)
    await c.send(frame)
    err = await c.recv()
    assert err["type"] == "error" and err["code"] == code and err["name"] == code.name
    assert fragment in err["message"]
    # the same socket still works, and so does everyone else's
    assert (await c.login("room1", "u2"))["type"] == "reply"
    assert (await bystander.request("heartbeat"))["type"] == "reply"
    assert (await bystander.next_event("room_user_update"))["users"][0]["user_id"] == "u2"


async def test_error_echoes_the_request_id(node, connect):
    c = await connect(node)
    await c.send({"v": 1, "id": 77, "type": "play", "stream_id": "s"})
    err = await c.recv()
    assert (err["id"], err["code"]) == (77, ErrorCode.PLAY_NOT_LOGGED_IN)


async def test_deeply_nested_json_within_size_is_an_error_not_a_crash(node, connect):
    c = await connect(node)
    await c.send('{"v": 1, "id": 1, "type": "login", "user": ' + "[" * 20000 + "]" * 20000 + "}")
    err = await c.recv()
    assert err["type"] == "error" and err["code"] == ErrorCode.MALFORMED_MESSAGE


async def test_binary_frames_are_refused(node, connect):
    c = await connect(node)
    await c.ws.send_bytes(b"\x00\x01")
    err = await c.recv()
    assert err["code"] == ErrorCode.MALFORMED_MESSAGE and "binary" in err["message"]


async def test_a_frame_over_one_mebibyte_closes_only_that_socket(node, connect):
    other = await connect(node)
    await other.login("room1", "other")
    c = await connect(node)
    await c.send(json.dumps({"v": 1, "id": 1, "type": "heartbeat", "pad": "x" * (2 << 20)}))
    frames, close = await c.closed()
    assert close.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert c.ws.close_code == 1009
    assert (await other.request("heartbeat"))["type"] == "reply"


async def test_out_of_order_requests(node, connect):
    c = await connect(node)
    login = (await c.login("room1", "alice"))["result"]
    r = await c.request("resume", session_id=login["session_id"], resume_token=login["resume_token"])
    assert r["code"] == ErrorCode.ALREADY_LOGGED_IN
    r = await c.request("login", app_id=1234567890, room_id="room2", user={"user_id": "alice"}, token="x")
    assert r["code"] == ErrorCode.ROOM_COUNT_EXCEED
    r = await c.request("stop_play", stream_id="s")
    assert r["code"] == ErrorCode.NOT_PLAYING
