"""One job's transition: lock it (reading all the transition and its answer need), check, move,
write. A fixed number of queries: the lock, then the writes (one statement on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.db import transaction

from jobs.exceptions import JobNotFound, JobsError, JobStateConflict, PreconditionFailed
from jobs.metrics import count_transition
from jobs.models import Job
from jobs.services.permissions import TransitionRef, ensure_permitted
from jobs.services.records import Moment
from jobs.services.resolution import CatalogRef, TransitionOrder
from jobs.services.writes import LostRace, persist
from jobs.sql.lock import lock_job, wanted_for
from jobs.transitions import JobTransition, get_transition
from jobs.visibility import sight_of

# A job: the instance, its primary key, or an identifier the door has parsed ({"id": 19} or
# {"number": "JB00019"}; jobs.identifiers.parse_identifier).
JobRef = Job | int | Mapping[str, Any]


def job_lookup(job: JobRef) -> tuple[str, Any]:
    if isinstance(job, Job):
        return "id", job.pk
    if isinstance(job, int):
        return "id", job
    ((field, value),) = job.items()
    return field, value


def job_transition(
    *,
    transition: TransitionRef,
    job: JobRef,
    status: CatalogRef = None,
    user: Any,
    channel: str,
    load: Iterable[str] = (),
    precondition: Callable[[Job], bool] | None = None,
    **parameters: CatalogRef,
) -> Job:
    """Run one transition on one job; raise a JobsError (with the contract's code) if it cannot.

    `parameters` are the transition's extra parameters (cancel: `cancellation_reason`), each an
    instance, an identifier object, or None for the type's default. Returns the job with its new
    state, status and every column the transition set, its type, and what `load` names (ORM
    paths such as "assigned_to__user__username" or "created_by_user__username"), read by the
    lock, so a caller renders the job without reading it again. With a `precondition` (the API's
    If-Match), only a job that passes it as locked moves (PRECONDITION_FAILED otherwise).

    In order, each once: the permission, the lock of a job the user sees (which reads the
    entries asked for), the order built from the locked row (its rules and the move in memory),
    the writes. A job the user does not see is JOB_NOT_FOUND, as one that does not exist.
    """
    declared = get_transition(transition)
    try:
        ensure_permitted(user, declared)
        requested = declared.requested(status, parameters)
        moved = _transition_one(
            declared, requested, job_lookup(job), user, channel, tuple(load), precondition
        )
    except JobsError as refusal:
        count_transition(declared.name, channel, refusal.code)
        raise
    count_transition(declared.name, channel, declared.past)
    return moved


def _transition_one(
    declared: JobTransition,
    requested: dict[str, CatalogRef],
    lookup: tuple[str, Any],
    user: Any,
    channel: str,
    load: tuple[str, ...],
    precondition: Callable[[Job], bool] | None,
) -> Job:
    # What the lock reads of the entries asked for, by choice.
    wanted = {c.name: w for c in declared.choices if (w := wanted_for(c, requested[c.name]))}
    at = Moment.now()
    with transaction.atomic():
        locked = lock_job(
            *lookup,
            type_defaults=declared.type_defaults,
            wanted=list(wanted.values()),
            with_assignment=any(path.startswith("assigned_to") for path in load),
            with_author=any(path.startswith("created_by_user") for path in load),
            with_owner=any(path.startswith("owned_by_group") for path in load),
            sight=sight_of(user),
        )
        if locked is None:
            raise JobNotFound()
        if precondition is not None and not precondition(locked.job):
            raise PreconditionFailed(job=locked.job.number)
        found = dict(zip(wanted, locked.wanted, strict=True))
        order = TransitionOrder.for_locked(
            declared, requested, job=locked.job, found=found, user=user, channel=channel
        )
        move = order.move(locked.job, locked.leaving_status, at)
        try:
            persist(order, [move], at)
        except LostRace:
            raise JobStateConflict(job=locked.job.number, race=True) from None
    return locked.job
