"""`transition_jobs … --background` and `follow_run`: a run queued from the command line, and
followed until it ends, with the command's exit codes."""

from __future__ import annotations

import json
import logging

import pytest

from jobs.management import progress
from jobs.models import Channel, LifeCycleState, RunState, TransitionRun
from jobs.services import runs
from tests.factories import JobFactory, JobTypeFactory, bulk_pending_jobs, queued_run
from tests.helpers import run_command, states

pytestmark = pytest.mark.django_db


def carry_out(run_id: int) -> None:
    runs.plan(run_id)
    runs.work(run_id, lessee="worker")


def test_background_queues_a_run_and_prints_its_id_and_page(dispatcher):
    jobs = bulk_pending_jobs(JobTypeFactory(), 3)
    code, out, _ = run_command(
        "transition_jobs", "start_progress", "--eligible", "--background", "--user", "dispatcher"
    )
    run = TransitionRun.objects.get()
    assert code == 0
    assert (
        f"Queued run {run.pk}: http://127.0.0.1:8000/admin/jobs/transitionrun/{run.pk}/change/"
        in out
    )
    assert f"follow_run {run.pk}" in out
    assert run.selection["filter"] == {"life_cycle_state": "PENDING"}
    assert (run.channel, run.requested_by) == (Channel.COMMAND, dispatcher)
    assert set(states(*jobs)) == {"PENDING"}


def test_background_says_one_plain_thing_and_logs_only_when_asked(dispatcher, caplog):
    caplog.set_level(logging.INFO)
    JobFactory()
    arguments = ["start_progress", "--eligible", "--background", "--user", "dispatcher"]
    code, out, err = run_command("transition_jobs", *arguments)
    assert (code, err) == (0, "")
    assert out.startswith("Queued run ")
    assert not [r for r in caplog.records if r.name.startswith("jobs.services")]

    run_command("transition_jobs", *arguments, "-v", "2")
    assert [r.message for r in caplog.records if r.name.startswith("jobs.services")] == [
        "transition run queued"
    ]


def test_background_keeps_the_narrowing_options_as_the_runs_filter(dispatcher):
    job_type = JobTypeFactory()
    bulk_pending_jobs(job_type, 2)
    run_command(
        "transition_jobs",
        "start_progress",
        "--eligible",
        "--type",
        job_type.alternative_code,
        "--background",
        "--user",
        "dispatcher",
    )
    run = TransitionRun.objects.get()
    assert run.selection["filter"] == {"life_cycle_state": "PENDING", "type": str(job_type.pk)}


def test_background_of_a_transition_from_several_states_keeps_the_eligible_ids(dispatcher):
    draft = JobFactory(life_cycle_state=LifeCycleState.DRAFT)
    pending = JobFactory()
    JobFactory(life_cycle_state=LifeCycleState.COMPLETED)
    run_command("transition_jobs", "cancel", "--eligible", "--background", "--user", "dispatcher")
    assert TransitionRun.objects.get().selection == {"ids": [draft.pk, pending.pk]}


def test_background_of_numbers_queues_their_jobs(dispatcher):
    jobs = bulk_pending_jobs(JobTypeFactory(), 3)
    numbers = [job.number for job in jobs[:2]]
    run_command(
        "transition_jobs", "start_progress", *numbers, "--background", "--user", "dispatcher"
    )
    assert TransitionRun.objects.get().selection == {"ids": [jobs[0].pk, jobs[1].pk]}


def test_background_with_an_unknown_number_queues_nothing(dispatcher):
    job = JobFactory()
    code, _, err = run_command(
        "transition_jobs",
        "start_progress",
        job.number,
        "JB99999",
        "--background",
        "--user",
        "dispatcher",
    )
    assert code == 2
    assert "JB99999" in err
    assert not TransitionRun.objects.exists()


@pytest.mark.parametrize(
    "options", [["--background", "--dry-run"], ["--follow"]], ids=["dry-run", "follow-alone"]
)
def test_options_that_do_not_go_together_are_bad_arguments(dispatcher, options):
    JobFactory()
    code, _, _ = run_command(
        "transition_jobs", "start_progress", "--eligible", *options, "--user", "dispatcher"
    )
    assert code == 2
    assert not TransitionRun.objects.exists()


def test_a_user_without_the_permission_cannot_queue(technician):
    code, _, err = run_command(
        "transition_jobs", "cancel", "--eligible", "--background", "--user", "technician"
    )
    assert code == 2
    assert "may not cancel" in err


def test_follow_run_waits_for_the_run_and_exits_0_when_every_job_moved(dispatcher, monkeypatch):
    jobs = bulk_pending_jobs(JobTypeFactory(), 4)
    run = queued_run(dispatcher, channel=Channel.COMMAND)
    # The workers get to it while the command waits.
    monkeypatch.setattr(progress.time, "sleep", lambda seconds: carry_out(run.pk))

    code, out, _ = run_command("follow_run", str(run.pk))

    assert code == 0
    assert f"Run {run.pk} finished: Started 4, skipped 0." in out
    assert set(states(*jobs)) == {"IN_PROGRESS"}


def test_follow_run_exits_1_and_names_the_skipped(dispatcher):
    bulk_pending_jobs(JobTypeFactory(), 2)
    bulk_pending_jobs(JobTypeFactory(without_default=True), 1, prefix="ND")
    run = queued_run(dispatcher, channel=Channel.COMMAND)
    carry_out(run.pk)

    code, out, _ = run_command("follow_run", str(run.pk))

    assert code == 1
    assert "Started 2, skipped 1." in out
    assert "skipped  NO_DEFAULT_STATUS  1: ND00000" in out


def test_follow_run_exits_1_for_a_stopped_run_and_prints_json(dispatcher):
    run = queued_run(dispatcher, channel=Channel.COMMAND)
    runs.stop_run(run.pk, user=dispatcher)
    code, out, _ = run_command("follow_run", str(run.pk), "--format", "json")
    assert code == 1
    assert json.loads(out)["state"] == RunState.STOPPED


def test_follow_run_of_no_run_is_a_bad_argument(db):
    code, _, err = run_command("follow_run", "4242")
    assert code == 2
    assert "4242" in err


def test_background_with_follow_queues_then_follows(dispatcher, monkeypatch):
    bulk_pending_jobs(JobTypeFactory(), 3)
    monkeypatch.setattr(
        progress.time, "sleep", lambda seconds: carry_out(TransitionRun.objects.get().pk)
    )
    code, out, _ = run_command(
        "transition_jobs",
        "start_progress",
        "--eligible",
        "--background",
        "--follow",
        "--user",
        "dispatcher",
    )
    assert code == 0
    assert "Queued run" in out
    assert "finished: Started 3, skipped 0." in out
