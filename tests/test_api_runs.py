"""POST transition_runs, GET transition_runs[/{id}], POST transition_runs/{id}/stop (ours)."""

from __future__ import annotations

import pytest

from jobs.models import Channel, Event, Job, LifeCycleState, RunState, TransitionRun
from jobs.services import runs
from tests.factories import (
    JobCancellationReasonFactory,
    JobTypeFactory,
    UserFactory,
    bulk_pending_jobs,
    queued_run,
)
from tests.helpers import ROOT, code_of, count_queries

pytestmark = pytest.mark.django_db

RUNS = ROOT + "transition_runs"


def run_url(run_id, *rest: str) -> str:
    return "/".join([RUNS, str(run_id), *rest])


def test_a_run_is_queued_and_answered_with_202_at_once(as_dispatcher, dispatcher):
    job_type = JobTypeFactory()
    jobs = bulk_pending_jobs(job_type, 5)
    body = {
        "transition": "start_progress",
        "filter": {"life_cycle_state": "PENDING", "type": job_type.pk},
    }

    response = as_dispatcher.post(RUNS, body, format="json")

    assert response.status_code == 202
    data = response.json()["data"]
    run = TransitionRun.objects.get()
    assert data["id"] == run.pk
    assert (data["state"], data["transition"], data["channel"]) == (
        "QUEUED",
        "start_progress",
        "api",
    )
    assert data["selection"] == {
        "filter": {"life_cycle_state": "PENDING", "type": str(job_type.pk)},
        "up_to_id": jobs[-1].pk,
    }
    assert data["requested_by"] == {"id": dispatcher.pk, "username": "dispatcher"}
    assert Job.objects.filter(life_cycle_state=LifeCycleState.PENDING).count() == 5


def test_a_queued_run_carries_its_status_and_reason(as_dispatcher):
    reason = JobCancellationReasonFactory()
    response = as_dispatcher.post(
        RUNS,
        {
            "transition": "cancel",
            "cancellation_reason_identifier": {"alternative_code": reason.alternative_code},
        },
        format="json",
    )
    assert response.status_code == 202
    assert response.json()["data"]["choices"] == {"cancellation_reason": {"id": reason.pk}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, (400, "MANDATORY_PARAMETER_MISSING")),
        ({"transition": "explode"}, (400, "INVALID_PARAMETER")),
        ({"transition": {}}, (400, "INVALID_PARAMETER")),
        ({"transition": "start_progress", "filter": {"colour": "red"}}, (400, "INVALID_PARAMETER")),
        ({"transition": "start_progress", "filter": {"type": 0}}, (400, "INVALID_PARAMETER")),
        ({"transition": "start_progress", "filter": {"search": ""}}, (400, "INVALID_PARAMETER")),
        (
            {"transition": "start_progress", "status_identifier": {"alternative_code": "NOPE"}},
            (400, "STATUS_NOT_FOUND"),
        ),
        (
            {"transition": "cancel", "cancellation_reason_identifier": {"id": 999}},
            (400, "CANCELLATION_REASON_NOT_FOUND"),
        ),
    ],
)
def test_a_run_that_cannot_be_queued_says_why_and_writes_nothing(as_dispatcher, body, expected):
    assert code_of(as_dispatcher.post(RUNS, body, format="json")) == expected
    assert not TransitionRun.objects.exists()


def test_queueing_needs_the_transitions_permission(as_technician):
    response = as_technician.post(RUNS, {"transition": "cancel"}, format="json")
    assert code_of(response) == (403, "PERMISSION_DENIED")
    assert not TransitionRun.objects.exists()


def test_runs_are_listed_newest_first_and_paged(as_viewer, dispatcher):
    made = [queued_run(dispatcher, channel=Channel.API) for _ in range(3)]
    response = as_viewer.get(RUNS, {"number_of_results": 2})
    assert response.status_code == 200
    assert [run["id"] for run in response.json()["data"]] == [made[2].pk, made[1].pk]
    assert response.json()["paging"] == {"total": 3, "offset": 0, "count": 2}


def test_listing_runs_takes_the_same_queries_for_any_number(as_viewer, dispatcher):
    def queries_for(count: int) -> int:
        for _ in range(count):
            queued_run(dispatcher, channel=Channel.API)
        with count_queries() as queries:
            as_viewer.get(RUNS)
        return len(queries)

    assert queries_for(1) == queries_for(10)


def test_a_run_reads_its_progress_and_counts(as_viewer, dispatcher):
    bulk_pending_jobs(JobTypeFactory(), 4)
    bulk_pending_jobs(JobTypeFactory(without_default=True), 2, prefix="ND")
    run = queued_run(dispatcher, channel=Channel.API)
    runs.plan(run.pk)
    runs.work(run.pk, lessee="w")

    data = as_viewer.get(run_url(run.pk)).json()["data"]
    assert (data["state"], data["selected"], data["moved"]) == ("FINISHED", 6, 4)
    assert data["skipped"] == {"NO_DEFAULT_STATUS": {"count": 2, "numbers": ["ND00000", "ND00001"]}}
    assert data["finished_date"] is not None
    assert data["error"] is None  # null, as everywhere in the API, not ""


@pytest.mark.parametrize("run_id", ["999", "0", "99999999999999999999"])
def test_a_run_that_does_not_exist_is_not_found(as_viewer, run_id):
    assert code_of(as_viewer.get(run_url(run_id))) == (404, "TRANSITION_RUN_NOT_FOUND")


def test_stopping_a_run_answers_with_it_stopped_and_who_stopped_it(as_dispatcher, dispatcher):
    run = queued_run(UserFactory(permissions=["start_progress_job"]), channel=Channel.API)
    assert as_dispatcher.get(run_url(run.pk)).json()["data"]["stopped_by"] is None
    response = as_dispatcher.post(run_url(run.pk, "stop"))
    assert response.status_code == 200
    assert response.json()["data"]["state"] == RunState.STOPPED
    stopped_by = {"id": dispatcher.pk, "username": "dispatcher"}
    assert response.json()["data"]["stopped_by"] == stopped_by
    assert as_dispatcher.get(run_url(run.pk)).json()["data"]["stopped_by"] == stopped_by
    assert Event.objects.get(type="transition_run.finished").data["run"]["id"] == run.pk


def test_stopping_needs_the_transitions_permission(as_technician, dispatcher):
    run = queued_run(dispatcher, "cancel", channel=Channel.API)
    assert code_of(as_technician.post(run_url(run.pk, "stop"))) == (403, "PERMISSION_DENIED")
    assert code_of(as_technician.post(run_url(12345, "stop"))) == (404, "TRANSITION_RUN_NOT_FOUND")


def test_reading_runs_needs_view_job(api, token_for):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(UserFactory())}")
    assert code_of(api.get(RUNS)) == (403, "PERMISSION_DENIED")


def test_the_run_finished_event_is_in_the_feed(as_dispatcher, dispatcher):
    run = queued_run(dispatcher, channel=Channel.API)
    runs.plan(run.pk)  # nothing selected: it ends at once
    response = as_dispatcher.get(ROOT + "events", {"types": "transition_run.finished"})
    (event,) = response.json()["data"]
    assert event["data"]["run"]["state"] == "FINISHED"
