"""The dispatchers' door. Starting progress, one job or hundreds, goes through jobs.services."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django_fsm import ConcurrentTransition

from jobs.exceptions import JobsError
from jobs.models import (
    START_PROGRESS_PERMISSION,
    Assignment,
    Channel,
    Job,
    JobStatus,
    JobTransitionLog,
    JobType,
    LifeCycleState,
)
from jobs.services import (
    Outcome,
    bulk_start_progress,
    start_progress,
    statuses_allowed_for_every_type,
)

# How the admin names a skip reason in its summary message.
SKIP_LABELS = {
    "JOB_STATE_CONFLICT": "not pending",
    "NO_DEFAULT_STATUS": "no default status",
    "STATUS_NOT_ALLOWED": "status not allowed for its type",
    "STATUS_NOT_FOUND": "status not found",
    "JOB_NOT_FOUND": "not found",
}
NAMED_IN_MESSAGE = 5


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
            "default_start_status",
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
        "default_start_status",
        "expiration_settings",
    ]
    list_filter = ["fulfillment_scope", "expiration_settings"]
    list_select_related = ["default_start_status"]
    search_fields = ["name", "alternative_code"]
    filter_horizontal = ["allowed_statuses"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "default_start_status":
            # Which of these the type allows is checked on save, against the statuses chosen
            # in the same form.
            kwargs["queryset"] = JobStatus.objects.filter(
                life_cycle_state=LifeCycleState.IN_PROGRESS
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class AssignmentInline(admin.StackedInline):
    model = Assignment
    max_num = 1
    extra = 1
    fields = ["user", "unit"]
    verbose_name = verbose_name_plural = "assigned to"


class TransitionLogInline(admin.TabularInline):
    model = JobTransitionLog
    extra = 0
    can_delete = False
    ordering = ["-created_at", "-id"]
    fields = readonly_fields = [
        "created_at",
        "from_state",
        "to_state",
        "from_status",
        "to_status",
        "user",
        "channel",
    ]
    verbose_name_plural = "transition history"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("from_status", "to_status", "user")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StartProgressForm(forms.Form):
    status = forms.ChoiceField(
        label="Start in status", required=False, help_text="Each job's type decides by default."
    )

    def __init__(self, *args: Any, statuses: list[JobStatus], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "The type's default status")] + [
            (str(s.pk), s.name) for s in statuses
        ]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "short_description",
        "type",
        "status",
        "life_cycle_state",
        "assignee",
        "updated_date",
    ]
    list_filter = [
        "life_cycle_state",
        "type",
        "status",
        ("assigned_to__user", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["type", "status", "assigned_to__user", "assigned_to__unit"]
    search_fields = ["number", "description"]
    fields = [
        "number",
        "description",
        "type",
        "life_cycle_state",
        "status",
        "rating_state",
        "scheduled_date",
        "expiration_date",
        "created_date",
        "created_by_user",
        "updated_date",
        "updated_by_user",
    ]
    readonly_fields = [
        "number",
        "life_cycle_state",
        "created_date",
        "created_by_user",
        "updated_date",
        "updated_by_user",
    ]
    inlines = [AssignmentInline, TransitionLogInline]
    actions = ["start_progress_action"]
    change_form_template = "admin/jobs/job/change_form.html"

    @admin.display(description="description")
    def short_description(self, job: Job) -> str:
        return job.description if len(job.description) <= 60 else job.description[:57] + "…"

    @admin.display(description="assigned to")
    def assignee(self, job: Job) -> str:
        try:
            return str(job.assigned_to)
        except ObjectDoesNotExist:
            return "—"

    def has_start_progress_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(START_PROGRESS_PERMISSION)

    def save_model(self, request: HttpRequest, obj: Job, form: Any, change: bool) -> None:
        if not change:
            obj.created_by_user = request.user
        obj.updated_by_user = request.user
        obj.updated_date = timezone.now()
        super().save_model(request, obj, form, change)

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except ConcurrentTransition:
            self.message_user(
                request,
                "This job changed state while you were editing it, so nothing was saved. "
                "Review it and save again.",
                messages.ERROR,
            )
            return HttpResponseRedirect(request.path)

    # --- the bulk action ----------------------------------------------------------------------

    @admin.action(description="Start progress", permissions=["start_progress"])
    def start_progress_action(
        self, request: HttpRequest, queryset: QuerySet[Job]
    ) -> HttpResponse | None:
        statuses = statuses_allowed_for_every_type(queryset)
        form = StartProgressForm(
            request.POST if "confirm" in request.POST else None, statuses=statuses
        )
        if form.is_bound and form.is_valid():
            self._start_selected(request, queryset, form.cleaned_data["status"])
            return None  # back to the changelist, where the messages are shown
        return self._confirmation_page(request, queryset, form)

    def _confirmation_page(
        self, request: HttpRequest, queryset: QuerySet[Job], form: StartProgressForm
    ) -> HttpResponse | None:
        will_start: list[str] = []
        try:
            preview = bulk_start_progress(
                jobs=queryset,
                user=request.user,
                channel=Channel.ADMIN,
                dry_run=True,
                on_batch=lambda outcomes: will_start.extend(
                    o.number for o in outcomes if o.started
                ),
            )
        except JobsError as refusal:
            self.message_user(request, refusal.message, messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Start progress",
            "opts": self.model._meta,
            "will_start": will_start,
            "skipped": preview.skipped,
            "form": form,
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_name": "start_progress_action",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/jobs/job/start_progress_confirmation.html", context)

    def _start_selected(self, request: HttpRequest, queryset: QuerySet[Job], status_id: str):
        try:
            summary = bulk_start_progress(
                jobs=queryset, status=chosen(status_id), user=request.user, channel=Channel.ADMIN
            )
        except JobsError as refusal:
            self._refused(request, refusal)
            return
        except DatabaseError:
            self.message_user(
                request,
                "A batch failed and was rolled back; jobs in earlier batches were started. "
                "Run the action again to start the rest.",
                messages.ERROR,
            )
            return
        if summary.started:
            self.message_user(
                request,
                f"{summary.started} job{'s' if summary.started != 1 else ''} started.",
                messages.SUCCESS,
            )
        if summary.skipped:
            self.message_user(request, skipped_message(summary.skipped), messages.WARNING)

    def _refused(self, request: HttpRequest, refusal: JobsError) -> None:
        self.message_user(request, f"{refusal.message} {refusal.description}", messages.ERROR)

    # --- the button on the change page --------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<int:object_id>/start-progress/",
                self.admin_site.admin_view(self.start_progress_view),
                name="jobs_job_start_progress",
            ),
            *super().get_urls(),
        ]

    def start_progress_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            job = start_progress(
                job=object_id,
                status=chosen(request.POST.get("status")),
                user=request.user,
                channel=Channel.ADMIN,
            )
        except JobsError as refusal:
            self._refused(request, refusal)
        else:
            self.message_user(request, f"Job {job.number} started.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[object_id]))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        job = Job.objects.filter(pk=object_id).select_related("type").first()
        can_start = (
            job is not None
            and job.life_cycle_state == LifeCycleState.PENDING
            and self.has_start_progress_permission(request)
        )
        extra_context = {
            **(extra_context or {}),
            "can_start_progress": can_start,
            "start_statuses": statuses_allowed_for_every_type(Job.objects.filter(pk=object_id))
            if can_start
            else [],
            "start_progress_url": reverse("admin:jobs_job_start_progress", args=[object_id])
            if can_start
            else "",
        }
        return super().change_view(request, object_id, form_url, extra_context)


def chosen(status_id: str | None) -> dict[str, str] | None:
    """The status picked in a form ("" for the type's default) as the service's identifier."""
    return {"id": status_id} if status_id else None


def skipped_message(skipped: list[Outcome]) -> str:
    """ "3 skipped: JB00001, JB00006 (not pending); JB00002 (no default status)"."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for outcome in skipped:
        by_reason[SKIP_LABELS.get(outcome.code, outcome.code)].append(outcome.number)
    groups = []
    for label, numbers in by_reason.items():
        named = ", ".join(numbers[:NAMED_IN_MESSAGE])
        more = (
            f" and {len(numbers) - NAMED_IN_MESSAGE} more"
            if len(numbers) > NAMED_IN_MESSAGE
            else ""
        )
        groups.append(f"{named}{more} ({label})")
    return f"{len(skipped)} skipped: " + "; ".join(groups)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["job", "user", "unit"]
    list_select_related = ["job", "user", "unit"]
    search_fields = ["job__number", "user__username", "unit__name"]
    raw_id_fields = ["job"]


@admin.register(JobTransitionLog)
class JobTransitionLogAdmin(admin.ModelAdmin):
    """The record of what happened: readable, never editable."""

    list_display = ["created_at", "job", "from_state", "to_state", "to_status", "user", "channel"]
    list_filter = ["channel", "to_state"]
    list_select_related = ["job", "to_status", "user"]
    search_fields = ["job__number"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
