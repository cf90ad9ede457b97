"""The admin and background runs: large selections are queued, and the *Transition runs* pages
follow and stop them."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from jobs.models import Channel, Job, LifeCycleState, RunState, TransitionRun
from jobs.services import Selection, job_transition, queue_run, runs
from jobs.transitions import CANCEL, START_PROGRESS
from jobs.visibility import sight_of
from tests.factories import JobFactory, JobTypeFactory, UserFactory, bulk_pending_jobs, queued_run
from tests.helpers import count_queries, logged_in, messages_of, run_action, states

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:jobs_job_changelist")
RUNS = reverse("admin:jobs_transitionrun_changelist")


def run_page(run: TransitionRun) -> str:
    return reverse("admin:jobs_transitionrun_change", args=[run.pk])


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.JOBS_BULK_INLINE_LIMIT = 50


def test_a_selection_above_the_limit_is_queued_and_answered_at_once(dispatcher):
    jobs = bulk_pending_jobs(JobTypeFactory(), 80)
    url = f"{CHANGELIST}?life_cycle_state__exact=PENDING"
    client = logged_in(dispatcher)

    response = run_action(client, START_PROGRESS, jobs[:10], url=url, select_across="1", confirm=1)

    run = TransitionRun.objects.get()
    assert (run.state, run.transition, run.channel) == ("QUEUED", "start_progress", "admin")
    assert run.selection == {"filter": {"life_cycle_state": "PENDING"}, "up_to_id": jobs[-1].pk}
    assert set(states(*jobs)) == {"PENDING"}
    ((level, text),) = messages_of(response)
    assert level == "success"
    assert "started in the background" in text
    assert f'href="{run_page(run)}"' in response.content.decode()


def test_a_selection_up_to_the_limit_still_runs_in_the_request(dispatcher):
    jobs = bulk_pending_jobs(JobTypeFactory(), 50)
    url = f"{CHANGELIST}?life_cycle_state__exact=PENDING"
    run_action(
        logged_in(dispatcher), START_PROGRESS, jobs[:10], url=url, select_across="1", confirm=1
    )
    assert not TransitionRun.objects.exists()
    assert set(states(*jobs)) == {"IN_PROGRESS"}


@pytest.mark.parametrize(
    "query",
    [
        "life_cycle_state__exact=PENDING",
        "q=BK0001",
        'q="BK0002"',
        "life_cycle_state__exact=PENDING&o=-1&q=BK",
        "",
    ],
)
def test_a_queued_selection_holds_what_the_changelist_showed(dispatcher, query):
    job_type = JobTypeFactory()
    bulk_pending_jobs(job_type, 60)
    bulk_pending_jobs(job_type, 40, prefix="DN", state=LifeCycleState.COMPLETED)
    type_filter = f"type__id__exact={job_type.pk}"
    url = f"{CHANGELIST}?{type_filter}&{query}"
    client = logged_in(dispatcher)
    shown = client.get(url).context["cl"].result_count

    run_action(client, START_PROGRESS, Job.objects.all()[:5], url=url, select_across="1", confirm=1)

    if shown <= 50:
        assert not TransitionRun.objects.exists()
        return
    run = TransitionRun.objects.get()
    assert "filter" in run.selection
    assert Selection.thaw(run.selection).count(sight_of(dispatcher)) == shown


def test_a_large_selection_of_ticked_jobs_is_queued_by_their_ids(dispatcher):
    jobs = bulk_pending_jobs(JobTypeFactory(), 60)
    run_action(logged_in(dispatcher), START_PROGRESS, jobs, confirm=1)
    run = TransitionRun.objects.get()
    assert run.selection == {"ids": sorted(job.pk for job in jobs)}


def test_the_confirmation_page_says_a_large_selection_goes_to_the_background(dispatcher):
    jobs = bulk_pending_jobs(JobTypeFactory(), 60)
    page = run_action(logged_in(dispatcher), START_PROGRESS, jobs).content.decode()
    assert 'id="in-background"' in page
    assert "60 jobs" in page


def test_the_confirmation_page_takes_the_same_queries_for_any_selection(dispatcher):
    client = logged_in(dispatcher)
    job_type = JobTypeFactory()
    url = f"{CHANGELIST}?life_cycle_state__exact=PENDING"

    def queries_for(count: int, prefix: str) -> int:
        jobs = bulk_pending_jobs(job_type, count, prefix=prefix)
        with count_queries() as queries:
            run_action(client, START_PROGRESS, jobs[:3], url=url, select_across="1")
        return len(queries)

    queries_for(1, "W")  # the session and the user's permissions, read once
    assert queries_for(10, "A") == queries_for(1_000, "B")


def test_the_runs_page_lists_runs_newest_first(dispatcher, viewer):
    first = queued_run(dispatcher)
    second = queue_run(
        transition="cancel", selection=Selection.of_ids([1]), user=dispatcher, channel=Channel.API
    )
    response = logged_in(viewer).get(RUNS)
    assert list(response.context["cl"].result_list) == [second, first]


def test_a_running_runs_page_shows_its_progress_and_reloads_itself(dispatcher):
    bulk_pending_jobs(JobTypeFactory(), 30)
    bulk_pending_jobs(JobTypeFactory(without_default=True), 5, prefix="ND")
    run = queued_run(dispatcher)
    runs.plan(run.pk)
    client = logged_in(dispatcher)

    page = client.get(run_page(run)).content.decode()
    assert '<meta http-equiv="refresh"' in page
    assert 'id="stop-run"' in page
    assert "0 of 35 (0%)" in page

    runs.work(run.pk, lessee="w")
    page = client.get(run_page(run)).content.decode()
    assert '<meta http-equiv="refresh"' not in page
    assert 'id="stop-run"' not in page
    assert "<strong>30</strong> started, <strong>5</strong> skipped" in page
    assert "no default status" in page
    assert "35 of 35 (100%)" in page


def test_stop_stops_a_run_from_its_page(dispatcher):
    run = queued_run(dispatcher)
    response = logged_in(dispatcher).post(
        reverse("admin:jobs_transitionrun_stop", args=[run.pk]), follow=True
    )
    run.refresh_from_db()
    assert run.state == RunState.STOPPED
    assert messages_of(response) == [("info", f"Run {run.pk} is stopped.")]


def test_only_a_user_with_the_transitions_permission_may_stop_a_run(dispatcher, technician):
    run = queued_run(dispatcher, CANCEL.name)
    client = logged_in(technician)
    assert 'id="stop-run"' not in client.get(run_page(run)).content.decode()
    response = client.post(reverse("admin:jobs_transitionrun_stop", args=[run.pk]), follow=True)
    run.refresh_from_db()
    assert run.state == RunState.QUEUED
    assert messages_of(response)[0][0] == "error"


def test_runs_are_neither_added_nor_edited_nor_deleted_in_the_admin(dispatcher):
    run = queued_run(dispatcher)
    client = logged_in(dispatcher)
    assert client.get(reverse("admin:jobs_transitionrun_add")).status_code == 403
    assert client.get(reverse("admin:jobs_transitionrun_delete", args=[run.pk])).status_code == 403
    assert 'name="_save"' not in client.get(run_page(run)).content.decode()


def test_a_user_who_may_not_view_jobs_does_not_see_runs():
    nobody = UserFactory(is_staff=True)
    JobFactory()
    assert logged_in(nobody).get(RUNS).status_code == 403


def test_a_runs_page_speaks_a_dispatchers_words_and_names_who_stopped_it(dispatcher):
    job_type = JobTypeFactory(name="Repair")
    run = queued_run(dispatcher, life_cycle_state="PENDING", type=str(job_type.pk))
    runs.stop_run(run.pk, user=dispatcher)

    page = logged_in(dispatcher).get(run_page(run)).content.decode()

    assert f"Start progress, run {run.pk}" in page
    assert "jobs in Pending, of type Repair, as they were when the run was queued" in page
    assert "life_cycle_state" not in page
    assert "the Job method it runs" not in page
    stopped_by = re.search(r'field-stopped_by.*?<div class="readonly">(.*?)</div>', page, re.S)
    assert stopped_by.group(1).endswith(">dispatcher</a>")


def test_the_transition_log_names_each_rows_run_and_filters_by_it(dispatcher, viewer):
    moved_alone = JobFactory()
    runs_job = JobFactory()
    job_transition(transition="start_progress", job=moved_alone.pk, user=dispatcher, channel="api")
    run = queue_run(
        transition="start_progress",
        selection=Selection.of_ids([runs_job.pk]),
        user=dispatcher,
        channel=Channel.ADMIN,
    )
    runs.plan(run.pk)
    runs.work(run.pk, lessee="w")
    log = reverse("admin:jobs_jobtransitionlog_changelist")
    client = logged_in(viewer)  # who may view jobs reads their history

    by_run = client.get(f"{log}?run={run.pk}").content.decode()
    alone = client.get(f"{log}?run=none").content.decode()

    assert runs_job.number in by_run
    assert moved_alone.number not in by_run
    assert f'href="{run_page(run)}">Run {run.pk}</a>' in by_run
    assert moved_alone.number in alone
    assert runs_job.number not in alone
    run_html = logged_in(dispatcher).get(run_page(run)).content.decode()
    assert f'href="{log}?run={run.pk}">See the 1 jobs it moved</a>' in run_html


def test_a_runs_history_is_the_log_of_what_it_moved(dispatcher):
    run = queued_run(dispatcher)
    response = logged_in(dispatcher).get(reverse("admin:jobs_transitionrun_history", args=[run.pk]))
    log = reverse("admin:jobs_jobtransitionlog_changelist")
    assert (response.status_code, response["Location"]) == (302, f"{log}?run={run.pk}")
