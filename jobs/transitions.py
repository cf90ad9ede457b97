"""Every transition a door may run, declared once.

The model's `@transition` is the source of truth for what django-fsm knows: the source states, the
target state and the permission are read from it, never restated. A declaration adds what the
doors and the service need beyond that: which type field holds the default status, the extra
parameters the transition takes, the event it announces, and the words people read.

Adding a transition: write the `@transition` method on `Job` (with its `permission=`), add the
permission to `Job.Meta` and the type's default-status field, declare it in `TRANSITIONS` below,
and make the migration. The service, the API actions and OpenAPI document, the admin actions,
buttons and confirmation pages, the command, the statuses look-up and the events all read this
table; the per-transition tests pick it up too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db import models
from django_fsm import Transition, can_proceed

from jobs.exceptions import CancellationReasonNotFound, JobsError, StatusNotFound
from jobs.models import Job, JobCancellationReason, JobStatus, LifeCycleState


@dataclass(frozen=True)
class Choice:
    """A catalog entry a transition records, chosen for each job: the one asked for by
    identifier, else the job type's default. Every transition chooses a status (which must be in
    its target state, allowed for the type, and has no fallback); some take extra parameters
    (cancel's reason), which fall back to null. Each is written to the job's and the log's column
    of its name."""

    name: str  # the model method's keyword, and the Job and log column
    model: type[models.Model]
    type_default_field: str  # the JobType field holding the default
    api_name: str  # the identifier's name in a request body
    option: str  # the command's option
    label: str  # what a person reads
    not_found: type[JobsError]
    state: str | None = None  # the life cycle state an entry must be in, and allowed for the type
    required: bool = False  # whether a job whose type has no default is refused


CANCELLATION_REASON = Choice(
    name="cancellation_reason",
    model=JobCancellationReason,
    type_default_field="default_cancellation_reason",
    api_name="cancellation_reason_identifier",
    option="--reason",
    label="Cancellation reason",
    not_found=CancellationReasonNotFound,
)


@dataclass(frozen=True)
class JobTransition:
    name: str  # the Job method, and the name in every door (URL, action, command argument)
    label: str  # "Start progress": the admin's action and button
    verb: str  # "start": "would start", "Start 3 jobs"
    action: str  # "start progress on": "You may not start progress on jobs."
    past: str  # "started": "3 jobs started", "Started 3, skipped 1."
    default_status_field: str  # the JobType field holding the status to enter by default
    event: str  # the event type announced to other systems
    parameters: tuple[Choice, ...] = ()

    @cached_property
    def _declared_on_model(self) -> list[Transition]:
        """django-fsm's record of the model's `@transition`: one entry per source state."""
        state = Job._meta.get_field("life_cycle_state")
        return [t for t in state.get_all_transitions(Job) if t.name == self.name]

    @cached_property
    def sources(self) -> tuple[str, ...]:
        return tuple(t.source for t in self._declared_on_model)

    @cached_property
    def target(self) -> str:
        (target,) = {t.target for t in self._declared_on_model}
        return target

    @cached_property
    def permission(self) -> str:
        (permission,) = {t.permission for t in self._declared_on_model}
        return permission

    @cached_property
    def status(self) -> Choice:
        return Choice(
            name="status",
            model=JobStatus,
            type_default_field=self.default_status_field,
            api_name="status_identifier",
            option="--status",
            label="Status",
            not_found=StatusNotFound,
            state=self.target,
            required=True,
        )

    @cached_property
    def choices(self) -> tuple[Choice, ...]:
        """The status, then the extra parameters: what the service resolves for each job."""
        return (self.status, *self.parameters)

    @cached_property
    def type_defaults(self) -> tuple[str, ...]:
        """The JobType relations holding this transition's defaults: its status and each extra
        parameter's entry."""
        return tuple(choice.type_default_field for choice in self.choices)

    def allows(self, job: Job) -> bool:
        """Whether the job's current state lets this transition run (django-fsm decides)."""
        return can_proceed(getattr(job, self.name))

    def requested(self, status: Any, parameters: dict[str, Any]) -> dict[str, Any]:
        """Each choice as a caller asks for it, by name (None: the type's default)."""
        unknown = set(parameters) - {p.name for p in self.parameters}
        if unknown:
            raise TypeError(f"{self.name} takes no {', '.join(sorted(unknown))}")
        asked = {"status": status, **parameters}
        return {choice.name: asked.get(choice.name) for choice in self.choices}

    def apply(self, job: Job, **kwargs: Any) -> None:
        """Run the model's transition on `job`, in memory."""
        getattr(job, self.name)(**kwargs)

    @cached_property
    def sources_text(self) -> str:
        """ "PENDING", "DRAFT, PENDING or IN_PROGRESS"."""
        return _either(list(self.sources))

    @cached_property
    def not_allowed_label(self) -> str:
        """How a skip for the wrong state reads: "not pending"."""
        return "not " + _either([LifeCycleState(s).label.lower() for s in self.sources])


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


SUBMIT = JobTransition(
    name="submit",
    label="Submit",
    verb="submit",
    action="submit",
    past="submitted",
    default_status_field="default_submit_status",
    event="job.submitted",
)
START_PROGRESS = JobTransition(
    name="start_progress",
    label="Start progress",
    verb="start",
    action="start progress on",
    past="started",
    default_status_field="default_start_status",
    event="job.started",
)
COMPLETE = JobTransition(
    name="complete",
    label="Complete",
    verb="complete",
    action="complete",
    past="completed",
    default_status_field="default_complete_status",
    event="job.completed",
)
CANCEL = JobTransition(
    name="cancel",
    label="Cancel",
    verb="cancel",
    action="cancel",
    past="cancelled",
    default_status_field="default_cancel_status",
    event="job.cancelled",
    parameters=(CANCELLATION_REASON,),
)

TRANSITIONS: dict[str, JobTransition] = {
    t.name: t for t in (SUBMIT, START_PROGRESS, COMPLETE, CANCEL)
}

TRANSITION_NAMES = list(TRANSITIONS)


def get_transition(transition: str | JobTransition) -> JobTransition:
    if isinstance(transition, JobTransition):
        return transition
    try:
        return TRANSITIONS[transition]
    except KeyError:
        raise ValueError(
            f"unknown transition {transition!r}; one of: {', '.join(TRANSITIONS)}"
        ) from None
