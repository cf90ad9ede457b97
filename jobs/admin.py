"""The dispatchers' door. Every transition, one job or thousands, goes through jobs.services by
way of `TransitionAdminMixin`; the classes here only configure the pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django_fsm import ConcurrentTransition

from jobs import tasks, webhooks
from jobs.admin_readonly import ReadOnlyAdmin
from jobs.admin_runs import RunFilter, TransitionRunAdmin, link_to_run
from jobs.admin_transitions import TransitionAdminMixin
from jobs.events import EVENT_TYPES
from jobs.models import (
    Assignment,
    Event,
    Job,
    JobCancellationReason,
    JobStatus,
    JobTransitionLog,
    JobType,
    TransitionRun,
    WebhookDelivery,
    WebhookEndpoint,
)
from jobs.transitions import TRANSITIONS

admin.site.site_header = "Jobs administration"
admin.site.site_title = "Jobs admin"
admin.site.index_title = "Jobs, their types and what happened to them"
# The job list needs the width: with the app list beside it, its columns were cut off at 1280
# pixels (the breadcrumbs and the home page still lead everywhere).
admin.site.enable_nav_sidebar = False

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
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(JobCancellationReason)
class JobCancellationReasonAdmin(admin.ModelAdmin):
    list_display = ["name", "alternative_code", "description"]
    search_fields = ["name", "alternative_code"]


class AssignmentInline(admin.StackedInline):
    """Editable by those who may change the job (the page's Save button is theirs); read-only for
    everyone else, with no empty form offered to someone who cannot save it."""

    model = Assignment
    max_num = 1
    fields = ["user", "unit"]
    verbose_name = verbose_name_plural = "assigned to"

    def _may_edit(self, request: HttpRequest) -> bool:
        return request.user.has_perm("jobs.change_job")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request) and super().has_delete_permission(request, obj)

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        return 1 if self.has_add_permission(request, obj) else 0


class TransitionLogInline(admin.TabularInline):
    model = JobTransitionLog
    extra = 0
    can_delete = False
    ordering = ["-created_at", "-id"]
    fields = readonly_fields = [
        "created_at",
        "transition",
        "from_state",
        "to_state",
        "from_status",
        "to_status",
        "user",
        "channel",
        "cancellation_reason",
        "run_link",
    ]
    verbose_name_plural = "transition history"

    @admin.display(description="run")
    def run_link(self, entry: JobTransitionLog) -> str:
        return link_to_run(entry.run_id)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .select_related("from_status", "to_status", "user", "cancellation_reason")
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(TransitionAdminMixin, admin.ModelAdmin):
    # Jobs are cancelled, not deleted in bulk: deleting takes their transition log (the audit
    # trail) with them, and a statement bound on the server takes at most 65,535 parameters,
    # which Django 5.2's delete of that many jobs would exceed (docs/deploy.md).
    def get_actions(self, request: HttpRequest) -> dict[str, tuple]:
        actions = super().get_actions(request)
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
        "cancellation_reason",
        "actual_start_date",
        "actual_completed_date",
        "created_date",
        "created_by_user",
        "updated_date",
        "updated_by_user",
    ]
    readonly_fields = [
        "number",
        "life_cycle_state",
        "cancellation_reason",
        "actual_start_date",
        "actual_completed_date",
        "created_date",
        "created_by_user",
        "updated_date",
        "updated_by_user",
    ]
    inlines = [AssignmentInline, TransitionLogInline]

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

    def save_model(self, request: HttpRequest, obj: Job, form: Any, change: bool) -> None:
        if not change:
            obj.created_by_user = request.user
        obj.updated_by_user = request.user
        obj.updated_date = timezone.now()
        super().save_model(request, obj, form, change)

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
        except ConcurrentTransition:
            self.message_user(
                request,
                "This job changed state while you were editing it, so nothing was saved. "
                "Review it and save again.",
                messages.ERROR,
            )
            return HttpResponseRedirect(request.path)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["job", "user", "unit"]
    list_select_related = ["job", "user", "unit"]
    search_fields = ["job__number", "user__username", "unit__name"]
    raw_id_fields = ["job"]


@admin.register(JobTransitionLog)
class JobTransitionLogAdmin(ReadOnlyAdmin):
    """The record of what happened: readable, never editable."""

    list_display = [
        "created_at",
        "job",
        "transition",
        "from_state",
        "to_state",
        "to_status",
        "user",
        "channel",
        "run_link",
    ]
    list_filter = ["transition", "channel", "to_state", RunFilter]
    list_select_related = ["job", "to_status", "user"]
    search_fields = ["job__number"]

    @admin.display(description="run", ordering="run")
    def run_link(self, entry: JobTransitionLog) -> str:
        return link_to_run(entry.run_id)

    # The log is the jobs' history, which every job page shows: whoever may view jobs reads it.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("jobs.view_job")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """The outbox, as other systems read it (GET events): readable, never editable."""

    list_display = ["public_id", "type", "timestamp", "job_number"]
    list_filter = ["type"]
    search_fields = ["public_id", "data__job__number"]
    readonly_fields = ["public_id", "type", "timestamp", "data", "txid"]

    @admin.display(description="job")
    def job_number(self, event: Event) -> str:
        return event.data.get("job", {}).get("number", "")


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="Where to POST events.")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "event_types", "is_active", "description"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.errors:
            webhooks.check_endpoint(
                WebhookEndpoint(url=cleaned["url"], event_types=cleaned["event_types"])
            )
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "types", "is_active", "created_at"]
    list_filter = ["is_active"]
    readonly_fields = ["secret_hint", "created_at"]
    actions = ["send_test_event"]

    @admin.display(description="event types")
    def types(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types) or "all"

    @admin.display(description="secret")
    def secret_hint(self, endpoint: WebhookEndpoint) -> str:
        # Shown whole once, when the endpoint is added; afterwards only enough to recognise it.
        return f"{endpoint.secret[:10]}…{endpoint.secret[-4:]}" if endpoint.pk else "(made on save)"

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool):
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(
                request,
                f"Its signing secret, shown only now: {obj.secret} — give it to the receiver, "
                "which verifies each delivery with it.",
                messages.WARNING,
            )

    @admin.action(description="Send a test event")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet) -> None:
        now = timezone.now()
        for endpoint in queryset:
            event = Event.objects.create(
                type="webhook.test",
                timestamp=now,
                data={"message": "A test event from the jobs admin.", "endpoint": endpoint.pk},
                fanned_out=True,
            )
            delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event)
            transaction.on_commit(lambda pk=delivery.pk: tasks.deliver.delay(pk))
        self.message_user(
            request,
            f"A test event is on its way to {queryset.count()} endpoint(s); "
            "see Webhook deliveries.",
            messages.SUCCESS,
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "event_id",
        "event_type",
        "endpoint",
        "state",
        "attempts",
        "next_attempt_at",
        "last_status_code",
    ]
    list_filter = ["state", "endpoint"]
    list_select_related = ["event", "endpoint"]
    search_fields = ["event__public_id"]
    readonly_fields = [
        "endpoint",
        "event",
        "state",
        "attempts",
        "next_attempt_at",
        "leased_until",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    actions = ["resend"]

    @admin.display(description="event")
    def event_id(self, delivery: WebhookDelivery) -> str:
        return delivery.event.public_id

    @admin.display(description="type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Resend", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        webhooks.resend(WebhookDelivery.objects.filter(pk__in=ids))
        transaction.on_commit(lambda: [tasks.deliver.delay(pk) for pk in ids])
        self.message_user(
            request, f"{len(ids)} delivery(ies) will be sent again.", messages.SUCCESS
        )


admin.site.register(TransitionRun, TransitionRunAdmin)
