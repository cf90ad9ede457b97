"""The job list and the job page: its fields, owner and assignment, saved through the services
(`jobs.admin.job_form`), its history of transitions and updates together, and its buttons (the
transitions themselves are `jobs.admin.transitions`')."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from jobs.admin.history import job_history_table
from jobs.admin.job_form import JobForm
from jobs.admin.transitions import TransitionAdminMixin
from jobs.admin.words import admin_words
from jobs.exceptions import JobNotFound, JobsError
from jobs.filters import overdue
from jobs.metrics import access_refused
from jobs.models import Assignment, Channel, Job, JobTransitionLog
from jobs.services import create_job, update_job
from jobs.visibility import sight_of


class OverdueFilter(admin.SimpleListFilter):
    """Jobs still open whose expiration date has passed (as GET jobs?overdue=true)."""

    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("true", "Overdue"), ("false", "Not overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "true":
            return queryset.filter(overdue())
        if self.value() == "false":
            return queryset.exclude(overdue())
        return queryset


@admin.register(Job)
class JobAdmin(TransitionAdminMixin, admin.ModelAdmin):
    # Jobs are cancelled, not deleted in bulk: deleting takes their transition log (the audit
    # trail) with them, and a statement bound on the server takes at most 65,535 parameters,
    # which Django 5.2's delete of that many jobs would exceed (docs/deploy.md).
    # Django 6.1 adds where the actions are shown (`action_location`); passed on only when
    # given, so both Django lines are served.
    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, tuple]:
        where = {} if action_location is None else {"action_location": action_location}
        actions = super().get_actions(request, **where)
        actions.pop("delete_selected", None)
        return actions

    list_display = [
        "number",
        "state",
        "status",
        "type",
        "assignee",
        "short_description",
        "updated",
    ]
    list_filter = [
        "life_cycle_state",
        OverdueFilter,
        "type",
        "status",
        ("owned_by_group", admin.RelatedOnlyFieldListFilter),
        ("assigned_to__user", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["type", "status", "assigned_to__user", "assigned_to__unit"]
    search_fields = ["number", "description"]
    form = JobForm
    fields = [
        "number",
        "description",
        "notes",
        "external_reference",
        "type",
        "owned_by_group",
        "assigned_user",
        "assigned_unit",
        "life_cycle_state",
        "status",
        "rating_state",
        "scheduled_date",
        "expiration_date",
        "cancellation_reason",
        "actual_start_date",
        "actual_completed_date",
        "created_date",
        "created_by_user",
        "updated_date",
        "updated_by_user",
        "history",
    ]
    # What the page shows but no one edits here: what the form does not take is the services'
    # to write (the state, by a transition; the expiration date, by the type's rule).
    readonly_fields = [name for name in fields if name not in JobForm.base_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # An update never changes a job's type.
        return [*self.readonly_fields, "type"] if obj is not None else self.readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        # Only the jobs one sees (jobs.visibility): the list, its counts, search and filters,
        # "select all", every action and the job page (one not seen is "not found").
        return super().get_queryset(request).filter(sight_of(request.user).q())

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        job = super().get_object(request, object_id, from_field)
        if job is None:  # none, or not one this user sees: the same "not found" either way
            access_refused("admin", JobNotFound.code, request.user, f"job {object_id}")
        return job

    @admin.display(description="description")
    def short_description(self, job: Job) -> str:
        return job.description if len(job.description) <= 40 else job.description[:37] + "…"

    @admin.display(description="state", ordering="life_cycle_state")
    def state(self, job: Job) -> str:
        return job.get_life_cycle_state_display()

    @admin.display(description="updated", ordering="updated_date")
    def updated(self, job: Job) -> str:
        # Short enough to fit beside the other columns at common widths (Django's own format
        # takes half as much again).
        return date_format(timezone.localtime(job.updated_date), "Y-m-d H:i")

    @admin.display(description="assigned to")
    def assignee(self, job: Job) -> str:
        try:
            return str(job.assigned_to)
        except ObjectDoesNotExist:
            return "—"

    @admin.display(description="assigned user")
    def assigned_user(self, job: Job) -> str:
        return str(self._assignment(job, "user") or "—")

    @admin.display(description="assigned unit")
    def assigned_unit(self, job: Job) -> str:
        return str(self._assignment(job, "unit") or "—")

    def _assignment(self, job: Job, part: str) -> Any:
        try:
            return getattr(job.assigned_to, part)
        except ObjectDoesNotExist:
            return None

    @admin.display(description="history of transitions and updates")
    def history(self, job: Job) -> str:
        return job_history_table(job)

    def save_model(self, request: HttpRequest, obj: Job, form: Any, change: bool) -> None:
        # Through the services, as the API: the job's record, its event, and their rules.
        if change:
            update_job(obj.pk, form.job_changes(), user=request.user, channel=Channel.ADMIN)
            return
        job = create_job(form.new_job(), user=request.user, channel=Channel.ADMIN)
        obj.pk, obj.number = job.pk, job.number  # the page goes on with the job made

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context=None
    ) -> HttpResponse:
        # Django's page lists admin edits only ("no change history" for a job that moved many
        # times): a job's history is its transitions.
        log = reverse(f"admin:{JobTransitionLog._meta.app_label}_jobtransitionlog_changelist")
        return HttpResponseRedirect(f"{log}?job__id__exact={object_id}")

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except JobsError as refusal:  # from the service, after the form had nothing to say
            self.message_user(request, f"Nothing was saved. {admin_words(refusal)}", messages.ERROR)
            return HttpResponseRedirect(request.path)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["job", "user", "unit"]
    list_select_related = ["job", "user", "unit"]
    search_fields = ["job__number", "user__username", "unit__name"]
    raw_id_fields = ["job"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Assignment]:
        return super().get_queryset(request).filter(sight_of(request.user).q(prefix="job__"))
