"""The admin's *Transition runs*: background runs newest first, and a run's page with its
progress (it reloads itself while the run goes on), counts, skipped reasons and *Stop*."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from jobs.admin.readonly import ReadOnlyAdmin
from jobs.admin.transitions import skip_label
from jobs.admin.words import admin_words
from jobs.exceptions import JobsError
from jobs.filters import FILTER_DESCRIPTIONS
from jobs.models import JobStatus, JobType, LifeCycleState, TransitionRun
from jobs.services import stop_run
from jobs.transitions import TRANSITIONS
from jobs.visibility import runs_seen_by

# How often a run's page reloads itself while the run goes on.
REFRESH_SECONDS = 2


def progress_text(run: TransitionRun) -> str:
    """ "12,500 of 300,000 (4%)"."""
    if run.selected is None:
        return "not started"
    done = run.moved + run.skipped_count
    share = f" ({done * 100 // run.selected}%)" if run.selected else ""
    return f"{done:,} of {run.selected:,}{share}"


def link_to_run(run_id: int | None) -> str:
    """A run as a link to its page; a dash for a job moved by itself."""
    if run_id is None:
        return "—"
    page = reverse("admin:jobs_transitionrun_change", args=[run_id])
    return format_html('<a href="{}">Run {}</a>', page, run_id)


class RunFilter(admin.SimpleListFilter):
    """The transition log by run: `?run=12` is what a run's page links to."""

    title = "run"
    parameter_name = "run"
    LATEST = 10

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        latest = TransitionRun.objects.filter(runs_seen_by(request.user))
        latest = latest.order_by("-id")[: self.LATEST]
        return [("none", "Moved one by one"), *((str(run.pk), str(run)) for run in latest)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "none":
            return queryset.filter(run__isnull=True)
        if value is not None and value.isdigit():
            return queryset.filter(run_id=int(value))
        return queryset


# How a run's frozen filter reads to a dispatcher: each name of GET jobs in words.
def _selection_words(frozen: dict[str, str]) -> list[str]:
    # In the filters' own order: PostgreSQL keeps a JSON object's keys in an order of its own.
    words = []
    for name in (name for name in FILTER_DESCRIPTIONS if name in frozen):
        value = frozen[name]
        if name == "life_cycle_state":
            words.append(f"in {LifeCycleState(value).label}" if value in LifeCycleState else value)
        elif name == "type":
            words.append(f"of type {JobType.objects.filter(pk=value).first() or value}")
        elif name == "status":
            words.append(f"in status {JobStatus.objects.filter(pk=value).first() or value}")
        elif name == "assigned_user":
            user = get_user_model().objects.filter(pk=value).first()
            words.append(f"assigned to {user or value}")
        elif name == "owned_by_group":
            words.append(f"owned by {Group.objects.filter(pk=value).first() or value}")
        elif name == "number":
            words.append(f"numbered {value}")
        elif name == "overdue":
            words.append("overdue" if value == "true" else "not overdue")
        elif name == "external_reference":
            words.append(f"known elsewhere as {value}")
        else:
            words.append(f"matching “{value}”")
    return words


@admin.register(TransitionRun)
class TransitionRunAdmin(ReadOnlyAdmin):
    change_form_template = "admin/jobs/transitionrun/change_form.html"
    list_display = [
        "id",
        "transition",
        "state",
        "progress",
        "moved",
        "skipped_total",
        "requested_by",
        "channel",
        "created_date",
        "finished_date",
    ]
    list_filter = ["state", "transition", "channel"]
    list_select_related = ["requested_by"]
    fields = [
        "transition_label",
        "state",
        "requested_by",
        "channel",
        "selection_text",
        "choices_text",
        "selected",
        "moved",
        "moved_jobs",
        "stop_requested",
        "stopped_by",
        "created_date",
        "started_date",
        "finished_date",
        "error",
    ]
    readonly_fields = fields

    @admin.display(description="transition")
    def transition_label(self, run: TransitionRun) -> str:
        declared = TRANSITIONS.get(run.transition)
        return declared.label if declared else run.transition

    @admin.display(description="selection")
    def selection_text(self, run: TransitionRun) -> str:
        frozen = run.selection
        if "ids" in frozen:
            return f"{len(frozen['ids']):,} jobs chosen one by one"
        words = _selection_words(frozen["filter"])
        jobs = f"jobs {', '.join(words)}" if words else "every job"
        return f"{jobs}, as they were when the run was queued"

    @admin.display(description="jobs moved")
    def moved_jobs(self, run: TransitionRun) -> str:
        log = reverse("admin:jobs_jobtransitionlog_changelist")
        return format_html(
            '<a href="{}?run={}">See the {} jobs it moved</a>', log, run.pk, run.moved
        )

    @admin.display(description="choices")
    def choices_text(self, run: TransitionRun) -> str:
        declared = TRANSITIONS.get(run.transition)
        if declared is None or not run.choices:
            return "each job type's defaults"
        names = []
        for choice in declared.choices:
            picked = run.choices.get(choice.name)
            if picked:
                entry = choice.model.objects.filter(pk=picked["id"]).first()
                names.append(f"{choice.label.lower()}: {entry or picked['id']}")
        return "; ".join(names)

    @admin.display(description="progress")
    def progress(self, run: TransitionRun) -> str:
        return progress_text(run)

    @admin.display(description="skipped")
    def skipped_total(self, run: TransitionRun) -> int:
        return run.skipped_count

    def get_queryset(self, request: HttpRequest) -> QuerySet[TransitionRun]:
        # One's own runs; every run for whoever sees every job (jobs.visibility).
        return super().get_queryset(request).filter(runs_seen_by(request.user))

    # Runs are made by the transition actions and the other doors, never edited; anyone who
    # may view jobs may follow their own.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("jobs.view_job")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def get_urls(self):
        return [
            path(
                "<int:object_id>/stop/",
                self.admin_site.admin_view(self.stop_view),
                name="jobs_transitionrun_stop",
            ),
            *super().get_urls(),
        ]

    def stop_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            run = stop_run(object_id, user=request.user)
        except JobsError as refusal:
            self.message_user(request, admin_words(refusal), messages.ERROR)
        else:
            if run.ended:
                self.message_user(request, f"Run {run.pk} is {run.get_state_display().lower()}.")
            else:
                self.message_user(
                    request, f"Run {run.pk} stops after the batch in hand.", messages.SUCCESS
                )
        return HttpResponseRedirect(reverse("admin:jobs_transitionrun_change", args=[object_id]))

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context=None
    ) -> HttpResponse:
        # Django's page lists admin edits, which a run never has: its history is what it moved.
        log = reverse("admin:jobs_jobtransitionlog_changelist")
        return HttpResponseRedirect(f"{log}?run={object_id}")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        run = self.get_object(request, object_id)
        if run is not None:
            declared = TRANSITIONS.get(run.transition)
            extra_context = {
                **(extra_context or {}),
                "run": run,
                "progress": progress_text(run),
                "done": run.moved + run.skipped_count,
                "past": declared.past if declared else run.transition,
                "skipped_reasons": [
                    {"label": skip_label(declared, code) if declared else code, **group}
                    for code, group in run.skipped.items()
                ],
                "refresh_seconds": None if run.ended else REFRESH_SECONDS,
                "can_stop": (
                    not run.ended
                    and not run.stop_requested
                    and declared is not None
                    and request.user.has_perm(declared.permission)
                ),
            }
        return super().change_view(request, object_id, form_url, extra_context)
