"""Background runs, in this process: the service's plan, work, stop and sweep called as the
workers call them (tests/test_runs_workers.py runs them on real Celery workers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from jobs.exceptions import PermissionDenied, StatusNotFound
from jobs.models import (
    Channel,
    Event,
    Job,
    JobTransitionLog,
    LifeCycleState,
    RunState,
    TransitionRun,
    TransitionRunChunk,
)
from jobs.services import Selection, engine, queue_run, runs, stop_run
from jobs.tasks.runs import PLAN_TASK, WORK_TASK
from tests.factories import JobTypeFactory, bulk_pending_jobs, queued_run, status_of
from tests.helpers import BATCH_WRITES, count_queries

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_runs(settings):
    settings.JOBS_BULK_BATCH_SIZE = 10
    settings.JOBS_RUN_CHUNK_SIZE = 25


class Recorder:
    """A task engine that keeps what the service asked of it, by task name and run."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, int]] = []

    def announce_events(self) -> None:
        pass

    def plan_run(self, run_id: int) -> None:
        self.messages.append((PLAN_TASK, run_id))

    def work_on_run(self, run_id: int, copies: int) -> None:
        self.messages.extend([(WORK_TASK, run_id)] * copies)


@pytest.fixture
def sent(monkeypatch):
    """The messages the service sends to the workers, by task name and run."""
    recorder = Recorder()
    monkeypatch.setattr(engine, "_plugged", recorder)
    return recorder.messages


def queue_pending(user, **choices) -> TransitionRun:
    return queue_run(
        transition="start_progress",
        selection=Selection.of_filter({"life_cycle_state": "PENDING"}),
        user=user,
        channel=Channel.ADMIN,
        **choices,
    )


def carry_out(run: TransitionRun) -> TransitionRun:
    runs.plan(run.pk)
    runs.work(run.pk, lessee="worker-1")
    run.refresh_from_db()
    return run


def die() -> None:
    """A worker killed after its first committed batch (its lease still held)."""
    raise KeyboardInterrupt


def logged_by(run: TransitionRun) -> dict[int, int]:
    """How many log rows each job has that name the run."""
    rows = JobTransitionLog.objects.filter(run=run).values("job").annotate(n=Count("id"))
    return {row["job"]: row["n"] for row in rows}


def test_a_queued_run_is_written_before_any_job_moves(
    dispatcher, django_capture_on_commit_callbacks, sent
):
    jobs = bulk_pending_jobs(JobTypeFactory(), 30)
    with django_capture_on_commit_callbacks(execute=True):
        run = queue_pending(dispatcher)
    assert run.state == RunState.QUEUED
    assert run.selection == {"filter": {"life_cycle_state": "PENDING"}, "up_to_id": jobs[-1].pk}
    assert run.requested_by == dispatcher
    assert run.channel == Channel.ADMIN
    assert sent == [(PLAN_TASK, run.pk)]
    assert Job.objects.filter(life_cycle_state=LifeCycleState.PENDING).count() == 30


def test_a_run_moves_every_selected_job_once_and_counts_what_the_log_holds(dispatcher, sent):
    jobs = bulk_pending_jobs(JobTypeFactory(), 60)
    run = carry_out(queue_pending(dispatcher))
    assert run.state == RunState.FINISHED
    assert (run.selected, run.moved, run.skipped) == (60, 60, {})
    assert run.moved_first == [job.number for job in jobs[:5]]
    assert run.started_date <= run.finished_date
    assert set(logged_by(run).values()) == {1}
    assert len(logged_by(run)) == 60
    assert not Job.objects.exclude(life_cycle_state=LifeCycleState.IN_PROGRESS).exists()
    assert TransitionRunChunk.objects.filter(run=run, done=False).count() == 0


def test_planning_sends_one_message_per_chunk_up_to_the_tasks_setting(
    dispatcher, settings, sent, django_capture_on_commit_callbacks
):
    settings.JOBS_RUN_TASKS = 2
    bulk_pending_jobs(JobTypeFactory(), 60)
    run = queue_pending(dispatcher)
    with django_capture_on_commit_callbacks(execute=True):
        runs.plan(run.pk)
    chunks = TransitionRunChunk.objects.filter(run=run).values_list("after_id", "up_to_id")
    assert len(chunks) == 3  # 60 jobs in chunks of 25
    assert sent == [(WORK_TASK, run.pk)] * 2


def test_a_run_that_ends_announces_it_with_its_counts(dispatcher, sent):
    bulk_pending_jobs(JobTypeFactory(), 3)
    bulk_pending_jobs(JobTypeFactory(without_default=True), 2, prefix="ND")
    run = carry_out(queue_pending(dispatcher))
    event = Event.objects.get(type=runs.RUN_FINISHED)
    assert event.data["run"] == {
        "id": run.pk,
        "transition": "start_progress",
        "state": "FINISHED",
        "channel": "admin",
        "requested_by": {"id": dispatcher.pk, "username": "dispatcher"},
        "selected": 5,
        "moved": 3,
        "skipped": {"NO_DEFAULT_STATUS": 2},
        "error": "",
    }
    assert Event.objects.filter(type="job.started").count() == 3


def test_skipped_jobs_are_counted_by_code_with_their_first_numbers(dispatcher, sent):
    bulk_pending_jobs(JobTypeFactory(), 4)
    no_default = bulk_pending_jobs(JobTypeFactory(without_default=True), 7, prefix="ND")
    run = carry_out(queue_pending(dispatcher))
    assert run.moved == 4
    assert run.skipped == {
        "NO_DEFAULT_STATUS": {"count": 7, "numbers": [j.number for j in no_default[:5]]}
    }
    assert run.skipped_count == 7


def test_jobs_created_after_the_run_was_queued_are_not_in_it(dispatcher, sent):
    job_type = JobTypeFactory()
    bulk_pending_jobs(job_type, 5)
    run = queue_pending(dispatcher)
    later = bulk_pending_jobs(job_type, 2, prefix="LT")
    run = carry_out(run)
    assert run.moved == 5
    assert Job.objects.get(pk=later[0].pk).life_cycle_state == LifeCycleState.PENDING


def test_a_run_enters_the_status_it_was_given(dispatcher, sent):
    job_type = JobTypeFactory()
    bulk_pending_jobs(job_type, 3)
    chosen = status_of(job_type, LifeCycleState.IN_PROGRESS)
    run = carry_out(queue_pending(dispatcher, status={"alternative_code": chosen.alternative_code}))
    assert run.choices == {"status": {"id": chosen.pk}}
    assert set(Job.objects.values_list("status_id", flat=True)) == {chosen.pk}


def test_a_status_that_does_not_exist_is_refused_when_queueing(dispatcher):
    bulk_pending_jobs(JobTypeFactory(), 3)
    with pytest.raises(StatusNotFound):
        queue_pending(dispatcher, status={"alternative_code": "NOPE"})
    assert not TransitionRun.objects.exists()


def test_only_a_user_with_the_permission_may_queue_a_run(viewer):
    with pytest.raises(PermissionDenied):
        queue_pending(viewer)
    assert not TransitionRun.objects.exists()


def test_a_chunk_whose_worker_died_is_taken_over_where_its_last_batch_committed(dispatcher, sent):
    jobs = bulk_pending_jobs(JobTypeFactory(), 25)
    run = queue_pending(dispatcher)
    runs.plan(run.pk)
    # A worker leased the one chunk, committed one batch, and died.
    with pytest.raises(KeyboardInterrupt):
        runs.work(run.pk, lessee="dead-worker", on_batch=die)
    # Its lease holds: other work leaves the chunk alone.
    runs.work(run.pk, lessee="worker-2")
    run.refresh_from_db()
    assert (run.state, run.moved) == (RunState.RUNNING, 10)
    # Once it runs out, the chunk is taken over from its cursor.
    TransitionRunChunk.objects.filter(run=run).update(leased_until=timezone.now() - timedelta(1))
    runs.work(run.pk, lessee="worker-2")
    run.refresh_from_db()
    assert (run.state, run.moved, run.skipped) == (RunState.FINISHED, 25, {})
    assert logged_by(run) == {job.pk: 1 for job in jobs}


def test_a_message_delivered_twice_moves_and_counts_nothing_twice(dispatcher, sent):
    bulk_pending_jobs(JobTypeFactory(), 30)
    run = queue_pending(dispatcher)
    runs.plan(run.pk)
    runs.plan(run.pk)
    runs.work(run.pk, lessee="a")
    runs.work(run.pk, lessee="a")
    runs.work(run.pk, lessee="b")
    run.refresh_from_db()
    assert (run.state, run.moved, run.skipped) == (RunState.FINISHED, 30, {})
    assert TransitionRunChunk.objects.filter(run=run).count() == 2
    assert Event.objects.filter(type=runs.RUN_FINISHED).count() == 1


def test_a_queued_run_stops_at_once(dispatcher, sent):
    bulk_pending_jobs(JobTypeFactory(), 5)
    run = stop_run(queue_pending(dispatcher).pk, user=dispatcher)
    assert run.state == RunState.STOPPED
    assert run.finished_date is not None
    runs.plan(run.pk)
    assert Job.objects.filter(life_cycle_state=LifeCycleState.PENDING).count() == 5
    assert Event.objects.get(type=runs.RUN_FINISHED).data["run"]["state"] == "STOPPED"


def test_a_running_run_stops_after_the_batch_in_hand(dispatcher, sent):
    bulk_pending_jobs(JobTypeFactory(), 60)
    run = queue_pending(dispatcher)
    runs.plan(run.pk)
    stopped = []

    def stop_once() -> None:
        if not stopped:
            stopped.append(stop_run(run.pk, user=dispatcher))

    runs.work(run.pk, lessee="worker-1", on_batch=stop_once)
    run.refresh_from_db()
    assert stopped[0].state == RunState.RUNNING
    assert stopped[0].stop_requested
    assert (run.state, run.moved) == (RunState.STOPPED, 10)
    assert len(logged_by(run)) == 10
    assert Event.objects.get(type=runs.RUN_FINISHED).data["run"]["moved"] == 10


def test_stopping_a_run_that_ended_leaves_it_as_it_ended(dispatcher, sent):
    bulk_pending_jobs(JobTypeFactory(), 3)
    run = carry_out(queue_pending(dispatcher))
    assert stop_run(run.pk, user=dispatcher).state == RunState.FINISHED


def test_only_a_user_with_the_permission_may_stop_a_run(dispatcher, technician, sent):
    run = queued_run(dispatcher, "cancel", channel=Channel.API)
    with pytest.raises(PermissionDenied):
        stop_run(run.pk, user=technician)


def test_a_run_whose_user_lost_the_permission_fails_and_says_why(dispatcher, sent):
    bulk_pending_jobs(JobTypeFactory(), 3)
    run = queue_pending(dispatcher)
    runs.plan(run.pk)
    dispatcher.user_permissions.clear()
    runs.work(run.pk, lessee="worker-1")
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert "may not start progress" in run.error
    assert Event.objects.get(type=runs.RUN_FINISHED).data["run"]["state"] == "FAILED"
    assert Job.objects.filter(life_cycle_state=LifeCycleState.PENDING).count() == 3


def test_a_run_that_fails_ends_once_the_batch_in_hand_is_counted(dispatcher, sent):
    bulk_pending_jobs(JobTypeFactory(), 60)
    run = queue_pending(dispatcher)
    runs.plan(run.pk)
    with pytest.raises(KeyboardInterrupt):
        runs.work(run.pk, lessee="worker-1", on_batch=die)  # holds its chunk's lease
    runs.fail(run.pk, "Jobs in this batch kept changing while being moved.", lessee="worker-2")
    run.refresh_from_db()
    assert (run.state, run.stop_requested) == (RunState.RUNNING, True)

    runs.work(run.pk, lessee="worker-1")  # it stops after its batch, and is the last one out

    run.refresh_from_db()
    assert (run.state, run.moved) == (RunState.FAILED, 10)
    assert run.error == "Jobs in this batch kept changing while being moved."
    event = Event.objects.get(type=runs.RUN_FINISHED).data["run"]
    assert (event["state"], event["moved"]) == ("FAILED", len(logged_by(run)))


def test_a_run_of_ids_moves_those_jobs_only(dispatcher, sent):
    jobs = bulk_pending_jobs(JobTypeFactory(), 40)
    chosen = [job.pk for job in jobs[::3]]
    run = queue_run(
        transition="start_progress",
        selection=Selection.of_ids(chosen),
        user=dispatcher,
        channel=Channel.COMMAND,
    )
    run = carry_out(run)
    assert (run.selected, run.moved) == (len(chosen), len(chosen))
    assert sorted(logged_by(run)) == chosen


def test_an_empty_selection_finishes_at_once(dispatcher, sent):
    run = carry_out(queue_pending(dispatcher))
    assert (run.state, run.selected, run.moved) == (RunState.FINISHED, 0, 0)
    assert sent == []


def test_the_sweep_sends_out_again_a_run_whose_messages_were_lost(dispatcher, sent):
    bulk_pending_jobs(JobTypeFactory(), 30)
    long_ago = timezone.now() - timedelta(minutes=5)
    queued = queue_pending(dispatcher)
    TransitionRun.objects.filter(pk=queued.pk).update(created_date=long_ago)
    running = queue_pending(dispatcher)
    runs.plan(running.pk)
    TransitionRun.objects.filter(pk=running.pk).update(started_date=long_ago)
    sent.clear()

    assert runs.sweep() == 2
    assert (PLAN_TASK, queued.pk) in sent
    assert (WORK_TASK, running.pk) in sent
    # Once per lease, however often the sweep runs.
    sent.clear()
    assert runs.sweep() == 0
    assert sent == []


def test_the_sweep_leaves_alone_a_run_someone_is_working_on(dispatcher, sent):
    bulk_pending_jobs(JobTypeFactory(), 30)
    run = queue_pending(dispatcher)
    runs.plan(run.pk)
    TransitionRun.objects.filter(pk=run.pk).update(started_date=timezone.now() - timedelta(1))
    with pytest.raises(KeyboardInterrupt):
        runs.work(run.pk, lessee="alive", on_batch=die)
    sent.clear()
    assert runs.sweep() == 0


def test_the_sweep_ends_a_run_whose_last_worker_died_before_ending_it(dispatcher, sent):
    bulk_pending_jobs(JobTypeFactory(), 5)
    run = queue_pending(dispatcher)
    runs.plan(run.pk)
    TransitionRun.objects.filter(pk=run.pk).update(started_date=timezone.now() - timedelta(1))
    TransitionRunChunk.objects.filter(run=run).update(done=True)
    runs.sweep()
    run.refresh_from_db()
    assert run.state == RunState.FINISHED


def test_a_batch_costs_the_same_queries_whatever_the_run_size(dispatcher, settings, sent):
    settings.JOBS_RUN_CHUNK_SIZE = 1000

    def queries_for(count: int, prefix: str) -> int:
        bulk_pending_jobs(JobTypeFactory(), count, prefix=prefix)
        run = queue_pending(dispatcher)
        runs.plan(run.pk)
        with count_queries() as queries:
            runs.work(run.pk, lessee=prefix)
        return len(queries)

    two_batches = queries_for(20, "AA")
    five_batches = queries_for(50, "BB")
    # The chunk's lock, the run's state, the next ids, the jobs' lock, the writes, the chunk's
    # cursor, the run's lock and its counts.
    assert five_batches - two_batches == 3 * (7 + BATCH_WRITES)
