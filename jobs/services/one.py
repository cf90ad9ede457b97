"""One job's transition: lock it (reading all the transition and its answer need), check, move,
write. A fixed number of queries: the lock, then the writes (one statement on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction

from jobs.exceptions import JobNotFound, JobsError, JobStateConflict
from jobs.identifiers import JOB_IDENTIFIER_FIELDS, parse_identifier
from jobs.models import Job
from jobs.services.records import Moment, Records
from jobs.services.resolution import CatalogRef, TransitionRef, TransitionRequest
from jobs.services.writes import LostRace, move_job, persist
from jobs.sql.lock import lock_job

# A job: the instance, its primary key, or a CRM.COM identifier object ({"id": …} or {"number": …}).
JobRef = Job | int | Mapping[str, Any]


def _job_lookup(job: JobRef) -> tuple[str, Any]:
    if isinstance(job, Job):
        return "id", job.pk
    if isinstance(job, int):
        return "id", job
    ((field, value),) = parse_identifier(
        job, fields=JOB_IDENTIFIER_FIELDS, parameter="job_identifier"
    ).items()
    return field, value


def job_transition(
    *,
    transition: TransitionRef,
    job: JobRef,
    status: CatalogRef = None,
    user: Any,
    channel: str,
    load: Iterable[str] = (),
    **parameters: CatalogRef,
) -> Job:
    """Run one transition on one job; raise a JobsError (with the contract's code) if it cannot.

    `parameters` are the transition's extra parameters (cancel: `cancellation_reason`), each an
    instance, an identifier object, or None for the type's default. Returns the job with its new
    state, status and every column the transition set, its type, and what `load` names (ORM
    paths such as "assigned_to__user__username" or "created_by_user__username"), read by the
    lock, so a caller renders the job without reading it again.
    """
    lookup = _job_lookup(job)
    request = TransitionRequest.build(
        transition, status=status, parameters=parameters, user=user, channel=channel
    )
    try:
        moved = _transition_one(request, lookup, tuple(load))
    except JobsError as refusal:
        request.count(refusal.code)
        raise
    request.count(request.transition.past)
    return moved


def _transition_one(request: TransitionRequest, lookup: tuple[str, Any], load: tuple) -> Job:
    declared = request.transition
    pending = [(r, wanted) for r in request.resolvers if (wanted := r.wanted) is not None]
    at = Moment.now()
    with transaction.atomic():
        locked = lock_job(
            *lookup,
            type_defaults=declared.type_defaults,
            wanted=[wanted for _, wanted in pending],
            with_assignment=any(path.startswith("assigned_to") for path in load),
            with_author=any(path.startswith("created_by_user") for path in load),
        )
        if locked is None:
            raise JobNotFound(
                "No job matches the identifier.", "Check the job's id or number and try again."
            )
        job = locked.job
        for (resolver, _), (entry, allowed) in zip(pending, locked.wanted, strict=True):
            resolver.take(job, entry, allowed)
        chosen = request.check(job)
        records = Records.empty(declared)
        move = move_job(
            job,
            chosen,
            request=request,
            leaving_status=locked.leaving_status,
            at=at,
            records=records,
        )
        try:
            persist(declared.target, [move], records)
        except LostRace:
            raise JobStateConflict(
                f"Job {job.number} was changed by another request first.",
                "Nothing was changed by this request. Reload the job to see its current state.",
            ) from None
    return job
