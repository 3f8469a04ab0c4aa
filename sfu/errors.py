"""The one table of error codes a client can see.

Families follow the seeds: 1000xxx general, 1002xxx room, 1003xxx publish,
1004xxx play. `docs/errors.md` is generated from this table
(`python -m sfu.errors > docs/errors.md`) and a test keeps the two identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    code: int
    name: str
    meaning: str
    action: str


_TABLE: tuple[ErrorInfo, ...] = (
    # 1000xxx general
    ErrorInfo(1000001, "ENGINE_DESTROYED", "The engine was destroyed; it cannot be used any more.",
              "Create a new engine with Engine.create."),
    ErrorInfo(1000002, "NOT_LOGGED_IN", "The request needs a logged-in session and this one is not logged in.",
              "Call login_room first and wait for LOGINED."),
    ErrorInfo(1000003, "NOT_CONNECTED", "The engine has no connection to the node (never connected, or reconnecting failed).",
              "Log in again; check the node address and that the node runs."),
    ErrorInfo(1000004, "CONNECTION_LOST", "The connection dropped while the request was in flight; its outcome is unknown.",
              "Wait for RECONNECTED and repeat the request if its effect is not visible."),
    ErrorInfo(1000005, "REQUEST_TIMEOUT", "The node did not answer the request in time.",
              "Retry; if it persists, check the node's health (/healthz)."),
    ErrorInfo(1000010, "APP_ID_INVALID", "The AppID is not a configured unsigned 32-bit AppID of this node.",
              "Use an AppID from the node's config (sfu serve prints the development one)."),
    ErrorInfo(1000030, "MALFORMED_MESSAGE", "The signalling message is not valid JSON, not an object, or a field is missing or of the wrong type.",
              "Follow docs/protocol.md; the message names the offending field."),
    ErrorInfo(1000031, "UNSUPPORTED_VERSION", "The message's protocol version `v` is not spoken by this node.",
              "Use a client of a supported protocol version (see docs/protocol.md)."),
    ErrorInfo(1000032, "MESSAGE_TOO_LARGE", "The signalling message is larger than the node accepts.",
              "Send smaller messages (extra_info and user names have size limits)."),
    ErrorInfo(1000033, "RATE_LIMITED", "This connection sent messages faster than the node's rate limit; the message was dropped.",
              "Slow down; the limit is per connection (docs/protocol.md)."),
    ErrorInfo(1000034, "UNKNOWN_MESSAGE_TYPE", "The message `type` is not one the node knows.",
              "Use the message types of docs/protocol.md."),
    ErrorInfo(1000035, "AUTH_TIMEOUT", "The connection did not log in (or resume) in time after it was opened and was closed.",
              "Send login or resume right after connecting."),
    ErrorInfo(1000036, "INVALID_ARGUMENT", "A field has a value outside its allowed range or format.",
              "Fix the value named in the message."),
    ErrorInfo(1000037, "SESSION_NOT_FOUND", "The HTTP API session id is not known (never made, ended, or timed out).",
              "Use the session_id returned by POST /api/v1/publish or /api/v1/play."),
    ErrorInfo(1000038, "UNAUTHORIZED", "The HTTP API request has no `Authorization: Bearer <token>` header.",
              "Send the user's token as a bearer token."),
    ErrorInfo(1000050, "INTERNAL_ERROR", "The node failed to handle a valid request (a bug).",
              "Report it with the node's log; the session is unaffected."),
    ErrorInfo(1000060, "SERVER_SHUTTING_DOWN", "The node is shutting down and closed the session.",
              "Log in again to a running node."),
    # 1002xxx room
    ErrorInfo(1002001, "ROOM_COUNT_EXCEED", "The session is already logged in to another room; a session is in one room at a time.",
              "Call logout_room for the current room first."),
    ErrorInfo(1002002, "ALREADY_LOGGED_IN", "The session is already logged in to this room.",
              "Nothing to do; the session is in the room."),
    ErrorInfo(1002005, "USER_ID_INVALID", "The user_id is empty, longer than 64 characters, or has characters outside [A-Za-z0-9_.-].",
              "Use a user_id of 1-64 characters of [A-Za-z0-9_.-]."),
    ErrorInfo(1002006, "USER_NAME_INVALID", "The user_name is longer than 256 bytes (UTF-8) or has control characters.",
              "Use a shorter user_name without control characters."),
    ErrorInfo(1002010, "ROOM_ID_INVALID", "The room_id is empty, longer than 128 characters, or has characters outside [A-Za-z0-9_.-].",
              "Use a room_id of 1-128 characters of [A-Za-z0-9_.-]."),
    ErrorInfo(1002011, "NOT_IN_ROOM", "The session is not logged in to the room the request names.",
              "Name the room the session is logged in to."),
    ErrorInfo(1002034, "ROOM_USER_LIMIT", "The room has reached max_users_per_room.",
              "Try later or raise the limit in the node's config."),
    ErrorInfo(1002035, "APP_ROOM_LIMIT", "The AppID has reached max_rooms; a new room cannot be created.",
              "Use an existing room or raise the limit in the node's config."),
    ErrorInfo(1002050, "KICKED_OUT_DUPLICATE_LOGIN", "Another session logged in with the same user_id in this AppID; this one was kicked out.",
              "Use distinct user_ids per device, or log in again to take the place back."),
    ErrorInfo(1002053, "RECONNECT_FAILED", "The connection could not be restored within the reconnect grace window; the session is gone.",
              "Log in again."),
    ErrorInfo(1002056, "TOKEN_EXPIRED_KICK_OUT", "The session's token expired without renew_token; the session was removed.",
              "Renew the token when room_token_will_expire arrives (30 s before expiry)."),
    ErrorInfo(1002067, "TOKEN_INVALID", "The token is malformed, expired, signed with another secret, or made for another AppID, user or room, or denies login.",
              "Generate a fresh token for this AppID, user and room with the app's server secret; extended_data.reason says which check failed."),
    # 1003xxx publish
    ErrorInfo(1003001, "PUBLISH_NOT_LOGGED_IN", "start_publishing_stream was called before logging in to a room.",
              "Log in first; publish after LOGINED."),
    ErrorInfo(1003002, "STREAM_ID_INVALID", "The stream_id is empty, longer than 256 characters, or has characters outside [A-Za-z0-9_.-].",
              "Use a stream_id of 1-256 characters of [A-Za-z0-9_.-]."),
    ErrorInfo(1003003, "EXTRA_INFO_TOO_LONG", "The stream's extra_info is longer than 1024 bytes (UTF-8).",
              "Send a shorter extra_info."),
    ErrorInfo(1003028, "STREAM_ID_IN_USE", "Another publisher in this AppID is already publishing this stream_id.",
              "Use a unique stream_id per live stream in the AppID."),
    ErrorInfo(1003030, "ROOM_STREAM_LIMIT", "The room has reached max_streams_per_room.",
              "Stop another stream or raise the limit in the node's config."),
    ErrorInfo(1003031, "NOT_PUBLISHING", "This session does not publish the stream the request names.",
              "Name a stream this session publishes."),
    ErrorInfo(1003040, "NO_MEDIA_PORT", "The node has no free UDP port in its RTP port range for a new publisher track.",
              "Stop unused streams or widen the node's --rtp-ports range."),
    ErrorInfo(1003072, "PUBLISH_PRIVILEGE_DENIED", "The token's payload denies publishing, or lists stream ids that do not include this one.",
              "Issue a token whose payload grants privilege 2 (publish) and lists this stream_id (or no list)."),
    # 1004xxx play
    ErrorInfo(1004001, "PLAY_NOT_LOGGED_IN", "start_playing_stream was called before logging in to a room.",
              "Log in first; play after LOGINED."),
    ErrorInfo(1004002, "PLAY_STREAM_ID_INVALID", "The stream_id to play is empty, longer than 256 characters, or has characters outside [A-Za-z0-9_.-].",
              "Use the stream_id announced by room_stream_update."),
    ErrorInfo(1004003, "RESOURCE_MODE_UNSUPPORTED", "The requested resource_mode is not served by this node (ONLY_CDN is not built) or is unknown.",
              "Use DEFAULT, ONLY_L3 or ONLY_RTC."),
    ErrorInfo(1004004, "NOT_PLAYING", "This session does not play the stream the request names.",
              "Name a stream this session plays."),
    ErrorInfo(1004005, "STREAM_PLAYER_LIMIT", "The stream has reached max_players_per_stream.",
              "Try later or raise the limit in the node's config."),
    ErrorInfo(1004006, "PLAY_CODEC_MISMATCH", "The play asked for a codec that the stream is not published with (the node forwards, it does not transcode).",
              "Ask for the stream's codec, or leave the codec out and take the one the answer's SDP names."),
)


class ErrorCode(IntEnum):
    """Every client-visible error code, by name."""

    ENGINE_DESTROYED = 1000001
    NOT_LOGGED_IN = 1000002
    NOT_CONNECTED = 1000003
    CONNECTION_LOST = 1000004
    REQUEST_TIMEOUT = 1000005
    APP_ID_INVALID = 1000010
    MALFORMED_MESSAGE = 1000030
    UNSUPPORTED_VERSION = 1000031
    MESSAGE_TOO_LARGE = 1000032
    RATE_LIMITED = 1000033
    UNKNOWN_MESSAGE_TYPE = 1000034
    AUTH_TIMEOUT = 1000035
    INVALID_ARGUMENT = 1000036
    SESSION_NOT_FOUND = 1000037
    UNAUTHORIZED = 1000038
    INTERNAL_ERROR = 1000050
    SERVER_SHUTTING_DOWN = 1000060
    ROOM_COUNT_EXCEED = 1002001
    ALREADY_LOGGED_IN = 1002002
    USER_ID_INVALID = 1002005
    USER_NAME_INVALID = 1002006
    ROOM_ID_INVALID = 1002010
    NOT_IN_ROOM = 1002011
    ROOM_USER_LIMIT = 1002034
    APP_ROOM_LIMIT = 1002035
    KICKED_OUT_DUPLICATE_LOGIN = 1002050
    RECONNECT_FAILED = 1002053
    TOKEN_EXPIRED_KICK_OUT = 1002056
    TOKEN_INVALID = 1002067
    PUBLISH_NOT_LOGGED_IN = 1003001
    STREAM_ID_INVALID = 1003002
    EXTRA_INFO_TOO_LONG = 1003003
    STREAM_ID_IN_USE = 1003028
    ROOM_STREAM_LIMIT = 1003030
    NOT_PUBLISHING = 1003031
    NO_MEDIA_PORT = 1003040
    PUBLISH_PRIVILEGE_DENIED = 1003072
    PLAY_NOT_LOGGED_IN = 1004001
    PLAY_STREAM_ID_INVALID = 1004002
    RESOURCE_MODE_UNSUPPORTED = 1004003
    NOT_PLAYING = 1004004
    STREAM_PLAYER_LIMIT = 1004005
    PLAY_CODEC_MISMATCH = 1004006


ERRORS: dict[int, ErrorInfo] = {info.code: info for info in _TABLE}


def info(code: int) -> ErrorInfo:
    return ERRORS[int(code)]


class SfuError(Exception):
    """An error with a code from the table; `message` says what was wrong with the input."""

    def __init__(self, code: int, message: str | None = None, extended_data: dict | None = None):
        self.code = ErrorCode(code)
        self.message = message or ERRORS[self.code].meaning
        self.extended_data = extended_data or {}
        super().__init__(f"{int(self.code)} {self.code.name}: {self.message}")

    @property
    def name(self) -> str:
        return self.code.name


def render_markdown() -> str:
    lines = [
        "# Error codes",
        "",
        "Every error a client can see, generated from `sfu/errors.py` "
        "(`python -m sfu.errors > docs/errors.md`). Families: 1000xxx general, "
        "1002xxx room, 1003xxx publish, 1004xxx play.",
        "",
        "| code | name | meaning | what to do |",
        "|---|---|---|---|",
    ]
    for e in _TABLE:
        lines.append(f"| {e.code} | `{e.name}` | {e.meaning} | {e.action} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
