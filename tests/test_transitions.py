"""Every declared transition through the one service: the contract each must keep, run for all of
them, then what complete and cancel do beyond it."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import DatabaseError, connection
from django.utils import timezone

from jobs.exceptions import (
    CancellationReasonNotFound,
    InvalidIdentifier,
    JobNotFound,
    JobStateConflict,
    NoDefaultStatus,
    PermissionDenied,
    StatusNotAllowed,
    StatusNotFound,
)
from jobs.identifiers import CATALOG_IDENTIFIER_FIELDS, JOB_IDENTIFIER_FIELDS, parse_identifier
from jobs.models import Channel, Job, JobTransitionLog, JobType, LifeCycleState
from jobs.services import job_bulk_transition, job_transition
from jobs.transitions import CANCEL, COMPLETE, START_PROGRESS, SUBMIT, TRANSITIONS
from jobs.words import sentence
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
    WRITES,
    count_queries,
    every_transition,
    failing_log_insert,
    states,
)

pytestmark = pytest.mark.django_db


def every_source_of_every_transition():
    return [
        pytest.param(declared, source, id=f"{declared.name}-from-{source}")
        for declared in TRANSITIONS.values()
        for source in declared.sources
    ]


def every_other_state_of_every_transition():
    return [
        pytest.param(declared, state, id=f"{declared.name}-from-{state}")
        for declared in TRANSITIONS.values()
        for state in LifeCycleState.values
        if state not in declared.sources
    ]


def job_for(declared, **kwargs) -> Job:
    """A job the transition can move (in its first source state)."""
    return JobFactory(life_cycle_state=declared.sources[0], **kwargs)


def run(declared, job, user, **kwargs) -> Job:
    return job_transition(transition=declared, job=job, user=user, channel=Channel.API, **kwargs)


# --- the declarations -----------------------------------------------------------------------------


def test_each_declaration_reads_its_states_and_permission_from_the_model():
    assert (SUBMIT.sources, SUBMIT.target) == (("DRAFT",), "PENDING")
    assert (START_PROGRESS.sources, START_PROGRESS.target) == (("PENDING",), "IN_PROGRESS")
    assert (COMPLETE.sources, COMPLETE.target) == (("IN_PROGRESS",), "COMPLETED")
    assert set(CANCEL.sources) == {"DRAFT", "PENDING", "IN_PROGRESS"}
    assert CANCEL.target == "CANCELLED"
    assert [t.permission for t in TRANSITIONS.values()] == [
        "jobs.submit_job",
        "jobs.start_progress_job",
        "jobs.complete_job",
        "jobs.cancel_job",
    ]


@every_transition
def test_each_default_status_field_holds_statuses_of_its_transitions_target(declared):
    field = JobType._meta.get_field(declared.default_status_field)
    assert field.entered_states == (declared.target,)


@every_transition
def test_every_declared_permission_exists(declared):
    app_label, codename = declared.permission.split(".")
    assert Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists()


# --- what every transition does -------------------------------------------------------------------


@pytest.mark.parametrize(("declared", "source"), every_source_of_every_transition())
def test_it_moves_a_job_from_each_source_state_into_the_types_default_and_logs_it(
    dispatcher, declared, source
):
    job = JobFactory(life_cycle_state=source)
    from_status = job.status

    moved = run(declared, job, dispatcher)

    job.refresh_from_db()
    default = getattr(job.type, declared.default_status_field)
    assert (job.life_cycle_state, job.status) == (declared.target, default)
    assert (moved.life_cycle_state, moved.status) == (declared.target, default)
    assert job.updated_by_user == dispatcher
    log = JobTransitionLog.objects.get(job=job)
    assert (log.transition, log.from_state, log.to_state) == (
        declared.name,
        source,
        declared.target,
    )
    assert (log.from_status, log.to_status, log.user) == (from_status, default, dispatcher)


@pytest.mark.parametrize(("declared", "state"), every_other_state_of_every_transition())
def test_it_refuses_a_job_in_any_other_state_naming_it_and_the_states_it_needs(
    dispatcher, declared, state, unchanged
):
    job = JobFactory(life_cycle_state=state)
    unchanged()
    with pytest.raises(JobStateConflict) as refused:
        run(declared, job, dispatcher)
    assert refused.value.data == {"job": job.number, "state": state, "transition": declared.name}
    said = sentence(refused.value)
    assert f"is {state}" in said
    assert all(source in said for source in declared.sources)


@every_transition
def test_it_refuses_a_user_with_every_permission_but_the_transitions_own(declared, unchanged):
    others = [t.permission.split(".")[1] for t in TRANSITIONS.values() if t is not declared]
    user = UserFactory(permissions=["view_job", *others])
    job = job_for(declared)
    unchanged()
    with pytest.raises(PermissionDenied) as refused:
        run(declared, job, user)
    assert refused.value.data == {"transition": declared.name, "permission": declared.permission}
    with pytest.raises(PermissionDenied):
        job_bulk_transition(
            transition=declared, jobs=[job.number], user=user, channel=Channel.COMMAND
        )


@every_transition
def test_it_refuses_a_type_without_the_default_and_names_which_default(
    dispatcher, declared, unchanged
):
    job = job_for(declared, type=JobTypeFactory(without_default=True))
    unchanged()
    with pytest.raises(NoDefaultStatus) as refused:
        run(declared, job, dispatcher)
    label = Job._meta.get_field("type").related_model._meta.get_field(declared.default_status_field)
    assert refused.value.data["field"] == declared.default_status_field
    assert label.verbose_name in sentence(refused.value)


@every_transition
def test_it_enters_a_requested_status_in_the_target_state(dispatcher, declared):
    job = job_for(declared)
    wanted = status_of(job.type, declared.target)
    getattr(job.type, declared.default_status_field)  # the default is another status
    setattr(job.type, declared.default_status_field, None)
    job.type.save()

    run(declared, job, dispatcher, status={"alternative_code": wanted.alternative_code})

    job.refresh_from_db()
    assert job.status == wanted


@every_transition
def test_it_refuses_a_status_of_another_state_or_another_type(dispatcher, declared, unchanged):
    job = job_for(declared)
    wrong_state = next(
        s for s in job.type.allowed_statuses.all() if s.life_cycle_state != declared.target
    )
    other_type = status_of(JobTypeFactory(), declared.target)
    unchanged()
    with pytest.raises(StatusNotAllowed, match=f"status_state={wrong_state.life_cycle_state}"):
        run(declared, job, dispatcher, status={"id": wrong_state.pk})
    with pytest.raises(StatusNotAllowed, match=f"type={job.type.name}"):
        run(declared, job, dispatcher, status={"id": other_type.pk})


# Identifiers are parsed once, by the door, before the service is called.
def test_an_identifier_with_two_keys_is_refused():
    with pytest.raises(InvalidIdentifier):
        parse_identifier(
            {"id": 1, "number": "JB00001"}, fields=JOB_IDENTIFIER_FIELDS, parameter="job_identifier"
        )
    with pytest.raises(InvalidIdentifier):
        parse_identifier(
            {"id": 1, "name": "x"}, fields=CATALOG_IDENTIFIER_FIELDS, parameter="status_identifier"
        )


@every_transition
def test_a_job_changed_by_another_writer_after_the_read_is_a_conflict(
    dispatcher, declared, monkeypatch
):
    # Where the database cannot lock rows, another writer may move the job after we read it: the
    # compare-and-set on the state it was read in refuses the write.
    job = job_for(declared)
    read_as = job.life_cycle_state
    Job.objects.filter(pk=job.pk).update(life_cycle_state=LifeCycleState.CANCELLED)
    real_from_db = Job.from_db.__func__

    def stale(cls, db, field_names, values, **kwargs):
        loaded = real_from_db(cls, db, field_names, values, **kwargs)
        loaded.__dict__["life_cycle_state"] = read_as
        return loaded

    monkeypatch.setattr(Job, "from_db", classmethod(stale))
    with pytest.raises(JobStateConflict, match="race=True"):
        run(declared, job, dispatcher)
    assert not JobTransitionLog.objects.exists()


@every_transition
def test_one_transition_takes_five_queries(dispatcher, declared):
    job = job_for(declared)
    code = status_of(job.type, declared.target).alternative_code
    extra = {
        p.name: {"alternative_code": JobCancellationReasonFactory().alternative_code}
        for p in declared.parameters
    }
    user = UserFactory(username=dispatcher.username)  # a fresh user: no permission cache
    # Django probes SQLite's JSON support once per connection object, not per request.
    assert connection.features.supports_json_field

    with count_queries() as queries:
        moved = run(
            declared, {"number": job.number}, user, status={"alternative_code": code}, **extra
        )
        # everything the caller may read of the moved job is already loaded
        assert moved.status.alternative_code == code
        for name in extra:
            assert getattr(moved, name).alternative_code == extra[name]["alternative_code"]

    assert moved.life_cycle_state == declared.target
    # permissions 1, lock 1 (which reads the status and reason asked for), then the writes
    assert len(queries) == 2 + WRITES, queries.sql


@every_transition
def test_what_the_caller_will_read_is_loaded_by_the_lock(dispatcher, declared):
    job = job_for(declared, created_by_user=UserFactory(username="author"))
    AssignmentFactory(job=job, user=UserFactory(username="fitter"))
    user = UserFactory(username=dispatcher.username)
    load = [
        "description",
        "created_by_user__username",
        "assigned_to__user__username",
        "status__name",
        "updated_by_user__username",
    ]
    assert connection.features.supports_json_field  # SQLite's probe, once per connection

    with count_queries() as queries:
        moved = run(declared, {"id": job.pk}, user, load=load)
        seen = (
            moved.description,
            moved.created_by_user.username,
            moved.assigned_to.user.username,
            moved.status.name,  # what the transition assigned: never read back
            moved.updated_by_user.username,
        )

    assert seen == (job.description, "author", "fitter", moved.status.name, "dispatcher")
    assert len(queries) == 2 + WRITES, queries.sql  # permissions, lock, the writes
    lock = next(q for q in queries.sql if q.startswith("SELECT") and "jobs_job" in q)
    # what the transition assigns is not joined: neither the status it leaves nor the old user
    assert '"jobs_jobstatus"."name"' not in lock
    assert lock.count('JOIN "auth_user"') == 2  # the author and the assignee


@every_transition
@pytest.mark.parametrize("total", [10, 40])
def test_a_bulk_run_takes_a_fixed_number_of_queries_per_batch(dispatcher, declared, total):
    types = JobTypeFactory.create_batch(3)
    jobs = [job_for(declared, type=types[i % 3]) for i in range(total)]
    extra = {p.name: JobCancellationReasonFactory() for p in declared.parameters}
    user = UserFactory(username=dispatcher.username)  # no permission cache

    with count_queries() as queries:
        summary = job_bulk_transition(
            transition=declared,
            jobs=[j.number for j in jobs],
            user=user,
            channel=Channel.COMMAND,
            batch_size=10,
            **extra,
        )

    assert summary.done == total
    # per run: permissions 1, the job types 1; per batch: lock, then the writes
    assert len(queries) == 2 + (1 + BATCH_WRITES) * (total // 10), queries.sql


@every_transition
def test_a_bulk_run_reports_each_job_and_moves_only_the_eligible(dispatcher, declared):
    good = JobFactory.create_batch(2, life_cycle_state=declared.sources[-1])
    wrong_state = next(s for s in LifeCycleState.values if s not in declared.sources)
    bad = JobFactory(life_cycle_state=wrong_state)
    no_default = job_for(declared, type=JobTypeFactory(without_default=True))
    seen = []

    summary = job_bulk_transition(
        transition=declared,
        jobs=[good[0].number, bad.number, "JB99999", no_default.number, good[1].number],
        user=dispatcher,
        channel=Channel.ADMIN,
        on_batch=seen.extend,
    )

    assert [(o.number, o.done, o.code) for o in seen] == [
        (good[0].number, True, ""),
        (bad.number, False, "JOB_STATE_CONFLICT"),
        ("JB99999", False, "JOB_NOT_FOUND"),
        (no_default.number, False, "NO_DEFAULT_STATUS"),
        (good[1].number, True, ""),
    ]
    assert summary.done == 2
    moved = Job.objects.filter(life_cycle_state=declared.target, pk__in=[j.pk for j in good])
    assert moved.count() == 2
    assert JobTransitionLog.objects.filter(transition=declared.name).count() == 2


@every_transition
def test_a_failing_bulk_batch_is_rolled_back_whole_and_a_rerun_finishes(dispatcher, declared):
    jobs = [job_for(declared) for _ in range(6)]
    numbers = [j.number for j in jobs]
    with failing_log_insert(on_call=2), pytest.raises(DatabaseError):
        job_bulk_transition(
            transition=declared,
            jobs=numbers,
            user=dispatcher,
            channel=Channel.COMMAND,
            batch_size=3,
        )
    # The first batch committed, the second rolled back whole.
    by_number = dict(Job.objects.values_list("number", "life_cycle_state"))
    assert [by_number[n] for n in numbers] == [declared.target] * 3 + [declared.sources[0]] * 3
    assert JobTransitionLog.objects.count() == 3

    summary = job_bulk_transition(
        transition=declared, jobs=numbers, user=dispatcher, channel=Channel.COMMAND, batch_size=3
    )
    assert summary.done == 3
    assert {o.code for o in summary.skipped} == {"JOB_STATE_CONFLICT"}  # moved already
    assert Job.objects.filter(life_cycle_state=declared.target).count() == 6
    assert JobTransitionLog.objects.count() == 6


# --- what each does beyond the shared contract ----------------------------------------------------


def test_start_progress_records_the_actual_start(dispatcher):
    job = run(START_PROGRESS, JobFactory(), dispatcher)
    job.refresh_from_db()
    assert job.actual_start_date == job.updated_date
    assert job.actual_completed_date is None


def test_complete_records_the_actual_completion_and_keeps_the_start(dispatcher):
    job = JobFactory()
    run(START_PROGRESS, job, dispatcher)
    run(COMPLETE, job, dispatcher)
    job.refresh_from_db()
    assert job.actual_completed_date == job.updated_date
    assert job.actual_start_date < job.actual_completed_date


def test_a_bulk_cancel_moves_jobs_from_every_source_state_and_logs_each_ones_own(dispatcher):
    job_type = JobTypeFactory()
    jobs = {
        state: bulk_pending_jobs(job_type, 2, prefix=state[:2], state=state)
        for state in CANCEL.sources
    }

    summary = job_bulk_transition(
        transition=CANCEL, jobs=Job.objects.all(), user=dispatcher, channel=Channel.COMMAND
    )

    assert summary.done == 6
    logged = dict(JobTransitionLog.objects.values_list("job__number", "from_state"))
    assert logged == {job.number: state for state, batch in jobs.items() for job in batch}


@pytest.mark.parametrize("key", ["id", "name", "alternative_code"])
def test_cancel_records_the_reason_asked_for_by_any_identifier(dispatcher, key):
    job = JobFactory()
    reason = JobCancellationReasonFactory()

    run(CANCEL, job, dispatcher, cancellation_reason={key: getattr(reason, key)})

    job.refresh_from_db()
    assert job.cancellation_reason == reason
    assert JobTransitionLog.objects.get(job=job).cancellation_reason == reason


def test_cancel_without_a_reason_records_the_types_default_or_none(dispatcher):
    default = JobCancellationReasonFactory()
    with_default = JobTypeFactory(default_cancellation_reason=default)
    jobs = [JobFactory(type=with_default), JobFactory()]

    job_bulk_transition(
        transition=CANCEL, jobs=[j.number for j in jobs], user=dispatcher, channel=Channel.ADMIN
    )

    assert [Job.objects.get(pk=j.pk).cancellation_reason for j in jobs] == [default, None]
    assert list(
        JobTransitionLog.objects.order_by("job_id").values_list("cancellation_reason", flat=True)
    ) == [default.pk, None]


def test_cancel_refuses_a_reason_that_does_not_exist(dispatcher, unchanged):
    job = JobFactory()
    unchanged()
    with pytest.raises(CancellationReasonNotFound):
        run(CANCEL, job, dispatcher, cancellation_reason={"alternative_code": "NOPE"})
    summary = job_bulk_transition(
        transition=CANCEL,
        jobs=[job.number],
        user=dispatcher,
        channel=Channel.ADMIN,
        cancellation_reason={"alternative_code": "NOPE"},
    )
    assert [o.code for o in summary.skipped] == ["CANCELLATION_REASON_NOT_FOUND"]


@pytest.mark.parametrize("declared", [START_PROGRESS, COMPLETE], ids=["start_progress", "complete"])
def test_a_transition_refuses_a_parameter_it_does_not_take(dispatcher, declared, unchanged):
    job = job_for(declared)
    unchanged()
    with pytest.raises(TypeError, match="cancellation_reason"):
        run(declared, job, dispatcher, cancellation_reason={"id": 1})


# --- start progress, case by case -----------------------------------------------------------------


def test_it_starts_a_pending_job_in_its_types_default_status(dispatcher):
    job = JobFactory()

    started = job_transition(
        transition=START_PROGRESS, job={"number": job.number}, user=dispatcher, channel=Channel.API
    )

    job.refresh_from_db()
    assert job.life_cycle_state == LifeCycleState.IN_PROGRESS
    assert job.status == job.type.default_start_status
    assert job.updated_by_user == dispatcher
    assert started.pk == job.pk
    assert started.life_cycle_state == LifeCycleState.IN_PROGRESS


def test_it_writes_one_log_row_describing_the_transition(dispatcher):
    job = JobFactory()
    pending_status = job.status

    job_transition(transition=START_PROGRESS, job=job, user=dispatcher, channel=Channel.COMMAND)

    (log,) = JobTransitionLog.objects.filter(job=job)
    assert (log.from_state, log.to_state) == (LifeCycleState.PENDING, LifeCycleState.IN_PROGRESS)
    assert log.from_status == pending_status
    assert log.to_status == job.type.default_start_status
    assert log.user == dispatcher
    assert log.channel == "command"


@pytest.mark.parametrize("key", ["id", "name", "alternative_code"])
def test_it_starts_in_the_requested_status_named_by_any_identifier(dispatcher, key):
    job = JobFactory()
    onsite = JobStatusFactory(name="On site", alternative_code="ONSITE")
    job.type.allowed_statuses.add(onsite)

    job_transition(
        transition=START_PROGRESS,
        job=job.pk,
        status={key: getattr(onsite, key)},
        user=dispatcher,
        channel=Channel.API,
    )

    job.refresh_from_db()
    assert job.status == onsite


def test_it_finds_the_job_by_id(dispatcher):
    job = JobFactory()
    job_transition(
        transition=START_PROGRESS, job={"id": job.pk}, user=dispatcher, channel=Channel.API
    )
    job.refresh_from_db()
    assert job.life_cycle_state == LifeCycleState.IN_PROGRESS


@pytest.mark.parametrize("key", ["id", "number"])
def test_starts_asked_alike_each_move_their_own_job(dispatcher, key):
    # Same transition, identifier and answer: one lock statement, run with each value.
    jobs = JobFactory.create_batch(3)
    load = ["description", "assigned_to__user__username"]
    AssignmentFactory(job=jobs[1], user=UserFactory(username="fitter"))

    moved = [
        job_transition(
            transition=START_PROGRESS,
            job={key: getattr(job, key)},
            user=dispatcher,
            channel=Channel.API,
            load=load,
        )
        for job in jobs
    ]

    assert [m.pk for m in moved] == [j.pk for j in jobs]
    assert [m.description for m in moved] == [j.description for j in jobs]
    assert moved[1].assigned_to.user.username == "fitter"
    assert set(Job.objects.values_list("life_cycle_state", flat=True)) == {"IN_PROGRESS"}
    with pytest.raises(JobNotFound):
        job_transition(
            transition=START_PROGRESS,
            job={key: "99999" if key == "number" else 99999},
            user=dispatcher,
            channel=Channel.API,
            load=load,
        )


def test_it_sets_the_expiration_when_the_type_expires_on_start(dispatcher):
    job = JobFactory(type=JobTypeFactory(expires_on_start=True))

    job_transition(transition=START_PROGRESS, job=job, user=dispatcher, channel=Channel.API)

    job.refresh_from_db()
    assert job.expiration_date == job.updated_date + timedelta(days=3)


def test_it_leaves_the_expiration_alone_for_other_types(dispatcher):
    job = JobFactory()
    job_transition(transition=START_PROGRESS, job=job, user=dispatcher, channel=Channel.API)
    job.refresh_from_db()
    assert job.expiration_date is None


@pytest.mark.parametrize("named_status", [True, False])
def test_one_start_takes_five_queries(dispatcher, named_status):
    job = JobFactory(type=JobTypeFactory(expires_on_start=True))
    AssignmentFactory(job=job)
    code = status_of(job.type, LifeCycleState.IN_PROGRESS).alternative_code
    dispatcher = UserFactory(username=dispatcher.username)  # a fresh user: no permission cache

    with count_queries() as queries:
        started = job_transition(
            transition=START_PROGRESS,
            job={"number": job.number},
            status={"alternative_code": code} if named_status else None,
            user=dispatcher,
            channel=Channel.API,
        )
        # everything the caller may read of the started job is already loaded
        assert started.status.alternative_code == code
        assert started.expiration_date is not None

    # permissions 1, lock 1 (with the status asked for), then the writes
    assert len(queries) == 2 + WRITES, queries.sql


def test_it_refuses_a_user_without_the_permission(viewer, unchanged):
    job = JobFactory()
    unchanged()
    with pytest.raises(PermissionDenied):
        job_transition(transition=START_PROGRESS, job=job, user=viewer, channel=Channel.API)


def test_it_refuses_an_inactive_user_even_with_the_permission(dispatcher):
    dispatcher.is_active = False
    dispatcher.save()
    with pytest.raises(PermissionDenied):
        job_transition(
            transition=START_PROGRESS, job=JobFactory(), user=dispatcher, channel=Channel.API
        )


def test_it_reports_an_unknown_job(dispatcher):
    with pytest.raises(JobNotFound):
        job_transition(
            transition=START_PROGRESS,
            job={"number": "JB99999"},
            user=dispatcher,
            channel=Channel.API,
        )


@pytest.mark.parametrize(
    "state",
    [
        LifeCycleState.DRAFT,
        LifeCycleState.IN_PROGRESS,
        LifeCycleState.COMPLETED,
        LifeCycleState.CANCELLED,
    ],
)
def test_it_refuses_a_job_that_is_not_pending_and_names_its_state(dispatcher, state, unchanged):
    job = JobFactory(life_cycle_state=state)
    unchanged()
    with pytest.raises(JobStateConflict, match=state):
        job_transition(transition=START_PROGRESS, job=job, user=dispatcher, channel=Channel.API)


def test_it_refuses_an_unknown_status(dispatcher, unchanged):
    job = JobFactory()
    unchanged()
    with pytest.raises(StatusNotFound):
        job_transition(
            transition=START_PROGRESS,
            job=job,
            status={"name": "Nope"},
            user=dispatcher,
            channel=Channel.API,
        )


def test_it_refuses_a_status_the_type_does_not_allow(dispatcher, unchanged):
    job = JobFactory()
    foreign = JobStatusFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)
    unchanged()
    with pytest.raises(StatusNotAllowed, match=f"type={job.type.name}"):
        job_transition(
            transition=START_PROGRESS,
            job=job,
            status={"id": foreign.pk},
            user=dispatcher,
            channel=Channel.API,
        )


def test_it_refuses_an_allowed_status_that_is_not_in_progress(dispatcher, unchanged):
    job = JobFactory()
    completed = status_of(job.type, LifeCycleState.COMPLETED)
    unchanged()
    with pytest.raises(StatusNotAllowed, match="status_state=COMPLETED, state=IN_PROGRESS"):
        job_transition(
            transition=START_PROGRESS,
            job=job,
            status=completed,
            user=dispatcher,
            channel=Channel.API,
        )


def test_it_refuses_a_type_without_default_when_no_status_is_named(dispatcher, unchanged):
    job = JobFactory(type=JobTypeFactory(without_default=True))
    unchanged()
    with pytest.raises(NoDefaultStatus):
        job_transition(transition=START_PROGRESS, job=job, user=dispatcher, channel=Channel.API)


def test_a_job_changed_between_read_and_write_is_a_conflict_and_leaves_no_log(
    dispatcher, monkeypatch
):
    # Where the database cannot lock rows, another writer may start the job after we read it as
    # PENDING: we simulate that read going stale.
    job = JobFactory()
    Job.objects.filter(pk=job.pk).update(life_cycle_state=LifeCycleState.IN_PROGRESS)
    stale_reads(monkeypatch, of={job.pk})

    with pytest.raises(JobStateConflict, match="race=True"):
        job_transition(transition=START_PROGRESS, job=job, user=dispatcher, channel=Channel.API)
    assert not JobTransitionLog.objects.exists()


def stale_reads(monkeypatch, *, of: set[int]) -> None:
    """Make the next read of each job in `of` still see it PENDING, as a read that another writer
    overtakes would (where the database cannot lock rows)."""
    real_from_db = Job.from_db.__func__
    stale = set(of)

    def from_db(cls, db, field_names, values, **kwargs):
        job = real_from_db(cls, db, field_names, values, **kwargs)
        if job.pk in stale:
            stale.discard(job.pk)
            job.__dict__["life_cycle_state"] = LifeCycleState.PENDING
        return job

    monkeypatch.setattr(Job, "from_db", classmethod(from_db))


@pytest.mark.parametrize(
    "identifier",
    [
        "JB00001",
        7.0,
        ["JB00001"],
        {},
        {"id": 1, "number": "JB00001"},
        {"code": "x"},
        {"id": "abc"},
        {"id": True},
        {"number": ""},
        {"number": 5},
    ],
)
def test_a_malformed_job_identifier_is_refused(identifier):
    with pytest.raises(InvalidIdentifier):
        parse_identifier(identifier, fields=JOB_IDENTIFIER_FIELDS, parameter="job_identifier")


def test_bulk_start_reports_each_job_in_input_order_and_starts_the_good_ones(dispatcher):
    good = JobFactory()
    done = JobFactory(life_cycle_state=LifeCycleState.COMPLETED)
    no_default = JobFactory(type=JobTypeFactory(without_default=True))
    also_good = JobFactory()

    seen = []
    summary = job_bulk_transition(
        transition=START_PROGRESS,
        jobs=[
            good.number,
            done.number,
            "JB99999",
            no_default.number,
            also_good.number,
            good.number,
        ],
        user=dispatcher,
        channel=Channel.ADMIN,
        on_batch=seen.extend,
    )

    assert [(o.number, o.done, o.code) for o in seen] == [
        (good.number, True, ""),
        (done.number, False, "JOB_STATE_CONFLICT"),
        ("JB99999", False, "JOB_NOT_FOUND"),
        (no_default.number, False, "NO_DEFAULT_STATUS"),
        (also_good.number, True, ""),
    ]
    assert summary.done == 2
    assert [o.number for o in summary.skipped] == [done.number, "JB99999", no_default.number]
    assert all(o.refusal for o in summary.skipped)
    assert set(
        Job.objects.filter(life_cycle_state=LifeCycleState.IN_PROGRESS).values_list("pk", flat=True)
    ) == {good.pk, also_good.pk}
    assert JobTransitionLog.objects.filter(channel="admin").count() == 2


def test_bulk_start_in_a_named_status_skips_types_that_do_not_allow_it(dispatcher):
    allowing, other = JobTypeFactory(), JobTypeFactory()
    onsite = JobStatusFactory(alternative_code="ONSITE")
    allowing.allowed_statuses.add(onsite)
    a, b = JobFactory(type=allowing), JobFactory(type=other)

    summary = job_bulk_transition(
        transition=START_PROGRESS,
        jobs=[a.number, b.number],
        status={"alternative_code": "ONSITE"},
        user=dispatcher,
        channel=Channel.COMMAND,
    )

    assert summary.done == 1
    assert [(o.number, o.code) for o in summary.skipped] == [(b.number, "STATUS_NOT_ALLOWED")]
    a.refresh_from_db()
    assert a.status == onsite


def test_bulk_start_with_an_unknown_status_skips_every_job(dispatcher):
    jobs = JobFactory.create_batch(2)
    summary = job_bulk_transition(
        transition=START_PROGRESS,
        jobs=[j.number for j in jobs],
        status={"name": "Nope"},
        user=dispatcher,
        channel=Channel.COMMAND,
    )
    assert summary.done == 0
    assert {o.code for o in summary.skipped} == {"STATUS_NOT_FOUND"}


def test_bulk_start_takes_a_queryset_and_pages_through_it(dispatcher):
    job_type = JobTypeFactory(expires_on_start=True)
    JobFactory.create_batch(7, type=job_type)
    JobFactory(type=job_type, life_cycle_state=LifeCycleState.DRAFT)

    batches = []
    summary = job_bulk_transition(
        transition=START_PROGRESS,
        jobs=Job.objects.filter(life_cycle_state=LifeCycleState.PENDING),
        user=dispatcher,
        channel=Channel.COMMAND,
        batch_size=3,
        on_batch=lambda b: batches.append(len(b)),
    )

    assert summary.done == 7
    assert batches == [3, 3, 1]
    started = Job.objects.filter(life_cycle_state=LifeCycleState.IN_PROGRESS)
    assert started.count() == 7
    assert all(j.expiration_date == j.updated_date + timedelta(days=3) for j in started)
    assert JobTransitionLog.objects.count() == 7


def test_a_dry_run_reports_what_would_happen_and_changes_nothing(dispatcher, unchanged):
    pending, draft = JobFactory(), JobFactory(life_cycle_state=LifeCycleState.DRAFT)
    unchanged()

    summary = job_bulk_transition(
        transition=START_PROGRESS,
        jobs=[pending.number, draft.number],
        user=dispatcher,
        channel=Channel.COMMAND,
        dry_run=True,
    )

    assert summary.dry_run
    assert summary.done == 1
    assert [(o.number, o.code) for o in summary.skipped] == [(draft.number, "JOB_STATE_CONFLICT")]


def test_bulk_start_refuses_a_user_without_the_permission_before_touching_anything(
    viewer, unchanged
):
    job = JobFactory()
    unchanged()
    with pytest.raises(PermissionDenied):
        job_bulk_transition(
            transition=START_PROGRESS, jobs=[job.number], user=viewer, channel=Channel.ADMIN
        )


@pytest.mark.parametrize("total", [10, 40])
def test_bulk_start_takes_a_fixed_number_of_queries_per_batch(dispatcher, total):
    types = JobTypeFactory.create_batch(3)
    numbers = [JobFactory(type=types[i % 3]).number for i in range(total)]
    dispatcher = UserFactory(username=dispatcher.username)  # no permission cache
    status = status_of(types[0], LifeCycleState.IN_PROGRESS)
    for t in types[1:]:
        t.allowed_statuses.add(status)

    with count_queries() as queries:
        summary = job_bulk_transition(
            transition=START_PROGRESS,
            jobs=numbers,
            status=status,
            user=dispatcher,
            channel=Channel.COMMAND,
            batch_size=10,
        )

    assert summary.done == total
    batches = total // 10
    # per run: permissions 1, status 2, the job types 1; per batch: lock, then the writes
    assert len(queries) == 4 + (1 + BATCH_WRITES) * batches, queries.sql


def test_a_bulk_batch_that_loses_a_race_is_redone_and_reports_the_conflict(dispatcher, monkeypatch):
    winner_took, ours = JobFactory(), JobFactory()
    Job.objects.filter(pk=winner_took.pk).update(life_cycle_state=LifeCycleState.IN_PROGRESS)
    stale_reads(monkeypatch, of={winner_took.pk})

    summary = job_bulk_transition(
        transition=START_PROGRESS,
        jobs=[winner_took.number, ours.number],
        user=dispatcher,
        channel=Channel.API,
    )

    assert summary.done == 1
    assert [(o.number, o.code) for o in summary.skipped] == [
        (winner_took.number, "JOB_STATE_CONFLICT")
    ]
    assert list(JobTransitionLog.objects.values_list("job_id", flat=True)) == [ours.pk]


def test_a_batch_that_keeps_losing_races_is_refused_whole_and_changes_nothing(
    dispatcher, monkeypatch
):
    jobs = JobFactory.create_batch(3)
    # Every read sees the jobs pending, but another writer always got there first.
    real_from_db = Job.from_db.__func__

    def always_stale(cls, db, field_names, values, **kwargs):
        job = real_from_db(cls, db, field_names, values, **kwargs)
        job.__dict__["life_cycle_state"] = LifeCycleState.PENDING
        return job

    Job.objects.update(life_cycle_state=LifeCycleState.IN_PROGRESS)
    monkeypatch.setattr(Job, "from_db", classmethod(always_stale))

    with pytest.raises(JobStateConflict, match="batch=True"):
        job_bulk_transition(
            transition=START_PROGRESS,
            jobs=[j.number for j in jobs],
            user=dispatcher,
            channel=Channel.COMMAND,
        )
    monkeypatch.undo()
    assert not JobTransitionLog.objects.exists()
    assert states(*jobs) == [LifeCycleState.IN_PROGRESS] * 3


def test_a_batch_whose_jobs_of_one_type_change_a_column_differently_writes_each_its_own(
    dispatcher,
):
    from jobs.services.moves import Move, snapshot
    from jobs.services.records import Moment
    from jobs.services.resolution import TransitionOrder
    from jobs.services.writes import persist

    job_type = JobTypeFactory()
    jobs = JobFactory.create_batch(3, type=job_type)
    order = TransitionOrder.build(
        START_PROGRESS, status=None, parameters={}, user=dispatcher, channel=Channel.API
    )
    moves = []
    for day, job in enumerate(jobs, start=1):
        job.type = job_type
        leaving = {"id": job.status_id, "name": job.status.name, "alternative_code": "X"}
        moves.append(Move(job, job.life_cycle_state, leaving, snapshot(job)))
        job.scheduled_date = timezone.now() + timedelta(days=day)

    persist(order, moves, Moment.now())

    for job in jobs:
        stored = Job.objects.get(pk=job.pk)
        assert stored.scheduled_date == job.scheduled_date
        assert stored.life_cycle_state == LifeCycleState.IN_PROGRESS
