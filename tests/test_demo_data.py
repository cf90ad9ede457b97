from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from jobs.models import ExpirationSetting, Job, JobType, LifeCycleState

pytestmark = pytest.mark.django_db


def load() -> str:
    out = StringIO()
    call_command("load_demo_data", stdout=out)
    return out.getvalue()


def test_demo_data_loads_once_however_often_it_runs():
    load()
    counts = (Job.objects.count(), JobType.objects.count(), get_user_model().objects.count())
    load()
    assert (
        Job.objects.count(),
        JobType.objects.count(),
        get_user_model().objects.count(),
    ) == counts
    assert counts[0] == 200


def test_demo_users_have_the_roles_the_readme_promises():
    output = load()
    users = {u.username: u for u in get_user_model().objects.all()}
    assert users["admin"].is_superuser
    assert users["dispatcher"].has_perm("jobs.start_progress_job")
    assert users["viewer"].has_perm("jobs.view_job")
    assert not users["viewer"].has_perm("jobs.start_progress_job")
    assert users["dispatcher"].has_perm("jobs.cancel_job")
    assert users["technician"].has_perm("jobs.complete_job")
    assert not users["technician"].has_perm("jobs.cancel_job")
    for username in ("admin", "dispatcher", "technician", "viewer"):
        assert users[username].check_password(f"{username}-demo-pw")
        assert f"{username} / {username}-demo-pw" in output


def test_demo_jobs_cover_every_state_and_keep_the_status_invariant():
    load()
    assert set(Job.objects.values_list("life_cycle_state", flat=True)) == set(LifeCycleState)
    for job in Job.objects.select_related("type", "status"):
        job.clean()  # raises if a status is not allowed or not of the job's state


def test_demo_types_include_one_without_default_and_one_expiring_on_start():
    load()
    assert JobType.objects.filter(default_start_status__isnull=True).exists()
    assert JobType.objects.filter(expiration_settings=ExpirationSetting.ON_START_PROGRESS).exists()
    assert JobType.objects.values("fulfillment_scope").distinct().count() >= 4


def test_the_demo_has_the_jobs_the_readme_counts_and_prints_them():
    output = load()
    line = "Jobs by state: DRAFT 13, PENDING 118, IN_PROGRESS 27, COMPLETED 25, CANCELLED 17."
    assert line in output
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "200 jobs: 13 draft, 118 pending, 27 in progress, 25 completed and 17 cancelled" in (
        " ".join(readme.split())
    )


def test_demo_types_have_defaults_for_every_transition_and_a_default_reason():
    from jobs.transitions import TRANSITIONS

    load()
    repair = JobType.objects.get(alternative_code="REPAIR")
    for declared in TRANSITIONS.values():
        assert getattr(repair, declared.default_status_field).life_cycle_state == declared.target
    assert repair.default_cancellation_reason.alternative_code == "CUSTOMER"
    repair.allowed_statuses_to_save = list(repair.allowed_statuses.all())
    repair.clean()


def test_demo_jobs_have_the_history_that_brought_them_to_their_state():
    load()
    for job in Job.objects.prefetch_related("transitions"):
        moves = sorted(job.transitions.all(), key=lambda entry: entry.created_at)
        path = [entry.transition for entry in moves]
        assert (
            path
            == {
                "DRAFT": [],
                "PENDING": ["submit"],
                "IN_PROGRESS": ["submit", "start_progress"],
                "COMPLETED": ["submit", "start_progress", "complete"],
                "CANCELLED": ["submit", "cancel"],
            }[job.life_cycle_state]
        ), job.number
        if moves:
            assert moves[-1].to_state == job.life_cycle_state
            assert moves[-1].to_status_id == job.status_id
            assert moves[0].from_state == "DRAFT"
