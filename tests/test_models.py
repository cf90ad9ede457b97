import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from jobs.models import ExpirationSetting, Job, JobType, LifeCycleState
from tests.factories import JobFactory, JobStatusFactory, JobTypeFactory, status_of

pytestmark = pytest.mark.django_db


def test_a_new_job_is_numbered_from_its_id():
    job = JobFactory()
    assert job.number == f"JB{job.pk:05d}"
    assert Job.objects.get(pk=job.pk).number == job.number


def test_a_deleted_jobs_number_is_never_given_again():
    # A number counted from the jobs there are (or the highest) would hand JB… out twice.
    first, second = JobFactory(), JobFactory()
    taken = second.number
    second.delete()
    assert JobFactory().number not in {first.number, taken}


def test_the_state_cannot_be_assigned_directly():
    job = JobFactory()
    with pytest.raises(AttributeError):
        job.life_cycle_state = LifeCycleState.IN_PROGRESS


def test_start_progress_moves_a_pending_job_to_in_progress_in_memory():
    job = JobFactory()
    status = status_of(job.type, LifeCycleState.IN_PROGRESS)
    now = timezone.now()
    job.start_progress(status=status, by=None, at=now)
    assert job.life_cycle_state == LifeCycleState.IN_PROGRESS
    assert job.status == status
    assert job.updated_date == now
    assert Job.objects.get(pk=job.pk).life_cycle_state == LifeCycleState.PENDING


@pytest.mark.parametrize(
    "state",
    [
        LifeCycleState.DRAFT,
        LifeCycleState.IN_PROGRESS,
        LifeCycleState.COMPLETED,
        LifeCycleState.CANCELLED,
    ],
)
def test_start_progress_is_refused_unless_pending(state):
    job = JobFactory(life_cycle_state=state)
    with pytest.raises(TransitionNotAllowed):
        job.start_progress(
            status=status_of(job.type, LifeCycleState.IN_PROGRESS), by=None, at=timezone.now()
        )


def test_start_progress_refuses_a_status_of_another_state():
    job = JobFactory()
    with pytest.raises(ValueError, match="not IN_PROGRESS"):
        job.start_progress(
            status=status_of(job.type, LifeCycleState.COMPLETED), by=None, at=timezone.now()
        )
    assert job.life_cycle_state == LifeCycleState.PENDING


def test_the_whole_life_cycle_can_be_walked():
    job = JobFactory(life_cycle_state=LifeCycleState.DRAFT)
    now = timezone.now()
    job.submit(status=status_of(job.type, LifeCycleState.PENDING), by=None, at=now)
    job.start_progress(status=status_of(job.type, LifeCycleState.IN_PROGRESS), by=None, at=now)
    job.complete(status=status_of(job.type, LifeCycleState.COMPLETED), by=None, at=now)
    assert job.life_cycle_state == LifeCycleState.COMPLETED
    with pytest.raises(TransitionNotAllowed):
        job.cancel(status=status_of(job.type, LifeCycleState.CANCELLED), by=None, at=now)


def test_starting_a_type_that_expires_on_start_sets_the_expiration():
    job = JobFactory(type=JobTypeFactory(expires_on_start=True))
    now = timezone.now()
    job.start_progress(status=job.type.default_start_status, by=None, at=now)
    assert job.expiration_date == now + timezone.timedelta(days=3)


def test_job_clean_rejects_a_status_the_type_does_not_allow():
    job = JobFactory()
    job.status = JobStatusFactory(life_cycle_state=LifeCycleState.PENDING)
    with pytest.raises(ValidationError, match="not allowed"):
        job.clean()


def test_job_clean_rejects_a_status_of_another_state():
    job = JobFactory()
    job.status = status_of(job.type, LifeCycleState.COMPLETED)
    with pytest.raises(ValidationError, match="COMPLETED"):
        job.clean()


def test_type_clean_rejects_a_default_start_status_that_is_not_in_progress():
    job_type = JobTypeFactory()
    job_type.default_start_status = status_of(job_type, LifeCycleState.PENDING)
    with pytest.raises(ValidationError, match="In progress"):
        job_type.clean()


def test_type_clean_rejects_a_default_start_status_that_is_not_allowed():
    job_type = JobTypeFactory()
    job_type.default_start_status = JobStatusFactory(life_cycle_state=LifeCycleState.IN_PROGRESS)
    with pytest.raises(ValidationError, match="allowed"):
        job_type.clean()


def test_the_database_refuses_an_unknown_state():
    job = JobFactory()
    with pytest.raises(IntegrityError):
        Job.objects.filter(pk=job.pk).update(life_cycle_state="STARTED")


def test_the_database_refuses_an_expiration_on_start_without_days():
    with pytest.raises(IntegrityError):
        JobType.objects.create(
            name="x", alternative_code="x", expiration_settings=ExpirationSetting.ON_START_PROGRESS
        )


def test_saving_a_job_loaded_before_a_concurrent_start_is_refused():
    from django_fsm import ConcurrentTransition

    job = JobFactory()
    stale = Job.objects.get(pk=job.pk)
    Job.objects.filter(pk=job.pk).update(life_cycle_state=LifeCycleState.IN_PROGRESS)
    stale.description = "edited meanwhile"
    # the refused save spoils its transaction, as in the admin, where an atomic block wraps it
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        stale.save()
    assert Job.objects.get(pk=job.pk).description != "edited meanwhile"


@pytest.mark.parametrize(
    ("field", "wrong_state"),
    [
        ("default_complete_status", LifeCycleState.IN_PROGRESS),
        ("default_cancel_status", LifeCycleState.COMPLETED),
    ],
)
def test_a_types_default_for_complete_or_cancel_must_be_allowed_and_in_its_target_state(
    field, wrong_state
):
    job_type = JobTypeFactory()
    setattr(job_type, field, status_of(job_type, wrong_state))
    with pytest.raises(ValidationError, match="must be"):
        job_type.clean()
    target = LifeCycleState.COMPLETED if field == "default_complete_status" else "CANCELLED"
    setattr(job_type, field, JobStatusFactory(life_cycle_state=target))  # not allowed for it
    with pytest.raises(ValidationError, match="allowed status"):
        job_type.clean()
    setattr(job_type, field, status_of(job_type, target))
    job_type.clean()


def test_the_database_refuses_a_cancellation_reason_on_a_job_that_is_not_cancelled():
    from django.db import IntegrityError, transaction

    from tests.factories import JobCancellationReasonFactory

    job = JobFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=job.pk).update(cancellation_reason=JobCancellationReasonFactory())


def test_a_types_default_on_create_is_an_allowed_draft_or_pending_status():
    job_type = JobTypeFactory()
    job_type.default_create_status = status_of(job_type, LifeCycleState.IN_PROGRESS)
    with pytest.raises(ValidationError, match="default status on create must be Draft or Pending"):
        job_type.clean()
    job_type.default_create_status = status_of(JobTypeFactory(), LifeCycleState.PENDING)
    with pytest.raises(ValidationError, match="must be an allowed status"):
        job_type.clean()
    job_type.default_create_status = status_of(job_type, LifeCycleState.PENDING)
    job_type.clean()
