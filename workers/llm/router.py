"""Building litellm's Router for the remote part of the provider chain.

Each remote provider is its own model group, so the Router applies to it alone what it is good at:
a per-attempt timeout, and cooldowns after ``allowed_fails`` failures. It makes no retries:
``ResilientLLM`` decides those, because only the chain knows whether another provider may answer. With a Redis URL the cooldowns
live in Redis, so every worker process agrees a provider is down. Walking the chain from one group
to the next is done by ``patches.llm_resilience.ResilientLLM`` itself so that each provider's error is kept for the record.

litellm's Router runs on a native (Rust) runtime whose threads do not survive ``fork``: build it
in the worker process, after the fork, on first use (``ProcessLocalRouter``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from gateway.shared.redis_urls import redis_py_url
from workers.llm.litellm_loader import load_litellm
from workers.llm.settings import LLMSettings, ProviderConfig

__all__ = ["ProcessLocalRouter", "group_name", "router_arguments"]

log = logging.getLogger(__name__)


def group_name(index: int, provider: ProviderConfig) -> str:
    return f"chain-{index}:{provider.model}"


def _deployment(index: int, provider: ProviderConfig, settings: LLMSettings) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": provider.model,
        "timeout": provider.timeout or settings.timeout_s,
        "max_retries": 0,  # the OpenAI SDK's own retries would multiply the Router's
    }
    if provider.api_base:
        params["api_base"] = provider.api_base
    if provider.api_key_env:
        key = provider.api_key()
        if key is None:
            log.warning(
                "provider %s: %s is not set; litellm will look for its own variables",
                provider.model,
                provider.api_key_env,
            )
        else:
            params["api_key"] = key
    return {"model_name": group_name(index, provider), "litellm_params": params}


def router_arguments(
    providers: list[tuple[int, ProviderConfig]], settings: LLMSettings, redis_url: str | None
) -> dict[str, Any]:
    """The keyword arguments of ``litellm.Router`` for these chain links (exposed for tests and docs)."""
    arguments: dict[str, Any] = {
        "model_list": [_deployment(index, provider, settings) for index, provider in providers],
        # No retries inside the Router: ResilientLLM decides them knowing the rest of the chain (a
        # provider failing with a 5xx is left at once while a later one may answer; workers/llm/failures.py).
        "num_retries": 0,
        "allowed_fails": settings.allowed_fails,
        # An explicit per-error policy: without one litellm never cools down a model group of one
        # deployment, and each provider here is such a group. A request we got wrong (400) says
        # nothing about the provider; a bad key or an unknown model (401/404) will not heal by itself.
        "allowed_fails_policy": {
            "BadRequestErrorAllowedFails": 1_000_000,
            "ContentPolicyViolationErrorAllowedFails": 1_000_000,
            "AuthenticationErrorAllowedFails": 0,
            "NotFoundErrorAllowedFails": 0,
            "TimeoutErrorAllowedFails": settings.allowed_fails,
            "RateLimitErrorAllowedFails": settings.allowed_fails,
            "InternalServerErrorAllowedFails": settings.allowed_fails,
            "ServiceUnavailableErrorAllowedFails": settings.allowed_fails,
            "BadGatewayErrorAllowedFails": settings.allowed_fails,
        },
        "cooldown_time": settings.cooldown_s,
        "timeout": settings.timeout_s,
        "retry_after": 0,
    }
    if redis_url:
        arguments["redis_url"] = redis_py_url(redis_url)
    return arguments


class ProcessLocalRouter:
    """One Router per process, built on first use, rebuilt in a forked child."""

    def __init__(self, providers: list[tuple[int, ProviderConfig]], settings: LLMSettings, redis_url: str | None):
        self._providers = providers
        self._settings = settings
        self._redis_url = redis_url
        self._router: Any = None
        self._pid: int | None = None

    def get(self) -> Any:
        if self._router is None or self._pid != os.getpid():
            litellm = load_litellm()
            if not self._redis_url:
                log.warning("LLM Router has no Redis: provider cooldowns are per process, not shared")
            self._router = litellm.Router(**router_arguments(self._providers, self._settings, self._redis_url))
            self._pid = os.getpid()
        return self._router
