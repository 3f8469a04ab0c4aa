"""Config validation names the key and the problem; the development app persists."""

import json

import pytest

from sfu.config import ConfigError, config_from_dict, dev_app, load_config

GOOD = {"app_id": 7, "secret": "0123456789abcdef0123456789abcdef"}


def test_defaults_and_overrides():
    cfg = config_from_dict({"apps": [dict(GOOD, max_streams_per_room=3)], "session": {"reconnect_grace": 2},
                            "node": {"rtp_ports": "50000-50010", "port": 9000}})
    assert cfg.app(7).max_streams_per_room == 3 and cfg.app(8) is None
    assert cfg.session.reconnect_grace == 2.0 and isinstance(cfg.session.reconnect_grace, float)
    assert cfg.node.rtp_ports == (50000, 50010) and cfg.node.port == 9000


@pytest.mark.parametrize("raw, fragment", [
    ({}, "apps"),
    ({"apps": [GOOD, GOOD]}, "configured twice"),
    ({"apps": [{"secret": GOOD["secret"]}]}, "apps[0].app_id: missing"),
    ({"apps": [dict(GOOD, app_id=2**32)]}, "apps[0].app_id"),
    ({"apps": [dict(GOOD, app_id=True)]}, "apps[0].app_id"),
    ({"apps": [dict(GOOD, secret="x" * 31)]}, "apps[0].secret"),
    ({"apps": [dict(GOOD, max_rooms=0)]}, "apps[0].max_rooms: must be > 0"),
    ({"apps": [dict(GOOD, max_rooms=1.5)]}, "apps[0].max_rooms: expected an integer"),
    ({"apps": [GOOD], "session": {"heartbeat_interval": 20, "session_timeout": 10}}, "session.heartbeat_interval"),
    ({"apps": [GOOD], "signalling": {"rate_limit_burst": "many"}}, "signalling.rate_limit_burst"),
    ({"apps": [GOOD], "node": {"port": 70000}}, "node.port"),
    ({"apps": [GOOD], "node": "x"}, "[node]"),
    ({"apps": [GOOD], "metrics": {"per_stream_labels": "yes"}}, "metrics.per_stream_labels: expected true or false"),
    ({"apps": [GOOD], "metrics": {"per_stream_labels": 1}}, "metrics.per_stream_labels: expected true or false"),
    ({"apps": [GOOD], "metrics": {"stream_labels": True}}, "metrics.stream_labels: unknown key"),
    ({"apps": [GOOD], "l3": "x"}, "[l3]: expected a table"),
    ({"apps": [GOOD], "l3": {"min_delay": "0.1"}}, "l3.min_delay: expected a number of seconds"),
    ({"apps": [GOOD], "l3": {"max_delay": True}}, "l3.max_delay: expected a number of seconds"),
    ({"apps": [GOOD], "l3": {"min_delay": -0.01}}, "l3.min_delay: must be >= 0"),
    ({"apps": [GOOD], "l3": {"max_delay": -1}}, "l3.max_delay: must be >= 0"),
    ({"apps": [GOOD], "l3": {"max_delay": float("inf")}}, "l3.max_delay: must be a finite number"),
    ({"apps": [GOOD], "l3": {"min_delay": float("nan")}}, "l3.min_delay: must be a finite number"),
    ({"apps": [GOOD], "l3": {"min_delay": 0, "max_delay": 0}}, "l3.max_delay: must be > 0"),
    ({"apps": [GOOD], "l3": {"min_delay": 0.2, "max_delay": 0.1}}, "l3.min_delay: must be <= l3.max_delay (0.2 > 0.1)"),
    ({"apps": [GOOD], "l3": {"max_delay": 0.01}}, "l3.min_delay: must be <= l3.max_delay (0.02 (the default) > 0.01)"),
    ({"apps": [GOOD], "l3": {"delay": 0.1}}, "l3.delay: unknown key"),
    ({"apps": [GOOD], "l3": {"late_repair": 1}}, "l3.late_repair: expected true or false"),
    ({"apps": [GOOD], "session": {"session_timeout": float("inf")}}, "session.session_timeout: must be a finite number"),
    ({"apps": [GOOD], "session": {"reconnect_grace": float("nan")}}, "session.reconnect_grace: must be a finite number"),
    ({"apps": [GOOD], "media": "x"}, "[media]: expected a table"),
    ({"apps": [GOOD], "media": {"ring": 4096}}, "media.ring: unknown key"),
    ({"apps": [GOOD], "media": {"retransmission_packets": 5000}}, "media.retransmission_packets: must be a power of two from 128 to 32768, got 5000"),
    ({"apps": [GOOD], "media": {"retransmission_packets": 65536}}, "media.retransmission_packets: must be a power of two"),
    ({"apps": [GOOD], "media": {"retransmission_packets": 64}}, "media.retransmission_packets: must be a power of two"),
    ({"apps": [GOOD], "media": {"retransmission_packets": 4096.0}}, "media.retransmission_packets: expected an integer"),
    ({"apps": [GOOD], "media": {"retransmission_packets": 1024}},
     "media.keyframe_cache_packets: must be <= media.retransmission_packets (4096 > 1024)"),
    ({"apps": [GOOD], "media": {"keyframe_cache_bytes": 0}}, "media.keyframe_cache_bytes: must be > 0"),
    ({"apps": [GOOD], "media": {"keyframe_min_interval": -1}}, "media.keyframe_min_interval: must be > 0"),
    ({"apps": [GOOD], "media": {"retransmission_age": float("inf")}}, "media.retransmission_age: must be a finite number"),
    ({"apps": [GOOD], "media": {"retransmission_age": 0.3}},
     "media.retransmission_age: must be above l3.max_delay (0.3 <= 0.35)"),
    ({"apps": [GOOD], "l3": {"max_delay": 3}}, "media.retransmission_age: must be above l3.max_delay (2.0 <= 3.0)"),
])
def test_bad_values_are_named(raw, fragment):
    with pytest.raises(ConfigError) as e:
        config_from_dict(raw)
    assert fragment in str(e.value)


def test_metrics_section():
    assert config_from_dict({"apps": [GOOD]}).metrics.per_stream_labels is False
    assert config_from_dict({"apps": [GOOD], "metrics": {"per_stream_labels": True}}).metrics.per_stream_labels is True


def test_l3_section():
    from sfu.media.track import MediaSettings
    from sfu.node import media_settings

    default = config_from_dict({"apps": [GOOD]})
    # the defaults are the media plane's own
    assert (default.l3.min_delay, default.l3.max_delay) == (MediaSettings().l3_min_delay, MediaSettings().l3_max_delay)
    fixed = config_from_dict({"apps": [GOOD], "l3": {"min_delay": 0.1, "max_delay": 0.1}})
    assert (fixed.l3.min_delay, fixed.l3.max_delay) == (0.1, 0.1)
    assert config_from_dict({"apps": [GOOD], "l3": {"min_delay": 0, "max_delay": 1}}).l3.max_delay == 1.0
    assert isinstance(config_from_dict({"apps": [GOOD], "l3": {"max_delay": 1}}).l3.max_delay, float)
    settings = media_settings(fixed)
    assert (settings.l3_min_delay, settings.l3_max_delay) == (0.1, 0.1)
    assert settings.rtt == MediaSettings().rtt  # the rest are the defaults


def test_media_section_reaches_the_media_plane():
    from dataclasses import fields

    from sfu.config import MediaConfig
    from sfu.media.track import MediaSettings
    from sfu.node import media_settings

    defaults = MediaSettings()
    cfg = config_from_dict({"apps": [GOOD]})
    # the defaults are the media plane's own, key for key
    for f in fields(MediaConfig):
        assert getattr(cfg.media, f.name) == getattr(defaults, f.name), f.name
    assert cfg.l3.late_repair is defaults.l3_late_repair is True
    changed = {"retransmission_packets": 16384, "retransmission_age": 5, "keyframe_cache_packets": 10000,
               "keyframe_cache_bytes": 12_000_000, "keyframe_min_interval": 1.5}
    assert set(changed) == {f.name for f in fields(MediaConfig)}
    cfg = config_from_dict({"apps": [GOOD], "media": changed, "l3": {"late_repair": False, "max_delay": 4}})
    settings = media_settings(cfg)
    for key, value in changed.items():
        assert getattr(settings, key) == value and type(getattr(settings, key)) is type(getattr(defaults, key)), key
    assert settings.l3_late_repair is False and settings.l3_max_delay == 4.0


def test_media_settings_shape_the_track():
    """What [media] sets is what a publisher track is built with (its ring, its L3 keyframe cache)."""
    from sfu.media.router import Router, TrackSpec
    from sfu.node import media_settings

    cfg = config_from_dict({"apps": [GOOD], "media": {"retransmission_packets": 256, "retransmission_age": 1,
                                                      "keyframe_cache_packets": 200, "keyframe_cache_bytes": 300_000},
                            "l3": {"late_repair": False}})
    router = Router(media_settings(cfg))
    (tid,) = router.add_publisher(7, "s", (TrackSpec("video", "VP8", 96),))
    track = router.track(tid)
    assert (track.fast.size, track.fast.max_age) == (256, 1.0)
    assert (track.l3_cache.max_packets, track.l3_cache.max_bytes) == (200, 300_000)


def test_l3_section_from_toml(tmp_path):
    f = tmp_path / "node.toml"
    f.write_text(f'[[apps]]\napp_id = 7\nsecret = "{GOOD["secret"]}"\n\n[l3]\nmin_delay = 0.05\nmax_delay = 0.2\n')
    cfg = load_config(f)
    assert (cfg.l3.min_delay, cfg.l3.max_delay) == (0.05, 0.2)


def test_dev_app_is_created_once_and_reused(tmp_path):
    f = tmp_path / "s" / "dev.json"
    app, created = dev_app(f)
    assert created and len(app.secret) == 32 and 0 < app.app_id <= 0xFFFFFFFF
    again, created2 = dev_app(f)
    assert not created2 and again == app
    assert (f.stat().st_mode & 0o777) == 0o600


def test_damaged_state_file_is_an_error_not_a_new_app(tmp_path):
    f = tmp_path / "dev.json"
    f.write_text(json.dumps({"app_id": "x"}))
    with pytest.raises(ConfigError, match="damaged"):
        dev_app(f)


def test_readme_sample_is_the_defaults():
    """The README's config sample parses, and every section it shows holds the defaults."""
    import re
    import tomllib
    from pathlib import Path

    from sfu.config import Config

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```toml\n(.*?)```", readme, re.S)
    cfg = config_from_dict(tomllib.loads(block))
    default = Config(apps=cfg.apps)
    for section in ("node", "session", "signalling", "metrics", "l3", "media"):
        assert getattr(cfg, section) == getattr(default, section), section
