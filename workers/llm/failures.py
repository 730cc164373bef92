"""What a provider's failure means for the chain: fall through at once, wait a moment, or give up on it.

``patches.llm_resilience.ResilientLLM`` owns retries (the Router makes none): a provider that fails
with a 5xx, a connection error, a timeout or a malformed body is left at once while a later provider
may answer, and only retried (with litellm's backoff) when it is the last one that could. A 429
with a short ``Retry-After`` is waited for on the same provider, which asked for just that.
"""

from __future__ import annotations

import enum
from typing import Any

from workers.llm.litellm_loader import load_litellm

__all__ = ["Failure", "backoff_s", "classify", "retry_after_s"]


class Failure(enum.Enum):
    TRANSIENT = "transient"  # 5xx, 408, connection error, timeout, malformed body, 429: may heal on a retry
    COOLING = "cooling"  # the Router skipped it: it is cooled down (shared in Redis), nothing to retry
    PERMANENT = "permanent"  # 400/401/403/404/422, content policy: the same request fails again


def classify(exc: BaseException) -> Failure:
    litellm = load_litellm()
    from litellm.types.router import RouterRateLimitError, RouterRateLimitErrorBasic

    if isinstance(exc, RouterRateLimitError | RouterRateLimitErrorBasic):
        return Failure.COOLING
    if isinstance(exc, litellm.Timeout | litellm.APIConnectionError):
        return Failure.TRANSIENT
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return Failure.TRANSIENT if status >= 500 or status in (408, 429) else Failure.PERMANENT
    return Failure.TRANSIENT  # no status: a broken body or a transport error, not a verdict on the request


def retry_after_s(exc: BaseException) -> float | None:
    """The provider's ``Retry-After`` on a 429, in seconds; None without one (or on another error)."""
    if getattr(exc, "status_code", None) != 429:
        return None
    response: Any = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    from litellm.utils import _get_retry_after_from_exception_header

    seconds = _get_retry_after_from_exception_header(headers)
    return float(seconds) if seconds is not None and seconds > 0 else None


def backoff_s(retry: int, retries: int, exc: BaseException) -> float:
    """litellm's own schedule: ``0.5 s * 2**retry`` (capped at 8 s) plus up to 0.75 s of jitter; a
    ``Retry-After`` of up to 60 s instead when the provider sent one."""
    from litellm.utils import calculate_retry_after

    response: Any = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) if getattr(exc, "status_code", None) == 429 else None
    return float(
        calculate_retry_after(remaining_retries=retries - retry, max_retries=retries, response_headers=headers)
    )
