"""What a background run works on, frozen when it is queued: a filter in the names of `GET jobs`
bounded by the newest job id of that moment (jobs created later are not in it), or a list of ids.

A filter is applied again batch by batch, as a bulk run in a request applies its queryset: a job
that has left it by then is not counted, and each job's state is checked under its lock anyway.
Every read of the jobs is of those the requester sees (`sight`, jobs.visibility) at that moment:
a job handed to another unit before its batch is read has left the selection like any other; one
handed away between the read and the lock is counted as not found, without its number.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Max, QuerySet

from jobs.filters import filtered_jobs
from jobs.models import Job
from jobs.transitions import JobTransition
from jobs.visibility import Sight


def _as_query_text(value: Any) -> str:
    """A filter's value as GET jobs' query string has it (JSON's true is "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def eligible_jobs(declared: JobTransition, sight: Sight, **narrowing: int) -> QuerySet[Job]:
    """Every job seen whose state allows the transition, narrowed in the names of GET jobs."""
    jobs = filtered_jobs({name: str(value) for name, value in narrowing.items()})
    return jobs.filter(sight.q(), life_cycle_state__in=declared.sources)


@dataclass(frozen=True, slots=True)
class Selection:
    filter: Mapping[str, str] | None = None
    up_to_id: int = 0
    ids: tuple[int, ...] = ()

    @classmethod
    def of_filter(cls, filters: Mapping[str, Any]) -> Selection:
        """A filter frozen now: checked (INVALID_PARAMETER), and bounded by the newest job."""
        filters = {name: _as_query_text(value) for name, value in filters.items()}
        filtered_jobs(filters)
        newest = Job.objects.aggregate(newest=Max("pk"))["newest"] or 0
        return cls(filter=filters, up_to_id=newest)

    @classmethod
    def of_ids(cls, ids: Iterable[int]) -> Selection:
        ordered = tuple(sorted(set(ids)))
        return cls(ids=ordered, up_to_id=ordered[-1] if ordered else 0)

    @classmethod
    def of_numbers(cls, numbers: Iterable[str], sight: Sight) -> tuple[Selection, list[str]]:
        """The jobs seen with these numbers, and the numbers no job seen has."""
        wanted = list(dict.fromkeys(numbers))
        seen = Job.objects.filter(sight.q(), number__in=wanted)
        found = dict(seen.values_list("number", "pk"))
        return cls.of_ids(found.values()), [number for number in wanted if number not in found]

    @classmethod
    def eligible(cls, declared: JobTransition, sight: Sight, **narrowing: int) -> Selection:
        """`eligible_jobs`, frozen: a filter when one state allows the transition (GET jobs
        filters by one), else the ids of those seen."""
        if len(declared.sources) == 1:
            return cls.of_filter({"life_cycle_state": declared.sources[0], **narrowing})
        eligible = eligible_jobs(declared, sight, **narrowing)
        return cls.of_ids(eligible.values_list("pk", flat=True))

    @classmethod
    def thaw(cls, frozen: Mapping[str, Any]) -> Selection:
        if "ids" in frozen:
            return cls.of_ids(frozen["ids"])
        return cls(filter=dict(frozen["filter"]), up_to_id=int(frozen["up_to_id"]))

    def frozen(self) -> dict[str, Any]:
        if self.filter is None:
            return {"ids": list(self.ids)}
        return {"filter": dict(self.filter), "up_to_id": self.up_to_id}

    def jobs(self, sight: Sight) -> QuerySet[Job]:
        """The jobs selected that `sight` sees, as they are now."""
        if self.filter is None:
            return Job.objects.filter(sight.q(), pk__in=self.ids)
        return filtered_jobs(self.filter, Job.objects.filter(sight.q(), pk__lte=self.up_to_id))

    def count(self, sight: Sight) -> int:
        """How many jobs the run is to take: ids were frozen from what the requester saw, each
        is counted (one no longer seen by its batch is counted as not found)."""
        if self.filter is None:
            return len(self.ids)
        return self.jobs(sight).count()

    def chunks(self, size: int, sight: Sight) -> list[tuple[int, int]]:
        """The selection cut into keyset pages of about `size` jobs: (after_id, up_to_id]."""
        if self.filter is None:
            lasts = list(self.ids[size - 1 :: size])
        else:
            ids = self.jobs(sight).order_by("pk").values_list("pk", flat=True)
            lasts, after = [], 0
            while (last := next(iter(ids.filter(pk__gt=after)[size - 1 : size]), None)) is not None:
                lasts.append(last)
                after = last
        if self.up_to_id and (not lasts or lasts[-1] < self.up_to_id):
            lasts.append(self.up_to_id)  # the rest, fewer than `size`, up to the frozen bound
        return list(zip([0, *lasts[:-1]], lasts, strict=False))

    def next_ids(self, *, after: int, up_to: int, size: int, sight: Sight) -> list[int]:
        """The next `size` ids of the selection in (after, up_to], in order. Ids given are
        taken as they are (the batch's lock reads only those seen); a filter reads those seen."""
        if self.filter is None:
            start = bisect_right(self.ids, after)
            return [pk for pk in self.ids[start : start + size] if pk <= up_to]
        jobs = self.jobs(sight).filter(pk__gt=after, pk__lte=up_to).order_by("pk")
        return list(jobs.values_list("pk", flat=True)[:size])
