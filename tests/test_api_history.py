"""GET jobs/{id}/history (ours): a job's transitions, newest first, for whoever may view it."""

from __future__ import annotations

import pytest

from jobs.models import Channel, LifeCycleState
from jobs.services import job_transition
from jobs.services import runs as run_service
from tests.factories import JobCancellationReasonFactory, JobFactory, UserFactory, queued_run
from tests.helpers import JOBS, code_of, count_queries

pytestmark = pytest.mark.django_db


def history_url(job) -> str:
    return f"{JOBS}/{getattr(job, 'pk', job)}/history"


def test_a_job_history_lists_its_transitions_newest_first(as_viewer, dispatcher):
    job = JobFactory(life_cycle_state=LifeCycleState.DRAFT)
    reason = JobCancellationReasonFactory()
    for name, extra in (("submit", {}), ("cancel", {"cancellation_reason": reason})):
        job_transition(
            transition=name, job=job.pk, user=dispatcher, channel=Channel.COMMAND, **extra
        )

    response = as_viewer.get(history_url(job))

    assert response.status_code == 200
    first, second = response.json()["data"]
    assert [first["transition"], second["transition"]] == ["cancel", "submit"]
    assert (first["from_state"], first["to_state"]) == ("PENDING", "CANCELLED")
    assert first["to_status"]["alternative_code"] == job.type.default_cancel_status.alternative_code
    assert first["cancellation_reason"]["id"] == reason.pk
    assert first["user"] == {"id": dispatcher.pk, "username": "dispatcher"}
    assert (first["channel"], first["run"]) == ("command", None)
    assert first["date"].endswith("Z")
    assert second["cancellation_reason"] is None
    assert response.json()["paging"] == {"total": 2, "offset": 0, "count": 2}


def test_a_job_moved_by_a_run_names_the_run(as_viewer, dispatcher):
    job = JobFactory()
    run = queued_run(dispatcher, life_cycle_state="PENDING")
    run_service.plan(run.pk)
    run_service.work(run.pk, lessee="w")
    (entry,) = as_viewer.get(history_url(job)).json()["data"]
    assert entry["run"] == {"id": run.pk}


def test_a_history_is_paged_as_the_job_list(as_viewer, dispatcher):
    job = JobFactory(life_cycle_state=LifeCycleState.DRAFT)
    for name in ("submit", "start_progress", "complete"):
        job_transition(transition=name, job=job.pk, user=dispatcher, channel=Channel.API)
    response = as_viewer.get(history_url(job), {"number_of_results": 1, "offset": 1})
    assert [e["transition"] for e in response.json()["data"]] == ["start_progress"]
    assert response.json()["paging"] == {"total": 3, "offset": 1, "count": 1}


def test_a_job_that_has_not_moved_has_an_empty_history(as_viewer):
    response = as_viewer.get(history_url(JobFactory()))
    assert response.status_code == 200
    assert response.json()["data"] == []


@pytest.mark.parametrize("job_id", ["999", "0", "99999999999999999999"])
def test_the_history_of_no_job_is_not_found(as_viewer, job_id):
    assert code_of(as_viewer.get(history_url(job_id))) == (404, "JOB_NOT_FOUND")


def test_reading_a_history_needs_view_job(api, token_for):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(UserFactory())}")
    assert code_of(api.get(history_url(JobFactory()))) == (403, "PERMISSION_DENIED")


def test_a_history_takes_the_same_queries_however_long(as_viewer, dispatcher):
    def queries_for(moves: list[str]) -> int:
        job = JobFactory(life_cycle_state=LifeCycleState.DRAFT)
        for name in moves:
            job_transition(transition=name, job=job.pk, user=dispatcher, channel=Channel.API)
        with count_queries() as queries:
            as_viewer.get(history_url(job))
        return len(queries)

    # The token's user, the job, the count, the page.
    assert queries_for(["submit"]) == queries_for(["submit", "start_progress", "complete"]) == 4
