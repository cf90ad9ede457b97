"""The admin's actions and job-page buttons for every declared transition."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from jobs.admin_transitions import NAMED_ON_PAGE
from jobs.models import Job, JobTransitionLog, LifeCycleState
from jobs.transitions import CANCEL, COMPLETE, TRANSITIONS
from tests.factories import (
    JobCancellationReasonFactory,
    JobFactory,
    JobTypeFactory,
    bulk_pending_jobs,
)
from tests.helpers import BATCH_WRITES, count_queries

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:jobs_job_changelist")
every_transition = pytest.mark.parametrize("declared", TRANSITIONS.values(), ids=TRANSITIONS)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def run_action(client, declared, jobs, url=CHANGELIST, **extra):
    data = {
        "action": f"{declared.name}_action",
        "_selected_action": [j.pk for j in jobs],
        **extra,
    }
    return client.post(url, data, follow="confirm" in extra)


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def button_ids(client, job) -> set[str]:
    page = client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    return {
        declared.name
        for declared in TRANSITIONS.values()
        if f'id="{declared.name.replace("_", "-")}-button"' in page
    }


def test_each_action_is_offered_to_the_users_with_its_permission(dispatcher, technician):
    JobFactory()

    def offered(user):
        form = logged_in(user).get(CHANGELIST).context["action_form"]
        return {name for name, _ in form.fields["action"].choices if name.endswith("_action")}

    assert offered(dispatcher) == {
        "submit_action",
        "start_progress_action",
        "complete_action",
        "cancel_action",
    }
    assert offered(technician) == {"start_progress_action", "complete_action"}


@every_transition
def test_confirming_moves_the_eligible_jobs_and_reports_the_rest(dispatcher, declared):
    eligible = JobFactory.create_batch(2, life_cycle_state=declared.sources[-1])
    wrong = JobFactory(
        life_cycle_state=next(s for s in LifeCycleState if s not in declared.sources)
    )

    response = run_action(
        logged_in(dispatcher), declared, [*eligible, wrong], confirm="1", status=""
    )

    assert messages_of(response) == [
        ("success", f"2 jobs {declared.past}."),
        ("warning", f"1 skipped: {wrong.number} ({declared.not_allowed_label})"),
    ]
    assert {Job.objects.get(pk=j.pk).life_cycle_state for j in eligible} == {declared.target}
    assert set(JobTransitionLog.objects.values_list("transition", "channel")) == {
        (declared.name, "admin")
    }


def test_the_cancel_action_offers_the_reasons_and_records_the_one_chosen(dispatcher):
    reason = JobCancellationReasonFactory(name="Customer request")
    job = JobFactory()
    client = logged_in(dispatcher)

    confirmation = run_action(client, CANCEL, [job])
    choices = dict(confirmation.context["form"].fields["cancellation_reason"].choices)
    assert choices == {"": "The type's default, if any", str(reason.pk): "Customer request"}

    run_action(client, CANCEL, [job], confirm="1", status="", cancellation_reason=str(reason.pk))
    job.refresh_from_db()
    assert (job.life_cycle_state, job.cancellation_reason) == ("CANCELLED", reason)


def test_the_confirmation_page_stays_small_for_a_large_selection(dispatcher):
    job_type = JobTypeFactory()
    bulk_pending_jobs(job_type, 3_000, prefix="A")
    bulk_pending_jobs(job_type, 700, prefix="C", state=LifeCycleState.COMPLETED)
    bulk_pending_jobs(job_type, 300, prefix="X", state=LifeCycleState.CANCELLED)
    page_of_ids = list(Job.objects.values_list("pk", flat=True)[:100])

    response = logged_in(dispatcher).post(
        CHANGELIST,
        {"action": "start_progress_action", "_selected_action": page_of_ids, "select_across": "1"},
    )

    preview = response.context["preview"]
    assert (preview.will_run_count, preview.skipped_count) == (3_000, 1_000)
    assert len(preview.will_run_first) == NAMED_ON_PAGE
    assert [(g.label, g.count) for g in preview.skipped.values()] == [("not pending", 1_000)]
    page = response.content.decode()
    assert "and 2980 more" in page
    assert page.count("A0") <= NAMED_ON_PAGE  # the numbers named, not 3,000 of them
    assert len(response.content) < 40_000


@every_transition
def test_a_run_takes_a_fixed_number_of_queries_per_batch_whatever_the_transition(
    dispatcher, settings, declared
):
    settings.JOBS_BULK_BATCH_SIZE = 250
    job_type = JobTypeFactory()
    client = logged_in(dispatcher)

    def queries_for(count, prefix):
        Job.objects.all().delete()
        jobs = bulk_pending_jobs(job_type, count, prefix, state=declared.sources[0])
        with count_queries() as queries:
            run_action(client, declared, jobs[:100], select_across="1", confirm="1", status="")
        assert Job.objects.filter(life_cycle_state=declared.target).count() == count
        return len(queries)

    # per batch: the next ids, the lock, then the writes
    assert queries_for(1000, "B") - queries_for(250, "A") == 3 * (2 + BATCH_WRITES)


# --- the buttons ---------------------------------------------------------------------------


def test_the_job_page_has_a_button_for_each_transition_its_state_allows(dispatcher):
    client = logged_in(dispatcher)
    assert button_ids(client, JobFactory()) == {"start_progress", "cancel"}
    assert button_ids(client, JobFactory(life_cycle_state="IN_PROGRESS")) == {"complete", "cancel"}
    assert button_ids(client, JobFactory(life_cycle_state="DRAFT")) == {"submit", "cancel"}
    assert button_ids(client, JobFactory(life_cycle_state="COMPLETED")) == set()


def test_the_buttons_are_only_those_the_user_may_run(technician, viewer):
    working = JobFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)
    assert button_ids(logged_in(technician), working) == {"complete"}
    assert button_ids(logged_in(viewer), working) == set()


def test_the_complete_button_completes_the_job_through_the_service(dispatcher):
    job = JobFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)
    url = reverse("admin:jobs_job_complete", args=[job.pk])

    response = logged_in(dispatcher).post(url, {"status": ""}, follow=True)

    assert messages_of(response) == [("success", f"Job {job.number} completed.")]
    job.refresh_from_db()
    assert job.life_cycle_state == COMPLETE.target
    assert JobTransitionLog.objects.get(job=job).channel == "admin"


def test_the_cancel_button_records_the_chosen_reason(dispatcher):
    job = JobFactory()
    reason = JobCancellationReasonFactory()
    url = reverse("admin:jobs_job_cancel", args=[job.pk])

    logged_in(dispatcher).post(url, {"status": "", "cancellation_reason": str(reason.pk)})

    job.refresh_from_db()
    assert (job.life_cycle_state, job.cancellation_reason) == ("CANCELLED", reason)


def test_a_button_without_the_permission_is_refused_as_a_message(technician, unchanged):
    job = JobFactory()
    unchanged()
    url = reverse("admin:jobs_job_cancel", args=[job.pk])
    response = logged_in(technician).post(url, {"status": ""}, follow=True)
    ((level, message),) = messages_of(response)
    assert level == "error"
    assert "jobs.cancel_job" in message
