"""The room service (DESIGN.md §1) as a sans-IO core."""

from sfu.room.service import Close, RoomService, Send, event

__all__ = ["Close", "RoomService", "Send", "event"]
