"""The queue both sides agree on: its name, the task's name, and the Celery settings of the broker.

The gateway only *sends* tasks by name (``producer``); the workers build their Celery app from the
same ``celery_settings`` and register the task (``workers.app``). Neither side imports the other.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from gateway.shared import kombu_redis
from gateway.shared.redis_urls import celery_url
from gateway.shared.settings import Settings

__all__ = ["QUEUE", "TASK_NAME", "broker_url", "celery_settings", "producer"]

QUEUE = "patchbay"
TASK_NAME = "patchbay.handle_message"


def celery_settings(settings: Settings) -> dict[str, Any]:
    """Celery configuration shared by the producer and the workers (docs/decisions.md explains each choice)."""
    transport = {
        "visibility_timeout": settings.visibility_timeout_s,
        # kombu looks for a dead worker's unacked messages only every interval x throttle seconds
        # (100 s by default); sweep a few times per visibility timeout instead, so redelivery follows it.
        "unacked_restore_interval": max(1, min(10, settings.visibility_timeout_s // 4)),
        "unacked_restore_throttle": 1,
    }
    return {
        "broker_transport": kombu_redis.ALIAS,  # survives Redis restarts (see that module)
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],  # never pickle: an envelope is data, not code
        "task_ignore_result": True,  # replies travel through egress, not the result backend
        # Acked when the task starts: from then on the ledger, not the broker, brings the message back
        # (docs/decisions.md). Late acks would only add kombu redeliveries of tasks still being worked on.
        "task_acks_late": False,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        # A worker never exits because Redis went away: it reconnects for as long as it takes.
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "broker_pool_limit": 10,
        "task_default_queue": QUEUE,
        "task_routes": {TASK_NAME: {"queue": QUEUE}},
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "worker_send_task_events": False,
        "task_track_started": False,
    }


def broker_url(settings: Settings) -> str:
    return kombu_redis.broker_url(celery_url(settings.effective_redis_url))


def producer(settings: Settings) -> Celery:
    """A Celery app that can only send ``TASK_NAME`` by name: the gateway's side of the queue."""
    app = Celery("patchbay-producer", broker=broker_url(settings))
    app.conf.update(celery_settings(settings))
    return app
