"""Updating a job's fields (CRM.COM's update): lock the job the caller sees, compare what was sent
with what it holds, and write only what differs, with its record and the event `job.updated`, in
one transaction. An update never changes the life-cycle state; its status moves only forward in
the type's sequence, within the state."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction

from jobs.events import JOB_UPDATED
from jobs.exceptions import (
    DuplicateExternalReference,
    GroupNotFound,
    JobNotFound,
    JobStateConflict,
    PermissionDenied,
    PreconditionFailed,
    StatusNotAllowed,
    StatusNotFound,
    UserNotFound,
)
from jobs.models import Assignment, Job, JobStatus, JobUpdate, LifeCycleState
from jobs.selectors import next_statuses
from jobs.services import engine
from jobs.services.intake import ABSENT, Identifier, ensure_reference_free, find_one
from jobs.services.one import JobRef, job_lookup
from jobs.services.records import EventRow, Moment, events, reference
from jobs.sql import writes as sql
from jobs.sql.lock import lock_job
from jobs.sql.writes import Rows
from jobs.visibility import sight_of

CHANGE_PERMISSION = "jobs.change_job"
# The states in which a job's fields may change: an ended job is a record.
UPDATABLE = (LifeCycleState.DRAFT, LifeCycleState.PENDING, LifeCycleState.IN_PROGRESS)
RECORD_FIELDS = ("job", "user", "channel", "created_at", "changes")


@dataclass(frozen=True, slots=True)
class JobChanges:
    """What an update asks for, identifiers parsed by the door (or instances, from the admin).
    Each field is ABSENT, left as it is, unless sent; None clears it. `assigned_to` is the whole
    new assignment, (user, unit), either of them None; None itself is no assignment."""

    description: str | None = ABSENT
    notes: str | None = ABSENT
    scheduled_date: datetime | None = ABSENT
    external_reference: str | None = ABSENT
    owned_by_group: Identifier | Group | None = ABSENT
    assigned_to: tuple[Any, Any] | None = ABSENT
    status: Identifier | JobStatus = ABSENT

    def sent(self) -> dict[str, Any]:
        return {
            f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not ABSENT
        }


def update_job(
    job: JobRef,
    changes: JobChanges,
    *,
    user: Any,
    channel: str,
    precondition: Callable[[Job], bool] | None = None,
    load: tuple[str, ...] = (),
) -> Job:
    """Update `job` as `changes` asks, as `user` through `channel`; raise a JobsError (with the
    contract's code) if it cannot. With a `precondition` (the API's If-Match), only a job that
    passes it as locked changes (PRECONDITION_FAILED otherwise). Returns the job as it is now,
    with what an answer shows (and the author when `load` names it), read by the lock: nothing
    to read again.

    An update that changes nothing writes nothing: no version, no record, no event."""
    if user is None or not user.is_active or not user.has_perm(CHANGE_PERMISSION):
        raise PermissionDenied(permission=CHANGE_PERMISSION)
    wanted = _resolved(changes.sent())
    at = Moment.now()
    read = {
        "type_defaults": (),
        "with_assignment": True,
        "with_author": any(path.startswith("created_by_user") for path in load),
        "with_owner": True,
        "with_status": True,
    }
    with transaction.atomic():
        locked = lock_job(*job_lookup(job), **read, noting_waits=True, sight=sight_of(user))
        if locked is None:
            raise JobNotFound()
        if locked.waited:
            # Another write committed while we waited for the lock: on PostgreSQL the statement
            # saw the job's assignment and owner as they were before it, and what an update
            # compares must be what it replaces. Read again, now that the job is ours.
            locked = lock_job("id", locked.job.pk, **read)
        current = locked.job
        if precondition is not None and not precondition(current):
            raise PreconditionFailed(job=current.number)
        if current.life_cycle_state not in UPDATABLE:
            raise JobStateConflict(
                job=current.number, state=current.life_cycle_state, updatable=_words(UPDATABLE)
            )
        if "status" in wanted and wanted["status"].pk != current.status_id:
            _ensure_next(current, wanted["status"])
        changed = {name: value for name, value in wanted.items() if _held(current, name) != value}
        if not changed:
            return current
        if changed.get("external_reference") is not None:
            ensure_reference_free(changed["external_reference"], user)
        _write(current, changed, user=user, channel=channel, at=at)
    return current


def _resolved(sent: dict[str, Any]) -> dict[str, Any]:
    """What was sent, as the values the job would hold: text, times and rows."""
    wanted = {}
    for name, value in sent.items():
        if name in ("description", "notes"):
            wanted[name] = value or ""  # cleared text is empty text: the column holds no null
        elif name == "owned_by_group":
            wanted[name] = find_one(Group, value, GroupNotFound)
        elif name == "assigned_to":
            user, unit = value or (None, None)
            wanted[name] = (
                find_one(get_user_model(), user, UserNotFound),
                find_one(Group, unit, GroupNotFound),
            )
        elif name == "status":
            wanted[name] = _status(value)
        else:
            wanted[name] = value
    return wanted


def _status(identifier: Identifier | JobStatus) -> JobStatus:
    if isinstance(identifier, JobStatus):
        return identifier
    status = JobStatus.objects.filter(**identifier).first()
    if status is None:
        raise StatusNotFound(choice="status")
    return status


def _ensure_next(job: Job, status: JobStatus) -> None:
    """The status must follow the job's in its type's sequence, within its state."""
    allowed = [entry.status for entry in next_statuses(job)]
    if status not in allowed:
        raise StatusNotAllowed(
            status=status.name,
            state=job.life_cycle_state,
            job=job.number,
            allowed=", ".join(entry.name for entry in allowed),
        )


def _words(states: tuple[str, ...]) -> str:
    return f"{', '.join(states[:-1])} or {states[-1]}"


def _held(job: Job, name: str) -> Any:
    """What the locked job holds for a field of JobChanges, as `_resolved` gives it."""
    if name == "assigned_to":
        assignment = job.assigned_to_loaded
        return (None, None) if assignment is None else (assignment.user, assignment.unit)
    return getattr(job, name)


def _as_json(name: str, value: Any) -> Any:
    """A field's value as the record and the event name it."""
    if name == "status":
        return reference(value)
    if name == "owned_by_group":
        return _group(value)
    if name == "assigned_to":
        user, unit = value
        if user is None and unit is None:
            return None
        who = None if user is None else {"id": user.pk, "username": user.get_username()}
        return {"user": who, "unit": _group(unit)}
    if isinstance(value, datetime):
        return DjangoJSONEncoder().default(value)
    return value


def _group(group: Group | None) -> dict[str, Any] | None:
    return None if group is None else {"id": group.pk, "name": group.name}


def _write(job: Job, changed: dict[str, Any], *, user: Any, channel: str, at: Moment) -> None:
    """The compare-and-set UPDATE of the job's changed columns (guarded by its version), its
    record and its event: one statement on PostgreSQL; then the assignment, if it changed."""
    diff = {
        name: {"from": _as_json(name, _held(job, name)), "to": _as_json(name, value)}
        for name, value in changed.items()
    }
    columns = {name: value for name, value in changed.items() if name != "assigned_to"}
    columns |= {"updated_date": at.when, "updated_by_user": user}
    model_fields = [Job._meta.get_field(name) for name in columns]
    values = [
        f.get_db_prep_save(getattr(v, "pk", v) if f.is_relation else v, connection)
        for f, v in zip(model_fields, columns.values(), strict=True)
    ]
    names = tuple(f.attname for f in model_fields)
    statement = sql.update_one_sql(connection.vendor, names, guard="version")
    record = (job.pk, user.pk, channel, at.db_value, json.dumps(diff))
    data = {
        "job": {
            "id": job.pk,
            "number": job.number,
            "type": {"id": job.type_id, "alternative_code": job.type.alternative_code},
        },
        "changes": diff,
        "user": {"id": user.pk, "username": user.get_username()},
        "channel": channel,
    }
    inserts = [
        Rows(JobUpdate, RECORD_FIELDS, [record]),
        events([EventRow.of(JOB_UPDATED, data, at, job=job.pk)]),
    ]
    try:
        written = sql.write((statement, [*values, job.pk, job.version]), inserts)
    except IntegrityError:
        # Another job took the reference between our check and our write.
        raise DuplicateExternalReference(reference=changed["external_reference"]) from None
    if written != 1:  # the lock holds the row: only a writer that ignores it gets here
        raise JobStateConflict(job=job.number, race=True)
    if "assigned_to" in changed:
        job.assigned_to_loaded = _assign(job, *changed["assigned_to"])
    for name, value in columns.items():
        setattr(job, name, value)
    job.version += 1
    engine.events_written()


def _assign(job: Job, user: Any, unit: Group | None) -> Assignment | None:
    """The job's assignment replaced by (user, unit); none when both are None."""
    held = Assignment.objects.filter(job_id=job.pk)
    if user is None and unit is None:
        held.delete()
        return None
    if job.assigned_to_loaded is not None:
        held.update(user=user, unit=unit)
        assignment = job.assigned_to_loaded
        assignment.user, assignment.unit = user, unit
        return assignment
    return Assignment.objects.create(job=job, user=user, unit=unit)
