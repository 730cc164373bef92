"""What a patch declares: its typed config and its ``PatchSpec``.

A patch's config reads, highest priority first: the seed's switch ``ENABLE_<NAME>`` (for
``enabled`` only), the environment ``PATCHBAY_PATCH_<NAME>_<FIELD>``, the ``[patches.<name>]``
table of ``patchbay.toml``, then the defaults. Runtime switches in Redis (``patches.switches``)
override ``enabled`` and ``rollout_percent`` on top of all that, without a restart.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

from gateway.shared.config import PatchbaySettings, TomlSectionSource
from workers.components import ComponentKind

__all__ = ["LayerFactory", "PatchConfig", "PatchSpec", "Prerequisite", "Smoke", "Validator", "interface_methods"]


class _EnableSwitchSource(PydanticBaseSettingsSource):
    """The seed's ``ENABLE_<NAME>=true|false`` switch, feeding the ``enabled`` field."""

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
    """Base config of every patch. Declare one per patch in a line or two::

    class MemoryEnhancementConfig(PatchConfig, patch="memory_enhancement", default_enabled=True):
        max_queries_per_search: int = 3
    """

    PATCH_NAME: ClassVar[str] = ""
    DEFAULT_ENABLED: ClassVar[bool] = False

    enabled: bool = False
    rollout_percent: float = Field(default=100.0, ge=0.0, le=100.0)
    timeout_s: float | None = Field(default=None, gt=0, description="per-call budget of the enhancement")
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


LayerFactory = Callable[[Any, Any, Mapping[str, Any]], Any]  # (component below, config, deps) -> enhancement
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


@dataclass(frozen=True, slots=True)
class PatchSpec:
    """Everything the framework needs to apply, order, guard and list one patch."""

    name: str
    kind: ComponentKind
    interface: type
    config_cls: type[PatchConfig]
    layer_factory: LayerFactory
    enhances: tuple[str, ...]
    requires: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
    prerequisite: Prerequisite | None = None
    smoke: Smoke | None = None
    validate: Validator | None = None
    description: str = ""
    deps: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Mistakes here are programming errors in the patch module: fail at import, loudly.
        if not self.name.isidentifier():
            raise ValueError(f"patch name {self.name!r} must be an identifier")
        if self.config_cls.PATCH_NAME not in ("", self.name):
            raise ValueError(f"patch {self.name!r} uses the config of patch {self.config_cls.PATCH_NAME!r}")
        declared = interface_methods(self.interface)
        if not declared:
            raise ValueError(f"{self.interface.__name__} declares no methods; is it a component Protocol?")
        unknown = [method for method in self.enhances if method not in declared]
        if unknown:
            raise ValueError(
                f"patch {self.name!r} enhances {unknown}, which {self.interface.__name__} does not declare "
                f"(it declares {sorted(declared)})"
            )
        if not self.enhances:
            raise ValueError(f"patch {self.name!r} enhances no method")
        if self.name in self.requires or self.name in self.before:
            raise ValueError(f"patch {self.name!r} cannot require or precede itself")

    def load_config(self) -> PatchConfig:
        return self.config_cls()
