"""The admin door: every declared transition's bulk action, confirmation page and job-page button;
the job pages themselves; and start progress case by case."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from jobs.admin.transitions import NAMED_ON_PAGE
from jobs.admin.words import admin_words
from jobs.exceptions import NoDefaultStatus, StatusNotFound
from jobs.models import AllowedStatus, Job, JobTransitionLog, JobType, LifeCycleState
from jobs.transitions import CANCEL, COMPLETE, START_PROGRESS, TRANSITIONS
from tests.factories import (
    AssignmentFactory,
    JobCancellationReasonFactory,
    JobFactory,
    JobStatusFactory,
    JobTypeFactory,
    UserFactory,
    bulk_pending_jobs,
    status_of,
)
from tests.helpers import (
    BATCH_WRITES,
    count_queries,
    every_transition,
    logged_in,
    messages_of,
    run_action,
    states,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:jobs_job_changelist")


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

    counted = response.context["forecast"]
    assert (counted.moving, counted.skipped_count) == (3_000, 1_000)
    assert len(counted.moving_first) == NAMED_ON_PAGE
    assert [(s["label"], s["group"].count) for s in response.context["skipped"]] == [
        ("not pending", 1_000)
    ]
    page = response.content.decode()
    assert "and 2980 more" in page
    # The numbers named, not 3,000 of them. Whole words: a random CSRF token may hold "A0".
    assert len(re.findall(r"\bA\d{5}\b", page)) <= NAMED_ON_PAGE
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


# --- the buttons ----------------------------------------------------------------------------------


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


# --- the job pages, and start progress case by case -----------------------------------------------


def change_url(job):
    return reverse("admin:jobs_job_change", args=[job.pk])


def button_url(job):
    return reverse("admin:jobs_job_start_progress", args=[job.pk])


@pytest.fixture
def dispatchers_browser(dispatcher):
    """The admin, logged in as the dispatcher (who may run every transition)."""
    return logged_in(dispatcher)


@pytest.fixture
def viewers_browser(viewer):
    """The admin, logged in as the viewer (who may only look)."""
    return logged_in(viewer)


def test_the_changelist_takes_the_same_queries_for_a_few_rows_or_a_full_page(dispatchers_browser):
    def queries_for_page():
        with count_queries() as queries:
            assert dispatchers_browser.get(CHANGELIST).status_code == 200
        return len(queries)

    for job in JobFactory.create_batch(3):
        AssignmentFactory(job=job)
    few = queries_for_page()
    for job in JobFactory.create_batch(40):
        AssignmentFactory(job=job)
    assert queries_for_page() == few


def test_the_action_is_offered_only_to_users_who_may_start_jobs(dispatchers_browser, viewer):
    JobFactory()
    choices = dict(
        dispatchers_browser.get(CHANGELIST).context["action_form"].fields["action"].choices
    )
    assert "start_progress_action" in choices

    viewer_client = Client()
    viewer_client.force_login(viewer)
    action_form = viewer_client.get(CHANGELIST).context["action_form"]
    assert action_form is None  # the viewer has no action at all


def test_the_action_first_shows_what_will_start_and_what_will_be_skipped_and_why(
    dispatchers_browser, unchanged
):
    pending = JobFactory()
    done = JobFactory(life_cycle_state=LifeCycleState.COMPLETED)
    no_default = JobFactory(type=JobTypeFactory(without_default=True))
    unchanged()

    response = run_action(dispatchers_browser, START_PROGRESS, [pending, done, no_default])

    assert response.status_code == 200
    assert response.template_name == "admin/jobs/job/transition_confirmation.html"
    assert response.context["forecast"].moving_first == [pending.number]
    skipped = {skip["group"].numbers[0]: skip["reason"] for skip in response.context["skipped"]}
    assert skipped[done.number] == (
        f"Job {done.number} is COMPLETED; only PENDING jobs can be started."
    )
    assert "no default status" in skipped[no_default.number]
    page = response.content.decode()
    assert "Will start (1)" in page
    assert "Will be skipped (2)" in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_the_status_choice_offers_the_default_and_statuses_every_selected_type_allows(
    dispatchers_browser,
):
    first, second = JobTypeFactory(), JobTypeFactory()
    shared = JobStatusFactory(name="On site")
    first.allowed_statuses.add(shared)
    second.allowed_statuses.add(shared)
    jobs = [JobFactory(type=first), JobFactory(type=second)]

    response = run_action(dispatchers_browser, START_PROGRESS, jobs)

    choices = dict(response.context["form"].fields["status"].choices)
    assert choices == {"": "The type's default status", str(shared.pk): "On site"}


def test_confirming_starts_the_jobs_and_reports_started_and_skipped(
    dispatchers_browser, dispatcher
):
    started = JobFactory.create_batch(2)
    done = JobFactory(life_cycle_state=LifeCycleState.CANCELLED)

    response = run_action(
        dispatchers_browser, START_PROGRESS, [*started, done], confirm="1", status=""
    )

    assert response.status_code == 200
    assert messages_of(response) == [
        ("success", "2 jobs started."),
        ("warning", f"1 skipped: {done.number} (not pending)"),
    ]
    assert states(*started, done) == ["IN_PROGRESS", "IN_PROGRESS", "CANCELLED"]
    assert set(JobTransitionLog.objects.values_list("channel", "user")) == {
        ("admin", dispatcher.pk)
    }


def test_confirming_with_a_status_starts_the_jobs_in_it(dispatchers_browser):
    job = JobFactory()
    onsite = JobStatusFactory()
    job.type.allowed_statuses.add(onsite)

    run_action(dispatchers_browser, START_PROGRESS, [job], confirm="1", status=str(onsite.pk))

    job.refresh_from_db()
    assert (job.life_cycle_state, job.status) == ("IN_PROGRESS", onsite)


def test_the_skipped_message_names_the_first_few_and_counts_the_rest(dispatchers_browser):
    done = JobFactory.create_batch(7, life_cycle_state=LifeCycleState.COMPLETED)
    response = run_action(dispatchers_browser, START_PROGRESS, done, confirm="1", status="")
    ((level, message),) = messages_of(response)
    assert level == "warning"
    assert message.startswith("7 skipped: ")
    assert message.endswith(" and 2 more (not pending)")


def test_a_status_outside_the_offered_choices_is_a_form_error_not_a_500(
    dispatchers_browser, unchanged
):
    job = JobFactory()
    unchanged()
    response = run_action(dispatchers_browser, START_PROGRESS, [job], confirm="1", status="99999")
    assert response.status_code == 200
    assert response.context["form"].errors["status"]


def test_selecting_all_jobs_across_pages_starts_every_match_of_the_filter(dispatchers_browser):
    job_type = JobTypeFactory()
    jobs = bulk_pending_jobs(job_type, 150)  # more than one changelist page (100)
    draft = JobFactory(type=job_type, life_cycle_state=LifeCycleState.DRAFT)
    url = f"{CHANGELIST}?life_cycle_state__exact=PENDING"

    confirmation = run_action(
        dispatchers_browser, START_PROGRESS, jobs[:100], url=url, select_across="1"
    )
    assert confirmation.context["forecast"].moving == 150
    response = run_action(
        dispatchers_browser,
        START_PROGRESS,
        jobs[:100],
        url=url,
        select_across="1",
        confirm="1",
        status="",
    )

    assert ("success", "150 jobs started.") in messages_of(response)
    assert Job.objects.filter(life_cycle_state=LifeCycleState.IN_PROGRESS).count() == 150
    assert states(draft) == ["DRAFT"]


@pytest.mark.parametrize("step", ["confirmation", "run"])
def test_a_thousand_selected_jobs_take_a_fixed_number_of_queries_per_batch(
    dispatchers_browser, settings, step
):
    settings.JOBS_BULK_BATCH_SIZE = 250
    job_type = JobTypeFactory()
    url = f"{CHANGELIST}?life_cycle_state__exact=PENDING"
    extra = {"confirm": "1", "status": ""} if step == "run" else {}

    def queries_for(count, prefix):
        Job.objects.filter(life_cycle_state=LifeCycleState.PENDING).delete()
        jobs = bulk_pending_jobs(job_type, count, prefix)
        with count_queries() as queries:
            run_action(
                dispatchers_browser, START_PROGRESS, jobs[:100], url=url, select_across="1", **extra
            )
        return len(queries)

    one_batch, four_batches = queries_for(250, "A"), queries_for(1000, "B")

    # The confirmation counts in SQL, whatever the size; a run takes the next ids, the lock and
    # the writes per batch.
    per_batch = 0 if step == "confirmation" else 2 + BATCH_WRITES
    assert four_batches - one_batch == 3 * per_batch


def test_a_pending_jobs_page_has_the_button_for_a_dispatcher(dispatchers_browser):
    job = JobFactory()
    page = dispatchers_browser.get(change_url(job)).content.decode()
    assert 'id="start-progress-button"' in page
    assert f'action="{button_url(job)}"' in page


def test_the_button_is_absent_for_other_states_and_for_viewers(dispatchers_browser, viewer):
    started = JobFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)
    assert (
        "start-progress-button" not in dispatchers_browser.get(change_url(started)).content.decode()
    )

    pending = JobFactory()
    viewer_client = Client()
    viewer_client.force_login(viewer)
    assert "start-progress-button" not in viewer_client.get(change_url(pending)).content.decode()


def test_the_button_starts_the_job_through_the_service(dispatchers_browser, dispatcher):
    job = JobFactory()

    response = dispatchers_browser.post(button_url(job), {"status": ""}, follow=True)

    assert messages_of(response) == [("success", f"Job {job.number} started.")]
    assert states(job) == ["IN_PROGRESS"]
    log = JobTransitionLog.objects.get(job=job)
    assert (log.channel, log.user) == ("admin", dispatcher)
    assert "start-progress-button" not in response.content.decode()


def test_the_button_reports_a_refusal_as_a_message(dispatchers_browser, unchanged):
    job = JobFactory(type=JobTypeFactory(without_default=True))
    unchanged()
    response = dispatchers_browser.post(button_url(job), {"status": ""}, follow=True)
    ((level, message),) = messages_of(response)
    assert level == "error"
    assert "no default status" in message


def test_the_button_only_answers_post(dispatchers_browser):
    assert dispatchers_browser.get(button_url(JobFactory())).status_code == 405


def test_a_post_without_the_csrf_token_is_refused(dispatcher, unchanged):
    job = JobFactory()
    unchanged()
    client = Client(enforce_csrf_checks=True)
    client.force_login(dispatcher)
    assert client.post(button_url(job), {"status": ""}).status_code == 403
    response = client.post(
        CHANGELIST,
        {"action": "start_progress_action", "_selected_action": [job.pk], "confirm": "1"},
    )
    assert response.status_code == 403


@pytest.fixture
def as_admin(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


# The job type page's own fields, for a new type with no defaults.
NEW_TYPE = {
    "name": "Install",
    "alternative_code": "INST",
    "description": "",
    "fulfillment_scope": "GENERIC_PURPOSE",
    "expiration_settings": "NONE",
    "expiration_days": "",
}


def sequence(*statuses, prefix: str = "sequence") -> dict[str, object]:
    """The type page's inline of allowed statuses, as the browser posts it: each status with its
    position in the sequence."""
    data: dict[str, object] = {
        f"{prefix}-TOTAL_FORMS": len(statuses),
        f"{prefix}-INITIAL_FORMS": 0,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }
    for index, (status, position) in enumerate(statuses):
        data[f"{prefix}-{index}-status"] = status.pk
        data[f"{prefix}-{index}-position"] = position
    return data


def test_a_types_default_start_status_must_be_in_progress_and_allowed(as_admin):
    working = JobStatusFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)
    other = JobStatusFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)
    add = reverse("admin:jobs_jobtype_add")
    base = NEW_TYPE

    form = as_admin.get(add).context["adminform"].form
    assert set(form.fields["default_start_status"].queryset) == {working, other}

    refused = as_admin.post(
        add, {**base, **sequence((working, 0)), "default_start_status": other.pk}
    )
    assert refused.status_code == 200
    assert "must be an allowed status" in str(
        refused.context["inline_admin_formsets"][0].formset.non_form_errors()
    )
    assert not JobType.objects.filter(alternative_code="INST").exists()

    accepted = as_admin.post(
        add, {**base, **sequence((working, 0)), "default_start_status": working.pk}
    )
    assert accepted.status_code == 302
    assert list(JobType.objects.get(alternative_code="INST").allowed_statuses.all()) == [working]


def test_a_types_statuses_are_kept_in_the_sequence_the_admin_gives(as_admin):
    first = JobStatusFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)
    later = JobStatusFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)
    as_admin.post(
        reverse("admin:jobs_jobtype_add"),
        {**NEW_TYPE, **sequence((later, 2), (first, 1))},
    )
    entries = AllowedStatus.objects.filter(job_type__alternative_code="INST")
    assert [(entry.status, entry.position) for entry in entries] == [(first, 1), (later, 2)]


@pytest.mark.parametrize(
    "model",
    [
        "jobstatus",
        "jobtype",
        "jobcancellationreason",
        "job",
        "assignment",
        "jobtransitionlog",
        "event",
    ],
)
def test_every_model_has_an_admin_page(as_admin, model):
    JobFactory()
    assert as_admin.get(reverse(f"admin:jobs_{model}_changelist")).status_code == 200


# --- what the admin says and offers --------------------------------------------------------------


def test_the_confirmation_page_counts_for_the_status_chosen_on_it(dispatcher):
    with_default, without = JobTypeFactory(), JobTypeFactory(with_default=False)
    shared = status_of(with_default, "IN_PROGRESS")
    without.allowed_statuses.add(shared)
    jobs = [JobFactory(type=with_default), JobFactory(type=without)]
    client = logged_in(dispatcher)

    by_default = run_action(client, START_PROGRESS, jobs).context["forecast"]
    assert (by_default.moving, by_default.skipped_count) == (1, 1)
    recounted = run_action(client, START_PROGRESS, jobs, recount="1", status=str(shared.pk))
    assert (
        recounted.context["forecast"].moving,
        recounted.context["forecast"].skipped_count,
    ) == (2, 0)
    assert "Start 2 jobs" in recounted.content.decode()
    assert states(*jobs) == ["PENDING", "PENDING"]  # counting moves nothing

    run_action(client, START_PROGRESS, jobs, confirm="1", status=str(shared.pk))
    assert states(*jobs) == ["IN_PROGRESS", "IN_PROGRESS"]


def test_a_selection_that_only_a_chosen_status_can_move_still_offers_the_choice(dispatcher):
    job_type = JobTypeFactory(with_default=False)
    job = JobFactory(type=job_type)
    page = run_action(logged_in(dispatcher), START_PROGRESS, [job])
    assert page.context["forecast"].moving == 0
    assert 'name="status"' in page.content.decode()


def test_a_button_offers_only_the_choices_that_can_work_for_the_jobs_type(dispatcher):
    job = JobFactory(type=JobTypeFactory(with_default=False))
    page = logged_in(dispatcher).get(reverse("admin:jobs_job_change", args=[job.pk]))
    (start,) = [b for b in page.context["transition_buttons"] if b["id"] == "start-progress"]
    assert [label for _, label in start["statuses"]] == [status_of(job.type, "IN_PROGRESS").name]
    with_default = JobFactory()
    page = logged_in(dispatcher).get(reverse("admin:jobs_job_change", args=[with_default.pk]))
    (start,) = [b for b in page.context["transition_buttons"] if b["id"] == "start-progress"]
    assert start["statuses"][0] == ("", "The type's default status")


def test_a_refusal_in_the_admin_names_the_pages_fields_not_the_apis():
    refusal = NoDefaultStatus(type="Site survey", field="default_submit_status", choice="status")
    assert admin_words(refusal) == (
        "Job type Site survey has no default status on submit. "
        "Choose a status, or set the type's default status on submit."
    )
    gone = StatusNotFound(choice="status")
    assert admin_words(gone) == "The status chosen no longer exists. Choose another."


def test_jobs_are_not_deleted_in_bulk_from_the_changelist(db):
    superuser = UserFactory(is_staff=True, is_superuser=True)
    JobFactory()
    form = logged_in(superuser).get(reverse("admin:jobs_job_changelist")).context["action_form"]
    assert "delete_selected" not in {name for name, _ in form.fields["action"].choices}


def test_the_admin_names_the_product_not_django(dispatcher):
    page = logged_in(dispatcher).get(reverse("admin:index")).content.decode()
    assert "Jobs administration" in page
    assert "Django administration" not in page
    assert "<title>Jobs, their types and what happened to them | Jobs admin</title>" in page


def test_a_jobs_history_link_leads_to_its_transitions(dispatcher):
    job = JobFactory()
    response = logged_in(dispatcher).get(reverse("admin:jobs_job_history", args=[job.pk]))
    log = reverse("admin:jobs_jobtransitionlog_changelist")
    assert response.status_code == 302
    assert response["Location"] == f"{log}?job__id__exact={job.pk}"
