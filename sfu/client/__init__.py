"""The Python client SDK: the seeds' ZEGO Express flow (login, publish, play) over docs/protocol.md.

    engine = await Engine.create(EngineProfile(app_id=APP_ID, server="ws://127.0.0.1:8080/ws"), handler)
    await engine.login_room("room1", User("user1"), RoomConfig(token=TOKEN, is_user_status_notify=True))
    await engine.start_publishing_stream("stream1")
    await engine.start_playing_stream("stream1", PlayerConfig(resource_mode=ResourceMode.ONLY_L3))
    await engine.logout_room()
    await Engine.destroy(engine)
"""

from sfu.enums import PlayerState, PublisherState, ResourceMode, RoomStateChangedReason, UpdateType
from sfu.errors import ErrorCode

from .engine import Engine
from .error import EngineError
from .handler import EventHandler
from .types import EngineProfile, PlayerConfig, RoomConfig, Stream, User

__all__ = [
    "Engine", "EngineProfile", "EventHandler", "User", "Stream", "RoomConfig", "PlayerConfig",
    "ResourceMode", "RoomStateChangedReason", "UpdateType", "PublisherState", "PlayerState",
    "EngineError", "ErrorCode",
]
