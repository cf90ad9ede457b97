"""The jobs domain of CRM.COM: statuses, types, jobs and the record of every transition.

A job's life cycle is a django-fsm state machine on `Job.life_cycle_state`. Transitions change the
job in memory only; `jobs.services` owns locking, saving and the transition log.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

SUBMIT_PERMISSION = "jobs.submit_job"
VIEW_ALL_PERMISSION = "jobs.view_all_jobs"
START_PROGRESS_PERMISSION = "jobs.start_progress_job"
COMPLETE_PERMISSION = "jobs.complete_job"
CANCEL_PERMISSION = "jobs.cancel_job"


class LifeCycleState(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    PENDING = "PENDING", "Pending"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    COMPLETED = "COMPLETED", "Completed"
    CANCELLED = "CANCELLED", "Cancelled"


class FulfillmentScope(models.TextChoices):
    GENERIC_PURPOSE = "GENERIC_PURPOSE", "Generic purpose"
    NEW_SUBSCRIPTION = "NEW_SUBSCRIPTION", "New subscription"
    ACTIVATE_SUBSCRIPTION = "ACTIVATE_SUBSCRIPTION", "Activate subscription"
    DEACTIVATE_SUBSCRIPTION = "DEACTIVATE_SUBSCRIPTION", "Deactivate subscription"
    ADD_SERVICES = "ADD_SERVICES", "Add services"
    REMOVE_SERVICES = "REMOVE_SERVICES", "Remove services"
    SWAP_SERVICES = "SWAP_SERVICES", "Swap services"
    ADD_INSTALLED_ITEMS = "ADD_INSTALLED_ITEMS", "Add installed items"
    REMOVE_INSTALLED_ITEMS = "REMOVE_INSTALLED_ITEMS", "Remove installed items"
    SWAP_INSTALLED_ITEMS = "SWAP_INSTALLED_ITEMS", "Swap installed items"
    MOVE_SUBSCRIPTION = "MOVE_SUBSCRIPTION", "Move subscription"
    CANCEL_SUBSCRIPTION = "CANCEL_SUBSCRIPTION", "Cancel subscription"
    SUBSCRIPTION_MAINTAINANCE = "SUBSCRIPTION_MAINTAINANCE", "Subscription maintenance"


class ExpirationSetting(models.TextChoices):
    NONE = "NONE", "Never expires"
    X_DAYS_AFTER_JOB_CREATION = "X_DAYS_AFTER_JOB_CREATION", "X days after job creation"
    ON_PENDING_STATE = "ON_PENDING_STATE", "On pending state"
    ON_START_PROGRESS = "ON_START_PROGRESS", "On start progress"


class RatingState(models.TextChoices):
    PENDING = "PENDING", "Pending"
    COMPLETED = "COMPLETED", "Completed"


class Channel(models.TextChoices):
    API = "api", "API"
    ADMIN = "admin", "Admin"
    COMMAND = "command", "Command"


def _in_choices(field: str, choices: type[models.TextChoices]) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__in": choices.values}), name=f"%(class)s_{field}_valid"
    )


class CatalogEntry(models.Model):
    """What statuses, types and cancellation reasons share: CRM.COM names each of them by id,
    name or alternative code."""

    name = models.CharField(max_length=100, unique=True)
    alternative_code = models.CharField(max_length=50, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class JobStatus(CatalogEntry):
    life_cycle_state = models.CharField(max_length=20, choices=LifeCycleState.choices)

    class Meta(CatalogEntry.Meta):
        verbose_name_plural = "job statuses"
        constraints = [_in_choices("life_cycle_state", LifeCycleState)]


class JobCancellationReason(CatalogEntry):
    """Why a job was cancelled (CRM.COM's cancellation reasons)."""


# The states a job is created in (CRM.COM: a draft, or a job handed over at once).
CREATE_STATES = (LifeCycleState.DRAFT, LifeCycleState.PENDING)


def _default_status_field(
    verbose_name: str, *states: LifeCycleState, purpose: str = ""
) -> models.ForeignKey:
    in_states = " or ".join(state.label for state in states)
    field = models.ForeignKey(
        JobStatus,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=verbose_name,
        help_text=f"An allowed status in the {in_states} state{f': {purpose}' if purpose else ''}.",
    )
    # The states a status must be in to be this default: JobType.clean reads them, and each
    # transition's declaration (jobs.transitions) is checked against its field's.
    field.entered_states = states
    return field


def default_status_fields(model: type[models.Model]) -> list[models.ForeignKey]:
    """The fields of a job type that hold a default status, each with its `entered_states`."""
    return [f for f in model._meta.get_fields() if hasattr(f, "entered_states")]


class JobType(CatalogEntry):
    fulfillment_scope = models.CharField(
        max_length=40, choices=FulfillmentScope.choices, default=FulfillmentScope.GENERIC_PURPOSE
    )
    allowed_statuses = models.ManyToManyField(
        JobStatus, through="AllowedStatus", related_name="allowed_for_types"
    )
    default_submit_status = _default_status_field(
        "default status on submit", LifeCycleState.PENDING
    )
    default_start_status = _default_status_field(
        "default status on start progress", LifeCycleState.IN_PROGRESS
    )
    default_complete_status = _default_status_field(
        "default status on complete", LifeCycleState.COMPLETED
    )
    default_cancel_status = _default_status_field(
        "default status on cancel", LifeCycleState.CANCELLED
    )
    default_create_status = _default_status_field(
        "default status on create", *CREATE_STATES, purpose="a new job's, when none is asked for"
    )
    default_cancellation_reason = models.ForeignKey(
        JobCancellationReason,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Recorded when a job of this type is cancelled without a reason.",
    )
    expiration_settings = models.CharField(
        max_length=40, choices=ExpirationSetting.choices, default=ExpirationSetting.NONE
    )
    expiration_days = models.PositiveIntegerField(null=True, blank=True)

    class Meta(CatalogEntry.Meta):
        constraints = [
            _in_choices("fulfillment_scope", FulfillmentScope),
            _in_choices("expiration_settings", ExpirationSetting),
            models.CheckConstraint(
                condition=~Q(
                    expiration_settings__in=[
                        ExpirationSetting.X_DAYS_AFTER_JOB_CREATION,
                        ExpirationSetting.ON_START_PROGRESS,
                    ]
                )
                | Q(expiration_days__isnull=False),
                name="jobtype_expiration_days_when_needed",
            ),
        ]

    def clean(self) -> None:
        needs_days = self.expiration_settings in {
            ExpirationSetting.X_DAYS_AFTER_JOB_CREATION,
            ExpirationSetting.ON_START_PROGRESS,
        }
        if needs_days and self.expiration_days is None:
            raise ValidationError({"expiration_days": "Required by this expiration setting."})
        # Whether a default is allowed depends on the many-to-many, which a form saves after this
        # runs: a form sets `allowed_statuses_to_save` to what it is about to save.
        allowed = getattr(self, "allowed_statuses_to_save", None)
        if getattr(self, "allowed_checked_by_form", False):
            allowed = None  # the admin's inline checks the statuses it is about to save
        elif allowed is None and self.pk is not None:
            allowed = self.allowed_statuses.all()
        errors = {}
        for field in default_status_fields(JobType):
            status = getattr(self, field.name)
            if status is None:
                continue
            if status.life_cycle_state not in field.entered_states:
                words = " or ".join(state.label for state in field.entered_states)
                errors[field.name] = f"The {field.verbose_name} must be {words}."
            elif allowed is not None and status not in allowed:
                errors[field.name] = f"The {field.verbose_name} must be an allowed status."
        if errors:
            raise ValidationError(errors)


class AllowedStatus(models.Model):
    """A status a job type allows, at its place in the type's sequence: within a state, a job
    moves only to a later or equal position (equal, the default, is no order). Migration 0010."""

    job_type = models.ForeignKey(
        JobType, on_delete=models.CASCADE, db_column="jobtype_id", related_name="sequence"
    )
    status = models.ForeignKey(
        JobStatus, on_delete=models.CASCADE, db_column="jobstatus_id", related_name="+"
    )
    position = models.PositiveIntegerField(
        default=0, help_text="the status's place in the type's sequence, within its state"
    )

    class Meta:
        db_table = "jobs_jobtype_allowed_statuses"
        unique_together = [("job_type", "status")]
        ordering = ["position", "id"]
        verbose_name = "allowed status"

    def __str__(self) -> str:
        return f"{self.job_type}: {self.status} ({self.position})"


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
            _in_choices("life_cycle_state", LifeCycleState),
            _in_choices("rating_state", RatingState),
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
        if self.status.life_cycle_state != self.life_cycle_state:
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


class RunState(models.TextChoices):
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    FINISHED = "FINISHED", "Finished"
    FAILED = "FAILED", "Failed"
    STOPPED = "STOPPED", "Stopped"


RUN_ENDED = (RunState.FINISHED, RunState.FAILED, RunState.STOPPED)


class TransitionRun(models.Model):
    """A bulk transition carried out in the background (jobs.services.runs): written before any
    job moves, and its counts updated in each batch's own transaction, so they always equal the
    transition log rows that name it."""

    transition = models.CharField(max_length=30, help_text="the transition it carries out")
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.QUEUED)
    selection = models.JSONField(
        help_text="a filter in GET jobs names with up_to_id, frozen when queued; or ids"
    )
    choices = models.JSONField(
        default=dict, help_text="the status and extra parameters asked for, by id"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    selected = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="jobs the selection held when the run started"
    )
    moved = models.PositiveBigIntegerField(default=0)
    moved_first = models.JSONField(default=list, help_text="the first numbers moved")
    skipped = models.JSONField(
        default=dict, help_text='by code: {"count": n, "numbers": the first few}'
    )
    stop_requested = models.BooleanField(default=False)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="who asked the run to stop",
    )
    created_date = models.DateTimeField(default=timezone.now, editable=False)
    started_date = models.DateTimeField(null=True, blank=True)
    finished_date = models.DateTimeField(null=True, blank=True)
    nudged_date = models.DateTimeField(
        null=True, blank=True, help_text="when the sweep last sent its work out again"
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [_in_choices("state", RunState), _in_choices("channel", Channel)]
        indexes = [models.Index(fields=["state"], name="transition_run_state")]

    def __str__(self) -> str:
        # "Start progress, run 3": the transition as the admin's buttons name it.
        return f"{self.transition.replace('_', ' ').capitalize()}, run {self.pk}"

    @property
    def skipped_count(self) -> int:
        return sum(group["count"] for group in self.skipped.values())

    @property
    def ended(self) -> bool:
        return self.state in RUN_ENDED


class TransitionRunChunk(models.Model):
    """A keyset page of a run's selection, ids in (after_id, up_to_id]: the unit a worker leases.
    `after_id` advances with each committed batch, so a chunk taken over resumes where it was."""

    run = models.ForeignKey(TransitionRun, on_delete=models.CASCADE, related_name="chunks")
    after_id = models.BigIntegerField()
    up_to_id = models.BigIntegerField()
    done = models.BooleanField(default=False)
    lessee = models.CharField(max_length=64, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "up_to_id"]
        indexes = [models.Index(fields=["run", "done"], name="run_chunk_open")]

    def __str__(self) -> str:
        return f"run {self.run_id}: ids {self.after_id + 1} to {self.up_to_id}"


class JobTransitionLog(models.Model):
    """One row per transition, written in the same transaction as the state it records."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="transitions")
    transition = models.CharField(max_length=30, help_text="the Job method that ran")
    from_state = models.CharField(max_length=20, choices=LifeCycleState.choices)
    to_state = models.CharField(max_length=20, choices=LifeCycleState.choices)
    from_status = models.ForeignKey(
        JobStatus, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_status = models.ForeignKey(JobStatus, null=True, on_delete=models.SET_NULL, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    cancellation_reason = models.ForeignKey(
        JobCancellationReason, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    run = models.ForeignKey(
        TransitionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="log"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            _in_choices("from_state", LifeCycleState),
            _in_choices("to_state", LifeCycleState),
            _in_choices("channel", Channel),
        ]

    def __str__(self) -> str:
        return f"{self.transition}: {self.from_state} → {self.to_state}"


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def _event_about(model: type[models.Model]) -> models.ForeignKey:
    # No constraint: the outbox keeps an event whose job or run was deleted since.
    return models.ForeignKey(
        model,
        null=True,
        editable=False,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )


class IdempotencyKey(models.Model):
    """A create's `Idempotency-Key` (ours): claimed before the request runs, then holding its
    answer, written in the same transaction as the job it made (jobs.api.idempotency)."""

    # How long a key answers again; older ones are pruned (jobs.retention).
    KEEP = timedelta(hours=24)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the request it came with")
    claimed_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, help_text="null while running")
    # The answer as it was sent, byte for byte (a JSON column would reorder its keys).
    answer = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once")]
        indexes = [models.Index(fields=["claimed_at"], name="idempotency_key_age")]

    def __str__(self) -> str:
        return self.key


class Event(models.Model):
    """The outbox: one row per job per transition, written in the transition's own transaction,
    so an event exists exactly when its transition committed. Other systems read them in order
    (`GET events`)."""

    public_id = models.CharField(max_length=40, unique=True, default=new_event_id, editable=False)
    type = models.CharField(max_length=50)
    timestamp = models.DateTimeField(help_text="when the transition's batch ran")
    data = models.JSONField()
    # The id of the transaction that wrote the row (PostgreSQL's pg_current_xact_id(); 0 where
    # writers take turns, as on SQLite). The feed is ordered by (txid, id) and hands out only
    # rows that no transaction still running can come before: see jobs.events.
    txid = models.BigIntegerField(default=0, editable=False)
    # Whether a worker has made this event's webhook deliveries (see jobs.tasks.fan_out).
    fanned_out = models.BooleanField(default=False, editable=False)
    # Whom the event is about: the feed hands each reader what they see (jobs.visibility).
    job = _event_about(Job)
    run = _event_about(TransitionRun)

    class Meta:
        ordering = ["txid", "id"]
        indexes = [
            models.Index(fields=["txid", "id"], name="event_feed_order"),
            models.Index(fields=["id"], condition=Q(fanned_out=False), name="event_not_fanned_out"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookEndpoint(models.Model):
    """Where other systems want events pushed (Standard Webhooks, signed with `secret`)."""

    url = models.URLField(max_length=2000, help_text="http(s) address that receives POSTs")
    secret = models.CharField(max_length=100, default=new_webhook_secret, editable=False)
    event_types = models.JSONField(
        default=list, blank=True, help_text="the event types it wants; empty: all"
    )
    is_active = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one endpoint: every attempt is counted and its last answer kept."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker holds the delivery until then; one that died holding it is replaced by the sweep.
    leased_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="one_delivery_per_endpoint"),
            _in_choices("state", DeliveryState),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.event.public_id} → {self.endpoint}"
