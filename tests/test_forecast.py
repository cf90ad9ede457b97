"""The forecast counts in SQL what a bulk run decides job by job: the two must agree, for every
transition and every kind of choice."""

from __future__ import annotations

from collections import Counter

import pytest

from jobs.models import Channel, Job, LifeCycleState
from jobs.services import forecast, job_bulk_transition
from jobs.transitions import TRANSITIONS
from tests.factories import (
    JobCancellationReasonFactory,
    JobStatusFactory,
    JobTypeFactory,
    bulk_pending_jobs,
    status_of,
)
from tests.helpers import count_queries

pytestmark = pytest.mark.django_db


@pytest.fixture
def mixed_jobs():
    """Jobs in every state, of a type with defaults, one without, and one allowing only some."""
    with_defaults, without = JobTypeFactory(), JobTypeFactory(without_default=True)
    for state in LifeCycleState:
        bulk_pending_jobs(with_defaults, 3, prefix=f"W{state.value[:2]}", state=state)
        bulk_pending_jobs(without, 2, prefix=f"N{state.value[:2]}", state=state)
    return with_defaults, without


def choices_to_try(declared, with_defaults, without):
    target = declared.target
    yield {}
    yield {"status": {"id": status_of(with_defaults, target).pk}}
    yield {"status": {"id": status_of(without, target).pk}}
    yield {"status": {"alternative_code": "NO-SUCH"}}
    yield {"status": {"id": JobStatusFactory(life_cycle_state=LifeCycleState.DRAFT).pk}}
    for parameter in declared.parameters:
        yield {parameter.name: {"id": JobCancellationReasonFactory().pk}}
        yield {parameter.name: {"alternative_code": "NO-SUCH"}}


@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_the_forecast_counts_what_a_dry_run_decides_job_by_job(name, mixed_jobs, dispatcher):
    declared = TRANSITIONS[name]
    for choices in choices_to_try(declared, *mixed_jobs):
        jobs = Job.objects.all()
        dry = job_bulk_transition(
            transition=declared,
            jobs=jobs,
            user=dispatcher,
            channel=Channel.ADMIN,
            dry_run=True,
            **choices,
        )
        counted = forecast(
            transition=declared, jobs=jobs, user=dispatcher, channel=Channel.ADMIN, **choices
        )
        assert (counted.selected, counted.moving) == (Job.objects.count(), dry.done), choices
        assert {g.code: g.count for g in counted.skipped} == Counter(o.code for o in dry.skipped), (
            choices
        )
        for group in counted.skipped:
            in_dry_run = [o for o in dry.skipped if o.code == group.code]
            assert group.numbers == [o.number for o in in_dry_run][:20]
            first = in_dry_run[0].refusal
            assert (group.refusal.code, group.refusal.data) == (first.code, first.data)


def test_the_forecast_names_the_first_jobs_that_will_move(dispatcher):
    jobs = bulk_pending_jobs(JobTypeFactory(), 30)
    counted = forecast(
        transition="start_progress",
        jobs=Job.objects.all(),
        user=dispatcher,
        channel=Channel.ADMIN,
        named=5,
    )
    assert counted.moving_first == [job.number for job in jobs[:5]]
    assert counted.skipped == []


def test_the_forecast_takes_the_same_queries_for_any_selection(mixed_jobs, dispatcher):
    def queries_with(extra: int) -> int:
        bulk_pending_jobs(mixed_jobs[0], extra, prefix=f"X{extra}")
        with count_queries() as queries:
            forecast(
                transition="start_progress",
                jobs=Job.objects.all(),
                user=dispatcher,
                channel=Channel.ADMIN,
            )
        return len(queries)

    queries_with(0)  # the user's permissions, read once and kept on the user
    assert queries_with(10) == queries_with(500) <= 6
