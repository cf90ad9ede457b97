"""The job page's form: a job's own fields, its owner and its assignment, with the statuses it may
take listed, turned into what the services take (`jobs.services.create_job` on add,
`jobs.services.update_job` on change), so the page does what the API does."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ObjectDoesNotExist

from jobs.models import CREATE_STATES, Job, JobStatus
from jobs.selectors import next_statuses
from jobs.services import JobChanges, NewJob

# The fields the form edits that are the job's own columns, as the services name them.
OWN_FIELDS = (
    "description",
    "notes",
    "external_reference",
    "scheduled_date",
    "owned_by_group",
    "status",
)


class JobForm(forms.ModelForm):
    assigned_user = forms.ModelChoiceField(
        get_user_model().objects.order_by("username"), required=False, label="assigned user"
    )
    assigned_unit = forms.ModelChoiceField(
        Group.objects.order_by("name"), required=False, label="assigned unit"
    )

    class Meta:
        model = Job
        fields = ["type", *OWN_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        job = self.instance
        if "status" not in self.fields:  # read-only for this user
            return
        for name in (*OWN_FIELDS, "assigned_user", "assigned_unit"):
            # The page carries the values it showed, so that what the user changed is told
            # from what someone else changed meanwhile (`changed_data`).
            self.fields[name].show_hidden_initial = True
        if job.pk is None:
            # A new job starts in DRAFT or PENDING, in a status some type allows there.
            statuses = JobStatus.objects.filter(
                life_cycle_state__in=CREATE_STATES, allowed_for_types__isnull=False
            ).distinct()
        else:
            # Where an update may move the job: its status, or one after it in its state.
            allowed = [job.status_id, *(entry.status.pk for entry in next_statuses(job))]
            statuses = JobStatus.objects.filter(pk__in=allowed)
            try:
                assignment = job.assigned_to
            except ObjectDoesNotExist:
                assignment = None
            if assignment is not None:
                self.initial["assigned_user"] = assignment.user_id
                self.initial["assigned_unit"] = assignment.unit_id
        self.fields["status"].queryset = statuses.order_by("name")

    def new_job(self) -> NewJob:
        data = self.cleaned_data
        return NewJob(
            job_type={"pk": data["type"].pk},
            status={"pk": data["status"].pk},
            description=data.get("description", ""),
            notes=data.get("notes", ""),
            scheduled_date=data.get("scheduled_date"),
            assigned_user=data.get("assigned_user"),
            assigned_unit=data.get("assigned_unit"),
            owned_by_group=data.get("owned_by_group"),
            external_reference=data.get("external_reference"),
        )

    def job_changes(self) -> JobChanges:
        """Only what the user changed: a field changed meanwhile by someone else is kept."""
        data, changed = self.cleaned_data, set(self.changed_data)
        sent = {name: data[name] for name in OWN_FIELDS if name in changed}
        if changed & {"assigned_user", "assigned_unit"}:
            sent["assigned_to"] = (data.get("assigned_user"), data.get("assigned_unit"))
        return JobChanges(**sent)
