"""Jobs from outside: a new job checked against its type and the creator's units, and written in
one transaction with its assignment and its event `job.created` (the outbox)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from jobs.events import JOB_CREATED
from jobs.exceptions import (
    DuplicateExternalReference,
    GroupNotFound,
    InvalidParameter,
    JobTypeNotFound,
    MandatoryParameterMissing,
    NoDefaultStatus,
    PermissionDenied,
    StatusNotAllowed,
    StatusNotFound,
    UserNotFound,
)
from jobs.models import (
    CREATE_STATES,
    VIEW_ALL_PERMISSION,
    Assignment,
    ExpirationSetting,
    Job,
    JobStatus,
    JobType,
    LifeCycleState,
)
from jobs.services import engine
from jobs.services.records import EventRow, Moment, events, reference
from jobs.sql.writes import write
from jobs.visibility import sight_of

ADD_PERMISSION = "jobs.add_job"
# A field the caller left out, told apart from one sent as null (which clears it).
ABSENT: Any = object()

Identifier = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a create asks for, identifiers already parsed by the door; `owned_by_group` is
    ABSENT when not sent (the creator's unit), None when sent as null (no owner)."""

    job_type: Identifier
    status: Identifier | None = None
    description: str = ""
    notes: str = ""
    scheduled_date: datetime | None = None
    assigned_user: Identifier | None = None
    assigned_unit: Identifier | None = None
    owned_by_group: Identifier | None = ABSENT
    external_reference: str | None = None


def create_job(new: NewJob, *, user: Any, channel: str, scope: str | None = None) -> Job:
    """Make the job `new` asks for, as `user` through `channel` (the type's fulfillment scope
    must be `scope`, when given); raise a JobsError (with the contract's code) if it cannot. The
    job comes back with everything an answer shows, read or made here: nothing to read again."""
    if user is None or not user.is_active or not user.has_perm(ADD_PERMISSION):
        raise PermissionDenied(permission=ADD_PERMISSION)
    job_type = _job_type(new.job_type, scope)
    status = _status(job_type, new.status)
    owner = _owner(user, new.owned_by_group)
    assignee = find_one(get_user_model(), new.assigned_user, UserNotFound)
    unit = find_one(Group, new.assigned_unit, GroupNotFound)
    if new.external_reference is not None:
        ensure_reference_free(new.external_reference, user)
    at = Moment.now()
    job = Job(
        type=job_type,
        status=status,
        life_cycle_state=status.life_cycle_state,
        description=new.description,
        notes=new.notes,
        scheduled_date=new.scheduled_date,
        expiration_date=_expires(job_type, status, at.when),
        owned_by_group=owner,
        external_reference=new.external_reference,
        created_date=at.when,
        created_by_user=user,
        updated_date=at.when,
        updated_by_user=user,
    )
    # No savepoint inside a caller's transaction (the Idempotency-Key's): a refusal fails it.
    with transaction.atomic(savepoint=False):
        try:
            job.save()
        except IntegrityError:
            # Another create took the reference between our check and our write; the whole
            # transaction rolls back with this refusal, so no savepoint is needed to go on.
            raise DuplicateExternalReference(reference=new.external_reference) from None
        job.assigned_to_loaded = None
        if assignee is not None or unit is not None:
            job.assigned_to_loaded = Assignment.objects.create(job=job, user=assignee, unit=unit)
        data = created_data(job, user=user, channel=channel)
        write(None, [events([EventRow.of(JOB_CREATED, data, at, job=job.pk)])])
        engine.events_written()
    return job


def created_data(job: Job, *, user: Any, channel: str) -> dict[str, Any]:
    """The event `job.created`'s data: the job as it began."""
    owner = job.owned_by_group
    return {
        "job": {
            "id": job.pk,
            "number": job.number,
            "type": {"id": job.type_id, "alternative_code": job.type.alternative_code},
        },
        "to_state": job.life_cycle_state,
        "to_status": reference(job.status),
        "owned_by_group": None if owner is None else {"id": owner.pk, "name": owner.name},
        "user": {"id": user.pk, "username": user.get_username()},
        "channel": channel,
    }


def _job_type(identifier: Identifier, scope: str | None) -> JobType:
    job_type = JobType.objects.select_related("default_create_status").filter(**identifier).first()
    if job_type is None:
        raise JobTypeNotFound(
            "No job type matches type_identifier.",
            "Name an existing job type by id, name or alternative_code.",
        )
    if scope is not None and job_type.fulfillment_scope != scope:
        raise InvalidParameter(
            f"Job type {job_type.name} is {job_type.fulfillment_scope}, not {scope}.",
            f"Name a {scope} job type here, or create the job with POST jobs.",
        )
    return job_type


def _status(job_type: JobType, identifier: Identifier | None) -> JobStatus:
    """The status asked for, or the type's default on create: allowed, in DRAFT or PENDING."""
    if identifier is None:
        status = job_type.default_create_status
        if status is None:
            raise NoDefaultStatus(
                type=job_type.name, field="default_create_status", choice="status"
            )
        return status
    status = JobStatus.objects.filter(**identifier).first()
    if status is None:
        raise StatusNotFound(choice="status")
    states = " or ".join(CREATE_STATES)
    if status.life_cycle_state not in CREATE_STATES:
        raise StatusNotAllowed(
            status=status.name, status_state=status.life_cycle_state, state=states
        )
    if not job_type.allowed_statuses.filter(pk=status.pk).exists():
        raise StatusNotAllowed(status=status.name, type=job_type.name, state=states)
    return status


def _owner(user: Any, identifier: Identifier | None) -> Group | None:
    """The group that owns the new job: the one asked for, else the creator's only group. Only
    a creator who sees every job may give it to a group not theirs."""
    sight = sight_of(user)
    if identifier is ABSENT:
        if len(sight.group_ids) == 1:
            return Group.objects.get(pk=sight.group_ids[0])
        if len(sight.group_ids) > 1 and not sight.everything:
            raise MandatoryParameterMissing(
                "owned_by_group_identifier is missing: you are in several groups.",
                "Name the group that is to own the job, one of yours.",
            )
        return None
    group = find_one(Group, identifier, GroupNotFound)
    if group is not None and not sight.everything and group.pk not in sight.group_ids:
        raise PermissionDenied(permission=VIEW_ALL_PERMISSION)
    return group


def find_one(model: Any, identifier: Identifier | Any | None, not_found: type) -> Any:
    """The `model` row an identifier names (an instance stands for itself), None for None;
    `not_found` is raised when none is."""
    if identifier is None or isinstance(identifier, model):
        return identifier
    found = model.objects.filter(**identifier).first()
    if found is None:
        raise not_found()
    return found


def ensure_reference_free(external_reference: str, user: Any) -> None:
    """Refuse an external reference another job holds, naming that job to whom sees it."""
    held = Job.objects.filter(external_reference=external_reference)
    if held.exists():
        seen = held.filter(sight_of(user).q()).values_list("number", flat=True).first()
        raise DuplicateExternalReference(reference=external_reference, number=seen or "")


def _expires(job_type: JobType, status: JobStatus, now: datetime) -> datetime | None:
    setting, days = job_type.expiration_settings, job_type.expiration_days
    if setting == ExpirationSetting.X_DAYS_AFTER_JOB_CREATION:
        return now + timedelta(days=days)
    if setting == ExpirationSetting.ON_PENDING_STATE and status.life_cycle_state == (
        LifeCycleState.PENDING
    ):
        return now + timedelta(days=days or 0)
    return None
