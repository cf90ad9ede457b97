"""POST jobs/all_scopes/<transition> (CRM.COM's methods) and POST jobs/{id}/<transition>, for every
declared transition; and GET jobs/configuration/statuses/list."""

import pytest

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


# --- GET jobs/configuration/statuses/list -----------------------------------------------------


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
