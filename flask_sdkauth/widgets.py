"""Widgets and their channels: the configuration a host supplies (spec §1.1, §5, §6)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHANNEL_TYPES",
    "CODE_TYPES",
    "Channel",
    "ChannelSettings",
    "Widget",
]

#: Every delivery channel type of the spec (``EOtpChannelTypes``).
CHANNEL_TYPES = frozenset(
    {"flashcall", "sim_push", "sms", "telegramcode", "viber", "vk", "voice", "whatsapp"}
)
#: ``EOtpChannelCodeType``: the user types a code, or confirms some other way.
CODE_TYPES = frozenset({"code", "codeless"})

_DEFAULT_LABELS = {
    "flashcall": "Звонок",
    "sim_push": "SIM-push",
    "sms": "SMS",
    "telegramcode": "Telegram",
    "viber": "Viber",
    "vk": "VK",
    "voice": "Голосовой звонок",
    "whatsapp": "WhatsApp",
}
_CODELESS_BY_DEFAULT = frozenset({"sim_push"})
_SHORT_CODE_TYPES = frozenset({"flashcall"})


@dataclass(frozen=True, init=False)
class ChannelSettings:
    """How one channel generates and checks codes (spec §6, plus ``restartCooldown``
    and ``fallbackAfter``).

    All durations are in seconds; ``restart_cooldown`` defaults to ``lifetime``
    (spec gap 11). ``fallback_after``, when set, moves the session to the widget's
    next channel once a code sent on this one has gone unconfirmed that long; off
    by default. :meth:`from_mapping` reads the spec's own keys.
    """

    code_length: int
    beautify: bool
    lifetime: int
    number_of_tries: int
    number_of_restart: int
    restart_cooldown: int
    fallback_after: int | None

    def __init__(
        self,
        *,
        code_length: int = 6,
        beautify: bool = False,
        lifetime: int = 300,
        number_of_tries: int = 3,
        number_of_restart: int = 2,
        restart_cooldown: int | None = None,
        fallback_after: int | None = None,
    ) -> None:
        if restart_cooldown is None:
            restart_cooldown = lifetime
        if fallback_after is not None:
            _require_int("fallback_after", fallback_after, minimum=1)
        object.__setattr__(self, "fallback_after", fallback_after)
        for name, value, minimum in (
            ("code_length", code_length, 1),
            ("lifetime", lifetime, 1),
            ("number_of_tries", number_of_tries, 1),
            ("number_of_restart", number_of_restart, 0),
            ("restart_cooldown", restart_cooldown, 0),
        ):
            _require_int(name, value, minimum=minimum)
            object.__setattr__(self, name, value)
        if code_length > 32:
            raise ValueError("code_length must be at most 32")
        if not isinstance(beautify, bool):
            raise TypeError("beautify must be a bool")
        object.__setattr__(self, "beautify", beautify)

    @classmethod
    def defaults_for(cls, channel_type: str) -> ChannelSettings:
        """The documented defaults: 4-digit codes for flash calls, 6 elsewhere."""
        return cls(code_length=4 if channel_type in _SHORT_CODE_TYPES else 6)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], channel_type: str = "sms"
    ) -> ChannelSettings:
        """Build settings from the spec's keys; missing keys take the defaults."""
        unknown = set(data) - {
            "code",
            "lifetime",
            "numberOfTries",
            "numberOfRestart",
            "restartCooldown",
            "fallbackAfter",
        }
        if unknown:
            raise ValueError(f"unknown channel settings: {', '.join(sorted(unknown))}")
        base = cls.defaults_for(channel_type)
        code = data.get("code") or {}
        if not isinstance(code, Mapping):
            raise TypeError("settings 'code' must be a mapping")
        return cls(
            code_length=code.get("length", base.code_length),
            beautify=code.get("beautify", base.beautify),
            lifetime=data.get("lifetime", base.lifetime),
            number_of_tries=data.get("numberOfTries", base.number_of_tries),
            number_of_restart=data.get("numberOfRestart", base.number_of_restart),
            restart_cooldown=data.get("restartCooldown"),
            fallback_after=data.get("fallbackAfter"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The spec's ``IOtpChannelSettingsAdditionalSDK`` shape, as ``getChannel``
        returns it (``fallbackAfter`` only when set)."""
        data: dict[str, Any] = {
            "code": {"length": self.code_length, "beautify": self.beautify},
            "lifetime": self.lifetime,
            "numberOfTries": self.number_of_tries,
            "numberOfRestart": self.number_of_restart,
            "restartCooldown": self.restart_cooldown,
        }
        if self.fallback_after is not None:
            data["fallbackAfter"] = self.fallback_after
        return data


@dataclass(frozen=True, init=False)
class Channel:
    """One way of delivering a code or a confirmation request.

    Only ``type`` is required; ``label``, ``code_type`` and ``settings`` default by
    type (``sim_push`` is codeless, every other type uses codes). ``settings`` may be
    given as a :class:`ChannelSettings` or as a mapping with the spec's keys.
    """

    type: str
    label: str
    code_type: str
    settings: ChannelSettings

    def __init__(
        self,
        type: str,
        *,
        label: str | None = None,
        code_type: str | None = None,
        settings: ChannelSettings | Mapping[str, Any] | None = None,
    ) -> None:
        if type not in CHANNEL_TYPES:
            raise ValueError(
                f"unknown channel type {type!r}; use one of {sorted(CHANNEL_TYPES)}"
            )
        if code_type is None:
            code_type = "codeless" if type in _CODELESS_BY_DEFAULT else "code"
        if code_type not in CODE_TYPES:
            raise ValueError(f"code_type must be one of {sorted(CODE_TYPES)}")
        if settings is None:
            settings = ChannelSettings.defaults_for(type)
        elif not isinstance(settings, ChannelSettings):
            settings = ChannelSettings.from_mapping(settings, type)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "label", label or _DEFAULT_LABELS[type])
        object.__setattr__(self, "code_type", code_type)
        object.__setattr__(self, "settings", settings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, the form the built-in store keeps."""
        return {
            "type": self.type,
            "label": self.label,
            "codeType": self.code_type,
            "settings": self.settings.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Channel:
        """The inverse of :meth:`to_dict`."""
        return cls(
            type=data["type"],
            label=data.get("label"),
            code_type=data.get("codeType"),
            settings=data.get("settings"),
        )


@dataclass(frozen=True)
class Widget:
    """A configuration profile: a name, two flags and channels in priority order.

    ``allowed_regions`` (ISO 3166 codes such as ``"RU"``) limits the numbers the
    widget sends to; empty allows every region.
    """

    id: uuid.UUID
    name: str
    channels: tuple[Channel, ...] = field(default=())
    is_active: bool = True
    is_blocked: bool = False
    allowed_regions: frozenset[str] = field(default=frozenset())

    def __post_init__(self) -> None:
        if not isinstance(self.id, uuid.UUID):
            object.__setattr__(self, "id", uuid.UUID(str(self.id)))
        channels: Iterable[Any] = self.channels
        object.__setattr__(self, "channels", tuple(channels))
        if isinstance(self.allowed_regions, str):
            raise TypeError("Widget.allowed_regions must be a collection of region codes")
        regions = frozenset(str(region).upper() for region in self.allowed_regions)
        object.__setattr__(self, "allowed_regions", regions)
        for channel in self.channels:
            if not isinstance(channel, Channel):
                raise TypeError("Widget.channels must hold Channel objects")


def _require_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}")
