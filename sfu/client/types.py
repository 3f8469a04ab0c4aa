"""The seeds' value types: User, Stream, RoomConfig, PlayerConfig, EngineProfile."""

from __future__ import annotations

from dataclasses import dataclass

from sfu.enums import ResourceMode


@dataclass(frozen=True)
class User:
    """A user; `user_name` defaults to `user_id`, as the seeds' ZegoUser(userID) does."""

    user_id: str
    user_name: str | None = None

    def __post_init__(self) -> None:
        if self.user_name is None:
            object.__setattr__(self, "user_name", self.user_id)

    def to_wire(self) -> dict:
        return {"user_id": self.user_id, "user_name": self.user_name}

    @classmethod
    def from_wire(cls, raw: dict) -> User:
        return cls(str(raw.get("user_id", "")), raw.get("user_name"))


@dataclass(frozen=True)
class Stream:
    """A published stream as room_stream_update announces it."""

    stream_id: str
    user: User
    extra_info: str = ""

    @classmethod
    def from_wire(cls, raw: dict) -> Stream:
        return cls(str(raw.get("stream_id", "")), User.from_wire(raw.get("user") or {}), raw.get("extra_info") or "")


@dataclass
class RoomConfig:
    """login_room options. `max_member_count` is accepted for the seeds' API; the node ignores it."""

    token: str = ""
    is_user_status_notify: bool = False
    max_member_count: int = 0


@dataclass
class PlayerConfig:
    resource_mode: ResourceMode = ResourceMode.DEFAULT


@dataclass
class EngineProfile:
    """What Engine.create needs: the AppID and the node's signalling URL (ws://HOST:PORT/ws).

    `request_timeout` bounds the wait for each reply (REQUEST_TIMEOUT when it runs out).
    """

    app_id: int
    server: str
    scenario: int = 0
    request_timeout: float = 10.0
