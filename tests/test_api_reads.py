"""CRM.COM's read methods (all_scopes/list, get_draft, get_overdue, generic_purpose/show) and the
filters GET jobs gained with them (overdue, external_reference)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import AllowedStatus, LifeCycleState
from tests.factories import (
    GroupFactory,
    JobFactory,
    JobStatusFactory,
    JobTypeFactory,
    UserFactory,
)
from tests.helpers import JOBS, changelist_url, code_of, logged_in

pytestmark = pytest.mark.django_db


def numbers(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [job["number"] for job in response.json()["data"]]


@pytest.fixture
def late():
    """An open job past its expiration date, one that is done although late, one on time."""
    past, future = timezone.now() - timedelta(days=1), timezone.now() + timedelta(days=1)
    return {
        "late": JobFactory(expiration_date=past),
        "done": JobFactory(life_cycle_state=LifeCycleState.COMPLETED, expiration_date=past),
        "on time": JobFactory(expiration_date=future),
        "never expires": JobFactory(),
    }


def test_all_scopes_list_is_every_job_seen_newest_first_by_type(as_dispatcher):
    repair = JobTypeFactory(alternative_code="REPAIR")
    older, newer = JobFactory(type=repair), JobFactory(type=repair)
    other = JobFactory()

    assert numbers(as_dispatcher.get(f"{JOBS}/all_scopes/list")) == [
        other.number,
        newer.number,
        older.number,
    ]
    by_type = as_dispatcher.get(
        f"{JOBS}/all_scopes/list", {"type_identifier": "alternative_code=REPAIR"}
    )
    assert numbers(by_type) == [newer.number, older.number]
    assert by_type.json()["paging"] == {"total": 2, "offset": 0, "count": 2}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type_identifier": "alternative_code=NOPE"}, (400, "JOB_TYPE_NOT_FOUND")),
        ({"type_identifier": "REPAIR"}, (400, "INVALID_IDENTIFIER")),
        ({"type_identifier": "colour=red"}, (400, "INVALID_IDENTIFIER")),
        ({"life_cycle_state": "DRAFT"}, (400, "INVALID_PARAMETER")),
    ],
)
def test_all_scopes_list_refuses_what_it_does_not_understand(as_dispatcher, params, expected):
    assert code_of(as_dispatcher.get(f"{JOBS}/all_scopes/list", params)) == expected


def test_get_draft_holds_the_drafts(as_dispatcher):
    draft = JobFactory(life_cycle_state=LifeCycleState.DRAFT)
    JobFactory()
    assert numbers(as_dispatcher.get(f"{JOBS}/all_scopes/get_draft")) == [draft.number]


def test_get_overdue_and_the_overdue_filter_hold_open_jobs_past_their_expiration(
    as_dispatcher, late
):
    assert numbers(as_dispatcher.get(f"{JOBS}/all_scopes/get_overdue")) == [late["late"].number]
    assert numbers(as_dispatcher.get(JOBS, {"overdue": "true"})) == [late["late"].number]
    others = numbers(as_dispatcher.get(JOBS, {"overdue": "false"}))
    assert sorted(others) == sorted(j.number for k, j in late.items() if k != "late")
    assert code_of(as_dispatcher.get(JOBS, {"overdue": "maybe"})) == (400, "INVALID_PARAMETER")


def test_jobs_filter_by_external_reference(as_dispatcher):
    held = JobFactory(external_reference="SHOP-1042")
    JobFactory(external_reference="SHOP-1043")
    assert numbers(as_dispatcher.get(JOBS, {"external_reference": "SHOP-1042"})) == [held.number]


def test_show_names_the_job_in_the_query_by_number_or_id(as_dispatcher):
    job = JobFactory()
    by_number = as_dispatcher.get(
        f"{JOBS}/generic_purpose/show", {"job_identifier": f"number={job.number}", "fields": "id"}
    )
    assert by_number.json()["data"] == {"id": job.pk}
    by_id = as_dispatcher.get(f"{JOBS}/generic_purpose/show", {"job_identifier": f"id={job.pk}"})
    assert by_id.json()["data"]["number"] == job.number
    assert code_of(as_dispatcher.get(f"{JOBS}/generic_purpose/show")) == (
        400,
        "MANDATORY_PARAMETER_MISSING",
    )
    missing = as_dispatcher.get(f"{JOBS}/generic_purpose/show", {"job_identifier": "number=X"})
    assert code_of(missing) == (404, "JOB_NOT_FOUND")


def test_the_crm_reads_hold_only_the_jobs_one_sees(api, token_for, late):
    unit = GroupFactory()
    mine = JobFactory(owned_by_group=unit, life_cycle_state=LifeCycleState.DRAFT)
    scoped = UserFactory(permissions=["view_job"], groups=[unit])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(scoped)}")

    assert numbers(api.get(f"{JOBS}/all_scopes/list")) == [mine.number]
    assert numbers(api.get(f"{JOBS}/all_scopes/get_draft")) == [mine.number]
    assert numbers(api.get(f"{JOBS}/all_scopes/get_overdue")) == []
    unseen = api.get(
        f"{JOBS}/generic_purpose/show", {"job_identifier": f"number={late['late'].number}"}
    )
    assert code_of(unseen) == (404, "JOB_NOT_FOUND")


def test_a_run_may_select_the_overdue_jobs(as_dispatcher, late):
    body = {
        "transition": "cancel",
        "filter": {"overdue": True},
        "dry_run": True,
    }
    answer = as_dispatcher.post(f"{JOBS.rsplit('/', 1)[0]}/transition_runs", body, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["data"]["moving_first"] == [late["late"].number]


# --- the status sequence ------------------------------------------------------------------------


def test_the_next_statuses_are_the_types_later_ones_in_the_jobs_state_in_sequence(as_dispatcher):
    job_type = JobTypeFactory(alternative_code="SEQ")
    pending = job_type.allowed_statuses.get(life_cycle_state=LifeCycleState.PENDING)
    booked, confirmed, earlier = (
        JobStatusFactory(name=name, life_cycle_state=LifeCycleState.PENDING)
        for name in ("Booked", "Confirmed", "Earlier")
    )
    job_type.allowed_statuses.add(booked, through_defaults={"position": 2})
    job_type.allowed_statuses.add(confirmed, through_defaults={"position": 3})
    job_type.allowed_statuses.add(earlier, through_defaults={"position": 0})
    AllowedStatus.objects.filter(job_type=job_type, status=pending).update(position=1)
    job = JobFactory(type=job_type, status=pending)

    answer = as_dispatcher.get(
        f"{JOBS}/all_scopes/get_next_status_sequence", {"job_identifier": f"number={job.number}"}
    )

    data = answer.json()["data"]
    assert [(entry["status"]["name"], entry["default"]) for entry in data] == [
        ("Booked", True),
        ("Confirmed", False),
    ]
    assert data[0]["id"] == AllowedStatus.objects.get(job_type=job_type, status=booked).pk


def test_equal_positions_impose_no_order(as_dispatcher):
    job = JobFactory(type=JobTypeFactory())
    other = JobStatusFactory(name="Also pending", life_cycle_state=LifeCycleState.PENDING)
    job.type.allowed_statuses.add(other)
    answer = as_dispatcher.get(
        f"{JOBS}/all_scopes/get_next_status_sequence", {"job_identifier": f"id={job.pk}"}
    )
    assert [entry["status"]["name"] for entry in answer.json()["data"]] == ["Also pending"]


def test_the_sequence_of_an_unseen_job_is_not_found(api, token_for):
    job = JobFactory()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(UserFactory(permissions=['view_job']))}")
    answer = api.get(
        f"{JOBS}/all_scopes/get_next_status_sequence", {"job_identifier": f"number={job.number}"}
    )
    assert code_of(answer) == (404, "JOB_NOT_FOUND")


def test_a_types_statuses_may_still_be_set_as_a_plain_many_to_many():
    job_type = JobTypeFactory()
    kept = JobStatusFactory(life_cycle_state=LifeCycleState.PENDING)
    job_type.allowed_statuses.set([kept])
    assert list(job_type.allowed_statuses.all()) == [kept]
    assert AllowedStatus.objects.get(job_type=job_type).position == 0


def test_the_admin_lists_the_overdue_jobs(dispatcher, late):
    page = logged_in(dispatcher).get(changelist_url(), {"overdue": "true"})
    assert [job.number for job in page.context["cl"].result_list] == [late["late"].number]
