"""What a refusal of the service says about the job, in plain sentences every door may use.

The service raises a refusal as its code with data (jobs.exceptions); these are its facts in
words, with no door's vocabulary. What to change next is each door's own: the API names its
parameters (jobs.api.words), the admin its fields (jobs.admin.words), the command its options
(jobs.management.words).
"""

from __future__ import annotations

from collections.abc import Callable

from jobs.exceptions import JobsError
from jobs.models import JobType
from jobs.transitions import TRANSITIONS


def _state_conflict(
    job: str = "",
    state: str = "",
    transition: str = "",
    race: bool = False,
    batch: bool = False,
    updatable: str = "",
) -> str:
    if batch:
        return "Jobs in this batch kept changing while being moved."
    if race:
        return f"Job {job} was changed by another request first."
    if updatable:
        return f"Job {job} is {state}; only {updatable} jobs can be updated."
    declared = TRANSITIONS[transition]
    return f"Job {job} is {state}; only {declared.sources_text} jobs can be {declared.past}."


def default_label(field: str) -> str:
    """ "default status on start progress": the type's field, as people call it."""
    return str(JobType._meta.get_field(field).verbose_name)


def _no_default(type: str, field: str, choice: str) -> str:
    return f"Job type {type} has no {default_label(field)}."


def _status_not_allowed(
    status: str,
    state: str,
    status_state: str = "",
    type: str = "",
    job: str = "",
    allowed: str = "",
) -> str:
    if job:
        # An update: the status must come next in the type's sequence, within the job's state.
        following = f"it may move to {allowed}" if allowed else "no other status follows"
        return f"Job {job} cannot move to status {status}: {following}."
    if status_state:
        return f"Status {status} is {status_state}, not {state}."
    return f"Status {status} is not allowed for job type {type}."


# What each permission that is not a transition's lets one do, as a refusal says it.
DOING = {
    "jobs.view_job": "view jobs",
    "jobs.add_job": "create jobs",
    "jobs.change_job": "update jobs",
    "jobs.view_all_jobs": "give a job to a group that is not yours",
}


def _not_permitted(permission: str, transition: str = "") -> str:
    if transition:
        return f"You may not {TRANSITIONS[transition].action} jobs."
    return f"You may not {DOING.get(permission, 'do this')}."


def _duplicate_reference(reference: str, number: str = "") -> str:
    held = f"job {number}" if number else "another job"
    return f"The external reference {reference!r} is already {held}'s."


def _job_not_found(number: str = "") -> str:
    return "No job has this number." if number else "No job matches the identifier."


SENTENCES: dict[str, Callable[..., str]] = {
    "JOB_STATE_CONFLICT": _state_conflict,
    "NO_DEFAULT_STATUS": _no_default,
    "STATUS_NOT_ALLOWED": _status_not_allowed,
    "PERMISSION_DENIED": _not_permitted,
    "JOB_NOT_FOUND": _job_not_found,
    "TRANSITION_RUN_NOT_FOUND": lambda: "No transition run has this id.",
    "USER_NOT_FOUND": lambda: "No user matches the identifier.",
    "GROUP_NOT_FOUND": lambda: "No group matches the identifier.",
    "DUPLICATE_EXTERNAL_REFERENCE": _duplicate_reference,
    "PRECONDITION_FAILED": lambda job: f"Job {job} has changed since the version you sent.",
    "STATUS_NOT_FOUND": lambda choice: f"The {choice_noun(choice)} asked for does not exist.",
    "CANCELLATION_REASON_NOT_FOUND": lambda choice: (
        f"The {choice_noun(choice)} asked for does not exist."
    ),
}


def sentence(refusal: JobsError) -> str:
    """The refusal's facts in one sentence (a door's own refusal says its own)."""
    if refusal.message or refusal.code not in SENTENCES:
        return refusal.message
    return SENTENCES[refusal.code](**refusal.data)


def status_hint(refusal: JobsError) -> str:
    """What to do about a status the job cannot enter: the same words at every door."""
    state = refusal.data["state"]
    if refusal.data.get("job"):
        return "Choose a status the job's type allows next in its state, or leave it as it is."
    if refusal.data.get("status_state"):
        return f"Choose a status whose life cycle state is {state}."
    return f"Choose a {state} status that the job's type allows."


def missing_choice(refusal: JobsError) -> str | None:
    """The choice (status, cancellation reason) a refusal says does not exist, if it says so."""
    if refusal.message or not refusal.code.endswith("_NOT_FOUND"):
        return None
    return refusal.data.get("choice")


def ask_for(permission: str) -> str:
    """What every door says to a user who lacks a permission."""
    return f"Ask an administrator for the permission {permission}."


# Every choice a transition takes, by name: "status", "cancellation_reason".
CHOICES = {c.name: c for t in TRANSITIONS.values() for c in t.choices}


def choice_noun(choice: str) -> str:
    """ "status", "cancellation reason": what a choice of a transition is called."""
    return CHOICES[choice].label.lower()


# A refusal in a door's words: (message, what to change).
Words = tuple[str, str]
Wording = Callable[[JobsError], Words]


def words_from(
    next_steps: dict[str, Callable[[JobsError], str]], missing: Callable[[str], Words]
) -> Wording:
    """A door's wording: the refusal's sentence, and what to change in the door's own terms (its
    table, by code); a choice that does not exist, as the door names it (`missing(choice)`). A
    refusal that came with its words (a door's own) keeps them."""

    def say(refusal: JobsError) -> Words:
        choice = missing_choice(refusal)
        if choice is not None:
            return missing(choice)
        if refusal.message or refusal.code not in next_steps:
            return refusal.message, refusal.description
        return sentence(refusal), next_steps[refusal.code](refusal)

    return say
