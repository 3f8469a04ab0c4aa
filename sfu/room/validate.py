"""Input rules for identifiers; each failure is an SfuError with the code of the table."""

from __future__ import annotations

import re

from sfu.errors import ErrorCode, SfuError

_ID_RE = re.compile(r"[A-Za-z0-9_.\-]+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

MAX_ROOM_ID = 128
MAX_USER_ID = 64
MAX_USER_NAME_BYTES = 256
MAX_STREAM_ID = 256
MAX_EXTRA_INFO_BYTES = 1024


def _ident(value: object, max_len: int, code: ErrorCode, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise SfuError(code, f"{what} must be a non-empty string")
    if len(value) > max_len:
        raise SfuError(code, f"{what} is {len(value)} characters long; at most {max_len} are allowed")
    if not _ID_RE.fullmatch(value):
        raise SfuError(code, f"{what} {value!r} has characters outside [A-Za-z0-9_.-]")
    return value


def room_id(value: object) -> str:
    return _ident(value, MAX_ROOM_ID, ErrorCode.ROOM_ID_INVALID, "room_id")


def user_id(value: object) -> str:
    return _ident(value, MAX_USER_ID, ErrorCode.USER_ID_INVALID, "user_id")


def stream_id(value: object, *, play: bool = False) -> str:
    code = ErrorCode.PLAY_STREAM_ID_INVALID if play else ErrorCode.STREAM_ID_INVALID
    return _ident(value, MAX_STREAM_ID, code, "stream_id")


def user_name(value: object) -> str:
    if not isinstance(value, str):
        raise SfuError(ErrorCode.USER_NAME_INVALID, "user_name must be a string")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_USER_NAME_BYTES:
        raise SfuError(ErrorCode.USER_NAME_INVALID, f"user_name is longer than {MAX_USER_NAME_BYTES} bytes")
    if _CONTROL_RE.search(value):
        raise SfuError(ErrorCode.USER_NAME_INVALID, "user_name has control characters")
    return value


def extra_info(value: object) -> str:
    if not isinstance(value, str):
        raise SfuError(ErrorCode.INVALID_ARGUMENT, "extra_info must be a string")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_EXTRA_INFO_BYTES:
        raise SfuError(ErrorCode.EXTRA_INFO_TOO_LONG, f"extra_info is longer than {MAX_EXTRA_INFO_BYTES} bytes")
    return value


def app_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (0 < value <= 0xFFFFFFFF):
        raise SfuError(ErrorCode.APP_ID_INVALID, f"app_id must be an unsigned 32-bit integer > 0, got {value!r}")
    return value
