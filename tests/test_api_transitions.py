"""POST jobs/all_scopes/<transition> (CRM.COM's methods) and POST jobs/{id}/<transition>, for every
declared transition; and GET jobs/configuration/statuses/list."""

import pytest

from jobs import services
from jobs.models import Job, JobTransitionLog, LifeCycleState
from jobs.transitions import CANCEL, TRANSITIONS
from tests.factories import (
    AssignmentFactory,
    JobCancellationReasonFactory,
    JobFactory,
    JobStatusFactory,
    JobTypeFactory,
    status_of,
)
from tests.helpers import (
    JOBS,
    WRITES,
    by_identifier_url,
    code_of,
    count_queries,
    in_path_url,
)

pytestmark = pytest.mark.django_db

STATUSES = JOBS + "/configuration/statuses/list"


def every_door_of_every_transition():
    """Each transition, through CRM.COM's method (job in the body) and ours (job in the path)."""
    return [
        pytest.param(declared, form, id=f"{declared.name}-{form}")
        for declared in TRANSITIONS.values()
        for form in ("by_identifier", "in_path")
    ]


def post(client, declared, form, job, **body):
    if form == "by_identifier":
        body.setdefault("job_identifier", {"number": job.number})
        return client.post(by_identifier_url(declared.name), body, format="json")
    return client.post(in_path_url(job, declared.name), body, format="json")


def job_for(declared, **kwargs):
    return JobFactory(life_cycle_state=declared.sources[0], **kwargs)


every_door = pytest.mark.parametrize(("declared", "form"), every_door_of_every_transition())


@every_door
def test_it_moves_the_job_and_answers_with_the_fields_asked_for(as_dispatcher, declared, form):
    job = job_for(declared)

    response = post(
        as_dispatcher, declared, form, job, fields_set="number,life_cycle_state,status.name"
    )

    assert response.status_code == 200
    assert response.json() == {
        "status": {"code": "OK", "message": "", "description": ""},
        "data": {
            "number": job.number,
            "life_cycle_state": declared.target,
            "status": {"name": getattr(job.type, declared.default_status_field).name},
        },
    }
    log = JobTransitionLog.objects.get(job=job)
    assert (log.transition, log.channel) == (declared.name, "api")


@every_door
@pytest.mark.parametrize(
    "fields_set", [None, "id,life_cycle_state", "status.name,assigned_to.user,log_information"]
)
def test_the_answer_is_the_job_as_a_fresh_read_shows_it(as_dispatcher, declared, form, fields_set):
    job = job_for(declared, type=JobTypeFactory(expires_on_start=True))
    AssignmentFactory(job=job)
    body = {"status_identifier": {"id": status_of(job.type, declared.target).pk}}
    for parameter in declared.parameters:
        body[parameter.api_name] = {"id": JobCancellationReasonFactory().pk}
    if fields_set:
        body["fields_set"] = fields_set
    answer = post(as_dispatcher, declared, form, job, **body)
    query = {"fields_set": fields_set} if fields_set else {}
    fresh = as_dispatcher.get(f"{JOBS}/{job.pk}", query)
    assert answer.status_code == 200, answer.json()
    assert answer.content == fresh.content


@every_door
def test_a_job_in_a_wrong_state_is_a_conflict_naming_its_state(
    as_dispatcher, declared, form, unchanged
):
    wrong = next(s for s in LifeCycleState.values if s not in declared.sources)
    job = JobFactory(life_cycle_state=wrong)
    unchanged()
    response = post(as_dispatcher, declared, form, job)
    assert code_of(response) == (409, "JOB_STATE_CONFLICT")
    message = response.json()["status"]["message"]
    assert wrong in message
    assert all(source in message for source in declared.sources)


@every_door
def test_a_status_of_the_wrong_state_or_type_is_not_allowed(
    as_dispatcher, declared, form, unchanged
):
    job = job_for(declared)
    wrong_state = status_of(job.type, declared.sources[0])
    other_type = status_of(JobTypeFactory(), declared.target)
    unchanged()
    for status in (wrong_state, other_type):
        response = post(as_dispatcher, declared, form, job, status_identifier={"id": status.pk})
        assert code_of(response) == (400, "STATUS_NOT_ALLOWED")


@every_door
def test_a_type_without_the_default_is_no_default_status(as_dispatcher, declared, form, unchanged):
    job = job_for(declared, type=JobTypeFactory(without_default=True))
    unchanged()
    response = post(as_dispatcher, declared, form, job)
    assert code_of(response) == (409, "NO_DEFAULT_STATUS")


@every_door
def test_an_identifier_with_two_keys_is_invalid(as_dispatcher, declared, form, unchanged):
    job = job_for(declared)
    unchanged()
    response = post(as_dispatcher, declared, form, job, status_identifier={"id": 1, "name": "x"})
    assert code_of(response) == (400, "INVALID_IDENTIFIER")
    if form == "by_identifier":
        response = post(
            as_dispatcher, declared, form, job, job_identifier={"id": job.pk, "number": job.number}
        )
        assert code_of(response) == (400, "INVALID_IDENTIFIER")


@every_door
def test_a_viewer_is_refused(api, viewer, token_for, declared, form, unchanged):
    job = job_for(declared)
    unchanged()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(viewer)}")
    assert code_of(post(api, declared, form, job)) == (403, "PERMISSION_DENIED")


@every_door
def test_a_request_takes_a_fixed_number_of_queries(as_dispatcher, declared, form):
    job = job_for(declared)
    status = status_of(job.type, declared.target)
    with count_queries() as queries:
        response = post(as_dispatcher, declared, form, job, status_identifier={"id": status.pk})
    assert response.json()["data"]["life_cycle_state"] == declared.target
    # the user with its permissions and its token's release 1, lock 1 (which reads the status
    # asked for and what the answer shows), then the writes
    assert len(queries) == 2 + WRITES, queries.sql


def test_a_technician_may_complete_but_not_cancel(api, technician, token_for, unchanged):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(technician)}")
    working = JobFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)
    pending = JobFactory()
    assert code_of(post(api, TRANSITIONS["complete"], "in_path", working)) == (200, "OK")
    unchanged()
    assert code_of(post(api, CANCEL, "in_path", pending)) == (403, "PERMISSION_DENIED")


def test_cancel_records_the_reason_asked_for_and_answers_with_it(as_dispatcher):
    job = JobFactory()
    reason = JobCancellationReasonFactory(name="No access", alternative_code="NO_ACCESS")

    response = post(
        as_dispatcher,
        CANCEL,
        "by_identifier",
        job,
        cancellation_reason_identifier={"alternative_code": "NO_ACCESS"},
        fields_set="cancellation_reason,life_cycle_state",
    )

    assert response.json()["data"] == {
        "life_cycle_state": "CANCELLED",
        "cancellation_reason": {
            "id": reason.pk,
            "name": "No access",
            "alternative_code": "NO_ACCESS",
            "description": "",
        },
    }
    assert JobTransitionLog.objects.get(job=job).cancellation_reason == reason


def test_cancel_with_an_unknown_reason_is_cancellation_reason_not_found(as_dispatcher, unchanged):
    job = JobFactory()
    unchanged()
    response = post(
        as_dispatcher, CANCEL, "in_path", job, cancellation_reason_identifier={"name": "Nope"}
    )
    assert code_of(response) == (400, "CANCELLATION_REASON_NOT_FOUND")


def test_completing_answers_with_both_actual_dates(as_dispatcher):
    job = JobFactory()
    post(as_dispatcher, TRANSITIONS["start_progress"], "in_path", job)
    data = post(
        as_dispatcher,
        TRANSITIONS["complete"],
        "in_path",
        job,
        fields_set=["actual_start_date", "actual_completed_date"],
    ).json()["data"]
    assert data["actual_start_date"] < data["actual_completed_date"]
    assert Job.objects.get(pk=job.pk).life_cycle_state == "COMPLETED"


# --- GET jobs/configuration/statuses/list ---------------------------------------------------------


@pytest.fixture
def repair():
    job_type = JobTypeFactory(name="Repair", alternative_code="REPAIR")
    job_type.allowed_statuses.add(JobStatusFactory(name="On site", alternative_code="ONSITE"))
    return job_type


@pytest.mark.parametrize("identifier", ["alternative_code=REPAIR", "name=Repair", "id={pk}"])
def test_the_look_up_lists_the_statuses_a_type_allows_with_its_defaults(
    as_dispatcher, repair, identifier
):
    response = as_dispatcher.get(STATUSES, {"job_type_identifier": identifier.format(pk=repair.pk)})

    assert code_of(response) == (200, "OK")
    entries = response.json()["data"]
    assert {e["status"]["alternative_code"] for e in entries} == set(
        repair.allowed_statuses.values_list("alternative_code", flat=True)
    )
    defaults = {e["status"]["id"] for e in entries if e["default"]}
    assert defaults == {getattr(repair, t.default_status_field).pk for t in TRANSITIONS.values()}
    assert set(entries[0]) == {"id", "default", "status"}


def test_the_look_up_takes_crm_coms_query_form_and_a_state(as_dispatcher, repair):
    # CRM.COM writes the identifier inside the query string: job_type_identifier=alternative_code=…
    response = as_dispatcher.get(
        f"{STATUSES}?job_type_identifier=alternative_code=REPAIR&life_cycle_state=IN_PROGRESS"
    )
    entries = response.json()["data"]
    assert sorted((e["status"]["alternative_code"], e["default"]) for e in entries) == [
        ("ONSITE", False),
        ("REPAIR-IN_PROGRESS", True),
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", (400, "MANDATORY_PARAMETER_MISSING")),
        ("job_type_identifier=", (400, "MANDATORY_PARAMETER_MISSING")),
        ("job_type_identifier=REPAIR", (400, "INVALID_IDENTIFIER")),
        ("job_type_identifier=code=REPAIR", (400, "INVALID_IDENTIFIER")),
        ("job_type_identifier=id=abc", (400, "INVALID_IDENTIFIER")),
        ("job_type_identifier=alternative_code=NOPE", (400, "JOB_TYPE_NOT_FOUND")),
        ("job_type_identifier=id=99999999999999999999", (400, "JOB_TYPE_NOT_FOUND")),
        ("job_type_identifier=name=Repair&life_cycle_state=DONE", (400, "INVALID_PARAMETER")),
    ],
)
def test_the_look_up_answers_bad_input_with_the_contracts_codes(
    as_dispatcher, repair, query, expected
):
    assert code_of(as_dispatcher.get(f"{STATUSES}?{query}")) == expected


def test_the_look_up_needs_a_token_and_the_view_permission(api, repair, token_for):
    from tests.factories import UserFactory

    query = f"{STATUSES}?job_type_identifier=alternative_code=REPAIR"
    assert code_of(api.get(query)) == (401, "AUTHENTICATION_FAILED")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(UserFactory())}")
    assert code_of(api.get(query)) == (403, "PERMISSION_DENIED")


# --- start progress through the API, case by case -------------------------------------------------


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
        "owned_by_group",
        "notes",
        "external_reference",
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

    monkeypatch.setattr("jobs.api.transitions.job_transition", explode)
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

    monkeypatch.setattr("jobs.api.transitions.job_transition", spy)
    job = JobFactory()
    as_dispatcher.post(by_path(job), {}, format="json")
    assert calls[0]["job"] == {"id": job.pk}
    assert calls[0]["channel"] == "api"
    assert Job.objects.get(pk=job.pk).life_cycle_state == LifeCycleState.IN_PROGRESS
