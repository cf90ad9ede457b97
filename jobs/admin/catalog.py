"""The catalog: job statuses, job types (their allowed statuses and defaults) and cancellation
reasons."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from jobs.models import CREATE_STATES, JobCancellationReason, JobStatus, JobType
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
            "allowed_statuses",
            "default_create_status",
            *DEFAULT_STATUS_STATES,
            "default_cancellation_reason",
            "expiration_settings",
            "expiration_days",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "allowed_statuses" in cleaned:
            # Lets JobType.clean check the default against the statuses being saved.
            self.instance.allowed_statuses_to_save = cleaned["allowed_statuses"]
        return cleaned


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
    filter_horizontal = ["allowed_statuses"]

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
