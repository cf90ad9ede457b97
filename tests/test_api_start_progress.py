"""POST jobs/all_scopes/start_progress (CRM.COM's method) and POST jobs/{id}/start_progress."""

import pytest

from jobs import services
from jobs.models import Job, JobTransitionLog, LifeCycleState
from tests.factories import (
    AssignmentFactory,
    JobFactory,
    JobStatusFactory,
    JobTypeFactory,
    status_of,
)
from tests.helpers import WRITES, by_identifier_url, count_queries, in_path_url

pytestmark = pytest.mark.django_db

URL = by_identifier_url("start_progress")


def by_path(job):
    return in_path_url(job, "start_progress")


def assert_error(response, http_status, code):
    body = response.json()
    assert (response.status_code, body["status"]["code"]) == (http_status, code), body
    assert body["data"] is None
    assert body["status"]["message"]
    assert body["status"]["description"]
    assert "\n" not in body["status"]["message"]
    return body


# --- the happy paths -----------------------------------------------------------------------------


def test_a_crm_client_starts_a_job_by_number_with_the_token_in_the_body(api, dispatcher, token_for):
    job = JobFactory()
    onsite = JobStatusFactory(name="On site", alternative_code="ONSITE")
    job.type.allowed_statuses.add(onsite)

    response = api.post(
        URL,
        {
            "token": token_for(dispatcher),
            "job_identifier": {"number": job.number},
            "status_identifier": {"alternative_code": "ONSITE"},
            "fields_set": "id,number,life_cycle_state,status",
        },
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {
        "status": {"code": "OK", "message": "", "description": ""},
        "data": {
            "id": job.pk,
            "number": job.number,
            "life_cycle_state": "IN_PROGRESS",
            "status": {
                "id": onsite.pk,
                "name": "On site",
                "alternative_code": "ONSITE",
                "description": "",
                "life_cycle_state": "IN_PROGRESS",
            },
        },
    }
    log = JobTransitionLog.objects.get(job=job)
    assert (log.channel, log.user, log.to_status) == ("api", dispatcher, onsite)


def test_the_token_may_come_as_a_bearer_header_and_the_slash_is_optional(as_dispatcher):
    job = JobFactory()
    response = as_dispatcher.post(URL + "/", {"job_identifier": {"id": job.pk}}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["life_cycle_state"] == "IN_PROGRESS"


def test_the_full_job_comes_back_when_no_fields_set_is_given(as_dispatcher, dispatcher):
    job = JobFactory(type=JobTypeFactory(expires_on_start=True))

    data = as_dispatcher.post(
        URL, {"job_identifier": {"number": job.number}}, format="json"
    ).json()["data"]

    assert set(data) == {
        "id",
        "number",
        "description",
        "life_cycle_state",
        "rating_state",
        "expiration_date",
        "scheduled_date",
        "assigned_to",
        "type",
        "status",
        "cancellation_reason",
        "actual_start_date",
        "actual_completed_date",
        "log_information",
    }
    assert data["cancellation_reason"] is None
    assert data["actual_start_date"] == data["log_information"]["updated_date"]
    assert data["actual_completed_date"] is None
    assert data["assigned_to"] is None
    assert data["scheduled_date"] is None
    assert data["expiration_date"].endswith("Z")
    assert data["log_information"]["updated_by_user"] == "dispatcher"
    assert data["status"]["id"] == job.type.default_start_status_id


def test_the_rest_style_action_starts_the_job_in_the_path(as_dispatcher):
    job = JobFactory()
    response = as_dispatcher.post(
        by_path(job), {"fields_set": ["id", "life_cycle_state"]}, format="json"
    )
    assert response.json()["data"] == {"id": job.pk, "life_cycle_state": "IN_PROGRESS"}


@pytest.mark.parametrize(("fields_set", "joined"), [("id,life_cycle_state", False), (None, True)])
def test_the_answer_is_rendered_from_the_locked_row_joined_as_the_fields_need(
    as_dispatcher, fields_set, joined
):
    job = AssignmentFactory().job
    body = {"job_identifier": {"number": job.number}}
    if fields_set:
        body["fields_set"] = fields_set
    with count_queries() as queries:
        response = as_dispatcher.post(URL, body, format="json")
    assert response.status_code == 200
    reads = [q for q in queries.sql if q.startswith("SELECT") and "jobs_job" in q]
    assert len(reads) == 1  # the lock: the job is not read again to answer
    assert ("jobs_assignment" in reads[0]) is joined


def test_a_start_request_takes_a_fixed_number_of_queries(as_dispatcher):
    job = JobFactory()
    status = status_of(job.type, LifeCycleState.IN_PROGRESS)
    with count_queries() as queries:
        response = as_dispatcher.post(
            URL,
            {"job_identifier": {"number": job.number}, "status_identifier": {"id": status.pk}},
            format="json",
        )
    # the count means something only for a start that happened
    assert response.json()["data"]["life_cycle_state"] == "IN_PROGRESS"
    # the user with its permissions and its token's release 1, lock 1 (which reads the status
    # asked for and what the answer shows), then the writes
    assert len(queries) == 2 + WRITES, queries.sql


# --- every error code, and nothing changed ----------------------------------------------------


def test_a_missing_job_identifier_is_mandatory_parameter_missing(as_dispatcher, unchanged):
    JobFactory()
    unchanged()
    body = assert_error(
        as_dispatcher.post(URL, {}, format="json"), 400, "MANDATORY_PARAMETER_MISSING"
    )
    assert "job_identifier" in body["status"]["message"]


@pytest.mark.parametrize(
    "identifier",
    [
        "JB00001",
        7,
        ["JB00001"],
        None,
        {},
        {"id": 1, "number": "JB00001"},
        {"code": "X"},
        {"id": "seven"},
        {"number": ""},
        {"number": 7},
    ],
)
def test_a_malformed_job_identifier_is_invalid_identifier(as_dispatcher, unchanged, identifier):
    JobFactory()
    unchanged()
    response = as_dispatcher.post(URL, {"job_identifier": identifier}, format="json")
    assert_error(response, 400, "INVALID_IDENTIFIER")


@pytest.mark.parametrize("identifier", [{"name": "A", "id": 1}, {"colour": "red"}, "ONSITE"])
def test_a_malformed_status_identifier_is_invalid_identifier(as_dispatcher, unchanged, identifier):
    job = JobFactory()
    unchanged()
    response = as_dispatcher.post(
        URL,
        {"job_identifier": {"number": job.number}, "status_identifier": identifier},
        format="json",
    )
    assert_error(response, 400, "INVALID_IDENTIFIER")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("{not json", "application/json"),
        ('["a", "list"]', "application/json"),
        ('"a string"', "application/json"),
        ("job_identifier=1", "application/x-www-form-urlencoded"),
        ('{"job_identifier": {"number": "JB00001"}, "fields_set": 5}', "application/json"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_invalid_parameter(
    as_dispatcher, unchanged, body, content_type
):
    JobFactory()
    unchanged()
    response = as_dispatcher.post(URL, body, content_type=content_type)
    assert_error(response, 400, "INVALID_PARAMETER")


@pytest.mark.parametrize("fields_set", ["", " , ", "id,colour", "status.colour", ["id", 3]])
def test_a_bad_fields_set_is_invalid_parameter_and_nothing_starts(
    as_dispatcher, unchanged, fields_set
):
    job = JobFactory()
    unchanged()
    response = as_dispatcher.post(
        URL, {"job_identifier": {"number": job.number}, "fields_set": fields_set}, format="json"
    )
    body = assert_error(response, 400, "INVALID_PARAMETER")
    assert "assigned_to.user.username" in body["status"]["description"]  # lists allowed names


def test_an_unknown_job_is_job_not_found(as_dispatcher, unchanged):
    JobFactory()
    unchanged()
    response = as_dispatcher.post(URL, {"job_identifier": {"number": "JB99999"}}, format="json")
    assert_error(response, 404, "JOB_NOT_FOUND")
    assert_error(
        as_dispatcher.post("/crmapi/rest/v2/jobs/99999/start_progress", {}, format="json"),
        404,
        "JOB_NOT_FOUND",
    )


def test_an_unknown_status_is_status_not_found(as_dispatcher, unchanged):
    job = JobFactory()
    unchanged()
    response = as_dispatcher.post(
        URL,
        {"job_identifier": {"number": job.number}, "status_identifier": {"name": "Nope"}},
        format="json",
    )
    assert_error(response, 400, "STATUS_NOT_FOUND")


def test_a_status_of_another_type_is_status_not_allowed(as_dispatcher, unchanged):
    job = JobFactory()
    foreign = JobStatusFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)
    unchanged()
    response = as_dispatcher.post(
        URL,
        {"job_identifier": {"number": job.number}, "status_identifier": {"id": foreign.pk}},
        format="json",
    )
    assert_error(response, 400, "STATUS_NOT_ALLOWED")


def test_an_allowed_status_that_is_not_in_progress_is_status_not_allowed(as_dispatcher, unchanged):
    job = JobFactory()
    completed = status_of(job.type, LifeCycleState.COMPLETED)
    unchanged()
    response = as_dispatcher.post(
        URL,
        {
            "job_identifier": {"number": job.number},
            "status_identifier": {"alternative_code": completed.alternative_code},
        },
        format="json",
    )
    assert_error(response, 400, "STATUS_NOT_ALLOWED")


def test_a_type_without_default_and_no_status_is_no_default_status(as_dispatcher, unchanged):
    job = JobFactory(type=JobTypeFactory(without_default=True))
    unchanged()
    response = as_dispatcher.post(URL, {"job_identifier": {"number": job.number}}, format="json")
    assert_error(response, 409, "NO_DEFAULT_STATUS")


def test_a_job_that_is_not_pending_is_job_state_conflict_naming_its_state(as_dispatcher, unchanged):
    job = JobFactory(life_cycle_state=LifeCycleState.COMPLETED)
    unchanged()
    response = as_dispatcher.post(URL, {"job_identifier": {"number": job.number}}, format="json")
    body = assert_error(response, 409, "JOB_STATE_CONFLICT")
    assert "COMPLETED" in body["status"]["message"]


def test_starting_twice_is_a_conflict_the_second_time(as_dispatcher):
    job = JobFactory()
    first = as_dispatcher.post(URL, {"job_identifier": {"number": job.number}}, format="json")
    second = as_dispatcher.post(URL, {"job_identifier": {"number": job.number}}, format="json")
    assert first.status_code == 200
    assert_error(second, 409, "JOB_STATE_CONFLICT")
    assert JobTransitionLog.objects.filter(job=job).count() == 1


def test_anything_unexpected_is_internal_error_without_internals(
    as_dispatcher, unchanged, monkeypatch, settings
):
    settings.DEBUG = False
    job = JobFactory()
    unchanged()

    def explode(**kwargs):
        raise RuntimeError("secret detail from deep inside SELECT * FROM jobs_job")

    monkeypatch.setattr("jobs.api.views.job_transition", explode)
    response = as_dispatcher.post(URL, {"job_identifier": {"number": job.number}}, format="json")
    body = assert_error(response, 500, "INTERNAL_ERROR")
    assert "secret" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert body["status"]["message"] == "Something went wrong on our side."


def test_the_service_is_the_one_doing_the_start(as_dispatcher, monkeypatch):
    calls = []
    real = services.job_transition

    def spy(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr("jobs.api.views.job_transition", spy)
    job = JobFactory()
    as_dispatcher.post(by_path(job), {}, format="json")
    assert calls[0]["job"] == {"id": job.pk}
    assert calls[0]["channel"] == "api"
    assert Job.objects.get(pk=job.pk).life_cycle_state == LifeCycleState.IN_PROGRESS
