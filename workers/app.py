"""The workers' Celery application: the shared broker settings plus the task module.

``celery -A workers.app worker`` (or ``patchbay worker``) loads this module. The gateway never
imports it: it sends tasks by name through ``gateway.shared.queue.producer``.
"""

from __future__ import annotations

from celery import Celery

from gateway.shared.queue import QUEUE, TASK_NAME, broker_url, celery_settings
from gateway.shared.settings import Settings

__all__ = ["QUEUE", "TASK_NAME", "app", "make_celery"]


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or Settings()
    celery = Celery("patchbay", broker=broker_url(settings), include=["workers.tasks", "workers.forget_task"])
    celery.conf.update(celery_settings(settings))
    return celery


app = make_celery()
