"""GET jobs, GET jobs/{id}, sparse fieldsets, paging, filters, and the envelope everywhere."""

import re
from datetime import UTC, datetime

import pytest

from jobs.models import LifeCycleState
from tests.factories import (
    AssignmentFactory,
    JobFactory,
    JobTypeFactory,
    UserFactory,
    status_of,
)
from tests.helpers import JOBS, ROOT, count_queries

pytestmark = pytest.mark.django_db


def job_selects(queries) -> list[str]:
    return [q for q in queries.sql if re.match(r'SELECT .* FROM "jobs_job"', q)]


# --- the list ----------------------------------------------------------------------------------


def test_the_list_is_newest_first_with_paging_beside_the_data(as_dispatcher):
    jobs = JobFactory.create_batch(3)

    body = as_dispatcher.get(JOBS, {"fields_set": "number"}).json()

    assert body["status"]["code"] == "OK"
    assert [j["number"] for j in body["data"]] == [j.number for j in reversed(jobs)]
    assert body["paging"] == {"total": 3, "offset": 0, "count": 3}


def test_number_of_results_and_offset_page_through_the_list(as_dispatcher):
    jobs = list(reversed(JobFactory.create_batch(5)))

    body = as_dispatcher.get(JOBS, {"number_of_results": 2, "offset": 2, "fields": "id"}).json()

    assert [j["id"] for j in body["data"]] == [jobs[2].pk, jobs[3].pk]
    assert body["paging"] == {"total": 5, "offset": 2, "count": 2}


@pytest.mark.parametrize("value", ["0", "-1", "501", "ten", "1.5", ""])
def test_a_bad_number_of_results_is_invalid_parameter(as_dispatcher, value):
    response = as_dispatcher.get(JOBS, {"number_of_results": value})
    assert response.status_code == 400
    assert response.json()["status"]["code"] == "INVALID_PARAMETER"


def test_a_bad_offset_is_invalid_parameter(as_dispatcher):
    response = as_dispatcher.get(JOBS, {"offset": "-3"})
    assert response.json()["status"]["code"] == "INVALID_PARAMETER"


def test_the_list_filters_by_state_type_status_assignee_and_number(as_dispatcher):
    job_type = JobTypeFactory()
    target = JobFactory(type=job_type)
    assignee = UserFactory()
    AssignmentFactory(job=target, user=assignee)
    JobFactory(type=job_type, life_cycle_state=LifeCycleState.DRAFT)
    JobFactory()

    def numbers(**params):
        body = as_dispatcher.get(JOBS, {"fields_set": "number", **params}).json()
        return [j["number"] for j in body["data"]]

    assert numbers(life_cycle_state="PENDING", type=job_type.pk) == [target.number]
    assert numbers(status=status_of(job_type, LifeCycleState.PENDING).pk) == [target.number]
    assert numbers(assigned_user=assignee.pk) == [target.number]
    assert numbers(number=target.number) == [target.number]


@pytest.mark.parametrize("params", [{"life_cycle_state": "STARTED"}, {"type": "abc"}])
def test_a_bad_filter_value_is_invalid_parameter(as_dispatcher, params):
    response = as_dispatcher.get(JOBS, params)
    assert (response.status_code, response.json()["status"]["code"]) == (400, "INVALID_PARAMETER")


def test_two_fields_are_one_select_without_join_per_page_plus_the_count(as_dispatcher):
    for job in JobFactory.create_batch(4):
        AssignmentFactory(job=job)

    with count_queries() as queries:
        body = as_dispatcher.get(JOBS, {"fields_set": "id,number"}).json()

    assert set(body["data"][0]) == {"id", "number"}
    count, page = job_selects(queries)
    assert count.startswith("SELECT COUNT(*)")
    assert "JOIN" not in page
    selected = page.split(" FROM ")[0]
    assert selected == (
        'SELECT "jobs_job"."id", "jobs_job"."number", "jobs_job"."life_cycle_state"'
    )


@pytest.mark.parametrize("page_size", [3, 30])
def test_the_full_representation_takes_the_same_queries_whatever_the_page_size(
    as_dispatcher, page_size
):
    for job in JobFactory.create_batch(page_size):
        AssignmentFactory(job=job)

    with count_queries() as queries:
        body = as_dispatcher.get(JOBS, {"number_of_results": page_size}).json()

    assert body["paging"]["count"] == page_size
    assert body["data"][0]["assigned_to"]["user"]["username"]
    assert len(job_selects(queries)) == 2  # count + one page, every relation joined
    assert len(queries) == 3, queries.sql  # + the user, with its permissions and token's release


def test_a_dotted_name_joins_only_the_relation_it_reads(as_dispatcher):
    job = JobFactory()
    AssignmentFactory(job=job)

    with count_queries() as queries:
        body = as_dispatcher.get(JOBS, {"fields_set": "number,assigned_to.user.username"}).json()

    assert body["data"] == [
        {"number": job.number, "assigned_to": {"user": {"username": job.assigned_to.user.username}}}
    ]
    page = job_selects(queries)[-1]
    assert "jobs_assignment" in page
    assert "auth_user" in page
    assert "jobs_jobtype" not in page
    assert "auth_group" not in page
    assert '"auth_user"."email"' not in page


def test_fields_set_accepts_a_json_like_list_spaces_and_repeats(as_dispatcher):
    job = JobFactory()
    body = as_dispatcher.get(JOBS, {"fields_set": " number , number,status.name"}).json()
    assert body["data"] == [{"number": job.number, "status": {"name": job.status.name}}]


def test_a_whole_relation_wins_over_one_of_its_fields(as_dispatcher):
    JobFactory()
    body = as_dispatcher.get(JOBS, {"fields_set": "type.name,type"}).json()
    assert set(body["data"][0]["type"]) == {
        "id",
        "name",
        "alternative_code",
        "description",
        "fulfillment_scope",
    }


def test_an_unknown_fields_set_name_lists_the_allowed_names(as_dispatcher):
    body = as_dispatcher.get(JOBS, {"fields_set": "id,colour"}).json()
    assert body["status"]["code"] == "INVALID_PARAMETER"
    assert "colour" in body["status"]["message"]
    assert "log_information.updated_by_user" in body["status"]["description"]


def test_an_unassigned_job_shows_null_not_a_missing_key(as_dispatcher):
    JobFactory()
    data = as_dispatcher.get(JOBS).json()["data"][0]
    assert data["assigned_to"] is None
    assert data["expiration_date"] is None
    assert data["log_information"]["created_by_user"] is None


# --- one job -----------------------------------------------------------------------------------


def test_one_job_by_id_with_a_unit_and_user(as_dispatcher):
    assignment = AssignmentFactory()
    job = assignment.job

    data = as_dispatcher.get(f"{JOBS}/{job.pk}/").json()["data"]

    assert data["assigned_to"] == {
        "user": {
            "id": assignment.user.pk,
            "username": assignment.user.username,
            "person_name": assignment.user.get_full_name(),
            "email": assignment.user.email,
        },
        "unit": {"id": assignment.unit.pk, "name": assignment.unit.name},
    }
    assert data["type"]["fulfillment_scope"] == "GENERIC_PURPOSE"
    assert re.match(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$",
        data["log_information"]["created_date"],
    )


def test_an_unknown_job_id_is_job_not_found(as_dispatcher):
    response = as_dispatcher.get(f"{JOBS}/999")
    assert (response.status_code, response.json()["status"]["code"]) == (404, "JOB_NOT_FOUND")


# --- who may look ---------------------------------------------------------------------------


def test_the_viewer_may_list_jobs(api, viewer, token_for):
    JobFactory()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(viewer)}")
    assert api.get(JOBS).status_code == 200


def test_a_user_without_the_view_permission_is_refused(api, token_for):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(UserFactory())}")
    response = api.get(JOBS)
    assert (response.status_code, response.json()["status"]["code"]) == (403, "PERMISSION_DENIED")


def test_listing_without_a_token_is_authentication_failed(api):
    response = api.get(JOBS)
    assert (response.status_code, response.json()["status"]["code"]) == (
        401,
        "AUTHENTICATION_FAILED",
    )


# --- the envelope, everywhere under the root ------------------------------------------------


@pytest.mark.parametrize("path", ["nothing-here", "jobs/abc", "jobs/1/explode"])
def test_an_unknown_route_under_the_root_is_an_enveloped_404(api, path):
    response = api.get(ROOT + path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["status"]["code"] == "NOT_FOUND"


def test_a_wrong_method_is_an_enveloped_405(as_dispatcher):
    job = JobFactory()
    response = as_dispatcher.delete(f"{JOBS}/{job.pk}")
    assert response.status_code == 405
    assert response.json()["status"]["code"] == "METHOD_NOT_ALLOWED"


def test_an_unhandled_error_on_a_get_is_enveloped_without_a_traceback(
    as_dispatcher, monkeypatch, settings
):
    settings.DEBUG = False
    JobFactory()
    monkeypatch.setattr(
        "jobs.api.views.JobSerializer.to_representation", lambda self, instance: 1 / 0
    )
    response = as_dispatcher.get(JOBS)
    assert response.status_code == 500
    assert response.json()["status"]["code"] == "INTERNAL_ERROR"
    assert "ZeroDivisionError" not in response.content.decode()


def test_dates_are_in_the_configured_time_zone_with_their_offset(as_dispatcher, settings):
    settings.TIME_ZONE = "Asia/Nicosia"  # UTC+2 in December
    created = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
    job = JobFactory(created_date=created)

    shown = as_dispatcher.get(f"{JOBS}/{job.pk}").json()["data"]["log_information"]
    moved = as_dispatcher.post(f"{JOBS}/{job.pk}/start_progress", {}, format="json").json()["data"]

    assert shown["created_date"] == "2026-12-05T12:30:00+02:00"
    assert moved["log_information"]["created_date"] == "2026-12-05T12:30:00+02:00"
    assert moved["actual_start_date"].endswith("+02:00")
    # Other systems read the feed in UTC, whatever the zone of people's screens.
    (event,) = as_dispatcher.get(f"{ROOT}events").json()["data"]
    assert event["timestamp"].endswith("Z")
