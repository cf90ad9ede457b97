"""jobs.sql: each hand-written statement gives what the plain ORM gives for the same input."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from rest_framework_simplejwt.tokens import SlidingToken

from jobs.api.serializers import job_answer, parse_fields_set
from jobs.backends import LOADED
from jobs.models import Channel, Job, JobTransitionLog
from jobs.services import job_transition
from jobs.sql.lock import Wanted, lock_job
from jobs.sql.tokens import user_of_token
from jobs.transitions import TRANSITIONS
from tests.factories import (
    AssignmentFactory,
    GroupFactory,
    JobCancellationReasonFactory,
    JobFactory,
    JobTypeFactory,
    UserFactory,
    status_of,
)
from tests.helpers import count_queries, every_transition

pytestmark = pytest.mark.django_db

SELECTIONS = [
    None,
    "id,life_cycle_state",
    "number,status.name,assigned_to.user.username",
    "log_information,type.alternative_code",
    "assigned_to,cancellation_reason,actual_start_date,actual_completed_date",
]


def concrete_values(instance):
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_a_tokens_user_is_the_orms_with_its_permissions_and_release(dispatcher):
    group = GroupFactory(name="dispatch")
    group.permissions.add(Permission.objects.get(codename="add_jobstatus"))
    dispatcher.groups.add(group)
    token = SlidingToken.for_user(dispatcher)

    with count_queries() as queries:
        found = user_of_token(dispatcher.pk, token["jti"])

    assert len(queries) == 1
    from_orm = get_user_model().objects.get(pk=dispatcher.pk)
    assert concrete_values(found.user) == concrete_values(from_orm)
    assert found.permissions == from_orm.get_all_permissions()
    assert found.released is False
    token.blacklist()
    assert user_of_token(dispatcher.pk, token["jti"]).released is True
    assert user_of_token(10**9, token["jti"]) is None


def test_a_user_without_permissions_has_none(db):
    user = UserFactory()
    found = user_of_token(user.pk, "no-such-jti")
    setattr(found.user, LOADED, found.permissions)
    with count_queries() as queries:
        assert found.user.get_all_permissions() == set()
    assert len(queries) == 0


@pytest.mark.parametrize("by", ["id", "number"])
def test_a_locked_job_has_the_orms_values_its_type_defaults_and_relations(by):
    job = JobFactory(created_by_user=UserFactory(username="author"))
    AssignmentFactory(job=job, user=UserFactory(username="fitter", first_name="Fi"))
    declared = TRANSITIONS["start_progress"]

    with transaction.atomic():
        row = lock_job(
            by,
            getattr(job, by),
            type_defaults=declared.type_defaults,
            with_assignment=True,
            with_author=True,
        )

    from_orm = Job.objects.select_related(
        "type__default_start_status", "assigned_to__user", "assigned_to__unit", "created_by_user"
    ).get(pk=job.pk)
    assert concrete_values(row.job) == concrete_values(from_orm)
    assert concrete_values(row.job.type) == concrete_values(from_orm.type)
    assert row.job.type.default_start_status == from_orm.type.default_start_status
    assert (
        row.job.assigned_to_loaded.user.get_full_name() == from_orm.assigned_to.user.get_full_name()
    )
    assert row.job.assigned_to_loaded.unit.name == from_orm.assigned_to.unit.name
    assert row.job.created_by_user.username == "author"
    assert row.leaving_status == {
        "id": job.status.pk,
        "name": job.status.name,
        "alternative_code": job.status.alternative_code,
    }


def test_a_job_without_an_assignment_answers_null_without_asking_again(dispatcher):
    job = JobFactory()
    answer = job_answer(parse_fields_set("assigned_to"))
    moved = job_transition(
        transition="start_progress",
        job={"id": job.pk},
        user=dispatcher,
        channel=Channel.API,
        load=answer.columns,
    )
    with count_queries() as queries:
        assert answer.render(moved) == {"assigned_to": None}
    assert len(queries) == 0


def test_a_status_asked_for_is_read_with_whether_the_jobs_type_allows_it():
    job = JobFactory()
    allowed = status_of(job.type, "IN_PROGRESS")
    foreign = status_of(JobFactory().type, "IN_PROGRESS")

    def read(status):
        with transaction.atomic():
            row = lock_job(
                "id",
                job.pk,
                type_defaults=(),
                wanted=[(Wanted(type(status), "alternative_code", True), status.alternative_code)],
            )
        return row.wanted

    assert read(allowed) == [(allowed, True)]
    assert read(foreign) == [(foreign, False)]


def orm_answer(declared, job, user, selection, extra):
    """The same transition through the plain ORM: django-fsm's method, save(), and the job read
    again as GET jobs/{id} reads it."""
    chosen = {"status": getattr(job.type, declared.default_status_field), **extra}
    with transaction.atomic():
        locked = Job.objects.select_for_update().select_related("type").get(pk=job.pk)
        declared.apply(locked, by=user, at=locked.updated_date, **chosen)
        locked.save()
    answer = job_answer(selection)
    return answer.render(answer.shape(Job.objects.filter(pk=job.pk)).get())


def log_of(job):
    (log,) = JobTransitionLog.objects.filter(job=job).values(
        "transition", "from_state", "to_state", "from_status", "to_status", "user", "channel"
    )
    return log


@every_transition
@pytest.mark.parametrize("identifier", ["id", "number"])
@pytest.mark.parametrize("fields_set", SELECTIONS)
def test_the_answer_and_rows_equal_the_plain_orms(dispatcher, declared, identifier, fields_set):
    job_type = JobTypeFactory()
    mine, theirs = (
        JobFactory(type=job_type, life_cycle_state=declared.sources[0], created_by_user=dispatcher)
        for _ in range(2)
    )
    for job in (mine, theirs):
        AssignmentFactory(job=job)
    reason = JobCancellationReasonFactory()
    extra = {p.name: reason for p in declared.parameters}
    selection = parse_fields_set(fields_set)
    answer = job_answer(selection)

    moved = job_transition(
        transition=declared,
        job={identifier: getattr(mine, identifier)},
        user=dispatcher,
        channel=Channel.API,
        load=answer.columns,
        **extra,
    )
    rendered = answer.render(moved)
    expected = orm_answer(declared, theirs, dispatcher, selection, extra)

    # Everything but what names the job itself, and the times, which differ by construction.
    differs = {"id", "number", "created_date", "updated_date", "actual_start_date"}
    differs.add("actual_completed_date")

    def comparable(value):
        if isinstance(value, dict):
            return {k: comparable(v) for k, v in value.items() if k not in differs}
        return value

    differs |= {"assigned_to", "description"}  # each job has its own assignee and description
    assert comparable(rendered) == comparable(expected)
    assert set(rendered) == set(expected)
    stored = Job.objects.get(pk=mine.pk)
    assert (stored.life_cycle_state, stored.status_id) == (declared.target, moved.status_id)
    assert log_of(mine)["to_status"] == stored.status_id
    assert log_of(mine)["transition"] == declared.name


def test_an_events_insert_writes_every_column_of_the_outbox():
    from jobs.models import Event
    from jobs.sql.writes import EVENT_COMPUTED, EVENT_FIELDS

    written = {*EVENT_FIELDS, *(name for name, _, _ in EVENT_COMPUTED)}
    assert {f.name for f in Event._meta.concrete_fields} == {"id", *written}
