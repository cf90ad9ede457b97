"""A job moved in memory, before it is written: what it was read as, and what the transition
changed (jobs.services.resolution makes moves; jobs.services.writes writes them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs.models import Job

# The columns a transition may change, and the service writes when it does (the version is
# counted by the statement itself: jobs.sql.writes).
WRITABLE = tuple(
    f.attname
    for f in Job._meta.concrete_fields
    if f.attname not in {"id", "number", "life_cycle_state", "type_id", "version"}
)


# A column the job was read without (a bulk run reads only what transitions read).
NOT_READ = object()


def snapshot(job: Job) -> tuple:
    """The writable columns' values as read, to tell afterwards what the transition changed."""
    deferred = job.get_deferred_fields()
    return tuple(NOT_READ if name in deferred else getattr(job, name) for name in WRITABLE)


def changes(before: tuple, job: Job) -> dict[str, Any]:
    """The columns the transition changed on `job`, by name, with their new values: those whose
    value differs, and those it assigned without their having been read."""
    deferred = job.get_deferred_fields()
    return {
        name: getattr(job, name)
        for name, old in zip(WRITABLE, before, strict=True)
        if name not in deferred and (old is NOT_READ or getattr(job, name) != old)
    }


@dataclass(frozen=True, slots=True)
class Move:
    """A job the transition moved in memory: the state, status and column values it was read
    with, so that the write is a compare-and-set and the log and event say where it came from."""

    job: Job
    from_state: str
    leaving_status: dict[str, Any]  # the status it left, as its event names it
    before: tuple
