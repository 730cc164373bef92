"""Configuration plumbing shared by every settings class: environment first, then ``patchbay.toml``.

Each component owns a small ``pydantic-settings`` class naming its section of ``patchbay.toml``
(``TOML_SECTION``); the environment always wins over the file, and the file over the defaults.
The file is ``$PATCHBAY_CONFIG`` or ``./patchbay.toml``; it is optional.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["PatchbaySettings", "TomlSectionSource", "comma_separated", "config_path", "load_toml", "toml_section"]


def comma_separated(value: object) -> object:
    """A list field's ``mode="before"`` validator: ``"a, b,,c"`` → ``["a", "b", "c"]``; a number → ``["7"]``."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, int):
        return [str(value)]
    return value


def config_path() -> Path:
    return Path(os.environ.get("PATCHBAY_CONFIG", "patchbay.toml"))


@lru_cache(maxsize=8)
def _read_toml(path: str, mtime: float) -> dict[str, Any]:
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def load_toml() -> dict[str, Any]:
    """The whole ``patchbay.toml`` as a dict ({} when absent); re-read when the file changes."""
    path = config_path()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return {}
    return _read_toml(str(path), mtime)


def toml_section(dotted: str) -> dict[str, Any]:
    """``toml_section("patches.memory_enhancement")`` → that table, or {} if any level is missing."""
    node: Any = load_toml()
    for part in dotted.split(".") if dotted else []:
        if not isinstance(node, dict):
            return {}
        node = node.get(part, {})
    return node if isinstance(node, dict) else {}


class TomlSectionSource(PydanticBaseSettingsSource):
    """One table of ``patchbay.toml`` (dotted path), keyed by field name."""

    def __init__(self, settings_cls: type[BaseSettings], section: str) -> None:
        super().__init__(settings_cls)
        self._data = toml_section(section)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {name: self._data[name] for name in self.settings_cls.model_fields if name in self._data}


class PatchbaySettings(BaseSettings):
    """Base for every settings class: env > ``patchbay.toml`` section > defaults."""

    TOML_SECTION: ClassVar[str] = ""
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlSectionSource(settings_cls, cls.TOML_SECTION))
