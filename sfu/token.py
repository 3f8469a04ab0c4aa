"""ZEGO "04" tokens: make them (for tests and the dev console) and verify them (at login).

This is the token format of ZEGO's server assistant (github.com/zegoim/zego_server_assistant,
`token/*/token04`), so tokens minted by an existing business server work unchanged.

Wire format (all integers big-endian)::

    token  = "04" + base64(standard alphabet, padded) of one of:

    GCM    = int64 expire | uint16 nonce_len | nonce (12) | uint16 len | ciphertext + tag (16) | uint8 mode=1
    CBC    = int64 expire | uint16 iv_len    | iv (16)    | uint16 len | AES-CBC(PKCS#7)     (no mode byte; legacy)

The key is the AppID's 32-character server secret taken as 32 ASCII bytes (AES-256), no AAD.
The plaintext is JSON ``{"app_id", "user_id", "nonce", "ctime", "expire", "payload"}`` where
``payload`` is itself a JSON string (possibly "") that may carry::

    {"room_id": str, "privilege": {"1": login 0|1, "2": publish 0|1}, "stream_id_list": [str] | null}

Rules, in the order `verify_token` applies them:

1. Structure. The length fields must tile the buffer exactly; what is left after the ciphertext
   tells the mode: nothing -> CBC, one byte 1 -> GCM (one byte 0, the generators' enum value for
   CBC, -> CBC). GCM wants a 12-byte nonce and at least a tag; CBC a 16-byte IV and whole blocks.
   Anything else, and tokens over `MAX_TOKEN_CHARS`, are "malformed".
2. Decryption. A GCM tag mismatch, or CBC padding / UTF-8 / JSON garbage, is "bad_signature"
   (CBC has no tag; a wrong secret shows up as garbage). The cleartext expire in the header is
   not authenticated, so it must equal the encrypted one ("bad_signature" otherwise).
3. Claims: wrong-typed fields -> "malformed"; an unparsable payload -> "bad_payload".
4. ``expire > now`` ("expired"), app_id ("app_id_mismatch"), user_id ("user_id_mismatch"),
   room_id when both sides name one ("room_id_mismatch"), login privilege ("login_denied").

Privileges: no payload, or no "privilege" object (absent or null) -> login and publish allowed.
With a "privilege" object, a right is allowed only if its value is 1; a missing key denies it.
An absent, null or empty ``stream_id_list`` means any stream (the generators document an empty
list as "do not check stream ids").

Sans-IO: `now` (unix seconds) is always an argument; randomness comes from `os.urandom`.
Any `str` given as a token yields claims or raises `TokenError`, never anything else.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "MAX_TOKEN_CHARS",
    "TokenClaims",
    "TokenError",
    "decode_token",
    "generate_token04",
    "make_payload",
    "verify_token",
]

VERSION = "04"
MAX_TOKEN_CHARS = 4096

MODE_CBC = 0
MODE_GCM = 1
GCM_NONCE_LEN = 12
GCM_TAG_LEN = 16
CBC_IV_LEN = 16
AES_BLOCK = 16

PRIVILEGE_LOGIN = 1
PRIVILEGE_PUBLISH = 2

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_UINT32_MAX = 2**32 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT_KEY = re.compile(r"[+-]?[0-9]{1,10}")

_MESSAGES = {
    "malformed": "The token is not a well-formed 04 token.",
    "bad_signature": "The token was not made with this AppID's server secret, or was altered.",
    "bad_payload": "The token's payload is not valid privilege JSON.",
    "expired": "The token has expired.",
    "app_id_mismatch": "The token was issued for another AppID.",
    "user_id_mismatch": "The token was issued for another user.",
    "room_id_mismatch": "The token was issued for another room.",
    "login_denied": "The token does not grant the right to log into a room.",
}


class TokenError(Exception):
    """A token was refused. `reason` is a short machine string; str() is a sentence."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or _MESSAGES.get(reason, f"The token was refused ({reason})."))


@dataclass(frozen=True)
class TokenClaims:
    app_id: int
    user_id: str
    nonce: int
    ctime: int
    expire: int
    room_id: str | None
    can_login: bool
    can_publish: bool
    stream_id_list: tuple[str, ...] | None
    raw_payload: str

    def allows_publish(self, stream_id: str) -> bool:
        """True if this token may publish `stream_id`."""
        if not self.can_publish:
            return False
        return self.stream_id_list is None or stream_id in self.stream_id_list


# --- making tokens ---------------------------------------------------------------------------


def make_payload(
    room_id: str | None = None,
    *,
    login: bool = True,
    publish: bool = True,
    stream_ids: list[str] | None = None,
) -> str:
    """The payload JSON string the official samples build: room, privilege bits, stream list.

    `stream_ids=None` allows any stream. An empty list would mean the same thing on the wire,
    so it is refused; pass ``publish=False`` to forbid publishing.
    """
    if stream_ids is not None:
        if not stream_ids:
            raise ValueError("an empty stream_ids list means 'any stream' in the 04 format; "
                             "use publish=False to forbid publishing")
        if not all(isinstance(s, str) for s in stream_ids):
            raise ValueError("stream_ids must be strings")
    payload = {
        "room_id": room_id or "",
        "privilege": {str(PRIVILEGE_LOGIN): int(bool(login)), str(PRIVILEGE_PUBLISH): int(bool(publish))},
        "stream_id_list": list(stream_ids) if stream_ids is not None else None,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def generate_token04(
    app_id: int,
    user_id: str,
    secret: str,
    effective_seconds: int,
    payload: str | dict = "",
    *,
    now: float,
    nonce: int | None = None,
    legacy_cbc: bool = False,
) -> str:
    """Mint a 04 token valid from `now` for `effective_seconds` (AES-GCM, or legacy AES-CBC)."""
    key = _key(secret)
    if isinstance(app_id, bool) or not isinstance(app_id, int) or not 0 < app_id <= _UINT32_MAX:
        raise ValueError("app_id must be an unsigned 32-bit integer other than 0")
    if not isinstance(user_id, str) or not user_id:
        raise ValueError("user_id must be a non-empty string")
    if isinstance(effective_seconds, bool) or not isinstance(effective_seconds, int) or effective_seconds <= 0:
        raise ValueError("effective_seconds must be a positive integer")
    if nonce is None:
        nonce = int.from_bytes(os.urandom(4), "big") & _INT32_MAX
    elif isinstance(nonce, bool) or not isinstance(nonce, int) or not _INT32_MIN <= nonce <= _INT32_MAX:
        raise ValueError("nonce must be a 32-bit signed integer")
    if isinstance(payload, dict):
        payload = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    elif not isinstance(payload, str):
        raise ValueError("payload must be a JSON string or a dict")

    ctime = int(now)
    expire = ctime + effective_seconds
    if not _INT64_MIN <= expire <= _INT64_MAX:
        raise ValueError("expire does not fit in 64 bits")
    plain = json.dumps(
        {"app_id": app_id, "user_id": user_id, "nonce": nonce, "ctime": ctime, "expire": expire,
         "payload": payload},
        separators=(",", ":"), ensure_ascii=False,
    ).encode("utf-8")

    if legacy_cbc:
        iv = os.urandom(CBC_IV_LEN)
        padder = padding.PKCS7(AES_BLOCK * 8).padder()
        encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        sealed = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
        trailer = b""
    else:
        iv = os.urandom(GCM_NONCE_LEN)
        sealed = AESGCM(key).encrypt(iv, plain, None)
        trailer = bytes([MODE_GCM])
    if len(sealed) > 0xFFFF:
        raise ValueError("payload too large for a 04 token")
    raw = (struct.pack(">qH", expire, len(iv)) + iv + struct.pack(">H", len(sealed)) + sealed
           + trailer)
    token = VERSION + base64.b64encode(raw).decode("ascii")
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError(f"token would be {len(token)} characters; verifiers accept at most "
                         f"{MAX_TOKEN_CHARS}")
    return token


# --- reading tokens --------------------------------------------------------------------------


def decode_token(token: str, secret: str) -> TokenClaims:
    """Decrypt and parse a 04 token without checking time, identity or privileges.

    Raises ValueError for a bad secret and TokenError ("malformed", "bad_signature",
    "bad_payload") for a bad token.
    """
    key = _key(secret)
    mode, header_expire, iv, sealed = _unpack(token)
    if mode == MODE_GCM:
        try:
            plain = AESGCM(key).decrypt(iv, sealed, None)
        except InvalidTag:
            raise TokenError("bad_signature") from None
        # Authenticated: content that does not parse was minted that way by the secret's holder.
        fields = _load_json(plain, "malformed")
    else:
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        unpadder = padding.PKCS7(AES_BLOCK * 8).unpadder()
        try:
            padded = decryptor.update(sealed) + decryptor.finalize()
            plain = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise TokenError("bad_signature") from None
        # Not authenticated: garbage here almost always means a wrong secret.
        fields = _load_json(plain, "bad_signature")

    return _claims(fields, header_expire)


def verify_token(
    token: str,
    *,
    secret: str,
    app_id: int,
    user_id: str,
    room_id: str | None,
    now: float,
) -> TokenClaims:
    """Decode `token` and check it lets `user_id` of `app_id` log into `room_id` at `now`.

    `room_id=None` skips the room check (e.g. WHIP/WHEP, where the stream is what matters).
    Publishing rights are left to the caller: `TokenClaims.allows_publish(stream_id)`.
    """
    claims = decode_token(token, secret)
    if not claims.expire > now:
        raise TokenError("expired", f"The token expired at {claims.expire} (now {int(now)}).")
    if claims.app_id != app_id:
        raise TokenError("app_id_mismatch")
    if claims.user_id != user_id:
        raise TokenError("user_id_mismatch")
    if room_id is not None and claims.room_id is not None and claims.room_id != room_id:
        raise TokenError("room_id_mismatch")
    if not claims.can_login:
        raise TokenError("login_denied")
    return claims


# --- internals -------------------------------------------------------------------------------


def _key(secret: str) -> bytes:
    if not isinstance(secret, str) or len(secret) != 32 or not secret.isascii():
        raise ValueError("the server secret must be a string of exactly 32 ASCII characters")
    return secret.encode("ascii")


def _unpack(token: object) -> tuple[int, int, bytes, bytes]:
    """Split a token into (mode, header expire, nonce or IV, sealed bytes), checking structure."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise TokenError("malformed")
    if not token.startswith(VERSION):
        raise TokenError("malformed", "The token is not a version 04 token.")
    body = token[len(VERSION):]
    if not body.isascii():
        raise TokenError("malformed")
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise TokenError("malformed", "The token's body is not valid base64.") from None

    end = len(raw)
    if end < 10:
        raise TokenError("malformed")
    expire, iv_len = struct.unpack_from(">qH", raw, 0)
    at = 10 + iv_len
    if at + 2 > end:
        raise TokenError("malformed")
    iv = raw[10:at]
    (sealed_len,) = struct.unpack_from(">H", raw, at)
    at += 2
    sealed = raw[at:at + sealed_len]
    at += sealed_len
    if at == end:
        mode = MODE_CBC
    elif at + 1 == end and raw[at] in (MODE_CBC, MODE_GCM):
        mode = raw[at]
    else:
        raise TokenError("malformed")

    if mode == MODE_GCM:
        if iv_len != GCM_NONCE_LEN or sealed_len < GCM_TAG_LEN:
            raise TokenError("malformed")
    elif iv_len != CBC_IV_LEN or sealed_len == 0 or sealed_len % AES_BLOCK:
        raise TokenError("malformed")
    return mode, expire, iv, sealed


def _load_json(data: bytes, reason: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise TokenError(reason) from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _claims(fields: Any, header_expire: int) -> TokenClaims:
    if not isinstance(fields, dict):
        raise TokenError("malformed")
    app_id = fields.get("app_id")
    user_id = fields.get("user_id")
    nonce = fields.get("nonce")
    ctime = fields.get("ctime")
    expire = fields.get("expire")
    raw_payload = fields.get("payload", "")
    if not (_is_int(app_id) and 0 <= app_id <= _UINT32_MAX):
        raise TokenError("malformed", "The token's app_id is not an unsigned 32-bit integer.")
    if not isinstance(user_id, str):
        raise TokenError("malformed", "The token's user_id is not a string.")
    if not (_is_int(nonce) and _INT32_MIN <= nonce <= _INT32_MAX):
        raise TokenError("malformed", "The token's nonce is not a 32-bit integer.")
    if not (_is_int(ctime) and _INT64_MIN <= ctime <= _INT64_MAX):
        raise TokenError("malformed", "The token's ctime is not an integer.")
    if not (_is_int(expire) and _INT64_MIN <= expire <= _INT64_MAX):
        raise TokenError("malformed", "The token's expire is not an integer.")
    if expire != header_expire:
        raise TokenError("bad_signature", "The token's clear expiry differs from its encrypted one.")
    if raw_payload is None:
        raw_payload = ""
    if not isinstance(raw_payload, str):
        raise TokenError("bad_payload", "The token's payload is not a string.")

    room_id, can_login, can_publish, stream_ids = _parse_payload(raw_payload)
    return TokenClaims(
        app_id=app_id, user_id=user_id, nonce=nonce, ctime=ctime, expire=expire,
        room_id=room_id, can_login=can_login, can_publish=can_publish,
        stream_id_list=stream_ids, raw_payload=raw_payload,
    )


def _parse_payload(raw: str) -> tuple[str | None, bool, bool, tuple[str, ...] | None]:
    if raw == "":
        return None, True, True, None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        raise TokenError("bad_payload") from None
    if obj is None:
        return None, True, True, None
    if not isinstance(obj, dict):
        raise TokenError("bad_payload", "The token's payload is not a JSON object.")

    room_id = obj.get("room_id")
    if room_id is not None and not isinstance(room_id, str):
        raise TokenError("bad_payload", "The payload's room_id is not a string.")

    privilege = obj.get("privilege")
    if privilege is None:
        can_login = can_publish = True
    elif isinstance(privilege, dict):
        bits: dict[int, Any] = {}
        for key, value in privilege.items():
            if not _INT_KEY.fullmatch(key):
                raise TokenError("bad_payload", f"The payload's privilege key {key!r} is not a number.")
            bits[int(key)] = value
        for value in bits.values():
            if not _is_int(value):
                raise TokenError("bad_payload", "The payload's privilege values must be 0 or 1.")
        can_login = bits.get(PRIVILEGE_LOGIN) == 1
        can_publish = bits.get(PRIVILEGE_PUBLISH) == 1
    else:
        raise TokenError("bad_payload", "The payload's privilege is not an object.")

    stream_list = obj.get("stream_id_list")
    if stream_list is None:
        stream_ids = None
    elif isinstance(stream_list, list) and all(isinstance(s, str) for s in stream_list):
        stream_ids = tuple(stream_list) or None
    else:
        raise TokenError("bad_payload", "The payload's stream_id_list is not a list of strings.")

    return room_id or None, can_login, can_publish, stream_ids
