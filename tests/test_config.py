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
