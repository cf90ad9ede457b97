"""Updating jobs from outside: PATCH jobs/{id} (ours) and POST jobs/generic_purpose/update
(CRM.COM's), CRM.COM's absent/null rule, the status sequence, who may, the ETag and If-Match,
the update's record and its event."""

import json
from datetime import UTC, datetime

import pytest

from jobs.models import AllowedStatus, Assignment, Event, Job, JobUpdate, LifeCycleState
from jobs.services import job_bulk_transition, job_transition
from tests.factories import (
    AssignmentFactory,
    GroupFactory,
    JobFactory,
    JobStatusFactory,
    JobTypeFactory,
    UserFactory,
)
from tests.helpers import JOBS, ON_POSTGRESQL, code_of, count_queries

pytestmark = pytest.mark.django_db
CRM = JOBS + "/generic_purpose/update"
UPDATING = ["view_job", "view_all_jobs", "change_job", "start_progress_job"]


@pytest.fixture
def editor(db):
    return UserFactory(username="erp", permissions=UPDATING)


@pytest.fixture
def as_editor(api, editor, token_for):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(editor)}")
    return api


@pytest.fixture
def job(db):
    return JobFactory(description="Replace the router", notes="gate code 1234")


def patch(client, job, if_match=None, **body):
    headers = {} if if_match is None else {"HTTP_IF_MATCH": if_match}
    return client.patch(f"{JOBS}/{job.pk}", body, format="json", **headers)


def test_a_field_left_out_is_kept_and_a_field_sent_as_null_is_cleared(as_editor, job):
    job.scheduled_date = datetime(2026, 12, 24, 9, tzinfo=UTC)
    job.save()

    response = patch(as_editor, job, notes="call first", scheduled_date=None, description=None)

    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["notes"], data["scheduled_date"], data["description"]) == ("call first", None, "")
    job.refresh_from_db()
    assert (job.notes, job.scheduled_date, job.description) == ("call first", None, "")
    assert job.status_id == data["status"]["id"]  # left out: unchanged


def test_crm_coms_method_names_the_job_in_the_body(as_editor, job):
    response = as_editor.post(
        CRM, {"job_identifier": {"number": job.number}, "notes": "by number"}, format="json"
    )

    assert response.status_code == 200
    job.refresh_from_db()
    assert job.notes == "by number"


def test_the_update_leaves_a_record_and_the_event_job_updated_with_each_change(
    as_editor, editor, job
):
    south = GroupFactory(name="South field team")

    patch(as_editor, job, notes="call first", owned_by_group_identifier={"name": south.name})

    update = JobUpdate.objects.get()
    changes = {
        "notes": {"from": "gate code 1234", "to": "call first"},
        "owned_by_group": {"from": None, "to": {"id": south.pk, "name": "South field team"}},
    }
    assert (update.job, update.user, update.channel, update.changes) == (
        job,
        editor,
        "api",
        changes,
    )
    event = Event.objects.get(type="job.updated")
    assert event.data["changes"] == changes
    assert event.data["job"]["number"] == job.number
    assert event.data["user"] == {"id": editor.pk, "username": "erp"}
    assert event.job_id == job.pk


def test_an_update_that_changes_nothing_writes_nothing(as_editor, job):
    before = patch(as_editor, job, fields_set="id").headers["ETag"]

    with count_queries() as queries:
        response = patch(as_editor, job, notes="gate code 1234", description="Replace the router")

    assert response.status_code == 200
    assert response.headers["ETag"] == before
    assert not JobUpdate.objects.exists()
    assert not Event.objects.exists()
    assert not [sql for sql in queries.sql if sql.upper().startswith(("UPDATE", "INSERT"))]


def test_assigned_to_replaces_the_whole_assignment_and_null_removes_it(as_editor, job):
    AssignmentFactory(job=job, user=UserFactory(username="ann"), unit=GroupFactory(name="North"))

    response = patch(as_editor, job, assigned_to={"unit_identifier": {"name": "North"}})

    assert response.json()["data"]["assigned_to"]["user"] is None
    assignment = Assignment.objects.get(job=job)
    assert (assignment.user, assignment.unit.name) == (None, "North")
    change = JobUpdate.objects.get().changes["assigned_to"]
    assert change["from"]["user"]["username"] == "ann"
    assert change["to"] == {"user": None, "unit": {"id": assignment.unit_id, "name": "North"}}

    patch(as_editor, job, assigned_to=None)

    assert not Assignment.objects.filter(job=job).exists()
    assert JobUpdate.objects.latest("id").changes["assigned_to"]["to"] is None


def test_the_status_moves_only_forward_in_the_types_sequence_within_the_state(as_editor, job):
    job_type = job.type
    waiting, called = (
        JobStatusFactory(name=name, life_cycle_state=LifeCycleState.PENDING)
        for name in ("Waiting for parts", "Customer called")
    )
    AllowedStatus.objects.filter(job_type=job_type, status=job.status).update(position=1)
    AllowedStatus.objects.create(job_type=job_type, status=waiting, position=2)
    AllowedStatus.objects.create(job_type=job_type, status=called, position=0)

    moved = patch(as_editor, job, status_identifier={"name": "Waiting for parts"})
    assert moved.json()["data"]["status"]["name"] == "Waiting for parts"

    backwards = patch(as_editor, job, status_identifier={"name": "Customer called"})
    assert code_of(backwards) == (400, "STATUS_NOT_ALLOWED")
    assert "Customer called" in backwards.json()["status"]["message"]

    other_state = patch(as_editor, job, status_identifier={"id": job_type.default_start_status_id})
    assert code_of(other_state) == (400, "STATUS_NOT_ALLOWED")
    job.refresh_from_db()
    assert (job.status, job.life_cycle_state) == (waiting, LifeCycleState.PENDING)


def test_status_not_allowed_lists_the_statuses_it_may_move_to(as_editor, job):
    later = JobStatusFactory(name="Parts ordered", life_cycle_state=LifeCycleState.PENDING)
    AllowedStatus.objects.create(job_type=job.type, status=later, position=1)
    foreign = JobStatusFactory(name="Elsewhere", life_cycle_state=LifeCycleState.PENDING)

    refused = patch(as_editor, job, status_identifier={"name": "Elsewhere"})

    assert code_of(refused) == (400, "STATUS_NOT_ALLOWED")
    assert "it may move to Parts ordered" in refused.json()["status"]["message"]
    assert foreign.pk != Job.objects.get().status_id


def test_a_status_cannot_be_cleared(as_editor, job):
    refused = patch(as_editor, job, status_identifier=None)

    assert code_of(refused) == (400, "INVALID_PARAMETER")
    assert "status_identifier" in refused.json()["status"]["message"]


@pytest.mark.parametrize("state", [LifeCycleState.COMPLETED, LifeCycleState.CANCELLED])
def test_an_ended_job_is_not_updated(as_editor, state):
    ended = JobFactory(life_cycle_state=state)

    refused = patch(as_editor, ended, notes="too late")

    assert code_of(refused) == (409, "JOB_STATE_CONFLICT")
    assert (
        "only DRAFT, PENDING or IN_PROGRESS jobs can be updated"
        in (refused.json()["status"]["message"])
    )
    assert not JobUpdate.objects.exists()


def test_updating_needs_change_job_and_a_job_one_sees(api, token_for, job):
    reader = UserFactory(permissions=["view_job", "view_all_jobs"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(reader)}")
    assert code_of(patch(api, job, notes="x")) == (403, "PERMISSION_DENIED")

    north = GroupFactory(name="North")
    scoped = UserFactory(permissions=["view_job", "change_job"], groups=[north])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(scoped)}")
    unseen = patch(api, job, notes="x")
    missing = api.patch(f"{JOBS}/999999", {"notes": "x"}, format="json")
    assert code_of(unseen) == code_of(missing) == (404, "JOB_NOT_FOUND")
    assert unseen.content == missing.content

    job.owned_by_group = north
    job.save()
    handed = patch(api, job, owned_by_group_identifier={"name": "South"})
    assert code_of(handed) == (400, "GROUP_NOT_FOUND")
    GroupFactory(name="South")
    assert patch(api, job, owned_by_group_identifier={"name": "South"}).status_code == 200
    # Handed to another group, the job is no longer this user's to see.
    assert code_of(patch(api, job, notes="x")) == (404, "JOB_NOT_FOUND")


def test_every_answer_with_one_job_carries_its_etag(as_editor, job):
    read = as_editor.get(f"{JOBS}/{job.pk}", {"fields_set": "number"})
    assert read.headers["ETag"] == f'"{job.pk}.{job.version}"'
    shown = as_editor.get(JOBS + "/generic_purpose/show", {"job_identifier": f"id={job.pk}"})
    assert shown.headers["ETag"] == read.headers["ETag"]

    updated = patch(as_editor, job, notes="new")
    assert updated.headers["ETag"] == f'"{job.pk}.{job.version + 1}"'
    started = as_editor.post(f"{JOBS}/{job.pk}/start_progress", {}, format="json")
    assert started.headers["ETag"] == f'"{job.pk}.{job.version + 2}"'
    assert as_editor.get(f"{JOBS}/{job.pk}").headers["ETag"] == started.headers["ETag"]


def test_if_match_with_a_stale_etag_changes_nothing(as_editor, editor, job):
    etag = as_editor.get(f"{JOBS}/{job.pk}").headers["ETag"]
    job_transition(transition="start_progress", job=job, user=editor, channel="api")

    refused = patch(as_editor, job, if_match=etag, notes="overwritten?")

    assert code_of(refused) == (412, "PRECONDITION_FAILED")
    job.refresh_from_db()
    assert job.notes == "gate code 1234"
    fresh = as_editor.get(f"{JOBS}/{job.pk}").headers["ETag"]
    assert patch(as_editor, job, if_match=fresh, notes="now").status_code == 200


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("*", 200),
        ('W/"{etag}"', 412),  # If-Match compares strongly: a weak tag never matches
        ('"0.1", "{etag}"', 200),
        ("{etag}", 400),  # no quotes: not an entity tag
    ],
)
def test_if_match_takes_rfc_9110s_forms(as_editor, job, header, code):
    etag = as_editor.get(f"{JOBS}/{job.pk}").headers["ETag"].strip('"')

    response = patch(as_editor, job, if_match=header.format(etag=etag), notes="new")

    assert response.status_code == code


def test_an_etag_of_another_job_does_not_match(as_editor, job):
    other = JobFactory()
    assert other.version == job.version

    refused = patch(as_editor, job, if_match=f'"{other.pk}.{other.version}"', notes="x")

    assert code_of(refused) == (412, "PRECONDITION_FAILED")


def test_an_external_reference_held_by_another_job_is_refused(as_editor, job):
    JobFactory(external_reference="SHOP-1")

    refused = patch(as_editor, job, external_reference="SHOP-1")

    assert code_of(refused) == (409, "DUPLICATE_EXTERNAL_REFERENCE")
    job.refresh_from_db()
    assert job.external_reference is None


@pytest.mark.parametrize(
    "body",
    [
        {"notes": 5},
        {"colour": "red"},
        {"scheduled_date": "next tuesday"},
        {"external_reference": "x" * 101},
        {"assigned_to": {"user_identifier": {"username": "nobody"}}},
        {"owned_by_group_identifier": {"id": 999999}},
        {"status_identifier": {"name": "No such status"}},
        {"description": "ok", "job_identifier": {"id": 999999}},
    ],
)
def test_odd_input_is_refused_and_changes_nothing(as_editor, job, body):
    response = as_editor.patch(f"{JOBS}/{job.pk}", body, format="json")

    assert 400 <= response.status_code < 500
    assert response.json()["status"]["code"] != "OK"
    job.refresh_from_db()
    assert (job.description, job.notes, job.version) == ("Replace the router", "gate code 1234", 1)
    assert not JobUpdate.objects.exists()


def test_an_update_takes_the_same_queries_whatever_it_changes(as_editor, job):
    north, south = GroupFactory(name="North"), GroupFactory(name="South")
    counts = []
    for owner in (north, south):
        with count_queries() as queries:
            patch(
                as_editor,
                job,
                notes=f"for {owner.name}",
                owned_by_group_identifier={"id": owner.pk},
            )
        counts.append(len(queries))

    # The token, the group, the lock, and the write: one statement on PostgreSQL; elsewhere the
    # UPDATE and the two INSERTs (record, event). (A lock that waited for another update reads
    # the job once more: tests/test_intake_concurrency.py.)
    assert counts == ([4, 4] if ON_POSTGRESQL else [6, 6])


def test_the_admin_and_the_api_both_see_an_update_in_the_jobs_history(as_editor, job):
    patch(as_editor, job, notes="by the ERP")

    record = JobUpdate.objects.get()
    assert json.loads(json.dumps(record.changes)) == {
        "notes": {"from": "gate code 1234", "to": "by the ERP"}
    }
    assert job.updates.get() == record


def test_a_draft_of_another_type_keeps_its_own_sequence(as_editor):
    draft = JobFactory(type=JobTypeFactory(), life_cycle_state=LifeCycleState.DRAFT)

    refused = patch(as_editor, draft, status_identifier={"id": JobFactory().status_id})

    assert code_of(refused) == (400, "STATUS_NOT_ALLOWED")


def test_a_transition_sent_with_a_stale_if_match_moves_nothing(as_editor, job):
    etag = as_editor.get(f"{JOBS}/{job.pk}").headers["ETag"]
    patch(as_editor, job, notes="changed by someone else")

    url = f"{JOBS}/{job.pk}/start_progress"
    refused = as_editor.post(url, {}, format="json", HTTP_IF_MATCH=etag)

    assert code_of(refused) == (412, "PRECONDITION_FAILED")
    job.refresh_from_db()
    assert job.life_cycle_state == LifeCycleState.PENDING
    fresh = as_editor.get(f"{JOBS}/{job.pk}").headers["ETag"]
    assert as_editor.post(url, {}, format="json", HTTP_IF_MATCH=fresh).status_code == 200


def test_every_write_counts_the_version_a_bulk_transition_and_an_admin_save_too(as_editor, editor):
    jobs = JobFactory.create_batch(3)
    before = {job.pk: as_editor.get(f"{JOBS}/{job.pk}").headers["ETag"] for job in jobs}

    job_bulk_transition(
        transition="start_progress",
        jobs=Job.objects.filter(pk__in=before),
        user=editor,
        channel="command",
        batch_size=2,
    )
    jobs[0].refresh_from_db()
    jobs[0].save()  # a plain save (the demo data, a shell) counts as well

    after = {job.pk: as_editor.get(f"{JOBS}/{job.pk}").headers["ETag"] for job in jobs}
    assert after == {job.pk: f'"{job.pk}.{3 if job is jobs[0] else 2}"' for job in jobs}
