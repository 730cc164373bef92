"""Every configured platform, started side by side and kept apart.

The gateway's side of the adapters: ``start_platforms(admit, rate)`` starts each platform whose token is set as its own task (``rate`` gets
the 👍/👎 reactions on the bot's replies, where the platform has reactions); a platform that
is down or refuses its token is logged, retried with exponential backoff and shown in
``platform_health()``, and never stops the others. ``platform_routers()`` gives the HTTP routes
the gateway mounts (Slack events, Telegram webhook). Workers take their REST senders from
``adapters.senders`` instead, which never imports an inbound client.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter

from adapters.base import AdapterState, Admit, Health, PlatformAdapter, Rate

__all__ = [
    "PLATFORMS",
    "platform_health",
    "platform_routers",
    "start_platforms",
    "stop_platforms",
]

log = logging.getLogger(__name__)

PLATFORMS = ("discord", "telegram", "slack")


# --------------------------------------------------------------------------- the process-wide registry

_adapters: dict[str, Any] = {}
_tasks: dict[str, asyncio.Task[None]] = {}
_misconfigured: dict[str, str] = {}  # platform -> why it could not even be built


def _modules() -> dict[str, Any]:
    # Imported lazily so that importing the registry does not import three client libraries.
    from adapters import discord as discord_platform
    from adapters import slack as slack_platform
    from adapters import telegram as telegram_platform

    return {"discord": discord_platform, "telegram": telegram_platform, "slack": slack_platform}


def _build_adapters() -> dict[str, Any]:
    if not _adapters:
        for name, module in _modules().items():
            try:
                adapter = module.build_adapter(module.load_settings(), None)
            except ValueError as exc:  # pydantic's ValidationError is one too
                # A half-configured platform must not keep the others from starting.
                log.error("%s is misconfigured and will not start: %s", name, exc)
                _misconfigured[name] = str(exc)
                continue
            if adapter is None:
                log.info("%s: no token configured; not started", name)
            else:
                _adapters[name] = adapter
    return _adapters


async def start_platforms(admit: Admit, rate: Rate | None = None) -> list[PlatformAdapter]:
    """Start every platform whose token is set, each in its own supervised task; ``rate`` gets reactions."""
    started: list[PlatformAdapter] = []
    for name, adapter in _build_adapters().items():
        if name in _tasks and not _tasks[name].done():
            continue
        _tasks[name] = asyncio.create_task(_guarded_start(name, adapter, admit, rate), name=f"platform-{name}")
        started.append(adapter)
    return started


async def _guarded_start(name: str, adapter: PlatformAdapter, admit: Admit, rate: Rate | None) -> None:
    try:
        await adapter.start(admit, rate)
    except asyncio.CancelledError:
        raise
    except Exception:
        # start() is built never to raise; if it does, that platform is down but the others are not.
        log.exception("%s adapter crashed; the other platforms keep running", name)


async def stop_platforms() -> None:
    for adapter in _adapters.values():
        await adapter.stop()
    for task in _tasks.values():
        task.cancel()
    await asyncio.gather(*_tasks.values(), return_exceptions=True)
    _tasks.clear()
    _adapters.clear()
    _misconfigured.clear()


def platform_routers() -> list[APIRouter]:
    """HTTP routes of the platforms that push to us: Slack events, the Telegram webhook."""
    routers: list[APIRouter] = []
    for name, adapter in _build_adapters().items():
        router = _modules()[name].build_router(adapter)
        if router is not None:
            routers.append(router)
    return routers


def platform_health() -> dict[str, Health]:
    """Each platform's state; platforms without a token show as DISABLED."""
    health = {name: Health(AdapterState.DISABLED, "no token configured") for name in PLATFORMS}
    for name, reason in _misconfigured.items():
        health[name] = Health(AdapterState.FAILED, f"misconfigured: {reason}")
    for name, adapter in _adapters.items():
        health[name] = adapter.health()
    return health
