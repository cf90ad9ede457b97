"""The API's words for the service's refusals: their sentence (jobs.words), and what to change
in the API's own terms, its parameters. The envelope says them (`say`)."""

from __future__ import annotations

from jobs.exceptions import JobsError
from jobs.words import CHOICES, Words, ask_for, choice_noun, default_label, status_hint, words_from


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


def _missing(choice: str) -> Words:
    noun = choice_noun(choice)
    return (
        f"No {noun} matches {CHOICES[choice].api_name}.",
        f"Name an existing {noun} by id, name or alternative_code.",
    )


NEXT_STEPS = {
    "JOB_STATE_CONFLICT": _state_conflict,
    "NO_DEFAULT_STATUS": _no_default,
    "STATUS_NOT_ALLOWED": status_hint,
    "PERMISSION_DENIED": lambda r: ask_for(r.data["permission"]),
    "JOB_NOT_FOUND": lambda r: "Check the job's id or number and try again.",
    "TRANSITION_RUN_NOT_FOUND": lambda r: "Check the id.",
    "USER_NOT_FOUND": lambda r: "Name an existing user by id or username.",
    "GROUP_NOT_FOUND": lambda r: "Name an existing group by id or name.",
    "DUPLICATE_EXTERNAL_REFERENCE": lambda r: (
        "Nothing was changed. Send another external_reference, or update the job that holds it."
    ),
    "PRECONDITION_FAILED": lambda r: (
        "Nothing was changed. Read the job again and send its new ETag in If-Match."
    ),
}
# The refusal as the API answers it: a choice that does not exist is named by its parameter.
say = words_from(NEXT_STEPS, missing=_missing)
