"""The one place litellm is imported: lazily, offline, and quiet.

``LITELLM_LOCAL_MODEL_COST_MAP`` must be set before the first import or litellm tries to fetch its
cost map from GitHub (seconds of retries on a machine without internet). The local provider is
registered on the same first import so that ``local/smollm2`` works wherever litellm does.
"""

from __future__ import annotations

import logging
import os
import threading
from types import ModuleType

__all__ = ["load_litellm", "warm_litellm"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_module: ModuleType | None = None


def load_litellm() -> ModuleType:
    """Import litellm once per process, offline, with the local SmolLM2 provider registered."""
    global _module
    if _module is not None:
        return _module
    with _lock:
        if _module is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            # litellm prints provider-list banners and "Give Feedback" hints on errors; we log ourselves.
            litellm.suppress_debug_info = True
            litellm.telemetry = False
            from workers.llm.local import register_local_provider

            register_local_provider(litellm)
            _module = litellm
    return _module


async def warm_litellm() -> None:
    """Run one answered and one streamed completion that never leave the process (``mock_response``).

    litellm imports parts of itself the first time a code path runs (the streaming chunk builder, its
    tokenizer, spend tracking, anyio's streams): hundreds of milliseconds of CPU, with the GIL held,
    which landed on a worker's first messages after it said it was ready, and stalled every thread
    of the process meanwhile, the egress thread included (docs/decisions.md, "Why egress runs on its
    own thread"). Paying it here keeps it out of the first messages.
    """
    litellm = load_litellm()
    messages = [{"role": "user", "content": "warm up"}]
    try:
        await litellm.acompletion(model="openai/warm-up", messages=messages, mock_response="ok")
        chunks = [
            c
            async for c in await litellm.acompletion(
                model="openai/warm-up", messages=messages, mock_response="ok", stream=True
            )
        ]
        litellm.stream_chunk_builder(chunks, messages=messages)
    except Exception as exc:  # only a warm-up: the first real call pays what is left
        log.warning("litellm warm-up incomplete (the first messages pay the rest): %r", exc)
