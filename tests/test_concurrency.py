"""What happens when many callers move the same jobs at once. Needs real row locks and real
concurrent connections, so it runs on PostgreSQL (DATABASE_URL) and is skipped on SQLite."""

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from jobs.exceptions import JobsError
from jobs.models import Channel, Job, JobTransitionLog, LifeCycleState
from jobs.services import job_bulk_transition, job_transition
from jobs.transitions import START_PROGRESS
from tests.factories import JobFactory, JobTypeFactory, UserFactory, bulk_pending_jobs
from tests.helpers import requires_postgresql

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True)]


def run_at_once(count: int, work: Callable[[int], object]) -> list[object]:
    """Run work(i) in `count` threads released together; return each result or exception."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as error:  # the test inspects what each thread got
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_twenty_simultaneous_starts_of_one_job_give_one_success_and_nineteen_conflicts():
    dispatcher = UserFactory(
        username="dispatcher", permissions=["view_all_jobs", "start_progress_job"]
    )
    job = JobFactory()

    results = run_at_once(
        20,
        lambda _: job_transition(
            transition=START_PROGRESS,
            job={"number": job.number},
            user=dispatcher,
            channel=Channel.API,
        ),
    )

    outcomes = Counter(r.code if isinstance(r, JobsError) else type(r).__name__ for r in results)
    assert outcomes == {"Job": 1, "JOB_STATE_CONFLICT": 19}
    assert JobTransitionLog.objects.filter(job=job).count() == 1
    assert Job.objects.get(pk=job.pk).life_cycle_state == LifeCycleState.IN_PROGRESS


def test_two_bulk_runs_over_the_same_500_jobs_start_each_exactly_once():
    dispatcher = UserFactory(
        username="dispatcher", permissions=["view_all_jobs", "start_progress_job"]
    )
    job_types = JobTypeFactory.create_batch(2)
    jobs = [JobFactory.build(type=job_types[i % 2]) for i in range(500)]
    for job in jobs:
        job.save()
    numbers = [j.number for j in jobs]

    summaries = run_at_once(
        2,
        lambda i: job_bulk_transition(
            transition=START_PROGRESS,
            # one run walks the list forwards, the other backwards: the worst case for locks
            jobs=numbers if i == 0 else numbers[::-1],
            user=dispatcher,
            channel=Channel.COMMAND,
            batch_size=50,
        ),
    )

    assert all(not isinstance(s, Exception) for s in summaries), summaries
    assert sum(s.done for s in summaries) == 500
    assert all(o.code == "JOB_STATE_CONFLICT" for s in summaries for o in s.skipped)
    assert Job.objects.filter(life_cycle_state=LifeCycleState.IN_PROGRESS).count() == 500
    per_job = Counter(JobTransitionLog.objects.values_list("job_id", flat=True))
    assert len(per_job) == 500
    assert set(per_job.values()) == {1}


def test_jobs_created_at_the_same_time_get_distinct_numbers():
    job_type = JobTypeFactory()
    template = JobFactory.build(type=job_type)

    created = run_at_once(
        10,
        lambda _: (
            Job.objects.create(
                type=job_type, status=template.status, life_cycle_state=LifeCycleState.PENDING
            ).number
        ),
    )

    assert all(isinstance(n, str) for n in created), created
    assert len(set(created)) == 10


def test_twenty_simultaneous_completions_of_one_job_give_one_success_and_nineteen_conflicts():
    dispatcher = UserFactory(username="dispatcher", permissions=["view_all_jobs", "complete_job"])
    job = JobFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)

    results = run_at_once(
        20,
        lambda _: job_transition(
            transition="complete", job={"id": job.pk}, user=dispatcher, channel=Channel.API
        ),
    )

    outcomes = Counter(r.code if isinstance(r, JobsError) else type(r).__name__ for r in results)
    assert outcomes == {"Job": 1, "JOB_STATE_CONFLICT": 19}
    assert JobTransitionLog.objects.filter(job=job).count() == 1
    assert Job.objects.get(pk=job.pk).life_cycle_state == LifeCycleState.COMPLETED


def test_cancel_racing_complete_over_the_same_500_jobs_ends_each_in_one_final_state():
    dispatcher = UserFactory(
        username="dispatcher", permissions=["view_all_jobs", "complete_job", "cancel_job"]
    )
    job_types = JobTypeFactory.create_batch(2)
    jobs = [
        job
        for i, job_type in enumerate(job_types)
        for job in bulk_pending_jobs(job_type, 250, f"R{i}", state=LifeCycleState.IN_PROGRESS)
    ]
    numbers = [j.number for j in jobs]

    summaries = run_at_once(
        2,
        lambda i: job_bulk_transition(
            transition="complete" if i == 0 else "cancel",
            # one walks the list forwards, the other backwards: the worst case for locks
            jobs=numbers if i == 0 else numbers[::-1],
            user=dispatcher,
            channel=Channel.COMMAND,
            batch_size=50,
        ),
    )

    assert all(not isinstance(s, Exception) for s in summaries), summaries
    completed, cancelled = summaries
    assert completed.done + cancelled.done == 500
    assert all(o.code == "JOB_STATE_CONFLICT" for s in summaries for o in s.skipped)
    final = Counter(Job.objects.values_list("life_cycle_state", flat=True))
    assert final == {"COMPLETED": completed.done, "CANCELLED": cancelled.done}
    logged = list(JobTransitionLog.objects.values_list("job_id", "transition", "to_state"))
    assert len({job_id for job_id, _, _ in logged}) == len(logged) == 500
    by_pk = dict(Job.objects.values_list("pk", "life_cycle_state"))
    assert all(by_pk[job_id] == to_state for job_id, _, to_state in logged)
