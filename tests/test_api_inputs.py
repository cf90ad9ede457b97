"""Every request takes exactly what it declares: an unknown body field, a parameter of another
transition or an unknown query name is a clear 400 naming it, and nothing changes."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from jobs.models import Job, JobTransitionLog, LifeCycleState, TransitionRun
from jobs.transitions import TRANSITIONS
from tests.factories import JobCancellationReasonFactory, JobFactory, JobTypeFactory, queued_run
from tests.helpers import (
    JOBS,
    LOGIN,
    RELEASE,
    ROOT,
    by_identifier_url,
    code_of,
    every_transition,
    in_path_url,
    states,
)

pytestmark = pytest.mark.django_db

RUNS = ROOT + "transition_runs"


def refused_naming(response, name: str) -> str:
    """The answer is INVALID_PARAMETER naming `name`; returns the description."""
    assert code_of(response) == (400, "INVALID_PARAMETER")
    status = response.json()["status"]
    assert status["message"] == f"{name!r} is not a parameter of this request."
    return status["description"]


@every_transition
def test_a_transition_refuses_a_field_it_does_not_know_and_moves_nothing(
    as_dispatcher, declared, unchanged
):
    job = JobFactory(life_cycle_state=declared.sources[0])
    unchanged()
    for url, body in (
        (by_identifier_url(declared.name), {"job_identifier": {"id": job.pk}}),
        (in_path_url(job, declared.name), {}),
    ):
        response = as_dispatcher.post(url, {**body, "dry_run": True}, format="json")
        accepted = refused_naming(response, "dry_run")
        assert "status_identifier" in accepted
        assert "fields_set" in accepted


@pytest.mark.parametrize("transition", ["submit", "start_progress", "complete"])
def test_a_cancellation_reason_sent_to_another_transition_is_refused(
    as_dispatcher, transition, unchanged
):
    declared = TRANSITIONS[transition]
    job = JobFactory(life_cycle_state=declared.sources[0])
    reason = JobCancellationReasonFactory()
    unchanged()
    extra = {"cancellation_reason_identifier": {"id": reason.pk}}
    crm = as_dispatcher.post(
        by_identifier_url(transition), {"job_identifier": {"id": job.pk}, **extra}, format="json"
    )
    ours = as_dispatcher.post(in_path_url(job, transition), extra, format="json")
    for response in (crm, ours):
        refused_naming(response, "cancellation_reason_identifier")
    assert states(job) == [declared.sources[0]]


def test_cancel_still_takes_its_reason(as_dispatcher):
    job = JobFactory()
    reason = JobCancellationReasonFactory()
    response = as_dispatcher.post(
        in_path_url(job, "cancel"),
        {"cancellation_reason_identifier": {"id": reason.pk}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["data"]["cancellation_reason"]["id"] == reason.pk


def test_a_run_of_another_transition_refuses_a_cancellation_reason(as_dispatcher):
    reason = JobCancellationReasonFactory()
    response = as_dispatcher.post(
        RUNS,
        {"transition": "start_progress", "cancellation_reason_identifier": {"id": reason.pk}},
        format="json",
    )
    refused_naming(response, "cancellation_reason_identifier")
    assert not TransitionRun.objects.exists()


def test_a_run_refuses_a_field_it_does_not_know_and_queues_nothing(as_dispatcher):
    JobFactory()
    response = as_dispatcher.post(RUNS, {"transition": "cancel", "dryrun": True}, format="json")
    accepted = refused_naming(response, "dryrun")
    assert "dry_run" in accepted
    assert "cancellation_reason_identifier" in accepted
    assert not TransitionRun.objects.exists()


def test_logging_in_and_out_refuse_fields_they_do_not_know(api, dispatcher):
    login = api.post(
        LOGIN, {"username": "dispatcher", "password": "x", "remember": True}, format="json"
    )
    refused_naming(login, "remember")
    release = api.post(RELEASE, {"token": "abc", "everywhere": True}, format="json")
    refused_naming(release, "everywhere")


def test_stopping_a_run_refuses_a_body_field_it_does_not_know(as_dispatcher, dispatcher):
    run = queued_run(dispatcher)
    response = as_dispatcher.post(f"{RUNS}/{run.pk}/stop", {"force": True}, format="json")
    refused_naming(response, "force")
    run.refresh_from_db()
    assert run.state == "QUEUED"


def test_the_api_document_closes_every_request_body(tmp_path):
    path = tmp_path / "openapi.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(path))
    document = json.loads(path.read_text())
    schemas = document["components"]["schemas"]
    bodies = set()
    for item in document["paths"].values():
        for operation in item.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                bodies.add(content["schema"]["$ref"].rsplit("/", 1)[-1])
    assert "StartProgressByIdentifierInputRequest" in bodies
    for name in bodies:
        schema = schemas[name]
        variants = [v["$ref"].rsplit("/", 1)[-1] for v in schema.get("oneOf", [])]
        for closed in [schemas[v] for v in variants] or [schema]:
            assert closed["additionalProperties"] is False, name


# --- dry_run on POST transition_runs -------------------------------------------------------------


def test_a_dry_run_answers_what_a_run_would_do_and_queues_nothing(as_dispatcher, unchanged):
    job_type = JobTypeFactory(alternative_code="DRY")
    movable = [JobFactory(type=job_type) for _ in range(3)]
    JobFactory(type=job_type, life_cycle_state=LifeCycleState.COMPLETED)
    no_default = JobFactory(type=JobTypeFactory(without_default=True))
    unchanged()

    response = as_dispatcher.post(RUNS, {"transition": "cancel", "dry_run": True}, format="json")

    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["transition"], data["dry_run"], data["selected"], data["moving"]) == (
        "cancel",
        True,
        5,
        3,
    )
    assert data["moving_first"] == [job.number for job in movable]
    assert set(data["skipped"]) == {"JOB_STATE_CONFLICT", "NO_DEFAULT_STATUS"}
    assert data["skipped"]["NO_DEFAULT_STATUS"]["numbers"] == [no_default.number]
    assert data["skipped"]["JOB_STATE_CONFLICT"]["count"] == 1
    assert not TransitionRun.objects.exists()


def test_a_dry_run_is_checked_like_a_run(as_dispatcher, technician, token_for):
    refused = as_dispatcher.post(RUNS, {"transition": "cancel", "dry_run": "yes"}, format="json")
    assert code_of(refused) == (400, "INVALID_PARAMETER")
    assert "dry_run must be true or false" in refused.json()["status"]["message"]
    as_dispatcher.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(technician)}")
    not_permitted = as_dispatcher.post(
        RUNS, {"transition": "cancel", "dry_run": True}, format="json"
    )
    assert code_of(not_permitted) == (403, "PERMISSION_DENIED")


# --- query names ---------------------------------------------------------------------------------


def test_listing_jobs_with_an_unknown_filter_is_refused_listing_the_filters(as_dispatcher):
    JobFactory()
    response = as_dispatcher.get(JOBS, {"colour": "red"})
    assert code_of(response) == (400, "INVALID_PARAMETER")
    status = response.json()["status"]
    assert status["message"] == "'colour' is not a query parameter of this request."
    for name in ("life_cycle_state", "type", "status", "assigned_user", "number", "search"):
        assert name in status["description"]


def test_listing_jobs_keeps_its_known_query_names(as_dispatcher):
    job = JobFactory()
    response = as_dispatcher.get(
        JOBS,
        {
            "token": "ignored-here",
            "fields_set": "id,number",
            "number_of_results": 5,
            "offset": 0,
            "life_cycle_state": "PENDING",
            "number": job.number,
        },
    )
    assert response.status_code == 200
    assert response.json()["data"] == [{"id": job.pk, "number": job.number}]


@pytest.mark.parametrize(
    "path",
    ["jobs/{id}", "jobs/{id}/history", "transition_runs", "jobs/configuration/statuses/list"],
)
def test_every_read_refuses_a_query_name_it_does_not_know(as_dispatcher, path):
    job = JobFactory()
    response = as_dispatcher.get(ROOT + path.format(id=job.pk), {"colour": "red"})
    assert code_of(response) == (400, "INVALID_PARAMETER")
    assert "'colour'" in response.json()["status"]["message"]


def test_nothing_moves_when_a_body_is_refused(as_dispatcher):
    job = JobFactory()
    as_dispatcher.post(
        by_identifier_url("start_progress"),
        {"job_identifier": {"id": job.pk}, "statusidentifier": {"id": 1}},
        format="json",
    )
    assert Job.objects.get(pk=job.pk).life_cycle_state == LifeCycleState.PENDING
    assert not JobTransitionLog.objects.exists()
