"""The command's words for the service's refusals: their sentence (jobs.words), and what to
change in the command's own terms, its options."""

from __future__ import annotations

from jobs.exceptions import JobsError
from jobs.words import CHOICES, Words, ask_for, choice_noun, default_label, words_from


def _no_default(refusal: JobsError) -> str:
    option = CHOICES[refusal.data["choice"]].option
    return f"Name one with {option}, or set the type's {default_label(refusal.data['field'])}."


NEXT_STEPS = {
    "NO_DEFAULT_STATUS": _no_default,
    "PERMISSION_DENIED": lambda r: ask_for(r.data["permission"]),
    "JOB_STATE_CONFLICT": lambda r: "Nothing was changed for it.",
}
command_words = words_from(
    NEXT_STEPS, missing=lambda choice: (f"The {choice_noun(choice)} asked for does not exist.", "")
)


def reason(refusal: JobsError) -> str:
    """What a skipped job's line says."""
    message, _ = command_words(refusal)
    return message


__all__ = ["Words", "command_words", "reason"]
