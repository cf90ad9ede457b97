"""Read-only look-ups the doors and the service share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Model, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from jobs.exceptions import InvalidIdentifier, JobNotFound, JobsError, JobTypeNotFound
from jobs.identifiers import CATALOG_IDENTIFIER_FIELDS, is_number, parse_identifier
from jobs.models import AllowedStatus, Job, JobStatus, JobTransitionLog, JobType
from jobs.transitions import TRANSITIONS
from jobs.visibility import Sight


def catalog_entry_named(model: type[Model], value: str, *, not_found: type[JobsError]) -> Any:
    """The one status, type or reason whose id, name or alternative code is `value`, as an
    operator types it on the command line; `not_found` is raised when none is."""
    matches = Q(name=value) | Q(alternative_code=value)
    if is_number(value):
        matches |= Q(pk=int(value))
    found = list(model.objects.filter(matches)[:2])
    noun = model._meta.verbose_name
    if not found:
        raise not_found(
            f"no {noun} has the id, name or code {value!r}", f"Name an existing {noun}."
        )
    if len(found) > 1:
        raise InvalidIdentifier(
            f"{value!r} names more than one {noun}; use its id", f"Name the {noun} by its id."
        )
    return found[0]


def job_type_by_identifier(identifier: Any, *, parameter: str = "job_type_identifier") -> JobType:
    lookup = parse_identifier(identifier, fields=CATALOG_IDENTIFIER_FIELDS, parameter=parameter)
    job_type = JobType.objects.filter(**lookup).first()
    if job_type is None:
        raise JobTypeNotFound(
            f"No job type matches {parameter}.",
            "Name an existing job type by id, name or alternative_code.",
        )
    return job_type


def statuses_allowed_for_every_type(jobs: QuerySet[Job], state: str) -> list[JobStatus]:
    """The statuses in `state` that every job type among `jobs` allows: two queries."""
    type_ids = list(jobs.order_by().values_list("type_id", flat=True).distinct())
    if not type_ids:
        return []
    return list(
        JobStatus.objects.filter(life_cycle_state=state)
        .annotate(
            types_allowing=Count(
                "allowed_for_types", filter=Q(allowed_for_types__in=type_ids), distinct=True
            )
        )
        .filter(types_allowing=len(type_ids))
        .order_by("name")
    )


@dataclass(frozen=True, slots=True)
class TypeStatus:
    """A status a job type allows: `id` is the pairing's, `default` whether the type enters it by
    default when a job enters its state."""

    id: int
    status: JobStatus
    default: bool


def statuses_of_type(job_type: JobType, state: str | None = None) -> list[TypeStatus]:
    """The statuses `job_type` allows (in `state`, if given), by name: one query."""
    entries = AllowedStatus.objects.filter(job_type=job_type)
    if state is not None:
        entries = entries.filter(status__life_cycle_state=state)
    # A status is a default when some transition into its state enters it by default.
    defaults = {getattr(job_type, f"{t.default_status_field}_id") for t in TRANSITIONS.values()}
    found = []
    for entry in entries.select_related("status").order_by("status__name"):
        status = entry.status
        found.append(TypeStatus(entry.pk, status, status.pk in defaults))
    return found


def next_statuses(job: Job) -> list[TypeStatus]:
    """The statuses an update may move `job` to now: its type's, in its state, at its current
    status's position in the sequence or later, in sequence order; the first is the default.
    One query."""
    current = AllowedStatus.objects.filter(job_type_id=job.type_id, status_id=job.status_id)
    entries = (
        AllowedStatus.objects.filter(
            job_type_id=job.type_id,
            status__life_cycle_state=job.life_cycle_state,
            position__gte=Coalesce(Subquery(current.values("position")[:1]), 0),
        )
        .exclude(status_id=job.status_id)
        .select_related("status")
        .order_by("position", "status__name")
    )
    return [TypeStatus(entry.pk, entry.status, index == 0) for index, entry in enumerate(entries)]


def job_history(job_pk: int, sight: Sight) -> QuerySet[JobTransitionLog]:
    """A job's transitions, newest first, with what a page of them shows; JOB_NOT_FOUND when no
    job the caller sees has this id (an empty history is a job that has not moved yet)."""
    if not Job.objects.filter(sight.q(), pk=job_pk).exists():
        raise JobNotFound("No job has this id.", "Check the id and try again.")
    return (
        JobTransitionLog.objects.filter(job_id=job_pk)
        .select_related("from_status", "to_status", "user", "cancellation_reason")
        .order_by("-created_at", "-id")
    )
