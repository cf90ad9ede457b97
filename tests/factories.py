"""Test data. Every job type comes with a status for each life cycle state, like the demo data."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from jobs.models import (
    Assignment,
    Channel,
    ExpirationSetting,
    Job,
    JobCancellationReason,
    JobStatus,
    JobType,
    LifeCycleState,
    TransitionRun,
)
from jobs.services import Selection, queue_run
from jobs.transitions import TRANSITIONS


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = "Test"
    last_name = factory.LazyAttribute(lambda u: u.username.capitalize())
    password = factory.django.Password("pw")

    @factory.post_generation
    def permissions(self, create, codenames, **kwargs):
        # UserFactory(permissions=["start_progress_job", "view_job"]) grants jobs.* permissions.
        if create and codenames:
            self.user_permissions.add(
                *Permission.objects.filter(content_type__app_label="jobs", codename__in=codenames)
            )

    @factory.post_generation
    def groups(self, create, groups, **kwargs):
        # UserFactory(groups=[unit]) puts the user in those groups.
        if create and groups:
            self.groups.add(*groups)


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Unit {n}")


class JobStatusFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobStatus

    name = factory.Sequence(lambda n: f"Status {n}")
    alternative_code = factory.Sequence(lambda n: f"ST{n}")
    life_cycle_state = LifeCycleState.IN_PROGRESS


class JobCancellationReasonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobCancellationReason

    name = factory.Sequence(lambda n: f"Reason {n}")
    alternative_code = factory.Sequence(lambda n: f"RS{n}")


class JobTypeFactory(factory.django.DjangoModelFactory):
    """A type allowing one status per life cycle state, each transition's default being the one in
    its target state; `without_default` leaves every default unset."""

    class Meta:
        model = JobType
        skip_postgeneration_save = True

    class Params:
        without_default = factory.Trait(with_default=False)
        expires_on_start = factory.Trait(
            expiration_settings=ExpirationSetting.ON_START_PROGRESS, expiration_days=3
        )

    name = factory.Sequence(lambda n: f"Type {n}")
    alternative_code = factory.Sequence(lambda n: f"TY{n}")
    with_default = True

    @classmethod
    def _create(cls, model_class, *args, with_default=True, **kwargs):
        job_type = super()._create(model_class, *args, **kwargs)
        statuses = [
            JobStatusFactory(
                name=f"{job_type.alternative_code} {state.label}",
                alternative_code=f"{job_type.alternative_code}-{state.value}",
                life_cycle_state=state,
            )
            for state in LifeCycleState
        ]
        job_type.allowed_statuses.add(*statuses)
        if with_default:
            in_state = {status.life_cycle_state: status for status in statuses}
            for declared in TRANSITIONS.values():
                setattr(job_type, declared.default_status_field, in_state[declared.target])
            job_type.default_create_status = in_state[LifeCycleState.DRAFT]
            job_type.save()
        return job_type


def status_of(job_type: JobType, state: str) -> JobStatus:
    return job_type.allowed_statuses.filter(life_cycle_state=state).first()


class JobFactory(factory.django.DjangoModelFactory):
    """A PENDING job (or in the `life_cycle_state` given), in its type's status for that state."""

    class Meta:
        model = Job

    description = factory.Faker("sentence")
    type = factory.SubFactory(JobTypeFactory)
    life_cycle_state = LifeCycleState.PENDING
    status = factory.LazyAttribute(lambda job: status_of(job.type, job.life_cycle_state))


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    job = factory.SubFactory(JobFactory)
    user = factory.SubFactory(UserFactory)
    unit = factory.SubFactory(GroupFactory)


def bulk_pending_jobs(
    job_type: JobType, count: int, prefix: str = "BK", state: str = LifeCycleState.PENDING
) -> list[Job]:
    """Many jobs at once (pending unless `state` says otherwise), for tests about hundreds of
    jobs (numbers given, not derived)."""
    status = status_of(job_type, state)
    return Job.objects.bulk_create(
        Job(number=f"{prefix}{i:05d}", type=job_type, status=status, life_cycle_state=state)
        for i in range(count)
    )


def queued_run(
    user, transition: str = "start_progress", *, channel: str = Channel.ADMIN, **filters: str
) -> TransitionRun:
    """A background run as a door queues it, through the service: every job the filter selects."""
    return queue_run(
        transition=transition,
        selection=Selection.of_filter(filters),
        user=user,
        channel=channel,
    )
