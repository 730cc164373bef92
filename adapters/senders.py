"""The workers' side of the adapters: one REST sender per platform per process.

Importing this module imports no platform client library; a platform's sender module is imported
the first time a reply goes to that platform.
"""

from __future__ import annotations

import importlib

from adapters.base import Sender

__all__ = ["PLATFORM_PACKAGES", "close_senders", "sender_for"]

PLATFORM_PACKAGES = {"discord": "adapters.discord", "telegram": "adapters.telegram", "slack": "adapters.slack"}

_senders: dict[tuple[str, str], Sender] = {}


def sender_for(platform: str, redis_url: str) -> Sender:
    """The REST sender of ``platform``, built once per process; raises ``LookupError`` if it has no token."""
    key = (platform, redis_url)
    if key not in _senders:
        if platform not in PLATFORM_PACKAGES:
            raise LookupError(f"no sender for platform {platform!r}")
        module = importlib.import_module(PLATFORM_PACKAGES[platform])
        sender = module.build_sender(module.load_settings(), redis_url)
        if sender is None:
            raise LookupError(f"{platform} has no bot token configured")
        _senders[key] = sender
    return _senders[key]


async def close_senders() -> None:
    for sender in _senders.values():
        await sender.aclose()
    _senders.clear()
