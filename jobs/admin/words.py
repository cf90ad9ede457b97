"""The admin's words for the service's refusals: their sentence (jobs.words), and what to change
in the page's own terms, its fields and buttons."""

from __future__ import annotations

from jobs.exceptions import JobsError
from jobs.words import (
    ask_for,
    choice_noun,
    default_label,
    status_hint,
    words_from,
)


def _no_default(refusal: JobsError) -> str:
    return f"Choose a status, or set the type's {default_label(refusal.data['field'])}."


NEXT_STEPS = {
    "JOB_STATE_CONFLICT": lambda r: "Nothing was changed. Reload the page to see it as it is now.",
    "NO_DEFAULT_STATUS": _no_default,
    "STATUS_NOT_ALLOWED": status_hint,
    "PERMISSION_DENIED": lambda r: ask_for(r.data["permission"]),
    "JOB_NOT_FOUND": lambda r: "It may have been deleted.",
    "TRANSITION_RUN_NOT_FOUND": lambda r: "It may have been deleted.",
}
_words = words_from(
    NEXT_STEPS,
    missing=lambda choice: (
        f"The {choice_noun(choice)} chosen no longer exists.",
        "Choose another.",
    ),
)


def admin_words(refusal: JobsError) -> str:
    """The refusal as one message of the admin's: what happened, and what to do."""
    message, next_step = _words(refusal)
    return f"{message} {next_step}".strip() if next_step != message else message


def admin_reason(refusal: JobsError) -> str:
    """Why a job would be skipped, as the confirmation page lists it."""
    return _words(refusal)[0]
