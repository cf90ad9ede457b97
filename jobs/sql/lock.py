"""One job's lock, reading everything its transition and its answer need, of a job the caller
sees (jobs.visibility): one query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, models

from jobs.models import AllowedStatus, Assignment, Job, JobStatus, JobType
from jobs.sql.parts import Part, column, quote, table
from jobs.visibility import EVERY_JOB, Sight


@dataclass(frozen=True)
class Wanted:
    """A catalog entry a transition asks for by identifier (a status, a cancellation reason):
    read with the job, with whether the job's type allows it when that matters."""

    model: type[models.Model]
    field: str  # the identifier's field: id, name or alternative_code
    check_allowed: bool


def wanted_for(choice: Any, requested: Any) -> tuple[Wanted, Any] | None:
    """What a job's lock reads for a transition's choice (`jobs.transitions.Choice`) asked for:
    the entry by the identifier's field, with the value to look for; None when there is nothing
    to read (the type's default, or an entry given whole that nothing is checked against)."""
    if requested is None:
        return None
    checked = choice.state is not None
    if isinstance(requested, choice.model):
        return (Wanted(choice.model, "id", True), requested.pk) if checked else None
    ((field, value),) = requested.items()
    return Wanted(choice.model, field, checked), value


@dataclass(frozen=True)
class LockedRow:
    """What one job's lock reads, as instances."""

    job: Job
    leaving_status: dict[str, Any]  # the status the job leaves, as its event names it
    wanted: list[tuple[Any, bool]]  # each Wanted entry (or None) and whether the type allows it
    # Whether the job changed while the lock waited for it (read `noting_waits`): the rows the
    # statement joined to it are then as they were before that change.
    waited: bool = False


@dataclass(frozen=True)
class _LockStatement:
    sql: str
    job: Part
    job_type: Part
    defaults: tuple[tuple[str, Part], ...]  # the type's default for each relation
    assignment: tuple[Part, Part, Part] | None
    author: Part | None
    owner: Part | None
    wanted: tuple[tuple[Part, bool], ...]


def seen_sql(sight: Sight) -> tuple[str, list[Any]]:
    """The visibility rule (jobs.visibility) for the job `j` as SQL, with its parameters; empty
    for a user who sees every job."""
    if sight.everything:
        return "", []
    own: list[str] = []
    assigned: list[str] = []
    own_values: list[Any] = []
    assigned_values: list[Any] = []
    for term in sight.terms():
        placeholders = ", ".join(["%s"] * len(term.values))
        if term.of_assignment:
            assigned.append(f"sa.{column(Assignment, term.field)} IN ({placeholders})")
            assigned_values.extend(term.values)
        else:
            own.append(f"j.{column(Job, term.field)} IN ({placeholders})")
            own_values.extend(term.values)
    if assigned:
        # One job: its own assignment, by the unique index on job, not every assigned job.
        own.append(
            f"EXISTS (SELECT 1 FROM {table(Assignment)} sa "
            f"WHERE sa.{column(Assignment, 'job')} = j.{quote('id')} "
            f"AND ({' OR '.join(assigned)}))"
        )
    return f"({' OR '.join(own) or '1 = 0'})", own_values + assigned_values


def _status_columns(whole: bool) -> tuple[str, ...]:
    """The columns of the job's status the lock reads, after its id: what an event names, or
    (`whole`) every one an answer shows."""
    return ("name", "alternative_code", "description") if whole else ("name", "alternative_code")


@cache
def _lock_statement(
    vendor: str,
    by: str,
    type_defaults: tuple[str, ...],
    wanted: tuple[Wanted, ...],
    with_assignment: bool,
    with_author: bool,
    with_owner: bool,
    with_status: bool,
    noting_waits: bool,
    sight: Sight,
) -> _LockStatement:
    """One job's lock, by its `by` column, if the caller sees it (`sight`, whose values are
    parameters: the statement depends only on its shape), with its type, the type's defaults,
    the entries asked for, and (for the caller's answer) its assignment, author and owner."""
    job = Part.of(Job, "j")
    job_type = Part.of(JobType, "t")
    status_pk, type_pk = quote(JobStatus._meta.pk.column), quote(JobType._meta.pk.column)
    parts: list[Part] = [job, job_type]
    joins = [f"JOIN {table(JobType)} t ON t.{type_pk} = j.{column(Job, 'type')}"]
    defaults = []
    for index, relation in enumerate(type_defaults):
        target = JobType._meta.get_field(relation).related_model
        part = Part.of(target, f"d{index}")
        defaults.append((relation, part))
        parts.append(part)
        joins.append(
            f"LEFT JOIN {table(target)} d{index} "
            f"ON d{index}.{quote(target._meta.pk.column)} = t.{column(JobType, relation)}"
        )
    assignment = None
    seen, _ = seen_sql(sight)
    if with_assignment:
        user_model = get_user_model()
        assignment = (
            Part.of(Assignment, "a"),
            Part.of(user_model, "au", ["id", "username", "first_name", "last_name", "email"]),
            Part.of(Group, "ag", ["id", "name"]),
        )
        parts.extend(assignment)
        joins += [
            f"LEFT JOIN {table(Assignment)} a ON a.{column(Assignment, 'job')} = j.{quote('id')}",
            f"LEFT JOIN {table(user_model)} au "
            f"ON au.{quote('id')} = a.{column(Assignment, 'user')}",
            f"LEFT JOIN {table(Group)} ag ON ag.{quote('id')} = a.{column(Assignment, 'unit')}",
        ]
    author = None
    if with_author:
        user_model = get_user_model()
        author = Part.of(user_model, "cu", ["id", "username"])
        parts.append(author)
        joins.append(
            f"LEFT JOIN {table(user_model)} cu "
            f"ON cu.{quote('id')} = j.{column(Job, 'created_by_user')}"
        )
    owner = None
    if with_owner:
        owner = Part.of(Group, "og", ["id", "name"])
        parts.append(owner)
        joins.append(
            f"LEFT JOIN {table(Group)} og ON og.{quote('id')} = j.{column(Job, 'owned_by_group')}"
        )
    wanted_parts = []
    allowed_checks = []
    through = AllowedStatus
    for index, entry in enumerate(wanted):
        part = Part.of(entry.model, f"w{index}")
        wanted_parts.append((part, entry.check_allowed))
        parts.append(part)
        joins.append(
            f"LEFT JOIN {table(entry.model)} w{index} "
            f"ON w{index}.{column(entry.model, entry.field)} = %s"
        )
        if entry.check_allowed:
            allowed_checks.append(
                f"EXISTS (SELECT 1 FROM {table(through)} x "
                f"WHERE x.{column(through, 'job_type')} = j.{column(Job, 'type')} "
                f"AND x.{column(through, 'status')} = w{index}.{status_pk})"
            )
    # The status the job leaves comes from subqueries, not a join: when the row changed while we
    # waited for its lock, PostgreSQL re-reads it, and a join on the old status would then drop
    # the row (a job "not found" instead of a conflict).
    leaving = [
        f"(SELECT s.{column(JobStatus, name)} FROM {table(JobStatus)} s "
        f"WHERE s.{status_pk} = j.{column(Job, 'status')})"
        for name in _status_columns(with_status)
    ]
    columns = [c for part in parts for c in part.select] + leaving + allowed_checks
    if noting_waits:
        # The job's version as the statement's snapshot has it: the row it locks is the latest,
        # re-read after any update the lock waited for, while a subquery keeps the snapshot.
        version = column(Job, "version")
        columns.append(
            f"(SELECT v.{version} FROM {table(Job)} v WHERE v.{quote('id')} = j.{quote('id')})"
        )
    # FOR UPDATE OF the job alone: PostgreSQL refuses to lock the nullable side of an outer join.
    # SQLite has no row locks; its writers take turns (BEGIN IMMEDIATE, see settings) and the
    # compare-and-set write catches the rest.
    lock = " FOR UPDATE OF j" if vendor == "postgresql" else ""
    sql = (
        f"SELECT {', '.join(columns)} FROM {table(Job)} j {' '.join(joins)} "
        f"WHERE j.{column(Job, by)} = %s{f' AND {seen}' if seen else ''}{lock}"
    )
    return _LockStatement(
        sql, job, job_type, tuple(defaults), assignment, author, owner, tuple(wanted_parts)
    )


def lock_job(
    by: str,
    value: Any,
    *,
    type_defaults: tuple[str, ...],
    wanted: Sequence[tuple[Wanted, Any]] = (),
    with_assignment: bool = False,
    with_author: bool = False,
    with_owner: bool = False,
    with_status: bool = False,
    noting_waits: bool = False,
    sight: Sight = EVERY_JOB,
) -> LockedRow | None:
    """Lock the job whose `by` column is `value` (inside a transaction), reading everything a
    transition and its answer need: one query. None when there is no such job or the caller
    does not see it (`sight`): the same statement either way. `with_status`: the job's status
    whole, for an answer that shows it (a transition's answer shows the status it entered).
    `noting_waits`: say whether the job changed while the lock waited (`LockedRow.waited`)."""
    statement = _lock_statement(
        connection.vendor,
        by,
        tuple(type_defaults),
        tuple(entry for entry, _ in wanted),
        with_assignment,
        with_author,
        with_owner,
        with_status,
        noting_waits,
        sight.skeleton(),
    )
    _, seen = seen_sql(sight)
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, [*(v for _, v in wanted), value, *seen])
        row = cursor.fetchone()
    if row is None:
        return None
    values = iter(row)

    def take(part: Part) -> Any:
        return part.build([next(values) for _ in part.fields])

    job: Job = take(statement.job)
    job.type = take(statement.job_type)
    for relation, part in statement.defaults:
        setattr(job.type, relation, take(part))
    if statement.assignment is not None:
        assignment, user, unit = (take(p) for p in statement.assignment)
        if assignment is not None:
            assignment.user, assignment.unit = user, unit
            assignment.job = job
        job.assigned_to_loaded = assignment
    if statement.author is not None:
        job.created_by_user = take(statement.author)
    if statement.owner is not None:
        job.owned_by_group = take(statement.owner)
    found = [take(part) for part, _ in statement.wanted]
    name, alternative_code = next(values), next(values)
    leaving = {"id": job.status_id, "name": name, "alternative_code": alternative_code}
    if with_status:
        # A status is in its job's state (Job.clean): the state is the job's own column.
        names = ["id", *_status_columns(True), "life_cycle_state"]
        row_values = [job.status_id, name, alternative_code, next(values), job.life_cycle_state]
        job.status = JobStatus.from_db(connection.alias, names, row_values)
    checks = iter(values)
    wanted_rows = [
        (entry, bool(next(checks)) if check_allowed else True)
        for entry, (_, check_allowed) in zip(found, statement.wanted, strict=True)
    ]
    waited = noting_waits and next(values) != job.version
    return LockedRow(job, leaving, wanted_rows, waited)
