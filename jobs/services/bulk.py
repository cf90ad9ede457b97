"""Many jobs' transition: batches, each locked, checked, moved and written in its own
transaction, so a failure loses at most its batch and a re-run finishes the rest.

Queries: per run, the types with their defaults (and an entry asked for, once); per batch, the
next ids (when paging a queryset), the lock and the writes. Never one per job.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import models, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import JSONObject

from jobs.exceptions import JobNotFound, JobsError, JobStateConflict
from jobs.models import Job, JobStatus, JobType
from jobs.services.moves import Move
from jobs.services.permissions import TransitionRef
from jobs.services.records import Moment
from jobs.services.resolution import CatalogRef, TransitionOrder
from jobs.services.writes import LostRace, persist

logger = logging.getLogger(__name__)
# A batch whose rows the database could not lock for us (SQLite) is redone this many times
# before the run gives up on it.
RACE_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one job of a bulk run (or, in a dry run, what would happen): moved, or
    refused (the refusal's code with its data, for the door to put in words)."""

    number: str  # "" for a job the user no longer saw: its number is not theirs to read
    done: bool
    refusal: JobsError | None = None

    @property
    def code(self) -> str:
        return self.refusal.code if self.refusal is not None else ""


@dataclass(slots=True)
class BulkSummary:
    done: int = 0
    skipped: list[Outcome] = field(default_factory=list)
    dry_run: bool = False


def _leaving_status() -> Subquery:
    """The job's current status as its event names it, as one JSON column."""
    leaving = (
        JobStatus.objects.filter(pk=OuterRef("status_id"))
        .order_by()
        .values_list(JSONObject(id="id", name="name", alternative_code="alternative_code"))
    )
    return Subquery(leaving[:1], output_field=models.JSONField())


# What a transition reads of a job; the columns it assigns need not be read.
READ = ("id", "number", "life_cycle_state", "status_id", "type_id", "expiration_date")


def _locked(jobs: QuerySet[Job]) -> QuerySet[Job]:
    # One lock order for everyone, so two bulk runs cannot deadlock. The status a job leaves is a
    # subquery, not a join: see jobs.sql.lock.lock_job.
    return (
        jobs.select_for_update(of=("self",))
        .only(*READ)
        .annotate(leaving_status=_leaving_status())
        .order_by("pk")
    )


class _TypeCache:
    """Job types with their defaults, read once per run rather than joined onto every job row:
    a run touches a handful of types and thousands of jobs."""

    def __init__(self, relations: Iterable[str]) -> None:
        self._relations = tuple(relations)
        self._types: dict[int, JobType] = {}

    def attach(self, jobs: list[Job]) -> None:
        missing = {job.type_id for job in jobs} - self._types.keys()
        if missing:
            self._types.update(JobType.objects.select_related(*self._relations).in_bulk(missing))
        for job in jobs:
            job.type = self._types[job.type_id]


def _dedupe(numbers: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(n.strip() for n in numbers if n and n.strip()))


def job_bulk_transition(
    *,
    transition: TransitionRef,
    jobs: QuerySet[Job] | Iterable[str],
    status: CatalogRef = None,
    user: object,
    channel: str,
    batch_size: int | None = None,
    dry_run: bool = False,
    on_batch: Callable[[list[Outcome]], None] | None = None,
    **parameters: CatalogRef,
) -> BulkSummary:
    """Run one transition on many jobs: a queryset, or job numbers (unknown ones are skipped as
    JOB_NOT_FOUND).

    One job that cannot move is skipped with its code and reason and never stops the others.
    `on_batch` sees each batch's outcomes once it is committed; the summary keeps the count of
    jobs done and the skipped ones. With `dry_run`, nothing is locked or written: the outcomes
    say what would happen.
    """
    order = TransitionOrder.build(
        transition, status=status, parameters=parameters, user=user, channel=channel
    )
    size = batch_size or settings.JOBS_BULK_BATCH_SIZE
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    batches = Batches.of(order, dry_run=dry_run)
    summary = BulkSummary(dry_run=dry_run)

    def record(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.done:
                summary.done += 1
            else:
                summary.skipped.append(outcome)
        if on_batch is not None and outcomes:
            on_batch(outcomes)

    if isinstance(jobs, QuerySet):
        # Keyset paging over the caller's queryset (which may filter on state, join, or be
        # distinct): each batch is "the next `size` ids after the last one", so memory stays flat
        # and jobs changed by earlier batches do not shift later pages. The ids are read first,
        # then locked by id: locking "id IN (the next ids)" made PostgreSQL scan the whole table
        # for every batch. Each job's state is checked again under its lock.
        ids = jobs.filter(order.sight.q()).order_by("pk").values_list("pk", flat=True)
        last_pk = 0
        while batch := list(ids.filter(pk__gt=last_pk)[:size]):
            record(batches.of_ids(batch))
            if len(batch) < size:
                break
            last_pk = batch[-1]
    else:
        numbers = _dedupe(jobs)
        for start in range(0, len(numbers), size):
            chunk = numbers[start : start + size]
            outcomes = batches.batch(Job.objects.filter(number__in=chunk))
            found = {outcome.number: outcome for outcome in outcomes}
            record([found.get(n) or Outcome(n, False, JobNotFound(number=n)) for n in chunk])
    return summary


@dataclass(slots=True)
class Batches:
    """The batch path every bulk run takes, in the request or in a background worker: lock,
    check, compare-and-set, log and events, one transaction (or savepoint) per batch."""

    order: TransitionOrder
    types: _TypeCache
    dry_run: bool = False

    @classmethod
    def of(cls, order: TransitionOrder, *, dry_run: bool = False) -> Batches:
        return cls(order, _TypeCache(order.transition.type_defaults), dry_run)

    def of_ids(self, ids: list[int]) -> list[Outcome]:
        """Run the batch of these jobs. One the user no longer sees by then (handed to another
        unit meanwhile) is left alone and counted as not found, without its number."""
        outcomes = self.batch(Job.objects.filter(pk__in=ids))
        unseen = len(ids) - len(outcomes)
        return outcomes + [Outcome("", False, JobNotFound()) for _ in range(unseen)]

    def batch(self, jobs: QuerySet[Job]) -> list[Outcome]:
        """Run one batch of the jobs the user sees in `jobs`, in its own transaction (a savepoint
        inside the caller's); return its outcomes."""
        for _attempt in range(RACE_RETRIES):
            started = time.perf_counter()
            try:
                with transaction.atomic():
                    outcomes = self._run(jobs)
                self._report(outcomes, time.perf_counter() - started)
                return outcomes
            except LostRace:
                # Only where the database could not lock the rows for us; the re-read sees the
                # winner's state and reports those jobs as conflicts.
                continue
        raise JobStateConflict(batch=True)

    def _report(self, outcomes: list[Outcome], seconds: float) -> None:
        """One log line and the counters for a committed batch."""
        declared = self.order.transition
        by_outcome = Counter(declared.past if o.done else o.code for o in outcomes)
        if not self.dry_run:
            for outcome, amount in by_outcome.items():
                self.order.count(outcome, amount)
        logger.info(
            "transition batch",
            extra={
                "transition": declared.name,
                "channel": self.order.channel,
                "dry_run": self.dry_run,
                "jobs": len(outcomes),
                "outcomes": dict(by_outcome),
                "duration_ms": round(seconds * 1000, 2),
            },
        )

    def _run(self, jobs: QuerySet[Job]) -> list[Outcome]:
        order = self.order
        jobs = jobs.filter(order.sight.q())  # evaluated again for every batch
        loaded = list(jobs.only(*READ).order_by("pk") if self.dry_run else _locked(jobs))
        self.types.attach(loaded)
        at = Moment.now()
        outcomes: list[Outcome] = []
        moves: list[Move] = []
        rules = order.rules()  # once per batch: an entry asked for is read on its first use
        for job in loaded:
            try:
                if self.dry_run:
                    order.check(job, rules)
                else:
                    moves.append(order.move(job, job.leaving_status, at, rules))
            except JobsError as refusal:
                outcomes.append(Outcome(job.number, False, refusal))
                continue
            outcomes.append(Outcome(job.number, True))
        if moves:
            persist(order, moves, at)
        return outcomes
