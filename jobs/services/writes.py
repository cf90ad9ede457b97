"""Writing moved jobs: the compare-and-set UPDATE, then their log rows and events (made by
jobs.services.records), through the statements of jobs.sql.writes.

The UPDATE only writes a job still in the state it was read in; a short count means someone else
got there first, and the caller's transaction rolls back (`LostRace`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from django.db import connection, models
from django.db.models import Case, F, Q, Value, When

from jobs.models import Job
from jobs.services import engine
from jobs.services.moves import WRITABLE, Move, changes
from jobs.services.records import Moment, Records
from jobs.sql import writes as sql

if TYPE_CHECKING:  # the order only says who and what; nothing of resolution runs here
    from jobs.services.resolution import TransitionOrder


class LostRace(Exception):
    """A job changed state between our read and our write."""


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
    values = {"life_cycle_state": Value(target), "version": F("version") + 1}
    for name, column in changed.items():
        values[name] = _column_value(name, column, unchanged_types[name])
    still_as_read = Q()
    for state, pks in by_state.items():
        still_as_read |= Q(pk__in=pks, life_cycle_state=state)
    return Job.objects.filter(still_as_read).update(**values)


def persist(order: TransitionOrder, moves: list[Move], at: Moment) -> None:
    """Write the moved jobs, their log rows and their events; raise LostRace if any job was no
    longer in the state it was read in. One statement for one job on PostgreSQL."""
    target = order.transition.target
    one = _update_one(target, moves[0]) if len(moves) == 1 else None
    records = Records.empty(order.transition)
    for move in moves:
        records.add(
            move.job,
            from_state=move.from_state,
            from_status=move.leaving_status,
            user=order.user,
            channel=order.channel,
            at=at,
            run=order.run,
        )
    inserts = records.rows()
    if one is not None:
        updated = sql.write(one, inserts)
    else:
        updated = _update_many(target, moves)
        if updated == len(moves):
            sql.write(None, inserts)
    if updated != len(moves):
        raise LostRace
    if one is not None:
        moves[0].job.version += 1  # as written: the answer's ETag
    # One message per batch, once it has committed: never an event that did not happen.
    engine.events_written()
