"""Celery plugged into the service's seam (jobs.services.engine; settings.JOBS_TASK_ENGINE)."""

from __future__ import annotations

from jobs.tasks import runs, webhooks


class CeleryEngine:
    def announce_events(self) -> None:
        webhooks.announce()

    def plan_run(self, run_id: int) -> None:
        runs.publish(runs.PLAN_TASK, run_id)

    def work_on_run(self, run_id: int, copies: int) -> None:
        runs.publish(runs.WORK_TASK, run_id, copies)


CELERY = CeleryEngine()
