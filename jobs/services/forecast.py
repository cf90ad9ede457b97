"""What a bulk transition would do to a selection of any size, counted in SQL.

A dry run checks every job in Python, a query per batch: far too slow for a page that must
answer at once whatever the selection. Here every rule `TransitionOrder.check` may refuse a job
for (`TransitionOrder.rules`) is read as a condition on Job, so one aggregate counts them all,
and one query per reason that holds reads its first few jobs. The first job of each reason is
checked the usual way, which gives its refusal. Queries: the entries asked for, one aggregate, one
per group that is not empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.db.models import Count, Q, QuerySet

from jobs.exceptions import JobsError
from jobs.models import Job
from jobs.services.permissions import TransitionRef
from jobs.services.resolution import CatalogRef, TransitionOrder

NAMED = 20


@dataclass(slots=True)
class SkipGroup:
    code: str
    count: int
    numbers: list[str] = field(default_factory=list)
    refusal: JobsError | None = None  # the first one's, for the door to put in words


@dataclass(slots=True)
class Forecast:
    selected: int
    moving: int
    moving_first: list[str]
    skipped: list[SkipGroup]

    @property
    def skipped_count(self) -> int:
        return sum(group.count for group in self.skipped)


def forecast(
    *,
    transition: TransitionRef,
    jobs: QuerySet[Job],
    status: CatalogRef = None,
    user: object,
    channel: str,
    named: int = NAMED,
    **parameters: CatalogRef,
) -> Forecast:
    """Count what `job_bulk_transition` would move and skip of the jobs the user sees in `jobs`,
    without loading them."""
    order = TransitionOrder.build(
        transition, status=status, parameters=parameters, user=user, channel=channel
    )
    jobs = jobs.filter(order.sight.q()).order_by()  # what the user does not see is not counted
    # A job is refused for the first rule that holds, as `check` raises the first: the same
    # rules, read as SQL.
    rules = order.rules()
    by_code: dict[str, Q] = {}
    earlier: list[Q] = []
    for rule in rules:
        where = rule.where.q()
        first_here = where & ~reduce(or_, earlier) if earlier else where
        earlier.append(where)
        known = by_code.get(rule.code)
        by_code[rule.code] = first_here if known is None else known | first_here
    moving = ~reduce(or_, by_code.values())
    counts = jobs.aggregate(
        selected=Count("pk"),
        moving=Count("pk", filter=moving),
        **{code: Count("pk", filter=where) for code, where in by_code.items()},
    )
    skipped = []
    for code, where in by_code.items():
        if not counts[code]:
            continue
        first = list(jobs.filter(where).order_by("pk").select_related("type")[:named])
        numbers = [j.number for j in first]
        skipped.append(SkipGroup(code, counts[code], numbers, _refusal(order, rules, first[0])))
    moving_first = []
    if counts["moving"]:
        moving_first = list(
            jobs.filter(moving).order_by("pk").values_list("number", flat=True)[:named]
        )
    return Forecast(counts["selected"], counts["moving"], moving_first, skipped)


def _refusal(order: TransitionOrder, rules: list, job: Job) -> JobsError | None:
    try:
        order.check(job, rules)
    except JobsError as refusal:
        return refusal
    return None
