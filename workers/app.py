"""The Celery application: Redis broker, JSON only, and the settings that lose nothing (NOTES §4).

``celery -A workers.app worker`` (or ``patchbay worker``) loads this module; the gateway imports
it only to enqueue.
"""

from __future__ import annotations

from celery import Celery

from gateway.embedded_redis import celery_url
from gateway.settings import Settings

__all__ = ["QUEUE", "TASK_NAME", "app", "make_celery"]

QUEUE = "patchbay"
TASK_NAME = "patchbay.handle_message"


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or Settings()
    broker = celery_url(settings.effective_redis_url)
    transport = {
        "visibility_timeout": settings.visibility_timeout_s,
        # kombu looks for a dead worker's unacked messages only every interval x throttle seconds
        # (100 s by default); sweep a few times per visibility timeout instead, so redelivery follows it.
        "unacked_restore_interval": max(1, min(10, settings.visibility_timeout_s // 4)),
        "unacked_restore_throttle": 1,
    }
    celery = Celery("patchbay", broker=broker, include=["workers.tasks"])
    celery.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],  # never pickle: an envelope is data, not code
        task_ignore_result=True,  # replies travel through egress, not the result backend
        task_acks_late=True,  # ack after the reply went out, so a dead worker's message is redelivered
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_routes={TASK_NAME: {"queue": QUEUE}},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        task_track_started=False,
    )
    return celery


app = make_celery()
