"""Widget, Channel and ChannelSettings: keyword construction and spec-keyed settings."""

from __future__ import annotations

import uuid

import pytest

from flask_sdkauth import CHANNEL_TYPES, Channel, ChannelSettings, Widget


def test_widget_and_channel_construct_with_keywords_alone():
    widget_id = uuid.uuid4()
    widget = Widget(id=str(widget_id), name="Shop", channels=[Channel(type="sms"), Channel(type="voice")])
    assert widget.id == widget_id
    assert widget.is_active is True and widget.is_blocked is False
    assert [c.type for c in widget.channels] == ["sms", "voice"]
    assert isinstance(widget.channels, tuple)


@pytest.mark.parametrize("channel_type", sorted(CHANNEL_TYPES))
def test_channel_defaults_by_type(channel_type):
    channel = Channel(type=channel_type)
    assert channel.label
    assert channel.code_type == ("codeless" if channel_type == "sim_push" else "code")
    assert channel.settings.code_length == (4 if channel_type == "flashcall" else 6)
    assert channel.settings.lifetime == 300
    assert channel.settings.number_of_tries == 3
    assert channel.settings.number_of_restart == 2
    assert channel.settings.restart_cooldown == 300


def test_settings_from_the_spec_keys_with_missing_keys_defaulted():
    channel = Channel(type="sms", settings={"code": {"length": 8}, "lifetime": 120, "numberOfTries": 5})
    assert channel.settings == ChannelSettings(
        code_length=8, beautify=False, lifetime=120, number_of_tries=5,
        number_of_restart=2, restart_cooldown=120,
    )
    assert channel.settings.to_dict() == {
        "code": {"length": 8, "beautify": False},
        "lifetime": 120,
        "numberOfTries": 5,
        "numberOfRestart": 2,
        "restartCooldown": 120,
    }


def test_flashcall_mapping_keeps_its_short_default():
    assert Channel(type="flashcall", settings={"lifetime": 60}).settings.code_length == 4


def test_channel_round_trips_through_its_dict():
    channel = Channel("whatsapp", label="WA", code_type="codeless", settings={"numberOfRestart": 0, "restartCooldown": 30})
    assert Channel.from_dict(channel.to_dict()) == channel


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"type": "fax"}, ValueError),
        ({"type": "sms", "code_type": "magic"}, ValueError),
        ({"type": "sms", "settings": {"lifetme": 5}}, ValueError),
        ({"type": "sms", "settings": {"lifetime": 0}}, ValueError),
        ({"type": "sms", "settings": {"lifetime": "60"}}, TypeError),
        ({"type": "sms", "settings": {"numberOfTries": True}}, TypeError),
        ({"type": "sms", "settings": {"code": {"length": 64}}}, ValueError),
        ({"type": "sms", "settings": {"code": 6}}, TypeError),
        ({"type": "sms", "settings": {"code": {"beautify": "yes"}}}, TypeError),
        ({"type": "sms", "settings": {"numberOfRestart": -1}}, ValueError),
    ],
)
def test_invalid_channels_are_refused(kwargs, error):
    with pytest.raises(error):
        Channel(**kwargs)


def test_widget_channels_must_be_channels():
    with pytest.raises(TypeError):
        Widget(id=uuid.uuid4(), name="x", channels=["sms"])
