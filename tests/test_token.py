"""ZEGO 04 tokens: round trips, hand-built vectors, every rejection reason, privileges, fuzzing."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.token import (
    MAX_TOKEN_CHARS,
    TokenClaims,
    TokenError,
    decode_token,
    generate_token04,
    make_payload,
    verify_token,
)

APP_ID = 1234567890
SECRET = "fa94dd0f974cf2e293728a526b028271"
OTHER_SECRET = "0123456789abcdef0123456789abcdef"
USER = "user1"
ROOM = "room1"
NOW = 1_700_000_000.0


def token(payload: str | dict = "", *, legacy_cbc: bool = False, ttl: int = 3600, now: float = NOW,
          user_id: str = USER, app_id: int = APP_ID, secret: str = SECRET) -> str:
    return generate_token04(app_id, user_id, secret, ttl, payload, now=now, legacy_cbc=legacy_cbc)


def verify(tok: str, *, room_id: str | None = ROOM, now: float = NOW, user_id: str = USER,
           app_id: int = APP_ID, secret: str = SECRET) -> TokenClaims:
    return verify_token(tok, secret=secret, app_id=app_id, user_id=user_id, room_id=room_id, now=now)


def reason_of(tok: str, **kwargs) -> str:
    with pytest.raises(TokenError) as info:
        verify(tok, **kwargs)
    return info.value.reason


# --- an independent encoder, written from the byte layout ------------------------------------


def hand_gcm(plain: bytes, *, expire: int, nonce: bytes = b"abcdefghij12", secret: str = SECRET,
             mode_byte: bytes = b"\x01") -> str:
    sealed = AESGCM(secret.encode()).encrypt(nonce, plain, None)
    raw = (expire.to_bytes(8, "big", signed=True) + len(nonce).to_bytes(2, "big") + nonce
           + len(sealed).to_bytes(2, "big") + sealed + mode_byte)
    return "04" + base64.b64encode(raw).decode()


def hand_cbc(plain: bytes, *, expire: int, iv: bytes = b"0123456789abcdef", secret: str = SECRET) -> str:
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(secret.encode()), modes.CBC(iv)).encryptor()
    sealed = enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()
    raw = (expire.to_bytes(8, "big", signed=True) + len(iv).to_bytes(2, "big") + iv
           + len(sealed).to_bytes(2, "big") + sealed)
    return "04" + base64.b64encode(raw).decode()


def raw_of(tok: str) -> bytes:
    return base64.b64decode(tok[2:])


def from_raw(raw: bytes) -> str:
    return "04" + base64.b64encode(raw).decode()


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("legacy_cbc", [False, True], ids=["gcm", "cbc"])
def test_round_trip(legacy_cbc):
    payload = make_payload(ROOM, login=True, publish=True, stream_ids=["s1", "s2"])
    tok = generate_token04(APP_ID, USER, SECRET, 3600, payload, now=NOW + 0.9, nonce=-42,
                           legacy_cbc=legacy_cbc)
    claims = verify(tok)
    assert claims == TokenClaims(
        app_id=APP_ID, user_id=USER, nonce=-42, ctime=int(NOW), expire=int(NOW) + 3600,
        room_id=ROOM, can_login=True, can_publish=True, stream_id_list=("s1", "s2"),
        raw_payload=payload,
    )
    assert decode_token(tok, SECRET) == claims


def test_layouts_of_generated_tokens():
    gcm = raw_of(token())
    expire, nonce_len = struct.unpack_from(">qH", gcm)
    (sealed_len,) = struct.unpack_from(">H", gcm, 10 + nonce_len)
    assert (expire, nonce_len) == (int(NOW) + 3600, 12)
    assert len(gcm) == 8 + 2 + 12 + 2 + sealed_len + 1 and gcm[-1] == 1

    cbc = raw_of(token(legacy_cbc=True))
    expire, iv_len = struct.unpack_from(">qH", cbc)
    (sealed_len,) = struct.unpack_from(">H", cbc, 10 + iv_len)
    assert (expire, iv_len) == (int(NOW) + 3600, 16)
    assert len(cbc) == 8 + 2 + 16 + 2 + sealed_len and sealed_len % 16 == 0


def test_unicode_user_and_room_round_trip():
    tok = token(make_payload("房间-1"), user_id="用户😀")
    assert verify(tok, user_id="用户😀", room_id="房间-1").room_id == "房间-1"


def test_payload_may_be_a_dict():
    tok = token({"room_id": ROOM, "privilege": {"1": 1, "2": 0}})
    claims = verify(tok)
    assert (claims.can_login, claims.can_publish) == (True, False)


# --- known vectors, built by hand like the official generators -------------------------------


def test_hand_built_gcm_vector_like_official_python_generator():
    expire = int(NOW) + 3600
    # json.dumps of a payload with int keys, default separators, as in the official sample.
    payload = json.dumps({"room_id": ROOM, "privilege": {1: 1, 2: 0}, "stream_id_list": None})
    plain = json.dumps({"app_id": APP_ID, "user_id": USER, "nonce": 7, "ctime": int(NOW),
                        "expire": expire, "payload": payload}, separators=(",", ":")).encode()
    tok = hand_gcm(plain, expire=expire)
    claims = verify(tok)
    assert (claims.nonce, claims.ctime, claims.expire) == (7, int(NOW), expire)
    assert (claims.room_id, claims.can_login, claims.can_publish) == (ROOM, True, False)
    assert claims.stream_id_list is None and claims.raw_payload == payload


def test_hand_built_cbc_vector_like_official_java_generator():
    expire = int(NOW) + 300
    # json-simple puts keys in hash order and always writes an empty payload; nonce may be negative.
    plain = json.dumps({"payload": "", "ctime": int(NOW), "nonce": -2_000_000_000, "user_id": USER,
                        "expire": expire, "app_id": APP_ID}).encode()
    tok = hand_cbc(plain, expire=expire)
    claims = verify(tok, room_id=None)
    assert (claims.nonce, claims.room_id, claims.can_login, claims.can_publish) == (-2_000_000_000, None, True, True)


def test_pinned_gcm_bytes():
    expire = 1_700_003_600
    plain = (b'{"app_id":1,"user_id":"demo","nonce":1,"ctime":1700000000,"expire":1700003600,'
             b'"payload":""}')
    tok = hand_gcm(plain, expire=expire, nonce=b"000000000000")
    raw = raw_of(tok)
    assert raw[:24] == bytes.fromhex("000000006553ff10000c") + b"000000000000" + len(plain + bytes(16)).to_bytes(2, "big")
    assert decode_token(tok, SECRET).user_id == "demo"


def test_mode_byte_zero_is_cbc():
    expire = int(NOW) + 60
    plain = json.dumps({"app_id": APP_ID, "user_id": USER, "nonce": 1, "ctime": int(NOW),
                        "expire": expire, "payload": ""}).encode()
    tok = from_raw(raw_of(hand_cbc(plain, expire=expire)) + b"\x00")
    assert verify(tok).user_id == USER


# --- rejections ------------------------------------------------------------------------------


def _gcm_raw() -> bytes:
    return raw_of(token())


@pytest.mark.parametrize("bad", [
    "",
    "0",
    "04",
    "03" + token()[2:],
    "4" + token()[2:],
    token() + "!",
    token()[:-1],                          # base64 no longer a multiple of 4
    "04" + "é" * 40,
    "04 " + token()[2:],
    "04" + "A" * (MAX_TOKEN_CHARS - 2 + 4),  # over the cap
    from_raw(b""),
    from_raw(b"\x00" * 9),
    from_raw(_gcm_raw()[:10]),             # stops after nonce_len
    from_raw(_gcm_raw()[:-1]),             # no mode byte, 12-byte nonce -> not CBC
    from_raw(_gcm_raw() + b"\x01"),        # two trailing bytes
    from_raw(_gcm_raw()[:-1] + b"\x02"),   # unknown mode
    from_raw(_gcm_raw()[:8] + b"\x00\x00" + b"\x00\x10" + bytes(16) + b"\x01"),  # nonce_len 0
    from_raw(_gcm_raw()[:8] + b"\xff\xff" + _gcm_raw()[10:]),                   # nonce_len past end
    from_raw(_gcm_raw()[:22] + b"\xff\xff" + _gcm_raw()[24:]),                  # cipher_len past end
    from_raw(_gcm_raw()[:22] + b"\x00\x0f" + _gcm_raw()[24:24 + 15] + b"\x01"), # shorter than a tag
    from_raw(raw_of(token(legacy_cbc=True))[:-1]),                              # not whole blocks
], ids=lambda s: repr(s[:16]))
def test_malformed(bad):
    assert reason_of(bad) == "malformed"


def test_non_str_token_is_malformed():
    with pytest.raises(TokenError):
        verify(None)  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        verify(b"04abc")  # type: ignore[arg-type]


@pytest.mark.parametrize("legacy_cbc", [False, True], ids=["gcm", "cbc"])
def test_wrong_secret_is_bad_signature(legacy_cbc):
    tok = token(make_payload(ROOM), legacy_cbc=legacy_cbc)
    assert reason_of(tok, secret=OTHER_SECRET) == "bad_signature"


def test_tampered_gcm_ciphertext_and_tag_are_bad_signature():
    raw = bytearray(_gcm_raw())
    for index in (24, len(raw) - 2):       # first ciphertext byte, last tag byte
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        assert reason_of(from_raw(bytes(flipped))) == "bad_signature"


def test_tampered_clear_expiry_is_bad_signature():
    raw = bytearray(_gcm_raw())
    raw[:8] = (int(NOW) + 10**6).to_bytes(8, "big")
    assert reason_of(from_raw(bytes(raw))) == "bad_signature"


def test_gcm_with_unparsable_plaintext_is_malformed():
    assert reason_of(hand_gcm(b"not json", expire=int(NOW) + 60)) == "malformed"
    assert reason_of(hand_gcm(b'{"app_id":"1"}', expire=int(NOW) + 60)) == "malformed"


def test_cbc_with_unparsable_plaintext_is_bad_signature():
    assert reason_of(hand_cbc(b"\xff\xfe garbage", expire=int(NOW) + 60)) == "bad_signature"


@pytest.mark.parametrize("field, value", [
    ("app_id", "1234567890"), ("app_id", 2**32), ("app_id", True), ("user_id", 5),
    ("nonce", 2**31), ("nonce", 1.5), ("ctime", None), ("expire", "x"),
])
def test_wrong_typed_claims_are_malformed(field, value):
    fields = {"app_id": APP_ID, "user_id": USER, "nonce": 1, "ctime": int(NOW),
              "expire": int(NOW) + 60, "payload": ""}
    fields[field] = value
    assert reason_of(hand_gcm(json.dumps(fields).encode(), expire=int(NOW) + 60)) == "malformed"


@pytest.mark.parametrize("payload", [
    "{", "[]", "3", '{"room_id": 5}', '{"privilege": [1, 1]}', '{"privilege": {"login": 1}}',
    '{"privilege": {"1": "1"}}', '{"privilege": {"1": true}}', '{"stream_id_list": "s1"}',
    '{"stream_id_list": [1]}', "[" * 1500,
], ids=lambda s: s[:24])
def test_bad_payload(payload):
    assert reason_of(token(payload)) == "bad_payload"


def test_payload_that_is_not_a_string_is_bad_payload():
    fields = {"app_id": APP_ID, "user_id": USER, "nonce": 1, "ctime": int(NOW),
              "expire": int(NOW) + 60, "payload": {"room_id": ROOM}}
    assert reason_of(hand_gcm(json.dumps(fields).encode(), expire=int(NOW) + 60)) == "bad_payload"


def test_expiry_boundary():
    tok = token(ttl=60)
    expire = int(NOW) + 60
    assert verify(tok, now=expire - 0.001).expire == expire
    assert reason_of(tok, now=expire) == "expired"
    assert reason_of(tok, now=expire + 1e6) == "expired"


def test_identity_mismatches():
    tok = token(make_payload(ROOM))
    assert reason_of(tok, app_id=APP_ID + 1) == "app_id_mismatch"
    assert reason_of(tok, user_id="user2") == "user_id_mismatch"
    assert reason_of(tok, room_id="room2") == "room_id_mismatch"


def test_room_is_checked_only_when_both_sides_name_one():
    assert verify(token(make_payload(ROOM)), room_id=None).room_id == ROOM
    assert verify(token(make_payload(None)), room_id="any").room_id is None
    assert verify(token(""), room_id="any").room_id is None


def test_login_denied():
    assert reason_of(token(make_payload(ROOM, login=False))) == "login_denied"
    # decode_token does not judge privileges
    assert decode_token(token(make_payload(ROOM, login=False)), SECRET).can_login is False


def test_token_error_carries_reason_and_sentence():
    err = TokenError("expired")
    assert err.reason == "expired" and str(err).endswith(".") and " " in str(err)


# --- privileges and stream lists -------------------------------------------------------------


@pytest.mark.parametrize("payload, login, publish", [
    ("", True, True),
    ("null", True, True),
    ("{}", True, True),
    ('{"room_id": "room1"}', True, True),
    ('{"privilege": null}', True, True),
    ('{"privilege": {}}', False, False),
    ('{"privilege": {"1": 1}}', True, False),
    ('{"privilege": {"2": 1}}', False, True),
    ('{"privilege": {"1": 1, "2": 1}}', True, True),
    ('{"privilege": {"1": 0, "2": 1}}', False, True),
    ('{"privilege": {"1": 2, "2": -1}}', False, False),
    ('{"privilege": {"01": 1, "+2": 1, "3": 1}}', True, True),
])
def test_privilege_semantics(payload, login, publish):
    claims = decode_token(token(payload), SECRET)
    assert (claims.can_login, claims.can_publish) == (login, publish)


@pytest.mark.parametrize("stream_id_list, expected", [
    (None, None), ([], None), (["a"], ("a",)), (["a", "b"], ("a", "b")),
])
def test_stream_id_list_normalised(stream_id_list, expected):
    payload = json.dumps({"privilege": {"1": 1, "2": 1}, "stream_id_list": stream_id_list})
    assert decode_token(token(payload), SECRET).stream_id_list == expected


def test_allows_publish():
    only_a = decode_token(token(make_payload(ROOM, stream_ids=["a"])), SECRET)
    assert only_a.allows_publish("a") and not only_a.allows_publish("b")
    anything = decode_token(token(make_payload(ROOM)), SECRET)
    assert anything.allows_publish("a") and anything.allows_publish("b")
    denied = decode_token(token(make_payload(ROOM, publish=False, stream_ids=["a"])), SECRET)
    assert not denied.allows_publish("a")


def test_make_payload_shape():
    assert json.loads(make_payload("r", login=True, publish=False, stream_ids=["s"])) == {
        "room_id": "r", "privilege": {"1": 1, "2": 0}, "stream_id_list": ["s"]}
    assert json.loads(make_payload()) == {"room_id": "", "privilege": {"1": 1, "2": 1},
                                          "stream_id_list": None}
    with pytest.raises(ValueError):
        make_payload("r", stream_ids=[])


# --- argument errors -------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "short", SECRET + "x", SECRET[:31], "é" * 32, None])
def test_bad_secret_is_value_error(secret):
    with pytest.raises(ValueError):
        generate_token04(APP_ID, USER, secret, 60, now=NOW)
    with pytest.raises(ValueError):
        decode_token(token(), secret)
    with pytest.raises(ValueError):
        verify(token(), secret=secret)


@pytest.mark.parametrize("kwargs", [
    {"app_id": 0}, {"app_id": 2**32}, {"user_id": ""}, {"effective_seconds": 0},
    {"nonce": 2**31}, {"payload": 5},
])
def test_bad_generate_arguments(kwargs):
    args = {"app_id": APP_ID, "user_id": USER, "secret": SECRET, "effective_seconds": 60,
            "payload": "", "now": NOW, **kwargs}
    with pytest.raises(ValueError):
        generate_token04(**args)


def test_generate_refuses_tokens_the_verifier_would_refuse():
    with pytest.raises(ValueError):
        token("x" * MAX_TOKEN_CHARS)


# --- fuzzing: input never raises anything but TokenError -------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_VALID = {"gcm": token(make_payload(ROOM, stream_ids=["s"])),
          "cbc": token(make_payload(ROOM, stream_ids=["s"]), legacy_cbc=True)}


def _verify_or_token_error(tok: str) -> None:
    try:
        verify(tok)
    except TokenError:
        pass


@FUZZ
@given(st.text())
def test_fuzz_text(text):
    _verify_or_token_error(text)
    _verify_or_token_error("04" + text)


@FUZZ
@given(st.binary(max_size=3000))
def test_fuzz_bytes(data):
    _verify_or_token_error(from_raw(data))


@FUZZ
@given(st.binary(max_size=200), st.integers(0, 40), st.integers(0, 40), st.sampled_from([b"", b"\x00", b"\x01", b"\x02"]))
def test_fuzz_structured(body, nonce_len, extra, trailer):
    raw = struct.pack(">qH", int(NOW) + 60, nonce_len) + body[:nonce_len] + struct.pack(">H", len(body) + extra) + body + trailer
    _verify_or_token_error(from_raw(raw))


@FUZZ
@given(st.data())
def test_fuzz_gcm_bit_flips_always_refused(data):
    raw = bytearray(raw_of(_VALID["gcm"]))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(TokenError):
        verify(from_raw(bytes(raw)))


@FUZZ
@given(st.sampled_from(sorted(_VALID)), st.data())
def test_fuzz_truncation_always_refused(mode, data):
    raw = raw_of(_VALID[mode])
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(TokenError):
        verify(from_raw(raw[:cut]))
    with pytest.raises(TokenError):
        verify(_VALID[mode][:cut])


@FUZZ
@given(st.sampled_from(sorted(_VALID)), st.data())
def test_fuzz_cbc_and_text_mutations(mode, data):
    # CBC is not authenticated, so a flip may survive decryption; it still must not crash.
    raw = bytearray(raw_of(_VALID[mode]))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    _verify_or_token_error(from_raw(bytes(raw)))
    text = list(_VALID[mode])
    text[data.draw(st.integers(0, len(text) - 1))] = data.draw(st.characters())
    _verify_or_token_error("".join(text))
