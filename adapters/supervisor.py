"""Keeping one platform connection alive: the supervision loop every inbound adapter shares."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from adapters.base import AdapterState, Health
from gateway.shared.logs import redact

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)


class Supervisor:
    """Keeps one platform connection alive: run, and on failure back off (1 s doubling to 5 min) and rerun.

    ``run_once`` connects and returns only when ``stopping`` is set; any exception is a lost
    connection. ``auth_errors`` mark a refused token: the state becomes FAILED (it is still retried,
    slowly, since a token can be fixed on the platform side without restarting us). The health
    detail is public (``/healthz``): a refused token is "token refused", never the library's message,
    which for python-telegram-bot quotes the token itself; other errors are shown redacted.
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
        detail = redact(detail)
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
                self.set_state(AdapterState.FAILED, "token refused")
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
