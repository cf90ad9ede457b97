"""The Celery side of background runs (jobs.services.runs): plan, work and the sweep, and how
their messages are sent.

Run tasks go to their own queue, `runs` (a worker process of its own: Procfile `runs`), so a long
run never keeps webhooks waiting. A database that is away is retried with backoff; the task keeps
its id across retries, and so its chunk's lease.
"""

from __future__ import annotations

import logging

from celery import current_app, shared_task

from jobs.observability import DATABASE_UNAVAILABLE
from jobs.services import runs

logger = logging.getLogger(__name__)
PLAN_TASK = "jobs.runs.plan"
WORK_TASK = "jobs.runs.work"
RETRY = {
    "bind": True,
    "autoretry_for": DATABASE_UNAVAILABLE,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": False,
    "max_retries": None,
}


@shared_task(name=PLAN_TASK, **RETRY)
def plan(self, run_id: int) -> None:
    runs.plan(run_id)


@shared_task(name=WORK_TASK, **RETRY)
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


# A run's messages are few: worth a short retry, which also replaces a connection the broker
# dropped when it restarted (the first publish on it fails), at the cost of about a second when the
# broker is really down.
PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def publish(task: str, run_id: int, copies: int = 1) -> None:
    """Send messages for a run; a broker that is down is a warning: the sweep sends them again."""
    try:
        for _ in range(copies):
            current_app.send_task(task, args=[run_id], retry=True, retry_policy=PUBLISH_RETRY)
    except Exception as error:  # any broker failure: the run is safe in the database
        logger.warning(
            "could not reach the broker; the sweep will send this run's work again",
            extra={"run": run_id, "error": type(error).__name__},
        )
