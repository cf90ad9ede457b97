"""The one seam between the service and the task engine: what the service asks for, said by
name, without importing the engine. `settings.JOBS_TASK_ENGINE` names the object that carries it
out (`jobs.tasks.engine.CELERY`), so the service reads, and is tested, without Celery.

Most requests wait for the caller's transaction to commit: nothing is announced that did not
happen. The sweep's resends go at once.
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string


class TaskEngine(Protocol):
    def announce_events(self) -> None:
        """Events were written: fan them out to the webhooks that want them."""

    def plan_run(self, run_id: int) -> None:
        """A run is queued: count its selection and cut it into chunks."""

    def work_on_run(self, run_id: int, copies: int) -> None:
        """A run is planned: `copies` workers may take its chunks."""


_plugged: TaskEngine | None = None


def plugged() -> TaskEngine:
    global _plugged
    if _plugged is None:
        _plugged = import_string(settings.JOBS_TASK_ENGINE)
    return _plugged


def events_written() -> None:
    transaction.on_commit(plugged().announce_events)


def run_queued(run_id: int) -> None:
    transaction.on_commit(lambda: plugged().plan_run(run_id))


def run_planned(run_id: int, copies: int) -> None:
    transaction.on_commit(lambda: plugged().work_on_run(run_id, copies))


def plan_again(run_id: int) -> None:
    plugged().plan_run(run_id)


def work_again(run_id: int, copies: int) -> None:
    plugged().work_on_run(run_id, copies)
