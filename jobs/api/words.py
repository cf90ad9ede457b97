"""The API's words for the service's refusals: their sentence (jobs.words), and what to change
in the API's own terms, its parameters. The envelope says them (`say`)."""

from __future__ import annotations

from jobs.exceptions import JobsError
from jobs.words import CHOICES, Words, ask_for, choice_noun, default_label, words_from


def _state_conflict(refusal: JobsError) -> str:
    if refusal.data.get("batch"):
        return "Nothing in this batch was changed. Run the same command again."
    if refusal.data.get("race"):
        return "Nothing was changed by this request. Reload the job to see its current state."
    return "Nothing was changed. Reload the job to see its current state."


def _no_default(refusal: JobsError) -> str:
    data = refusal.data
    parameter = CHOICES[data["choice"]].api_name
    return f"Name a status in {parameter}, or set the type's {default_label(data['field'])}."


def _status_not_allowed(refusal: JobsError) -> str:
    state = refusal.data["state"]
    if refusal.data.get("status_state"):
        return f"Choose a status whose life cycle state is {state}."
    return f"Choose a {state} status that the job's type allows."


def _not_found(refusal: JobsError) -> str:
    return (
        f"Name an existing {choice_noun(refusal.data['choice'])} by id, name or alternative_code."
    )


NEXT_STEPS = {
    "JOB_STATE_CONFLICT": _state_conflict,
    "NO_DEFAULT_STATUS": _no_default,
    "STATUS_NOT_ALLOWED": _status_not_allowed,
    "STATUS_NOT_FOUND": _not_found,
    "CANCELLATION_REASON_NOT_FOUND": _not_found,
    "PERMISSION_DENIED": lambda r: ask_for(r.data["permission"]),
    "JOB_NOT_FOUND": lambda r: "Check the job's id or number and try again.",
    "TRANSITION_RUN_NOT_FOUND": lambda r: "Check the id.",
}
_say = words_from(NEXT_STEPS)


def say(refusal: JobsError) -> Words:
    """The refusal as the API answers it: a choice not found is named by its parameter."""
    if not refusal.message and "choice" in refusal.data and refusal.code.endswith("_NOT_FOUND"):
        choice = refusal.data["choice"]
        return f"No {choice_noun(choice)} matches {CHOICES[choice].api_name}.", _not_found(refusal)
    return _say(refusal)
