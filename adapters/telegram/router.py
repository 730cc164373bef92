"""``POST /telegram/webhook``: Telegram's webhook delivery, checked before anything is admitted."""

from __future__ import annotations

import hmac
import json
import logging

from fastapi import APIRouter, Request, Response

from adapters.telegram.adapter import TelegramAdapter

__all__ = ["build_router"]

log = logging.getLogger(__name__)


def build_router(adapter: TelegramAdapter) -> APIRouter:
    router = APIRouter()
    expected = adapter.settings.effective_webhook_secret.encode()

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
            return Response(status_code=400)
        if not isinstance(data, dict):
            return Response(status_code=400)
        if not await adapter.handle_webhook_update(data):
            # Telegram redelivers on non-2xx, so the update is not lost while we restart.
            return Response(status_code=503)
        return Response(status_code=200)

    return router
