"""The Python client SDK: the seeds' ZEGO Express flow (login, publish, play) over docs/protocol.md.

    engine = await Engine.create(EngineProfile(app_id=APP_ID, server="ws://127.0.0.1:8080/ws"), handler)
    await engine.login_room("room1", User("user1"), RoomConfig(token=TOKEN, is_user_status_notify=True))
    await engine.start_publishing_stream("stream1", config=PublisherConfig(video_codec="VP8"))  # RTP to the node
    await engine.start_playing_stream("stream1", PlayerConfig(resource_mode=ResourceMode.ONLY_L3, decode=True))
    stats = engine.get_player_stats("stream1")  # frames, loss, latency from abs-capture-time
    await engine.logout_room()
    await Engine.destroy(engine)
"""

from sfu.enums import PlayerState, PublisherState, ResourceMode, RoomStateChangedReason, UpdateType
from sfu.errors import ErrorCode

from .engine import Engine
from .error import EngineError
from .handler import EventHandler
from .types import (EngineProfile, PlayerConfig, PlayerStats, PublisherConfig, PublisherStats, RoomConfig, Stream,
                    User)

__all__ = [
    "Engine", "EngineProfile", "EventHandler", "User", "Stream", "RoomConfig", "PlayerConfig",
    "PublisherConfig", "PublisherStats", "PlayerStats",
    "ResourceMode", "RoomStateChangedReason", "UpdateType", "PublisherState", "PlayerState",
    "EngineError", "ErrorCode",
]
