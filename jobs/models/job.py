"""A job, its state machine and its assignment."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from jobs.models.catalog import CREATE_STATES, JobCancellationReason, JobStatus, JobType
from jobs.models.choices import (
    CANCEL_PERMISSION,
    COMPLETE_PERMISSION,
    START_PROGRESS_PERMISSION,
    SUBMIT_PERMISSION,
    ExpirationSetting,
    LifeCycleState,
    RatingState,
    in_choices,
)


class Job(ConcurrentTransitionMixin, models.Model):
    """A job. `save()` of a loaded job only writes if its state is still the one it was loaded
    with (ConcurrentTransitionMixin), so an edit in the admin cannot undo a concurrent start."""

    number = models.CharField(max_length=20, unique=True, editable=False)
    description = models.TextField(blank=True)
    notes = models.TextField(blank=True)
    external_reference = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        unique=True,
        help_text="the id another system knows this job by; unique when set",
    )
    type = models.ForeignKey(JobType, on_delete=models.PROTECT, related_name="jobs")
    status = models.ForeignKey(JobStatus, on_delete=models.PROTECT, related_name="jobs")
    life_cycle_state = FSMField(
        max_length=20,
        choices=LifeCycleState.choices,
        default=LifeCycleState.DRAFT,
        protected=True,
        db_index=True,
    )
    rating_state = models.CharField(
        max_length=20, choices=RatingState.choices, default=RatingState.PENDING
    )
    expiration_date = models.DateTimeField(null=True, blank=True)
    cancellation_reason = models.ForeignKey(
        JobCancellationReason,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
        editable=False,
    )
    actual_start_date = models.DateTimeField(null=True, blank=True, editable=False)
    actual_completed_date = models.DateTimeField(null=True, blank=True, editable=False)
    scheduled_date = models.DateTimeField(null=True, blank=True)
    created_date = models.DateTimeField(default=timezone.now, editable=False)
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    updated_date = models.DateTimeField(default=timezone.now, editable=False)
    updated_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    # Raised by every write of the row, in the statement that writes it: the API's ETag.
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="how many times the job was written"
    )
    # CRM.COM's "owned by group": its users see the job (jobs.visibility).
    owned_by_group = models.ForeignKey(
        Group,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_jobs",
        help_text="the unit whose users see and move this job",
    )

    class Meta:
        ordering = ["-created_date", "-id"]
        permissions = [
            ("view_all_jobs", "Can see every job, whoever owns it"),
            ("submit_job", "Can submit draft jobs"),
            ("start_progress_job", "Can start progress on jobs"),
            ("complete_job", "Can complete jobs"),
            ("cancel_job", "Can cancel jobs"),
        ]
        constraints = [
            in_choices("life_cycle_state", LifeCycleState),
            in_choices("rating_state", RatingState),
            models.CheckConstraint(
                condition=Q(cancellation_reason__isnull=True)
                | Q(life_cycle_state=LifeCycleState.CANCELLED),
                name="job_cancellation_reason_only_when_cancelled",
            ),
            models.CheckConstraint(
                condition=Q(actual_completed_date__isnull=True)
                | Q(life_cycle_state=LifeCycleState.COMPLETED),
                name="job_actual_completed_date_only_when_completed",
            ),
        ]
        indexes = [models.Index(fields=["-created_date", "-id"], name="job_newest_first")]

    def __str__(self) -> str:
        return self.number or "(new job)"

    def save(self, *args, **kwargs) -> None:
        if self.number and self.pk is not None:
            # Counted by the database: a write of another process is never counted over.
            self.version = models.F("version") + 1
            super().save(*args, **kwargs)
            self.refresh_from_db(fields=["version"])
            return
        if self.number:
            super().save(*args, **kwargs)
            return
        # The number comes from the primary key, which the database hands out once and never
        # twice: two jobs created at the same moment cannot be given the same number.
        # The unique placeholder keeps the NOT NULL/UNIQUE column valid for the instant between
        # the two statements, which no other transaction can see. No savepoint: two round trips.
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            self.number = f"~{uuid.uuid4().hex[:18]}"
            super().save(*args, **kwargs)
            self.number = format_job_number(self.pk)
            type(self).objects.filter(pk=self.pk).update(number=self.number)

    def clean(self) -> None:
        if self.type_id is None or self.status_id is None:
            return
        if self.pk is None:
            # A new job enters its status's state (jobs.services.intake), a DRAFT or PENDING one.
            if self.status.life_cycle_state not in CREATE_STATES:
                raise ValidationError(
                    {"status": f"A new job starts in a {' or '.join(CREATE_STATES)} status."}
                )
        elif self.status.life_cycle_state != self.life_cycle_state:
            raise ValidationError(
                {
                    "status": f"Status {self.status} is {self.status.life_cycle_state}, "
                    f"but the job is {self.life_cycle_state}."
                }
            )
        if not self.type.allowed_statuses.filter(pk=self.status_id).exists():
            raise ValidationError(
                {"status": f"Status {self.status} is not allowed for {self.type}."}
            )

    def _enter(self, status: JobStatus, by, at: datetime, state: str) -> None:
        if status.life_cycle_state != state:
            raise ValueError(f"status {status} is {status.life_cycle_state}, not {state}")
        self.status = status
        self.updated_by_user = by
        self.updated_date = at

    @transition(
        field=life_cycle_state,
        source=LifeCycleState.DRAFT,
        target=LifeCycleState.PENDING,
        permission=SUBMIT_PERMISSION,
    )
    def submit(self, *, status: JobStatus, by, at: datetime) -> None:
        """Hand a draft over for work. `status` is already resolved, as for every transition."""
        self._enter(status, by, at, LifeCycleState.PENDING)
        if self.type.expiration_settings == ExpirationSetting.ON_PENDING_STATE:
            self.expiration_date = at + timedelta(days=self.type.expiration_days or 0)

    @transition(
        field=life_cycle_state,
        source=LifeCycleState.PENDING,
        target=LifeCycleState.IN_PROGRESS,
        permission=START_PROGRESS_PERMISSION,
    )
    def start_progress(self, *, status: JobStatus, by, at: datetime) -> None:
        """Start work. `status` is already resolved: the requested one or the type's default."""
        self._enter(status, by, at, LifeCycleState.IN_PROGRESS)
        self.actual_start_date = at
        if self.type.expiration_settings == ExpirationSetting.ON_START_PROGRESS:
            self.expiration_date = at + timedelta(days=self.type.expiration_days)

    @transition(
        field=life_cycle_state,
        source=LifeCycleState.IN_PROGRESS,
        target=LifeCycleState.COMPLETED,
        permission=COMPLETE_PERMISSION,
    )
    def complete(self, *, status: JobStatus, by, at: datetime) -> None:
        self._enter(status, by, at, LifeCycleState.COMPLETED)
        self.actual_completed_date = at

    @transition(
        field=life_cycle_state,
        source=[LifeCycleState.DRAFT, LifeCycleState.PENDING, LifeCycleState.IN_PROGRESS],
        target=LifeCycleState.CANCELLED,
        permission=CANCEL_PERMISSION,
    )
    def cancel(
        self,
        *,
        status: JobStatus,
        by,
        at: datetime,
        cancellation_reason: JobCancellationReason | None = None,
    ) -> None:
        self._enter(status, by, at, LifeCycleState.CANCELLED)
        self.cancellation_reason = cancellation_reason


def format_job_number(pk: int) -> str:
    return f"JB{pk:05d}"


class Assignment(models.Model):
    """The job's "Assign object": a user, a unit (a Django group), or both."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="assigned_to")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="job_assignments",
    )
    unit = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="job_assignments"
    )

    def __str__(self) -> str:
        parts = [str(p) for p in (self.user, self.unit) if p is not None]
        return " / ".join(parts) or "unassigned"
