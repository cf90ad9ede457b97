"""The admin's share of every declared transition: a bulk action with a confirmation page, and a
button on the job page. It reads `jobs.transitions`; nothing here names a transition.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IS_POPUP_VAR
from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from jobs.admin.selection import frozen_selection
from jobs.admin.words import admin_reason, admin_words
from jobs.exceptions import JobNotFound, JobsError, PermissionDenied
from jobs.identifiers import is_number
from jobs.metrics import access_refused
from jobs.models import Channel, Job, JobStatus
from jobs.selectors import statuses_allowed_for_every_type, statuses_of_type
from jobs.services import (
    Outcome,
    forecast,
    job_bulk_transition,
    job_transition,
    queue_run,
)
from jobs.transitions import TRANSITIONS, Choice, JobTransition

CONFIRMATION_TEMPLATE = "admin/jobs/job/transition_confirmation.html"
# How many job numbers a page or a message names before it only counts.
NAMED_ON_PAGE = 20
NAMED_IN_MESSAGE = 5
# How the admin names a skip reason (the wrong state is worded per transition).
SKIP_LABELS = {
    "NO_DEFAULT_STATUS": "no default status",
    "STATUS_NOT_ALLOWED": "status not allowed for its type",
    "STATUS_NOT_FOUND": "status not found",
    "CANCELLATION_REASON_NOT_FOUND": "cancellation reason not found",
    "JOB_NOT_FOUND": "not found",
}


def skip_label(declared: JobTransition, code: str) -> str:
    if code == "JOB_STATE_CONFLICT":
        return declared.not_allowed_label
    return SKIP_LABELS.get(code, code)


class TransitionForm(forms.Form):
    """The choices of a transition: its status, and an entry for each extra parameter."""

    status = forms.ChoiceField(required=False, help_text="Each job's type decides by default.")

    def __init__(
        self, *args: Any, declared: JobTransition, statuses: list[JobStatus], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status"].label = f"{declared.verb.capitalize()} in status"
        self.fields["status"].choices = status_choices(statuses)
        for parameter in declared.parameters:
            self.fields[parameter.name] = forms.ChoiceField(
                label=parameter.label, required=False, choices=parameter_choices(parameter)
            )

    def service_arguments(self) -> dict[str, Any]:
        """The chosen status and parameters, as the service takes them ("" is the default)."""
        return {name: chosen(value) for name, value in self.cleaned_data.items()}


def status_choices(
    statuses: list[JobStatus], *, with_default: bool = True
) -> list[tuple[str, str]]:
    default = [("", "The type's default status")] if with_default else []
    return default + [(str(s.pk), s.name) for s in statuses]


def parameter_choices(parameter: Choice) -> list[tuple[str, str]]:
    entries = parameter.model.objects.order_by("name").values_list("pk", "name")
    return [("", "The type's default, if any")] + [(str(pk), name) for pk, name in entries]


def chosen(entry_id: str | None) -> dict[str, int] | None:
    """An entry picked in a form ("" for the type's default) as the service's identifier; a
    value no choice of the form has names nothing."""
    return {"id": int(entry_id) if is_number(entry_id) else 0} if entry_id else None


def skipped_message(declared: JobTransition, skipped: list[Outcome]) -> str:
    """ "3 skipped: JB00001, JB00006 (not pending); JB00002 (no default status)"."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for outcome in skipped:
        # A job handed to another unit meanwhile is no longer the user's to name.
        number = outcome.number or "one no longer yours to see"
        by_reason[skip_label(declared, outcome.code)].append(number)
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


def _plural(count: int) -> str:
    return f"{count} job{'s' if count != 1 else ''}"


class TransitionAdminMixin:
    """For the Job admin: one action and one job-page button per declared transition, offered to
    users with that transition's permission, all through the service (channel `admin`)."""

    change_form_template = "admin/jobs/job/change_form.html"

    # --- the bulk actions ---------------------------------------------------------------------

    # Django 6.1 adds where the actions are shown (`action_location`); passed on only when
    # given, so both Django lines are served.
    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, tuple]:
        where = {} if action_location is None else {"action_location": action_location}
        actions = super().get_actions(request, **where)
        if self.actions is None or IS_POPUP_VAR in request.GET:  # as Django's own actions
            return actions
        for declared in TRANSITIONS.values():
            if request.user.has_perm(declared.permission):
                name = f"{declared.name}_action"
                actions[name] = (self._bulk_action(declared), name, declared.label)
        return actions

    def _bulk_action(self, declared: JobTransition):
        def action(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Job]):
            statuses = statuses_allowed_for_every_type(queryset, declared.target)
            # "recount": the page again, counted for the choices made on it.
            chose = "confirm" in request.POST or "recount" in request.POST
            form = TransitionForm(
                request.POST if chose else None, declared=declared, statuses=statuses
            )
            if "confirm" in request.POST and form.is_valid():
                self._run_selected(request, declared, queryset, form)
                return None  # back to the changelist, where the messages are shown
            return self._confirmation_page(request, declared, queryset, form)

        action.__name__ = f"{declared.name}_action"
        return action

    def _confirmation_page(
        self,
        request: HttpRequest,
        declared: JobTransition,
        queryset: QuerySet[Job],
        form: TransitionForm,
    ) -> HttpResponse | None:
        # Counted for what will be used: the choices on the page, once made.
        choices = form.service_arguments() if form.is_bound and form.is_valid() else {}
        try:
            counted = forecast(
                transition=declared,
                jobs=queryset,
                user=request.user,
                channel=Channel.ADMIN,
                named=NAMED_ON_PAGE,
                **choices,
            )
        except JobsError as refusal:
            self._refused(request, refusal)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": declared.label,
            "opts": self.model._meta,
            "transition": declared,
            "forecast": counted,
            "skipped": [
                {
                    "label": skip_label(declared, group.code),
                    "group": group,
                    "reason": admin_reason(group.refusal) if group.refusal else "",
                }
                for group in counted.skipped
            ],
            "will_run_more": counted.moving - len(counted.moving_first),
            "in_background": counted.selected > settings.JOBS_BULK_INLINE_LIMIT,
            "form": form,
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_name": f"{declared.name}_action",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)

    def _run_selected(
        self,
        request: HttpRequest,
        declared: JobTransition,
        queryset: QuerySet[Job],
        form: TransitionForm,
    ) -> None:
        if queryset.count() > settings.JOBS_BULK_INLINE_LIMIT:
            self._queue_selected(request, declared, queryset, form)
            return
        try:
            summary = job_bulk_transition(
                transition=declared,
                jobs=queryset,
                user=request.user,
                channel=Channel.ADMIN,
                **form.service_arguments(),
            )
        except JobsError as refusal:
            self._refused(request, refusal)
            return
        except DatabaseError:
            self.message_user(
                request,
                f"A batch failed and was rolled back; jobs in earlier batches were "
                f"{declared.past}. Run the action again for the rest.",
                messages.ERROR,
            )
            return
        if summary.done:
            self.message_user(
                request, f"{_plural(summary.done)} {declared.past}.", messages.SUCCESS
            )
        if summary.skipped:
            self.message_user(request, skipped_message(declared, summary.skipped), messages.WARNING)

    def _queue_selected(
        self,
        request: HttpRequest,
        declared: JobTransition,
        queryset: QuerySet[Job],
        form: TransitionForm,
    ) -> None:
        """Too many for one request: a background run, answered at once with a link to it."""
        try:
            run = queue_run(
                transition=declared,
                selection=frozen_selection(request, queryset),
                user=request.user,
                channel=Channel.ADMIN,
                **form.service_arguments(),
            )
        except JobsError as refusal:
            self._refused(request, refusal)
            return
        page = reverse("admin:jobs_transitionrun_change", args=[run.pk])
        self.message_user(
            request,
            format_html(
                'The selection is large: it will be {} in the background. <a href="{}">Follow '
                "run {}</a>.",
                declared.past,
                page,
                run.pk,
            ),
            messages.SUCCESS,
        )

    def _refused(self, request: HttpRequest, refusal: JobsError, target: str = "") -> None:
        if isinstance(refusal, JobNotFound | PermissionDenied):
            access_refused("admin", refusal.code, request.user, target or request.path)
        self.message_user(request, admin_words(refusal), messages.ERROR)

    # --- the buttons on the job page ----------------------------------------------------------

    def get_urls(self):
        opts = self.model._meta
        return [
            *(
                path(
                    f"<int:object_id>/{name.replace('_', '-')}/",
                    self.admin_site.admin_view(self._transition_view),
                    {"name": name},
                    name=f"{opts.app_label}_{opts.model_name}_{name}",
                )
                for name in TRANSITIONS
            ),
            *super().get_urls(),
        ]

    def _transition_view(self, request: HttpRequest, object_id: int, name: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        declared = TRANSITIONS[name]
        arguments = {"status": chosen(request.POST.get("status"))}
        for parameter in declared.parameters:
            arguments[parameter.name] = chosen(request.POST.get(parameter.name))
        try:
            job = job_transition(
                transition=declared,
                job=object_id,
                user=request.user,
                channel=Channel.ADMIN,
                **arguments,
            )
        except JobsError as refusal:
            self._refused(request, refusal, f"job {object_id}")
        else:
            self.message_user(request, f"Job {job.number} {declared.past}.", messages.SUCCESS)
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
        )

    def transition_buttons(self, request: HttpRequest, object_id: str) -> list[dict[str, Any]]:
        """A button for each transition the job's state allows and the user may run, with the
        statuses its type allows in the target state."""
        if not is_number(str(object_id)):
            return []
        job = self.get_queryset(request).filter(pk=object_id).select_related("type").first()
        if job is None:
            return []
        runnable = [
            declared
            for declared in TRANSITIONS.values()
            if declared.allows(job) and request.user.has_perm(declared.permission)
        ]
        if not runnable:
            return []
        allowed = [entry.status for entry in statuses_of_type(job.type)]
        opts = self.model._meta
        buttons = []
        for declared in runnable:
            # Only choices that can work: the type's default if it has one, and the statuses it
            # allows in the target state; no button when there are none.
            has_default = getattr(job.type, f"{declared.default_status_field}_id") is not None
            statuses = status_choices(
                [s for s in allowed if s.life_cycle_state == declared.target],
                with_default=has_default,
            )
            if not statuses:
                continue
            buttons.append(
                {
                    "transition": declared,
                    "id": declared.name.replace("_", "-"),
                    "url": reverse(
                        f"admin:{opts.app_label}_{opts.model_name}_{declared.name}",
                        args=[object_id],
                    ),
                    "statuses": statuses,
                    "parameters": [
                        {"name": p.name, "label": p.label, "choices": parameter_choices(p)}
                        for p in declared.parameters
                    ],
                }
            )
        return buttons

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "transition_buttons": self.transition_buttons(request, object_id),
        }
        return super().change_view(request, object_id, form_url, extra_context)
