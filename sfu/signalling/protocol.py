"""Signalling protocol v1 (docs/protocol.md): decode a frame, call the room service, shape replies.

No IO here: the server hands in text and `now`/`wallclock`, and sends what comes back.
"""

from __future__ import annotations

import json
from typing import Any

from sfu.errors import ErrorCode, SfuError
from sfu.room import RoomService

VERSION = 1

_STR, _INT, _BOOL, _OBJ = str, int, bool, dict

# request type -> {field: (type, required, default)}
REQUESTS: dict[str, dict[str, tuple[type, bool, Any]]] = {
    "login": {"app_id": (_INT, True, None), "room_id": (_STR, True, None), "user": (_OBJ, True, None),
              "token": (_STR, True, None), "is_user_status_notify": (_BOOL, False, False)},
    "logout": {"room_id": (_STR, True, None)},
    "publish": {"stream_id": (_STR, True, None), "extra_info": (_STR, False, ""), "tracks": (list, False, None)},
    "stop_publish": {"stream_id": (_STR, True, None)},
    "play": {"stream_id": (_STR, True, None), "resource_mode": (_INT, False, 0)},
    "stop_play": {"stream_id": (_STR, True, None)},
    "renew_token": {"room_id": (_STR, True, None), "token": (_STR, True, None)},
    "heartbeat": {"ack": (_INT, False, None)},
    "resume": {"session_id": (_STR, True, None), "resume_token": (_STR, True, None),
               "last_event_seq": (_INT, False, None)},
}


class ProtocolError(SfuError):
    """A frame that cannot be handled; `request_id` is echoed when it could be read."""

    def __init__(self, code: int, message: str, request_id: int | None = None):
        super().__init__(code, message)
        self.request_id = request_id


def reply(request_id: int, result: dict) -> dict:
    return {"v": VERSION, "type": "reply", "id": request_id, "result": result}


def error(request_id: int | None, exc: SfuError) -> dict:
    return {"v": VERSION, "type": "error", "id": request_id, "code": int(exc.code), "name": exc.code.name,
            "message": exc.message, "extended_data": exc.extended_data}


def _typename(t: type) -> str:
    return {str: "a string", int: "an integer", bool: "a boolean", dict: "an object", list: "a list"}[t]


def decode(text: str) -> tuple[int, str, dict[str, Any]]:
    """Parse and type-check one frame: (id, type, fields with defaults filled)."""
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, f"not valid JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, f"a frame must be a JSON object, got {type(msg).__name__}")
    rid = msg.get("id")
    request_id = rid if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid < 2**53 else None
    if "v" not in msg:
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, "missing field 'v' (protocol version)", request_id)
    if msg["v"] != VERSION or isinstance(msg["v"], bool):
        raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                            f"protocol version {msg['v']!r} is not supported; this node speaks v{VERSION}", request_id)
    if request_id is None:
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, "field 'id' must be an integer >= 0")
    kind = msg.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, "field 'type' must be a string", request_id)
    spec = REQUESTS.get(kind)
    if spec is None:
        raise ProtocolError(ErrorCode.UNKNOWN_MESSAGE_TYPE, f"unknown message type {kind[:64]!r}", request_id)
    fields: dict[str, Any] = {}
    for name, (t, required, default) in spec.items():
        if name not in msg:
            if required:
                raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, f"{kind}: missing field {name!r}", request_id)
            fields[name] = default
            continue
        value = msg[name]
        if not isinstance(value, t) or (t is int and isinstance(value, bool)):
            raise ProtocolError(ErrorCode.MALFORMED_MESSAGE,
                                f"{kind}: field {name!r} must be {_typename(t)}", request_id)
        fields[name] = value
    if kind == "login":
        user = fields["user"]
        uid = user.get("user_id")
        if not isinstance(uid, str):
            raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, "login: field 'user.user_id' must be a string", request_id)
        uname = user.get("user_name", uid)
        if not isinstance(uname, str):
            raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, "login: field 'user.user_name' must be a string",
                                request_id)
    return request_id, kind, fields


def dispatch(service: RoomService, conn_id: int, kind: str, f: dict[str, Any], now: float, wallclock: float) -> dict:
    """Run one decoded request against the room service; returns the result or raises SfuError."""
    if kind == "login":
        user = f["user"]
        return service.login(conn_id, app_id=f["app_id"], room_id=f["room_id"], user_id=user["user_id"],
                             user_name=user.get("user_name", user["user_id"]), token=f["token"],
                             notify=f["is_user_status_notify"], now=now, wallclock=wallclock)
    if kind == "logout":
        return service.logout(conn_id, f["room_id"], now)
    if kind == "publish":
        return service.publish(conn_id, f["stream_id"], f["extra_info"], now)
    if kind == "stop_publish":
        return service.stop_publish(conn_id, f["stream_id"], now)
    if kind == "play":
        return service.play(conn_id, f["stream_id"], f["resource_mode"], now)
    if kind == "stop_play":
        return service.stop_play(conn_id, f["stream_id"], now)
    if kind == "renew_token":
        return service.renew_token(conn_id, f["room_id"], f["token"], now, wallclock)
    if kind == "heartbeat":
        service.heartbeat(conn_id, now, f["ack"])
        return {"now": wallclock}
    if kind == "resume":
        return service.resume(conn_id, f["session_id"], f["resume_token"], now, f["last_event_seq"])
    raise AssertionError(f"no handler for {kind}")  # REQUESTS and dispatch disagree: a bug
