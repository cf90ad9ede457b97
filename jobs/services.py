"""Starting progress on jobs: the one place that does it, for the API, the admin and the command.

The transition itself (`Job.start_progress`) is pure and lives on the model. This module owns what
the model cannot: the permission check (django-fsm does not check `permission=` on a call), locking,
resolving the status, the compare-and-set write, the transition log, and batching.

Query budget: one start is at most 6 queries (permission 2, lock 1, status 1, update 1, log 1); a
bulk start is 3 per batch (lock, update, log) plus at most 5 per run (permission 2, status 2, the
job types 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from jobs.exceptions import (
    InvalidIdentifier,
    JobNotFound,
    JobsError,
    JobStateConflict,
    NoDefaultStatus,
    PermissionDenied,
    StatusNotAllowed,
    StatusNotFound,
)
from jobs.models import (
    START_PROGRESS_PERMISSION,
    ExpirationSetting,
    Job,
    JobStatus,
    JobTransitionLog,
    JobType,
    LifeCycleState,
)

# Ids are BigAutoField: a larger number cannot name a row, and the database driver would overflow.
MAX_ID = 2**63 - 1
JOB_IDENTIFIER_FIELDS = ("id", "number")
STATUS_IDENTIFIER_FIELDS = ("id", "name", "alternative_code")

# A job: the instance, its primary key, or a CRM.COM identifier object ({"id": …} or {"number": …}).
JobRef = Job | int | Mapping[str, Any]
# A status: the instance, a CRM.COM identifier object, or None for the type's default.
StatusRef = JobStatus | Mapping[str, Any] | None

# The job columns a start reads or writes; nothing else is loaded.
_JOB_FIELDS = ("id", "number", "life_cycle_state", "status_id", "type_id", "expiration_date")
# The log columns, in the order _start_in_memory builds its rows.
_LOG_FIELDS = (
    "job",
    "from_state",
    "to_state",
    "from_status",
    "to_status",
    "user",
    "channel",
    "created_at",
)


def parse_identifier(value: Any, *, fields: tuple[str, ...], parameter: str) -> dict[str, Any]:
    """Validate a CRM.COM identifier object: exactly one of `fields`, with a usable value."""
    allowed = ", ".join(fields)
    if not isinstance(value, Mapping):
        raise InvalidIdentifier(
            f"{parameter} must be an object.",
            f"Send {parameter} as an object with exactly one of: {allowed}.",
        )
    if len(value) != 1:
        raise InvalidIdentifier(
            f"{parameter} must have exactly one field, not {len(value)}.",
            f"Send {parameter} with exactly one of: {allowed}.",
        )
    ((key, raw),) = value.items()
    if key not in fields:
        raise InvalidIdentifier(
            f"{parameter} has an unknown field {str(key)[:50]!r}.",
            f"Use exactly one of: {allowed}.",
        )
    if key == "id":
        if (
            isinstance(raw, bool)
            or not isinstance(raw, int | str)
            or not str(raw).isdigit()
            or not 1 <= int(raw) <= MAX_ID
        ):
            raise InvalidIdentifier(
                f"{parameter}.id must be a whole number from 1 to {MAX_ID}.",
                "Send the id as a number.",
            )
        return {"id": int(raw)}
    # NUL can name nothing, and PostgreSQL refuses it in a query. Blank text is allowed: like any
    # other text that names nothing, it finds nothing.
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise InvalidIdentifier(
            f"{parameter}.{key} must be a non-empty string.", f"Send {key} as a string."
        )
    return {key: raw}


def ensure_can_start(user: Any) -> None:
    if user is None or not user.is_active or not user.has_perm(START_PROGRESS_PERMISSION):
        raise PermissionDenied(
            "You may not start progress on jobs.",
            f"Ask an administrator for the permission {START_PROGRESS_PERMISSION}.",
        )


class StatusResolver:
    """Decides the status each job starts in, querying once per run rather than once per job.

    With no requested status, a job starts in its type's default (loaded with the job). A requested
    status is looked up on first use, together with the types that allow it; when the caller knows
    the one type involved (a single start), both come from one query.
    """

    def __init__(self, requested: StatusRef, *, job_type_id: int | None = None) -> None:
        self._requested = requested
        self._job_type_id = job_type_id
        self._loaded = requested is None
        self._status: JobStatus | None = None
        self._allowed_type_ids: set[int] = set()

    def _load(self) -> None:
        requested = self._requested
        if isinstance(requested, JobStatus):
            lookup = {"pk": requested.pk}
        else:
            lookup = parse_identifier(
                requested, fields=STATUS_IDENTIFIER_FIELDS, parameter="status_identifier"
            )
        statuses = JobStatus.objects.filter(**lookup)
        allowing = JobType.allowed_statuses.through.objects.filter(jobstatus_id=OuterRef("pk"))
        if self._job_type_id is not None:
            statuses = statuses.annotate(
                allowed=Exists(allowing.filter(jobtype_id=self._job_type_id))
            )
        self._status = statuses.first()
        self._loaded = True
        if self._status is None:
            return
        if self._job_type_id is not None:
            self._allowed_type_ids = {self._job_type_id} if self._status.allowed else set()
        else:
            self._allowed_type_ids = set(
                JobType.allowed_statuses.through.objects.filter(
                    jobstatus_id=self._status.pk
                ).values_list("jobtype_id", flat=True)
            )

    def status_for(self, job_type: JobType) -> JobStatus:
        if self._requested is None:
            if job_type.default_start_status is None:
                raise NoDefaultStatus(
                    f"Job type {job_type.name} has no default status on start progress.",
                    "Name a status in status_identifier, or set the type's default start status.",
                )
            return job_type.default_start_status
        if not self._loaded:
            self._load()
        status = self._status
        if status is None:
            raise StatusNotFound(
                "No job status matches status_identifier.",
                "Name an existing status by id, name or alternative_code.",
            )
        if status.life_cycle_state != LifeCycleState.IN_PROGRESS:
            raise StatusNotAllowed(
                f"Status {status.name} is {status.life_cycle_state}, not IN_PROGRESS.",
                "Choose a status whose life cycle state is IN_PROGRESS.",
            )
        if job_type.pk not in self._allowed_type_ids:
            raise StatusNotAllowed(
                f"Status {status.name} is not allowed for job type {job_type.name}.",
                "Choose an IN_PROGRESS status that the job's type allows.",
            )
        return status


def statuses_allowed_for_every_type(jobs: QuerySet[Job]) -> list[JobStatus]:
    """The IN_PROGRESS statuses that every job type among `jobs` allows: two queries."""
    type_ids = list(jobs.order_by().values_list("type_id", flat=True).distinct())
    if not type_ids:
        return []
    return list(
        JobStatus.objects.filter(life_cycle_state=LifeCycleState.IN_PROGRESS)
        .annotate(
            types_allowing=Count(
                "allowed_for_types", filter=Q(allowed_for_types__in=type_ids), distinct=True
            )
        )
        .filter(types_allowing=len(type_ids))
        .order_by("name")
    )


def _check_can_start(job: Job, resolver: StatusResolver) -> JobStatus:
    if job.life_cycle_state != LifeCycleState.PENDING:
        raise JobStateConflict(
            f"Job {job.number} is {job.life_cycle_state}; only PENDING jobs can be started.",
            "Nothing was changed. Reload the job to see its current state.",
        )
    return resolver.status_for(job.type)


def _locked(jobs: QuerySet[Job]) -> QuerySet[Job]:
    # of=("self",): only the job rows need locking, and PostgreSQL refuses FOR UPDATE on the
    # nullable side of an outer join (a single start joins the type's default status).
    # SQLite ignores it and relies on BEGIN IMMEDIATE (see settings) and the compare-and-set in
    # _persist.
    return (
        jobs.select_for_update(of=("self",))
        .only(*_JOB_FIELDS)
        .order_by("pk")  # one lock order for everyone, so two bulk runs cannot deadlock
    )


class _TypeCache:
    """Job types with their default start status, loaded once per bulk run rather than joined
    onto every job row: a run touches a handful of types and thousands of jobs."""

    def __init__(self) -> None:
        self._types: dict[int, JobType] = {}

    def attach(self, jobs: list[Job]) -> None:
        missing = {job.type_id for job in jobs} - self._types.keys()
        if missing:
            self._types.update(
                JobType.objects.select_related("default_start_status").in_bulk(missing)
            )
        for job in jobs:
            job.type = self._types[job.type_id]


class _LostRace(Exception):
    """A job changed state between our read and our write: the batch must be redone."""


def _start_in_memory(job: Job, status: JobStatus, *, user: Any, channel: str, at: _Moment) -> tuple:
    """Run the model's transition and return the log row it makes (values in _LOG_FIELDS order;
    `at` already adapted for the database, see _persist)."""
    from_status_id = job.status_id
    job.start_progress(status=status, by=user, at=at.when)
    return (
        job.pk,
        LifeCycleState.PENDING.value,
        job.life_cycle_state,
        from_status_id,
        status.pk,
        user.pk,
        channel,
        at.db_value,
    )


@dataclass(frozen=True, slots=True)
class _Moment:
    """The start time of a batch, and that time as the database driver takes it."""

    when: datetime
    db_value: Any

    @classmethod
    def now(cls) -> _Moment:
        when = timezone.now()
        return cls(when, connection.ops.adapt_datetimefield_value(when))


def _insert_log_rows(rows: list[tuple]) -> None:
    # One executemany of plain tuples: for thousands of rows, bulk_create spends most of its time
    # building and compiling model instances (and splits into 100-row statements on SQLite).
    meta = JobTransitionLog._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in _LOG_FIELDS)
    placeholders = ", ".join(["%s"] * len(_LOG_FIELDS))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})", rows
        )


def _persist(started: list[Job], log_rows: list[tuple], *, user: Any, at: _Moment) -> None:
    """Write the started jobs and their log rows: one UPDATE and one INSERT, whatever the count.

    The UPDATE is a compare-and-set on the state: a job that is no longer PENDING is not touched,
    and a short count means someone else got there first, so the caller's transaction rolls back.
    The status and expiration a job gets depend only on its type (one start time per batch), so
    they are written as a CASE over the handful of types rather than one branch per job.
    """
    per_type = {job.type_id: job for job in started}
    changes: dict[str, Any] = {
        "life_cycle_state": LifeCycleState.IN_PROGRESS,
        "status_id": Case(
            *[When(type_id=t, then=Value(job.status_id)) for t, job in per_type.items()],
            output_field=models.BigIntegerField(),
        ),
        "updated_by_user_id": user.pk,
        "updated_date": at.when,
    }
    expiring = [
        When(type_id=t, then=Value(job.expiration_date))
        for t, job in per_type.items()
        if job.type.expiration_settings == ExpirationSetting.ON_START_PROGRESS
    ]
    if expiring:
        changes["expiration_date"] = Case(
            *expiring, default=F("expiration_date"), output_field=models.DateTimeField()
        )
    updated = Job.objects.filter(
        pk__in=[job.pk for job in started], life_cycle_state=LifeCycleState.PENDING
    ).update(**changes)
    if updated != len(started):
        raise _LostRace
    _insert_log_rows(log_rows)


def start_progress(*, job: JobRef, status: StatusRef = None, user: Any, channel: str) -> Job:
    """Start one pending job; raise a JobsError (with the contract's code) if it cannot start.

    Returns the started job with its new state, status, expiration and updated_* fields.
    """
    ensure_can_start(user)
    if isinstance(job, Job):
        lookup: dict[str, Any] = {"pk": job.pk}
    elif isinstance(job, int):
        lookup = {"pk": job}
    else:
        lookup = parse_identifier(job, fields=JOB_IDENTIFIER_FIELDS, parameter="job_identifier")
    at = _Moment.now()
    with transaction.atomic():
        # One row: joining its type and default status saves a query.
        locked = (
            _locked(Job.objects.filter(**lookup))
            .select_related("type__default_start_status")
            .only(*_JOB_FIELDS, "type")
            .first()
        )
        if locked is None:
            raise JobNotFound(
                "No job matches the identifier.", "Check the job's id or number and try again."
            )
        resolver = StatusResolver(status, job_type_id=locked.type_id)
        new_status = _check_can_start(locked, resolver)
        log = _start_in_memory(locked, new_status, user=user, channel=channel, at=at)
        try:
            _persist([locked], [log], user=user, at=at)
        except _LostRace:
            raise JobStateConflict(
                f"Job {locked.number} was started by another request first.",
                "Nothing was changed by this request. Reload the job to see its current state.",
            ) from None
    return locked


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one job of a bulk start (or, in a dry run, what would happen)."""

    number: str
    started: bool
    code: str = ""
    reason: str = ""


@dataclass(slots=True)
class BulkSummary:
    started: int = 0
    skipped: list[Outcome] = field(default_factory=list)
    dry_run: bool = False


def _dedupe(numbers: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(n.strip() for n in numbers if n and n.strip()))


def bulk_start_progress(
    *,
    jobs: QuerySet[Job] | Iterable[str],
    status: StatusRef = None,
    user: Any,
    channel: str,
    batch_size: int | None = None,
    dry_run: bool = False,
    on_batch: Callable[[list[Outcome]], None] | None = None,
) -> BulkSummary:
    """Start many jobs: a queryset, or job numbers (unknown ones are skipped as JOB_NOT_FOUND).

    Each batch is locked, started and logged in its own transaction, so a failure loses at most its
    batch and a re-run finishes the rest. One job that cannot start is skipped with its code and
    reason and never stops the others. `on_batch` sees each batch's outcomes once it is committed;
    the summary keeps the count of started jobs and the skipped ones. With `dry_run`, nothing is
    locked or written: the outcomes say what would happen.
    """
    ensure_can_start(user)
    size = batch_size or settings.JOBS_BULK_BATCH_SIZE
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    run = _BulkRun(StatusResolver(status), _TypeCache(), user, channel, dry_run)
    summary = BulkSummary(dry_run=dry_run)

    def record(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.started:
                summary.started += 1
            else:
                summary.skipped.append(outcome)
        if on_batch is not None and outcomes:
            on_batch(outcomes)

    if isinstance(jobs, QuerySet):
        # Keyset paging over the caller's queryset (which may filter on state, join, or be
        # distinct): each batch is "the next `size` ids after the last one", so memory stays flat
        # and jobs started by earlier batches do not shift later pages.
        ids = jobs.order_by("pk").values("pk")
        last_pk = 0
        while True:
            outcomes, loaded = run.batch(
                Job.objects.filter(pk__in=ids.filter(pk__gt=last_pk)[:size])
            )
            record(outcomes)
            if len(loaded) < size:
                break
            last_pk = loaded[-1].pk
    else:
        numbers = _dedupe(jobs)
        for start in range(0, len(numbers), size):
            chunk = numbers[start : start + size]
            outcomes, _ = run.batch(Job.objects.filter(number__in=chunk))
            found = {outcome.number: outcome for outcome in outcomes}
            record(
                [
                    found.get(n) or Outcome(n, False, JobNotFound.code, "No job has this number.")
                    for n in chunk
                ]
            )
    return summary


_RACE_RETRIES = 3


@dataclass(slots=True)
class _BulkRun:
    resolver: StatusResolver
    types: _TypeCache
    user: Any
    channel: str
    dry_run: bool

    def batch(self, jobs: QuerySet[Job]) -> tuple[list[Outcome], list[Job]]:
        """Start one batch in its own transaction; return its outcomes and the jobs it read."""
        for _attempt in range(_RACE_RETRIES):
            try:
                with transaction.atomic():
                    return self._start(jobs)
            except _LostRace:
                # Only where the database could not lock the rows for us; the re-read sees the
                # winner's state and reports those jobs as conflicts.
                continue
        raise JobStateConflict(
            "Jobs in this batch kept changing while being started.",
            "Nothing in this batch was changed. Run the same start again.",
        )

    def _start(self, jobs: QuerySet[Job]) -> tuple[list[Outcome], list[Job]]:
        if self.dry_run:
            loaded = list(jobs.only(*_JOB_FIELDS).order_by("pk"))
        else:
            loaded = list(_locked(jobs))
        self.types.attach(loaded)
        at = _Moment.now()
        outcomes: list[Outcome] = []
        started: list[Job] = []
        log_rows: list[tuple] = []
        for job in loaded:
            try:
                new_status = _check_can_start(job, self.resolver)
            except JobsError as refusal:
                outcomes.append(Outcome(job.number, False, refusal.code, refusal.message))
                continue
            outcomes.append(Outcome(job.number, True))
            if not self.dry_run:
                log_rows.append(
                    _start_in_memory(job, new_status, user=self.user, channel=self.channel, at=at)
                )
                started.append(job)
        if started:
            _persist(started, log_rows, user=self.user, at=at)
        return outcomes, loaded


__all__ = [
    "JOB_IDENTIFIER_FIELDS",
    "STATUS_IDENTIFIER_FIELDS",
    "BulkSummary",
    "Outcome",
    "StatusResolver",
    "bulk_start_progress",
    "ensure_can_start",
    "parse_identifier",
    "start_progress",
    "statuses_allowed_for_every_type",
]
