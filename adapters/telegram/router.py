"""``POST /telegram/webhook``: Telegram's webhook delivery, checked before anything is admitted.

Telegram resends an update for as long as it gets no 2xx, so the answers are chosen with that in mind:

- wrong or missing secret token → 403 (counted as ``forged``; a forger gets nothing to retry against);
- a body that is not a valid Update although the secret is right → **200**: resending it would never
  help, so it is acknowledged, counted (``rejected``, and ``patchbay_platform_rejected_total``) and
  logged with its reason, never answered with a 500 and a traceback;
- the adapter is not running yet (a restart) → 503, so Telegram keeps the update and redelivers it.
"""

from __future__ import annotations

import hmac
import json
import logging

from fastapi import APIRouter, Request, Response
from telegram import Update

from adapters.rejections import record_rejection
from adapters.telegram.adapter import TelegramAdapter

__all__ = ["build_router"]

log = logging.getLogger(__name__)


def _problem(data: object) -> str | None:
    """Why ``data`` is not an Update we can take, or None."""
    if not isinstance(data, dict):
        return f"an update must be a JSON object, not {type(data).__name__}"
    if not isinstance(data.get("update_id"), int) or isinstance(data.get("update_id"), bool):
        return "update_id is missing or not an integer"
    message = data.get("message")
    if message is not None and not isinstance(message, dict):
        return f"message must be an object, not {type(message).__name__}"
    try:
        Update.de_json(data, None)
    except Exception as exc:  # python-telegram-bot raises whatever the malformed field leads to
        return f"not a valid Update ({type(exc).__name__}: {exc})"[:300]
    return None


def build_router(adapter: TelegramAdapter) -> APIRouter:
    router = APIRouter()
    expected = adapter.settings.effective_webhook_secret.encode()

    def rejected(reason: str) -> Response:
        record_rejection("telegram", adapter.counters, reason)
        return Response(status_code=200)

    @router.post("/telegram/webhook")
    async def telegram_webhook(request: Request) -> Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode()
        if not hmac.compare_digest(given, expected):
            adapter.counters["forged"] = adapter.counters.get("forged", 0) + 1
            log.warning("telegram webhook: wrong secret token from %s", request.client)
            return Response(status_code=403)
        try:
            data = json.loads(await request.body())
        except ValueError:
            return rejected("the body is not JSON")
        if (problem := _problem(data)) is not None:
            return rejected(problem)
        try:
            taken = await adapter.handle_webhook_update(data)
        except Exception as exc:
            log.exception("telegram webhook: update %s could not be handled", data.get("update_id"))
            return rejected(f"the update could not be handled ({type(exc).__name__})")
        if not taken:
            # Telegram redelivers on non-2xx, so the update is not lost while we restart.
            return Response(status_code=503)
        return Response(status_code=200)

    return router
