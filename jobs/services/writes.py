"""Writing moved jobs: the compare-and-set UPDATE, then their log rows and events.

The UPDATE only writes a job still in the state it was read in; a short count means someone else
got there first, and the caller's transaction rolls back (`LostRace`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import connection, models
from django.db.models import Case, F, Q, Value, When

from jobs.models import Job
from jobs.services import engine
from jobs.services.records import Moment, Records
from jobs.services.resolution import TransitionRequest
from jobs.sql import writes as sql

# The columns a transition may change, and the service writes when it does.
WRITABLE = tuple(
    f.attname
    for f in Job._meta.concrete_fields
    if f.attname not in {"id", "number", "life_cycle_state", "type_id"}
)


class LostRace(Exception):
    """A job changed state between our read and our write."""


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
    """A job the transition moved in memory: the state and column values it was read with."""

    job: Job
    from_state: str
    before: tuple


def move_job(
    job: Job,
    chosen: dict[str, Any],
    *,
    request: TransitionRequest,
    leaving_status: dict[str, Any],
    at: Moment,
    records: Records,
) -> Move:
    """Run the model's transition on `job` in memory, and record its log row and event."""
    move = Move(job, job.life_cycle_state, snapshot(job))
    request.transition.run(job, by=request.user, at=at.when, **chosen)
    records.add(
        job,
        from_state=move.from_state,
        from_status=leaving_status,
        user=request.user,
        channel=request.channel,
        at=at,
        run=request.run,
    )
    return move


def _update_one(target: str, move: Move) -> tuple[str, list[Any]]:
    changed = {"life_cycle_state": target, **changes(move.before, move.job)}
    fields = [Job._meta.get_field(name) for name in changed]
    values = [f.get_db_prep_save(changed[f.attname], connection) for f in fields]
    statement = sql.update_one_sql(connection.vendor, tuple(changed))
    return statement, [*values, move.job.pk, move.from_state]


def _column_value(name: str, changed: list[tuple[Job, Any]], unchanged_types: set[int]) -> Any:
    """One column's new values over a batch as one expression. Most depend only on the job's
    type (one time per batch), so they are a CASE over the handful of types, or a constant; only
    values that differ within a type fall back to one branch per job."""
    model_field = Job._meta.get_field(name)
    output = models.BigIntegerField() if model_field.is_relation else model_field
    if not unchanged_types and len({value for _, value in changed}) == 1:
        return Value(changed[0][1], output_field=output)
    per_type: dict[int, Any] = {}
    uniform = True
    for job, value in changed:
        if job.type_id in unchanged_types or per_type.setdefault(job.type_id, value) != value:
            uniform = False
            break
    branches = (
        [When(type_id=t, then=Value(v, output_field=output)) for t, v in per_type.items()]
        if uniform
        else [When(pk=job.pk, then=Value(v, output_field=output)) for job, v in changed]
    )
    return Case(*branches, default=F(name), output_field=output)


def _update_many(target: str, moves: list[Move]) -> int:
    """The compare-and-set UPDATE of a batch: one statement, whatever the count."""
    changed: dict[str, list[tuple[Job, Any]]] = defaultdict(list)
    unchanged_types: dict[str, set[int]] = defaultdict(set)
    by_state: dict[str, list[int]] = defaultdict(list)
    for move in moves:
        by_state[move.from_state].append(move.job.pk)
        new = changes(move.before, move.job)
        for name in WRITABLE:
            if name in new:
                changed[name].append((move.job, new[name]))
            else:
                unchanged_types[name].add(move.job.type_id)
    values = {"life_cycle_state": Value(target)}
    for name, column in changed.items():
        values[name] = _column_value(name, column, unchanged_types[name])
    still_as_read = Q()
    for state, pks in by_state.items():
        still_as_read |= Q(pk__in=pks, life_cycle_state=state)
    return Job.objects.filter(still_as_read).update(**values)


def persist(target: str, moves: list[Move], records: Records) -> None:
    """Write the moved jobs, their log rows and their events; raise LostRace if any job was no
    longer in the state it was read in. One statement for one job on PostgreSQL."""
    if len(moves) == 1:
        updated = sql.write(_update_one(target, moves[0]), records.rows())
    else:
        updated = _update_many(target, moves)
        if updated == len(moves):
            sql.write(None, records.rows())
    if updated != len(moves):
        raise LostRace
    # One message per batch, once it has committed: never an event that did not happen.
    engine.events_written()
