"""`manage.py transition_jobs TRANSITION …`: every declared transition from the command line."""

import json

import pytest

from jobs.models import JobTransitionLog, LifeCycleState
from jobs.transitions import TRANSITIONS
from tests.factories import JobCancellationReasonFactory, JobFactory, JobTypeFactory, status_of
from tests.helpers import run_command, states

pytestmark = pytest.mark.django_db

every_transition = pytest.mark.parametrize("declared", TRANSITIONS.values(), ids=TRANSITIONS)


def run(*args: str) -> tuple[int, str, str]:
    return run_command("transition_jobs", *args)


@every_transition
def test_it_moves_the_named_jobs_and_exits_0(dispatcher, declared):
    jobs = JobFactory.create_batch(2, life_cycle_state=declared.sources[0])

    code, out, _ = run(declared.name, *(j.number for j in jobs), "--user", "dispatcher")

    assert code == 0
    assert f"{declared.past}  {jobs[0].number}" in out
    assert f"{declared.past.capitalize()} 2, skipped 0." in out
    assert states(*jobs) == [declared.target] * 2
    log = JobTransitionLog.objects.filter(job=jobs[0]).get()
    assert (log.transition, log.channel, log.user) == (declared.name, "command", dispatcher)


@every_transition
def test_eligible_takes_every_job_whose_state_allows_the_transition(dispatcher, declared):
    job_type = JobTypeFactory()
    eligible = [JobFactory(type=job_type, life_cycle_state=s) for s in declared.sources]
    others = [
        JobFactory(type=job_type, life_cycle_state=s)
        for s in LifeCycleState.values
        if s not in declared.sources
    ]

    code, _, _ = run(
        declared.name, "--eligible", "--type", job_type.alternative_code, "--user", "dispatcher"
    )

    assert code == 0
    assert states(*eligible) == [declared.target] * len(eligible)
    assert states(*others) == [o.life_cycle_state for o in others]


@every_transition
def test_a_dry_run_says_what_would_happen_and_a_json_document_counts_it(dispatcher, declared):
    job = JobFactory(life_cycle_state=declared.sources[0])
    wrong = JobFactory(
        life_cycle_state=next(s for s in LifeCycleState if s not in declared.sources)
    )

    code, out, _ = run(declared.name, job.number, wrong.number, "--user", "dispatcher", "--dry-run")
    assert code == 1
    assert f"would {declared.verb}  {job.number}" in out
    assert f"Would {declared.verb} 1, skipped 1." in out

    code, out, _ = run(
        declared.name, job.number, wrong.number, "--user", "dispatcher", "--format", "json"
    )
    document = json.loads(out)
    assert document[declared.past] == [job.number]
    assert document["counts"] == {declared.past: 1, "skipped": 1}
    assert document["skipped"][0]["code"] == "JOB_STATE_CONFLICT"


@every_transition
def test_a_status_of_the_wrong_state_skips_the_job(dispatcher, declared):
    job = JobFactory(life_cycle_state=declared.sources[0])
    wrong = status_of(job.type, declared.sources[0])

    code, out, _ = run(
        declared.name, job.number, "--status", wrong.alternative_code, "--user", "dispatcher"
    )

    assert code == 1
    assert "STATUS_NOT_ALLOWED" in out
    assert states(job) == [declared.sources[0]]


def test_cancel_takes_a_reason_by_id_name_or_code(dispatcher):
    jobs = JobFactory.create_batch(3)
    reason = JobCancellationReasonFactory(name="No access", alternative_code="NO_ACCESS")

    for job, value in zip(jobs, [str(reason.pk), "No access", "NO_ACCESS"], strict=True):
        code, _, _ = run("cancel", job.number, "--reason", value, "--user", "dispatcher")
        assert code == 0
        job.refresh_from_db()
        assert job.cancellation_reason == reason


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cancel", "--reason", "NOPE"], "--reason: no job cancellation reason"),
        (["complete", "--reason", "NOPE"], "--reason does not go with complete"),
        (["cancel", "--user", "technician"], "may not cancel jobs"),
    ],
)
def test_bad_arguments_exit_2_and_change_nothing(dispatcher, technician, args, message, unchanged):
    job = JobFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)
    unchanged()
    user = [] if "--user" in args else ["--user", "dispatcher"]
    code, _, err = run(args[0], job.number, *args[1:], *user)
    assert code == 2
    assert message in err


def test_start_job_progress_is_transition_jobs_start_progress(dispatcher):
    pending = JobFactory.create_batch(2)
    code, out, _ = run_command("start_job_progress", "--pending", "--user", "dispatcher")
    assert code == 0
    assert "Started 2, skipped 0." in out
    assert states(*pending) == ["IN_PROGRESS"] * 2


def test_an_unknown_transition_or_option_exits_2_from_the_shell():
    # argparse's own refusals exit 2 only from the command line, not through call_command.
    import subprocess
    import sys

    for args in (["transition_jobs", "finish", "JB00001"], ["start_job_progress", "--eligible"]):
        finished = subprocess.run(
            [sys.executable, "manage.py", *args], capture_output=True, text=True, check=False
        )
        assert finished.returncode == 2, finished.stderr
        assert "error:" in finished.stderr
