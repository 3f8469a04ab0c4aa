"""EngineError: every failure the SDK reports, with a code of sfu.errors.ErrorCode."""

from __future__ import annotations

from sfu.errors import ERRORS, ErrorCode


class EngineError(Exception):
    """A failed SDK call: `code`, `name`, `message` and the node's `extended_data`."""

    def __init__(self, code: int, name: str | None = None, message: str | None = None,
                 extended_data: dict | None = None):
        try:
            known: ErrorCode | None = ErrorCode(int(code))
        except ValueError:
            known = None
        self.code: int = known if known is not None else int(code)
        self.name = name or (known.name if known is not None else "UNKNOWN_ERROR")
        self.message = message or (ERRORS[known].meaning if known is not None else "")
        self.extended_data = dict(extended_data or {})
        super().__init__(f"{int(self.code)} {self.name}: {self.message}")

    @classmethod
    def from_frame(cls, frame: dict) -> EngineError:
        """Build from a node `error` frame (docs/protocol.md)."""
        code = frame.get("code")
        if isinstance(code, bool) or not isinstance(code, int):
            code = ErrorCode.INTERNAL_ERROR
        extended = frame.get("extended_data")
        return cls(code, frame.get("name"), frame.get("message"), extended if isinstance(extended, dict) else None)
