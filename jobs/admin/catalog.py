"""The catalog: job statuses, job types (their allowed statuses and defaults) and cancellation
reasons."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from jobs.models import (
    CREATE_STATES,
    AllowedStatus,
    JobCancellationReason,
    JobStatus,
    JobType,
)
from jobs.transitions import TRANSITIONS

# Each default-status field offers the statuses of its transition's target state.
DEFAULT_STATUS_STATES = {t.default_status_field: t.target for t in TRANSITIONS.values()}


@admin.register(JobStatus)
class JobStatusAdmin(admin.ModelAdmin):
    list_display = ["name", "alternative_code", "life_cycle_state"]
    list_filter = ["life_cycle_state"]
    search_fields = ["name", "alternative_code"]


class JobTypeForm(forms.ModelForm):
    class Meta:
        model = JobType
        fields = [
            "name",
            "alternative_code",
            "description",
            "fulfillment_scope",
            "default_create_status",
            *DEFAULT_STATUS_STATES,
            "default_cancellation_reason",
            "expiration_settings",
            "expiration_days",
        ]

    def clean(self) -> dict[str, Any]:
        # The allowed statuses are the inline's, checked there against these defaults; the
        # model's own check reads them from the database, which the inline has not saved yet.
        self.instance.allowed_checked_by_form = True
        return super().clean()


class SequenceFormSet(forms.BaseInlineFormSet):
    """The type's allowed statuses as they are about to be saved: every default of the type must
    be among them (JobType.clean checks each default's state)."""

    def clean(self) -> None:
        super().clean()
        kept = {
            form.cleaned_data["status"]
            for form in self.forms
            if form.cleaned_data.get("status") and not form.cleaned_data.get("DELETE")
        }
        missing = [
            str(JobType._meta.get_field(name).verbose_name)
            for name in ("default_create_status", *DEFAULT_STATUS_STATES)
            if getattr(self.instance, f"{name}_id") is not None
            and getattr(self.instance, name) not in kept
        ]
        if missing:
            raise forms.ValidationError(
                f"The {', '.join(missing)} must be an allowed status: add it here."
            )


class AllowedStatusInline(admin.TabularInline):
    """The statuses the type allows, in sequence: within a state, an update moves a job only to
    a status at the same position or later."""

    model = AllowedStatus
    formset = SequenceFormSet
    fields = ["status", "position"]
    extra = 1
    verbose_name_plural = "allowed statuses, in sequence"


@admin.register(JobType)
class JobTypeAdmin(admin.ModelAdmin):
    form = JobTypeForm
    list_display = [
        "name",
        "alternative_code",
        "fulfillment_scope",
        *DEFAULT_STATUS_STATES,
        "expiration_settings",
    ]
    list_filter = ["fulfillment_scope", "expiration_settings"]
    list_select_related = [*DEFAULT_STATUS_STATES]
    search_fields = ["name", "alternative_code"]
    inlines = [AllowedStatusInline]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in DEFAULT_STATUS_STATES:
            # Which of these the type allows is checked on save, against the statuses chosen
            # in the same form.
            kwargs["queryset"] = JobStatus.objects.filter(
                life_cycle_state=DEFAULT_STATUS_STATES[db_field.name]
            )
        elif db_field.name == "default_create_status":
            kwargs["queryset"] = JobStatus.objects.filter(life_cycle_state__in=CREATE_STATES)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(JobCancellationReason)
class JobCancellationReasonAdmin(admin.ModelAdmin):
    list_display = ["name", "alternative_code", "description"]
    search_fields = ["name", "alternative_code"]
