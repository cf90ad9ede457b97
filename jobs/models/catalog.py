"""The catalog CRM.COM names by id, name or alternative code: statuses, cancellation reasons
and job types, with each type's status sequence."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from jobs.models.choices import ExpirationSetting, FulfillmentScope, LifeCycleState, in_choices


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
        constraints = [in_choices("life_cycle_state", LifeCycleState)]


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
            in_choices("fulfillment_scope", FulfillmentScope),
            in_choices("expiration_settings", ExpirationSetting),
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
