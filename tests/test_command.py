"""The command door: `transition_jobs TRANSITION …` for every declared transition, and
`start_job_progress`, the first transition's own command."""

import json
import logging
from io import StringIO

import pytest
from django.core.management import call_command

from jobs.models import JobTransitionLog, LifeCycleState
from tests.factories import (
    JobCancellationReasonFactory,
    JobFactory,
    JobStatusFactory,
    JobTypeFactory,
    status_of,
)
from tests.helpers import every_transition, failing_log_insert, run_command, states

pytestmark = pytest.mark.django_db


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


# --- start_job_progress: the first transition's own command ---------------------------------------


def run_start_job_progress(*args: str) -> tuple[int, str, str]:
    return run_command("start_job_progress", *args)


def test_it_starts_the_named_jobs_and_exits_0(dispatcher):
    a, b = JobFactory(), JobFactory()

    code, out, _ = run_start_job_progress(a.number, b.number, "--user", "dispatcher")

    assert code == 0
    assert f"started  {a.number}" in out
    assert "Started 2, skipped 0." in out
    assert states(a, b) == ["IN_PROGRESS", "IN_PROGRESS"]
    log = JobTransitionLog.objects.filter(job=a).get()
    assert (log.channel, log.user) == ("command", dispatcher)


def test_it_reports_skipped_jobs_with_their_reason_and_exits_1(dispatcher):
    good, done = JobFactory(), JobFactory(life_cycle_state=LifeCycleState.COMPLETED)

    code, out, _ = run_start_job_progress(
        good.number, done.number, "JB99999", "--user", "dispatcher"
    )

    assert code == 1
    assert f"skipped  {done.number}  JOB_STATE_CONFLICT  Job {done.number} is COMPLETED" in out
    assert "skipped  JB99999  JOB_NOT_FOUND" in out
    assert "Started 1, skipped 2." in out
    assert states(good) == ["IN_PROGRESS"]


def test_pending_starts_every_pending_job_narrowed_by_type_and_current_status(dispatcher):
    wanted_type, other_type = JobTypeFactory(alternative_code="REPAIR"), JobTypeFactory()
    waiting = JobStatusFactory(name="Waiting parts", life_cycle_state=LifeCycleState.PENDING)
    wanted_type.allowed_statuses.add(waiting)
    wanted = JobFactory.create_batch(3, type=wanted_type, status=waiting)
    other_status = JobFactory(type=wanted_type)
    other_type_job = JobFactory(type=other_type)

    code, out, _ = run_start_job_progress(
        "--pending",
        "--type",
        "REPAIR",
        "--status-from",
        "Waiting parts",
        "--user",
        "dispatcher",
        "--batch-size",
        "2",
    )

    assert code == 0, out
    assert states(*wanted) == ["IN_PROGRESS"] * 3
    assert states(other_status, other_type_job) == ["PENDING", "PENDING"]


def test_status_names_the_status_to_start_in_by_code(dispatcher):
    job = JobFactory()
    onsite = JobStatusFactory(alternative_code="ONSITE")
    job.type.allowed_statuses.add(onsite)

    code, _, _ = run_start_job_progress(job.number, "--status", "ONSITE", "--user", "dispatcher")

    assert code == 0
    job.refresh_from_db()
    assert job.status == onsite


def test_dry_run_lists_what_would_start_and_changes_nothing(dispatcher):
    job, draft = JobFactory(), JobFactory(life_cycle_state=LifeCycleState.DRAFT)

    code, out, _ = run_start_job_progress(
        job.number, draft.number, "--user", "dispatcher", "--dry-run"
    )

    assert code == 1
    assert f"would start  {job.number}" in out
    assert "Would start 1, skipped 1." in out
    assert states(job, draft) == ["PENDING", "DRAFT"]
    assert not JobTransitionLog.objects.exists()


def test_json_format_gives_one_document_a_script_can_read(dispatcher):
    job, done = JobFactory(), JobFactory(life_cycle_state=LifeCycleState.CANCELLED)

    code, out, _ = run_start_job_progress(
        job.number, done.number, "--user", "dispatcher", "--format", "json"
    )

    assert code == 1
    document = json.loads(out)
    assert document["started"] == [job.number]
    assert document["skipped"] == [
        {
            "number": done.number,
            "code": "JOB_STATE_CONFLICT",
            "reason": f"Job {done.number} is CANCELLED; only PENDING jobs can be started.",
        }
    ]
    assert document["counts"] == {"started": 1, "skipped": 1}


def test_the_default_user_setting_stands_in_for_user(dispatcher, settings):
    settings.JOBS_COMMAND_DEFAULT_USER = "dispatcher"
    job = JobFactory()
    # the default is read when the parser is built, as for any other default
    code, _, _ = run_start_job_progress(job.number)
    assert code == 0
    assert JobTransitionLog.objects.get().user == dispatcher


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "viewer"], "may not start jobs"),
        (["--user", "dispatcher", "--status", "NOPE"], "--status: no job status"),
        (["--user", "dispatcher", "--batch-size", "0"], "at least 1"),
        ([], "--user is required"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_change_nothing(dispatcher, viewer, args, message):
    job = JobFactory()

    code, _, err = run_start_job_progress(job.number, *args)

    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert states(job) == ["PENDING"]
    assert not JobTransitionLog.objects.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--user", "dispatcher"],
        ["--pending", "JB00001", "--user", "dispatcher"],
        ["JB00001", "--type", "X", "--user", "dispatcher"],
        ["--pending", "--type", "NOPE", "--user", "dispatcher"],
    ],
)
def test_no_jobs_or_contradicting_selections_exit_2(dispatcher, args):
    code, _, err = run_start_job_progress(*args)
    assert code == 2
    assert err.strip()


def test_a_failed_batch_is_reported_exits_1_and_a_rerun_finishes(dispatcher):
    jobs = JobFactory.create_batch(4)
    numbers = [j.number for j in jobs]
    with failing_log_insert(on_call=2):
        code, out, err = run_start_job_progress(
            *numbers, "--user", "dispatcher", "--batch-size", "2"
        )
    assert code == 1
    assert f"started  {numbers[1]}" in out
    assert "a batch failed and was rolled back" in err
    assert "run the same command again" in err.lower()
    assert states(*jobs) == ["IN_PROGRESS"] * 2 + ["PENDING"] * 2

    code, _, _ = run_start_job_progress(*numbers, "--user", "dispatcher")
    assert code == 1  # the first two are now skipped as already started
    assert states(*jobs) == ["IN_PROGRESS"] * 4
    assert JobTransitionLog.objects.count() == 4


def test_no_progress_bar_when_output_is_not_a_terminal(dispatcher):
    job = JobFactory()
    _, out, _ = run_start_job_progress(job.number, "--user", "dispatcher")
    assert "\r" not in out
    assert "[" not in out


def test_the_type_is_found_by_id_too(dispatcher):
    job_type = JobTypeFactory()
    job = JobFactory(type=job_type, status=status_of(job_type, LifeCycleState.PENDING))
    code, _, _ = run_start_job_progress(
        "--pending", "--type", str(job_type.pk), "--user", "dispatcher"
    )
    assert code == 0
    assert states(job) == ["IN_PROGRESS"]


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_progress_bar_that_reaches_the_total(dispatcher):
    jobs = JobFactory.create_batch(3)
    out = Terminal()
    call_command(
        "start_job_progress",
        *[j.number for j in jobs],
        "--user",
        "dispatcher",
        "--batch-size",
        "2",
        stdout=out,
    )
    drawn = out.getvalue()
    assert "2/3 [" in drawn  # tqdm's bar, after the first batch of two
    assert "3/3 [" in drawn
    assert "Started 3, skipped 0." in drawn


def test_batch_log_lines_stay_off_a_commands_output_unless_asked_with_v2(dispatcher, caplog):
    jobs = JobFactory.create_batch(2)
    with caplog.at_level(logging.INFO):
        run("start_progress", jobs[0].number, "--user", "dispatcher")
    assert not [r for r in caplog.records if r.getMessage() == "transition batch"]
    with caplog.at_level(logging.INFO):
        run("start_progress", jobs[1].number, "--user", "dispatcher", "-v", "2")
    assert [r for r in caplog.records if r.getMessage() == "transition batch"]
