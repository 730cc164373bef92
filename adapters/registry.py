"""Every configured platform, started side by side and kept apart.

``start_platforms(admit, rate)`` starts each platform whose token is set as its own task (``rate`` gets
the 👍/👎 reactions on the bot's replies, where the platform has reactions); a platform that
is down or refuses its token is logged, retried with exponential backoff and shown in
``platform_health()``, and never stops the others. ``platform_routers()`` gives the HTTP routes
the gateway mounts (Slack events, Telegram webhook); ``sender_for`` gives workers a REST sender,
one per platform per process.

This module also holds the supervision loop the adapters share (``Supervisor``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter

from adapters.base import AdapterState, Admit, Health, PlatformAdapter, Rate, Sender

__all__ = [
    "PLATFORMS",
    "Supervisor",
    "platform_health",
    "platform_routers",
    "sender_for",
    "start_platforms",
    "stop_platforms",
]

log = logging.getLogger(__name__)

PLATFORMS = ("discord", "telegram", "slack")


class Supervisor:
    """Keeps one platform connection alive: run, and on failure back off (1 s doubling to 5 min) and rerun.

    ``run_once`` connects and returns only when ``stopping`` is set; any exception is a lost
    connection. ``auth_errors`` mark a refused token: the state becomes FAILED (it is still retried,
    slowly, since a token can be fixed on the platform side without restarting us).
    """

    def __init__(
        self,
        platform: str,
        *,
        auth_errors: tuple[type[BaseException], ...] = (),
        initial_delay_s: float = 1.0,
        max_delay_s: float = 300.0,
    ) -> None:
        self.platform = platform
        self.auth_errors = auth_errors
        self.initial_delay_s = initial_delay_s
        self.max_delay_s = max_delay_s
        self.stopping = asyncio.Event()
        self.failures = 0  # exported in health().extra
        self._health = Health(AdapterState.STARTING, since=time.time())

    def health(self) -> Health:
        return Health(self._health.state, self._health.detail, self._health.since, {"failures": self.failures})

    def set_state(self, state: AdapterState, detail: str = "") -> None:
        if state != self._health.state or detail != self._health.detail:
            log.info("%s: %s%s", self.platform, state.value, f" ({detail})" if detail else "")
            self._health = Health(state, detail, time.time())

    async def run(self, run_once: Callable[[], Awaitable[None]]) -> None:
        delay = self.initial_delay_s
        while not self.stopping.is_set():
            started = time.monotonic()
            self.set_state(AdapterState.STARTING)
            try:
                await run_once()
            except asyncio.CancelledError:
                raise
            except self.auth_errors as exc:
                self.failures += 1
                log.error("%s refused our token: %s; retrying in %.0fs", self.platform, exc, max(delay, 60.0))
                self.set_state(AdapterState.FAILED, f"token refused: {exc}")
                delay = max(delay, 60.0)
            except Exception as exc:
                self.failures += 1
                log.warning("%s connection lost: %r; retrying in %.1fs", self.platform, exc, delay)
                self.set_state(AdapterState.RETRYING, f"{type(exc).__name__}: {exc}")
            if self.stopping.is_set():
                break
            if time.monotonic() - started > 60:
                delay = self.initial_delay_s  # it had been up a while: this is a fresh outage
            try:
                await asyncio.wait_for(self.stopping.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, self.max_delay_s)
        self.set_state(AdapterState.DISABLED, "stopped")

    def stop(self) -> None:
        self.stopping.set()


# --------------------------------------------------------------------------- the process-wide registry

_adapters: dict[str, Any] = {}
_tasks: dict[str, asyncio.Task[None]] = {}
_senders: dict[tuple[str, str], Sender] = {}
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
    for sender in _senders.values():
        await sender.aclose()
    _senders.clear()


def platform_routers() -> list[APIRouter]:
    """HTTP routes of the platforms that push to us: Slack events, the Telegram webhook."""
    routers: list[APIRouter] = []
    for name, adapter in _build_adapters().items():
        router = _modules()[name].build_router(adapter)
        if router is not None:
            routers.append(router)
    return routers


def sender_for(platform: str, redis_url: str) -> Sender:
    """The REST sender of ``platform``, built once per process; raises ``LookupError`` if it has no token."""
    key = (platform, redis_url)
    if key not in _senders:
        modules = _modules()
        if platform not in modules:
            raise LookupError(f"no sender for platform {platform!r}")
        module = modules[platform]
        sender = module.build_sender(module.load_settings(), redis_url)
        if sender is None:
            raise LookupError(f"{platform} has no bot token configured")
        _senders[key] = sender
    return _senders[key]


def platform_health() -> dict[str, Health]:
    """Each platform's state; platforms without a token show as DISABLED."""
    health = {name: Health(AdapterState.DISABLED, "no token configured") for name in PLATFORMS}
    for name, reason in _misconfigured.items():
        health[name] = Health(AdapterState.FAILED, f"misconfigured: {reason}")
    for name, adapter in _adapters.items():
        health[name] = adapter.health()
    return health
