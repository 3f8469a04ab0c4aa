"""The room service (DESIGN.md §1) as a sans-IO core."""

from sfu.room.service import Close, MediaChange, RoomService, Send, event

__all__ = ["Close", "MediaChange", "RoomService", "Send", "event"]
