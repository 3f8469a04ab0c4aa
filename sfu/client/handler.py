"""EventHandler: the seeds' callbacks, all no-ops; override the ones you need (plain or async def)."""

from __future__ import annotations

from sfu.enums import PlayerState, PublisherState, RoomStateChangedReason, UpdateType

from .types import Stream, User


class EventHandler:
    def on_room_state_changed(self, room_id: str, reason: RoomStateChangedReason, error_code: int,
                              extended_data: dict) -> None:
        pass

    def on_room_user_update(self, room_id: str, update_type: UpdateType, users: list[User]) -> None:
        pass

    def on_room_stream_update(self, room_id: str, update_type: UpdateType, streams: list[Stream],
                              extended_data: dict) -> None:
        pass

    def on_publisher_state_update(self, stream_id: str, state: PublisherState, error_code: int,
                                  extended_data: dict) -> None:
        pass

    def on_player_state_update(self, stream_id: str, state: PlayerState, error_code: int,
                               extended_data: dict) -> None:
        pass

    def on_room_token_will_expire(self, room_id: str, remaining_seconds: int) -> None:
        pass
