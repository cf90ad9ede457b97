"""What happened, read-only: the transition log (by job, by run), the updates and the events."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from jobs.admin.readonly import ReadOnlyAdmin
from jobs.admin.runs import RunFilter, link_to_run
from jobs.models import Event, JobTransitionLog, JobUpdate
from jobs.visibility import events_seen_by, sight_of


class JobHistoryAdmin(ReadOnlyAdmin):
    """A part of the jobs' history (transitions, updates), which every job page shows: the rows
    of the jobs one sees (jobs.visibility), read by whoever may view jobs, never edited."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(sight_of(request.user).q(prefix="job__"))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("jobs.view_job")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)


@admin.register(JobTransitionLog)
class JobTransitionLogAdmin(JobHistoryAdmin):
    """The record of every transition."""

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


@admin.register(JobUpdate)
class JobUpdateAdmin(JobHistoryAdmin):
    """Each update of a job's fields, with their values before and after."""

    list_display = ["created_at", "job", "fields_changed", "user", "channel"]
    list_filter = ["channel"]
    list_select_related = ["job", "user"]
    search_fields = ["job__number"]
    readonly_fields = ["created_at", "job", "user", "channel", "changes"]

    @admin.display(description="fields changed")
    def fields_changed(self, entry: JobUpdate) -> str:
        return ", ".join(field.replace("_", " ") for field in entry.changes)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """The outbox, as other systems read it (GET events): readable, never editable."""

    list_display = ["public_id", "type", "timestamp", "job_number"]
    list_filter = ["type"]
    search_fields = ["public_id", "data__job__number"]
    readonly_fields = ["public_id", "type", "timestamp", "data", "txid"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        # As GET events hands them out: the events of the jobs one sees, and of one's own runs.
        return super().get_queryset(request).filter(events_seen_by(request.user))

    @admin.display(description="job")
    def job_number(self, event: Event) -> str:
        return event.data.get("job", {}).get("number", "")
