"""Who sees and moves which job (jobs.visibility), door by door: a job one does not see answers
as one that does not exist, a job one sees but may not move is PERMISSION_DENIED, and every list,
count, run and event holds only what one sees."""

import json
import random

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from jobs.metrics import ACCESS_REFUSALS
from jobs.models import Event, Job, JobTransitionLog, LifeCycleState, TransitionRun
from jobs.services import Selection, job_transition, queue_run, runs
from jobs.services import engine as service_engine
from jobs.transitions import TRANSITIONS
from tests.factories import AssignmentFactory, GroupFactory, JobFactory, UserFactory, queued_run
from tests.helpers import (
    JOBS,
    ROOT,
    by_identifier_url,
    changelist_url,
    code_of,
    count_queries,
    in_path_url,
    logged_in,
    messages_of,
    run_action,
    run_command,
)

START = TRANSITIONS["start_progress"]
DISPATCHING = ["view_job", "submit_job", "start_progress_job", "complete_job", "cancel_job"]
RUNS = ROOT + "transition_runs"
EVENTS = ROOT + "events"


class Quiet:
    """A task engine that sends nothing: the tests carry runs out themselves."""

    def announce_events(self) -> None:
        pass

    def plan_run(self, run_id: int) -> None:
        pass

    def work_on_run(self, run_id: int, copies: int) -> None:
        pass


@pytest.fixture(autouse=True)
def quiet_engine(monkeypatch):
    monkeypatch.setattr(service_engine, "_plugged", Quiet())


@pytest.fixture
def north(db):
    return GroupFactory(name="North field team")


@pytest.fixture
def south(db):
    return GroupFactory(name="South field team")


@pytest.fixture
def north_dispatcher(north):
    return UserFactory(
        username="north-dispatcher", is_staff=True, groups=[north], permissions=DISPATCHING
    )


@pytest.fixture
def jobs(north, south, north_dispatcher):
    """What the North dispatcher sees (their unit's own, one assigned to their unit, one assigned
    to them) and what they do not (the South's, one no unit owns)."""
    seen = {
        "owned": JobFactory(owned_by_group=north),
        "assigned to the unit": JobFactory(owned_by_group=south),
        "assigned to the user": JobFactory(owned_by_group=south),
    }
    AssignmentFactory(job=seen["assigned to the unit"], unit=north, user=None)
    AssignmentFactory(job=seen["assigned to the user"], unit=None, user=north_dispatcher)
    unseen = {"south": JobFactory(owned_by_group=south), "nobody's": JobFactory()}
    AssignmentFactory(job=unseen["south"], unit=south, user=None)
    return seen, unseen


@pytest.fixture
def as_north(api, north_dispatcher, token_for):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(north_dispatcher)}")
    return api


def ids(jobs) -> set[int]:
    return {job.pk for job in jobs}


# --- the API -----------------------------------------------------------------------------------


def test_a_user_sees_their_units_jobs_and_those_assigned_to_their_unit_or_to_them(as_north, jobs):
    seen, _ = jobs
    body = as_north.get(JOBS, {"fields_set": "id,owned_by_group.name"}).json()

    assert {job["id"] for job in body["data"]} == ids(seen.values())
    assert body["paging"]["total"] == 3
    owned = next(job for job in body["data"] if job["id"] == seen["owned"].pk)
    assert owned["owned_by_group"] == {"name": "North field team"}


def test_view_all_users_and_superusers_see_every_job(api, token_for, jobs):
    view_all = UserFactory(permissions=["view_job", "view_all_jobs"])
    through_a_group = UserFactory(groups=[Group.objects.create(name="Head office")])
    through_a_group.groups.get().permissions.add(
        *view_all.user_permissions.all()  # the same two permissions, held through the group
    )
    superuser = UserFactory(is_superuser=True)
    for user in (view_all, through_a_group, superuser):
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
        assert api.get(JOBS).json()["paging"]["total"] == Job.objects.count() == 5


def test_an_unseen_job_answers_exactly_as_one_that_does_not_exist(as_north, jobs, unchanged):
    _, unseen = jobs
    south = unseen["south"]
    missing_id = Job.objects.order_by("-pk").first().pk + 1000
    unchanged()

    def answers(job_id: int, number: str) -> list[tuple[int, dict]]:
        calls = [
            lambda: as_north.get(f"{JOBS}/{job_id}"),
            lambda: as_north.get(f"{JOBS}/{job_id}/history"),
            lambda: as_north.post(f"{JOBS}/{job_id}/start_progress", {}, format="json"),
            lambda: as_north.post(
                by_identifier_url("cancel"), {"job_identifier": {"id": job_id}}, format="json"
            ),
            lambda: as_north.post(
                by_identifier_url("start_progress"),
                {"job_identifier": {"number": number}},
                format="json",
            ),
        ]
        return [(r.status_code, r.json()) for r in (call() for call in calls)]

    assert answers(south.pk, south.number) == answers(missing_id, "JB99999999")
    assert {code for code, _ in answers(south.pk, south.number)} == {404}


def test_an_unseen_job_costs_the_same_queries_as_a_missing_one(as_north, jobs):
    _, unseen = jobs
    with count_queries() as for_unseen:
        as_north.post(in_path_url(unseen["south"], "start_progress"), {}, format="json")
    with count_queries() as for_missing:
        as_north.post(f"{JOBS}/99999999/start_progress", {}, format="json")
    assert len(for_unseen) == len(for_missing) == 2  # the user (with groups), the lock


def test_a_seen_job_the_user_may_not_move_is_permission_denied(api, token_for, north, jobs):
    seen, _ = jobs
    technician = UserFactory(groups=[north], permissions=["view_job", "start_progress_job"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(technician)}")

    response = api.post(in_path_url(seen["owned"], "cancel"), {}, format="json")

    assert code_of(response) == (403, "PERMISSION_DENIED")
    moved = api.post(in_path_url(seen["owned"], "start_progress"), {}, format="json")
    assert moved.json()["data"]["life_cycle_state"] == "IN_PROGRESS"


@pytest.mark.parametrize("fields_set", [None, "id,life_cycle_state"])
def test_a_scoped_start_takes_the_queries_of_a_view_all_one(
    as_north, dispatcher, token_for, api, jobs, fields_set
):
    seen, _ = jobs
    view_all_job = JobFactory()
    extra = {"fields_set": fields_set} if fields_set else {}

    with count_queries() as scoped:
        response = as_north.post(in_path_url(seen["owned"], "start_progress"), extra, format="json")
    assert response.status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(dispatcher)}")
    with count_queries() as everything:
        response = api.post(in_path_url(view_all_job, "start_progress"), extra, format="json")
    assert response.status_code == 200
    assert len(scoped) == len(everything)


def test_a_scoped_page_of_jobs_takes_the_queries_of_a_view_all_one(
    as_north, api, dispatcher, token_for, jobs
):
    with count_queries() as scoped:
        assert as_north.get(JOBS).status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(dispatcher)}")
    with count_queries() as everything:
        assert api.get(JOBS).status_code == 200
    assert len(scoped) == len(everything) == 3


def test_the_owner_is_a_field_of_the_answer_and_of_fields_set(as_north, jobs):
    seen, _ = jobs
    job = seen["owned"]
    full = as_north.post(in_path_url(job, "start_progress"), {}, format="json").json()["data"]
    assert full["owned_by_group"] == {"id": job.owned_by_group_id, "name": "North field team"}
    nobody = JobFactory()
    AssignmentFactory(job=nobody, unit=job.owned_by_group, user=None)
    sparse = as_north.get(f"{JOBS}/{nobody.pk}", {"fields_set": "owned_by_group"}).json()
    assert sparse["data"] == {"owned_by_group": None}


def test_jobs_filter_by_their_owner(as_north, jobs, north):
    seen, _ = jobs
    body = as_north.get(JOBS, {"owned_by_group": north.pk, "fields_set": "id"}).json()
    assert [job["id"] for job in body["data"]] == [seen["owned"].pk]


def test_refusals_are_counted_by_door_and_logged_without_the_jobs_content(
    as_north, north_dispatcher, jobs, caplog
):
    _, unseen = jobs
    south = unseen["south"]
    before = ACCESS_REFUSALS.labels("api", "JOB_NOT_FOUND")._value.get()

    as_north.post(in_path_url(south, "start_progress"), {}, format="json")

    assert ACCESS_REFUSALS.labels("api", "JOB_NOT_FOUND")._value.get() == before + 1
    (line,) = [r for r in caplog.records if r.name == "jobs.access"]
    assert (line.door, line.reason, line.target) == ("api", "JOB_NOT_FOUND", f"job {south.pk}")
    assert line.user_id == north_dispatcher.pk
    logged = json.dumps(line.__dict__, default=str)
    assert south.description not in logged
    assert south.number not in logged


# --- runs and events ---------------------------------------------------------------------------


def carry_out(run: TransitionRun) -> TransitionRun:
    runs.plan(run.pk)
    runs.work(run.pk, lessee="worker-1")
    run.refresh_from_db()
    return run


def test_a_run_selects_counts_and_moves_only_what_its_requester_sees(north_dispatcher, jobs):
    seen, unseen = jobs
    run = carry_out(queued_run(north_dispatcher, life_cycle_state="PENDING"))

    assert (run.selected, run.moved, run.skipped) == (3, 3, {})
    moved = set(JobTransitionLog.objects.filter(run=run).values_list("job_id", flat=True))
    assert moved == ids(seen.values())
    assert {j.life_cycle_state for j in Job.objects.filter(pk__in=ids(unseen.values()))} == {
        "PENDING"
    }


def test_a_job_handed_away_before_its_batch_is_left_alone_and_counted_as_not_found(
    north_dispatcher, south, jobs
):
    seen, _ = jobs
    run = queue_run(
        transition="start_progress",
        selection=Selection.of_ids(ids(seen.values())),
        user=north_dispatcher,
        channel="admin",
    )
    runs.plan(run.pk)
    Job.objects.filter(pk=seen["owned"].pk).update(owned_by_group=south)  # handed to the South

    runs.work(run.pk, lessee="worker-1")
    run.refresh_from_db()

    assert (run.selected, run.moved) == (3, 2)
    assert run.skipped == {"JOB_NOT_FOUND": {"count": 1, "numbers": []}}  # never its number
    assert Job.objects.get(pk=seen["owned"].pk).life_cycle_state == "PENDING"


def test_a_dry_run_counts_only_what_the_requester_sees(as_north, jobs):
    body = as_north.post(
        RUNS,
        {
            "transition": "start_progress",
            "filter": {"life_cycle_state": "PENDING"},
            "dry_run": True,
        },
        format="json",
    ).json()["data"]
    assert (body["selected"], body["moving"]) == (3, 3)


def test_a_user_reads_their_own_runs_and_view_all_users_every_run(
    as_north, north_dispatcher, dispatcher, api, token_for, jobs
):
    own = queued_run(north_dispatcher, life_cycle_state="PENDING")
    other = queued_run(dispatcher, life_cycle_state="PENDING")

    assert [run["id"] for run in as_north.get(RUNS).json()["data"]] == [own.pk]
    assert code_of(as_north.get(f"{RUNS}/{other.pk}")) == (404, "TRANSITION_RUN_NOT_FOUND")
    assert code_of(as_north.post(f"{RUNS}/{other.pk}/stop", {}, format="json")) == (
        404,
        "TRANSITION_RUN_NOT_FOUND",
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(dispatcher)}")
    assert {run["id"] for run in api.get(RUNS).json()["data"]} == {own.pk, other.pk}


def test_the_feed_holds_the_events_of_jobs_seen_now_and_of_ones_own_runs(
    as_north, north_dispatcher, dispatcher, south, jobs
):
    seen, unseen = jobs
    for job in [*seen.values(), *unseen.values()]:
        job_transition(transition="start_progress", job=job, user=dispatcher, channel="api")
    own_run = carry_out(queued_run(north_dispatcher, life_cycle_state="PENDING"))
    carry_out(queued_run(dispatcher, life_cycle_state="PENDING"))  # someone else's run

    def feed() -> list[tuple[str, int | None]]:
        events = as_north.get(EVENTS).json()["data"]
        return [
            (e["type"], e["data"]["job"]["id"] if "job" in e["data"] else e["data"]["run"]["id"])
            for e in events
        ]

    assert sorted(feed(), key=str) == sorted(
        [
            *(("job.started", job.pk) for job in seen.values()),
            ("transition_run.finished", own_run.pk),
        ],
        key=str,
    )
    Job.objects.filter(pk=seen["owned"].pk).update(owned_by_group=south)  # handed away
    assert ("job.started", seen["owned"].pk) not in feed()


def test_events_written_before_the_upgrade_name_their_job_and_run(dispatcher, jobs):
    seen, _ = jobs
    job_transition(transition="start_progress", job=seen["owned"], user=dispatcher, channel="api")
    event = Event.objects.get()
    assert (event.job_id, event.run_id) == (seen["owned"].pk, None)


# --- the admin ---------------------------------------------------------------------------------


def test_the_admin_lists_and_counts_only_the_jobs_one_sees(north_dispatcher, jobs):
    seen, _ = jobs
    page = logged_in(north_dispatcher).get(changelist_url())
    assert ids(page.context["cl"].result_list) == ids(seen.values())
    assert page.context["cl"].full_result_count == 3


def test_a_scoped_admin_list_takes_the_queries_of_a_view_all_one(
    north_dispatcher, dispatcher, jobs
):
    scoped, everything = logged_in(north_dispatcher), logged_in(dispatcher)
    with count_queries() as for_scoped:
        assert scoped.get(changelist_url()).status_code == 200
    with count_queries() as for_everything:
        assert everything.get(changelist_url()).status_code == 200
    assert len(for_scoped) == len(for_everything)


def test_the_admin_page_of_an_unseen_job_is_not_found_like_a_missing_one(north_dispatcher, jobs):
    _, unseen = jobs

    def answers(job_id: int) -> list:
        browser = logged_in(north_dispatcher)
        page = browser.get(reverse("admin:jobs_job_change", args=[job_id]), follow=True)
        button = browser.post(reverse("admin:jobs_job_start_progress", args=[job_id]))
        said = messages_of(page) + messages_of(button)
        return [
            page.redirect_chain,
            button.status_code,
            [m.replace(str(job_id), "N") for _, m in said],
        ]

    assert answers(unseen["south"].pk) == answers(99999999)
    assert answers(99999999)[0] == [(reverse("admin:index"), 302)]
    assert Job.objects.get(pk=unseen["south"].pk).life_cycle_state == "PENDING"


def test_select_all_in_the_admin_moves_only_the_jobs_one_sees(north_dispatcher, jobs):
    seen, _ = jobs
    browser = logged_in(north_dispatcher)
    every = Job.objects.all()

    run_action(browser, START, every, select_across="1", confirm="1", status="")

    moved = Job.objects.filter(life_cycle_state="IN_PROGRESS")
    assert ids(moved) == ids(seen.values())


def test_the_admin_confirmation_counts_only_the_jobs_one_sees(north_dispatcher, jobs):
    page = run_action(logged_in(north_dispatcher), START, Job.objects.all(), select_across="1")
    assert page.context["forecast"].selected == 3


def test_the_admins_log_events_and_runs_hold_only_what_one_sees(north_dispatcher, dispatcher, jobs):
    seen, unseen = jobs
    for job in [*seen.values(), *unseen.values()]:
        job_transition(transition="start_progress", job=job, user=dispatcher, channel="api")
    other = queued_run(dispatcher, life_cycle_state="PENDING")
    own = queued_run(north_dispatcher, life_cycle_state="PENDING")
    north_dispatcher.user_permissions.add(Permission.objects.get(codename="view_event"))
    browser = logged_in(north_dispatcher)

    log = browser.get(reverse("admin:jobs_jobtransitionlog_changelist")).context["cl"]
    assert {entry.job_id for entry in log.result_list} == ids(seen.values())
    events = browser.get(reverse("admin:jobs_event_changelist")).context["cl"]
    assert {event.job_id for event in events.result_list} == ids(seen.values())
    runs_page = browser.get(reverse("admin:jobs_transitionrun_changelist")).context["cl"]
    assert [run.pk for run in runs_page.result_list] == [own.pk]
    assert (
        browser.get(reverse("admin:jobs_transitionrun_change", args=[other.pk])).status_code == 302
    )


# --- the command -------------------------------------------------------------------------------


def test_the_command_moves_only_what_its_user_sees(north_dispatcher, jobs):
    seen, _ = jobs
    code, out, _ = run_command(
        "transition_jobs", "start_progress", "--eligible", "--user", "north-dispatcher"
    )
    assert code == 0, out
    assert ids(Job.objects.filter(life_cycle_state="IN_PROGRESS")) == ids(seen.values())


def test_the_command_answers_an_unseen_number_as_an_unknown_one(north_dispatcher, jobs):
    _, unseen = jobs
    south = unseen["south"]
    _, out, _ = run_command(
        "transition_jobs",
        "start_progress",
        south.number,
        "JB99999999",
        "--user",
        "north-dispatcher",
        "--format",
        "json",
    )
    document = json.loads(out)
    assert [(s["number"], s["code"]) for s in document["skipped"]] == [
        (south.number, "JOB_NOT_FOUND"),
        ("JB99999999", "JOB_NOT_FOUND"),
    ]
    assert document["skipped"][0]["reason"] == document["skipped"][1]["reason"]
    assert Job.objects.get(pk=south.pk).life_cycle_state == "PENDING"


# --- the rule, for any arrangement -------------------------------------------------------------


def sees(user, job) -> bool:
    """The rule, written plainly."""
    if user.is_superuser or user.has_perm("jobs.view_all_jobs"):
        return True
    groups = set(user.groups.values_list("pk", flat=True))
    if job.owned_by_group_id in groups:
        return True
    if job.assignment_for_rule is not None:
        unit, assignee = job.assignment_for_rule
        return unit in groups or assignee == user.pk
    return False


@pytest.mark.parametrize("seed", range(6))
def test_every_door_gives_exactly_the_jobs_the_rule_says(db, seed, api, token_for):
    rng = random.Random(seed)
    groups = [GroupFactory() for _ in range(3)]
    users = []
    for index in range(4):
        user = UserFactory(
            username=f"u{seed}-{index}",
            is_staff=True,
            groups=rng.sample(groups, rng.randint(0, 2)),
            permissions=[*DISPATCHING, *(["view_all_jobs"] if rng.random() < 0.2 else [])],
        )
        users.append(user)
    made = []
    for _ in range(14):
        job = JobFactory(owned_by_group=rng.choice([None, *groups]))
        job.assignment_for_rule = None
        if rng.random() < 0.6:
            unit = rng.choice([None, *groups])
            assignee = rng.choice([None, *users])
            AssignmentFactory(job=job, unit=unit, user=assignee)
            job.assignment_for_rule = (
                unit.pk if unit else None,
                assignee.pk if assignee else None,
            )
        made.append(job)

    for user in users:
        user = type(user).objects.get(pk=user.pk)  # permissions as loaded for a request
        expected = {job.number for job in made if sees(user, job)}

        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
        listed = api.get(JOBS, {"fields_set": "number", "number_of_results": 100}).json()
        assert {job["number"] for job in listed["data"]} == expected, "GET jobs"

        page = logged_in(user).get(changelist_url()).context["cl"]
        assert {job.number for job in page.result_list} == expected, "the admin's list"

        _, out, _ = run_command(
            "transition_jobs",
            "start_progress",
            "--eligible",
            "--dry-run",
            "--user",
            user.username,
            "--format",
            "json",
        )
        assert set(json.loads(out)["started"]) == expected, "the command"

        run = carry_out(queued_run(user, life_cycle_state="PENDING"))
        moved = JobTransitionLog.objects.filter(run=run).values_list("job__number", flat=True)
        assert set(moved) == expected, "a run"
        Job.objects.filter(pk__in=[job.pk for job in made]).update(
            life_cycle_state=LifeCycleState.PENDING
        )
        JobTransitionLog.objects.all().delete()
