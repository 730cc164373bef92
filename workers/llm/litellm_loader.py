"""The one place litellm is imported: lazily, offline, and quiet.

``LITELLM_LOCAL_MODEL_COST_MAP`` must be set before the first import or litellm tries to fetch its
cost map from GitHub (seconds of retries on a machine without internet). The local provider is
registered on the same first import so that ``local/smollm2`` works wherever litellm does.
"""

from __future__ import annotations

import os
import threading
from types import ModuleType

__all__ = ["load_litellm"]

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
