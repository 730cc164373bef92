"""What a patch declares: its typed config and its ``PatchSpec``.

A patch's config reads, highest priority first: the switch ``ENABLE_<NAME>`` (for ``enabled``
only), the environment ``PATCHBAY_PATCH_<NAME>_<FIELD>``, the ``[patches.<name>]`` table of
``patchbay.toml``, then the defaults. Runtime switches in Redis (``patches.switches``) override
``enabled`` and ``rollout_percent`` on top of all that, without a restart.

A component *kind* is a plain string ("llm", "memory"...): the application declares its kinds and
their order when it builds its stack (``PatchRuntime.build_stack``); the framework knows none of them.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

from gateway.shared.config import PatchbaySettings, TomlSectionSource

__all__ = [
    "DEFAULT_STREAM_NOTE",
    "Factory",
    "PatchConfig",
    "PatchSpec",
    "Prerequisite",
    "Smoke",
    "Validator",
    "interface_methods",
    "is_stream_method",
]

DEFAULT_STREAM_NOTE = " … (the rest of this answer could not be produced)"
_STREAM_RETURN = re.compile(r"^(typing\.|collections\.abc\.)?Async(Iterator|Generator|Iterable)\b")


class _EnableSwitchSource(PydanticBaseSettingsSource):
    """``ENABLE_<NAME>=true|false``, feeding the ``enabled`` field."""

    def __init__(self, settings_cls: type[BaseSettings], variable: str) -> None:
        super().__init__(settings_cls)
        self._variable = variable

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return os.environ.get(self._variable) if field_name == "enabled" else None, field_name, False

    def __call__(self) -> dict[str, Any]:
        value = os.environ.get(self._variable)
        return {} if value is None else {"enabled": value}


class _PatchDefaultsSource(PydanticBaseSettingsSource):
    """The lowest priority: the default the patch declared with ``default_enabled=``."""

    def __init__(self, settings_cls: type[BaseSettings], default_enabled: bool) -> None:
        super().__init__(settings_cls)
        self._default_enabled = default_enabled

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (self._default_enabled if field_name == "enabled" else None), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {"enabled": self._default_enabled}


class PatchConfig(PatchbaySettings):
    """Base config of every patch, and the one config its enhancement reads. Declare it in a line or two::

    class ShoutConfig(PatchConfig, patch="shout", default_enabled=False):
        min_length: int = 1
    """

    PATCH_NAME: ClassVar[str] = ""
    DEFAULT_ENABLED: ClassVar[bool] = False

    enabled: bool = False
    rollout_percent: float = Field(default=100.0, ge=0.0, le=100.0)
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="per-call budget of the enhancement's own work (waits on the layer below excluded)",
    )
    health_max_error_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    health_window_s: float = Field(default=60.0, gt=0)
    health_min_calls: int = Field(default=20, ge=1)
    health_cooldown_s: float = Field(default=30.0, ge=0)

    def __init_subclass__(cls, *, patch: str | None = None, default_enabled: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if patch is not None:
            if not patch.isidentifier() or patch != patch.lower():
                raise ValueError(f"patch name {patch!r} must be a lower-case identifier such as 'memory_enhancement'")
            cls.PATCH_NAME = patch
            cls.TOML_SECTION = f"patches.{patch}"
        if default_enabled is not None:
            cls.DEFAULT_ENABLED = default_enabled

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if not cls.PATCH_NAME:
            # A bare PatchConfig (tests, ad-hoc patches) reads nothing from the outside world.
            return (init_settings, _PatchDefaultsSource(settings_cls, cls.DEFAULT_ENABLED))
        upper = cls.PATCH_NAME.upper()
        return (
            init_settings,
            _EnableSwitchSource(settings_cls, f"ENABLE_{upper}"),
            EnvSettingsSource(settings_cls, env_prefix=f"PATCHBAY_PATCH_{upper}_", case_sensitive=False),
            TomlSectionSource(settings_cls, cls.TOML_SECTION),
            _PatchDefaultsSource(settings_cls, cls.DEFAULT_ENABLED),
        )


Factory = Callable[[Any, Any, Mapping[str, Any]], Any]  # (the layer below's handle, config, deps) -> enhancement
Prerequisite = Callable[[Any, Mapping[str, Any]], str | None]  # (config, deps) -> None, or why not
Smoke = Callable[[Any], Awaitable[None]]  # (enhancement) -> raises if it does not work
Validator = Callable[[str, Any], str | None]  # (method name, result) -> None, or why it is rejected


def interface_methods(interface: type) -> dict[str, Callable[..., Any]]:
    """The public methods a Protocol declares (its own and its Protocol bases'), in declaration order."""
    methods: dict[str, Callable[..., Any]] = {}
    for klass in reversed(interface.__mro__):
        if klass is object or klass.__module__ == "typing":
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and inspect.isfunction(value):
                methods[name] = value
    return methods


def is_stream_method(function: Callable[..., Any]) -> bool:
    """True for an interface method that produces an async iterator rather than one awaited result.

    Written either as an ``async def`` generator in the Protocol, or as a plain ``def`` annotated
    ``-> AsyncIterator[...]`` (the form type checkers prefer for protocols).
    """
    if inspect.isasyncgenfunction(function):
        return True
    if inspect.iscoroutinefunction(function):
        return False
    returns = getattr(function, "__annotations__", {}).get("return")
    text = returns if isinstance(returns, str) else getattr(returns, "__qualname__", repr(returns))
    return bool(_STREAM_RETURN.match(str(text)))


@dataclass(frozen=True, slots=True)
class PatchSpec:
    """Everything the framework needs to order, apply, guard and list one patch.

    ``factory(below, config, deps)`` builds the enhancement: ``below`` is a handle implementing
    ``interface`` through which the enhancement calls the layer below (the framework observes
    those calls: a failure there is the layer below's, never the patch's). ``requires`` names
    patches that must be applied for this one to work (same kind: they sit below it); ``above`` /
    ``below`` are ordering hints among the patches of the same kind: this patch sits above / below
    the ones named, when they are installed.
    """

    name: str
    kind: str
    interface: type
    config_cls: type[PatchConfig]
    factory: Factory
    enhances: tuple[str, ...]
    requires: tuple[str, ...] = ()
    above: tuple[str, ...] = ()
    below: tuple[str, ...] = ()
    deps: tuple[str, ...] = ()
    prerequisite: Prerequisite | None = None
    smoke: Smoke | None = None
    validate: Validator | None = None
    description: str = ""
    stream_note: str = DEFAULT_STREAM_NOTE  # ends a stream the enhancement broke after its first chunk
    note_chunk: Callable[[str], Any] | None = None  # turns stream_note into a chunk of the stream (default: as is)

    def __post_init__(self) -> None:
        # Mistakes here are programming errors in the patch module: fail when it is loaded, loudly.
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"patch name {self.name!r} must be a lower-case identifier")
        if not isinstance(self.kind, str) or not self.kind.isidentifier():
            raise ValueError(f"patch {self.name!r}: kind {self.kind!r} must be an identifier string such as 'llm'")
        object.__setattr__(self, "kind", str(self.kind))  # a StrEnum member becomes its plain value
        if self.config_cls.PATCH_NAME not in ("", self.name):
            raise ValueError(f"patch {self.name!r} uses the config of patch {self.config_cls.PATCH_NAME!r}")
        if not callable(self.factory):
            raise ValueError(f"patch {self.name!r}: factory must be callable(below, config, deps)")
        declared = interface_methods(self.interface)
        if not declared:
            raise ValueError(f"{self.interface.__name__} declares no methods; is it a component Protocol?")
        if not self.enhances:
            raise ValueError(f"patch {self.name!r} enhances no method")
        unknown = [method for method in self.enhances if method not in declared]
        if unknown:
            raise ValueError(
                f"patch {self.name!r} enhances {unknown}, which {self.interface.__name__} does not declare "
                f"(it declares {sorted(declared)})"
            )
        for field_name in ("requires", "above", "below", "deps", "enhances"):
            if isinstance(getattr(self, field_name), str):
                raise ValueError(f"patch {self.name!r}: {field_name} must be a tuple of names, not a string")
        if self.name in (*self.requires, *self.above, *self.below):
            raise ValueError(f"patch {self.name!r} cannot require itself or sit above or below itself")
        if both := sorted(set(self.above) & set(self.below)):
            raise ValueError(f"patch {self.name!r} cannot sit both above and below {both}")

    def load_config(self) -> PatchConfig:
        return self.config_cls()
