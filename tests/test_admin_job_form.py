"""The job page's form: add and change through the services (the same rules, record and events as
the API), the statuses it offers, the assignment, and the history of transitions and updates."""

import pytest
from django.urls import reverse

from jobs.exceptions import JobStateConflict
from jobs.models import AllowedStatus, Assignment, Event, Job, JobUpdate, LifeCycleState
from jobs.services import job_transition
from jobs.transitions import START_PROGRESS
from tests.factories import (
    AssignmentFactory,
    GroupFactory,
    JobFactory,
    JobStatusFactory,
    JobTypeFactory,
    UserFactory,
    status_of,
)
from tests.helpers import logged_in, messages_of

pytestmark = pytest.mark.django_db
ADD = reverse("admin:jobs_job_add")


def change_url(job) -> str:
    return reverse("admin:jobs_job_change", args=[job.pk])


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def as_root(root):
    return logged_in(root)


def form_data(job=None, **changes):
    """The job page as the browser posts it, unchanged unless `changes` says otherwise."""
    assignment = Assignment.objects.filter(job=job).first() if job else None
    data = {
        "description": job.description if job else "",
        "notes": job.notes if job else "",
        "external_reference": (job.external_reference or "") if job else "",
        "owned_by_group": (job.owned_by_group_id or "") if job else "",
        "assigned_user": (assignment.user_id or "") if assignment else "",
        "assigned_unit": (assignment.unit_id or "") if assignment else "",
        "status": job.status_id if job else "",
        "scheduled_date_0": "",
        "scheduled_date_1": "",
    }
    # The values the page showed, which it sends back beside the fields.
    data |= {f"initial-{name}": value for name, value in data.items()}
    if job is None:
        data["type"] = ""
    data.update(changes)
    return data


def test_an_edit_goes_through_the_update_service_with_its_record_and_event(as_root, root):
    job = JobFactory(description="Fix the dish")

    response = as_root.post(change_url(job), form_data(job, notes="ring twice"))

    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.notes, job.updated_by_user, job.version) == ("ring twice", root, 2)
    update = JobUpdate.objects.get()
    assert (update.channel, update.changes) == (
        "admin",
        {"notes": {"from": "", "to": "ring twice"}},
    )
    assert Event.objects.get().type == "job.updated"


def test_an_edit_that_changes_nothing_writes_nothing(as_root):
    job = JobFactory()

    assert as_root.post(change_url(job), form_data(job)).status_code == 302

    job.refresh_from_db()
    assert job.version == 1
    assert not JobUpdate.objects.exists()


def test_an_edit_changes_only_the_fields_the_user_changed(as_root):
    job = JobFactory(description="as loaded")
    page = form_data(job, notes="mine")
    Job.objects.filter(pk=job.pk).update(description="changed meanwhile")

    as_root.post(change_url(job), page)

    job.refresh_from_db()
    assert (job.description, job.notes) == ("changed meanwhile", "mine")


def test_the_status_offered_is_the_jobs_or_one_after_it_in_its_state(as_root):
    job = JobFactory()
    later = JobStatusFactory(name="Parts ordered", life_cycle_state=LifeCycleState.PENDING)
    earlier = JobStatusFactory(name="Called", life_cycle_state=LifeCycleState.PENDING)
    AllowedStatus.objects.filter(job_type=job.type, status=job.status).update(position=1)
    AllowedStatus.objects.create(job_type=job.type, status=later, position=2)
    AllowedStatus.objects.create(job_type=job.type, status=earlier, position=0)

    form = as_root.get(change_url(job)).context["adminform"].form

    assert set(form.fields["status"].queryset) == {job.status, later}
    refused = as_root.post(change_url(job), form_data(job, status=earlier.pk))
    assert "status" in refused.context["adminform"].form.errors
    assert as_root.post(change_url(job), form_data(job, status=later.pk)).status_code == 302
    job.refresh_from_db()
    assert job.status == later


def test_the_type_and_the_state_are_read_only_on_a_jobs_page(as_root):
    form = as_root.get(change_url(JobFactory())).context["adminform"].form

    assert "type" not in form.fields
    assert "life_cycle_state" not in form.fields


def test_the_assignment_is_replaced_through_the_service(as_root):
    job = JobFactory()
    AssignmentFactory(job=job, user=UserFactory(username="ann"), unit=None)
    unit = GroupFactory(name="North")

    as_root.post(change_url(job), form_data(job, assigned_user="", assigned_unit=unit.pk))

    assignment = Assignment.objects.get(job=job)
    assert (assignment.user, assignment.unit) == (None, unit)
    assert JobUpdate.objects.get().changes["assigned_to"]["to"] == {
        "user": None,
        "unit": {"id": unit.pk, "name": "North"},
    }


def test_the_assignment_is_read_only_for_those_who_cannot_change_jobs(dispatcher):
    job = JobFactory()
    AssignmentFactory(job=job, user=UserFactory(username="ann"), unit=None)

    content = logged_in(dispatcher).get(change_url(job)).content.decode()

    assert 'name="_save"' not in content
    assert 'name="assigned_user"' not in content
    assert "ann" in content


def test_a_refusal_of_the_service_saves_nothing_and_says_why(as_root, monkeypatch):
    from jobs.admin import jobs as job_admin

    job = JobFactory()

    def refused(*args, **kwargs):
        raise JobStateConflict(job=job.number, state="COMPLETED", updatable="DRAFT or PENDING")

    monkeypatch.setattr(job_admin, "update_job", refused)
    response = as_root.post(change_url(job), form_data(job, notes="late"), follow=True)

    assert "Nothing was saved" in messages_of(response)[0][1]
    assert "only DRAFT or PENDING jobs can be updated" in messages_of(response)[0][1]
    job.refresh_from_db()
    assert job.notes == ""


def test_a_new_job_is_made_by_the_create_service(as_root, root):
    job_type = JobTypeFactory()
    pending = status_of(job_type, LifeCycleState.PENDING)
    south = GroupFactory(name="South")

    response = as_root.post(
        ADD,
        form_data(type=job_type.pk, status=pending.pk, description="New", owned_by_group=south.pk),
    )

    assert response.status_code == 302
    job = Job.objects.get()
    assert (job.life_cycle_state, job.owned_by_group, job.created_by_user) == (
        "PENDING",
        south,
        root,
    )
    event = Event.objects.get()
    assert (event.type, event.data["channel"]) == ("job.created", "admin")


def test_a_new_jobs_status_must_be_one_its_type_allows_to_start_in(as_root):
    job_type = JobTypeFactory()
    other_type = JobTypeFactory()

    of_other = as_root.post(
        ADD,
        form_data(type=job_type.pk, status=status_of(other_type, LifeCycleState.DRAFT).pk),
    )
    started = as_root.post(
        ADD,
        form_data(type=job_type.pk, status=status_of(job_type, LifeCycleState.IN_PROGRESS).pk),
    )

    assert "status" in of_other.context["adminform"].form.errors
    assert "status" in started.context["adminform"].form.errors
    assert not Job.objects.exists()


def test_the_job_page_shows_transitions_and_updates_together_newest_first(as_root, root):
    job = JobFactory()
    as_root.post(change_url(job), form_data(job, notes="before the start"))
    job_transition(transition=START_PROGRESS, job=job, user=root, channel="command")
    job.refresh_from_db()
    as_root.post(change_url(job), form_data(job, notes="after the start"))

    page = as_root.get(change_url(job)).content.decode()
    table = page[page.index('class="job-history"') :]

    assert (
        table.index("→ after the start")
        < table.index("PENDING → IN_PROGRESS")
        < table.index("→ before the start")
    )


def test_the_updates_list_holds_only_the_updates_of_jobs_one_sees(as_root):
    north = GroupFactory(name="North")
    ours, theirs = JobFactory(owned_by_group=north), JobFactory()
    for job in (ours, theirs):
        as_root.post(change_url(job), form_data(job, notes=f"note on {job.number}"))
    reader = UserFactory(is_staff=True, permissions=["view_job"], groups=[north])

    listing = logged_in(reader).get(reverse("admin:jobs_jobupdate_changelist"))

    assert [update.job for update in listing.context["cl"].result_list] == [ours]
