"""Node configuration: TOML file or embedded development defaults.

A bad config is refused at start with a ConfigError naming the key and the problem.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SECRET_RE = re.compile(r"^[\x21-\x7e]{32}$")


class ConfigError(ValueError):
    """A config value is missing or wrong; the message names the key."""


@dataclass(frozen=True)
class AppConfig:
    app_id: int
    secret: str
    max_rooms: int = 10_000
    max_users_per_room: int = 10_000
    max_streams_per_room: int = 100
    max_players_per_stream: int = 10_000


@dataclass(frozen=True)
class _AppLimits:
    max_rooms: int = 10_000
    max_users_per_room: int = 10_000
    max_streams_per_room: int = 100
    max_players_per_stream: int = 10_000


@dataclass(frozen=True)
class SessionConfig:
    heartbeat_interval: float = 5.0
    session_timeout: float = 15.0
    reconnect_grace: float = 20.0
    auth_timeout: float = 10.0
    user_event_batch_interval: float = 0.05
    token_warning: float = 30.0
    rtp_idle_timeout: float = 10.0  # an HTTP API publish session ends after this long without packets
    # an HTTP API play session ends after its every address has been reported unreachable (ICMP) this long
    rtp_unreachable_timeout: float = 30.0


@dataclass(frozen=True)
class SignallingConfig:
    max_message_bytes: int = 65_536
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 100


@dataclass(frozen=True)
class MetricsConfig:
    per_stream_labels: bool = False  # also export per-stream families (a stream_id label: unbounded)


@dataclass(frozen=True)
class L3Config:
    """The L3 timeline's bounds on its target delay, in seconds (the jitter buffer's, sfu/media/jitter.py):
    a frame is released its first packet's arrival + a target within [min_delay, max_delay].
    min_delay = max_delay fixes the hold (a benchmark measuring what comes after it)."""

    min_delay: float = 0.02  # the defaults are MediaSettings' (sfu/media/track.py)
    max_delay: float = 0.35  # with the uplink's and the player's, end-to-end under 400 ms
    late_repair: bool = True  # a frame not whole at its release waits for its repair, up to max_delay


@dataclass(frozen=True)
class MediaConfig:
    """[media]: each publisher track's retransmission history (the ring its players' NACKs, and the
    RTC keyframe cache, read), the keyframe cache a new player starts from, and how often a
    keyframe may be asked of a publisher. The defaults are MediaSettings' (sfu/media/track.py)."""

    retransmission_packets: int = 4096  # a power of two, 128-32768 (half the 16-bit sequence space)
    retransmission_age: float = 2.0  # seconds a packet stays there for a player's NACK
    keyframe_cache_packets: int = 4096  # a GOP longer than this: a new player gets the keyframe alone
    keyframe_cache_bytes: int = 6_144_000
    keyframe_min_interval: float = 0.5  # seconds between keyframe requests to a publisher


@dataclass(frozen=True)
class NodeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    rtp_ports: tuple[int, int] = (40000, 40999)


@dataclass(frozen=True)
class Config:
    apps: tuple[AppConfig, ...]
    node: NodeConfig = field(default_factory=NodeConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    signalling: SignallingConfig = field(default_factory=SignallingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    l3: L3Config = field(default_factory=L3Config)
    media: MediaConfig = field(default_factory=MediaConfig)

    def app(self, app_id: int) -> AppConfig | None:
        for a in self.apps:
            if a.app_id == app_id:
                return a
        return None


def parse_port_range(value: str, key: str = "rtp_ports") -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", str(value))
    if not m:
        raise ConfigError(f"{key}: expected a range like 40000-40999, got {value!r}")
    lo, hi = int(m.group(1)), int(m.group(2))
    if not (1 <= lo <= hi <= 65535):
        raise ConfigError(f"{key}: range {lo}-{hi} must satisfy 1 <= low <= high <= 65535")
    return lo, hi


def _typed(section: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}]: expected a table, got {type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{section}.{key}"
        if key not in known:
            raise ConfigError(f"{name}: unknown key (known: {', '.join(sorted(known))})")
        default = known[key].default
        if key == "rtp_ports":
            kwargs[key] = parse_port_range(value, name)
            continue
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{name}: expected true or false, got {value!r}")
            kwargs[key] = value
            continue
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        if isinstance(default, int) and not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        if isinstance(default, float) and not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        if isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name}: must be a finite number, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool) and value <= 0:
            raise ConfigError(f"{name}: must be > 0, got {value!r}")
        kwargs[key] = float(value) if isinstance(default, float) else value
    return cls(**kwargs)


def _l3(raw: Any) -> L3Config:
    """[l3]: seconds, finite, 0 <= min_delay <= max_delay, max_delay > 0 (a frame needs time for its
    later packets)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"[l3]: expected a table, got {type(raw).__name__}")
    known = {f.name for f in fields(L3Config)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"l3.{key}"
        if key not in known:
            raise ConfigError(f"{name}: unknown key (known: {', '.join(sorted(known))})")
        if key == "late_repair":
            if not isinstance(value, bool):
                raise ConfigError(f"{name}: expected true or false, got {value!r}")
            values[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: expected a number of seconds, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{name}: must be a finite number of seconds, got {value!r}")
        if value < 0:
            raise ConfigError(f"{name}: must be >= 0 seconds, got {value!r}")
        values[key] = float(value)
    cfg = L3Config(**values)
    if cfg.max_delay <= 0:
        raise ConfigError(f"l3.max_delay: must be > 0 seconds (a frame's later packets need time), got {cfg.max_delay!r}")
    if cfg.min_delay > cfg.max_delay:
        unset = " (the default)"
        raise ConfigError(f"l3.min_delay: must be <= l3.max_delay ({cfg.min_delay}"
                          f"{'' if 'min_delay' in values else unset} > {cfg.max_delay}"
                          f"{'' if 'max_delay' in values else unset})")
    return cfg


def _media(raw: Any, l3: L3Config) -> MediaConfig:
    """[media]: numbers > 0 (_typed); the ring's size a power of two in 128-32768; the keyframe cache
    within the ring (an RTC player's start is read from it); and the history kept longer than L3
    holds a frame, so that an L3 player's NACK still finds what was released to it."""
    cfg = _typed("media", MediaConfig, raw)
    n = cfg.retransmission_packets
    if n < 128 or n > 32768 or n & (n - 1):
        raise ConfigError(f"media.retransmission_packets: must be a power of two from 128 to 32768, got {n}")
    if cfg.keyframe_cache_packets > n:
        raise ConfigError(f"media.keyframe_cache_packets: must be <= media.retransmission_packets "
                          f"({cfg.keyframe_cache_packets} > {n}): an RTC player's first GOP is read from that history")
    if cfg.retransmission_age <= l3.max_delay:
        raise ConfigError(f"media.retransmission_age: must be above l3.max_delay ({cfg.retransmission_age} <= "
                          f"{l3.max_delay}): an L3 player's NACK for a frame the timeline held that long must "
                          f"still find its packets")
    return cfg


def _app(index: int, raw: Any) -> AppConfig:
    where = f"apps[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    for key in ("app_id", "secret"):
        if key not in raw:
            raise ConfigError(f"{where}.{key}: missing")
    app_id = raw["app_id"]
    if isinstance(app_id, bool) or not isinstance(app_id, int) or not (0 < app_id <= 0xFFFFFFFF):
        raise ConfigError(f"{where}.app_id: must be an unsigned 32-bit integer > 0, got {app_id!r}")
    secret = raw["secret"]
    if not isinstance(secret, str) or not SECRET_RE.match(secret):
        raise ConfigError(f"{where}.secret: must be exactly 32 printable ASCII characters")
    limits = _typed(where, _AppLimits, {k: v for k, v in raw.items() if k not in ("app_id", "secret")})
    return AppConfig(app_id=app_id, secret=secret, **asdict(limits))


def config_from_dict(raw: dict[str, Any]) -> Config:
    allowed = {"apps", "node", "session", "signalling", "metrics", "l3", "media"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{key}: unknown top-level key (known: {', '.join(sorted(allowed))})")
    apps_raw = raw.get("apps")
    if not isinstance(apps_raw, list) or not apps_raw:
        raise ConfigError("apps: at least one [[apps]] table with app_id and secret is required")
    apps = tuple(_app(i, a) for i, a in enumerate(apps_raw))
    seen: set[int] = set()
    for i, a in enumerate(apps):
        if a.app_id in seen:
            raise ConfigError(f"apps[{i}].app_id: {a.app_id} is configured twice")
        seen.add(a.app_id)
    cfg = Config(
        apps=apps,
        node=_typed("node", NodeConfig, raw.get("node", {})),
        session=_typed("session", SessionConfig, raw.get("session", {})),
        signalling=_typed("signalling", SignallingConfig, raw.get("signalling", {})),
        metrics=_typed("metrics", MetricsConfig, raw.get("metrics", {})),
        l3=(l3 := _l3(raw.get("l3", {}))),
        media=_media(raw.get("media", {}), l3),
    )
    if cfg.node.port > 65535:
        raise ConfigError(f"node.port: must be <= 65535, got {cfg.node.port}")
    s = cfg.session
    if s.heartbeat_interval >= s.session_timeout:
        raise ConfigError(
            f"session.heartbeat_interval: must be below session.session_timeout "
            f"({s.heartbeat_interval} >= {s.session_timeout})"
        )
    return cfg


def load_config(path: str | os.PathLike[str]) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config file: {e.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    return config_from_dict(raw)


def default_state_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "sfu" / "dev-app.json"


def dev_app(state_file: Path) -> tuple[AppConfig, bool]:
    """The development AppID and secret, created once and reused from `state_file`.

    Returns (app, created).
    """
    if state_file.exists():
        try:
            data = json.loads(state_file.read_text(encoding="utf-8"))
            app = _app(0, {"app_id": data["app_id"], "secret": data["secret"]})
        except (ValueError, KeyError, TypeError, ConfigError) as e:
            raise ConfigError(f"{state_file}: development state file is damaged ({e}); delete it to start afresh") from None
        return app, False
    app = AppConfig(app_id=secrets.randbelow(0xFFFFFFFE) + 1, secret=secrets.token_hex(16))
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"app_id": app.app_id, "secret": app.secret}), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(state_file)
    return app, True
