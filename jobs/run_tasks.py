"""The Celery side of background runs (jobs.services.runs): plan, work and the sweep.

Run tasks go to their own queue, `runs` (a worker process of its own: Procfile `runs`), so a long
run never keeps webhooks waiting. A database that is away is retried with backoff; the task keeps
its id across retries, and so its chunk's lease.
"""

from __future__ import annotations

import logging

from celery import shared_task

from jobs.observability import DATABASE_UNAVAILABLE
from jobs.services import runs

logger = logging.getLogger(__name__)
RETRY = {
    "bind": True,
    "autoretry_for": DATABASE_UNAVAILABLE,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": False,
    "max_retries": None,
}


@shared_task(name=runs.PLAN_TASK, **RETRY)
def plan(self, run_id: int) -> None:
    runs.plan(run_id)


@shared_task(name=runs.WORK_TASK, **RETRY)
def work(self, run_id: int) -> None:
    runs.work(run_id, lessee=self.request.id)


@shared_task(name="jobs.runs.sweep")
def sweep() -> int:
    """Periodic (Celery beat), on the default queue: it must run while every run worker is busy."""
    try:
        return runs.sweep()
    except DATABASE_UNAVAILABLE as error:
        logger.warning(
            "run sweep skipped: database unavailable", extra={"error": type(error).__name__}
        )
        return 0
